#!/usr/bin/env python3
"""run-guest.py - boot Linux 6.1 under qemu-system-x86_64 (TCG) against vdisk-vhost
and against QEMU's own devices, parse the guest's "VDT" console lines, and check
host-side assertions (vdisk-vhost --stats-file counters, strace, the image bytes).

  run-guest.py --build-dir BUILD --vhost PATH/vdisk-vhost CASE

Cases: vhost-blk, vhost-scsi, vhost-crash, ext4-crash, vhost-migrate, vhost-nbd, vhost-qcow2, qemu-virtio-blk, qemu-virtio-scsi,
qsd-vhost-blk, bench, bench-nbd, compare.  Each writes BUILD/guest/results/CASE.json (guest-visible state)
that `compare` tabulates.  Exit 0 pass, 1 fail, 77 skip (QEMU not installable).
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashcut  # noqa: E402

MASK = (1 << 64) - 1
REGION = 256 * 1024
IMG_SIZE = 64 * 1024 * 1024
BOOT_TIMEOUT = 240  # a TCG boot takes ~7 s idle, but over 90 s was seen on a loaded 2-core machine

failures = []


def check(cond, what):
    """Record one assertion; print it either way."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def pattern(seed, off, length):
    """The bytes vdtest writes at disk offset off (see vdtest.c pattern_word)."""
    out = bytearray(length)
    for i in range(0, length, 8):
        z = (seed * 0x9e3779b97f4a7c15 + ((off + i) >> 3) + 1) & MASK
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & MASK
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & MASK
        z ^= z >> 31
        out[i:i + 8] = z.to_bytes(8, "little")
    return bytes(out)


def check_image(path, seed, regions, label):
    """The image holds exactly the guest's writes: each region its pattern, zeros elsewhere."""
    with open(path, "rb") as f:
        data = f.read()
    ok = len(data) == IMG_SIZE
    pos = 0
    for n in sorted(regions):
        off = n * 1024 * 1024
        ok &= data[off:off + REGION] == pattern(seed + n, off, REGION)
        ok &= data[pos:off].count(0) == off - pos
        pos = off + REGION
    ok &= data[pos:].count(0) == len(data) - pos
    check(ok, f"{label}: image {os.path.basename(path)} holds exactly regions {sorted(regions)} (seed {seed})")


def new_image(workdir, name, allocated=False):
    """A fresh zero-filled 64 MiB raw image: sparse, or with every block written (allocated) and synced."""
    path = os.path.join(workdir, name)
    with open(path, "wb") as f:
        f.truncate(IMG_SIZE)
        if allocated:
            chunk = bytes(1 << 20)
            for _ in range(IMG_SIZE >> 20):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    return path


def cpu_seconds(pid):
    """The CPU time (user + system, all threads) a live process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_console(text):
    """The guest's VDT lines: states, toggles, op results, benchmark runs, queue limits, end code."""
    res = {"states": {}, "toggles": [], "ops_ok": 0, "ops_fail": [], "end": None, "bench": [], "limits": {}}
    for line in text.replace("\r", "").splitlines():
        if not line.startswith("VDT"):
            continue
        if line.startswith("VDT-END"):
            res["end"] = int(line.split("rc=")[1])
        elif line.startswith("VDT state"):
            kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
            st = {k: v.strip('"') for k, v in kv.items()}
            res["states"][st["dev"] + ":" + st["tag"]] = st
        elif line.startswith("VDT toggle"):
            kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
            res["toggles"].append({k: v.strip('"') for k, v in kv.items()})
        elif line.startswith("VDT bench"):
            res["bench"].append(dict(re.findall(r'(\w+)=(\S+)', line)))
        elif line.startswith("VDT limits"):
            kv = dict(re.findall(r'(\w+)=(\S+)', line))
            res["limits"][kv.pop("dev")] = kv
        elif line.endswith(" OK"):
            res["ops_ok"] += 1
        if "FAIL" in line:
            res["ops_fail"].append(line)
    return res


