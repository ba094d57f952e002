#!/usr/bin/env bash
# The test command (README): fetches test assets if missing, runs every test project, and ends with one plain
# line 'N passed, N failed' counted from the TRX results. Extra arguments go to 'dotnet test' (e.g. --filter).
# SHARPLM_LONG_TESTS=1 turns on the long runs (CI runs their small form by default).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/fetch-test-assets.sh >/dev/null || { echo "fetching test assets failed"; echo "0 passed, 1 failed"; exit 1; }
results="$root/.cache/testresults"
rm -rf "$results"
mkdir -p "$results"
dotnet test SharpLM.slnx -c Release --logger "trx" --results-directory "$results" "$@"
rc=$?
# The kernel tests again with AVX-512 and then all hardware intrinsics disabled, so the AVX2 and scalar fallback
# paths run in CI too (their .trx files land in the same folder and count in the totals below).
DOTNET_EnableAVX512F=0 dotnet test tests/SharpLM.Tests -c Release --no-build --filter "FullyQualifiedName~SharpLM.Tests.Kernels" --logger "trx;LogFileName=kernels-noavx512.trx" --results-directory "$results" || rc=$?
DOTNET_EnableHWIntrinsic=0 dotnet test tests/SharpLM.Tests -c Release --no-build --filter "FullyQualifiedName~SharpLM.Tests.Kernels" --logger "trx;LogFileName=kernels-nointrinsics.trx" --results-directory "$results" || rc=$?
# scratch folders of test processes that ended without running their exit handler (a test host stopped by the runner):
# deleted here, so a run leaves only the named caches behind
for d in "${TMPDIR:-/tmp}"/sharplm-tests/run-*; do
  [ -d "$d" ] || continue
  pid=$(basename "$d" | cut -d- -f2)
  kill -0 "$pid" 2>/dev/null || rm -rf "$d"
done
passed=0; failed=0; skipped=0
for f in "$results"/*.trx; do
  [ -f "$f" ] || continue
  c=$(grep -o '<Counters [^>]*>' "$f" | head -1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$c"); passed=$((passed + ${p:-0}))
  x=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$c"); failed=$((failed + ${x:-0}))
  t=$(sed -n 's/.* total="\([0-9]*\)".*/\1/p' <<<"$c"); e=$(sed -n 's/.* executed="\([0-9]*\)".*/\1/p' <<<"$c")
  skipped=$((skipped + ${t:-0} - ${e:-0}))  # xunit's skipped tests are counted in total but not executed
done
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; echo "dotnet test exited $rc (build error or crashed test host)"; fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
