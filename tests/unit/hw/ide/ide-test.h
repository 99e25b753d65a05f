/*
 * ide-test.h - an in-process rig for the IDE unit tests: a bus with guest
 * RAM, the PCI host, the PIIX3 IDE function and up to four backends, plus
 * port helpers and small ATA routines that drive the registers directly.
 */
#ifndef VD_IDE_TEST_H
#define VD_IDE_TEST_H

#include "block/block-backend.h"
#include "hw/bus.h"
#include "hw/ide.h"
#include "hw/pci.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define RIG_RAM (64u << 20)

/* Status / error bits, as a guest driver spells them. */
#define ST_BSY  0x80
#define ST_DRDY 0x40
#define ST_DSC  0x10
#define ST_DRQ  0x08
#define ST_ERR  0x01
#define ER_UNC  0x40
#define ER_IDNF 0x10
#define ER_ABRT 0x04

typedef struct Rig {
    VdBus *bus;
    VdPciHost *pci;
    VdIdeController *ide;
    VdBlockBackend *blk[VD_IDE_MAX_DRIVES];
    char *tmpdir;
    char *path[VD_IDE_MAX_DRIVES];
    unsigned raises[VD_IRQ_LINES];        /* rising edges seen per line */
    /* Counters of snap_blk taken at the most recent rising edge of any IRQ line. */
    VdBlockBackend *snap_blk;
    VdBlockStats snap;
} Rig;

/* Build the machine pieces; no drives yet. */
Rig *rig_new(void);
/* Attach a backend opened from opts at index; "%F" in opts becomes a fresh 8 MiB image file. */
VdBlockBackend *rig_attach(Rig *r, int index, const char *opts);
/* The same with an image of file_size bytes (sparse). */
VdBlockBackend *rig_attach_sized(Rig *r, int index, const char *opts, uint64_t file_size);
/* Free the controller, close backends, remove image files. */
void rig_free(Rig *r);

/* Port I/O. */
uint8_t inb(Rig *r, uint16_t port);
uint16_t inw(Rig *r, uint16_t port);
uint32_t inl(Rig *r, uint16_t port);
void outb(Rig *r, uint16_t port, uint8_t v);
void outw(Rig *r, uint16_t port, uint16_t v);
void outl(Rig *r, uint16_t port, uint32_t v);

/* Let backend completions arrive for a while. */
void rig_settle(Rig *r);
/* Iterate the loop until the channel's IRQ line is high; false after 10 s. */
bool rig_wait_irq(Rig *r, unsigned channel);
/* Iterate until the channel's selected device drops BSY; returns the status. */
uint8_t rig_wait_not_busy(Rig *r, unsigned channel);

/* ATA routines on a channel (0/1), unit (0/1). */
uint16_t cmd_port(unsigned channel);
uint16_t ctl_port(unsigned channel);
unsigned irq_line(unsigned channel);
void ata_select(Rig *r, unsigned ch, unsigned unit);
/* Load the task file for a 28-bit (LBA mode) command. */
void ata_tf28(Rig *r, unsigned ch, unsigned unit, uint32_t lba, uint8_t count, uint8_t feature);
/* Load the task file for a 48-bit command (high bytes first). */
void ata_tf48(Rig *r, unsigned ch, unsigned unit, uint64_t lba, uint16_t count);
/* Write the command register. */
void ata_command(Rig *r, unsigned ch, uint8_t cmd);
/* Run a non-data command to completion: returns the final status (IRQ consumed). */
uint8_t ata_nodata(Rig *r, unsigned ch, uint8_t cmd);
/* PIO data-in command already issued: read nsect sectors in blocks of `block`; returns final status. */
uint8_t ata_pio_in(Rig *r, unsigned ch, void *buf, uint32_t nsect, uint32_t block);
/* PIO data-out command already issued: write nsect sectors in blocks of `block`; returns final status. */
uint8_t ata_pio_out(Rig *r, unsigned ch, const void *buf, uint32_t nsect, uint32_t block);
/* IDENTIFY DEVICE into id[256]; returns the final status. */
uint8_t ata_identify_dev(Rig *r, unsigned ch, unsigned unit, uint16_t id[256]);
/* 48-bit LBA read back from the task file (HOB reads). */
uint64_t ata_read_lba48(Rig *r, unsigned ch);
uint32_t ata_read_lba28(Rig *r, unsigned ch);

/* Bus-master DMA. */
uint16_t bm_port(unsigned ch);
/* Write a PRD table at gpa: n entries of (addr, count[, eot on the last if eot_last]). */
void prd_write(Rig *r, uint64_t gpa, const uint32_t *addrs, const uint32_t *counts, unsigned n, bool eot_last);
/* Point the channel's engine at a table and set the direction (to_mem: a READ). */
void bm_setup(Rig *r, unsigned ch, uint32_t prd, bool to_mem);
void bm_start(Rig *r, unsigned ch, bool to_mem);
void bm_stop(Rig *r, unsigned ch);
uint8_t bm_status(Rig *r, unsigned ch);
void bm_clear_status(Rig *r, unsigned ch);
/* One-entry DMA transfer of nsect sectors at lba with a 48-bit command; returns final status. */
uint8_t ata_dma(Rig *r, unsigned ch, unsigned unit, uint8_t cmd, uint64_t lba, uint16_t nsect, uint32_t gpa);

/* Counters of a backend now. */
VdBlockStats rig_stats(VdBlockBackend *blk);
/* How many host operations that make data durable a stats block shows. */
uint64_t durable_ops(const VdBlockStats *s);

/* Fill buf with a pattern derived from seed. */
void fill_pattern(void *buf, size_t len, uint32_t seed);

#endif
