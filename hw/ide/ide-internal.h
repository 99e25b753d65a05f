/*
 * ide-internal.h - state shared by the files of hw/ide.
 *
 * Split of concerns:
 *   ide-regs.c      task-file registers, device selection, SRST, nIEN, INTRQ
 *   ide-xfer.c      backend request lifetime and the PIO data phase
 *   ata-commands.c  the opcode-indexed command table and each command
 *   ata-identify.c  IDENTIFY DEVICE data
 *   bmdma.c         SFF-8038i bus-master DMA engine and PRD tables
 *   piix3.c         the PCI function, controller lifetime, drive attach
 */
#ifndef VD_HW_IDE_INTERNAL_H
#define VD_HW_IDE_INTERNAL_H

#include "hw/drain.h"
#include "hw/ide.h"

#define IDE_SECTOR            512u
#define IDE_CHUNK_SECTORS     256u     /* PIO: sectors per backend request */

/* Status register */
#define ATA_BSY   0x80
#define ATA_DRDY  0x40
#define ATA_DF    0x20
#define ATA_DSC   0x10
#define ATA_DRQ   0x08
#define ATA_ERR   0x01
#define ATA_READY (ATA_DRDY | ATA_DSC)

/* Error register */
#define ATA_ICRC  0x80
#define ATA_UNC   0x40
#define ATA_IDNF  0x10
#define ATA_ABRT  0x04
#define ATA_AMNF  0x01

/* Device control register */
#define ATA_NIEN  0x02
#define ATA_SRST  0x04
#define ATA_HOB   0x80

/* Device register */
#define ATA_DEV_LBA   0x40
#define ATA_DEV_SLAVE 0x10

/* Floating bus: DD7 has the host pull-down ATA requires, the rest float high. */
#define IDE_FLOATING_BYTE 0x7f
#define IDE_FLOATING_WORD 0xff7f

/* Bus-master command / status bits (SFF-8038i) */
#define BM_CMD_START   0x01
#define BM_CMD_READ    0x08     /* the controller writes memory: a device-to-host transfer */
#define BM_ST_ACTIVE   0x01
#define BM_ST_ERROR    0x02
#define BM_ST_INTR     0x04
#define BM_ST_DRV0_DMA 0x20
#define BM_ST_DRV1_DMA 0x40

typedef struct IdeChannel IdeChannel;
typedef struct IdeDrive IdeDrive;
typedef struct IdeReq IdeReq;

typedef void IdeReqDone(IdeDrive *d, IdeReq *r, int ret);

/* One PRD-described memory segment of a DMA transfer. */
typedef struct IdeDmaSeg {
    uint64_t gpa;
    uint32_t len;
} IdeDmaSeg;

/*
 * A backend request.  It owns its buffer and lives until the backend's
 * callback, even when the drive lost interest (reset, free): then drive is
 * NULL and the callback only frees it.  owner stays set while the
 * controller lives: the request counts in the controller's drain, and an
 * orphan is on owner->orphans until its callback (a reset waits for it).
 */
struct IdeReq {
    IdeDrive *drive;        /* NULL once orphaned */
    IdeDrive *owner;        /* the drive it was made for; NULL once the controller is freed */
    IdeReqDone *done;
    uint8_t *buf;
    size_t len;
    struct iovec iov;
    uint64_t lba;
    uint32_t nsect;
    GArray *segs;           /* IdeDmaSeg, DMA only */
};

/* One LBA range of a DATA SET MANAGEMENT (TRIM) command. */
typedef struct IdeDsmRange {
    uint64_t lba;
    uint32_t count;
} IdeDsmRange;

typedef enum IdeXfer {
    IDE_XFER_NONE,
    IDE_XFER_PIO_IN,        /* device to host through the data port */
    IDE_XFER_PIO_OUT,       /* host to device through the data port */
    IDE_XFER_DMA_IN,        /* device to host through bus-master DMA */
    IDE_XFER_DMA_OUT,
} IdeXfer;

/* What the device register's addressing mode was when the command started. */
typedef enum IdeAddr { IDE_ADDR_CHS, IDE_ADDR_LBA28, IDE_ADDR_LBA48 } IdeAddr;

struct IdeDrive {
    IdeChannel *ch;
    unsigned unit;
    VdBlockBackend *blk;            /* NULL: no drive at this position */
    uint64_t nsectors;
    char serial[21];

    /* Task file.  [0] is the current value, [1] the previous one (HOB). */
    uint8_t feature[2], nsect[2], lbal[2], lbam[2], lbah[2];
    uint8_t select;
    uint8_t status, error;
    bool intrq;                     /* INTRQ pending */

