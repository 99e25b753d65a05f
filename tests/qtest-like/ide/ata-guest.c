/*
 * ata-guest.c - the reference ATA guest driver (see ata-guest.h).
 *
 * Every register access below is one line of the qtest-like protocol, so
 * this file reads like a transcript of what a real driver does with its
 * I/O ports.  Register offsets within the command block:
 *   +0 data  +1 error/features  +2 sector count  +3 LBA low  +4 LBA mid
 *   +5 LBA high  +6 device  +7 status/command
 * and the control block: +0 alternate status / device control.
 */
#include "ata-guest.h"
#include "util/bswap.h"

#include <libfdt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#define REG_DATA    0
#define REG_ERROR   1
#define REG_FEATURE 1
#define REG_COUNT   2
#define REG_LBAL    3
#define REG_LBAM    4
#define REG_LBAH    5
#define REG_DEVICE  6
#define REG_STATUS  7
#define REG_COMMAND 7

#define DEV_LBA     0x40
#define DEV_OBS     0xa0        /* bits 7 and 5: obsolete, traditionally set */
#define CTL_NIEN    0x02
#define CTL_SRST    0x04
#define CTL_HOB     0x80

#define BM_CMD      0
#define BM_STATUS   2
#define BM_PRD      4
#define BM_START    0x01
#define BM_READ     0x08        /* the controller writes memory: a device-to-host transfer */
#define BM_ACTIVE   0x01
#define BM_ERROR    0x02
#define BM_INTR     0x04

#define IRQ_TIMEOUT_MS 10000

/* ---- discovery ---- */

/* Read a 32-bit PCI config register of bus 0 through mechanism #1 (ports 0xcf8/0xcfc). */
static uint32_t pci_read(VdQtest *q, unsigned devfn, unsigned off)
{
    vd_qtest_outl(q, 0xcf8, 0x80000000u | devfn << 8 | (off & 0xfc));
    return vd_qtest_inl(q, 0xcfc);
}

/* Write a 32-bit PCI config register of bus 0. */
static void pci_write(VdQtest *q, unsigned devfn, unsigned off, uint32_t v)
{
    vd_qtest_outl(q, 0xcf8, 0x80000000u | devfn << 8 | (off & 0xfc));
    vd_qtest_outl(q, 0xcfc, v);
}

uint16_t ata_pci_bmdma_base(VdQtest *q)
{
    for (unsigned devfn = 0; devfn < 256; devfn++) {
        if (pci_read(q, devfn, 0x00) != 0x70108086) {     /* PIIX3 IDE */
            continue;
        }
        uint32_t bar4 = pci_read(q, devfn, 0x20);
        if ((bar4 & ~3u) == 0) {
            /* Unassigned (as on a PC without firmware): pick an address. */
            pci_write(q, devfn, 0x20, 0xc000);
            bar4 = pci_read(q, devfn, 0x20);
        }
        /* I/O space and bus mastering on. */
        uint32_t cmd = pci_read(q, devfn, 0x04);
        pci_write(q, devfn, 0x04, (cmd & 0xffff) | 0x0005);
        return bar4 & 0xfffc;
    }
    return 0;
}

unsigned ata_discover(VdQtest *q, AtaChannel ch[2])
{
    size_t size;
    g_autofree void *fdt = vd_qtest_dtb(q, &size);
    uint16_t bm = ata_pci_bmdma_base(q);
    unsigned n = 0;
    for (int node = fdt_node_offset_by_compatible(fdt, -1, "vdisk,piix3-ide");
         node >= 0 && n < 2; node = fdt_node_offset_by_compatible(fdt, node, "vdisk,piix3-ide")) {
        /* reg = <space addr size> twice: the command block, then the control block (ISA cells). */
        int len;
        const fdt32_t *reg = fdt_getprop(fdt, node, "reg", &len);
        const fdt32_t *irq = fdt_getprop(fdt, node, "interrupts", NULL);
        if (!reg || len < 6 * 4 || !irq) {
            continue;
        }
        ch[n].cmd = fdt32_to_cpu(reg[1]);
        ch[n].ctl = fdt32_to_cpu(reg[4]);
        ch[n].irq = fdt32_to_cpu(irq[0]);
        /* The primary channel's engine is at BAR4 + 0, the secondary's at BAR4 + 8. */
        ch[n].bmdma = bm ? bm + (ch[n].cmd == 0x170 ? 8 : 0) : 0;
        n++;
    }
    return n;
}

/* ---- registers ---- */

