#!/usr/bin/env bash
# test.sh - the whole test suite: install what is missing, build with
# warnings as errors under ASan+UBSan, and run every meson test suite.
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
# Every skip with its reason (a skip without one counts as failed), then the totals.
python3 scripts/test-summary.py "$builddir/meson-logs/testlog.json" || status=1
exit $status