class Guest:
    """Boots the initramfs kit with extra QEMU arguments."""

    def __init__(self, kit):
        self.kit = kit

    def start(self, scenario, qemu_args, memfd=False):
        """Start QEMU in the background (its console goes nowhere); returns the Popen."""
        return subprocess.Popen(self.args(scenario, qemu_args, memfd), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def boot(self, scenario, qemu_args, memfd=False, label="", busy=0):
        """Boot, wait for the guest to power off (BOOT_TIMEOUT plus busy seconds), and parse its console."""
        return self.run(self.args(scenario, qemu_args, memfd), scenario, label, BOOT_TIMEOUT + busy)

    def args(self, scenario, qemu_args, memfd):
        """The QEMU command line for one boot of the kit."""
        args = ["qemu-system-x86_64", "-accel", "tcg", "-M", "pc", "-m", "512", "-nographic", "-no-reboot",
                "-kernel", os.path.join(self.kit, "vmlinuz"), "-initrd", os.path.join(self.kit, "initrd.gz"),
                "-append", f"console=ttyS0 quiet panic=-1 vdt={scenario}"]
        if memfd:
            args += ["-object", "memory-backend-memfd,id=mem,size=512M,share=on", "-numa", "node,memdev=mem"]
        return args + qemu_args

    def run(self, args, scenario, label, timeout):
        """Run a QEMU command line to the end (at most timeout seconds) and parse the console."""
        t0 = time.time()
        try:
            p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
            out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace") + "\n[timeout]"
        return self.finish(out, scenario, label, t0)

    def boot_timed(self, scenario, qemu_args, memfd=False, label=""):
        """Boot, reading the console as it comes: (parsed result, [(CLOCK_MONOTONIC us when read, line)])."""
        t0 = time.time()
        p = subprocess.Popen(self.args(scenario, qemu_args, memfd), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        timer = threading.Timer(BOOT_TIMEOUT, p.kill)
        timer.start()
        lines = [(time.monotonic_ns() // 1000, raw.decode(errors="replace").replace("\r", "").rstrip("\n"))
                 for raw in p.stdout]
        timed_out = not timer.is_alive()
        timer.cancel()
        p.wait()
        out = "\n".join(line for _, line in lines) + ("\n[timeout]" if timed_out else "")
        return self.finish(out, scenario, label, t0, quiet="VDT fsynced "), lines

    def finish(self, out, scenario, label, t0, quiet=None):
        """Parse and show a finished boot's console (lines starting with quiet are only counted)."""
        res = parse_console(out)
        print(f"--- {label} boot {scenario}: {time.time() - t0:.1f}s", flush=True)
        hidden = 0
        for line in out.replace("\r", "").splitlines():
            if quiet and line.startswith(quiet):
                hidden += 1
            elif line.startswith("VDT") or "qemu-system" in line or "error" in line.lower():
                print("    " + line)
        if hidden:
            print(f"    ({hidden} '{quiet.strip()}' lines)")
        if res["end"] != 0 or res["ops_fail"]:
            tail = out.replace("\r", "").splitlines()[-40:]
            print(f"    the console's last {len(tail)} lines" + (":" if tail else ": (the guest printed nothing)"))
            for line in tail:
                print("    | " + line)
        check(res["end"] == 0 and not res["ops_fail"],
              f"{label}: guest scenario {scenario} ran to the end without a failure")
        return res


class Vhost:
    """One vdisk-vhost process (optionally under strace) with its stats file."""

    def __init__(self, binary, workdir, device, drives, strace=False, extra=()):
        self.sock = os.path.join(workdir, f"vhost-{device}.sock")
        self.stats_path = os.path.join(workdir, f"vhost-{device}.stats")
        self.trace = os.path.join(workdir, f"vhost-{device}.strace") if strace else None
        cmd = [binary, "--socket", self.sock, "--device", device, "--stats-file", self.stats_path, *extra]
        for d in drives:
            # strace sees one syscall per host op only with the thread-pool engine
            # (io_uring, the default, shows io_uring_enter calls instead).
            cmd += ["--drive", d + (",aio=threads" if strace else "")]
        if strace:
            cmd = ["strace", "-f", "-qq", "--seccomp-bpf", "-s", "0", "-o", self.trace,
                   "-e", "trace=openat,pwrite64,pwritev,pwritev2,fdatasync,fsync", *cmd]
        self.log = open(os.path.join(workdir, f"vhost-{device}.log"), "w")
        for stale in (self.sock, self.stats_path):   # a previous instance's files would end the start-up wait early
            if os.path.exists(stale):
                os.unlink(stale)
        env = dict(os.environ)
        if strace:
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"   # LSan cannot run under ptrace
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        for _ in range(200):
            if os.path.exists(self.sock) and os.path.exists(self.stats_path):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("vdisk-vhost did not start")

    def qemu_args(self, device):
        return ["-chardev", f"socket,id=vh0,path={self.sock}", "-device", f"{device},chardev=vh0"]

    def stats(self):
        """The stats file as {line name: {key: value}}."""
        out = {}
        with open(self.stats_path) as f:
            for line in f:
                name, _, rest = line.strip().partition(" ")
                out[name] = {k: (int(v) if v.lstrip("-").isdigit() else v)
                             for k, v in re.findall(r"(\w+)=(\S+)", rest)}
        return out

    def stop(self):
        """SIGTERM: vdisk-vhost drains, writes the stats and exits 0 (under strace: signal the tracee)."""
        pid = self.proc.pid
        if self.trace:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                pid = int(f.read().split()[0])
        os.kill(pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "timeout"
        self.log.close()
        check(rc == 0, f"vdisk-vhost exited cleanly (rc={rc})")
        return self.stats()

    def syscalls(self, image):
        """From strace: write syscalls on the image's fds, how many carried RWF_DSYNC, and fdatasyncs."""
        fds, dsync_fds = set(), set()
        writes = dsync_writes = fdatasyncs = 0
        pending = {}
        with open(self.trace) as f:
            for raw in f:
                pid, _, line = raw.rstrip("\n").partition(" ")
                if line.endswith("<unfinished ...>"):
                    pending[pid] = line[:-len("<unfinished ...>")]
                    continue
                if "resumed>" in line:
                    line = pending.pop(pid, "") + line.split("resumed>", 1)[1]
                m = re.search(r'openat\(AT_FDCWD, "([^"]*)", ([^)]*)\)\s*=\s*(\d+)', line)
                if m and os.path.realpath(m.group(1)) == os.path.realpath(image):
                    fds.add(int(m.group(3)))
                    if "O_DSYNC" in m.group(2) or "O_SYNC" in m.group(2):
                        dsync_fds.add(int(m.group(3)))
                    continue
                m = re.search(r"(pwrite64|pwritev2|pwritev|fdatasync)\((\d+)", line)
                if not m or int(m.group(2)) not in fds:
                    continue
                if m.group(1) == "fdatasync":
                    fdatasyncs += 1
                elif re.search(r"=\s*0$", line):
                    continue   # the backend's zero-length RWF_DSYNC probe at open
                else:
                    writes += 1
                    if "RWF_DSYNC" in line or int(m.group(2)) in dsync_fds:
                        dsync_writes += 1
        return writes, dsync_writes, fdatasyncs


def expect_states(res, dev, label, initial, fua=None):
    """Initial cache state as expected; each toggle took effect in cache_type and queue/write_cache."""
    st = res["states"].get(f"{dev}:initial", {})
    check(st.get("cache_type") == initial and st.get("write_cache") == initial,
          f"{label}: {dev} starts '{initial}' (cache_type='{st.get('cache_type')}', "
          f"write_cache='{st.get('write_cache')}')")
    if fua is not None:
        check(st.get("fua") == str(fua), f"{label}: {dev} queue/fua is {fua} (got {st.get('fua')})")
    for tag, want in (("after-wt", "write through"), ("after-wb", "write back")):
        st = res["states"].get(f"{dev}:{tag}")
        if st:
            check(st.get("cache_type") == want and st.get("write_cache") == want,
                  f"{label}: {dev} toggled to '{want}' (cache_type='{st.get('cache_type')}', "
                  f"write_cache='{st.get('write_cache')}')")


def save(results_dir, case, data):
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, case + ".json"), "w") as f:
        json.dump(data, f, indent=1)


def case_vhost_blk(a, guest, work):
    """vdisk-vhost virtio-blk: writeback + fsync->fdatasync (strace), write-through durability, reconnect."""
    img = new_image(work, "blk-wb.img")
    vh = Vhost(a.vhost, work, "virtio-blk", [f"file={img},cache=writeback"], strace=True)
    # Two vCPUs and two request queues: the guest pins one write method to each CPU.
    res = guest.boot("blk-wb:10", ["-smp", "2"] + vh.qemu_args("vhost-user-blk-pci,num-queues=2"), memfd=True,
                     label="vdisk blk-wb")
    st = vh.stop()
    expect_states(res, "vda", "vdisk blk-wb", "write back", fua=0)
    d, dev = st["drive0"], st["device"]
    fsyncs = 4
    check(dev["flush"] >= fsyncs, f"vdisk blk-wb: {fsyncs} guest fsyncs arrived as >= {fsyncs} FLUSH (got {dev['flush']})")
    check(d["host_fdatasync"] >= fsyncs,
          f"vdisk blk-wb: the guest fsyncs became host fdatasync calls ({d['host_fdatasync']} >= {fsyncs})")
    writes, dsync, fds = vh.syscalls(img)
    check(fds == d["host_fdatasync"],
          f"vdisk blk-wb: strace saw {fds} fdatasync(image) = host_fdatasync counter {d['host_fdatasync']}")
    check(writes == d["host_writes"], f"vdisk blk-wb: strace saw {writes} image writes = host_writes {d['host_writes']}")
    check(dev["wce_changes"] == 2, f"vdisk blk-wb: SET_CONFIG reached the device twice (wce_changes={dev['wce_changes']})")
    check(st["vhost"]["config_writes"] == 2 and st["vhost"]["bad_messages"] == 0,
          "vdisk blk-wb: 2 SET_CONFIG, no bad message")
    kicks = [int(k) for k in str(st["vhost"]["ring_kicks"]).split(",")]
    check(kicks[0] > 0 and kicks[1] > 0, f"vdisk blk-wb: both request queues carried requests (kicks per ring {kicks})")
    check_image(img, 10, [1, 2, 3, 4], "vdisk blk-wb")

    img2 = new_image(work, "blk-wt.img")
    vh = Vhost(a.vhost, work, "virtio-blk", [f"file={img2},cache=none"], strace=True)
    res2 = guest.boot("blk-wt:20", vh.qemu_args("vhost-user-blk-pci"), memfd=True, label="vdisk blk-wt")
    mid = vh.stats()
    res3 = guest.boot("blk-verify:20", vh.qemu_args("vhost-user-blk-pci"), memfd=True,
                      label="vdisk blk-verify (reconnect)")
    st = vh.stop()
    expect_states(res2, "vda", "vdisk blk-wt", "write back", fua=0)
    d = mid["drive0"]
    durable = d["host_rwf_dsync_writes"] + d["host_dsync_writes"]
    check(d["writes"] > 0 and d["host_writes"] == durable,
          f"vdisk blk-wt: every write made with the write cache off was durable "
          f"({durable} of {d['host_writes']} host writes were RWF_DSYNC/O_DSYNC)")
    writes, dsync, _ = vh.syscalls(img2)
    check(writes > 0 and writes == dsync, f"vdisk blk-wt: strace: {dsync} of {writes} image writes were synchronous")
    check(res3["ops_fail"] == [] and res3["ops_ok"] == 4,
          "vdisk blk-verify: after a disconnect and reconnect the guest reads back all 4 regions")
    expect_states(res3, "vda", "vdisk blk-verify", "write back")
    v = st["vhost"]
    check(v["connections"] == 2 and v["disconnects"] == 2 and v["bad_messages"] == 0,
          f"vdisk: two front ends came and went cleanly (connections={v['connections']} disconnects={v['disconnects']})")
    check(st["drive0"]["in_flight"] == 0 and st["drive0"]["errors"] == 0, "vdisk: nothing in flight, no errors")
    check_image(img2, 20, [1, 2, 3, 4], "vdisk blk-wt")
    vh = Vhost(a.vhost, work, "virtio-blk", [f"file={img2},cache=directsync"])
    res4 = guest.boot("blk-verify:20", vh.qemu_args("vhost-user-blk-pci"), memfd=True,
                      label="vdisk blk-verify (cache=directsync)")
    vh.stop()
    expect_states(res4, "vda", "vdisk cache=directsync", "write through")
    check(res4["ops_ok"] == 4, "vdisk cache=directsync: the same image reads back in a new vdisk-vhost")
    save(a.results, "vhost-blk", {"label": "vdisk-vhost virtio-blk (cache=writeback)", "wb": res, "wt": res2})


def case_vhost_qcow2(a, guest, work):
    """vdisk-vhost virtio-blk on a qcow2 image (docs/qcow2.md): the guest writes, fsyncs and toggles
    the write cache; after SIGTERM the image is clean under qemu-img check and holds the writes."""
    if not shutil.which("qemu-img"):
        print("SKIP guest-vhost-qcow2: qemu-img not found (apt-get install qemu-utils)")
        return 77
    img = os.path.join(work, "blk-qcow2.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", img, str(IMG_SIZE)], check=True)
    vh = Vhost(a.vhost, work, "virtio-blk", [f"file={img},format=qcow2,cache=writeback"])
    res = guest.boot("blk-wb:10", vh.qemu_args("vhost-user-blk-pci"), memfd=True, label="vdisk qcow2")
    st = vh.stop()
    expect_states(res, "vda", "vdisk qcow2", "write back", fua=0)
    dev = st["device"]
    check(dev["wce_changes"] == 2, f"vdisk qcow2: the guest toggled the write cache (wce_changes={dev['wce_changes']})")
    check(st["drive0"]["errors"] == 0, "vdisk qcow2: no request failed")
    chk = subprocess.run(["qemu-img", "check", "-q", img], capture_output=True, text=True)
    check(chk.returncode == 0, f"vdisk qcow2: qemu-img check is clean after SIGTERM (exit {chk.returncode}) "
          f"{chk.stdout}{chk.stderr}".strip())
    raw = os.path.join(work, "blk-qcow2.raw")
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", img, raw], check=True)
    check_image(raw, 10, [1, 2, 3, 4], "vdisk qcow2")


def case_vhost_queue_sizes(a, guest, work):
    """QEMU's queue-size=128, 256 and 1024 against one vdisk-vhost (default --queue-size 128): each ring is
    taken (none refused, seg_max = 126 fits them all) and the guest's vda writes, reads and flushes."""
    for qs in (128, 256, 1024):
        img = new_image(work, f"qs{qs}.img")
        vh = Vhost(a.vhost, work, "virtio-blk", [f"file={img},cache=writeback"])
        res = guest.boot(f"blk-rw:{qs}", vh.qemu_args(f"vhost-user-blk-pci,queue-size={qs}"), memfd=True,
                         label=f"vdisk queue-size={qs}")
        st = vh.stop()
        v = st["vhost"]
        check(res["ops_ok"] == 4, f"queue-size={qs}: write, fsync and both reads succeeded (ok={res['ops_ok']})")
        check(v["refused_rings"] == 0 and v["bad_messages"] == 0 and v["rings_started"] >= 1,
              f"queue-size={qs}: the ring was taken (refused_rings={v['refused_rings']}, "
              f"rings_started={v['rings_started']})")
        check(v["kicks"] > 0 and st["drive0"]["errors"] == 0, f"queue-size={qs}: requests ran without errors")
        check_image(img, qs, [1, 3], f"queue-size={qs}")


def case_vhost_crash(a, guest, work):
    """The front end is SIGKILLed in the middle of I/O: vdisk-vhost survives, drains and serves the next VM."""
    img = new_image(work, "crash.img")
    vh = Vhost(a.vhost, work, "virtio-blk", [f"file={img},cache=none"])
    qemu = guest.start("blk-bench:30", vh.qemu_args("vhost-user-blk-pci"), memfd=True)
    deadline = time.time() + BOOT_TIMEOUT
    while time.time() < deadline and qemu.poll() is None:   # kill it once the guest is busy writing
        time.sleep(0.2)
        if vh.stats().get("drive0", {}).get("writes", 0) > 500:
            break
    running = qemu.poll() is None
    qemu.kill()
    qemu.wait()
    check(running, "vdisk crash: QEMU was SIGKILLed while the guest was writing")
    time.sleep(0.5)
    check(vh.proc.poll() is None, "vdisk crash: vdisk-vhost is still running")
    st = vh.stats()
    check(st["vhost"]["disconnects"] == 1 and st["vhost"]["connected"] == 0,
          f"vdisk crash: the dead front end was noticed (disconnects={st['vhost']['disconnects']})")
    check(st["drive0"]["writes"] > 100, f"vdisk crash: it died in the middle of I/O ({st['drive0']['writes']} writes)")
    check(st["drive0"]["in_flight"] == 0 and st["drive0"]["errors"] == 0, "vdisk crash: nothing left in flight")
    res2 = guest.boot("blk-wb:80", vh.qemu_args("vhost-user-blk-pci"), memfd=True, label="vdisk after crash")
    st = vh.stop()
    expect_states(res2, "vda", "vdisk after crash", "write back")
    check(st["vhost"]["connections"] == 2 and st["vhost"]["bad_messages"] == 0,
          "vdisk after crash: the next front end was served")


def case_vhost_scsi(a, guest, work):
    """vdisk-vhost virtio-scsi with two LUNs: FUA arrives as FUA, toggle via MODE SELECT, write-through durability."""
    img0, img1 = new_image(work, "scsi0.img"), new_image(work, "scsi1.img")
    vh = Vhost(a.vhost, work, "virtio-scsi", [f"file={img0},cache=writeback", f"file={img1},cache=none"],
               strace=True)
    res = guest.boot("scsi-wb:30", vh.qemu_args("vhost-user-scsi-pci"), memfd=True, label="vdisk scsi-wb")
    st = vh.stop()
    expect_states(res, "lun0", "vdisk scsi-wb", "write back", fua=1)
    expect_states(res, "lun1", "vdisk scsi-wb", "write back", fua=1)
    d0 = st["drive0"]
    check(d0["fua_writes"] > 0, f"vdisk scsi-wb: O_DSYNC writes arrived as FUA writes (fua_writes={d0['fua_writes']})")
    durable = d0["host_rwf_dsync_writes"] + d0["host_dsync_writes"]
    check(durable >= d0["fua_writes"],
          f"vdisk scsi-wb: each FUA write went to the host as a synchronous write ({durable} >= {d0['fua_writes']})")
    writes, dsync, _ = vh.syscalls(img0)
    check(dsync == durable, f"vdisk scsi-wb: strace saw {dsync} RWF_DSYNC/O_DSYNC image writes = counters {durable}")
    check(d0["wce_toggles"] >= 2, f"vdisk scsi-wb: MODE SELECT toggled the write cache (wce_toggles={d0['wce_toggles']})")
    check_image(img0, 30, [1, 2, 3, 4], "vdisk scsi-wb lun0")
    check_image(img1, 130, [1, 2, 3], "vdisk scsi-wb lun1")

    img2 = new_image(work, "scsi2.img")
    vh = Vhost(a.vhost, work, "virtio-scsi", [f"file={img2},cache=writeback", f"file={img1},cache=none"],
               strace=True)
    res2 = guest.boot("scsi-wt:40", vh.qemu_args("vhost-user-scsi-pci"), memfd=True, label="vdisk scsi-wt")
    st = vh.stop()
    d = st["drive0"]
    durable = d["host_rwf_dsync_writes"] + d["host_dsync_writes"]
    check(d["writes"] > 0 and d["host_writes"] == durable,
          f"vdisk scsi-wt: every write with WCE=0 was durable ({durable} of {d['host_writes']})")
    writes, dsync, _ = vh.syscalls(img2)
    check(writes > 0 and writes == dsync, f"vdisk scsi-wt: strace: {dsync} of {writes} image writes were synchronous")
    check_image(img2, 40, [1, 2, 3, 4], "vdisk scsi-wt lun0")
    save(a.results, "vhost-scsi", {"label": "vdisk-vhost virtio-scsi (cache=writeback)", "wb": res, "wt": res2})


CRASH_CUTS = 60          # cuts per run with cache=writeback (the suite asks for >= 50)
UNSAFE_CUTS = 20         # cuts of the cache=unsafe run, which only shows what is lost


def make_ext4(path):
    """A fresh 64 MiB ext4 image, made on the host, every table written now (no lazy init in the guest)."""
    with open(path, "wb") as f:
        f.truncate(IMG_SIZE)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "vdcrash",
                    "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard", path], check=True)


