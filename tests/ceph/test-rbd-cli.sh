#!/usr/bin/env bash
# test-rbd-cli.sh VDISK-VMM - bad driver=rbd input, against the cluster of ceph-cluster.sh
# (CEPH_CONF): each refusal is exit 1 at open (exit 2 for an unknown option, at parse time)
# with exactly one line on stderr naming what failed, and no crash.
set -u
vmm=$1
: "${CEPH_CONF:?run me through ceph-cluster.sh run}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
pass=0

# expect CODE PATTERN DRIVE-OPTIONS: vdisk-vmm with one virtio drive exits CODE, one stderr line matching PATTERN.
expect() {
    local code=$1 pat=$2 drive=$3
    out=$(timeout 60 "$vmm" --drive "$drive" 2>"$dir/err" </dev/null)
    rc=$?
    err=$(cat "$dir/err")
    if [ "$rc" -eq "$code" ] && [ -z "$out" ] && [ "$(wc -l <<<"$err")" -eq 1 ] && grep -q -- "$pat" <<<"$err"; then
        pass=$((pass + 1))
    else
        echo "FAIL: --drive $drive -> rc=$rc (want $code), stdout: ${out:0:300}, stderr: $err"
        fails=$((fails + 1))
    fi
}

rbd create --size 1M rbd/cli-$$ || { echo "rbd create failed"; exit 1; }
rbd snap create --no-progress rbd/cli-$$@s1 >/dev/null || { echo "rbd snap create failed"; exit 1; }
trap 'rbd snap purge --no-progress rbd/cli-$$ >/dev/null 2>&1; rbd rm --no-progress rbd/cli-$$ >/dev/null 2>&1; rm -rf "$dir"' EXIT

# a conf that names the cluster's monitor but asks for cephx with a keyring that is not there
grep '^mon host' "$CEPH_CONF" >"$dir/mon"
printf '[global]\n%s\nauth client required = cephx\nkeyring = %s/none.keyring\n' "$(cat "$dir/mon")" "$dir" \
    >"$dir/cephx.conf"
# a conf without any monitor
printf '[global]\nlog to stderr = false\n' >"$dir/nomon.conf"

expect 1 "driver 'rbd' needs pool=NAME" "driver=rbd,image=cli-$$,if=virtio"
expect 1 "driver 'rbd' needs image=NAME" "driver=rbd,pool=rbd,if=virtio"
expect 1 "rbd: pool=nosuch: no such pool" "driver=rbd,pool=nosuch,image=cli-$$,if=virtio"
expect 1 "rbd: image=nosuch: no such image in pool rbd" "driver=rbd,pool=rbd,image=nosuch,if=virtio"
expect 1 "rbd: conf=$dir/none.conf: cannot read it: No such file or directory" \
    "driver=rbd,pool=rbd,image=cli-$$,conf=$dir/none.conf,if=virtio"
expect 1 "rbd: no keyring for client.nosuch (keyring=$dir/none.keyring)" \
    "driver=rbd,pool=rbd,image=cli-$$,conf=$dir/cephx.conf,user=nosuch,if=virtio"
expect 1 "rbd: conf=$dir/nomon.conf names no monitor (mon_host)" \
    "driver=rbd,pool=rbd,image=cli-$$,conf=$dir/nomon.conf,if=virtio"
expect 1 "rbd: user= needs a Ceph user name" "driver=rbd,pool=rbd,image=cli-$$,user=,if=virtio"
expect 2 "unknown option 'snap'" "driver=rbd,pool=rbd,image=cli-$$,snap=s1,if=virtio"
expect 2 "driver 'rbd' takes no file= option" "driver=rbd,pool=rbd,image=cli-$$,file=/dev/null,if=virtio"
# QEMU's filename reaches the same driver checks; a snapshot opens only read-only.
expect 1 "rbd: image=nosuch: no such image in pool rbd" "file=rbd:rbd/nosuch,if=virtio"
expect 1 "rbd: pool=nosuch: no such pool" "file=rbd:nosuch/cli-$$:conf=$CEPH_CONF,if=virtio"
expect 1 "rbd: snapshot=s1 cannot be written: open it with read-only=on" "file=rbd:rbd/cli-$$@s1,if=virtio"
expect 1 "rbd: image=cli-$$@nosuch: no such image or snapshot in pool rbd" \
    "file=rbd:rbd/cli-$$@nosuch,read-only=on,if=virtio"
expect 2 "unknown option 'mon_host'; accepted options: conf, id" "file=rbd:rbd/cli-$$:mon_host=x,if=virtio"

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
