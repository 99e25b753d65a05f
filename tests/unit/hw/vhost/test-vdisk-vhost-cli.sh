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

# expect CODE PATTERN ARGS...: exit code and a line of output matching PATTERN.
expect() {
  local code=$1 pat=$2
  shift 2
  out=$(timeout 10 "$bin" "$@" 2>&1)
  rc=$?
  if [ "$rc" -eq "$code" ] && grep -q -- "$pat" <<<"$out"; then
    pass=$((pass + 1))
  else
    echo "FAIL: vdisk-vhost $* -> rc=$rc (want $code), output: $out"
    fails=$((fails + 1))
  fi
}

truncate -s 1M "$dir/a.img"
expect 0 "Usage: vdisk-vhost" --help
expect 2 "are required"
expect 2 "unknown (virtio-blk or virtio-scsi)" --socket "$dir/s" --device floppy --drive file="$dir/a.img"
expect 2 "not a power of two" --socket "$dir/s" --device virtio-blk --drive file="$dir/a.img" --queue-size 100
expect 2 "expected a number from 1 to 64" --socket "$dir/s" --device virtio-blk --drive file="$dir/a.img" --num-queues 0
expect 2 "expected a number from 1 to 64" --socket "$dir/s" --device virtio-blk --drive file="$dir/a.img" --num-queues " 4"
expect 1 "option .cache. is not of the form key=value" --socket "$dir/s" --device virtio-blk --drive file="$dir/a.img",cache
expect 2 "unknown option" --socket "$dir/s" --bogus
expect 2 "unexpected argument" --socket "$dir/s" --device virtio-blk --drive file="$dir/a.img" extra
expect 1 "exactly one --drive" --socket "$dir/s" --device virtio-blk --drive file="$dir/a.img" --drive file="$dir/a.img"
expect 1 "no-such.img" --socket "$dir/s" --device virtio-blk --drive file="$dir/no-such.img"
expect 1 "cache" --socket "$dir/s" --device virtio-blk --drive file="$dir/a.img",cache=sometimes
expect 1 "listen on" --socket "$dir/missing-dir/s" --device virtio-blk --drive file="$dir/a.img"

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
truncate -s 1M "$dir/b.img"
expect 1 "another server is listening" --socket "$dir/s" --device virtio-blk --drive file="$dir/b.img"
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