def fsynced_records(lines):
    """The guest's "VDT fsynced" lines as crashcut.Records, each with the time the host read it."""
    out = []
    for t_us, line in lines:
        m = re.match(r"VDT fsynced name=(\S+) ver=(\d+) size=(\d+) sha256=([0-9a-f]{64})$", line)
        if m:
            out.append(crashcut.Record(t_us, *m.groups()))
    return out


def crash_run(a, guest, work, cache, seed, cuts):
    """One guest run of crashload on ext4 through vdisk-vhost + crashsim, then `cuts` cut images checked.

    Returns (cuts with e2fsck errors, cuts that lost fsynced files, files lost in all, files checked in all).
    """
    label = f"ext4-crash cache={cache}"
    base, disk, log = (os.path.join(work, f"{cache}.{x}") for x in ("base.img", "disk.img", "log"))
    make_ext4(base)
    crashcut.copy_image(base, disk)
    vh = Vhost(a.vhost, work, "virtio-blk", [f"driver=crashsim,file={disk},cache={cache},log={log}"])
    res, lines = guest.boot_timed(f"ext4-crash:{seed}", vh.qemu_args("vhost-user-blk-pci"), memfd=True,
                                  label=label)
    vh.stop()
    records = fsynced_records(lines)
    begin = next((t for t, line in lines if "VDT-BEGIN" in line), None)
    end = next((t for t, line in lines if line.startswith("VDT crashload")), None)
    if begin and end:
        print(f"    guest workload: {(end - begin) / 1e6:.1f}s of the boot", flush=True)
    check(len(records) >= 30, f"{label}: the guest fsynced {len(records)} file versions (>= 30)")
    L = crashcut.Log(log)
    print(f"    op log: {L.writes()} writes, {L.flushes} flushes, {len(L.epochs)} epochs; "
          f"{len(set(r.name for r in records))} files fsynced", flush=True)
    cutter = crashcut.Cutter(L, base, work)
    img = os.path.join(work, "cut.img")
    keep = os.path.join(a.results, "ext4-crash")
    not_clean = losing = lost_total = checked = 0
    t0 = time.time()
    for k in sorted(range(cuts), key=lambda k: L.cut(seed, k)[0]):   # the cursor image only moves forward
        e, kept, pending = cutter.materialise(seed, k, img)
        clean, fsck_out, n, lost = crashcut.check_cut(img, records, L.epochs[e].t_us, work)
        checked += n
        not_clean += not clean
        losing += bool(lost)
        lost_total += len(lost)
        what = "clean" if clean else "E2FSCK ERRORS"
        lost_txt = ", ".join(f"{nm} v{v} {why}" for nm, v, why in lost[:4]) + (" ..." if len(lost) > 4 else "")
        print(f"    cut {k:2}: epoch {e:3}/{len(L.epochs)} kept {kept:3}/{pending:3} writes; {what}; "
              f"{n:2} fsynced files, {len(lost)} lost{': ' + lost_txt if lost else ''}", flush=True)
        if (not clean or lost) and cache != "unsafe":
            if not os.path.exists(os.path.join(keep, os.path.basename(log))):   # the first failing cut
                os.makedirs(keep, exist_ok=True)
                for src in (base, log):
                    crashcut.copy_image(src, os.path.join(keep, os.path.basename(src)))
                print("      " + "\n      ".join(fsck_out.strip().splitlines()[:20]))
            print(f"      replay: tests/guest/crashcut.py --log {keep}/{cache}.log --base {keep}/{cache}.base.img "
                  f"--seed {seed} --index {k} --out cut.img --check")
    print(f"    {cuts} cuts in {time.time() - t0:.1f}s: {not_clean} not clean under e2fsck -fn, {losing} lost "
          f"fsynced files ({lost_total} in all, of {checked} checked)", flush=True)
    check(res["end"] == 0 and not res["ops_fail"], f"{label}: the guest workload ran to the end")
    return not_clean, losing, lost_total, checked


