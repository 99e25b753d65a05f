#!/usr/bin/env python3
"""crashcut.py - crash states of a crashsim op log as image files, and the file oracle
of the real-guest crash test (docs/crash-testing.md, run-guest.py case ext4-crash).

The log is the dm-log-writes file a drive opened with driver=crashsim,...,log=LOG
writes when it closes: writes in the order they became durable, a FLUSH entry
after the writes each host flush made durable, a MARK "t=MICROSECONDS"
(CLOCK_MONOTONIC) after each FLUSH, and the writes still volatile at the end.

Epoch e is the run of writes between FLUSH e-1 and FLUSH e (the last epoch:
after the last FLUSH, closed by the drive's close).  Cut (seed, k) picks an
epoch e and keeps every write of the epochs before it plus a seeded subset of
epoch e's writes, applied in log order: the state the disk could hold if the
power failed just before FLUSH e completed.  That is one legal crash state of
crashsim's model (every durable write, any subset of the volatile ones, the
last kept writer per sector winning).  A discarded range is written as zeroes
(one legal outcome).  Every cut is a function of (log, seed, k) alone.

  crashcut.py --log LOG --base BASE --seed S --index K --out IMG   one cut as an image
  crashcut.py --log LOG                                            the epochs and their times
  crashcut.py ... --out IMG --check                                 also fsck it (journal replay first)

BASE is the image as it was when the drive opened it (the durable base); IMG
is a reflink or sparse copy of it with the cut's writes laid over it.
"""
import argparse
import hashlib
import os
import random
import struct
import subprocess
import sys
import tempfile

SECTOR = 512
MAGIC = 0x6a736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8


class Op:
    """One logged write or discard: where, how long, flags, and its data's place in the log."""
    __slots__ = ("sector", "nsect", "flags", "data_off")

    def __init__(self, sector, nsect, flags, data_off):
        self.sector, self.nsect, self.flags, self.data_off = sector, nsect, flags, data_off


class Epoch:
    """The writes between two FLUSH entries, and when the closing FLUSH was logged (None: at close)."""

    def __init__(self):
        self.ops = []
        self.t_us = None