/* Alternate status: look without acknowledging the interrupt. */
static uint8_t alt_status(AtaDisk *d)
{
    return vd_qtest_inb(d->q, d->ch.ctl);
}

uint8_t ata_wait_not_busy(VdQtest *q, const AtaChannel *ch)
{
    uint8_t st;
    gint64 deadline = g_get_monotonic_time() + IRQ_TIMEOUT_MS * 1000;
    while ((st = vd_qtest_inb(q, ch->ctl)) & ATA_SR_BSY) {
        if (g_get_monotonic_time() > deadline) {
            break;
        }
        vd_qtest_poll(q, 1);
    }
    return st;
}

void ata_select(AtaDisk *d)
{
    vd_qtest_outb(d->q, d->ch.cmd + REG_DEVICE, DEV_OBS | DEV_LBA | d->unit << 4);
}

void ata_load_taskfile(AtaDisk *d, uint8_t feature, uint16_t count, uint64_t lba, bool ext)
{
    VdQtest *q = d->q;
    uint16_t p = d->ch.cmd;
    if (ext) {
        /* 48-bit: each register is a two-deep FIFO; write the high-order bytes first. */
        vd_qtest_outb(q, p + REG_DEVICE, DEV_LBA | d->unit << 4);
        vd_qtest_outb(q, p + REG_FEATURE, 0);
        vd_qtest_outb(q, p + REG_COUNT, count >> 8);
        vd_qtest_outb(q, p + REG_LBAL, lba >> 24);
        vd_qtest_outb(q, p + REG_LBAM, lba >> 32);
        vd_qtest_outb(q, p + REG_LBAH, lba >> 40);
    } else {
        /* 28-bit: LBA bits 27:24 live in the device register. */
        vd_qtest_outb(q, p + REG_DEVICE, DEV_OBS | DEV_LBA | d->unit << 4 | ((lba >> 24) & 0x0f));
    }
    vd_qtest_outb(q, p + REG_FEATURE, feature);
    vd_qtest_outb(q, p + REG_COUNT, count);
    vd_qtest_outb(q, p + REG_LBAL, lba);
    vd_qtest_outb(q, p + REG_LBAM, lba >> 8);
    vd_qtest_outb(q, p + REG_LBAH, lba >> 16);
}

uint64_t ata_read_lba(AtaDisk *d, bool ext)
{
    VdQtest *q = d->q;
    uint16_t p = d->ch.cmd;
    uint64_t lo = vd_qtest_inb(q, p + REG_LBAL) | vd_qtest_inb(q, p + REG_LBAM) << 8 |
                  (uint32_t)vd_qtest_inb(q, p + REG_LBAH) << 16;
    if (!ext) {
        return lo | (uint64_t)(vd_qtest_inb(q, p + REG_DEVICE) & 0x0f) << 24;
    }
    /* HOB=1 reads the previous (high-order) bytes; any command-block write clears it again. */
    vd_qtest_outb(q, d->ch.ctl, CTL_HOB);
    uint64_t hi = vd_qtest_inb(q, p + REG_LBAL) | vd_qtest_inb(q, p + REG_LBAM) << 8 |
                  (uint32_t)vd_qtest_inb(q, p + REG_LBAH) << 16;
    vd_qtest_outb(q, d->ch.ctl, 0);
    return hi << 24 | lo;
}

/* Read Status (acknowledging the interrupt) and, on ERR, the error and LBA registers. */
static AtaResult finish(AtaDisk *d, bool ext)
{
    AtaResult r = { 0 };
    r.status = vd_qtest_inb(d->q, d->ch.cmd + REG_STATUS);
    if (r.status & ATA_SR_ERR) {
        r.error = vd_qtest_inb(d->q, d->ch.cmd + REG_ERROR);
        r.lba = ata_read_lba(d, ext);
    }
    return r;
}

AtaResult ata_wait_complete(AtaDisk *d, bool ext)
{
    if (!vd_qtest_wait_irq(d->q, d->ch.irq, true, IRQ_TIMEOUT_MS)) {
        AtaResult r = { .timeout = true, .status = alt_status(d) };
        return r;
    }
    return finish(d, ext);
}

/* ---- reset, probe, IDENTIFY ---- */

uint8_t ata_soft_reset(VdQtest *q, const AtaChannel *ch)
{
    /* SRST for a moment, then release it with interrupts enabled. */
    vd_qtest_outb(q, ch->ctl, CTL_SRST);
    vd_qtest_outb(q, ch->ctl, 0);
    uint8_t st = ata_wait_not_busy(q, ch);
    vd_qtest_inb(q, ch->cmd + REG_STATUS);          /* clear anything pending */
    return st;
}