def case_ext4_crash(a, guest, work):
    """ext4 in a real guest, cut at random points: every cut fsck-clean, every fsynced file intact."""
    missing = [t for t in ("mkfs.ext4", "e2fsck", "debugfs") if not shutil.which(t)]
    if missing:
        print(f"SKIP: {', '.join(missing)} not installed (package e2fsprogs); the ext4 crash test needs them")
        return 77
    seed = int(os.environ.get("VDISK_CRASH_SEED", "2026"))
    shutil.rmtree(os.path.join(a.results, "ext4-crash"), ignore_errors=True)   # a failing cut's base and log
    t0 = time.time()
    not_clean, losing, lost, checked = crash_run(a, guest, work, "writeback", seed, CRASH_CUTS)
    check(not_clean == 0, f"cache=writeback: all {CRASH_CUTS} cuts are clean under e2fsck -fn (seed {seed})")
    check(losing == 0, f"cache=writeback: every fsynced file is intact in every cut ({checked} file checks, "
                       f"seed {seed})")
    not_clean, losing, lost, checked = crash_run(a, guest, work, "unsafe", seed, UNSAFE_CUTS)
    print(f"note cache=unsafe promises nothing, and the oracle shows it: {losing} of {UNSAFE_CUTS} cuts lost "
          f"fsynced files ({lost} of {checked} file checks), {not_clean} were not clean under e2fsck -fn "
          f"(expected: not a failure)")
    check(losing + not_clean > 0, "cache=unsafe: the oracle reports what is lost (it can fail)")
    print(f"ext4-crash: {CRASH_CUTS + UNSAFE_CUTS} cuts, {time.time() - t0:.1f}s in all")


