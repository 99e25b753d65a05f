#!/usr/bin/env python3
"""gen-seeds.py - write the seed corpora of the fuzz targets (tests/fuzz/corpus/TARGET/).

Each device seed is the operation stream (in the target's input format, see
the Op enums in fuzz-*.c and docs/fuzzing.md) of what the reference guest
drivers do: tests/qtest-like/ide/ata-guest.c (probe, IDENTIFY, PIO and DMA
I/O, SET FEATURES write cache, FLUSH, SRST), tests/qtest-like/scsi
(TEST UNIT READY, INQUIRY, READ CAPACITY, MODE SENSE/SELECT of the caching
page, READ/WRITE with FUA, SYNCHRONIZE CACHE, TMFs) and
tests/qtest-like/virtio-blk (IN/OUT/FLUSH/GET_ID, the writeback byte).  The
qtest seeds are the command lines of the harness sequences
(tests/qtest-like/**/*.seq) with expectations and directives removed.
Deterministic: rerunning writes the same files.  Usage: gen-seeds.py [OUTDIR]
"""
import pathlib
import struct
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def u8(v): return struct.pack('<B', v & 0xff)
def u16(v): return struct.pack('<H', v & 0xffff)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def u64(v): return struct.pack('<Q', v & 0xffffffffffffffff)


# ---- ATA (fuzz-ata.c) ----
ATA_CMDS = [0x20, 0x24, 0x25, 0x29, 0x30, 0x34, 0x35, 0x39, 0x3d, 0x40, 0x42, 0x61, 0x06, 0x91, 0xc4, 0xc5, 0xc6,
            0xc8, 0xca, 0xce, 0xe0, 0xe1, 0xe5, 0xe7, 0xea, 0xec, 0xef, 0x00, 0x08, 0x2f, 0xb0, 0xf8, 0x27]
A_OUTB, A_OUTW, A_IN, A_CMD28, A_CMD48, A_PRD, A_BM, A_PIO, A_RAM, A_CTL, A_PUMP, A_SETTLE = range(12)


def ata_cmd(cmd, lba=0, count=0, feature=0, lba48=False):
    return u8(A_CMD48 if lba48 else A_CMD28) + u8(ATA_CMDS.index(cmd)) + u32(lba) + u8(count) + u8(feature) + u8(0)


def ata_status():
    return u8(A_IN) + u8(7) + u8(0)            # primary command block + 7 (status), byte


def ata_dma(cmd, lba, sectors, read):
    ops = u8(A_PRD) + u8(0) + u32(0x10000) + u16(sectors * 512) + u8(0x80)
    ops += u8(A_BM) + u8(0x40 | 0x10 | (0x08 if read else 0))       # table, clear, direction
    ops += ata_cmd(cmd, lba, sectors, lba48=cmd in (0x25, 0x35, 0x3d))
    ops += u8(A_BM) + u8((0x08 if read else 0) | 0x01)              # start
    ops += u8(A_SETTLE) + u8(A_BM) + u8(0x08 if read else 0) + ata_status()
    return ops


def ata_pio(cmd, lba, sectors, out):
    return ata_cmd(cmd, lba, sectors, lba48=cmd in (0x24, 0x34)) + u8(A_SETTLE) + \
        b''.join(u8(A_PIO) + u8((0x80 if out else 0) | 16) + u8(A_SETTLE) for _ in range(sectors)) + ata_status()


def ata_seeds():
    probe = u8(A_CTL) + u8(0x04) + u8(A_CTL) + u8(0x00) + u8(A_SETTLE) + ata_status() + \
        ata_cmd(0xec) + u8(A_SETTLE) + u8(A_PIO) + u8(15) + ata_status()
    wce = lambda on: ata_cmd(0xef, feature=0x02 if on else 0x82) + u8(A_SETTLE) + ata_status()
    ram = u8(A_RAM) + u32(0x10000) + u8(32) + bytes(range(32))
    return {
        'probe-identify': u8(0) + probe,
        'dma-read-write': u8(0) + probe + ram + ata_dma(0x35, 8, 8, False) + ata_dma(0x25, 8, 8, True),
        'dma-fua-flush': u8(0) + probe + wce(True) + ata_dma(0x3d, 100, 4, False) + ata_cmd(0xea) + u8(A_SETTLE) +
        ata_status() + wce(False),
        'pio-read-write': u8(0) + probe + ata_pio(0x30, 16, 2, True) + ata_pio(0x20, 16, 2, False),
        'dma-end-of-disk': u8(0) + ata_dma(0x25, 8190, 8, True) + ata_dma(0x35, 8191, 2, False),
        'srst-during-dma-write': u8(0) + ata_dma(0x35, 0, 8, False)[:-6] + u8(A_CTL) + u8(0x04) + u8(A_CTL) +
        u8(0x00) + ata_dma(0x35, 0, 8, False),
        'writethrough-write': u8(1) + probe + ata_dma(0x35, 0, 1, False),
        'readonly-write': u8(2) + ata_dma(0x35, 0, 1, False) + ata_pio(0x30, 0, 1, True),
    }


