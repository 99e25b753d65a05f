/*
 * ide-xfer.c - backend request lifetime, command completion, and the PIO
 * data phase (DRQ blocks through the data port).
 *
 * PIO moves data in backend requests of up to IDE_CHUNK_SECTORS sectors and
 * hands them to the guest in DRQ blocks of one sector, or of the multiple
 * count for READ/WRITE MULTIPLE.  Reads: INTRQ before each block, none after
 * the last.  Writes: the first block is requested without INTRQ, every later
 * block and the completion with one.
 */
#include "ide-internal.h"

#include <string.h>

/* Allocate a request for d (with a len-byte buffer) and mark it in flight. */
IdeReq *ide_req_new(IdeDrive *d, IdeReqDone *done, size_t len)
{
    IdeReq *r = g_new0(IdeReq, 1);
    if (d->inflight) {
        ide_req_orphan(d);      /* cannot happen: one command at a time per drive */
    }
    r->drive = d;
    r->owner = d;
    r->done = done;
    if (len) {
        r->buf = g_malloc(len);
        r->len = len;
        r->iov = (struct iovec){ .iov_base = r->buf, .iov_len = len };
    }
    d->inflight = r;
    vd_drain_inc(&d->ch->ctrl->drain);
    return r;
}

/*
 * Backend completion: hand the result to the drive if it still cares;
 * an orphan instead leaves its owner's list, and the last one finishes a
 * pending reset.  Then free, and count the request out of the drain.
 */
void ide_req_cb(void *opaque, int ret)
{
    IdeReq *r = opaque;
    IdeDrive *d = r->drive;
    IdeDrive *owner = r->owner;
    if (d) {
        d->inflight = NULL;
        r->done(d, r, ret);
    } else if (owner) {
        owner->orphans = g_slist_remove(owner->orphans, r);
        if (owner->reset_pending && !owner->orphans) {
            ide_reset_finish(owner);   /* the old write has landed: the drive may report ready */
        }
    }
    g_free(r->buf);
    if (r->segs) {
        g_array_free(r->segs, TRUE);
    }
    g_free(r);
    if (owner) {
        vd_drain_dec(&owner->ch->ctrl->drain);
    }
}

/* Forget the drive's in-flight request; its callback only frees it (and may finish a reset). */
void ide_req_orphan(IdeDrive *d)
{
    if (d->inflight) {
        d->inflight->drive = NULL;
        d->orphans = g_slist_prepend(d->orphans, d->inflight);
        d->inflight = NULL;
    }
}

/* Controller teardown: the drive's requests run on, but must not reach it any more. */
void ide_req_detach_all(IdeDrive *d)
{
    ide_req_orphan(d);
    for (GSList *l = d->orphans; l; l = l->next) {
        ((IdeReq *)l->data)->owner = NULL;
    }
    g_clear_pointer(&d->orphans, g_slist_free);
    d->reset_pending = false;
}

/* Drop the data phase of the current command. */
void ide_xfer_clear(IdeDrive *d)
{
    g_free(d->buf);
    d->buf = NULL;
    d->buf_len = d->buf_pos = d->block_end = 0;
    d->xfer = IDE_XFER_NONE;
    d->remaining = 0;
    d->block_sectors = 0;
    d->verify = false;
    d->dma_running = false;
    d->req_flags = 0;
    if (d->dsm_ranges) {
        g_array_free(d->dsm_ranges, TRUE);
        d->dsm_ranges = NULL;
    }
}

/* Complete the current command successfully with an interrupt. */
void ide_cmd_ok(IdeDrive *d)
{
    ide_xfer_clear(d);
    d->status = ATA_READY;
    ide_raise_irq(d);
}

/* Complete the current command with ERR and the given error bits. */
void ide_cmd_error(IdeDrive *d, uint8_t error)
{
    ide_xfer_clear(d);
    d->error = error;
    d->status = ATA_READY | ATA_ERR;
    ide_raise_irq(d);
}

/* Complete with ERR and report the failing sector in the LBA registers. */
void ide_cmd_io_error(IdeDrive *d, uint8_t error, uint64_t lba)
{
    ide_set_lba(d, lba);
    ide_cmd_error(d, error);
}

