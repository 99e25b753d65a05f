/*
 * guest-ide.c - the tiny guest's ATA driver for the PIIX3 IDE function:
 * the bus-master base from PCI configuration space, SET FEATURES 02h/82h
 * confirmed through IDENTIFY word 85, and an interrupt-driven WRITE DMA.
 * The sequences are those of the reference driver
 * (tests/qtest-like/ide/ata-guest.c, docs/guest-drivers/ide.md), cut down
 * to what the steps need and written against guest-cpu.h.
 */
#include "guest.h"

/* ATA task file (offsets from the command block), status bits and opcodes. */
enum { ATA_DATA = 0, ATA_FEATURE = 1, ATA_COUNT = 2, ATA_LBA_LO = 3, ATA_LBA_MID = 4, ATA_LBA_HI = 5,
       ATA_DEVICE = 6, ATA_STATUS = 7, ATA_COMMAND = 7 };
enum { ST_BSY = 0x80, ST_DRDY = 0x40, ST_DRQ = 0x08, ST_ERR = 0x01 };
enum { CMD_IDENTIFY = 0xec, CMD_SET_FEATURES = 0xef, CMD_WRITE_DMA = 0xca };
enum { SF_ENABLE_WCE = 0x02, SF_DISABLE_WCE = 0x82 };
enum { DEV_LBA_MASTER = 0xe0 };
/* SFF-8038i bus-master registers and bits. */
enum { BM_COMMAND = 0, BM_STATUS = 2, BM_PRD = 4, BM_START = 0x01, BM_ST_ERR = 0x02, BM_ST_INTR = 0x04 };
/* PCI configuration mechanism #1, and the PIIX3 IDE function. */
enum { PCI_ADDR = 0xcf8, PCI_DATA = 0xcfc, PCI_ID_PIIX3_IDE = 0x70108086, PCI_CMD = 0x04, PCI_BAR4 = 0x20,
       PCI_CMD_IO = 0x1, PCI_CMD_MASTER = 0x4 };

/* Where the PRD table and the data buffer live in guest RAM. */
enum { GPA_PRD = 0x1000, GPA_IDE_BUF = 0x10000 };
#define SPIN_LIMIT 100000

/* Read a 32-bit config register of bus 0, device/function devfn. */
static uint32_t pci_read(Guest *g, unsigned devfn, unsigned off)
{
    gcpu_out(g->cpu, PCI_ADDR, 0x80000000u | devfn << 8 | off, 4);
    return gcpu_in(g->cpu, PCI_DATA, 4);
}

/* Write a 32-bit config register of bus 0. */
static void pci_write(Guest *g, unsigned devfn, unsigned off, uint32_t v)
{
    gcpu_out(g->cpu, PCI_ADDR, 0x80000000u | devfn << 8 | off, 4);
    gcpu_out(g->cpu, PCI_DATA, v, 4);
}

/* Find the PIIX3 IDE function on bus 0; BAR4 with I/O decode and bus mastering on, or 0. */
uint16_t guest_ide_bmdma_base(Guest *g)
{
    for (unsigned devfn = 0; devfn < 256; devfn++) {
        if (pci_read(g, devfn, 0) == PCI_ID_PIIX3_IDE) {
            pci_write(g, devfn, PCI_CMD, (pci_read(g, devfn, PCI_CMD) & 0xffff) | PCI_CMD_IO | PCI_CMD_MASTER);
            return pci_read(g, devfn, PCI_BAR4) & 0xfffc;
        }
    }
    return 0;
}

/* Command-block register port. */
static uint16_t reg(Guest *g, unsigned r)
{
    return (uint16_t)(g->ide.base[0] + r);
}

/* Poll the alternate status until BSY is clear; the last status read. */
static uint8_t wait_not_busy(Guest *g)
{
    uint8_t st = gcpu_in(g->cpu, g->ide.base[1], 1);
    for (unsigned i = 0; (st & ST_BSY) && i < SPIN_LIMIT; i++) {
        gcpu_pause(g->cpu);
        st = gcpu_in(g->cpu, g->ide.base[1], 1);
    }
    return st;
}

/* Wait for the channel interrupt, then read Status (which acknowledges it). */
static uint8_t wait_irq(Guest *g)
{
    if (!gcpu_wait_irq(g->cpu, g->ide.irq)) {
        return 0xff;    /* no interrupt: reads as BSY + ERR */
    }
    return gcpu_in(g->cpu, reg(g, ATA_STATUS), 1);
}

/* A non-data command on the master (LBA mode); the final status. */
static uint8_t nodata(Guest *g, uint8_t cmd, uint8_t feature)
{
    wait_not_busy(g);
    gcpu_out(g->cpu, reg(g, ATA_DEVICE), DEV_LBA_MASTER, 1);
    gcpu_out(g->cpu, reg(g, ATA_FEATURE), feature, 1);
    gcpu_out(g->cpu, reg(g, ATA_COMMAND), cmd, 1);
    return wait_irq(g);
}

