#!/usr/bin/env bash
# Training tokens/s: SharpLM (sharplm train) vs PyTorch eager CPU (tools/train_bench.py), same tiny LLaMA
# (dim 128, 4 layers, 4 heads, 2 KV heads, ffn 352, vocab 256 bytes, tied head), batch 8 x 128, AdamW + clipping,
# float32. Peers alternate, REPEAT rounds per thread count; prints the median of each.
# Needs: dotnet build src/SharpLM.Cli -c Release; Debian python3-torch (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-3}
STEPS=${STEPS:-20}
DATA=$(mktemp --suffix .txt)
OUT=$(mktemp -d)
trap 'rm -rf "$DATA" "$OUT"' EXIT
/usr/bin/python3 -c "import random; random.seed(1); print(''.join(random.choice('abcdefghij klmnopqrstuvwxyz.\n') for _ in range(400000)))" > "$DATA"
CLI=src/SharpLM.Cli/bin/Release/net10.0/SharpLM.Cli.dll
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for th in 1 2; do
  : > "$OUT/torch" ; : > "$OUT/sharp"
  for r in $(seq "$REPEAT"); do
    /usr/bin/python3 tools/train_bench.py --threads $th --steps "$STEPS" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['tokens_per_s'])" >> "$OUT/torch"
    dotnet "$CLI" train --data "$DATA" --out "$OUT/run" --dim 128 --layers 4 --heads 4 --kv-heads 2 --ffn 352 --context 128 \
      --batch 8 --steps $((STEPS + 3)) --eval-every 0 --eval-batches 1 --threads $th 2>&1 >/dev/null \
      | grep -o '[0-9,]* tok/s' | tail -1 | tr -d ', tok/s' >> "$OUT/sharp"
  done
  t=$(median < "$OUT/torch"); s=$(median < "$OUT/sharp")
  echo "threads $th: sharplm $s tok/s, pytorch $t tok/s, ratio $(/usr/bin/python3 -c "print(f'{$s/$t:.2f}')") (medians of $REPEAT)"
done
