#!/usr/bin/env python3
"""test-vdisk-vhost-daemon.py VDISK_VHOST - vdisk-vhost as a daemon (docs/vhost-user.md):
--socket-mode/--socket-group (seen with stat; an unprivileged front end in the
group connects, one outside it gets EACCES), --pidfile, READY=1/STOPPING=1 on
$NOTIFY_SOCKET (a path and an @abstract name), SIGHUP survives, SIGTERM and SIGINT
remove the socket file and the pidfile; systemd socket activation (LISTEN_FDS) and
--fd with a socket made here (never removed by vdisk-vhost); the stats file is
replaced without any fsync, which would stall the I/O loop (strace)."""
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
GID = 4242            # a group no account has: only --groups gives it
NOBODY = 65534
fails = []


def check(ok, what):
    """Record one check."""
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fails.append(what)


def get_features(path):
    """Connect as a front end, send GET_FEATURES; the reply's u64, or None if refused (the server
    refuses a second front end, and may not have seen the previous one go yet: it resets us)."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    reply = b""
    try:
        c.connect(path)
        c.sendall(struct.pack("<III", 1, 1, 0))
        while len(reply) < 20:
            chunk = c.recv(20 - len(reply))
            if not chunk:
                break
            reply += chunk
    except OSError:
        pass
    c.close()
    return struct.unpack("<IIIQ", reply)[3] if len(reply) == 20 else None


def connect_as_nobody(path, groups):
    """Run a GET_FEATURES connection as nobody with the given supplementary groups; its stderr/stdout."""
    code = ("import socket,struct,sys\n"
            "c=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM)\n"
            "try:\n c.connect(sys.argv[1])\nexcept OSError as e:\n print('connect:', e.strerror); sys.exit(1)\n"
            "c.sendall(struct.pack('<III',1,1,0)); r=c.recv(20); print('features', len(r))\n")
    grp = ",".join(str(g) for g in groups) if groups else "-"
    argv = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY)]
    argv += ["--groups", grp] if groups else ["--clear-groups"]
    argv += ["/usr/bin/python3", "-c", code, path]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    return r.stdout.strip() + r.stderr.strip()


def wait_for(cond, secs=10.0):
    """Poll cond until true or timeout."""
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def recv_notify(ns, secs=10.0):
    """One sd_notify datagram, or ''."""
    ns.settimeout(secs)
    try:
        return ns.recv(4096).decode()
    except socket.timeout:
        return ""


def daemon_with_socket_file(d, notify_name, stop):
    """--socket with mode/group, pidfile, READY=1, SIGHUP, then stop (SIGTERM or SIGINT)."""
    sock, pidfile = os.path.join(d, "s"), os.path.join(d, "pid")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind("\0" + notify_name[1:] if notify_name.startswith("@") else notify_name)
    env = dict(os.environ, NOTIFY_SOCKET=notify_name)
    p = subprocess.Popen([BIN, "--socket", sock, "--socket-mode", "0660", "--socket-group", str(GID),
                          "--device", "virtio-blk", "--drive", "file=%s,cache=none" % os.path.join(d, "a.img"),
                          "--pidfile", pidfile], env=env, stderr=subprocess.PIPE, text=True)
    ready = recv_notify(ns)
    check("READY=1" in ready.split("\n") and ("MAINPID=%d" % p.pid) in ready,
          "READY=1 with MAINPID on NOTIFY_SOCKET=%s (got %r)" % (notify_name, ready))
    st = os.stat(sock)
    check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == GID,
          "socket mode 0660 group %d (stat: %o gid %d)" % (GID, stat.S_IMODE(st.st_mode), st.st_gid))
    with open(pidfile) as f:
        check(f.read() == "%d\n" % p.pid, "pidfile holds the pid once READY=1 is sent")
    out = connect_as_nobody(sock, [GID])
    check(out == "features 20", "nobody in group %d connects (%s)" % (GID, out))
    out = connect_as_nobody(sock, [])
    check("Permission denied" in out, "nobody outside the group is refused (%s)" % out)
    p.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    check(p.poll() is None and get_features(sock) is not None, "SIGHUP: still running and serving")
    p.send_signal(stop)
    rc = p.wait(timeout=20)
    err = p.stderr.read()
    name = signal.Signals(stop).name
    check(rc == 0, "%s: exit 0 (rc %d, %s)" % (name, rc, err.strip().splitlines()[-1:]))
    check("STOPPING=1" in recv_notify(ns, 2), "STOPPING=1 at exit")
    check(not os.path.exists(sock), "%s removes the socket file" % name)
    check(not os.path.exists(pidfile), "%s removes the pidfile" % name)
    ns.close()


def daemon_with_inherited_socket(d, activated):
    """A listening socket made here, passed as fd 3 by LISTEN_FDS or as --fd 5; it stays after SIGTERM."""
    sock = os.path.join(d, "inherited")
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(sock)
    ls.listen(4)
    fd = 3 if activated else 5
    argv = [BIN, "--device", "virtio-blk", "--drive", "file=%s,cache=none" % os.path.join(d, "a.img")]
    if not activated:
        argv += ["--fd", str(fd)]

    def child_setup():
        os.dup2(ls.fileno(), fd)
        os.set_inheritable(fd, True)
        if activated:
            os.environ["LISTEN_FDS"] = "1"
            os.environ["LISTEN_PID"] = str(os.getpid())   # exec keeps the pid
    p = subprocess.Popen(argv, preexec_fn=child_setup, close_fds=False, stderr=subprocess.PIPE, text=True)
    ls.close()
    what = "LISTEN_FDS" if activated else "--fd %d" % fd
    got = []      # one connection's answer: a second one right after could find the first not yet gone
    wait_for(lambda: p.poll() is not None or got.append(get_features(sock)) or got[-1] is not None)
    feats = got[-1] if got and p.poll() is None else None
    check(feats is not None and feats & (1 << 30) != 0, "%s: a front end is served on the inherited socket" % what)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=20)
    check(rc == 0, "%s: SIGTERM exit 0 (rc %d, %s)" % (what, rc, p.stderr.read().strip()))
    check(os.path.exists(sock), "%s: the inherited socket's file is left alone" % what)
    os.unlink(sock)


def stats_file_never_synced(d):
    """--stats-file rewrites (SIGUSR1 forces one) replace the file by rename and never fsync it or its directory."""
    if not shutil.which("strace"):
        print("skip: strace is not installed (the stats file's no-fsync check)")
        return
    sock, stats, trace = os.path.join(d, "st.sock"), os.path.join(d, "stats"), os.path.join(d, "sync.strace")
    p = subprocess.Popen(["strace", "-f", "-qq", "-y", "-o", trace, "-e", "trace=fsync,fdatasync,syncfs,sync_file_range",
                          BIN, "--socket", sock, "--device", "virtio-blk", "--stats-file", stats,
                          "--drive", "file=%s,cache=none" % os.path.join(d, "a.img")],
                         stderr=subprocess.PIPE, text=True,   # LeakSanitizer cannot run under ptrace
                         env=dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"))
    check(wait_for(lambda: os.path.exists(sock) and os.path.exists(stats)), "stats file written at start")
    with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
        pid = int(f.read().split()[0])
    rewrites = 0
    for _ in range(3):
        ino = os.stat(stats).st_ino
        os.kill(pid, signal.SIGUSR1)
        rewrites += wait_for(lambda: os.path.exists(stats) and os.stat(stats).st_ino != ino)
    check(rewrites == 3, "SIGUSR1 replaced the stats file by rename 3 times (%d)" % rewrites)
    os.kill(pid, signal.SIGTERM)
    rc = p.wait(timeout=20)
    check(rc == 0, "stats-file daemon: SIGTERM exit 0 (rc %d, %s)" % (rc, p.stderr.read().strip()[-200:]))
    with open(trace) as f:
        synced = [line.strip() for line in f if "<%s>" % d in line or "<%s." % stats in line or "<%s>" % stats in line]
    check(not synced, "no fsync of the stats file or its directory (%s)" % synced[:2])


def main():
    """Run every case in a fresh directory nobody can traverse."""
    d = tempfile.mkdtemp()
    try:
        os.chmod(d, 0o755)
        with open(os.path.join(d, "a.img"), "wb") as f:
            f.truncate(1 << 20)
        daemon_with_socket_file(d, os.path.join(d, "notify"), signal.SIGTERM)
        daemon_with_socket_file(d, "@vdisk-vhost-test-%d" % os.getpid(), signal.SIGINT)
        daemon_with_inherited_socket(d, activated=True)
        daemon_with_inherited_socket(d, activated=False)
        stats_file_never_synced(d)
    finally:
        shutil.rmtree(d)
    print("%d failed" % len(fails))
    sys.exit(1 if fails else 0)


main()
