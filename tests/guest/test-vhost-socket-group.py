#!/usr/bin/env python3
"""test-vhost-socket-group.py VDISK_VHOST - a QEMU running as an unprivileged user
connects to vdisk-vhost through --socket-mode 0660 --socket-group G, and without
--socket-group it is refused (docs/vhost-user.md, "Running as a daemon").

No guest boots: QEMU starts paused (-S), and vhost-user-blk-pci connects and
negotiates while QEMU realizes the device (GET_FEATURES ... GET_CONFIG).  The
front end runs as the system user vdisk-test-qemu, whose supplementary group
vdisk-test-sock plays the part of `kvm`; both are created (useradd -r,
groupadd -r) when missing and reused otherwise.  Needs root (skips with 77)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
USER = "vdisk-test-qemu"     # the unprivileged front end
GROUP = "vdisk-test-sock"    # its supplementary group, given to --socket-group
fails = []


def check(ok, what):
    """Record one check."""
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fails.append(what)


def skip_reason():
    """Why this test cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root to create an unprivileged user and run QEMU as it"
    for tool in ("qemu-system-x86_64", "setpriv", "useradd", "groupadd", "getent"):
        if not shutil.which(tool):
            return f"{tool} is not installed (scripts/install-deps.sh installs qemu-system-x86)"
    return None


def ensure_account():
    """Create (or reuse) GROUP and USER, USER being a member of GROUP; raises if that fails."""
    if subprocess.run(["getent", "group", GROUP], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "-r", GROUP], check=True)
    if subprocess.run(["getent", "passwd", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-r", "-U", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
                        "-G", GROUP, USER], check=True)
    else:
        subprocess.run(["usermod", "-a", "-G", GROUP, USER], check=True)


def wait_for(cond, secs=10.0):
    """Poll cond until true or timeout."""
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def read_stats(path):
    """The 'vhost' line of the stats file as {key: value}, {} if not there yet."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("vhost "):
                    return dict(re.findall(r"(\w+)=(\S+)", line))
    except FileNotFoundError:
        pass
    return {}


def start_vhost(work, name, access):
    """vdisk-vhost on work/name.sock with the given socket options; (process, socket, stats path)."""
    sock = os.path.join(work, name + ".sock")
    stats = os.path.join(work, name + ".stats")
    img = os.path.join(work, name + ".img")
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    log = open(os.path.join(work, name + ".log"), "w")
    p = subprocess.Popen([BIN, "--socket", sock, *access, "--device", "virtio-blk",
                          "--drive", f"file={img},cache=writeback", "--stats-file", stats],
                         stdout=log, stderr=subprocess.STDOUT)
    log.close()
    if not wait_for(lambda: os.path.exists(sock) and os.path.exists(stats)):
        p.kill()
        raise RuntimeError(f"vdisk-vhost {' '.join(access)} did not start")
    return p, sock, stats


def start_qemu(sock):
    """A paused QEMU as USER (its groups from /etc/group) with a vhost-user-blk-pci on sock."""
    argv = ["setpriv", "--reuid", USER, "--regid", USER, "--init-groups",
            "qemu-system-x86_64", "-S", "-nodefaults", "-display", "none", "-accel", "tcg", "-M", "pc",
            "-m", "64", "-object", "memory-backend-memfd,id=mem,size=64M,share=on", "-numa", "node,memdev=mem",
            "-chardev", f"socket,id=vd0,path={sock}", "-device", "vhost-user-blk-pci,chardev=vd0"]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def stop(p, what):
    """SIGTERM a process we started and reap it; its exit status."""
    if p.poll() is None:
        p.terminate()
    try:
        return p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        check(False, f"{what} ended within 30 s of SIGTERM")
        return None


def case_with_group(work):
    """--socket-mode 0660 --socket-group GROUP: the unprivileged QEMU connects and negotiates."""
    vh, sock, stats = start_vhost(work, "group", ["--socket-mode", "0660", "--socket-group", GROUP])
    st = os.stat(sock)
    check(st.st_mode & 0o777 == 0o660, f"socket file mode is 0660 (is {st.st_mode & 0o777:o})")
    qemu = start_qemu(sock)
    connected = wait_for(lambda: read_stats(stats).get("config_reads", "0") != "0" or qemu.poll() is not None)
    s = read_stats(stats)
    alive = qemu.poll() is None
    out = "" if alive else qemu.stdout.read()
    check(alive, f"QEMU as {USER} (group {GROUP}) is running after realizing vhost-user-blk-pci" +
          ("" if alive else f" (exit {qemu.returncode}: {out.strip()})"))
    check(connected and s.get("connected") == "1" and s.get("connections") == "1",
          f"vdisk-vhost saw the connection (connections={s.get('connections')}, connected={s.get('connected')})")
    check(int(s.get("config_reads", "0")) >= 1 and s.get("bad_messages") == "0",
          f"QEMU negotiated up to GET_CONFIG (messages={s.get('messages')}, config_reads={s.get('config_reads')}, "
          f"bad_messages={s.get('bad_messages')})")
    stop(qemu, "QEMU")
    check(wait_for(lambda: read_stats(stats).get("disconnects") == "1"), "vdisk-vhost saw QEMU go")
    check(stop(vh, "vdisk-vhost") == 0, "vdisk-vhost exits 0 on SIGTERM")


def case_refused(work, name, access):
    """Without --socket-group: QEMU as USER fails at once with EACCES naming the socket."""
    vh, sock, stats = start_vhost(work, name, access)
    qemu = start_qemu(sock)
    try:
        out, _ = qemu.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        stop(qemu, "QEMU")
        out = "(still running after 30 s)"
    print("  QEMU: " + out.strip().replace("\n", "\n  QEMU: "))
    check(qemu.returncode not in (0, None), f"{' '.join(access) or 'no socket options'}: QEMU as {USER} "
          f"failed (exit {qemu.returncode})")
    check(sock in out and "Permission denied" in out, "its error names the socket and says Permission denied")
    s = read_stats(stats)
    check(s.get("connections") == "0", f"vdisk-vhost saw no connection (connections={s.get('connections')})")
    check(stop(vh, "vdisk-vhost") == 0, "vdisk-vhost exits 0 on SIGTERM")


def main():
    """Run the three cases; 0 if every check passed, 77 when it cannot run here."""
    reason = skip_reason()
    if reason:
        print(f"SKIP: {reason}")
        return 77
    ensure_account()
    os.umask(0o022)               # the usual umask: the socket file is 0755 without --socket-mode
    with tempfile.TemporaryDirectory(prefix="vdisk-sockgroup-") as work:
        os.chmod(work, 0o755)     # USER must reach the socket file
        case_with_group(work)
        case_refused(work, "umask", [])
        case_refused(work, "mode-only", ["--socket-mode", "0660"])
    if fails:
        print(f"{len(fails)} check(s) failed:\n  " + "\n  ".join(fails))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
