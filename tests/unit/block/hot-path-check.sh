#!/usr/bin/env bash
# hot-path-check.sh LIBVDISK.a: the request path's functions sit in .text.hot
# (VD_HOT, include/util/hot.h), which the linker packs together, so that the
# code every read and write runs is one short stretch of the binary.
#  - the global entry points must be there (they are never inlined away);
#  - a static one may be inlined into its caller, but if it has a symbol of
#    its own, that symbol must be in .text.hot too.
set -euo pipefail
lib=$1
if ! command -v objdump >/dev/null; then
  echo "SKIP: objdump is not installed (apt-get install binutils)"; exit 77
fi
globals="vd_blk_preadv vd_blk_pwritev vd_engine_submit vd_inline_try vd_inline_complete_later vd_driver_prepare
         vd_driver_check_result vd_drv_fd_flags vd_drv_count_host_op vd_stats_now vd_stats_record_latency
         vd_stats_dispatch_begin vd_stats_dispatch_end vd_cycle_clock_us vd_iov_size"
statics="req_new req_finish dispatch modifying_submit modify_done read_submit read_done serial_enter serial_leave
         serial_conflict wake_serial_waiters check_request check_prepared file_prepare ready_prepare ready_check
         ready_dispatch uring_prepare uring_check uring_dispatch uring_submit reap_cqes complete_cqe submit_or_retry"
sections=$(objdump -h "$lib")
if grep -q '\.gnu\.lto_' <<<"$sections" && ! grep -q '\.text\.hot' <<<"$sections"; then
  echo "SKIP: $lib holds LTO bytecode (b_lto=true): the layout is decided when it is linked"; exit 77
fi
table=$(objdump -t "$lib")
# The section of each function symbol called $1 (one line per object that defines it).
section_of() { awk -v f="$1" '$NF == f && $(NF-3) == "F" { print $(NF-2) }' <<<"$table"; }
fail=0 hot=0
# check_in_hot REQUIRED NAME...: every symbol of each NAME is in .text.hot; REQUIRED=1: NAME must have one.
check_in_hot() {
  local required=$1 f s secs; shift
  for f in "$@"; do
    secs=$(section_of "$f")
    if [ -z "$secs" ] && [ "$required" = 1 ]; then
      echo "FAIL: $f: no function symbol in $lib"; fail=1
    fi
    for s in $secs; do
      case $s in
        .text.hot*) hot=$((hot + 1)) ;;
        *) echo "FAIL: $f is in $s, not .text.hot: mark it VD_HOT"; fail=1 ;;
      esac
    done
  done
}
check_in_hot 1 $globals
check_in_hot 0 $statics
echo "$hot request-path functions in .text.hot"
exit $fail
