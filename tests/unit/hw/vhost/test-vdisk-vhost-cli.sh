#!/usr/bin/env bash
# test-vdisk-vhost-cli.sh VDISK_VHOST - the command line of vdisk-vhost:
# usage, every error path's exit code and message, the stats file, SIGUSR1,
# and a clean SIGTERM exit that removes the socket.
set -u
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
pass=0

# expect CODE PATTERN ARGS...: exit code and a line of output matching PATTERN;
# a refusal (exit 1 or 2) is exactly one line.  (A command line wrongly
# accepted would serve forever: timeout ends it with 124.)
expect() {
  local code=$1 pat=$2
  shift 2
  out=$(timeout 10 "$bin" "$@" 2>&1)
  rc=$?
  if [ "$rc" -eq "$code" ] && grep -q -- "$pat" <<<"$out" && { [ "$code" -eq 0 ] || [ "$(wc -l <<<"$out")" -eq 1 ]; }; then
    pass=$((pass + 1))
  else
    echo "FAIL: vdisk-vhost $* -> rc=$rc (want $code), output: $out"
    fails=$((fails + 1))
  fi
}

truncate -s 1M "$dir/a.img" "$dir/b.img"
mkdir "$dir/statsdir"
blk=(--socket "$dir/s" --device virtio-blk)
scsi=(--socket "$dir/s" --device virtio-scsi)
a="file=$dir/a.img"
b="file=$dir/b.img"

# The convention (system/cmdline.h): --help/--version 0, bad command line 2, run-time failure 1.
expect 0 "Usage: vdisk-vhost" --help
expect 0 "Usage: vdisk-vhost" -h --bogus
expect 0 "^vdisk-vhost (vdisk) [0-9][0-9.]*$" --version
expect 2 "unknown option '--bogus'" --socket "$dir/s" --bogus
expect 2 "option '--help' takes no value" --help=1
expect 1 "no-such.img" "${blk[@]}" --drive file="$dir/no-such.img"

# Usage errors: exit 2, one line naming the option, nothing opened.
expect 2 "are required"
expect 2 "unknown (virtio-blk or virtio-scsi)" --socket "$dir/s" --device floppy --drive "$a"
expect 2 "not a power of two" "${blk[@]}" --drive "$a" --queue-size 100
expect 2 "expected a number from 1 to 64" "${blk[@]}" --drive "$a" --num-queues 0
expect 2 "unexpected argument" "${blk[@]}" --drive "$a" extra
expect 2 "virtio-blk takes exactly 1 (got 2)" "${blk[@]}" --drive "$a" --drive "$b"
expect 2 "invalid cache 'sometimes'" "${blk[@]}" --drive "$a",cache=sometimes
expect 2 "unknown option 'foo'" "${blk[@]}" --drive "$a",foo=1
# issue 17 #6: as strict as vdisk-vmm
expect 2 "^vdisk-vhost: --socket needs a path$" --socket "" --device virtio-blk --drive "$a"
expect 2 "^vdisk-vhost: --num-queues ' 2': expected a number from 1 to 64$" "${blk[@]}" --drive "$a" --num-queues " 2"
expect 2 "^vdisk-vhost: --num-queues '+2': expected" "${blk[@]}" --drive "$a" --num-queues +2
expect 2 "^vdisk-vhost: --num-queues 17: virtio-scsi takes at most 16$" "${scsi[@]}" --drive "$a" --num-queues 17
expect 2 "^vdisk-vhost: --stats-file needs a path$" "${blk[@]}" --drive "$a" --stats-file ""
expect 2 "^vdisk-vhost: option '--socket' is given twice" "${blk[@]}" --drive "$a" --socket "$dir/s2"
expect 2 "^vdisk-vhost: option '--device' is given twice" "${blk[@]}" --drive "$a" --device virtio-scsi
expect 2 "^vdisk-vhost: option '--num-queues' is given twice" "${blk[@]}" --drive "$a" --num-queues 2 --num-queues=3
expect 2 "serial=SN1: a drive with this serial already exists" "${scsi[@]}" --drive "$a",serial=SN1 --drive "$b",serial=SN1
expect 2 "serial=: a serial number is 1-20 printable ASCII characters without spaces" "${blk[@]}" --drive "$a",serial=
expect 2 "serial=S N: a serial number" "${blk[@]}" --drive "$a",serial="S N"
expect 2 "serial=123456789012345678901: a serial number is 1-20" "${blk[@]}" --drive "$a",serial=123456789012345678901
expect 2 "serial= is given twice" "${blk[@]}" --drive "$a",serial=X,serial=Y
expect 2 "if=virtio: not a vdisk-vhost key" "${blk[@]}" --drive "$a",if=virtio
expect 2 "index=1: not a vdisk-vhost key" "${scsi[@]}" --drive "$a",index=1

