#!/usr/bin/env bash
# Coverage-guided fuzzing of one reader for a bounded time:
#   scripts/fuzz.sh TARGET SECONDS        TARGET: gguf safetensors onnx tokenizer-json tiktoken vocab-txt config-json
#                                         chat-template server-request, or 'all' (SECONDS each)
# Builds fuzz/SharpLM.Fuzz into .cache/fuzz/bin, instruments SharpLM.dll, SharpLM.Tokenizers.dll and SharpLM.Server.dll
# with SharpFuzz (the 'sharpfuzz' tool from NuGet, installed into .cache/fuzz/tools), and runs AFL++ (Debian package
# afl++) from the seeds of tests/fuzz/TARGET/seeds. Every crash or hang AFL++ finds is copied to
# tests/fuzz/TARGET/found/ and replayed at the end; the script exits 1 if there is any. Triage: fix the reader that owns
# the input, then move the file into tests/fuzz/TARGET/regressions/ (the test suite replays it from then on).
# Without afl-fuzz the script says so and only replays the corpus (seeds, regressions, survive) through the target.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
targets="gguf safetensors onnx tokenizer-json tiktoken vocab-txt config-json chat-template server-request"
target="${1:-}"; seconds="${2:-60}"
if [ -z "$target" ]; then echo "usage: scripts/fuzz.sh TARGET|all SECONDS (targets: $targets)"; exit 2; fi
[ "$target" = all ] && list="$targets" || list="$target"
bin="$root/.cache/fuzz/bin"
dotnet build fuzz/SharpLM.Fuzz -c Release -o "$bin" -p:UseAppHost=false >/dev/null || { echo "building the fuzz harness failed"; exit 1; }
fuzzer="$bin/SharpLM.Fuzz.dll"
# replays run an uninstrumented copy: SharpFuzz's instrumented assemblies write to AFL++'s shared memory from their
# module initializers, and outside afl-fuzz that memory does not exist (an access violation before any input is read)
plain="$root/.cache/fuzz/plain"
rm -rf "$plain"; cp -r "$bin" "$plain"
replayer="$plain/SharpLM.Fuzz.dll"
status=0
if command -v afl-fuzz >/dev/null 2>&1; then
  tools="$root/.cache/fuzz/tools"
  if [ ! -x "$tools/sharpfuzz" ]; then
    dotnet tool install --tool-path "$tools" SharpFuzz.CommandLine >/dev/null || echo "warning: could not install the sharpfuzz tool; AFL++ runs without coverage feedback"
  fi
  if [ -x "$tools/sharpfuzz" ]; then
    for dll in SharpLM.Tokenizers.dll SharpLM.dll SharpLM.Server.dll; do "$tools/sharpfuzz" "$bin/$dll" >/dev/null 2>&1 || true; done
  fi
  export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
  for t in $list; do
    out="$root/.cache/fuzz/out/$t"; rm -rf "$out"; mkdir -p "$out"
    echo "fuzzing $t for $seconds s (AFL++)"
    timeout $((seconds + 60)) afl-fuzz -i "tests/fuzz/$t/seeds" -o "$out" -t 5000 -m none -V "$seconds" -- dotnet "$fuzzer" "$t" >"$out/afl.log" 2>&1
    grep -h -E "^(execs_done|paths_total|corpus_count|saved_crashes|unique_crashes|saved_hangs|unique_hangs)" "$out"/default/fuzzer_stats 2>/dev/null | tr '\n' ' '; echo
    found=$(find "$out"/default/crashes "$out"/default/hangs -type f -name 'id:*' 2>/dev/null)
    if [ -n "$found" ]; then
      mkdir -p "tests/fuzz/$t/found"
      for f in $found; do cp "$f" "tests/fuzz/$t/found/$(basename "$(dirname "$f")")-$(basename "$f" | tr ':,' '__')"; done
      echo "$t: $(echo "$found" | wc -l) crashes/hangs copied to tests/fuzz/$t/found/"
      dotnet "$replayer" "$t" --replay "tests/fuzz/$t/found" | tail -1
      status=1
    fi
  done
else
  echo "afl-fuzz not found (Debian package afl++): replaying the corpus only"
  for t in $list; do
    for d in seeds regressions survive; do
      [ -d "tests/fuzz/$t/$d" ] || continue
      printf '%s/%s: ' "$t" "$d"; dotnet "$replayer" "$t" --replay "tests/fuzz/$t/$d" | tail -1 || status=1
    done
  done
fi
exit $status
