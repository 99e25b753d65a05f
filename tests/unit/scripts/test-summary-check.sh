#!/usr/bin/env bash
# test-summary-check.sh SUMMARY_PY - scripts/test-summary.py on a made-up
# meson testlog.json: every skip is printed with its reason, a skip without a
# reason counts as failed, and the totals line keeps its exact form.
set -u
summary=$1
results=()   # one word a check: ok or FAIL
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# check NAME WANT_RC WANT_OUTPUT: run the summary on $log and compare.
check() {
  local name=$1 want_rc=$2 want=$3 out rc
  out=$(python3 "$summary" "$log" 2>&1)
  rc=$?
  [ "$rc" -eq "$want_rc" ] && [ "$out" = "$want" ] && { results+=(ok); return; }
  results+=(FAIL)
  printf 'FAIL: %s: rc=%s (want %s)\n--- got\n%s\n--- want\n%s\n' "$name" "$rc" "$want_rc" "$out" "$want"
}

# A testlog.json line per argument group: NAME RESULT STDOUT STDERR (JSON string bodies).
record() {
  printf '{"name": "%s", "result": "%s", "stdout": "%s", "stderr": "%s"}\n' "$1" "$2" "$3" "$4"
}

{
  record a-ok OK "all good" ""
  record b-xfail EXPECTEDFAIL "" ""
  record guest-vhost-blk SKIP 'booting...\nSKIP: qemu-system-x86_64 is not installed and could not be' ""
  record block-strace SKIP "" "SKIP: strace is not installed (apt-get install strace)"
  record seq-demo SKIP "SKIP demo.seq: the machine has no drive d0 (device model not built?)" ""
  record c-fail FAIL "" "assertion failed"
  record d-timeout TIMEOUT "" ""
} >"$log"
check "skips with reasons" 1 "SKIP guest-vhost-blk: qemu-system-x86_64 is not installed and could not be
SKIP block-strace: strace is not installed (apt-get install strace)
SKIP seq-demo: demo.seq: the machine has no drive d0 (device model not built?)
2 passed, 2 failed, 3 skipped"

{
  record a-ok OK "" ""
  record guest-compare SKIP "compared nothing" ""
} >"$log"
check "a skip without a reason fails" 1 "FAIL guest-compare: skipped without printing a reason
1 passed, 1 failed, 0 skipped"

{
  record a-ok OK "" ""
  record guest-vhost-scsi SKIP "SKIP: no kvm" ""
} >"$log"
check "skips alone do not fail" 0 "SKIP guest-vhost-scsi: no kvm
1 passed, 0 failed, 1 skipped"

passed=$(grep -o ok <<<"${results[*]}" | wc -l)
failed=$(grep -o FAIL <<<"${results[*]}" | wc -l)
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