# ---- SCSI (fuzz-scsi.c) ----
S_CDB, S_MODE_SELECT, S_RW, S_TMF, S_PUMP, S_SETTLE = range(6)
RW_OPS = [0x08, 0x0a, 0x28, 0x2a, 0x2e, 0x2f, 0x35, 0x41, 0x42, 0x88, 0x8a, 0x8e, 0x8f, 0x91, 0x93, 0xa8, 0xaa]


def scsi_cdb(cdb, out=b'', in_len=0, nexus=0, tag=0):
    return u8(S_CDB) + u8(nexus) + u8(tag) + u8(len(cdb) - 1) + bytes(cdb) + u16(len(out)) + out[:64] + u16(in_len)


def scsi_rw(op, lba, count, cdb1=0, nexus=0, tag=0):
    writes = op in (0x0a, 0x2a, 0x2e, 0x41, 0x42, 0x8a, 0x8e, 0x93, 0xaa)
    return u8(S_RW) + u8(RW_OPS.index(op)) + u8(cdb1) + u8(0) + u16(lba) + u8(count) + \
        bytes(32 if writes and count else 0) + u8(nexus) + u8(tag)


def caching_page(wce):
    page = bytes([0x08, 0x12, 0x04 if wce else 0x00]) + bytes(17)
    return bytes([0, 0, 0, 0]) + page                                 # MODE SELECT(6) header, no block descriptor


def scsi_seeds():
    tur, inquiry = [0x00, 0, 0, 0, 0, 0], [0x12, 0, 0, 0, 96, 0]
    probe = scsi_cdb(tur) + scsi_cdb(tur) + scsi_cdb(inquiry, in_len=96) + \
        scsi_cdb([0x12, 1, 0x80, 0, 64, 0], in_len=64) + scsi_cdb([0x25] + [0] * 9, in_len=8) + \
        scsi_cdb([0x1a, 0x08, 0x08, 0, 64, 0], in_len=64) + u8(S_SETTLE)
    ms = lambda wce, flags=0x10: u8(S_MODE_SELECT) + u8(flags) + u8(24) + caching_page(wce)
    return {
        'probe': u8(0) + probe,
        'wce-off-on': u8(0) + probe + ms(False) + u8(S_SETTLE) + ms(True) + u8(S_SETTLE),
        'rw-fua-sync': u8(0) + probe + scsi_rw(0x2a, 8, 8) + scsi_rw(0x2a, 16, 1, cdb1=0x08) +
        scsi_rw(0x28, 8, 8) + scsi_rw(0x35, 0, 0) + u8(S_SETTLE),
        'rtd-defaults': u8(0) + probe + ms(False) + u8(S_MODE_SELECT) + u8(0x52) + u8(0) +
        u8(S_MODE_SELECT) + u8(0x42) + u8(0) + u8(S_SETTLE),
        'abort-in-flight': u8(0) + scsi_rw(0x2a, 0, 16, tag=5) + scsi_rw(0x2a, 0, 16, tag=6) +
        u8(S_TMF) + u8(0) + u8(0) + u8(5) + u8(S_TMF) + u8(3) + u8(0) + u8(0) + scsi_rw(0x2a, 0, 16, tag=7) +
        u8(S_SETTLE),
        'lun-reset-nexus': u8(1) + scsi_rw(0x8a, 8190, 4, nexus=1) + u8(S_TMF) + u8(4) + u8(1) + u8(0) +
        scsi_cdb(tur, nexus=1) + u8(S_TMF) + u8(5) + u8(0) + u8(0) + u8(S_SETTLE),
        'unmap-writesame': u8(0) + scsi_cdb([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0],
                                           out=bytes([0, 22, 0, 16, 0, 0, 0, 0]) + u64(0)[::-1] +
                                           u32(8)[::-1] + bytes(4)) + scsi_rw(0x93, 0, 8) + u8(S_SETTLE),
        'readonly': u8(3) + probe + scsi_rw(0x2a, 0, 1) + ms(False) + u8(S_SETTLE),
    }


