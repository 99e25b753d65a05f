/*
 * crash-guest-ide.c - the crash runner's IDE guest: WRITE DMA (FUA) EXT,
 * FLUSH CACHE EXT and SET FEATURES 02h/82h on the primary master of a PIIX3,
 * through port I/O and a bus-master PRD table.  One command at a time, or an
 * SRST that abandons the one in flight.
 */
#include "crash-guests.h"

#include "hw/bus.h"
#include "hw/ide.h"
#include "hw/pci.h"

#include <string.h>

#define RAM (8u << 20)
#define PRD 0x1000
#define DATA 0x100000
#define CMD VD_IDE_PRIMARY_CMD
#define BM VD_IDE_BMDMA_BASE

struct CrashGuest {
    VdBus *bus;
    VdPciHost *pci;
    VdIdeController *ide;
    bool busy, dma;
};

/* Port write and read helpers. */
static void outb(CrashGuest *g, uint16_t port, uint8_t v) { vd_bus_write(g->bus, VD_SPACE_PIO, port, v, 1); }
static void outl(CrashGuest *g, uint16_t port, uint32_t v) { vd_bus_write(g->bus, VD_SPACE_PIO, port, v, 4); }
static uint8_t inb(CrashGuest *g, uint16_t port)
{
    uint64_t v = 0xff;
    vd_bus_read(g->bus, VD_SPACE_PIO, port, 1, &v);
    return v;
}

/* A bus, the PCI host and a PIIX3 with blk as primary master. */
static CrashGuest *ide_open(VdBlockBackend *blk, GError **errp)
{
    CrashGuest *g = g_new0(CrashGuest, 1);
    int used;
    g->bus = vd_bus_new(RAM, NULL, errp);
    g->pci = g->bus ? vd_pci_host_new(g->bus, errp) : NULL;
    g->ide = g->pci ? vd_ide_piix3_new(g->pci, VD_IDE_PIIX3_DEVFN, errp) : NULL;
    if (g->ide && vd_ide_attach(g->ide, 0, blk, NULL, &used, errp)) {
        return g;
    }
    if (g->ide) {
        vd_ide_free(g->ide);
    }
    if (g->pci) {
        vd_pci_host_free(g->pci);
    }
    if (g->bus) {
        vd_bus_free(g->bus);
    }
    g_free(g);
    return NULL;
}

/* Task file of a 48-bit command for the master, high bytes first. */
static void tf48(CrashGuest *g, uint64_t lba, uint16_t count)
{
    outb(g, CMD + 6, 0x40);
    outb(g, CMD + 2, count >> 8);
    outb(g, CMD + 3, lba >> 24);
    outb(g, CMD + 4, lba >> 32);
    outb(g, CMD + 5, lba >> 40);
    outb(g, CMD + 2, count);
    outb(g, CMD + 3, lba);
    outb(g, CMD + 4, lba >> 8);
    outb(g, CMD + 5, lba >> 16);
}

/* WRITE DMA (FUA) EXT of nsect sectors through a one-entry PRD table. */
static void ide_submit_write(CrashGuest *g, unsigned slot, uint64_t lba, unsigned nsect, bool fua, const uint8_t *data)
{
    uint8_t *ram = vd_bus_ram(g->bus);
    uint32_t len = nsect * 512;
    memcpy(ram + DATA, data, len);
    uint8_t prd[8] = { DATA & 0xff, (DATA >> 8) & 0xff, (DATA >> 16) & 0xff, DATA >> 24, len & 0xff, len >> 8, 0, 0x80 };
    memcpy(ram + PRD, prd, sizeof(prd));
    outb(g, BM, 0);
    outb(g, BM + 2, 0x06);
    outl(g, BM + 4, PRD);
    tf48(g, lba, nsect);
    outb(g, CMD + 7, fua ? 0x3d : 0x35);
    outb(g, BM, 0x01);
    g->busy = g->dma = true;
}

/* FLUSH CACHE EXT. */
static void ide_submit_flush(CrashGuest *g, unsigned slot)
{
    outb(g, CMD + 6, 0x40);
    outb(g, CMD + 7, 0xea);
    g->busy = true;
    g->dma = false;
}

/* The command finished when INTRQ is up: stop the engine, read (and acknowledge) the status. */
static bool ide_poll(CrashGuest *g, unsigned *slot, bool *ok)
{
    if (!g->busy || !vd_irq_level(g->bus, VD_IDE_PRIMARY_IRQ)) {
        return false;
    }
    if (g->dma) {
        outb(g, BM, 0);
    }
    uint8_t st = inb(g, CMD + 7); /* acknowledges INTRQ */
    g->busy = false;
    *slot = 0;
    *ok = !(st & 0x01);
    return true;
}

/* SET FEATURES 02h/82h, run to completion (82h stays BSY until the cache is drained). */
static bool ide_set_wce(CrashGuest *g, bool on)
{
    outb(g, CMD + 6, 0x40);
    outb(g, CMD + 1, on ? 0x02 : 0x82);
    outb(g, CMD + 7, 0xef);
    g->busy = true;
    g->dma = false;
    unsigned slot;
    bool ok;
    while (!ide_poll(g, &slot, &ok)) {
        g_main_context_iteration(NULL, TRUE);
    }
    return ok;
}

/* SRST while a command may run: the drive abandons it; wait until it drops BSY (after any orphan finished). */
static void ide_reset(CrashGuest *g)
{
    outb(g, BM, 0);
    outb(g, VD_IDE_PRIMARY_CTL, 0x04);
    outb(g, VD_IDE_PRIMARY_CTL, 0x00);
    g->busy = g->dma = false;
    while (inb(g, VD_IDE_PRIMARY_CTL) & 0x80) { /* alternate status: no INTRQ acknowledge */
        g_main_context_iteration(NULL, TRUE);
    }
}

/* Free the controller and the machine pieces. */
static void ide_close(CrashGuest *g)
{
    vd_ide_free(g->ide);
    vd_pci_host_free(g->pci);
    vd_bus_free(g->bus);
    g_free(g);
}

const CrashGuestOps crash_guest_ide = {
    .name = "ide", .depth = 1, .has_fua = true, .switch_drains = true, .open = ide_open, .submit_write = ide_submit_write,
    .submit_flush = ide_submit_flush, .set_wce = ide_set_wce, .poll = ide_poll,
    .reset = ide_reset, .close = ide_close,
};
