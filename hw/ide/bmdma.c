/*
 * bmdma.c - SFF-8038i bus-master IDE DMA: the 16 BAR4 registers (primary
 * at +0, secondary at +8) and the engine that follows a PRD table.
 *
 * A transfer runs when the drive has a DMA command waiting and the guest has
 * set START.  The PRD table is read once, at start, entirely through the
 * bus's bounds-checked DMA helpers.  Outcomes, as SFF-8038i's status table
 * defines them:
 *  - table exactly as long as the transfer: INTR=1, ACTIVE=0;
 *  - table longer than the transfer: INTR=1, ACTIVE=1;
 *  - table shorter (EOT reached first): INTR=0, ACTIVE=0, ERROR=0.  No data
 *    moves and the drive keeps waiting for DMA (DRQ), so the guest can give
 *    a corrected table and set START again, or reset the channel;
 *  - table or a region outside guest RAM, or no EOT within
 *    VD_IDE_PRD_MAX_ENTRIES entries: ERROR=1, ACTIVE=0, INTR=0 (a bus
 *    error); the drive keeps waiting, as above.
 *  - START's direction bit disagrees with the command: ERROR=1 and the
 *    command ends with ERR + ABRT.
 * Clearing START while the backend request runs: a write has already taken
 * its data and completes; a read's data is discarded and the command ends
 * with ERR + ABRT.
 */
#include "ide-internal.h"
#include "util/bswap.h"

typedef enum PrdWalk { PRD_OK, PRD_SHORT, PRD_FAULT } PrdWalk;

/*
 * Follow the PRD table until it covers `bytes`, collecting the segments.
 * *long_table says whether the table had more to give than was used.
 */
static PrdWalk prd_walk(IdeChannel *ch, uint64_t bytes, GArray *segs, bool *long_table)
{
    VdBus *bus = ch->ctrl->bus;
    uint64_t covered = 0;
    for (unsigned i = 0; i < VD_IDE_PRD_MAX_ENTRIES; i++) {
        uint8_t e[8];
        if (!vd_dma_read(bus, (uint64_t)ch->bm.prd + 8ull * i, e, sizeof(e))) {
            return PRD_FAULT;
        }
        uint32_t base = vd_ld_le32(e) & ~1u;
        uint32_t count = (e[4] | e[5] << 8) & 0xfffe;
        bool eot = e[7] & 0x80;
        if (count == 0) {
            count = 0x10000;            /* a byte count of 0 means 64 KiB */
        }
        uint64_t use = MIN((uint64_t)count, bytes - covered);
        if (!vd_dma_map(bus, base, use)) {
            return PRD_FAULT;
        }
        IdeDmaSeg seg = { .gpa = base, .len = use };
        g_array_append_val(segs, seg);
        covered += use;
        if (covered == bytes) {
            *long_table = use < count || !eot;
            return PRD_OK;
        }
        if (eot) {
            return PRD_SHORT;
        }
    }
    return PRD_FAULT;
}

/* The DMA command's backend request has completed. */
static void dma_done(IdeDrive *d, IdeReq *r, int ret)
{
    IdeChannel *ch = d->ch;
    VdBus *bus = ch->ctrl->bus;
    bool to_mem = d->xfer == IDE_XFER_DMA_IN;
    d->dma_running = false;
    if (ret < 0) {
        ch->bm.status &= ~BM_ST_ACTIVE;
        ide_cmd_io_error(d, to_mem ? ATA_UNC : ATA_ABRT, r->lba);
        return;
    }
    if (to_mem) {
        if (ch->bm.stopped) {
            ide_cmd_error(d, ATA_ABRT);
            return;
        }
        size_t off = 0;
        for (guint i = 0; i < r->segs->len; i++) {
            IdeDmaSeg *s = &g_array_index(r->segs, IdeDmaSeg, i);
            vd_dma_write(bus, s->gpa, r->buf + off, s->len);   /* checked at start; RAM does not move */
            off += s->len;
        }
    } else {
        ide_note_write(d, r->lba, d->req_flags);
    }
    if (!ch->bm.long_table) {
        ch->bm.status &= ~BM_ST_ACTIVE;
    }
    ide_cmd_ok(d);
}

/* The drive on ch with a DMA command waiting for the engine, or NULL. */
static IdeDrive *dma_waiting_drive(IdeChannel *ch)
{
    for (int u = 0; u < 2; u++) {
        IdeDrive *d = &ch->drive[u];
        if (ide_present(d) && !d->dma_running &&
            (d->xfer == IDE_XFER_DMA_IN || d->xfer == IDE_XFER_DMA_OUT)) {
            return d;
        }
    }
    return NULL;
}

