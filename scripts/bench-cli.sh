#!/usr/bin/env bash
# Whole-process benchmarks of the installed product against its peers (docs/BENCHMARKS.md, "CLI" section):
#   tokenize: 'sharplm tokenize --tokenizer T --file 1MB.txt' (native-AOT binary) against the same work done by
#             HF tokenizers (Tokenizers.DotNet) and Microsoft.ML.Tokenizers in their own processes
#             (bench/PeerCli, ReadyToRun), each printing the ids of the whole file;
#   load:     the same with a one-word text: start-up + loading the tokenizer file;
#   generate: process start to the first greedy token, AOT 'sharplm generate --max-tokens 1' against llama.cpp
#             (LLamaSharp's native library, bench/PeerCli llama) on the same GGUF: the bundled default model and a
#             model with llama3's 128k vocabulary (made here: 'sharplm train' for one step with llama3's
#             tokenizer.json, exported, quantized to Q8_0), so loading a real vocabulary is part of the start;
#   embed:    'sharplm embed --model minilm --file S --normalize' (all-MiniLM-L6-v2, one embedding per line) on 100
#             Brown sentences, batch 1 and 32, 1 and 2 threads, against ONNX Runtime on the same model.onnx (bench/PeerCli
#             ort-embed: HF tokenizers on the same vocabulary, sorted by length and padded per batch, mean pooling, L2).
#             Before timing, every sentence's two embeddings must agree (cosine > 0.9999).
# Before timing, each tokenize case's ids are compared with the peer's (whole processes, the same 1 MB); that first run
# also makes sharplm's cache entry for a large tokenizer.json ($SHARPLM_CACHE/tokenizers), which the timed runs then use;
# a "cache off" row times such a file's load without it.
# hyperfine (Debian) times the processes; ROUNDS rounds, each round runs every command RUNS times in the order
# sharplm, peer, then peer, sharplm (alternating), medians over all runs. Usage: bash scripts/bench-cli.sh [ROUNDS] [RUNS]
# [tokenize|generate|embed] (default all).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-3}"; runs="${2:-3}"; only="${3:-}"
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
[ -s "$work/1mb.txt" ] || head -c 1000000 "$assets/brown.txt" | sed '$d' > "$work/1mb.txt"
for e in gpt2 cl100k_base o200k_base; do [ -s "$work/$e.tiktoken" ] || "$peer" ranks "$e" "$work/$e.tiktoken"; done
if [ ! -s "$work/bert-tokenizer.json" ]; then
  SHARPLM_CACHE="$work/cache" "$sharplm" embed --model minilm --text x >/dev/null 2>&1
  cp "$work/cache/minilm/vocab.txt" "$work/vocab.txt"
  "$peer" bert-json "$work/vocab.txt" "$work/bert-tokenizer.json"