def case_qemu_blk(a, guest, work):
    """QEMU's virtio-blk-pci with the same guest script."""
    img = new_image(work, "q-blk.img")
    res = guest.boot("blk-wb:50", ["-drive", f"file={img},if=none,id=v1,format=raw,cache=writeback",
                                   "-device", "virtio-blk-pci,drive=v1"], label="qemu virtio-blk")
    check_image(img, 50, [1, 2, 3, 4], "qemu virtio-blk")
    save(a.results, "qemu-virtio-blk", {"label": "QEMU virtio-blk-pci (cache=writeback)", "wb": res})


def case_qemu_scsi(a, guest, work):
    """QEMU's virtio-scsi-pci + scsi-hd with the same guest script."""
    img0, img1 = new_image(work, "q-scsi0.img"), new_image(work, "q-scsi1.img")
    res = guest.boot("scsi-wb:60", ["-device", "virtio-scsi-pci,id=scsi0",
                                    "-drive", f"file={img0},if=none,id=s0,format=raw,cache=writeback",
                                    "-device", "scsi-hd,drive=s0,lun=0",
                                    "-drive", f"file={img1},if=none,id=s1,format=raw,cache=none",
                                    "-device", "scsi-hd,drive=s1,lun=1"], label="qemu virtio-scsi")
    check_image(img0, 60, [1, 2, 3, 4], "qemu virtio-scsi lun0")
    check_image(img1, 160, [1, 2, 3], "qemu virtio-scsi lun1")
    save(a.results, "qemu-virtio-scsi", {"label": "QEMU virtio-scsi-pci + scsi-hd", "wb": res})