/* Write an address into the task file in the command's addressing mode. */
void ide_set_lba(IdeDrive *d, uint64_t lba)
{
    switch (d->addr) {
    case IDE_ADDR_LBA48:
        d->lbal[0] = lba;
        d->lbam[0] = lba >> 8;
        d->lbah[0] = lba >> 16;
        d->lbal[1] = lba >> 24;
        d->lbam[1] = lba >> 32;
        d->lbah[1] = lba >> 40;
        break;
    case IDE_ADDR_LBA28:
        lba = MIN(lba, 0x0fffffffull);
        d->lbal[0] = lba;
        d->lbam[0] = lba >> 8;
        d->lbah[0] = lba >> 16;
        d->select = (d->select & 0xf0) | ((lba >> 24) & 0x0f);
        break;
    case IDE_ADDR_CHS: {
        uint64_t per_cyl = (uint64_t)d->heads * d->spt;
        uint64_t cyl = MIN(lba / per_cyl, 0xffffu);
        d->lbal[0] = lba % d->spt + 1;
        d->lbam[0] = cyl;
        d->lbah[0] = cyl >> 8;
        d->select = (d->select & 0xf0) | ((lba / d->spt) % d->heads);
        break;
    }
    }
}

/* Remember that a sector now sits in the (backend's) write cache. */
void ide_note_write(IdeDrive *d, uint64_t lba, unsigned flags)
{
    if (vd_blk_write_cache(d->blk) && !(flags & VD_REQ_FUA)) {
        d->dirty_min_lba = MIN(d->dirty_min_lba, lba);
    }
}

/* Offer the next DRQ block of the buffer to the guest. */
static void pio_next_block(IdeDrive *d, bool irq)
{
    d->block_sectors = MIN(d->drq_sectors, d->remaining);
    d->block_end = MIN(d->buf_pos + (size_t)d->block_sectors * IDE_SECTOR, d->buf_len);
    d->status = ATA_READY | ATA_DRQ;
    if (irq) {
        ide_raise_irq(d);
    }
}

/* Start a device-to-host PIO transfer of a buffer the device built (IDENTIFY). */
void ide_pio_in_start(IdeDrive *d, uint8_t *buf, size_t len)
{
    d->xfer = IDE_XFER_PIO_IN;
    d->buf = buf;
    d->buf_len = len;
    d->buf_pos = 0;
    d->remaining = len / IDE_SECTOR;
    d->drq_sectors = 1;
    pio_next_block(d, true);
}

/* A chunk read for PIO-in or READ VERIFY has completed. */
static void pio_read_done(IdeDrive *d, IdeReq *r, int ret)
{
    if (ret < 0) {
        ide_cmd_io_error(d, ATA_UNC, r->lba);
        return;
    }
    d->lba = r->lba + r->nsect;
    if (d->verify) {
        d->remaining -= r->nsect;
        if (d->remaining == 0) {
            ide_cmd_ok(d);
        } else {
            ide_pio_disk_read(d);
        }
        return;
    }
    g_free(d->buf);
    d->buf = r->buf;
    r->buf = NULL;
    d->buf_len = r->len;
    d->buf_pos = 0;
    d->buf_lba = r->lba;
    pio_next_block(d, true);
}

/* Read the next chunk of a PIO-in (or verify) command from the backend; BSY meanwhile. */
void ide_pio_disk_read(IdeDrive *d)
{
    uint32_t n = MIN(d->remaining, IDE_CHUNK_SECTORS);
    IdeReq *r = ide_req_new(d, pio_read_done, (size_t)n * IDE_SECTOR);
    r->lba = d->lba;
    r->nsect = n;
    d->status = ATA_BSY | ATA_DRDY;
    vd_blk_preadv(d->blk, r->lba * IDE_SECTOR, &r->iov, 1, ide_req_cb, r);
}

/* READ VERIFY: read every sector through the backend, move nothing to the guest. */
void ide_verify_start(IdeDrive *d)
{
    d->verify = true;
    ide_pio_disk_read(d);
}

