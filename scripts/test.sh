#!/usr/bin/env bash
# test.sh - the whole test suite: install what is missing, build with
# warnings as errors under ASan+UBSan, run every meson test suite, then
# a short run of every fuzz target (the block at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
builddir=${BUILDDIR:-build-test}
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" -Db_sanitize=address,undefined -Dwerror=true -Db_lundef=false >/dev/null
fi
meson compile -C "$builddir"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 "$@" || status=$?
# Fuzz smoke (docs/fuzzing.md): build the libFuzzer targets with clang in build-fuzz, run each one
# for FUZZ_SECONDS (default 15; seven targets stay under 3 minutes of fuzzing) from a fixed seed,
# and run every kept input (tests/fuzz/corpus, tests/fuzz/regress).  FUZZ_SECONDS=0 (or naming a suite) skips it.
# Each target's result joins the meson results in the summary (fuzz-TARGET).
fuzz_results=$(mktemp)
trap 'rm -f "$fuzz_results"' EXIT
fuzz_seconds=${FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" != 0 ] && [ $# -eq 0 ]; then   # not when one suite was asked for
  FUZZ_RESULTS=$fuzz_results bash scripts/fuzz.sh --smoke "$fuzz_seconds" || status=1
fi
# Every skip with its reason (a skip without one counts as failed), then the totals.
python3 scripts/test-summary.py "$builddir/meson-logs/testlog.json" "$fuzz_results" || status=1
exit $status