/* Move count sectors in from the data port, 32 bits at a time. */
static void pio_in(AtaDisk *d, uint8_t *buf, uint32_t sectors)
{
    for (uint32_t i = 0; i < sectors * 128; i++) {
        uint32_t v = vd_qtest_inl(d->q, d->ch.cmd + REG_DATA);
        memcpy(buf + 4 * i, &v, 4);
    }
}

/* Move count sectors out through the data port. */
static void pio_out(AtaDisk *d, const uint8_t *buf, uint32_t sectors)
{
    for (uint32_t i = 0; i < sectors * 128; i++) {
        uint32_t v;
        memcpy(&v, buf + 4 * i, 4);
        vd_qtest_outl(d->q, d->ch.cmd + REG_DATA, v);
    }
}

/* Pull the fields a driver needs out of the IDENTIFY data. */
static void parse_identify(AtaDisk *d)
{
    const uint16_t *id = d->id;
    d->lba48 = id[83] & (1 << 10);
    d->flush_ext = id[83] & (1 << 13);
    /* Words 84 and 87 are valid only with bits 15:14 = 01. */
    d->fua = (id[84] & 0xc000) == 0x4000 && (id[84] & (1 << 6));
    /* Linux reads the cache state from word 85 bit 5, trusting it when word 87 is valid. */
    d->wce = (id[87] & 0xc000) == 0x4000 && (id[85] & (1 << 5));
    d->max_multiple = id[47] & 0xff;
    d->trim = id[169] & 1;
    d->sectors = d->lba48 ? (id[100] | (uint64_t)id[101] << 16 | (uint64_t)id[102] << 32 | (uint64_t)id[103] << 48)
                          : (id[60] | (uint32_t)id[61] << 16);
}

AtaResult ata_identify(AtaDisk *d)
{
    uint8_t raw[512];
    ata_select(d);
    vd_qtest_outb(d->q, d->ch.cmd + REG_COMMAND, 0xec);
    AtaResult r = ata_wait_complete(d, false);
    if (r.timeout || (r.status & ATA_SR_ERR) || !(r.status & ATA_SR_DRQ)) {
        return r;
    }
    pio_in(d, raw, 1);
    for (int i = 0; i < 256; i++) {
        d->id[i] = vd_ld_le16(raw + 2 * i);
    }
    parse_identify(d);
    r.status = alt_status(d);
    return r;
}

bool ata_probe(AtaDisk *d, VdQtest *q, const AtaChannel *ch, unsigned unit)
{
    memset(d, 0, sizeof(*d));
    d->q = q;
    d->ch = *ch;
    d->unit = unit;
    vd_guest_alloc_init(&d->mem, 0x100000, 0x4000000);
    ata_soft_reset(q, ch);
    ata_select(d);
    /* An absent device reads 00h (the other one answers for it) or floats (7Fh / FFh). */
    uint8_t st = vd_qtest_inb(q, ch->cmd + REG_STATUS);
    if (st == 0x00 || st == 0x7f || st == 0xff) {
        return false;
    }
    /* The ATA signature: LBA mid/high 00h 00h (ATAPI would be 14h EBh). */
    if (vd_qtest_inb(q, ch->cmd + REG_LBAM) != 0 || vd_qtest_inb(q, ch->cmd + REG_LBAH) != 0) {
        return false;
    }
    AtaResult r = ata_identify(d);
    return !r.timeout && !(r.status & ATA_SR_ERR) && (d->id[0] & 0x8000) == 0;
}

/* ---- commands ---- */

AtaResult ata_nodata(AtaDisk *d, uint8_t cmd, uint8_t feature, uint16_t count, uint64_t lba, bool ext)
{
    ata_load_taskfile(d, feature, count, lba, ext);
    vd_qtest_outb(d->q, d->ch.cmd + REG_COMMAND, cmd);
    return ata_wait_complete(d, ext);
}

AtaResult ata_set_multiple(AtaDisk *d, unsigned n)
{
    AtaResult r = ata_nodata(d, 0xc6, 0, n, 0, false);
    if (!(r.status & ATA_SR_ERR) && !r.timeout) {
        d->multiple = n;
    }
    return r;
}

/* Sectors per DRQ block: the multiple count for READ/WRITE MULTIPLE, else 1. */
static uint32_t drq_block(AtaDisk *d, bool multiple)
{
    return multiple && d->multiple ? d->multiple : 1;
}