fi
[ -s "$work/word.txt" ] || echo hello > "$work/word.txt"
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
echo "# $rounds rounds x $runs runs per command, alternating; medians of whole-process wall time (s) and of each round's mean user+system CPU time (s); (noisy): a side's slowest run > 1.5x its fastest"
echo
echo "| case | input | peer | sharplm s | peer s | peer / sharplm (wall) | sharplm CPU s | peer CPU s | peer / sharplm (CPU) |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
# times_of H.JSON: "wall,wall,... wall,wall,... cpu1 cpu2": each command's wall times, then its mean user+system CPU s.
times_of() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(" ".join(",".join(map(str,x["times"])) for x in r), " ".join(str(x["user"]+x["system"]) for x in r))' "$1"; }
# race NAME INPUT PEER CMD_SHARPLM CMD_PEER: ROUNDS hyperfine rounds of RUNS runs each, the order alternating by round.
race() {
  local a=() b=() ca=() cb=() t r
  for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then hyperfine -N -w 1 -r "$runs" --export-json "$work/h.$$.json" "$4" "$5" >/dev/null 2>&1
      read -r -a t <<<"$(times_of "$work/h.$$.json")"
      a+=(${t[0]//,/ }); b+=(${t[1]//,/ }); ca+=("${t[2]}"); cb+=("${t[3]}")
    else hyperfine -N -w 1 -r "$runs" --export-json "$work/h.$$.json" "$5" "$4" >/dev/null 2>&1
      read -r -a t <<<"$(times_of "$work/h.$$.json")"
      b+=(${t[0]//,/ }); a+=(${t[1]//,/ }); cb+=("${t[2]}"); ca+=("${t[3]}")
    fi
  done
  local ma mb noisy
  ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
  # noisy: either side's slowest run is more than 1.5x its fastest (a neighbour took the core)
  noisy=$(python3 -c 'import sys; v=[float(x) for x in sys.argv[2:]]; a=v[:int(sys.argv[1])]; b=v[int(sys.argv[1]):]; print(" (noisy)" if max(a)>1.5*min(a) or max(b)>1.5*min(b) else "")' "${#a[@]}" "${a[@]}" "${b[@]}")
  local mca mcb
  mca=$(median "${ca[@]}"); mcb=$(median "${cb[@]}")
  printf '| %s | %s | %s | %.3f | %.3f | %.2fx%s | %.3f | %.3f | %.2fx |\n' "$1" "$2" "$3" "$ma" "$mb" "$(python3 -c "print($mb/$ma)")" "$noisy" \
    "$mca" "$mcb" "$(python3 -c "print($mcb/$mca)")"
}
for c in "${cases[@]}"; do
  [ -z "$only" ] || [ "$only" = tokenize ] || break
  IFS='|' read -r name tok peername peerargs <<<"$c"
  # twice: the first run parses the file (and makes its cache entry when it has one), the second loads from the entry
  "$sharplm" tokenize --tokenizer "$tok" --file "$work/1mb.txt" > "$work/ids.sharplm.first"
  "$sharplm" tokenize --tokenizer "$tok" --file "$work/1mb.txt" > "$work/ids.sharplm"
  # shellcheck disable=SC2086
  "$peer" $peerargs "$work/1mb.txt" > "$work/ids.peer"
  if cmp -s "$work/ids.sharplm" "$work/ids.peer" && cmp -s "$work/ids.sharplm.first" "$work/ids.peer"; then same="ids equal"
  else same="ids DIFFER ($(wc -w < "$work/ids.sharplm.first") and $(wc -w < "$work/ids.sharplm") vs $(wc -w < "$work/ids.peer") tokens)"; fi
  echo "<!-- $name vs $peername: $same -->"
  race "$name" "1 MB Brown" "$peername" "$sharplm tokenize --tokenizer $tok --file $work/1mb.txt" "$peer $peerargs $work/1mb.txt"
  race "$name" "one word (start + load)" "$peername" "$sharplm tokenize --tokenizer $tok --file $work/word.txt" "$peer $peerargs $work/word.txt"
  # A tokenizer.json over 1 MB loads from sharplm's cache after its first use (the runs above): this row is the load
  # without it, as on a first use.
  if [[ "$tok" == *.json ]] && [ "$(stat -c %s "$tok")" -ge 1048576 ]; then
    race "$name" "one word, cache off (a first load)" "$peername" "env SHARPLM_TOKENIZER_CACHE=0 $sharplm tokenize --tokenizer $tok --file $work/word.txt" "$peer $peerargs $work/word.txt"
  fi
done
# Cold start to the first generated token, prompt "The jury said", greedy.
if [ -z "$only" ] || [ "$only" = generate ]; then
big="$work/llama3-vocab-q8_0.gguf"
if [ ! -s "$big" ]; then
  "$sharplm" train --data "$work/1mb.txt" --out "$work/train-llama3" --tokenizer "$npm/tokenizer-llama3/models/tokenizer.json" \
    --dim 512 --layers 8 --heads 8 --kv-heads 2 --context 32 --batch 1 --steps 1 --export-gguf "$work/llama3-vocab-f32.gguf" >/dev/null
  "$sharplm" quantize --model "$work/llama3-vocab-f32.gguf" --to "$big" --type q8_0 --quiet
fi
for model in "$root/models/default.gguf" "$big"; do
  for th in 1 2; do
    race "generate, first token" "$(basename "$model"), $th thread(s)" "llama.cpp (LLamaSharp)" \
      "$sharplm generate --model $model --prompt 'The jury said' --max-tokens 1 --temperature 0 --threads $th" "$peer llama $model 'The jury said' $th"
  done
done
fi
# Sentence embeddings, whole processes: the same 100 sentences, the same model file, embeddings compared first.
if [ -z "$only" ] || [ "$only" = embed ]; then
  sents="$work/sentences.txt"
  # (awk stops by itself: `| head` would kill it with SIGPIPE, which pipefail turns into the script's failure)
  [ -s "$sents" ] || awk 'NF >= 3 { print; if (++n == 100) exit }' "$work/1mb.txt" > "$sents"
  onnx="$work/cache/minilm/model.onnx"   # what --model minilm extracts (the same bytes in every cache)
  for th in 1 2; do
    for b in 1 32; do
      "$sharplm" embed --model minilm --file "$sents" --normalize --threads "$th" --batch "$b" > "$work/emb.sharplm"
      "$peer" ort-embed "$onnx" "$work/bert-tokenizer.json" "$sents" "$th" "$b" > "$work/emb.peer"
      agree=$(python3 - "$work/emb.sharplm" "$work/emb.peer" <<'PY'
import sys, math
a = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
b = [list(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
if len(a) != len(b): print(f"DIFFER: {len(a)} vs {len(b)} embeddings"); sys.exit()
cos = [sum(x * y for x, y in zip(u, v)) / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v)) for u, v in zip(a, b)]
worst = min(range(len(cos)), key=lambda i: cos[i])
print(("agree" if cos[worst] > 0.9999 else "DIFFER") + f": {len(a)} embeddings, min cosine {cos[worst]:.7f} (line {worst + 1})")
PY
)
      echo "<!-- embed batch $b, $th thread(s) vs ONNX Runtime: $agree -->"
      case "$agree" in agree*) ;; *) echo "embeddings differ, not timing: $agree"; exit 1 ;; esac
      race "embed (all-MiniLM-L6-v2)" "100 Brown sentences, batch $b, $th thread(s)" "ONNX Runtime" \
        "$sharplm embed --model minilm --file $sents --normalize --threads $th --batch $b" "$peer ort-embed $onnx $work/bert-tokenizer.json $sents $th $b"
    done
  done
fi
