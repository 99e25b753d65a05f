#!/usr/bin/env python3
"""test-crashcut.py - crashcut.py on a hand-made dm-log-writes log (no guest, no QEMU):
epochs and their t= stamps, every cut a durable prefix plus a subset of one epoch,
cuts reproducible from (seed, index), the promise rule, and a bad log refused."""
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashcut  # noqa: E402

failures = []


def check(cond, what):
    """Record one assertion; print it either way."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def entry(sector, nsect, flags, payload=b""):
    """One log entry: a header sector (with a MARK's text) and a write's data."""
    text = payload if flags & crashcut.MARK else b""
    hdr = struct.pack("<QQQQ", sector, nsect, flags, len(text)) + text
    return hdr + bytes(crashcut.SECTOR - len(hdr)) + (b"" if flags & crashcut.MARK else payload)


def write_log(path, entries):
    """A dm-log-writes file as crashsim writes it."""
    sup = struct.pack("<QQQI", crashcut.MAGIC, 1, len(entries), crashcut.SECTOR)
    with open(path, "wb") as f:
        f.write(sup + bytes(crashcut.SECTOR - len(sup)) + b"".join(entries))


def main():
    """Build the log, cut it every way the seed allows, and check each image."""
    sec = crashcut.SECTOR
    W = [bytes([0x10 + i]) * sec for i in range(6)]
    entries = [entry(0, 1, 0, W[0]), entry(0, 0, crashcut.FLUSH), entry(0, 0, crashcut.MARK, b"t=100"),
               entry(1, 1, 0, W[1]), entry(0, 1, 0, W[2]), entry(0, 0, crashcut.FLUSH),
               entry(0, 0, crashcut.MARK, b"t=200"), entry(0, 0, crashcut.MARK, b"cut-1"),
               entry(2, 1, 0, W[3]), entry(1, 1, crashcut.DISCARD), entry(3, 1, 0, W[4])]
    with tempfile.TemporaryDirectory(prefix="crashcut-test-") as work:
        log_path, base = os.path.join(work, "log"), os.path.join(work, "base.img")
        write_log(log_path, entries)
        with open(base, "wb") as f:
            f.write(b"\xee" * 8 * sec)
        L = crashcut.Log(log_path)
        check([len(e.ops) for e in L.epochs] == [1, 2, 3], "three epochs of 1, 2 and 3 writes")
        check([e.t_us for e in L.epochs] == [100, 200, None], "each closed by its FLUSH's t=, the last at close")
        # Every legal image: prefix of whole epochs, then a subset of one epoch's writes, in log order.
        legal = set()
        for e in range(3):
            ops = L.epochs[e].ops
            for mask in range(1 << len(ops)):
                img = bytearray(b"\xee" * 8 * sec)
                for op in [o for ep in L.epochs[:e] for o in ep.ops] + [o for i, o in enumerate(ops) if mask >> i & 1]:
                    data = bytes(op.nsect * sec) if op.data_off is None else L.raw[op.data_off:op.data_off + op.nsect * sec]
                    img[op.sector * sec:(op.sector + op.nsect) * sec] = data
                legal.add(bytes(img))
        cutter = crashcut.Cutter(L, base, work)
        seen, epochs = set(), set()
        out = os.path.join(work, "cut.img")
        for k in range(64):
            e, kept, pending = cutter.materialise(7, k, out)   # any order: the cursor restarts when it must
            img = open(out, "rb").read()
            check(img in legal, f"cut {k} (epoch {e}, {kept}/{pending} kept) is a durable prefix plus a subset")
            seen.add(img)
            epochs.add(e)
            if k in (3, 40):
                fresh = os.path.join(work, f"fresh{k}")
                os.makedirs(fresh)
                again = os.path.join(fresh, "again.img")
                crashcut.Cutter(L, base, fresh).materialise(7, k, again)
                check(open(again, "rb").read() == img, f"cut {k} is the same image from a fresh cutter")
        check(epochs == {0, 1, 2} and len(seen) >= 8, f"64 cuts reach every epoch and {len(seen)} distinct states")
        recs = [crashcut.Record(150, "a", 1, 1, "x1"), crashcut.Record(250, "a", 2, 1, "x2"),
                crashcut.Record(90, "b", 1, 1, "y1")]
        p = crashcut.promised(recs, 200)
        check(sorted(p) == ["a", "b"] and p["a"][0].ver == 1 and p["a"][1] == {"x1", "x2"},
              "promised at t=200: a v1 (or the later v2), b v1")
        check(crashcut.promised(recs, 100).keys() == {"b"} and crashcut.promised(recs, None)["a"][1] == {"x2"},
              "promised at t=100: only b; at the end: a v2 only")
        with open(log_path, "r+b") as f:
            f.write(b"\0" * 8)
        try:
            crashcut.Log(log_path)
            check(False, "a log without the magic is refused")
        except ValueError as e:
            check("not a dm-log-writes log" in str(e), f"a log without the magic is refused: {e}")
    if failures:
        print(f"{len(failures)} assertion(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
