#!/usr/bin/env bash
# loop-syscalls-check.sh SCENARIO: the owner loop's syscalls per request with
# the io_uring engine, counted by strace between the scenario's markers.
#  - cached-read: the dispatch chains the rounds its callbacks submit (one
#    io_uring_enter per request, one poll per up to 256 completions), where
#    reads complete at submit (a file that answers RWF_NOWAIT; not tmpfs,
#    where io_uring's workers read and the poll bound is not checked);
#  - direct-write: the loop sleeps in poll() on the ring's own descriptor and
#    a completion costs no syscall of its own (no eventfd to read, no
#    io_uring_get_events): one io_uring_enter per request; and GLib does not
#    block the ring's source while it dispatches (blocking it writes the
#    context's wake-up eventfd twice per dispatch).
set -euo pipefail
scenario=$1
if ! command -v strace >/dev/null; then
  echo "SKIP: strace is not installed (apt-get install strace)"; exit 77
fi
tmp=$(mktemp -d -p "${TMPDIR:-/var/tmp}"); trap 'rm -rf "$tmp"' EXIT
fail=0
for mode in cached-read direct-write; do
  truncate -s 1M "$tmp/disk.img"
  set +e
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -o "$tmp/trace" \
    -e trace=getppid,poll,ppoll,read,write,io_uring_enter "$scenario" "$tmp/disk.img" "$mode" > "$tmp/out"
  rc=$?
  set -e
  cat "$tmp/out"
  if [ $rc = 77 ]; then
    echo "SKIP: $mode: $(cat "$tmp/out")"; exit 77
  fi
  [ $rc = 0 ] || { echo "FAIL: $mode: the scenario exited with $rc"; exit 1; }
  n=$(sed -n 's/^requests=//p' "$tmp/out")
  # The syscalls between the two getppid() markers.
  sed -n '/getppid(/,/getppid(/p' "$tmp/trace" > "$tmp/phase"
  count() { grep -cE "(^|[^a-z_])$1\(" "$tmp/phase" || true; }
  enters=$(count io_uring_enter) polls=$(($(count poll) + $(count ppoll))) reads=$(count read) writes=$(count write)
  echo "$mode: $n requests: io_uring_enter=$enters poll=$polls read=$reads write=$writes"
  check() { if [ "$2" -gt "$3" ]; then echo "FAIL: $mode: $1 = $2, more than $3"; fail=1; fi; }
  case $mode in
    cached-read)
      check io_uring_enter "$enters" $((n + 8))
      if [ "$(sed -n 's/^reads-at-submit=//p' "$tmp/out")" = 1 ]; then
        check poll "$polls" $((n / 32))
      else
        echo "not checked: poll (this file refuses RWF_NOWAIT, so io_uring's workers read it: no read completes at submit)"
      fi
      check read "$reads" $((n / 32)) ;;
    direct-write)
      check write "$writes" $((n / 10))
      check read "$reads" $((n / 10))
      check io_uring_enter "$enters" $((n + 8)) ;;
  esac
done
exit $fail
