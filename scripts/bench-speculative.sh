#!/usr/bin/env bash
# Speculative decoding (prompt lookup) against plain greedy decoding, whole `sharplm generate` processes, alternated.
#   bash scripts/bench-speculative.sh [ROUNDS] [THREADS]
# Cases: the default model on Brown held-out prose (needs scripts/fetch-test-assets.sh), and, when it exists, the 134m
# SmolLM-shaped Q8_0 model the decode bench writes ($TMPDIR/sharplm-bench/profile-134m-Q8_0.gguf: made by
# `dotnet run -c Release --project bench/SharpLM.Benchmarks -- decode-profile 134m Q8_0 1 8`) on a prompt that repeats.
# Prints one line per run: case, mode, decode tok/s, decode steps, (accepted, drafted, tokens per step).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}" threads="${2:-1}"
dotnet build src/SharpLM.Cli -c Release >/dev/null
S=(dotnet src/SharpLM.Cli/bin/Release/net10.0/SharpLM.Cli.dll)
big="${TMPDIR:-/tmp}/sharplm-bench/profile-134m-Q8_0.gguf"
ids="$(python3 -c "import random; random.seed(3); a=[random.randrange(1,49152) for _ in range(40)]; print(' '.join(map(str,a+a+a[:10])))")"
run() { # name model prompt-args...
  local name=$1 model=$2; shift 2
  for ((i = 0; i < rounds; i++)); do
    for mode in plain spec; do
      extra=(); [ "$mode" = spec ] && extra=(--speculative)
      "${S[@]}" generate --model "$model" "$@" --max-tokens 96 --temperature 0 --ignore-eos --threads "$threads" "${extra[@]}" --json |
        python3 -c "import json,sys; d=json.load(sys.stdin); s=d.get('speculative'); print('$name', '$mode', round(d['decode_tokens_per_s'],1), d['decode_steps'], s and (s['accepted_tokens'], s['drafted_tokens'], round(s['tokens_per_step'],2)))"
    done
  done
}
run default-brown models/default.gguf --prompt "$(head -c 400 .cache/assets/brown-heldout.txt)"
[ -f "$big" ] && run 134m-repeat "$big" --prompt-ids "$ids"