/* The guest has taken the whole current DRQ block of a PIO-in command. */
static void pio_in_block_done(IdeDrive *d)
{
    d->remaining -= d->block_sectors;
    if (d->remaining == 0) {
        ide_xfer_clear(d);
        d->status = ATA_READY;   /* no interrupt after the last block of a read */
        return;
    }
    if (d->buf_pos < d->buf_len) {
        pio_next_block(d, true);
        return;
    }
    ide_pio_disk_read(d);
}

/* Allocate the buffer for the next chunk of a PIO-out command and ask for its first block. */
static void pio_out_chunk(IdeDrive *d, bool irq)
{
    uint32_t n = MIN(d->remaining, IDE_CHUNK_SECTORS);
    g_free(d->buf);
    d->buf_len = (size_t)n * IDE_SECTOR;
    d->buf = g_malloc(d->buf_len);
    d->buf_pos = 0;
    d->buf_lba = d->lba;
    pio_next_block(d, irq);
}

/* Start a host-to-device PIO command: the first DRQ block comes without INTRQ. */
void ide_pio_disk_write_start(IdeDrive *d)
{
    d->xfer = IDE_XFER_PIO_OUT;
    pio_out_chunk(d, false);
}

/* A chunk write of a PIO-out command has completed. */
static void pio_write_done(IdeDrive *d, IdeReq *r, int ret)
{
    if (ret < 0) {
        ide_cmd_io_error(d, ATA_ABRT, r->lba);
        return;
    }
    ide_note_write(d, r->lba, d->req_flags);
    d->lba = r->lba + r->nsect;
    if (d->remaining == 0) {
        ide_cmd_ok(d);
        return;
    }
    pio_out_chunk(d, true);
}

/* The guest has filled the current DRQ block of a PIO-out command. */
static void pio_out_block_done(IdeDrive *d)
{
    d->remaining -= d->block_sectors;
    if (d->remaining > 0 && d->buf_pos < d->buf_len) {
        pio_next_block(d, true);
        return;
    }
    IdeReq *r = ide_req_new(d, pio_write_done, 0);
    r->buf = d->buf;
    r->len = d->buf_pos;
    r->iov = (struct iovec){ .iov_base = r->buf, .iov_len = r->len };
    r->lba = d->buf_lba;
    r->nsect = d->buf_pos / IDE_SECTOR;
    d->buf = NULL;
    d->buf_len = d->buf_pos = d->block_end = 0;
    d->status = ATA_BSY | ATA_DRDY;
    vd_blk_pwritev(d->blk, r->lba * IDE_SECTOR, &r->iov, 1, d->req_flags, ide_req_cb, r);
}

/* Bytes a data-port access moves: 4 for a 32-bit access, otherwise one 16-bit word. */
static unsigned data_bytes(unsigned size)
{
    return size == 4 ? 4 : 2;
}

/* Data-port read; outside a PIO-in DRQ block it reads as all ones and changes nothing. */
uint32_t ide_data_read(IdeDrive *d, unsigned size)
{
    if (d->xfer != IDE_XFER_PIO_IN || !(d->status & ATA_DRQ) || !d->buf) {
        return UINT32_MAX;
    }
    uint32_t v = 0;
    unsigned n = data_bytes(size);
    for (unsigned i = 0; i < n && d->buf_pos < d->block_end; i++) {
        v |= (uint32_t)d->buf[d->buf_pos++] << (8 * i);
    }
    if (d->buf_pos >= d->block_end) {
        pio_in_block_done(d);
    }
    return v;
}

/* Data-port write; outside a PIO-out DRQ block it is ignored. */
void ide_data_write(IdeDrive *d, uint32_t value, unsigned size)
{
    if (d->xfer != IDE_XFER_PIO_OUT || !(d->status & ATA_DRQ) || !d->buf) {
        return;
    }
    unsigned n = data_bytes(size);
    for (unsigned i = 0; i < n && d->buf_pos < d->block_end; i++) {
        d->buf[d->buf_pos++] = value >> (8 * i);
    }
    if (d->buf_pos >= d->block_end) {
        pio_out_block_done(d);
    }
}
