#!/usr/bin/env bash
# ceph-cluster.sh - a throw-away single-node Ceph cluster for tests, from Debian's packages.
#
#   ceph-cluster.sh start DIR      start one monitor and one memstore OSD under DIR (created if
#                                  missing); prints CEPH_CONF=DIR/ceph.conf; exit 77 if it cannot
#   ceph-cluster.sh stop DIR       kill every daemon started under DIR and remove DIR
#   ceph-cluster.sh run CMD...     start under a fresh temporary directory, run CMD with CEPH_CONF
#                                  exported, stop (also when CMD fails or the script is killed);
#                                  exits with CMD's status, or 77 with one line of reason
#
# The cluster: auth none, everything (data, logs, admin sockets, pid files) under DIR, monitor on
# 127.0.0.1 at a free unprivileged port (so parallel runs do not clash), the OSD on memstore (RAM),
# pool "rbd" of size 1 initialised with `rbd pool init`.  No manager: a mon and an OSD serve RBD.
# Clients find it through CEPH_CONF; [client] sets an admin socket per process in DIR/run.
set -uo pipefail

need=(ceph-mon ceph-osd ceph rbd monmaptool python3)
START_TIMEOUT=${CEPH_START_TIMEOUT:-45}

# One line of reason on stderr and the meson skip code.
skip() {
    echo "SKIP: $*" >&2
    exit 77
}

# A TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Run a ceph CLI command against the cluster in $dir with a bounded wait.
ceph_cli() {
    timeout 30 ceph --conf "$dir/ceph.conf" --connect-timeout 20 "$@"
}

# Write DIR/ceph.conf for a monitor on $port.
write_conf() {
    local fsid=$1 port=$2
    cat >"$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr1 = false
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.\$pid.asok
pid file = $dir/run/\$name.pid
crash dir = $dir/crash
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon max pg per osd = 1000
[mon.a]
mon data = $dir/mon.a
[osd]
osd objectstore = memstore
memstore device bytes = 1073741824
osd data = $dir/osd.\$id
osd max object name len = 460
osd max object namespace len = 64
osd heartbeat grace = 60
[client]
log file = $dir/log/\$name.\$pid.log
CONF
}

# Start the monitor and the OSD in $dir; return non-zero with a reason on stderr.
start_daemons() {
    local fsid port osd_uuid id
    fsid=$(cat /proc/sys/kernel/random/uuid)
    port=$(free_port) || return 1
    mkdir -p "$dir/run" "$dir/log" "$dir/crash" "$dir/mon.a" "$dir/osd.0" || return 1
    write_conf "$fsid" "$port"
    monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" >/dev/null ||
        { echo "monmaptool failed" >&2; return 1; }
    ceph-mon --conf "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" >"$dir/log/mkfs-mon.out" 2>&1 ||
        { echo "ceph-mon --mkfs failed: $(tail -1 "$dir/log/mkfs-mon.out")" >&2; return 1; }
    ceph-mon --conf "$dir/ceph.conf" -i a || { echo "ceph-mon did not start" >&2; return 1; }
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    id=$(ceph_cli osd new "$osd_uuid" 2>"$dir/log/osd-new.err") ||
        { echo "monitor not answering: $(tail -1 "$dir/log/osd-new.err")" >&2; return 1; }
    ceph-osd --conf "$dir/ceph.conf" -i "$id" --mkfs --osd-uuid "$osd_uuid" >"$dir/log/mkfs-osd.out" 2>&1 ||
        { echo "ceph-osd --mkfs failed: $(tail -1 "$dir/log/mkfs-osd.out")" >&2; return 1; }
    ceph-osd --conf "$dir/ceph.conf" -i "$id" || { echo "ceph-osd did not start" >&2; return 1; }
    ceph_cli osd pool create rbd 8 8 >/dev/null 2>&1 || { echo "pool create failed" >&2; return 1; }
    ceph_cli osd pool set rbd size 1 --yes-i-really-mean-it >/dev/null 2>&1 ||
        { echo "pool set size 1 failed" >&2; return 1; }
    wait_osd_up || return 1
    timeout 30 rbd --conf "$dir/ceph.conf" pool init rbd 2>"$dir/log/pool-init.err" ||
        { echo "rbd pool init failed: $(tail -1 "$dir/log/pool-init.err")" >&2; return 1; }
}

# Wait until the monitor sees the OSD up (PG states need a manager; rbd pool init waits for them).
wait_osd_up() {
    local deadline=$((SECONDS + START_TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        if ceph_cli osd stat 2>/dev/null | grep -q '1 up'; then
            return 0
        fi
        sleep 0.3
    done
    echo "the OSD did not come up in ${START_TIMEOUT}s ($(ceph_cli osd stat 2>&1 | head -1))" >&2
    return 1
}

# Kill every daemon whose pid file is in $dir/run, wait for them, remove $dir.
stop_cluster() {
    [ -d "$dir" ] || return 0
    local pids=() pid f
    for f in "$dir"/run/*.pid; do
        [ -f "$f" ] && pid=$(cat "$f") && [ -n "$pid" ] && pids+=("$pid")
    done
    [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null
    for _ in $(seq 20); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    rm -rf "$dir"
}

# Check the packages, then start a cluster in $dir or skip with the reason.
start_or_skip() {
    for c in "${need[@]}"; do
        command -v "$c" >/dev/null || skip "no $c (install ceph-mon ceph-osd ceph-common)"
    done
    local reason
    if ! reason=$(start_daemons 2>&1 >/dev/null); then
        [ -n "${CEPH_KEEP_DIR:-}" ] || stop_cluster
        skip "the Ceph cluster did not start: ${reason:-unknown reason}"
    fi
}

cmd=${1:-}
shift || true
case "$cmd" in
start)
    dir=$(realpath -m "${1:?usage: ceph-cluster.sh start DIR}")
    start_or_skip
    echo "CEPH_CONF=$dir/ceph.conf"
    ;;
stop)
    dir=$(realpath -m "${1:?usage: ceph-cluster.sh stop DIR}")
    [ -f "$dir/ceph.conf" ] || { echo "ceph-cluster.sh: $dir is not a cluster directory" >&2; exit 1; }
    stop_cluster
    ;;
run)
    [ $# -gt 0 ] || { echo "usage: ceph-cluster.sh run CMD..." >&2; exit 2; }
    dir=$(mktemp -d "${TMPDIR:-/tmp}/vdisk-ceph.XXXXXX")
    trap stop_cluster EXIT
    trap 'exit 143' TERM INT
    start_or_skip
    CEPH_CONF=$dir/ceph.conf "$@"
    ;;
*)
    echo "usage: ceph-cluster.sh start DIR | stop DIR | run CMD..." >&2
    exit 2
    ;;
esac
