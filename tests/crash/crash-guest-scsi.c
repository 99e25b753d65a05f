/*
 * crash-guest-scsi.c - the crash runner's SCSI guest: WRITE(10) with and
 * without FUA, SYNCHRONIZE CACHE(10), and the caching mode page's WCE bit
 * (MODE SENSE(6) then MODE SELECT(6), as Linux's sd does), straight into the
 * transport-independent SCSI disk on nexus 0.
 */
#include "crash-guests.h"

#include "hw/scsi.h"

#include <string.h>

typedef struct Slot {
    VdScsiRequest req;
    struct iovec out, in;
    uint8_t data[CG_MAX_SECTORS * 512];
    bool busy, done;
} Slot;

struct CrashGuest {
    VdScsiDisk *disk;
    Slot slot[CG_MAX_DEPTH + 1]; /* the last one: synchronous control commands */
};

/* Completion callback of every command. */
static void scsi_done(VdScsiRequest *req, void *opaque)
{
    ((Slot *)opaque)->done = true;
}

/* Start a CDB in slot s with optional data-out and data-in buffers. */
static void start(CrashGuest *g, unsigned s, const uint8_t *cdb, size_t cdb_len, size_t out_len, size_t in_len)
{
    Slot *sl = &g->slot[s];
    memset(&sl->req, 0, sizeof(sl->req));
    memcpy(sl->req.cdb, cdb, cdb_len);
    sl->req.cdb_len = cdb_len;
    sl->out = (struct iovec){ sl->data, out_len };
    sl->in = (struct iovec){ sl->data, in_len };
    sl->req.out_iov = &sl->out;
    sl->req.out_niov = out_len ? 1 : 0;
    sl->req.in_iov = &sl->in;
    sl->req.in_niov = in_len ? 1 : 0;
    sl->req.complete = scsi_done;
    sl->req.opaque = sl;
    sl->busy = true;
    sl->done = false;
    vd_scsi_disk_submit(g->disk, &sl->req);
}

/* True if the finished command in slot s ended GOOD. */
static bool good(const Slot *sl)
{
    return sl->req.response == VD_SCSI_RESP_OK && sl->req.status == VD_SCSI_GOOD;
}

/* Run a control command to completion in the spare slot; true if GOOD. */
static bool run_sync(CrashGuest *g, const uint8_t *cdb, size_t cdb_len, size_t out_len, size_t in_len)
{
    Slot *sl = &g->slot[CG_MAX_DEPTH];
    start(g, CG_MAX_DEPTH, cdb, cdb_len, out_len, in_len);
    while (!sl->done) {
        g_main_context_iteration(NULL, TRUE);
    }
    sl->busy = false;
    return good(sl);
}

/* A SCSI disk on blk, its power-on unit attention taken. */
static CrashGuest *scsi_open(VdBlockBackend *blk, GError **errp)
{
    CrashGuest *g = g_new0(CrashGuest, 1);
    VdScsiDiskConfig cfg = { .lun = 0 };
    g->disk = vd_scsi_disk_new(blk, &cfg, NULL, errp);
    if (!g->disk) {
        g_free(g);
        return NULL;
    }
    static const uint8_t tur[6] = { 0x00 };
    run_sync(g, tur, 6, 0, 0); /* takes the POWER ON unit attention */
    return g;
}

/* WRITE(10), with the FUA bit if asked. */
static void scsi_submit_write(CrashGuest *g, unsigned slot, uint64_t lba, unsigned nsect, bool fua, const uint8_t *data)
{
    uint8_t cdb[10] = { 0x2a, fua ? 0x08 : 0, lba >> 24, lba >> 16, lba >> 8, lba, 0, nsect >> 8, nsect, 0 };
    memcpy(g->slot[slot].data, data, nsect * 512);
    start(g, slot, cdb, 10, nsect * 512, 0);
}

/* SYNCHRONIZE CACHE(10) of the whole disk. */
static void scsi_submit_flush(CrashGuest *g, unsigned slot)
{
    static const uint8_t cdb[10] = { 0x35 };
    start(g, slot, cdb, 10, 0, 0);
}

/* The first finished command slot. */
static bool scsi_poll(CrashGuest *g, unsigned *slot, bool *ok)
{
    for (unsigned i = 0; i < CG_MAX_DEPTH; i++) {
        Slot *sl = &g->slot[i];
        if (sl->busy && sl->done) {
            sl->busy = false;
            *slot = i;
            *ok = good(sl);
            return true;
        }
    }
    return false;
}

/* MODE SENSE(6) the caching page (DBD), flip WCE, MODE SELECT(6) it back with PF. */
static bool scsi_set_wce(CrashGuest *g, bool on)
{
    static const uint8_t sense[6] = { 0x1a, 0x08, 0x08, 0, 64, 0 };
    Slot *sl = &g->slot[CG_MAX_DEPTH];
    if (!run_sync(g, sense, 6, 0, 64)) {
        return false;
    }
    uint8_t page[64];
    const uint8_t *pg = sl->data + 4 + sl->data[3];
    size_t plen = MIN((size_t)pg[1] + 2, sizeof(page));
    memcpy(page, pg, plen);
    page[0] &= 0x3f;
    page[2] = (page[2] & ~0x04) | (on ? 0x04 : 0);
    uint8_t list[4 + 64] = { 0, sl->data[1], 0, 0 };
    memcpy(list + 4, page, plen);
    memcpy(sl->data, list, 4 + plen);
    uint8_t cdb[6] = { 0x15, 0x10, 0, 0, (uint8_t)(4 + plen), 0 };
    return run_sync(g, cdb, 6, 4 + plen, 0);
}

/* Free the disk (it waits for its commands). */
static void scsi_close(CrashGuest *g)
{
    vd_scsi_disk_free(g->disk);
    g_free(g);
}

const CrashGuestOps crash_guest_scsi = {
    .name = "scsi", .depth = CG_MAX_DEPTH, .has_fua = true, .switch_drains = true, .open = scsi_open,
    .submit_write = scsi_submit_write, .submit_flush = scsi_submit_flush, .set_wce = scsi_set_wce,
    .poll = scsi_poll, .close = scsi_close,
};
