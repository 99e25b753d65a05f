#!/usr/bin/env bash
# test-tool-cli.sh TOOL PATH [VDISK-VMM] - the command-line convention (system/cmdline.h) of
# vdisk-seq, vdisk-bench and vdisk-crashtest: --help and --version exit 0, a bad
# command line exits 2 with one line naming the option, a run-time failure
# (a missing file) exits 1 with one line naming it.  vdisk-bench also: SIGTERM and
# SIGHUP remove its temporary image.  vdisk-seq also: how it finds
# vdisk-vmm, and that a VMM that fails to start ends it with 1, not an abort.
set -u
tool=$1
bin=$2
vmm=${3:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
pass=0

# check CODE OUT-PATTERN ERR-PATTERN CMD...: the exit code; for a refusal
# (exit 1 or 2) exactly one line on stderr matching ERR-PATTERN and nothing on
# stdout; for exit 0 a line of stdout matching OUT-PATTERN.
check() {
  local code=$1 opat=$2 epat=$3
  shift 3
  out=$("$@" 2>"$dir/err")
  rc=$?
  err=$(cat "$dir/err")
  if [ "$code" -ne 0 ]; then
    ok=$([ -z "$out" ] && [ "$(wc -l <<<"$err")" -eq 1 ] && grep -q -- "$epat" <<<"$err" && echo y)
  else
    ok=$(grep -q -- "$opat" <<<"$out" && echo y)
  fi
  if [ "$rc" -eq "$code" ] && [ "$ok" = y ]; then
    pass=$((pass + 1))
  else
    echo "FAIL: $* -> rc=$rc (want $code), stdout: ${out:0:300}, stderr: $err"
    fails=$((fails + 1))
  fi
}

# expect CODE PATTERN ARGS...: check the tool with ARGS (PATTERN for stdout or stderr by CODE).
expect() {
  local code=$1 pat=$2
  shift 2
  check "$code" "$pat" "$pat" "$bin" "$@"
}

# The four cases every tool has; MISSING-ARGS name a file that does not exist.
common() {
  expect 0 "^Usage: $tool " --help
  expect 0 "^Usage: $tool " -h
  expect 0 "^$tool (vdisk) [0-9][0-9.]*$" --version
  expect 2 "^$tool: unknown option '--bogus' (see --help)$" --bogus
}

case $tool in
vdisk-seq)
  common
  expect 2 "^vdisk-seq: no sequence file given (see --help)$"
  expect 2 "^vdisk-seq: option '--vmm' needs a value" --vmm
  expect 2 "^vdisk-seq: option '--narrate' is given twice" --narrate --narrate x.seq
  expect 1 "^vdisk-seq: .*$dir/none.seq.*: No such file or directory$" "$dir/none.seq"
  echo 'info => OK*' >"$dir/ok.seq"
  expect 0 "^PASS $dir/ok.seq (1 commands)$" "$dir/ok.seq"
  # A VMM that refuses its arguments: its own line, then one line from vdisk-seq, exit 1.
  check 1 "" "^vdisk-seq: the VMM closed its output (it exited with status 2)" \
    bash -c '"$0" "$1" --bogus-vmm-option 2>&1 >/dev/null | grep -v "^vdisk-vmm:" >&2; exit ${PIPESTATUS[0]}' \
    "$bin" "$dir/ok.seq"
  # Where vdisk-vmm is found: the build tree's for the uninstalled runner (the command
  # docs/guest-drivers/ide.md shows), beside the runner, on PATH, or nowhere (one line, exit 1).
  check 0 "^PASS" "" env -u VDISK_VMM PATH=/usr/bin:/bin "$bin" "$dir/ok.seq"
  mkdir -p "$dir/beside" "$dir/alone" "$dir/path"
  cp "$bin" "$dir/beside/vdisk-seq"
  cp "$bin" "$dir/alone/vdisk-seq"
  ln -s "$(realpath "$vmm")" "$dir/beside/vdisk-vmm"
  ln -s "$(realpath "$vmm")" "$dir/path/vdisk-vmm"
  check 0 "^PASS" "" env -u VDISK_VMM PATH=/usr/bin:/bin "$dir/beside/vdisk-seq" "$dir/ok.seq"
  check 0 "^PASS" "" env -u VDISK_VMM PATH="$dir/path:/usr/bin:/bin" "$dir/alone/vdisk-seq" "$dir/ok.seq"
  check 1 "" "^vdisk-seq: cannot find vdisk-vmm: not beside $dir/alone/vdisk-seq and not on PATH" \
    env -u VDISK_VMM PATH=/usr/bin:/bin "$dir/alone/vdisk-seq" "$dir/ok.seq"
  # VDISK_VMM overrides the one beside it, --vmm overrides VDISK_VMM.
  check 1 "" "^vdisk-seq: cannot start $dir/nope: " env VDISK_VMM="$dir/nope" "$dir/beside/vdisk-seq" "$dir/ok.seq"
  check 0 "^PASS" "" env VDISK_VMM="$dir/nope" "$dir/beside/vdisk-seq" --vmm "$vmm" "$dir/ok.seq"
  ;;