# The daemon options (the running behaviour: test-vdisk-vhost-daemon.py).
expect 2 "^vdisk-vhost: --socket-mode '0889': expected octal permission bits" "${blk[@]}" --drive "$a" --socket-mode 0889
expect 2 "^vdisk-vhost: --socket-mode '01777': expected octal" "${blk[@]}" --drive "$a" --socket-mode 01777
expect 2 "^vdisk-vhost: --socket-group 'no-such-group-x': no such group$" "${blk[@]}" --drive "$a" --socket-group no-such-group-x
expect 2 "^vdisk-vhost: --fd 97: not an open descriptor$" --fd 97 --device virtio-blk --drive "$a"
expect 2 "^vdisk-vhost: --socket and --fd: give one of them$" "${blk[@]}" --drive "$a" --fd 1
expect 2 "^vdisk-vhost: --socket-mode/--socket-group: only for a --socket" --fd 1 --socket-mode 0600 --device virtio-blk --drive "$a"
expect 2 "^vdisk-vhost: --pidfile needs a path$" "${blk[@]}" --drive "$a" --pidfile ""
expect 2 "^vdisk-vhost: --queue-size '2048': expected a number from 4 to 1024$" "${blk[@]}" --drive "$a" --queue-size 2048
expect 1 "^vdisk-vhost: --fd: fd 1: not a unix stream socket$" --fd 1 --device virtio-blk --drive "$a"
LISTEN_FDS=2 LISTEN_PID=$$ expect 0 "Usage" --help
LISTEN_FDS=1 LISTEN_PID=1 expect 2 "are required" --device virtio-blk --drive "$a"

# Run-time failures: exit 1, one line, nothing left behind.
expect 1 "^vdisk-vhost: --stats-file $dir/missing-dir/st: its directory does not exist$" \
       "${blk[@]}" --drive "$a" --stats-file "$dir/missing-dir/st"
expect 1 "^vdisk-vhost: --stats-file $dir/statsdir: is a directory$" "${blk[@]}" --drive "$a" --stats-file "$dir/statsdir"
expect 1 "listen on" --socket "$dir/missing-dir/s" --device virtio-blk --drive "$a"
if [ -e "$dir/s" ]; then
  echo "FAIL: a refused command line left $dir/s behind"
  fails=$((fails + 1))
fi

# A running server: stats file at start, rewritten on SIGUSR1, clean exit on SIGTERM.
"$bin" --socket "$dir/s" --device virtio-blk --drive file="$dir/a.img",cache=writethrough \
       --stats-file "$dir/stats" >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$dir/s" ] && [ -f "$dir/stats" ] && break; sleep 0.05; done
# A second server on the same image is refused by the image lock, before it touches the socket.
expect 1 "file=$dir/a.img: in use by another process for writing" --socket "$dir/s2" --device virtio-blk --drive file="$dir/a.img"
# Empty images and partial last sectors are refused, naming the fix.
truncate -s 1000 "$dir/odd.img"
expect 1 "size 1000 bytes is not a multiple of 512.*truncate -s 1024" --socket "$dir/s3" --device virtio-scsi --drive file="$dir/odd.img"
# (this probe is a real connection: the stats below count it)
expect 1 "another server is listening" "${blk[@]}" --drive "$b"
rm -f "$dir/stats"
kill -USR1 $pid
for _ in $(seq 100); do [ -f "$dir/stats" ] && break; sleep 0.05; done
if grep -q "^vhost connections=1 .* connected=0" "$dir/stats" && grep -q "^drive0 .*write_cache=0 cache=writethrough" "$dir/stats"; then
  pass=$((pass + 1))
else
  echo "FAIL: stats file after SIGUSR1: $(cat "$dir/stats" 2>&1)"
  fails=$((fails + 1))
fi
kill -TERM $pid
wait $pid
rc=$?
if [ $rc -eq 0 ] && [ ! -e "$dir/s" ]; then
  pass=$((pass + 1))
else
  echo "FAIL: SIGTERM: rc=$rc, socket left: $(ls "$dir")"
  fails=$((fails + 1))
fi
echo "$pass passed, $fails failed"
[ $fails -eq 0 ]
