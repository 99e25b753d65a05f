/*
 * ata-guest.h - the reference guest driver for vdisk's ATA disk behind the
 * PIIX3 IDE function, PIO and bus-master DMA, written against the
 * qtest-like protocol so that it runs as a test.  It is meant to be read:
 * docs/guest-drivers/ide.md walks through it.
 *
 * What it does, in the order a real driver does it:
 *  1. Discovery: the IDE channels from the FDT (compatible
 *     "vdisk,piix3-ide": command block, control block, IRQ), the bus-master
 *     registers from PCI config space (8086:7010, BAR4).
 *  2. Probe: soft reset, the ATA signature, IDENTIFY DEVICE, and what the
 *     feature words say (LBA48, write cache, FLUSH CACHE EXT, FUA).
 *  3. I/O: PIO (READ/WRITE SECTORS (EXT), MULTIPLE, FUA) and DMA
 *     (READ/WRITE DMA (EXT), WRITE DMA FUA EXT, DATA SET MANAGEMENT/TRIM),
 *     interrupt driven.
 *  4. The write cache: SET FEATURES 02h/82h followed by IDENTIFY to confirm,
 *     FLUSH CACHE (EXT).
 *
 * Every function returns the device's verdict (status, error, and the LBA
 * registers) rather than hiding errors; the tests assert on them.
 */
#ifndef VD_ATA_GUEST_H
#define VD_ATA_GUEST_H

#include "qtest-client.h"

#define ATA_SR_BSY  0x80
#define ATA_SR_DRDY 0x40
#define ATA_SR_DF   0x20
#define ATA_SR_DSC  0x10
#define ATA_SR_DRQ  0x08
#define ATA_SR_ERR  0x01
#define ATA_ER_UNC  0x40
#define ATA_ER_IDNF 0x10
#define ATA_ER_ABRT 0x04

/* One legacy IDE channel and its bus-master engine. */
typedef struct AtaChannel {
    uint16_t cmd;       /* command block: data .. status/command */
    uint16_t ctl;       /* control block: alternate status / device control */
    unsigned irq;
    uint16_t bmdma;     /* bus-master registers of this channel (BAR4 + 8 * channel), 0 = PIO only */
} AtaChannel;

/* A probed ATA disk. */
typedef struct AtaDisk {
    VdQtest *q;
    AtaChannel ch;
    unsigned unit;              /* 0 master, 1 slave */
    uint16_t id[256];           /* IDENTIFY DEVICE data */
    uint64_t sectors;           /* from words 100-103 (LBA48) or 60-61 */
    bool lba48;                 /* word 83 bit 10 */
    bool wce;                   /* word 85 bit 5: the write cache is on */
    bool flush_ext;             /* word 83 bit 13 */
    bool fua;                   /* word 84 bit 6 (valid when bits 15:14 = 01) */
    unsigned max_multiple;      /* word 47 bits 7:0 */
    bool trim;                  /* word 169 bit 0: DATA SET MANAGEMENT with TRIM */
    unsigned multiple;          /* current SET MULTIPLE MODE value, 0 = off */
    VdGuestAlloc mem;           /* guest RAM for PRD tables and DMA buffers */
} AtaDisk;

/* What the device reported at the end of a command. */
typedef struct AtaResult {
    uint8_t status, error;
    uint64_t lba;               /* the LBA registers (48-bit read with HOB, or 28-bit) */
    bool timeout;               /* no interrupt came */
    uint8_t bm_status;          /* bus-master status after a DMA command */
} AtaResult;

/* Find the channels in the FDT and the bus-master base in PCI config space; returns how many. */
unsigned ata_discover(VdQtest *q, AtaChannel ch[2]);
/* The PIIX3 function's BAR4 (enabling I/O decode and bus mastering); 0 if absent. */
uint16_t ata_pci_bmdma_base(VdQtest *q);

/* Poll alternate status until BSY clears (or the interrupt timeout passes); the last status seen. */
uint8_t ata_wait_not_busy(VdQtest *q, const AtaChannel *ch);
/* Soft-reset a channel (SRST), then wait for BSY to clear; the status of device 0. */
uint8_t ata_soft_reset(VdQtest *q, const AtaChannel *ch);
/* Reset the channel, check the ATA signature of unit, IDENTIFY it; false if no ATA disk is there. */
bool ata_probe(AtaDisk *d, VdQtest *q, const AtaChannel *ch, unsigned unit);
/* IDENTIFY DEVICE again and refresh the parsed fields. */
AtaResult ata_identify(AtaDisk *d);

/* A command without data (features/count/LBA as given, 48-bit when ext). */
AtaResult ata_nodata(AtaDisk *d, uint8_t cmd, uint8_t feature, uint16_t count, uint64_t lba, bool ext);
/* PIO reads and writes; ext picks the 48-bit opcode; multiple uses READ/WRITE MULTIPLE. */
AtaResult ata_pio_read(AtaDisk *d, uint64_t lba, uint32_t count, void *buf, bool ext, bool multiple);
AtaResult ata_pio_write(AtaDisk *d, uint64_t lba, uint32_t count, const void *buf, bool ext, bool multiple);
/* WRITE MULTIPLE FUA EXT. */
AtaResult ata_pio_write_fua(AtaDisk *d, uint64_t lba, uint32_t count, const void *buf);
/* Bus-master DMA; fua selects WRITE DMA FUA EXT (needs ext). */
AtaResult ata_dma_read(AtaDisk *d, uint64_t lba, uint32_t count, void *buf, bool ext);
AtaResult ata_dma_write(AtaDisk *d, uint64_t lba, uint32_t count, const void *buf, bool ext, bool fua);

/* DATA SET MANAGEMENT (TRIM) of count sectors from lba (one block of up to 64 range entries). */
AtaResult ata_trim(AtaDisk *d, uint64_t lba, uint32_t count);

/* SET FEATURES 02h/82h, then IDENTIFY to confirm word 85 (as Linux does). */
AtaResult ata_set_write_cache(AtaDisk *d, bool on);
/* FLUSH CACHE EXT when the disk has it and needs it (LBA48, > 2^28 sectors) or when forced; else FLUSH CACHE. */
AtaResult ata_flush(AtaDisk *d, bool force_ext);
/* SET MULTIPLE MODE. */
AtaResult ata_set_multiple(AtaDisk *d, unsigned n);

/* Low level, for tests that build unusual commands. */
void ata_select(AtaDisk *d);
void ata_load_taskfile(AtaDisk *d, uint8_t feature, uint16_t count, uint64_t lba, bool ext);
/* Wait for the channel's interrupt, acknowledge it by reading Status; fills status/error/lba. */
AtaResult ata_wait_complete(AtaDisk *d, bool ext);
/* The LBA registers. */
uint64_t ata_read_lba(AtaDisk *d, bool ext);

#endif
