/*
 * fuzz-ata.c - libFuzzer target: ATA register and command sequences with
 * PRD tables, through the PIIX3 IDE function's ports (hw/ide) on a bus with
 * 256 KiB of guest RAM and a 512 KiB null backend as primary master (small:
 * every sector a command moves costs a memset).  The input is a
 * list of operations (see the Op enum and docs/fuzzing.md).  Oracles: no
 * crash or sanitizer report; whenever the selected drive shows neither BSY
 * nor DRQ (the guest sees the command finished), the backend is idle; every
 * backend request completes; tearing the controller down never hangs.
 */
#include "fuzz-common.h"
#include "hw/bus.h"
#include "hw/ide.h"
#include "hw/pci.h"

#include <string.h>

#define RAM_BYTES (1u << 18)      /* zeroed for every input: keep it small */
#define PRD_TABLE 0x1000u
#define ST_BSY 0x80
#define ST_DRQ 0x08

typedef struct Rig {
    VdBus *bus;
    VdPciHost *pci;
    VdIdeController *ide;
    VdBlockBackend *blk;
} Rig;

/* Input operations. */
enum { OP_OUTB, OP_OUTW, OP_IN, OP_CMD28, OP_CMD48, OP_PRD, OP_BM, OP_PIO, OP_RAM, OP_CTL, OP_PUMP, OP_SETTLE,
       OP__MAX };

/* Commands OP_CMD28/48 pick from with a small index, so that most inputs run real commands. */
static const uint8_t ata_cmds[] = {
    0x20, 0x24, 0x25, 0x29, 0x30, 0x34, 0x35, 0x39, 0x3d, 0x40, 0x42, 0x61, 0x06, 0x91, 0xc4, 0xc5, 0xc6,
    0xc8, 0xca, 0xce, 0xe0, 0xe1, 0xe5, 0xe7, 0xea, 0xec, 0xef, 0x00, 0x08, 0x2f, 0xb0, 0xf8, 0x27,
};

/* null-aio disks (no thread hand-off per request), one on the thread pool. */
static const char *const backends[] = {
    "driver=null-aio,size=512K",
    "driver=null-aio,size=512K,cache=writethrough",
    "driver=null-aio,size=512K,read-only=on",
    "driver=null,size=500K,aio=threads",
};

/* Port I/O of the given width; reads have side effects (status, data) like a guest's. */
static uint64_t pin(Rig *r, uint16_t port, unsigned size)
{
    uint64_t v = 0;
    vd_bus_read(r->bus, VD_SPACE_PIO, port, size, &v);
    return v;
}

/* Port write of the given width. */
static void pout(Rig *r, uint16_t port, uint64_t v, unsigned size)
{
    vd_bus_write(r->bus, VD_SPACE_PIO, port, v, size);
}

/* A port in the IDE's windows: command block, control, or bus-master registers. */
static uint16_t pick_port(FzIn *in)
{
    uint8_t b = fz_u8(in);
    switch (b >> 6) {
    case 0:
        return VD_IDE_PRIMARY_CMD + (b & 7);
    case 1:
        return VD_IDE_SECONDARY_CMD + (b & 7);
    case 2:
        return VD_IDE_BMDMA_BASE + (b & 15);
    default:
        return (b & 1) ? VD_IDE_SECONDARY_CTL : VD_IDE_PRIMARY_CTL;
    }
}

/* If the guest sees the primary master idle, the quiescence oracle applies. */
static void check_idle(Rig *r)
{
    uint8_t dev = pin(r, VD_IDE_PRIMARY_CMD + 6, 1);
    uint8_t st = pin(r, VD_IDE_PRIMARY_CTL, 1);   /* alternate status: no side effect */
    if (!(dev & 0x10) && !(st & (ST_BSY | ST_DRQ))) {
        fz_quiescent("ata: primary master shows neither BSY nor DRQ");
    }
}

/* Load a task file and issue a command, 28- or 48-bit. */
static void op_cmd(Rig *r, FzIn *in, bool lba48)
{
    uint16_t p = VD_IDE_PRIMARY_CMD;
    uint8_t sel = fz_u8(in);
    uint8_t cmd = ata_cmds[sel % G_N_ELEMENTS(ata_cmds)];
    if (sel >= 0xf0) {
        cmd = fz_u8(in);                  /* now and then any opcode */
    }
    uint32_t lba = fz_u32(in) % 1100;    /* around the end of the 512 KiB disk */
    uint16_t count = fz_u8(in);
    uint8_t feature = fz_u8(in), devbits = fz_u8(in) & 0x10;
    /*
     * Sector counts: small unless the feature byte is odd.  Every sector a read moves is
     * memset by the null driver and most buffers are fresh ASan memory (page faults), so the
     * full 1..256 range on every command cost most of the run time; small counts reach the
     * same code, and an odd feature byte (ignored by the data commands) still reaches all.
     */
    if (!(feature & 0x01)) {
        count = (count & 0x0f) ?: 1;
    }
    if (lba48) {
        pout(r, p + 6, 0x40 | devbits, 1);
        pout(r, p + 1, 0, 1);
        pout(r, p + 2, 0, 1);
        pout(r, p + 3, lba >> 24, 1);
        pout(r, p + 4, 0, 1);
        pout(r, p + 5, 0, 1);
    } else {
        pout(r, p + 6, 0xe0 | devbits | ((lba >> 24) & 0x0f), 1);
    }
    pout(r, p + 1, feature, 1);
    pout(r, p + 2, count, 1);
    pout(r, p + 3, lba, 1);
    pout(r, p + 4, lba >> 8, 1);
    pout(r, p + 5, lba >> 16, 1);
    pout(r, p + 7, cmd, 1);
}