class Log:
    """A parsed dm-log-writes file: its epochs, in order."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.raw = f.read()
        magic, version, n = struct.unpack_from("<QQQ", self.raw, 0)
        sectorsize = struct.unpack_from("<I", self.raw, 24)[0]
        if magic != MAGIC or version != 1 or sectorsize != SECTOR:
            raise ValueError(f"{path}: not a dm-log-writes log (magic {magic:#x}, version {version}, "
                             f"sector size {sectorsize})")
        self.epochs = [Epoch()]
        self.flushes = 0
        pos = SECTOR
        last = None
        for _ in range(n):
            sector, nsect, flags, dlen = struct.unpack_from("<QQQQ", self.raw, pos)
            hdr, pos = pos, pos + SECTOR
            if flags & FLUSH:
                last = self.epochs[-1]
                self.epochs.append(Epoch())
                self.flushes += 1
            elif flags & MARK:
                text = self.raw[hdr + 32:hdr + 32 + dlen].decode(errors="replace")
                if last is not None and text.startswith("t="):
                    last.t_us = int(text[2:])
                last = None
            else:
                self.epochs[-1].ops.append(Op(sector, nsect, flags, None if flags & DISCARD else pos))
                if not flags & DISCARD:
                    pos += nsect * SECTOR
                last = None
        if pos != len(self.raw):
            raise ValueError(f"{path}: {len(self.raw) - pos} bytes after the last entry")

    def writes(self):
        """How many writes and discards the log holds."""
        return sum(len(e.ops) for e in self.epochs)

    def cut(self, seed, k):
        """Cut k of seed: (epoch index, the kept writes of that epoch)."""
        rng = random.Random(int.from_bytes(hashlib.sha256(f"crashcut:{seed}:{k}".encode()).digest()[:8], "little"))
        e = rng.randrange(len(self.epochs))
        kept = [op for op in self.epochs[e].ops if op.flags & FUA or rng.random() < 0.5]
        return e, kept

    def apply(self, f, ops):
        """Lay ops over the open image f, in order."""
        for op in ops:
            f.seek(op.sector * SECTOR)
            if op.data_off is None:
                f.write(bytes(op.nsect * SECTOR))
            else:
                f.write(self.raw[op.data_off:op.data_off + op.nsect * SECTOR])


def copy_image(src, dst):
    """A reflink copy where the file system can, else a sparse one: never every byte of the image."""
    subprocess.run(["cp", "--reflink=auto", "--sparse=always", src, dst], check=True)


class Cutter:
    """Materialises cuts of one log over one base, cheaply, in any order.

    A cursor image holds the base plus the writes of every epoch before the one
    it is at, and only moves forward (it restarts from the base when asked for
    an earlier epoch); each cut is a reflink/sparse copy of the cursor with the
    cut's kept writes of its own epoch laid over it.
    """

    def __init__(self, log, base, workdir):
        self.log, self.base = log, base
        self.cursor = os.path.join(workdir, "cursor.img")
        self.at = None

    def materialise(self, seed, k, out):
        """Write cut k of seed to out; returns (epoch, kept writes, writes pending in that epoch)."""
        e, kept = self.log.cut(seed, k)
        if self.at is None or self.at > e:
            copy_image(self.base, self.cursor)
            self.at = 0
        with open(self.cursor, "r+b") as f:
            for i in range(self.at, e):
                self.log.apply(f, self.log.epochs[i].ops)
        self.at = e
        copy_image(self.cursor, out)
        with open(out, "r+b") as f:
            self.log.apply(f, kept)
        return e, len(kept), len(self.log.epochs[e].ops)


def fsck(img):
    """Replay the journal as a mount would (e2fsck -E journal_only), then e2fsck -fn: (clean, its output)."""
    j = subprocess.run(["e2fsck", "-E", "journal_only", "-y", img], capture_output=True, text=True)
    if j.returncode >= 4:
        return False, f"journal replay: exit {j.returncode}\n{j.stdout}{j.stderr}"
    r = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
    return r.returncode == 0, f"e2fsck -fn: exit {r.returncode}\n{r.stdout}{r.stderr}"


def read_files(img, names, outdir):
    """name -> sha256 of the file as debugfs reads it from img (None: not there)."""
    os.makedirs(outdir, exist_ok=True)
    for n in os.listdir(outdir):
        os.unlink(os.path.join(outdir, n))
    cmds = os.path.join(outdir, "..", "debugfs.cmds")
    with open(cmds, "w") as f:
        f.writelines(f"dump /{n} {os.path.join(outdir, n.replace('/', '_'))}\n" for n in names)
    subprocess.run(["debugfs", "-f", cmds, img], capture_output=True)
    out = {}
    for n in names:
        p = os.path.join(outdir, n.replace("/", "_"))   # a name may be in a subdirectory (DIR/NAME)
        out[n] = hashlib.sha256(open(p, "rb").read()).hexdigest() if os.path.exists(p) else None
    return out


class Record:
    """One "VDT fsynced" console line and when the host read it (CLOCK_MONOTONIC microseconds)."""

    def __init__(self, t_us, name, ver, size, sha):
        self.t_us, self.name, self.ver, self.size, self.sha = t_us, name, int(ver), int(size), sha


def promised(records, t_us):
    """The files fsynced before t_us (None: the end): name -> (latest version, the contents allowed).

    A file replaced later (write NAME.tmp, fsync, rename over NAME, fsync the
    directory) may already hold a later version: the rename is atomic.
    """
    latest = {}
    for r in records:
        if t_us is None or r.t_us < t_us:
            latest[r.name] = r
    return {n: (r, {x.sha for x in records if x.name == n and x.ver >= r.ver}) for n, r in latest.items()}


def check_cut(img, records, t_us, scratch):
    """fsck the image, then read back every file fsynced before t_us: (clean, fsck output, promised, lost)."""
    clean, out = fsck(img)
    want = promised(records, t_us)
    got = read_files(img, sorted(want), os.path.join(scratch, "files"))
    lost = [(n, r.ver, "missing" if got[n] is None else "wrong content")
            for n, (r, allowed) in sorted(want.items()) if got[n] not in allowed]
    return clean, out, len(want), lost


def main():
    """The command line: list the epochs, or materialise (and check) one cut."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--base")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--out")
    ap.add_argument("--check", action="store_true", help="replay the journal and run e2fsck -fn on --out")
    a = ap.parse_args()
    log = Log(a.log)
    if not a.out:
        print(f"{a.log}: {log.writes()} writes, {log.flushes} flushes, {len(log.epochs)} epochs")
        for i, ep in enumerate(log.epochs):
            print(f"epoch {i}: {len(ep.ops)} writes, closed {'at t=%d us' % ep.t_us if ep.t_us else 'at close'}")
        return 0
    if not a.base:
        ap.error("--out needs --base (the image as the drive opened it)")
    with tempfile.TemporaryDirectory(prefix="crashcut-") as work:
        e, kept, pending = Cutter(log, a.base, work).materialise(a.seed, a.index, a.out)
    print(f"cut seed={a.seed} index={a.index}: epoch {e} of {len(log.epochs)}, kept {kept} of its {pending} "
          f"writes -> {a.out}")
    if a.check:
        clean, out = fsck(a.out)
        print(out)
        return 0 if clean else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