vdisk-bench)
  common
  expect 2 "^vdisk-bench: option '--size' needs a value" --size
  expect 2 "^vdisk-bench: --size 1000: " --size 1000
  expect 2 "^vdisk-bench: --seconds 0: " --seconds 0
  expect 2 "^vdisk-bench: --rounds '0': expected a number from 1 to 25$" --rounds 0
  expect 2 "^vdisk-bench: unexpected argument 'x'" x
  expect 1 "^vdisk-bench: --section 'no such' matches no section title$" --section "no such"
  expect 1 "^vdisk-bench: --image $dir/no-dir/b.img: No such file or directory$" --image "$dir/no-dir/b.img"
  check 1 "" "^vdisk-bench: no --image, and no temporary one: .*$dir/no-dir/vdisk-bench-" \
    env TMPDIR="$dir/no-dir" "$bin"
  # SIGTERM and SIGHUP end a run: the temporary image goes, and the status says which signal.
  for sig in TERM HUP; do
    mkdir -p "$dir/tmp-$sig"
    TMPDIR="$dir/tmp-$sig" "$bin" --size 8M --seconds 30 >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do [ -e "$dir/tmp-$sig"/vdisk-bench-*/bench.img ] && break; sleep 0.1; done
    sleep 0.2
    kill -s "$sig" $pid
    wait $pid
    rc=$?
    left=$(ls -A "$dir/tmp-$sig")
    if [ $rc -eq $((128 + $(kill -l "$sig"))) ] && [ -z "$left" ]; then
      pass=$((pass + 1))
    else
      echo "FAIL: SIG$sig during a run -> rc=$rc (want $((128 + $(kill -l "$sig")))), left in TMPDIR: $left"
      fails=$((fails + 1))
    fi
  done
  ;;
vdisk-crashtest)
  common
  expect 2 "^vdisk-crashtest: option '--cuts' needs a value" --cuts
  expect 2 "^vdisk-crashtest: --device floppy: accepted values: ide, virtio-blk, scsi, all$" --device floppy
  expect 2 "^vdisk-crashtest: --cuts x: expected a decimal number$" --cuts x
  expect 2 "^vdisk-crashtest: --replay needs one --device, --cache, --wce and --fua$" --replay 1
  expect 2 "^vdisk-crashtest: --device virtio-blk --fua on: virtio-blk has no FUA write$" --device virtio-blk --fua on
  # It reads no file: its run-time failure is a failed check (exit 1).
  ;;
*)
  echo "unknown tool $tool"
  exit 1
  ;;
esac
echo "$tool: $pass passed, $fails failed"
[ $fails -eq 0 ]
