#!/usr/bin/env bash
# test-vdisk-vmm-cli.sh VDISK_VMM - the exit codes and messages of vdisk-vmm's
# command line (system/cmdline.h): --help and --version exit 0, a bad command
# line exits 2 with one line naming the option, a run-time failure exits 1.
set -u
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
pass=0

# expect CODE PATTERN ARGS...: exit code and a line of output matching PATTERN;
# a refusal (exit 1 or 2) is exactly one line on stderr and nothing on stdout.
expect() {
  local code=$1 pat=$2
  shift 2
  out=$("$bin" "$@" 2>"$dir/err")
  rc=$?
  err=$(cat "$dir/err")
  if [ "$code" -ne 0 ]; then
    ok=$([ -z "$out" ] && [ "$(wc -l <<<"$err")" -eq 1 ] && grep -q -- "$pat" <<<"$err" && echo y)
  else
    ok=$(grep -q -- "$pat" <<<"$out" && echo y)
  fi
  if [ "$rc" -eq "$code" ] && [ "$ok" = y ]; then
    pass=$((pass + 1))
  else
    echo "FAIL: vdisk-vmm $* -> rc=$rc (want $code), stdout: $out, stderr: $err"
    fails=$((fails + 1))
  fi
}

truncate -s 1M "$dir/a.img" "$dir/b.img"
a="file=$dir/a.img"
b="file=$dir/b.img"
expect 0 "^Usage: vdisk-vmm" --help
expect 0 "^Usage: vdisk-vmm" -h
expect 0 "^vdisk-vmm (vdisk) [0-9][0-9.]*$" --version
expect 2 "^vdisk-vmm: unknown option '--bogus' (see --help)$" --bogus
expect 2 "^vdisk-vmm: option '--drive' needs a value" --drive
expect 2 "^vdisk-vmm: option '-m' is given twice" -m 64M -m 128M
expect 2 "^vdisk-vmm: --drive $b,serial=SN1: serial=SN1: a drive with this serial already exists$" \
       --drive "$a",serial=SN1 --drive "$b",serial=SN1
expect 2 "^vdisk-vmm: --drive $b,id=d: id=d: a drive with this id already exists$" --drive "$a",id=d --drive "$b",id=d
expect 2 "^vdisk-vmm: --drive $a,cache=sometimes: invalid cache 'sometimes'" --drive "$a",cache=sometimes
expect 1 "^vdisk-vmm: --drive file=$dir/no-such.img: drive drive0: file=$dir/no-such.img: No such file or directory$" \
       --drive file="$dir/no-such.img"
expect 1 "^vdisk-vmm: --dump-dtb: " --drive "$a" --dump-dtb "$dir/missing-dir/x.dtb"
expect 0 "drive drive0: if=ide" --drive "$a",serial=SN1 --drive "$b",if=virtio,serial=SN2
# Signals: SIGINT, SIGTERM and SIGHUP each shut down cleanly (exit 0, control socket removed), as QEMU does.
for sig in INT TERM HUP; do
  rm -f "$dir/ctl"
  "$bin" --drive "$a" --control unix:"$dir/ctl" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 600); do [ -S "$dir/ctl" ] && break; sleep 0.05; done  # up to 30 s: ASan under load
  kill -"$sig" "$pid"
  rc=0; wait "$pid" || rc=$?
  if [ "$rc" -eq 0 ] && [ ! -e "$dir/ctl" ]; then
    pass=$((pass + 1))
  else
    echo "FAIL: vdisk-vmm on SIG$sig -> rc=$rc (want 0), control socket left: $([ -e "$dir/ctl" ] && echo yes || echo no)"
    fails=$((fails + 1))
  fi
done
echo "$pass passed, $fails failed"
[ $fails -eq 0 ]