class Qsd:
    """qemu-storage-daemon exporting one image as vhost-user-blk."""

    def __init__(self, workdir, img, direct, strace=False, blockdev=None, writethrough=False):
        """blockdev: another --blockdev (node-name=f0) instead of the file img; writethrough: the export's
        writethrough=on (a flush after every write)."""
        self.sock = os.path.join(workdir, "qsd.sock")
        self.trace = os.path.join(workdir, "qsd.strace") if strace else None
        cache = "cache.direct=on," if direct else ""
        cmd = ["qemu-storage-daemon", "--blockdev", blockdev or f"driver=file,node-name=f0,{cache}filename={img}",
               "--export", f"type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path={self.sock},writable=on"
               + (",writethrough=on" if writethrough else "")]
        if strace:
            cmd = ["strace", "-f", "-qq", "--seccomp-bpf", "-s", "0", "-o", self.trace,
                   "-e", "trace=openat,pwrite64,pwritev,pwritev2,fdatasync,fsync,io_submit,io_uring_enter", *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(self.sock):
                break
            time.sleep(0.05)

    def qemu_args(self):
        return ["-chardev", f"socket,id=q0,path={self.sock}", "-device", "vhost-user-blk-pci,chardev=q0"]

    def stop(self):
        pid = self.proc.pid
        if self.trace:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                pid = int(f.read().split()[0])
        os.kill(pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


def case_qsd_blk(a, guest, work):
    """qemu-storage-daemon's vhost-user-blk export with the same guest script."""
    img = new_image(work, "qsd.img")
    q = Qsd(work, img, direct=False, strace=True)
    res = guest.boot("blk-wb:70", q.qemu_args(), memfd=True, label="qsd vhost-user-blk")
    q.stop()
    check_image(img, 70, [1, 2, 3, 4], "qsd vhost-user-blk")
    # Not an assertion on QEMU: how durable were the writes the guest made while qsd said "write through"?
    # (docs/qemu-comparison.md explains the result.)
    writes, dsync, fdatasyncs = Vhost.syscalls(q, img)
    initial = res["states"].get("vda:initial", {}).get("cache_type")
    note = (f"qsd told the guest '{initial}'; strace: {writes} image writes, {dsync} synchronous, "
            f"{fdatasyncs} fdatasync")
    print("note " + note)
    save(a.results, "qsd-vhost-blk", {"label": "qemu-storage-daemon vhost-user-blk", "wb": res, "note": note})


def case_bench(a, guest, work):
    """The QD1 O_DIRECT guest benchmark on vdisk-vhost and qemu-storage-daemon in one boot: vda is vdisk-vhost,
    vdb qemu-storage-daemon, each on its own allocated image with the same host cache mode; the guest runs each
    of the four runs on both in turn, VDISK_BENCH_ROUNDS times (blk-bench-pair), so each round's ratio compares
    the back ends at the same guest speed."""
    secs = int(os.environ.get("VDISK_BENCH_SECONDS", "3"))
    rounds = int(os.environ.get("VDISK_BENCH_ROUNDS", "1"))
    cache = os.environ.get("VDISK_BENCH_CACHE", "none")   # none (O_DIRECT) or writeback, the same for both
    # Allocated: on a sparse image the first writes to a block also allocate it (4K random writes measured
    # 0.68x for that reason alone when both back ends shared one sparse image).
    mine, theirs = new_image(work, "bench-vdisk.img", allocated=True), new_image(work, "bench-qsd.img", allocated=True)
    extra_opts = os.environ.get("VDISK_BENCH_DRIVE_OPTS", "")   # e.g. ",aio=threads"
    vh = Vhost(a.vhost, work, "virtio-blk", [f"file={mine},cache={cache}{extra_opts}"], extra=["--num-queues", "1"])
    q = Qsd(work, theirs, direct=(cache == "none"))
    # VDISK_BENCH_PIN=CPUS: both back ends on those host CPUs (every thread now; threads started later inherit).
    pin = os.environ.get("VDISK_BENCH_PIN")
    if pin:
        for pid in (vh.proc.pid, q.proc.pid):
            subprocess.run(["taskset", "-a", "-p", "-c", pin, str(pid)], check=True, stdout=subprocess.DEVNULL)
    try:
        res = guest.boot(f"blk-bench-pair:{secs}:{rounds}", vh.qemu_args("vhost-user-blk-pci") + q.qemu_args(),
                         memfd=True, label="bench vdisk-vhost (vda) and qemu-storage-daemon (vdb)",
                         busy=8 * secs * rounds)
    finally:
        cpu = {"vda": cpu_seconds(vh.proc.pid), "vdb": cpu_seconds(q.proc.pid)}
        stats = vh.stop()["drive0"]
        q.stop()
    runs = {"vda": [], "vdb": []}
    for r in res["bench"]:
        if "iops" in r:   # a failed run's line has no numbers (the boot's check above reported it)
            runs[os.path.basename(r["dev"])].append(r)
    check(len(runs["vda"]) == len(runs["vdb"]) == 4 * rounds, f"bench: {rounds} rounds of 4 runs on both disks")
    # What Linux took from vdisk-vhost's virtio_blk_config: seg_max = the ring's 128 - 2, size_max = 1 MiB.
    lim = res["limits"].get("vda", {})
    check(lim.get("max_segments") == "126" and lim.get("max_segment_size") == "1048576",
          f"bench: the guest cuts vdisk-vhost's requests into 126 segments of up to 1 MiB ({lim})")
    # vda must be vdisk-vhost's disk (the guest names disks in PCI order): every byte the guest wrote to vda,
    # and nothing it wrote to vdb, reached vdisk-vhost.
    vda_writes = [r for r in runs["vda"] if "write" in r["mode"]]
    written = sum(int(r["ops"]) * int(r["bs"]) for r in vda_writes)
    check(stats["bytes_written"] == written,
          f"bench: vdisk-vhost wrote {stats['bytes_written']} bytes, the guest wrote {written} to vda")
    rounds = min(len(runs["vda"]), len(runs["vdb"])) // 4   # the table shows the rounds that completed
    if not rounds:
        return
    lines = [f"cache={cache}, {secs} s per run, {rounds} rounds, QD1 O_DIRECT in the guest (vdtest bench), TCG "
             "guest; vdisk-vhost and qemu-storage-daemon in one boot, each run on both in turn", "",
             "| mode | bs | vdisk-vhost IOPS (median) | qsd IOPS (median) | vdisk / qsd per round | median |",
             "|---|---|---|---|---|---|"]
    for k in range(4):
        v = [float(runs["vda"][k + 4 * n]["iops"]) for n in range(rounds)]
        t = [float(runs["vdb"][k + 4 * n]["iops"]) for n in range(rounds)]
        ratios = [x / y for x, y in zip(v, t)]
        lines.append(f"| {runs['vda'][k]['mode']} | {runs['vda'][k]['bs']} | {statistics.median(v):.0f} | "
                     f"{statistics.median(t):.0f} | {' '.join(f'{r:.2f}' for r in ratios)} | "
                     f"**{statistics.median(ratios):.2f}** |")
    ops = {d: sum(int(r["ops"]) for r in runs[d]) for d in runs}
    us = {d: 1e6 * cpu[d] / ops[d] if ops[d] else 0 for d in runs}
    lines += ["", f"Host CPU per guest I/O (user + system, the whole boot): vdisk-vhost {us['vda']:.1f} us, "
              f"qsd {us['vdb']:.1f} us ({us['vda'] / us['vdb'] if us['vdb'] else 0:.2f}x).",
              f"vdisk-vhost: {stats['writes']} write requests for the guest's "
              f"{sum(int(r['ops']) for r in vda_writes)} writes."]
    for d, name in (("vda", "vdisk-vhost"), ("vdb", "qsd")):   # the segments the guest cuts a request into
        lim = res["limits"].get(d, {})
        lines.append(f"Guest queue limits for {name}: " + ", ".join(f"{k} {v}" for k, v in lim.items()) + ".")
    text = "\n".join(lines)
    print(text)
    os.makedirs(a.results, exist_ok=True)
    with open(os.path.join(a.results, "bench.md"), "w") as f:
        f.write(text + "\n")


def case_bench_nbd(a, guest, work):
    """4K random O_DIRECT writes in the guest at QD1 and QD32, vdisk-vhost and qemu-storage-daemon on the same
    NBD export: nbdkit's file plugin behind its noparallel filter (one request at a time, so every FUA write
    and every flush is an fdatasync the others wait for).  Host write cache off (vdisk cache=writethrough,
    qsd writethrough=on) and on (cache=writeback, writethrough=off)."""
    if not shutil.which("nbdkit"):
        print("SKIP: nbdkit is not installed (scripts/install-deps.sh installs it)")
        return 77
    secs = int(os.environ.get("VDISK_BENCH_SECONDS", "3"))
    img, sock = new_image(work, "nbd-bench.img"), os.path.join(work, "nbd-bench.sock")
    with open(img, "r+b") as f:   # allocated now: a first write to a hole makes fdatasync commit metadata too,
        f.write(bytes(IMG_SIZE))  # and only the first back end would pay for it
        os.fsync(f.fileno())
    srv = subprocess.Popen(["nbdkit", "-U", sock, "-f", "--exit-with-parent", "--filter=noparallel", "file", img,
                            "serialize=requests"], stdin=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    lines = [f"{secs} s per run, 4K random O_DIRECT writes in a TCG guest; QD32 = 32 vdtest processes; "
             "nbdkit file + noparallel (serialize=requests)", "",
             "| host write cache | QD | vdisk-vhost IOPS | qsd IOPS | vdisk / qsd | vdisk: durable writes, "
             "FUA writes, shared flushes |", "|---|---|---|---|---|---|"]
    try:
        for mode in ("writethrough", "writeback"):
            vh = Vhost(a.vhost, work, "virtio-blk", [f"driver=nbd,uri=nbd+unix:///?socket={sock},cache={mode}"],
                       extra=["--num-queues", "1"])
            mine = guest.boot(f"blk-bench-qd:{secs}", vh.qemu_args("vhost-user-blk-pci"), memfd=True,
                              label=f"bench-nbd vdisk-vhost cache={mode}")["bench"]
            d = vh.stop()["drive0"]
            q = Qsd(work, None, False, blockdev=f"driver=nbd,node-name=f0,server.type=unix,server.path={sock}",
                    writethrough=(mode == "writethrough"))
            theirs = guest.boot(f"blk-bench-qd:{secs}", q.qemu_args(), memfd=True,
                                label=f"bench-nbd qemu-storage-daemon writethrough={mode == 'writethrough'}")["bench"]
            q.stop()
            check(len(mine) == 33 and len(theirs) == 33, f"bench-nbd {mode}: 1 + 32 runs on both")
            for qd, sl in ((1, slice(0, 1)), (32, slice(1, 33))):
                v, t = (sum(float(r["iops"]) for r in rows[sl]) for rows in (mine, theirs))
                lines.append(f"| {mode} | {qd} | {v:.0f} | {t:.0f} | {v / t if t else 0:.2f} | "
                             f"{d['durable_writes']}, {d['host_rwf_dsync_writes']}, {d['group_commits']} |")
    finally:
        srv.terminate()
        srv.wait()
    text = "\n".join(lines)
    print(text)
    os.makedirs(a.results, exist_ok=True)
    with open(os.path.join(a.results, "bench-nbd.md"), "w") as f:
        f.write(text + "\n")


def case_compare(a, guest, work):
    """Tabulate the guest-visible results of every device side by side."""
    rows = []
    for name in ("vhost-blk", "qsd-vhost-blk", "qemu-virtio-blk", "vhost-scsi", "qemu-virtio-scsi"):
        p = os.path.join(a.results, name + ".json")
        if not os.path.exists(p):
            rows.append(f"| {name} | (not run) | | | | |")
            continue
        r = json.load(open(p))
        for key, st in sorted(r["wb"]["states"].items()):
            rows.append(f"| {r['label']} | {key} | {st.get('cache_type')} | {st.get('write_cache')} | "
                        f"{st.get('fua')} | {'ok' if not r['wb']['ops_fail'] else 'FAIL'} |")
    text = "\n".join(["| device | disk:when | cache_type | queue/write_cache | queue/fua | data |",
                      "|---|---|---|---|---|---|"] + rows)
    print(text)
    with open(os.path.join(a.results, "compare.md"), "w") as f:
        f.write(text + "\n")


class Qmp:
    """A QMP client on a unix socket: QEMU's -qmp, or vdisk-vhost's --control (docs/control.md)."""

    def __init__(self, path, timeout=60):
        import socket
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.f = self.sock.makefile("rw")
        json.loads(self.f.readline())   # the greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        """Run a command; its "return" value (events before the reply are skipped); raises on an error."""
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError(f"QMP {name}: the connection closed")
            reply = json.loads(line)
            if "error" in reply:
                raise RuntimeError(f"QMP {name}: {reply['error']}")
            if "return" in reply:
                return reply["return"]

    def close(self):
        self.sock.close()


class Console:
    """A QEMU's serial console as it comes: [(CLOCK_MONOTONIC us when read, line)], read by a thread."""

    def __init__(self, proc):
        self.lines = []
        self.thread = threading.Thread(target=self.read, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def read(self, out):
        for raw in out:
            self.lines.append((time.monotonic_ns() // 1000, raw.decode(errors="replace").replace("\r", "").rstrip("\n")))

    def wait_for(self, pred, timeout):
        """Wait until pred(lines) holds; False on timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(self.lines):
                return True
            time.sleep(0.1)
        return pred(self.lines)


MIGRATE_OPS = 60   # crashload steps of phase 1 (before and during the migration)


def case_vhost_migrate(a, guest, work):
    """Live migration of a Linux guest between two QEMUs, each with its own vdisk-vhost on one image.

    The guest chooses write-through, writes fsynced files on ext4 before, during and after the
    migration; the management step carries the write cache; the destination takes the image only
    when its rings start (the source's GET_VRING_BASE released it).  Afterwards: every fsynced file
    intact, e2fsck -fn clean, the destination's write cache off and its writes durable.
    """
    missing = [t for t in ("mkfs.ext4", "e2fsck", "debugfs") if not shutil.which(t)]
    if missing:
        print(f"SKIP: {', '.join(missing)} not installed (package e2fsprogs); the migration test needs them")
        return 77
    img = os.path.join(work, "migrate.img")
    make_ext4(img)
    drive = f"file={img},cache=writeback"
    ctl_src, ctl_dst = os.path.join(work, "src.ctl"), os.path.join(work, "dst.ctl")
    qmp_src, qmp_dst, mig = (os.path.join(work, n) for n in ("src.qmp", "dst.qmp", "mig.sock"))
    os.makedirs(os.path.join(work, "src"))
    os.makedirs(os.path.join(work, "dst"))
    os.environ["G_MESSAGES_DEBUG"] = "all"   # the logs then show every vhost-user message (vdisk has no log domain)
    src = Vhost(a.vhost, os.path.join(work, "src"), "virtio-blk", [drive], extra=["--control", f"unix:{ctl_src}"])
    dst = Vhost(a.vhost, os.path.join(work, "dst"), "virtio-blk", [drive + ",active=off"],
                extra=["--control", f"unix:{ctl_dst}"])
    dev = "vhost-user-blk-pci,num-queues=1"
    seed = 4242
    base = guest.args(f"migrate:{seed}.{MIGRATE_OPS}", [], memfd=True)
    p_src = subprocess.Popen(base + src.qemu_args(dev) + ["-qmp", f"unix:{qmp_src},server=on,wait=off"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    con_src, p_dst = Console(p_src), None
    t0 = time.time()
    try:
        fsynced = lambda lines: sum(1 for _, l in lines if l.startswith("VDT fsynced"))   # noqa: E731
        check(con_src.wait_for(lambda ls: fsynced(ls) >= 5, BOOT_TIMEOUT),
              f"migrate: the guest booted and fsynced files on the source ({time.time() - t0:.1f}s)")
        # The management step, part 1: QEMU's vhost-user-blk reads the config space (the writeback
        # byte) from its back end once, when the device is created, and then only takes capacity
        # changes.  So the destination's vdisk-vhost gets the guest's choice before its QEMU starts.
        c_src, c_dst = Qmp(ctl_src), Qmp(ctl_dst)
        state = c_src.cmd("x-vdisk-query-device")[0]
        check(state["write-cache"] is False and state["active"] is True,
              f"migrate: the source reports the guest's write-through while it runs ({state})")
        c_dst.cmd("x-vdisk-set-device-state", device="drive0", **{"write-cache": state["write-cache"]})
        p_dst = subprocess.Popen(base + dst.qemu_args(dev) + ["-qmp", f"unix:{qmp_dst},server=on,wait=off",
                                                              "-incoming", f"unix:{mig}", "-S"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        con_dst = Console(p_dst)
        q_src, q_dst = Qmp(qmp_src), Qmp(qmp_dst)
        q_src.cmd("migrate-set-parameters", **{"max-bandwidth": 64 << 20, "downtime-limit": 500})
        t_start = time.monotonic_ns() // 1000
        q_src.cmd("migrate", uri=f"unix:{mig}")
        status = "?"
        for _ in range(1200):
            status = q_src.cmd("query-migrate").get("status")
            if status in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.1)
        t_done = time.monotonic_ns() // 1000
        check(status == "completed", f"migrate: QEMU's migration {status} in {(t_done - t_start) / 1e6:.1f}s")
        # Part 2, the final state (the guest may have changed it meanwhile), before the guest resumes.
        state = c_src.cmd("x-vdisk-query-device")[0]
        check(state["write-cache"] is False and state["active"] is False,
              f"migrate: the source reports the guest's write-through and has released the image ({state})")
        c_dst.cmd("x-vdisk-set-device-state", device="drive0", **{"write-cache": state["write-cache"]})
        q_dst.cmd("cont")
        q_src.cmd("quit")
        p_src.wait(timeout=60)
        check(con_dst.wait_for(lambda ls: any("VDT waiting for go" in l for _, l in ls)
                               or any("VDT waiting for go" in l for _, l in con_src.lines), BOOT_TIMEOUT),
              "migrate: phase 1 ended")
        p_dst.stdin.write(b"go\n")
        p_dst.stdin.flush()
        check(con_dst.wait_for(lambda ls: any("VDT phase after" in l for _, l in ls), 60),
              "migrate: phase 2 runs on the destination")
        after = c_dst.cmd("x-vdisk-query-device")[0]
        check(after["write-cache"] is False and after["active"] is True,
              f"migrate: the destination holds the image with the write cache off ({after})")
        p_dst.wait(timeout=BOOT_TIMEOUT)
        for c in (c_src, c_dst, q_src, q_dst):
            c.close()
    finally:
        for p in (p_src, p_dst):
            if p and p.poll() is None:
                p.kill()
                p.wait()
    st_src, st_dst = src.stop(), dst.stop()
    os.makedirs(a.results, exist_ok=True)
    for side in ("src", "dst"):   # each vdisk-vhost's log, with every vhost-user message (G_MESSAGES_DEBUG)
        shutil.copy(os.path.join(work, side, "vhost-virtio-blk.log"), os.path.join(a.results, f"migrate-{side}.log"))
    lines = con_src.lines + (con_dst.lines if p_dst else [])
    for _, line in lines:
        if line.startswith("VDT") and not line.startswith("VDT fsynced") or "qemu-system" in line:
            print("    " + line)
    res = parse_console("\n".join(line for _, line in lines))
    check(res["end"] == 0 and not res["ops_fail"], "migrate: the guest ran both phases without a failure")
    final = res["states"].get("vda:final", {})
    check(final.get("write_cache") == "write through" and final.get("cache_type") == "write through",
          f"migrate: the guest still sees write through after the migration (queue/write_cache "
          f"'{final.get('write_cache')}', the device's cache_type '{final.get('cache_type')}')")
    records, phase2 = [], False
    for t_us, line in lines:
        phase2 |= line.startswith("VDT phase after")
        for r in fsynced_records([(t_us, line)]):
            r.name = ("after/" if phase2 else "") + r.name
            records.append(r)
    before = [r for r in records if r.t_us < t_start]
    during = [r for r in records if t_start <= r.t_us < t_done]
    late = [r for r in records if r.t_us >= t_done]
    print(f"    fsynced file versions: {len(before)} before, {len(during)} during, {len(late)} after the migration")
    check(before and during and late, "migrate: the guest fsynced files before, during and after the migration")
    clean, out = crashcut.fsck(img)
    check(clean, "migrate: e2fsck -fn is clean" + ("" if clean else "\n" + out))
    want = crashcut.promised(records, None)
    got = crashcut.read_files(img, sorted(want), os.path.join(work, "files"))
    lost = [n for n, (r, allowed) in want.items() if got[n] not in allowed]
    check(want and not lost, f"migrate: all {len(want)} fsynced files hold their last version ({len(lost)} lost: "
          f"{sorted(lost)[:5]})")
    v = st_src["vhost"]
    check(v["log_bases"] >= 1 and v["images_released"] >= 1,
          f"migrate: the source logged dirty memory and released the image (log_bases={v['log_bases']}, "
          f"images_released={v['images_released']})")
    v, d = st_dst["vhost"], st_dst["drive0"]
    check(v["images_taken"] == 1, f"migrate: the destination took the image once (images_taken={v['images_taken']})")
    # Every guest write on the destination was a durable one (WCE=0); on the host each is a dsync write, or,
    # under group commit (cache-modes.md rule 27), a plain write covered by a shared fdatasync.
    durable = d["host_rwf_dsync_writes"] + d["host_dsync_writes"]
    check(d["writes"] > 0 and d["durable_writes"] == d["writes"] and
          (d["host_writes"] == durable or d["group_commits"] > 0),
          f"migrate: every destination write was durable ({d['durable_writes']} of {d['writes']} guest writes; "
          f"{durable} of {d['host_writes']} host writes dsync, {d['group_commits']} group commits)")
    check(d["errors"] == 0 and st_src["drive0"]["errors"] == 0, "migrate: no I/O errors on either side")


def nbd_requests(log, command, flags=""):
    """Requests (not replies) of one NBD command in nbdkit's log filter output, with flags (e.g. "fua=1")."""
    n = 0
    with open(log) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.endswith(" ...") and f" {command} id=" in line and flags in line:
                n += 1
    return n


def case_vhost_nbd(a, guest, work):
    """vdisk-vhost virtio-blk with its disk on an nbdkit export: the guest toggles its write cache; its fsyncs
    arrive as NBD_CMD_FLUSH, its writes in write-through as FUA writes; a second boot reads the data back."""
    if not shutil.which("nbdkit"):
        print("SKIP: nbdkit is not installed (scripts/install-deps.sh installs it)")
        return 77
    sock, log = os.path.join(work, "nbd.sock"), os.path.join(work, "nbd.log")
    srv = subprocess.Popen(["nbdkit", "-U", sock, "-f", "--exit-with-parent", "--filter=log", "memory",
                            f"size={IMG_SIZE}", f"logfile={log}"], stdin=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    try:
        vh = Vhost(a.vhost, work, "virtio-blk", [f"driver=nbd,uri=nbd+unix:///?socket={sock},cache=writeback"])
        res = guest.boot("blk-wb:30", vh.qemu_args("vhost-user-blk-pci"), memfd=True, label="vdisk nbd blk-wb")
        res2 = guest.boot("blk-verify:30", vh.qemu_args("vhost-user-blk-pci"), memfd=True,
                          label="vdisk nbd blk-verify (reconnect)")
        st = vh.stop()
    finally:
        srv.terminate()
        srv.wait()
    expect_states(res, "vda", "vdisk nbd", "write back", fua=0)
    d = st["drive0"]
    flushes, fua = nbd_requests(log, "Flush"), nbd_requests(log, "Write", "fua=1")
    check(flushes >= 4, f"vdisk nbd: the guest's 4 fsyncs arrived as >= 4 NBD_CMD_FLUSH (server saw {flushes})")
    check(flushes == d["host_fdatasync"],
          f"vdisk nbd: every NBD_CMD_FLUSH the server saw was counted as a host flush ({d['host_fdatasync']})")
    check(fua > 0 and fua == d["host_rwf_dsync_writes"],
          f"vdisk nbd: the writes made in write-through arrived as FUA writes ({fua}, counted "
          f"{d['host_rwf_dsync_writes']})")
    check(d["aio"] == "driver" and d["errors"] == 0 and d["in_flight"] == 0,
          f"vdisk nbd: the nbd driver's own engine, no error, nothing in flight (aio={d['aio']})")
    check(res2["ops_fail"] == [] and res2["ops_ok"] == 4, "vdisk nbd: a second boot reads back all 4 regions")
    save(a.results, "vhost-nbd", {"label": "vdisk-vhost virtio-blk on nbdkit (cache=writeback)", "wb": res})


CASES = {
    "vhost-nbd": case_vhost_nbd,
    "vhost-blk": case_vhost_blk,
    "vhost-scsi": case_vhost_scsi,
    "vhost-crash": case_vhost_crash,
    "ext4-crash": case_ext4_crash,
    "vhost-queue-sizes": case_vhost_queue_sizes,
    "vhost-migrate": case_vhost_migrate,
    "vhost-qcow2": case_vhost_qcow2,
    "qemu-virtio-blk": case_qemu_blk,
    "qemu-virtio-scsi": case_qemu_scsi,
    "qsd-vhost-blk": case_qsd_blk,
    "bench": case_bench,
    "bench-nbd": case_bench_nbd,
    "compare": case_compare,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--vhost", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    a = ap.parse_args()
    kit = os.path.join(a.build_dir, "guest")
    a.results = os.path.join(kit, "results")
    if a.case != "compare":
        for tool in ("qemu-system-x86_64", "qemu-storage-daemon"):
            if not shutil.which(tool):
                print(f"SKIP: {tool} is not installed and could not be (scripts/install-deps.sh installs "
                      f"qemu-system-x86); a real-guest test needs it")
                return 77
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run([os.path.join(here, "build-initramfs.sh"), kit], check=True)
    with tempfile.TemporaryDirectory(prefix="vdisk-guest-") as work:
        if CASES[a.case](a, Guest(kit), work) == 77:
            return 77
    if failures:
        print(f"{len(failures)} assertion(s) failed:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