# ---- virtio (fz-virtio.c, fuzz-virtio-blk.c, fuzz-virtio-scsi.c) ----
V_DESC, V_PUBLISH, V_KICK, V_RAM, V_MMIO, V_CONFIG, V_PUMP, V_SETTLE, V_RESET = range(9)
B_REQ = 9
B_TYPES = [0, 1, 4, 8, 11, 13, 14, 2, 0xffffffff]


def vblk_req(type_, sector, segs=(), queue=0, indirect=False, status=True, ranges=()):
    shape = len(segs) | (0x04 if indirect else 0) | (0 if status else 0x08)
    if any(s % 512 or s > 4096 for s in segs):
        shape |= 0x10
    ops = u8(B_REQ) + u8(shape) + u8(B_TYPES.index(type_)) + u16(sector)
    if type_ in (11, 13):
        ops += u8(len(ranges) - 1) + b''.join(u16(s) + u16(n) + u8(f) for s, n, f in ranges)
    else:
        ops += b''.join(u16(s) if shape & 0x10 else u8(s // 512) for s in segs)
    return ops + u8(queue)


def vblk_seeds():
    return {
        'read-write-flush': u8(0) + u8(0) + vblk_req(1, 0, [4096]) + vblk_req(0, 0, [4096]) + vblk_req(4, 0) +
        u8(V_SETTLE),
        'get-id-indirect': u8(0) + u8(0) + vblk_req(8, 0, [512], indirect=True) + vblk_req(0, 8, [512, 1024],
                                                                                      indirect=True) + u8(V_SETTLE),
        'writeback-toggle': u8(0) + u8(0) + u8(V_CONFIG) + u8(32) + u8(0) + u32(0) + vblk_req(1, 8, [512]) +
        u8(V_CONFIG) + u8(32) + u8(0) + u32(1) + vblk_req(4, 0) + u8(V_SETTLE),
        'discard-zeroes': u8(0) + u8(0) + vblk_req(11, 0, ranges=[(0, 8, 0), (64, 8, 0)]) +
        vblk_req(13, 0, ranges=[(8, 16, 1)]) + u8(V_SETTLE),
        'merge-and-zero-length': u8(0x00) + u8(0) + vblk_req(1, 0, [512]) + vblk_req(1, 1, [512]) +
        vblk_req(1, 2, []) + vblk_req(0, 0, []) + u8(V_SETTLE),
        'end-of-disk-multiqueue': u8(0) + u8(0) + vblk_req(0, 8190, [2048], queue=1) +
        vblk_req(1, 8191, [1024], queue=0) + u8(V_SETTLE),
        'reset-in-flight': u8(0) + u8(0) + vblk_req(1, 0, [4096]) + vblk_req(1, 8, [4096]) + u8(V_RESET) +
        vblk_req(1, 0, [4096]) + u8(V_SETTLE),
        'bad-chain': u8(0) + u8(0) + u8(V_DESC) + u8(0) + u8(3) + u8(0x01) + u16(0) + u16(16) + u8(3) +
        u8(V_PUBLISH) + u8(0) + u8(0x43) + u8(V_SETTLE) + u8(V_RESET) + vblk_req(0, 0, [512]) + u8(V_SETTLE),
        'readonly-write': u8(2) + u8(0) + vblk_req(1, 0, [512]) + vblk_req(13, 0, ranges=[(0, 1, 0)]) + u8(V_SETTLE),
    }


SC_CMD, SC_RW, SC_TMF, SC_EVENT = 9, 10, 11, 12
SC_RW_OPS = [0x28, 0x2a, 0x88, 0x8a, 0x35, 0x91, 0x15, 0x55, 0x1a, 0x5a, 0x12, 0x00, 0x03, 0xa0, 0x25, 0x9e, 0x42,
             0x41, 0x93, 0x1b]


def vscsi_cmd(cdb, out=b'', in_len=0, lun=0, tag=0, queue=0):
    ops = u8(SC_CMD) + u8(len(cdb) - 1) + bytes(cdb) + u16(len(out)) + u16(in_len)
    ops += u8(lun) + u8(tag) + u8(0) + u8(queue) + out[:24]
    return ops


def vscsi_rw(op, cdb1, lba, count, lun=0, tag=0, queue=0):
    writes = op in (0x2a, 0x8a, 0x15, 0x55, 0x41, 0x93, 0x42)
    return u8(SC_RW) + u8(SC_RW_OPS.index(op)) + u8(cdb1) + u16(lba) + u8(count) + u8(lun) + u8(tag) + u8(0) + \
        u8(queue) + bytes(24 if writes and count else 0)


def vscsi_tmf(subtype, lun=0, tag=0):
    return u8(SC_TMF) + u8(0) + u8(subtype) + u8(lun) + u8(tag) + u8(0)


def vscsi_seeds():
    probe = vscsi_cmd([0, 0, 0, 0, 0, 0]) + vscsi_cmd([0x12, 0, 0, 0, 96, 0], in_len=96) + \
        vscsi_cmd([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0], in_len=16) + \
        vscsi_cmd([0x9e, 0x10] + [0] * 8 + [0, 0, 0, 32, 0, 0], in_len=32) + u8(V_SETTLE)
    ms = lambda wce: vscsi_cmd([0x15, 0x10, 0, 0, 24, 0], out=caching_page(wce))
    return {
        'probe': u8(0) + probe,
        'probe-lun1-and-absent': u8(2) + vscsi_cmd([0, 0, 0, 0, 0, 0], lun=1) + vscsi_cmd([0, 0, 0, 0, 0, 0], lun=3) +
        u8(V_SETTLE),
        'wce-mode-select': u8(0) + probe + ms(False) + u8(V_SETTLE) + ms(True) + u8(V_SETTLE),
        'rw-sync-queues': u8(0) + vscsi_rw(0x2a, 0, 0, 8) + vscsi_rw(0x28, 0, 0, 8, queue=1) +
        vscsi_rw(0x2a, 0x08, 8, 1) + vscsi_rw(0x35, 0, 0, 0) + u8(V_SETTLE),
        'abort-task': u8(0) + vscsi_rw(0x2a, 0, 0, 8, tag=5) + vscsi_tmf(0, tag=5) + vscsi_tmf(0, tag=99) +
        u8(V_SETTLE),
        'lun-reset-in-flight': u8(1) + vscsi_rw(0x8a, 0, 100, 8) + vscsi_tmf(5) + vscsi_rw(0x8a, 0, 100, 8) +
        u8(V_SETTLE),
        'events-an': u8(4) + u8(SC_EVENT) + u8(0) + u8(SC_EVENT) + u8(0) + u8(SC_TMF) + u8(2) + u8(0) + u8(0) +
        u8(0) + u8(0x40) + u8(0) + ms(False) + u8(V_SETTLE),
        'reset-in-flight': u8(0) + vscsi_rw(0x2a, 0, 0, 8) + u8(V_RESET) + vscsi_rw(0x2a, 0, 0, 8) + u8(V_SETTLE),
    }


# ---- vhost-user (fuzz-vhost-user.c) ----
H_RAW, H_MEM, H_FEAT, H_RING, H_REQ, H_KICK, H_VBASE, H_ENABLE, H_PUMP, H_SETTLE, H_RECONNECT = range(11)


def vh_start(queues):
    return u8(H_FEAT) + u64(0xffffffffffffffff) + u8(0xff) + u8(H_MEM) + u8(0) + \
        b''.join(u8(H_RING) + u8(q) + u8(0) for q in queues)


def vh_blk(kind, lba, blocks, q=0):
    return u8(H_REQ) + u8(q | (kind << 2)) + u8(blocks - 1) + u16(lba)


def vh_scsi(write, lba, blocks, tag=0):
    return u8(H_REQ) + u8(1 if write else 0) + u8(blocks - 1) + u16(lba) + u8(tag)


def vh_tmf(subtype, tag):
    return u8(H_REQ) + u8(0x80 | subtype) + u8(0) + u16(0) + u8(tag)


def vhost_seeds():
    return {
        'blk-io': u8(0) + vh_start([0, 1]) + vh_blk(1, 0, 8) + vh_blk(0, 0, 8, q=1) + vh_blk(2, 0, 1) +
        u8(H_SETTLE) + u8(H_VBASE) + u8(0),
        'blk-mem-table-in-flight': u8(0) + vh_start([0]) + b''.join(vh_blk(0, 64 * i, 128) for i in range(5)) +
        u8(H_MEM) + u8(1) + u8(H_SETTLE),
        'blk-stop-in-flight': u8(0) + vh_start([0]) + b''.join(vh_blk(1, 8 * i, 8) for i in range(5)) +
        u8(H_VBASE) + u8(0),
        'scsi-io': u8(1) + vh_start([0, 2]) + vh_scsi(True, 0, 8) + vh_scsi(False, 0, 8) + u8(H_SETTLE),
        'scsi-mem-table-in-flight': u8(1) + vh_start([0, 2]) +
        b''.join(vh_scsi(False, 64 * i, 128, tag=i) for i in range(5)) + u8(H_MEM) + u8(1) + u8(H_SETTLE),
        'scsi-tmf-then-mem-table': u8(1) + vh_start([0, 2]) + vh_tmf(0, 77) + u8(H_MEM) + u8(1) + u8(H_SETTLE),
        'scsi-stop-in-flight': u8(1) + vh_start([0, 2]) + b''.join(vh_scsi(False, 8 * i, 8, tag=i) for i in range(5)) +
        u8(H_VBASE) + u8(2),
        'reconnect': u8(0) + vh_start([0]) + vh_blk(1, 0, 8) + u8(H_RECONNECT) + vh_start([0]) + vh_blk(0, 0, 8) +
        u8(H_SETTLE),
        'raw-bad-messages': u8(1) + u8(H_RAW) + u8(5) + u8(0) + u8(8) + u64(9) + u8(1) + u8(H_RAW) + u8(9) + u8(0) +
        u8(40) + bytes(40) + u8(0) + u8(H_RAW) + u8(24) + u8(0x08) + u8(12) + bytes(12) + u8(0),
    }


# ---- options (fuzz-options.c) ----
def options_seeds():
    s = {
        'blk-size': b'\x00size=1M,cache=writethrough',
        'blk-all-keys': b'\x00size=64K,cache=none,aio=threads,read-only=on,wt-policy=dsync,format=raw',
        'blk-bad-cache': b'\x00size=1M,cache=sometimes',
        'drive-ide': b'\x01if=ide,index=1,id=d1,serial=ABC,driver=null,size=1M',
        'drive-virtio': b'\x01if=virtio,num-queues=4,driver=null,size=2M,cache=unsafe',
        'drive-escaped': b'\x01if=scsi,serial=a,,b,driver=null,size=1M',
        'vmm-args': b'\x02-m\x0064M\x00--drive\x00if=ide,driver=null,size=1M\x00--qtest\x00stdio',
        'size': b'\x03512K',
        'size-overflow': b'\x0318446744073709551615T',
        'vhost-drive': b'\x04driver=null,size=1M,serial=disk1',
    }
    return s


# ---- qtest (fuzz-qtest.c): the harness sequences' command lines ----
def qtest_seeds():
    out = {}
    for seq in sorted(ROOT.glob('tests/qtest-like/**/*.seq')):
        if 'must-fail' in seq.parts:
            continue
        lines = []
        for line in seq.read_text().splitlines():
            line = line.split('=>')[0].strip()
            if line and not line.startswith(('#', '@')):
                lines.append(line)
        if lines:
            out[seq.stem] = ('\n'.join(lines) + '\n').encode()
    return out


TARGETS = {'ata': ata_seeds, 'scsi': scsi_seeds, 'virtio-blk': vblk_seeds, 'virtio-scsi': vscsi_seeds,
           'vhost-user': vhost_seeds, 'options': options_seeds, 'qtest': qtest_seeds}


def main():
    outdir = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / 'corpus'
    for target, gen in TARGETS.items():
        d = outdir / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in gen().items():
            (d / name).write_bytes(data)


if __name__ == '__main__':
    main()