AtaResult ata_pio_read(AtaDisk *d, uint64_t lba, uint32_t count, void *buf, bool ext, bool multiple)
{
    static const uint8_t ops[2][2] = { { 0x20, 0xc4 }, { 0x24, 0x29 } };
    uint32_t block = drq_block(d, multiple);
    ata_load_taskfile(d, 0, count, lba, ext);
    vd_qtest_outb(d->q, d->ch.cmd + REG_COMMAND, ops[ext][multiple]);
    /* Data-in: an interrupt before every DRQ block; none after the last one. */
    for (uint32_t done = 0; done < count; done += block) {
        AtaResult r = ata_wait_complete(d, ext);
        if (r.timeout || (r.status & ATA_SR_ERR) || !(r.status & ATA_SR_DRQ)) {
            return r;
        }
        pio_in(d, (uint8_t *)buf + (size_t)done * 512, MIN(block, count - done));
    }
    AtaResult r = { .status = alt_status(d) };
    return r;
}

/* Data-out PIO common to WRITE SECTORS/MULTIPLE (EXT) and WRITE MULTIPLE FUA EXT. */
static AtaResult pio_write(AtaDisk *d, uint8_t op, uint64_t lba, uint32_t count, const void *buf, bool ext,
                           uint32_t block)
{
    ata_load_taskfile(d, 0, count, lba, ext);
    vd_qtest_outb(d->q, d->ch.cmd + REG_COMMAND, op);
    /* Data-out: the first block is asked for without an interrupt... */
    uint8_t st = ata_wait_not_busy(d->q, &d->ch);
    for (uint32_t done = 0; done < count; done += block) {
        if (done > 0) {
            /* ...every later one with an interrupt. */
            AtaResult r = ata_wait_complete(d, ext);
            if (r.timeout || (r.status & ATA_SR_ERR)) {
                return r;
            }
            st = r.status;
        }
        if (st & ATA_SR_ERR || !(st & ATA_SR_DRQ)) {
            return finish(d, ext);
        }
        pio_out(d, (const uint8_t *)buf + (size_t)done * 512, MIN(block, count - done));
    }
    /* ...and the completion with one more. */
    return ata_wait_complete(d, ext);
}

AtaResult ata_pio_write(AtaDisk *d, uint64_t lba, uint32_t count, const void *buf, bool ext, bool multiple)
{
    static const uint8_t ops[2][2] = { { 0x30, 0xc5 }, { 0x34, 0x39 } };
    return pio_write(d, ops[ext][multiple], lba, count, buf, ext, drq_block(d, multiple));
}

AtaResult ata_pio_write_fua(AtaDisk *d, uint64_t lba, uint32_t count, const void *buf)
{
    return pio_write(d, 0xce, lba, count, buf, true, drq_block(d, true));
}

/*
 * One DMA command: build the PRD table (64 KiB entries, none crossing a
 * 64 KiB boundary), program the engine, issue the command, start the engine,
 * wait for the interrupt, stop the engine, check both status registers.
 */
static AtaResult dma_command(AtaDisk *d, uint8_t op, uint8_t feature, uint64_t lba, uint32_t count, bool ext,
                             bool to_mem, uint64_t buf_gpa)
{
    VdQtest *q = d->q;
    uint32_t sectors = count ? count : (ext ? 65536 : 256);
    uint64_t bytes = (uint64_t)sectors * 512;
    unsigned entries = (bytes + 0xffff) / 0x10000;
    uint64_t prd = vd_guest_alloc(&d->mem, entries * 8, 0x10000);
    for (unsigned i = 0; i < entries; i++) {
        uint64_t len = MIN(bytes - (uint64_t)i * 0x10000, 0x10000);
        vd_qtest_writel(q, prd + 8 * i, buf_gpa + (uint64_t)i * 0x10000);
        /* Byte count 0 means 64 KiB; bit 31 of the second dword marks the last entry. */
        vd_qtest_writel(q, prd + 8 * i + 4, (len & 0xffff) | (i == entries - 1 ? 0x80000000u : 0));
    }
    uint16_t bm = d->ch.bmdma;
    vd_qtest_outb(q, bm + BM_CMD, 0);                           /* engine stopped */
    /* ERROR and INTR are write-1-to-clear; keep the "drive DMA capable" bits 5-6 as they are. */
    uint8_t bst = vd_qtest_inb(q, bm + BM_STATUS);
    vd_qtest_outb(q, bm + BM_STATUS, (bst & 0x60) | BM_ERROR | BM_INTR);
    vd_qtest_outl(q, bm + BM_PRD, prd);
    vd_qtest_outb(q, bm + BM_CMD, to_mem ? BM_READ : 0);
    ata_load_taskfile(d, feature, count, lba, ext);
    vd_qtest_outb(q, d->ch.cmd + REG_COMMAND, op);
    vd_qtest_outb(q, bm + BM_CMD, (to_mem ? BM_READ : 0) | BM_START);
    AtaResult r = { 0 };
    if (!vd_qtest_wait_irq(q, d->ch.irq, true, IRQ_TIMEOUT_MS)) {
        r.timeout = true;
        r.status = alt_status(d);
        r.bm_status = vd_qtest_inb(q, bm + BM_STATUS);
        vd_qtest_outb(q, bm + BM_CMD, 0);
        return r;
    }
    r.bm_status = vd_qtest_inb(q, bm + BM_STATUS);
    vd_qtest_outb(q, bm + BM_CMD, 0);                           /* stop the engine */
    AtaResult f = finish(d, ext);                               /* acknowledges INTRQ */
    f.bm_status = r.bm_status;
    vd_qtest_outb(q, bm + BM_STATUS, (r.bm_status & 0x60) | BM_INTR);
    return f;
}

