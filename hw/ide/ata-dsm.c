/*
 * ata-dsm.c - DATA SET MANAGEMENT (06h) with the TRIM bit: the guest sends,
 * by DMA, 512-byte blocks of 8-byte LBA range entries (bits 47:0 the first
 * sector, bits 63:48 the number of sectors, 0 = unused entry).  Every range
 * is checked against the disk before any is discarded; each then becomes a
 * backend discard, one after the other.  Offered (IDENTIFY word 169 bit 0)
 * only when the backend can discard.
 */
#include "ide-internal.h"

static void dsm_next(IdeDrive *d);

/* One discard has completed: go on with the next range, or report. */
static void dsm_done(IdeDrive *d, IdeReq *r, int ret)
{
    if (ret < 0) {
        vd_ide_cmd_error(d, ATA_ABRT);
        return;
    }
    vd_ide_note_write(d, r->lba, 0);
    d->dsm_next++;
    dsm_next(d);
}

/* Discard the next range, or complete the command when none is left. */
static void dsm_next(IdeDrive *d)
{
    if (d->dsm_next >= d->dsm_ranges->len) {
        vd_ide_cmd_ok(d);
        return;
    }
    IdeDsmRange *rg = &g_array_index(d->dsm_ranges, IdeDsmRange, d->dsm_next);
    IdeReq *r = vd_ide_req_new(d, dsm_done, 0);
    r->lba = rg->lba;
    r->nsect = rg->count;
    vd_blk_discard(d->blk, rg->lba * IDE_SECTOR, (uint64_t)rg->count * IDE_SECTOR, vd_ide_req_cb, r);
}

/* The range list has arrived (buf is ours): validate it all, then discard range by range. */
void vd_ata_dsm_data(IdeDrive *d, uint8_t *buf, size_t len)
{
    GArray *ranges = g_array_new(FALSE, FALSE, sizeof(IdeDsmRange));
    for (size_t off = 0; off + 8 <= len; off += 8) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--) {
            v = v << 8 | buf[off + i];
        }
        IdeDsmRange rg = { .lba = v & 0xffffffffffffull, .count = v >> 48 };
        if (rg.count == 0) {
            continue;
        }
        if (rg.lba >= d->nsectors || rg.count > d->nsectors - rg.lba) {
            g_array_free(ranges, TRUE);
            g_free(buf);
            vd_ide_cmd_error(d, ATA_ABRT);
            return;
        }
        g_array_append_val(ranges, rg);
    }
    g_free(buf);
    d->xfer = IDE_XFER_NONE;
    d->dsm_ranges = ranges;
    d->dsm_next = 0;
    dsm_next(d);
}
