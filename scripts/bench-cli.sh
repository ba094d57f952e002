#!/usr/bin/env bash
# Whole-process benchmarks of the installed product against its peers (docs/BENCHMARKS.md, "CLI" section):
#   tokenize: 'sharplm tokenize --tokenizer T --file 1MB.txt' (native-AOT binary) against the same work done by
#             HF tokenizers (Tokenizers.DotNet) and Microsoft.ML.Tokenizers in their own processes
#             (bench/PeerCli, ReadyToRun), each printing the ids of the whole file;
#   load:     the same with a one-word text: start-up + loading the tokenizer file.
# hyperfine (Debian) times the processes; ROUNDS rounds, each round runs every command RUNS times in the order
# sharplm, peer, then peer, sharplm (alternating), medians over all runs. Usage: bash scripts/bench-cli.sh [ROUNDS] [RUNS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-3}"; runs="${2:-3}"
work="${SHARPLM_BENCH_DIR:-/tmp/sharplm-bench-cli}"
assets="${SHARPLM_TEST_ASSETS:-$root/.cache/assets}"
mkdir -p "$work"
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install hyperfine"; exit 1; }
cd "$root"
[ -x "$work/aot/sharplm" ] || dotnet publish src/SharpLM.Cli -c Release -r linux-x64 -p:PublishAot=true -o "$work/aot" >/dev/null
[ -f "$work/peer/PeerCli.dll" ] || dotnet publish bench/PeerCli -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -o "$work/peer" >/dev/null
sharplm="$work/aot/sharplm"; peer="$work/peer/PeerCli"
# Inputs: the first MB of Brown (cut at a line end), rank files from the Microsoft.ML.Tokenizers.Data packages, and
# all-MiniLM-L6-v2's vocab.txt (the tool's built-in 'minilm') with the tokenizer.json HF writes for it.
head -c 1000000 "$assets/brown.txt" | sed '$d' > "$work/1mb.txt"
for e in gpt2 cl100k_base o200k_base; do [ -s "$work/$e.tiktoken" ] || "$peer" ranks "$e" "$work/$e.tiktoken"; done
SHARPLM_CACHE="$work/cache" "$sharplm" embed --model minilm --text x >/dev/null 2>&1
cp "$work/cache/minilm/vocab.txt" "$work/vocab.txt"
"$peer" bert-json "$work/vocab.txt" "$work/bert-tokenizer.json"
echo hello > "$work/word.txt"
npm="$assets/npm"
# case | sharplm's tokenizer file | peer name | peer command arguments (after the input file is appended)
cases=(
  "llama3|$npm/tokenizer-llama3/models/tokenizer.json|HF tokenizers|hf $npm/tokenizer-llama3/models/tokenizer.json"
  "qwen3|$npm/tokenizer-qwen3/models/tokenizer.json|HF tokenizers|hf $npm/tokenizer-qwen3/models/tokenizer.json"
  "mistral|$npm/tokenizer-llama2/models/tokenizer.json|HF tokenizers|hf $npm/tokenizer-llama2/models/tokenizer.json"
  "wordpiece (MiniLM)|$work/bert-tokenizer.json|HF tokenizers|hf $work/bert-tokenizer.json"
  "wordpiece (MiniLM)|$work/vocab.txt|Microsoft.ML.Tokenizers|ml-bert $work/vocab.txt"
  "gpt2|$work/gpt2.tiktoken|Microsoft.ML.Tokenizers|ml gpt2"
  "cl100k_base|$work/cl100k_base.tiktoken|Microsoft.ML.Tokenizers|ml cl100k_base"
  "o200k_base|$work/o200k_base.tiktoken|Microsoft.ML.Tokenizers|ml o200k_base"
)
median() { python3 -c 'import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
echo "# bench-cli $(date -u '+%Y-%m-%d %H:%M') UTC, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $rounds rounds x $runs runs per command, alternating; medians of whole-process wall time (s)"
echo
echo "| case | input | peer | sharplm s | peer s | peer / sharplm |"
echo "|---|---|---|---:|---:|---:|"
# race NAME INPUT PEER CMD_SHARPLM CMD_PEER: ROUNDS hyperfine rounds of RUNS runs each, the order alternating by round.
race() {
  local a=() b=() t r
  for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then hyperfine -N -w 1 -r "$runs" --export-json "$work/h.json" "$4" "$5" >/dev/null 2>&1
      read -r -a t <<<"$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(",".join(map(str,r["times"])) for r in d["results"]))' "$work/h.json")"
      a+=(${t[0]//,/ }); b+=(${t[1]//,/ })
    else hyperfine -N -w 1 -r "$runs" --export-json "$work/h.json" "$5" "$4" >/dev/null 2>&1
      read -r -a t <<<"$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(",".join(map(str,r["times"])) for r in d["results"]))' "$work/h.json")"
      b+=(${t[0]//,/ }); a+=(${t[1]//,/ })
    fi
  done
  local ma mb
  ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
  printf '| %s | %s | %s | %.3f | %.3f | %.2fx |\n' "$1" "$2" "$3" "$ma" "$mb" "$(python3 -c "print($mb/$ma)")"
}
for c in "${cases[@]}"; do
  IFS='|' read -r name tok peername peerargs <<<"$c"
  race "$name" "1 MB Brown" "$peername" "$sharplm tokenize --tokenizer $tok --file $work/1mb.txt" "$peer $peerargs $work/1mb.txt"
  race "$name" "one word (start + load)" "$peername" "$sharplm tokenize --tokenizer $tok --file $work/word.txt" "$peer $peerargs $work/word.txt"
done
# Cold start to the first generated token: the bundled model (models/default.gguf), prompt "The jury said", greedy.
model="$root/models/default.gguf"
for th in 1 2; do
  race "generate, first token" "default.gguf, $th thread(s)" "llama.cpp (LLamaSharp)" \
    "$sharplm generate --model $model --prompt 'The jury said' --max-tokens 1 --temperature 0 --threads $th" "$peer llama $model 'The jury said' $th"
done