/* Start the transfer if a drive is waiting for DMA and START is set. */
void ide_dma_try_start(IdeChannel *ch)
{
    if (!(ch->bm.cmd & BM_CMD_START)) {
        return;
    }
    IdeDrive *d = dma_waiting_drive(ch);
    if (!d) {
        return;
    }
    bool to_mem = d->xfer == IDE_XFER_DMA_IN;
    if (!!(ch->bm.cmd & BM_CMD_READ) != to_mem) {
        ch->bm.status = (ch->bm.status & ~BM_ST_ACTIVE) | BM_ST_ERROR;
        ide_cmd_error(d, ATA_ABRT);
        return;
    }
    uint64_t bytes = (uint64_t)d->remaining * IDE_SECTOR;
    GArray *segs = g_array_new(FALSE, FALSE, sizeof(IdeDmaSeg));
    bool long_table = false;
    switch (prd_walk(ch, bytes, segs, &long_table)) {
    case PRD_SHORT:
        ch->bm.status &= ~BM_ST_ACTIVE;
        g_array_free(segs, TRUE);
        return;
    case PRD_FAULT:
        ch->bm.status = (ch->bm.status & ~BM_ST_ACTIVE) | BM_ST_ERROR;
        g_array_free(segs, TRUE);
        return;
    case PRD_OK:
        break;
    }
    ch->bm.long_table = long_table;
    ch->bm.stopped = false;
    d->status = ATA_BSY | ATA_DRDY;
    if (to_mem) {
        IdeReq *r = ide_req_new(d, dma_done, bytes);
        r->segs = segs;
        r->lba = d->lba;
        r->nsect = d->remaining;
        d->dma_running = true;
        vd_blk_preadv(d->blk, r->lba * IDE_SECTOR, &r->iov, 1, ide_req_cb, r);
        return;
    }
    /* Host to device: the data moves now, from the regions checked above. */
    uint8_t *buf = g_malloc(bytes);
    size_t off = 0;
    for (guint i = 0; i < segs->len; i++) {
        IdeDmaSeg *s = &g_array_index(segs, IdeDmaSeg, i);
        vd_dma_read(ch->ctrl->bus, s->gpa, buf + off, s->len);
        off += s->len;
    }
    if (d->cmd == ATA_CMD_DSM) {
        /* DATA SET MANAGEMENT: the data is a list of ranges, not sectors to write. */
        g_array_free(segs, TRUE);
        if (!long_table) {
            ch->bm.status &= ~BM_ST_ACTIVE;
        }
        ata_dsm_data(d, buf, bytes);
        return;
    }
    IdeReq *r = ide_req_new(d, dma_done, 0);
    r->buf = buf;
    r->len = bytes;
    r->iov = (struct iovec){ .iov_base = buf, .iov_len = bytes };
    r->segs = segs;
    r->lba = d->lba;
    r->nsect = d->remaining;
    d->dma_running = true;
    vd_blk_pwritev(d->blk, r->lba * IDE_SECTOR, &r->iov, 1, d->req_flags, ide_req_cb, r);
}

/* The channel's IDE interrupt line rose: latch it in the bus-master status. */
void ide_bmdma_irq_edge(IdeChannel *ch)
{
    ch->bm.status |= BM_ST_INTR;
}

/* Write the bus-master command register: START and the direction bit. */
static void bm_write_cmd(IdeChannel *ch, uint8_t v)
{
    uint8_t old = ch->bm.cmd;
    if (old & BM_CMD_START) {
        v = (v & BM_CMD_START) | (old & BM_CMD_READ);   /* direction is fixed while running */
    }
    ch->bm.cmd = v & (BM_CMD_START | BM_CMD_READ);
    if ((old & BM_CMD_START) && !(v & BM_CMD_START)) {
        ch->bm.status &= ~BM_ST_ACTIVE;
        for (int u = 0; u < 2; u++) {
            if (ch->drive[u].dma_running) {
                ch->bm.stopped = true;
            }
        }
    } else if (!(old & BM_CMD_START) && (v & BM_CMD_START)) {
        ch->bm.status |= BM_ST_ACTIVE;
        ide_dma_try_start(ch);
    }
}

/* One byte of a channel's bus-master registers. */
static uint8_t bm_read_byte(IdeChannel *ch, unsigned off)
{
    switch (off) {
    case 0: return ch->bm.cmd;
    case 2: return ch->bm.status;
    case 4: case 5: case 6: case 7: return ch->bm.prd >> (8 * (off - 4));
    default: return 0;
    }
}

/* Write one byte of a channel's bus-master registers. */
static void bm_write_byte(IdeChannel *ch, unsigned off, uint8_t v)
{
    switch (off) {
    case 0:
        bm_write_cmd(ch, v);
        break;
    case 2:
        /* ERROR and INTR are write-1-to-clear; the drive DMA-capable bits are plain R/W. */
        ch->bm.status &= ~(v & (BM_ST_ERROR | BM_ST_INTR));
        ch->bm.status = (ch->bm.status & ~(BM_ST_DRV0_DMA | BM_ST_DRV1_DMA)) |
                        (v & (BM_ST_DRV0_DMA | BM_ST_DRV1_DMA));
        break;
    case 4: case 5: case 6: case 7: {
        unsigned shift = 8 * (off - 4);
        uint32_t mask = 0xffu << shift;
        ch->bm.prd = ((ch->bm.prd & ~mask) | ((uint32_t)v << shift)) & ~3u;   /* dword aligned */
        break;
    }
    default:
        break;
    }
}

/* BAR4 read of any width: byte by byte, each byte in its channel's block. */
static uint64_t bm_read(void *opaque, uint64_t addr, unsigned size)
{
    VdIdeController *c = opaque;
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++) {
        uint64_t a = addr + i;
        if (a < VD_IDE_BMDMA_SIZE) {
            v |= (uint64_t)bm_read_byte(&c->ch[a / 8], a % 8) << (8 * i);
        }
    }
    return v;
}

/* BAR4 write of any width: byte by byte. */
static void bm_write(void *opaque, uint64_t addr, uint64_t value, unsigned size)
{
    VdIdeController *c = opaque;
    for (unsigned i = 0; i < size; i++) {
        uint64_t a = addr + i;
        if (a < VD_IDE_BMDMA_SIZE) {
            bm_write_byte(&c->ch[a / 8], a % 8, value >> (8 * i));
        }
    }
}

const VdIoOps vd_ide_bmdma_ops = { .read = bm_read, .write = bm_write };