/* Write one PRD entry: the address mostly inside RAM, sometimes anywhere. */
static void op_prd(Rig *r, FzIn *in)
{
    uint8_t *ram = vd_bus_ram(r->bus);
    unsigned idx = fz_u8(in) % 16;
    uint32_t addr = fz_u32(in), count = fz_u16(in);
    uint8_t flags = fz_u8(in);
    if (!(flags & 0x40)) {
        addr %= RAM_BYTES;
    }
    uint8_t *e = ram + PRD_TABLE + 8 * idx;
    e[0] = addr; e[1] = addr >> 8; e[2] = addr >> 16; e[3] = addr >> 24;
    e[4] = count; e[5] = count >> 8; e[6] = 0;
    e[7] = flags & 0x80;
}

/* Bus-master engine: point at the table, then start/stop with a direction. */
static void op_bm(Rig *r, FzIn *in)
{
    uint8_t v = fz_u8(in);
    uint16_t base = VD_IDE_BMDMA_BASE + ((v & 0x80) ? 8 : 0);
    if (v & 0x40) {
        pout(r, base + 4, (v & 0x20) ? fz_u32(in) : PRD_TABLE, 4);
    }
    if (v & 0x10) {
        pout(r, base + 2, 0x06, 1);       /* clear ERROR and INTR */
    }
    pout(r, base, v & 0x09, 1);           /* start bit and direction */
}

/* PIO data phase: n 16-bit (or 32-bit) transfers on the data port. */
static void op_pio(Rig *r, FzIn *in)
{
    uint8_t v = fz_u8(in);
    unsigned n = (v & 0x3f) * 16 + 1;
    bool wide = v & 0x40, out = v & 0x80;
    for (unsigned i = 0; i < n; i++) {
        if (out) {
            pout(r, VD_IDE_PRIMARY_CMD, i, wide ? 4 : 2);
        } else {
            pin(r, VD_IDE_PRIMARY_CMD, wide ? 4 : 2);
        }
    }
}

/* Guest memory contents (data a DMA write would carry, or a second PRD table). */
static void op_ram(Rig *r, FzIn *in)
{
    uint32_t at = fz_u32(in) % RAM_BYTES;
    uint8_t buf[64];
    size_t want = fz_u8(in) % 64;      /* taken once: MIN() evaluates its arguments twice */
    size_t n = fz_bytes(in, buf, MIN(want, RAM_BYTES - at));
    memcpy(vd_bus_ram(r->bus) + at, buf, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: a fresh controller and drive, the operations, then a bounded drain and teardown. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FzIn in = { data, size };
    fz_init();
    Rig r = { 0 };
    static VdPciHost *pci;
    r.bus = fz_bus(RAM_BYTES);
    if (!pci) {
        pci = vd_pci_host_new(r.bus, NULL);
    }
    r.pci = pci;
    r.ide = vd_ide_piix3_new(r.pci, VD_IDE_PIIX3_DEVFN, NULL);
    r.blk = fz_backend(backends[fz_u8(&in) % G_N_ELEMENTS(backends)]);
    int used = -1;
    if (!r.bus || !r.pci || !r.ide || !r.blk || !vd_ide_attach(r.ide, 0, r.blk, NULL, &used, NULL)) {
        fz_fail("cannot build the IDE machine");
    }
    unsigned ops = 0;
    while (fz_more(&in) && ops++ < 512) {
        uint8_t op = fz_u8(&in) % OP__MAX;
        switch (op) {
        case OP_OUTB: {
            uint16_t port = pick_port(&in);
            pout(&r, port, fz_u8(&in), 1);
            break;
        }
        case OP_OUTW: {
            uint16_t port = pick_port(&in);
            pout(&r, port, fz_u32(&in), (fz_u8(&in) & 1) ? 4 : 2);
            break;
        }
        case OP_IN: {
            uint16_t port = pick_port(&in);
            pin(&r, port, 1u << (fz_u8(&in) % 3));
            break;
        }
        case OP_CMD28:
        case OP_CMD48:
            op_cmd(&r, &in, op == OP_CMD48);
            break;
        case OP_PRD:
            op_prd(&r, &in);
            break;
        case OP_BM:
            op_bm(&r, &in);
            break;
        case OP_PIO:
            op_pio(&r, &in);
            break;
        case OP_RAM:
            op_ram(&r, &in);
            break;
        case OP_CTL:
            pout(&r, VD_IDE_PRIMARY_CTL, fz_u8(&in) & 0x86, 1);   /* HOB, SRST, nIEN */
            break;
        case OP_PUMP:
            fz_pump(fz_u8(&in) % 8);
            check_idle(&r);
            break;
        default:
            fz_drain_blk(r.blk);
            fz_pump(16);
            check_idle(&r);
            break;
        }
    }
    fz_drain_blk(r.blk);
    fz_pump(16);
    check_idle(&r);
    vd_ide_free(r.ide);
    fz_drain_blk(r.blk);
    fz_order_reset();
    return 0;
}
