#!/usr/bin/env bash
# fuzz.sh - build and run the libFuzzer targets of tests/fuzz (docs/fuzzing.md).
#
#   scripts/fuzz.sh TARGET SECONDS [LIBFUZZER ARGS...]  one long run (TARGET "all": each in turn)
#   scripts/fuzz.sh --smoke SECONDS                     every target SECONDS each, fixed seed, then
#                                                       every kept input (corpus/, regress/); CI
#   scripts/fuzz.sh --regress                           only the kept inputs, no fuzzing
#   scripts/fuzz.sh --list                              the target names
#
# Builds in build-fuzz (CC=clang, -Dfuzzing=true, ASan+UBSan) unless FUZZ_BUILDDIR says otherwise.
# A long run grows its corpus in FUZZ_BUILDDIR/corpus/TARGET (seeded from tests/fuzz/corpus/TARGET;
# copy the interesting finds back by hand) and writes crashes to FUZZ_BUILDDIR/artifacts/TARGET/.
# Findings listed in tests/fuzz/known.txt are passed in VD_FUZZ_KNOWN so that runs look for new ones.
# Leaks are checked when a process exits (LeakSanitizer), not after each new input (-detect_leaks=0):
# an input that starts a thread-pool worker leaves GLib's thread record unreachable to LSan for a while.
# Long runs go at nice 19 (FUZZ_NICE) not to starve a shared machine; the smoke runs at FUZZ_NICE or 0.
# Exit status: 0 when nothing crashed, 1 when a target crashed or an oracle failed, 2 on bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."
src=tests/fuzz
builddir=${FUZZ_BUILDDIR:-build-fuzz}
targets=(ata scsi virtio-blk virtio-scsi vhost-user options qtest qcow2 migration)

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# Configure (once) and build the fuzzers with clang.
build() {
  if ! command -v clang >/dev/null; then
    echo "fuzz.sh: clang not found (scripts/install-deps.sh installs it)" >&2
    exit 1
  fi
  if [ ! -f "$builddir/build.ninja" ]; then
    # -Dwerror=false: gcc 12 is the warning reference; clang also warns about code gcc accepts
    # (positional initializers that leave a field out), which must not stop the fuzzers.
    CC=clang meson setup "$builddir" -Dfuzzing=true -Dtests=false -Dwerror=false \
      -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
  fi
  ninja -C "$builddir" >/dev/null
}

# Is $1 a target name?
known_target() {
  local t
  for t in "${targets[@]}"; do [ "$t" = "$1" ] && return 0; done
  return 1
}

export VD_FUZZ_KNOWN
VD_FUZZ_KNOWN=$(grep -v '^#' "$src/known.txt" | grep . | paste -sd, - || true)   # none listed: empty
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# run TARGET SECONDS [ARGS...]: fuzz one target from its seeds for SECONDS.
run() {
  local t=$1 secs=$2
  shift 2
  local corpus="$builddir/corpus/$t" art="$builddir/artifacts/$t/"
  mkdir -p "$corpus" "$art"
  echo "fuzz.sh: $t for ${secs}s"
  nice -n "${FUZZ_NICE:-19}" "$builddir/tests/fuzz/fuzz-$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -detect_leaks=0 -artifact_prefix="$art" -print_final_stats=1 "$@" "$corpus" "$src/corpus/$t" 2>"$builddir/fuzz-$t.log" || {
      grep -E "FUZZ ORACLE|ERROR|SUMMARY|runtime error|Test unit written" "$builddir/fuzz-$t.log" >&2 || true
      echo "fuzz.sh: $t FAILED (log: $builddir/fuzz-$t.log)" >&2
      return 1
    }
  grep -E "^stat::number_of_executed_units|^stat::average_exec_per_sec" "$builddir/fuzz-$t.log" |
    sed "s/^/fuzz.sh: $t /"
}

# regress TARGET: every kept input of TARGET, once each (no fuzzing).
regress() {
  local t=$1 files=()
  shopt -s nullglob
  files=("$src/corpus/$t"/* "$src/regress/$t"/*)
  shopt -u nullglob
  [ ${#files[@]} -eq 0 ] && return 0
  "$builddir/tests/fuzz/fuzz-$t" -runs=1 "${files[@]}" >"$builddir/regress-$t.log" 2>&1 || {
    grep -E "FUZZ ORACLE|ERROR|SUMMARY|runtime error|^Running:" "$builddir/regress-$t.log" | tail -5 >&2
    echo "fuzz.sh: $t regression inputs FAILED (log: $builddir/regress-$t.log)" >&2
    return 1
  }
  echo "fuzz.sh: $t: ${#files[@]} kept inputs pass"
}

[ $# -ge 1 ] || usage
case $1 in
  --list)
    printf '%s\n' "${targets[@]}"
    ;;
  --regress)
    build
    status=0
    for t in "${targets[@]}"; do regress "$t" || status=1; done
    exit $status
    ;;
  --smoke)
    [ $# -eq 2 ] && [[ $2 =~ ^[0-9]+$ ]] || usage
    # FUZZ_RESULTS: append one testlog-style JSON line per target (scripts/test-summary.py reads it).
    record() { [ -z "${FUZZ_RESULTS:-}" ] || printf '{"name": "fuzz-%s", "result": "%s"}\n' "$1" "$2" >>"$FUZZ_RESULTS"; }
    ( build ) || { record build FAIL; exit 1; }
    status=0
    for t in "${targets[@]}"; do
      if regress "$t" && FUZZ_NICE=${FUZZ_NICE:-0} run "$t" "$2" -seed=1; then
        record "$t" OK
      else
        record "$t" FAIL
        status=1
      fi
    done
    exit $status
    ;;
  -*)
    usage
    ;;
  *)
    [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] || usage
    t=$1 secs=$2
    shift 2
    if [ "$t" = all ]; then
      list=("${targets[@]}")
    elif known_target "$t"; then
      list=("$t")
    else
      echo "fuzz.sh: no target '$t' (one of: ${targets[*]}, all)" >&2
      exit 2
    fi
    build
    status=0
    for x in "${list[@]}"; do run "$x" "$secs" "$@" || status=1; done
    exit $status
    ;;
esac
