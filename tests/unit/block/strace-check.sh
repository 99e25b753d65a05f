#!/usr/bin/env bash
# strace-check.sh SCENARIO: run the scenario under strace and check that the
# backend's host counters equal the syscalls the kernel actually saw.
set -euo pipefail
scenario=$1
if ! command -v strace >/dev/null; then
  echo "SKIP: strace is not installed (apt-get install strace)"; exit 77
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
truncate -s 1M "$tmp/disk.img"
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -o "$tmp/trace" -e trace=openat,pwrite64,pwritev,pwritev2,fdatasync,fsync \
  "$scenario" "$tmp/disk.img" > "$tmp/counters"
cat "$tmp/counters"
# shellcheck disable=SC1090
eval "$(tr ' ' '\n' < "$tmp/counters" | sed 's/^/ours_/')"

# Data writes: pwritev/pwritev2 that wrote bytes (the RWF_DSYNC probe writes 0).
seen_writes=$(grep -E 'pwritev2?\(' "$tmp/trace" | grep -vcE '= 0$' || true)
seen_rwf=$(grep -E 'pwritev2\(.*RWF_DSYNC' "$tmp/trace" | grep -vcE '= 0$' || true)
seen_fdatasync=$(grep -cE 'fdatasync\(' "$tmp/trace" || true)
seen_fsync=$(grep -cE '(^|[^a])fsync\(' "$tmp/trace" || true)
# Writes on the descriptor opened with O_DSYNC.
dsync_fds=$(grep -E 'openat\(.*O_DSYNC' "$tmp/trace" | sed -E 's/.*= ([0-9]+)$/\1/' | sort -u | tr '\n' '|' | sed 's/|$//')
seen_dsync=0
if [ -n "$dsync_fds" ]; then
  seen_dsync=$(grep -E "pwritev\((${dsync_fds}), " "$tmp/trace" | grep -vcE '= 0$' || true)
fi
echo "strace: writes=$seen_writes rwf_dsync=$seen_rwf fdatasync=$seen_fdatasync fsync=$seen_fsync dsync=$seen_dsync"

fail=0
expect() { if [ "$2" != "$3" ]; then echo "MISMATCH $1: counters say $2, strace saw $3"; fail=1; fi; }
expect host_writes "$ours_host_writes" "$seen_writes"
expect host_rwf_dsync_writes "$ours_host_rwf_dsync_writes" "$seen_rwf"
expect host_fdatasync "$ours_host_fdatasync" "$seen_fdatasync"
expect host_dsync_writes "$ours_host_dsync_writes" "$seen_dsync"
expect fsync 0 "$seen_fsync"
# The scenario itself fixes the expected numbers, so a counter that drifts with strace still fails.
expect scenario_writes 8 "$seen_writes"
expect scenario_fdatasync 2 "$seen_fdatasync"
expect scenario_rwf 2 "$seen_rwf"
expect scenario_dsync 2 "$seen_dsync"
exit $fail