AtaResult ata_dma_read(AtaDisk *d, uint64_t lba, uint32_t count, void *buf, bool ext)
{
    uint64_t bytes = (uint64_t)(count ? count : (ext ? 65536 : 256)) * 512;
    vd_guest_alloc_reset(&d->mem);
    uint64_t gpa = vd_guest_alloc(&d->mem, bytes, 0x10000);
    AtaResult r = dma_command(d, ext ? 0x25 : 0xc8, 0, lba, count, ext, true, gpa);
    if (!r.timeout && !(r.status & ATA_SR_ERR)) {
        vd_qtest_memread(d->q, gpa, buf, bytes);
    }
    return r;
}

AtaResult ata_dma_write(AtaDisk *d, uint64_t lba, uint32_t count, const void *buf, bool ext, bool fua)
{
    uint64_t bytes = (uint64_t)(count ? count : (ext ? 65536 : 256)) * 512;
    vd_guest_alloc_reset(&d->mem);
    uint64_t gpa = vd_guest_alloc(&d->mem, bytes, 0x10000);
    vd_qtest_memwrite(d->q, gpa, buf, bytes);
    return dma_command(d, fua ? 0x3d : (ext ? 0x35 : 0xca), 0, lba, count, ext, false, gpa);
}

AtaResult ata_trim(AtaDisk *d, uint64_t lba, uint32_t count)
{
    /* One 512-byte block of range entries: LBA in bits 47:0, up to 65535 sectors in bits 63:48. */
    uint8_t block[512] = { 0 };
    for (unsigned i = 0; i < 64 && count > 0; i++) {
        uint32_t n = MIN(count, 0xffffu);
        uint64_t v = (lba & 0xffffffffffffull) | (uint64_t)n << 48;
        vd_st_le64(block + 8 * i, v);
        lba += n;
        count -= n;
    }
    vd_guest_alloc_reset(&d->mem);
    uint64_t gpa = vd_guest_alloc(&d->mem, 512, 0x10000);
    vd_qtest_memwrite(d->q, gpa, block, sizeof(block));
    /* DATA SET MANAGEMENT, feature bit 0 = TRIM, count = blocks of entries; a DMA data-out command. */
    return dma_command(d, 0x06, 0x01, 0, 1, true, false, gpa);
}

/* ---- the write cache ---- */

AtaResult ata_set_write_cache(AtaDisk *d, bool on)
{
    /* 82h completes only once the disk has written its cache out; it may take a while. */
    AtaResult r = ata_nodata(d, 0xef, on ? 0x02 : 0x82, 0, 0, false);
    if (r.timeout || (r.status & ATA_SR_ERR)) {
        return r;
    }
    /* Confirm through IDENTIFY, as Linux does after changing the setting. */
    AtaResult id = ata_identify(d);
    if (id.timeout || (id.status & ATA_SR_ERR)) {
        return id;
    }
    return r;
}

AtaResult ata_flush(AtaDisk *d, bool force_ext)
{
    /* Linux's rule: FLUSH CACHE EXT only for LBA48 disks larger than 2^28 sectors that support it. */
    bool ext = d->flush_ext && (force_ext || (d->lba48 && d->sectors > (1ull << 28)));
    ata_select(d);
    vd_qtest_outb(d->q, d->ch.cmd + REG_COMMAND, ext ? 0xea : 0xe7);
    return ata_wait_complete(d, ext);
}