    /* Settings changed by SET FEATURES and friends (the write cache is the backend's: vd_blk_write_cache). */
    bool lookahead;
    bool revert_on_reset;           /* SET FEATURES CCh (on) / 66h (off) */
    uint8_t multiple;               /* 0: READ/WRITE MULTIPLE disabled */
    uint8_t xfer_mode;              /* last SET FEATURES 03h mode, 0 = default */
    uint8_t heads, spt;             /* CHS translation (INITIALIZE DEVICE PARAMETERS) */
    bool standby, sleeping;

    /* The command in progress. */
    uint8_t cmd;
    IdeAddr addr;
    IdeXfer xfer;
    bool verify;                    /* READ VERIFY: read the media, move no data */
    bool dma_running;               /* DMA: the backend request was submitted */
    unsigned req_flags;             /* VD_REQ_FUA for the FUA writes */
    uint64_t lba;                   /* next sector to read from or write to the backend */
    uint64_t buf_lba;               /* sector of buf[0] */
    uint32_t remaining;             /* sectors still to move through the data port */
    uint32_t drq_sectors;           /* sectors per DRQ block */
    uint32_t block_sectors;         /* sectors in the current DRQ block */
    uint8_t *buf;                   /* PIO data buffer */
    size_t buf_len, buf_pos, block_end;
    IdeReq *inflight;
    GSList *orphans;                /* IdeReq * dropped by a reset or diagnostic, still running */
    bool reset_pending;             /* SRST released; BSY until every orphan finished */
    GArray *dsm_ranges;             /* DATA SET MANAGEMENT: IdeDsmRange still to discard */
    guint dsm_next;
    uint64_t dirty_min_lba;         /* lowest sector written into the cache since the last flush */
};

typedef struct IdeBmdma {
    uint8_t cmd, status;
    uint32_t prd;
    bool stopped;                   /* START cleared while a transfer was running */
    bool long_table;                /* the running transfer's table covers more than needed */
} IdeBmdma;

struct IdeChannel {
    VdIdeController *ctrl;
    unsigned index;
    unsigned irq;
    uint16_t cmd_base, ctl_base;
    VdRegion *cmd_region, *ctl_region;
    IdeDrive drive[2];
    unsigned sel;                   /* selected unit */
    uint8_t ctl;                    /* device control: nIEN, SRST, HOB */
    bool irq_level;
    IdeBmdma bm;
};

struct VdIdeController {
    VdPciDevice pci;
    VdBus *bus;
    VdDrain drain;                  /* IdeReqs created and not yet called back (orphans included) */
    IdeChannel ch[VD_IDE_CHANNELS];
};

/* ide-regs.c */
extern const VdIoOps vd_ide_cmd_ops, vd_ide_ctl_ops;
void ide_raise_irq(IdeDrive *d);
void ide_update_irq(IdeChannel *ch);
void ide_set_signature(IdeDrive *d);
void ide_power_on(IdeDrive *d);
void ide_reset_begin(IdeChannel *ch);
void ide_reset_end(IdeChannel *ch);
void ide_reset_finish(IdeDrive *d);
static inline bool ide_present(const IdeDrive *d) { return d->blk != NULL; }

/* ide-xfer.c */
IdeReq *ide_req_new(IdeDrive *d, IdeReqDone *done, size_t len);
VdBlockCompletionFunc ide_req_cb;
void ide_req_orphan(IdeDrive *d);
void ide_req_detach_all(IdeDrive *d);
void ide_xfer_clear(IdeDrive *d);
void ide_cmd_ok(IdeDrive *d);
void ide_cmd_error(IdeDrive *d, uint8_t error);
void ide_cmd_io_error(IdeDrive *d, uint8_t error, uint64_t lba);
void ide_set_lba(IdeDrive *d, uint64_t lba);
void ide_pio_in_start(IdeDrive *d, uint8_t *buf, size_t len);
void ide_pio_disk_read(IdeDrive *d);
void ide_pio_disk_write_start(IdeDrive *d);
void ide_verify_start(IdeDrive *d);
uint32_t ide_data_read(IdeDrive *d, unsigned size);
void ide_data_write(IdeDrive *d, uint32_t value, unsigned size);
void ide_note_write(IdeDrive *d, uint64_t lba, unsigned flags);

/* ata-commands.c */
void ata_exec(IdeDrive *d, uint8_t opcode);
void ata_apply_power_on_defaults(IdeDrive *d, bool *need_wce_off);
bool ata_set_wce(IdeDrive *d, bool on, IdeReqDone *done);

/* ata-dsm.c */
#define ATA_CMD_DSM        0x06
#define ATA_DSM_MAX_BLOCKS 8        /* 512-byte blocks of range entries per command (word 105) */
void ata_dsm_data(IdeDrive *d, uint8_t *buf, size_t len);

/* ata-identify.c */
void ata_identify(const IdeDrive *d, uint8_t out[IDE_SECTOR]);

/* bmdma.c */
extern const VdIoOps vd_ide_bmdma_ops;
void ide_dma_try_start(IdeChannel *ch);
void ide_bmdma_irq_edge(IdeChannel *ch);

#endif