/* IDENTIFY DEVICE; *wce gets word 85 bit 5 (write cache enabled).  False on error. */
static bool identify(Guest *g, bool *wce)
{
    wait_not_busy(g);
    gcpu_out(g->cpu, reg(g, ATA_DEVICE), DEV_LBA_MASTER, 1);
    gcpu_out(g->cpu, reg(g, ATA_COMMAND), CMD_IDENTIFY, 1);
    uint8_t st = wait_irq(g);
    if ((st & (ST_ERR | ST_BSY)) || !(st & ST_DRQ)) {
        return false;
    }
    uint16_t word85 = 0;
    for (unsigned i = 0; i < 256; i++) {
        uint16_t w = gcpu_in(g->cpu, reg(g, ATA_DATA), 2);
        word85 = i == 85 ? w : word85;
    }
    *wce = word85 & (1u << 5);
    return true;
}

/* SET FEATURES 02h/82h and read IDENTIFY word 85 back, as Linux does. */
static bool set_cache(Guest *g, bool on)
{
    uint8_t st = nodata(g, CMD_SET_FEATURES, on ? SF_ENABLE_WCE : SF_DISABLE_WCE);
    bool wce = !on;
    bool ok = !(st & (ST_ERR | ST_BSY)) && (st & ST_DRDY) && identify(g, &wce) && wce == on;
    guest_printf(g, "guest: step %s: SET FEATURES %02xh (write cache %s): status 0x%02x, IDENTIFY word 85 says %s: %s\n",
                 on ? "ide-cache-on" : "ide-cache-off", on ? SF_ENABLE_WCE : SF_DISABLE_WCE, on ? "on" : "off", st,
                 wce ? "on" : "off", ok ? "ok" : "FAILED");
    return ok;
}

/* Turn the IDE write cache off: SET FEATURES 82h. */
bool guest_ide_cache_off(Guest *g)
{
    return set_cache(g, false);
}

/* Turn the IDE write cache back on: SET FEATURES 02h. */
bool guest_ide_cache_on(Guest *g)
{
    return set_cache(g, true);
}

/* WRITE DMA of GUEST_SECTORS at LBA 0 through one PRD entry, interrupt driven. */
bool guest_ide_write_dma(Guest *g)
{
    const uint32_t bytes = GUEST_SECTORS * 512;
    uint16_t bm = g->bmdma;
    __builtin_memset(gcpu_ram(g->cpu, GPA_IDE_BUF), GUEST_IDE_FILL, bytes);
    gst32(gcpu_ram(g->cpu, GPA_PRD), GPA_IDE_BUF);                 /* one PRD entry: address, count, EOT */
    gst32(gcpu_ram(g->cpu, GPA_PRD + 4), bytes | 0x80000000u);
    gcpu_out(g->cpu, bm + BM_COMMAND, 0, 1);                       /* stopped, direction: memory to disk */
    gcpu_out(g->cpu, bm + BM_STATUS, BM_ST_ERR | BM_ST_INTR, 1);
    gcpu_out(g->cpu, bm + BM_PRD, GPA_PRD, 4);
    wait_not_busy(g);
    gcpu_out(g->cpu, reg(g, ATA_DEVICE), DEV_LBA_MASTER, 1);       /* LBA 0: bits 27:24 are 0 */
    gcpu_out(g->cpu, reg(g, ATA_COUNT), GUEST_SECTORS, 1);
    gcpu_out(g->cpu, reg(g, ATA_LBA_LO), 0, 1);
    gcpu_out(g->cpu, reg(g, ATA_LBA_MID), 0, 1);
    gcpu_out(g->cpu, reg(g, ATA_LBA_HI), 0, 1);
    gcpu_out(g->cpu, reg(g, ATA_COMMAND), CMD_WRITE_DMA, 1);
    gcpu_out(g->cpu, bm + BM_COMMAND, BM_START, 1);
    uint8_t st = wait_irq(g);
    gcpu_out(g->cpu, bm + BM_COMMAND, 0, 1);
    uint8_t bst = gcpu_in(g->cpu, bm + BM_STATUS, 1);
    gcpu_out(g->cpu, bm + BM_STATUS, BM_ST_ERR | BM_ST_INTR, 1);
    bool ok = !(st & (ST_ERR | ST_BSY | ST_DRQ)) && (bst & BM_ST_INTR) && !(bst & BM_ST_ERR);
    guest_printf(g, "guest: step ide-write-dma: WRITE DMA lba 0, %u sectors: status 0x%02x, bus-master status 0x%02x: %s\n",
                 GUEST_SECTORS, st, bst, ok ? "ok" : "FAILED");
    return ok;
}
