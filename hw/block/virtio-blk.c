/* virtio-blk.c - the virtio block device: requests, write-cache control, merging. */
#include "hw/virtio-blk.h"
#include "util/bswap.h"
#include "util/counters.h"
#include "util/iov.h"

#include "hw/drain.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>

#define MERGE_MAX_IOV   1024          /* IOV_MAX */
#define MERGE_MAX_BYTES (32u << 20)
#define MERGE_MAX_REQS  64

struct VdVirtioBlk {
    VdVirtioDevice *vdev;
    VdBlockBackend *blk;
    char id[VD_VIRTIO_BLK_ID_BYTES];
    unsigned num_queues, queue_size;
    bool merge;
    bool own_wce_change;      /* inside this device's own vd_blk_set_write_cache call */
    bool dispatching;         /* inside queue_notify: notify once at the end */
    VdDrain drain;            /* requests popped whose status is not yet in guest memory */
    GQueue live;              /* those requests (BlkReq.live links), in the order they were popped */
    VdVirtioBlkStats stats;
};

/* One request: the popped element plus what the header said. */
typedef struct BlkReq {
    VdVirtqElem elem;         /* first: vd_virtq_pop allocates the whole struct */
    VdVirtioBlk *s;
    uint32_t type;
    uint64_t sector;
    struct iovec *data;       /* the data part of the chain (owned array) */
    unsigned ndata;
    uint64_t data_len;
    uint8_t *status;          /* host pointer to the status byte in guest memory */
    uint32_t written;         /* bytes written to device-writable buffers on success */
    unsigned pending;         /* outstanding backend ops (DISCARD/WRITE_ZEROES segments) */
    int err;                  /* first error among them */
    struct BlkReq *next;      /* next request in a merged host I/O */
    GList live;               /* link in VdVirtioBlk.live while it counts in the drain */
} BlkReq;

/* A host I/O carrying one or more merged requests. */
typedef struct MergeRun {
    BlkReq *first, *last;
    unsigned count, niov;
    uint64_t bytes;
    struct iovec *joined;     /* the merged iovec array when count > 1 */
} MergeRun;

/* The wire layout of a DISCARD/WRITE_ZEROES segment. */
typedef struct DwzSeg {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
} DwzSeg;

static const char *const type_names[] = {
    [VD_VIRTIO_BLK_T_IN] = "in", [VD_VIRTIO_BLK_T_OUT] = "out", [VD_VIRTIO_BLK_T_FLUSH] = "flush",
    [VD_VIRTIO_BLK_T_GET_ID] = "get_id", [VD_VIRTIO_BLK_T_DISCARD] = "discard",
    [VD_VIRTIO_BLK_T_WRITE_ZEROES] = "write_zeroes",
};

/* The device's feature offer (the core adds VERSION_1). */
static uint64_t blk_get_features(VdVirtioDevice *vdev)
{
    VdVirtioBlk *s = vd_virtio_device_opaque(vdev);
    uint64_t f = VD_VIRTIO_CORE_FEATURES | VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_SIZE_MAX) |
                 VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_SEG_MAX) | VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_BLK_SIZE) |
                 VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_FLUSH) | VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_TOPOLOGY) |
                 VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_CONFIG_WCE) | VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_MQ);
    if (vd_blk_is_read_only(s->blk)) {
        f |= VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_RO);
    } else {
        f |= VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_DISCARD) | VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_WRITE_ZEROES);
    }
    return f;
}

/*
 * Completion of this device's write-cache change (1->0 flushed first).  A
 * failed flush cannot be returned through a config write, so it is counted
 * and reaches the guest through the backend's sticky error: every later
 * FLUSH and every write made durable fails with VIRTIO_BLK_S_IOERR.
 */
static void wce_done(void *opaque, int ret)
{
    VdVirtioBlk *s = opaque;
    if (ret < 0) {
        s->stats.wce_flush_errors++;
        g_warning("virtio-blk: turning the write cache off: the flush failed (%s); "
                  "later flushes and durable writes fail", g_strerror(-ret));
    }
}

/* Ask the backend (the one owner of the write cache) for a new state. */
static void set_wce(VdVirtioBlk *s, bool on)
{
    if (vd_blk_write_cache(s->blk) == on) {
        return;
    }
    s->own_wce_change = true;
    vd_blk_set_write_cache(s->blk, on, wce_done, s);
    s->own_wce_change = false;
}

/* The backend's write cache changed: a change made by anyone else is a config change for the driver. */
static void wce_changed(void *opaque, bool enabled)
{
    VdVirtioBlk *s = opaque;
    if (s->own_wce_change) {
        return;
    }
    s->stats.wce_host_changes++;
    vd_virtio_config_changed(s->vdev);
}

/* FEATURES_OK: without FLUSH and CONFIG_WCE the driver assumes writethrough, so give it that. */
static bool blk_set_features(VdVirtioDevice *vdev, uint64_t features)
{
    VdVirtioBlk *s = vd_virtio_device_opaque(vdev);
    bool flush = features & VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_FLUSH);
    bool cwce = features & VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_CONFIG_WCE);
    if (!flush && !cwce) {
        set_wce(s, false);
    }
    return true;
}

/* Fill the virtio_blk_config structure. */
static void blk_get_config(VdVirtioDevice *vdev, uint8_t *c)
{
    VdVirtioBlk *s = vd_virtio_device_opaque(vdev);
    int64_t len = vd_blk_length(s->blk);
    vd_st_le64(c + VD_VIRTIO_BLK_CFG_CAPACITY, len > 0 ? (uint64_t)len / VD_VIRTIO_BLK_SECTOR : 0);
    vd_st_le32(c + VD_VIRTIO_BLK_CFG_SIZE_MAX, VD_VIRTIO_BLK_SIZE_MAX);
    vd_st_le32(c + VD_VIRTIO_BLK_CFG_SEG_MAX, s->queue_size - 2);
    vd_st_le32(c + VD_VIRTIO_BLK_CFG_BLK_SIZE, VD_VIRTIO_BLK_SECTOR);
    c[VD_VIRTIO_BLK_CFG_PHYS_BLOCK_EXP] = 3;          /* 4 KiB physical blocks */
    c[VD_VIRTIO_BLK_CFG_ALIGN_OFFSET] = 0;
    vd_st_le16(c + VD_VIRTIO_BLK_CFG_MIN_IO_SIZE, 8);       /* in logical blocks */
    vd_st_le32(c + VD_VIRTIO_BLK_CFG_OPT_IO_SIZE, 0);
    c[VD_VIRTIO_BLK_CFG_WRITEBACK] = vd_blk_write_cache(s->blk) ? 1 : 0;
    vd_st_le16(c + VD_VIRTIO_BLK_CFG_NUM_QUEUES, s->num_queues);
    vd_st_le32(c + VD_VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, VD_VIRTIO_BLK_MAX_DWZ_SECTORS);
    vd_st_le32(c + VD_VIRTIO_BLK_CFG_MAX_DISCARD_SEG, VD_VIRTIO_BLK_MAX_DWZ_SEG);
    vd_st_le32(c + VD_VIRTIO_BLK_CFG_DISCARD_ALIGN, 8);
    vd_st_le32(c + VD_VIRTIO_BLK_CFG_MAX_WZ_SECTORS, VD_VIRTIO_BLK_MAX_DWZ_SECTORS);
    vd_st_le32(c + VD_VIRTIO_BLK_CFG_MAX_WZ_SEG, VD_VIRTIO_BLK_MAX_DWZ_SEG);
    c[VD_VIRTIO_BLK_CFG_WZ_MAY_UNMAP] = 1;
}

/*
 * Config writes: only the writeback byte is writable, only with CONFIG_WCE,
 * only 0 or 1, and 1 only if the backend has a cache to turn on (virtio has
 * no error for a config write: on a write-through-only disk the byte keeps
 * reading 0, as SCSI's fixed WCE and ATA's missing write cache say).
 */
static void blk_config_write(VdVirtioDevice *vdev, uint32_t off, const uint8_t *buf, uint32_t len)
{
    VdVirtioBlk *s = vd_virtio_device_opaque(vdev);
    if (off > VD_VIRTIO_BLK_CFG_WRITEBACK || off + len <= VD_VIRTIO_BLK_CFG_WRITEBACK) {
        return;   /* read-only fields */
    }
    uint8_t v = buf[VD_VIRTIO_BLK_CFG_WRITEBACK - off];
    bool negotiated = (vd_virtio_get_status(vdev) & VD_VIRTIO_STATUS_FEATURES_OK) &&
                      vd_virtio_has_feature(vdev, VD_VIRTIO_BLK_F_CONFIG_WCE);
    if (!negotiated || v > 1 || (v && vd_blk_write_through_only(s->blk))) {
        s->stats.wce_writes_ignored++;
        return;
    }
    if (v != vd_blk_write_cache(s->blk)) {
        s->stats.wce_changes++;
    }
    set_wce(s, v);
}

/* Every request of the reset epoch is answered: power-on state, and the reset completes. */
static void blk_reset_drained(void *opaque)
{
    VdVirtioBlk *s = opaque;
    set_wce(s, vd_blk_default_write_cache(s->blk));
    vd_virtio_reset_done(s->vdev);
}

/* Device reset: it finishes from the drain callback once nothing is in flight (status reads 0 then). */
static void blk_reset(VdVirtioDevice *vdev)
{
    VdVirtioBlk *s = vd_virtio_device_opaque(vdev);
    vd_virtio_blk_drain(s, blk_reset_drained, s);
}

/* Give a request its status, return it to the driver and free it. */
static void req_complete(BlkReq *r, uint8_t status)
{
    VdVirtioBlk *s = r->s;
    VdVirtQueue *vq = r->elem.vq;
    uint64_t *by_status[] = { &s->stats.ok, &s->stats.ioerr, &s->stats.unsupp };
    (*by_status[status])++;
    if (!vd_virtq_elem_stale(&r->elem)) {
        *r->status = status;
        vd_virtq_push(&r->elem, (status == VD_VIRTIO_BLK_S_OK ? r->written : 0) + 1);
        if (!s->dispatching) {
            vd_virtq_notify(vq);   /* also takes what a full ring refused (virtio core) */
        }
    }
    g_queue_unlink(&s->live, &r->live);
    g_free(r->data);
    vd_virtq_elem_free(r);
    vd_drain_dec(&s->drain);   /* last: a drain callback may reset the device */
}

/* Map a backend result to a status. */
static uint8_t status_of(int ret)
{
    return ret == 0 ? VD_VIRTIO_BLK_S_OK : VD_VIRTIO_BLK_S_IOERR;
}

/* True if [sector, +bytes) lies inside the disk (overflow-safe). */
static bool in_range(VdVirtioBlk *s, uint64_t sector, uint64_t bytes)
{
    uint64_t cap = (uint64_t)MAX(vd_blk_length(s->blk), 0) / VD_VIRTIO_BLK_SECTOR;
    uint64_t n = bytes / VD_VIRTIO_BLK_SECTOR;
    return sector <= cap && n <= cap - sector;
}

/* Backend completion of a (possibly merged) read or write. */
static void rw_done(void *opaque, int ret)
{
    MergeRun *run = opaque;
    BlkReq *r = run->first;
    uint8_t st = status_of(ret);
    if (ret < 0) {
        g_debug("virtio-blk: %s at sector %" G_GUINT64_FORMAT " failed: %s", type_names[r->type], r->sector,
                g_strerror(-ret));
    }
    while (r) {
        BlkReq *next = r->next;
        req_complete(r, st);
        r = next;
    }
    g_free(run->joined);
    g_free(run);
}

/* Submit the pending merge run as one host I/O. */
static void run_submit(VdVirtioBlk *s, MergeRun *pending)
{
    if (!pending->first) {
        return;
    }
    MergeRun *run = g_new(MergeRun, 1);
    *run = *pending;
    memset(pending, 0, sizeof(*pending));
    BlkReq *r = run->first;
    const struct iovec *iov = r->data;
    if (run->count > 1) {
        /* one iovec array over every member's buffers; it lives until rw_done */
        run->joined = g_new(struct iovec, run->niov);
        unsigned k = 0;
        for (BlkReq *m = r; m; m = m->next) {
            if (m->ndata) {   /* header+status only: no iovec, and joined may be NULL (NULL + 0 is UB) */
                memcpy(run->joined + k, m->data, m->ndata * sizeof(struct iovec));
                k += m->ndata;
            }
        }
        iov = run->joined;
        s->stats.merged_ios++;
        s->stats.merged_requests += run->count - 1;
    }
    uint64_t off = r->sector * VD_VIRTIO_BLK_SECTOR;
    if (r->type == VD_VIRTIO_BLK_T_IN) {
        vd_blk_preadv(s->blk, off, iov, run->niov, rw_done, run);
    } else {
        /* Every OUT is a plain write: its durability comes from the backend's write
         * cache state, which cannot change inside one notification, so merged
         * writes always share it. */
        vd_blk_pwritev(s->blk, off, iov, run->niov, 0, rw_done, run);
    }
}

/* Add a validated IN/OUT request to the run, submitting the run first if it cannot merge. */
static void run_add(VdVirtioBlk *s, MergeRun *run, BlkReq *r)
{
    BlkReq *last = run->last;
    /* a request without data never merges: there is nothing to join (and no iovec array) */
    bool fits = last && s->merge && last->type == r->type && last->data_len && r->data_len &&
                last->sector + last->data_len / VD_VIRTIO_BLK_SECTOR == r->sector &&
                run->niov + r->ndata <= MERGE_MAX_IOV && run->bytes + r->data_len <= MERGE_MAX_BYTES &&
                run->count < MERGE_MAX_REQS;
    if (!fits) {
        run_submit(s, run);
        run->first = r;
    } else {
        last->next = r;
    }
    run->last = r;
    run->count++;
    run->niov += r->ndata;
    run->bytes += r->data_len;
}

/* Check an IN/OUT request's data part against the advertised limits and the disk. */
static bool rw_valid(VdVirtioBlk *s, BlkReq *r)
{
    if (r->data_len % VD_VIRTIO_BLK_SECTOR || r->ndata > s->queue_size - 2 ||
        !in_range(s, r->sector, r->data_len)) {
        return false;
    }
    for (unsigned i = 0; i < r->ndata; i++) {
        if (r->data[i].iov_len > VD_VIRTIO_BLK_SIZE_MAX) {
            return false;
        }
    }
    return true;
}

/* VIRTIO_BLK_T_IN: device-writable data before the status byte. */
static void do_in(VdVirtioBlk *s, BlkReq *r, MergeRun *run)
{
    VdVirtqElem *e = &r->elem;
    s->stats.in++;
    r->ndata = vd_iov_slice(e->in_sg, e->in_num, 0, e->in_len - 1, &r->data);
    r->data_len = e->in_len - 1;
    if (!rw_valid(s, r)) {
        req_complete(r, VD_VIRTIO_BLK_S_IOERR);
        return;
    }
    r->written = r->data_len;
    run_add(s, run, r);
}

/* VIRTIO_BLK_T_OUT: device-readable data after the header. */
static void do_out(VdVirtioBlk *s, BlkReq *r, MergeRun *run)
{
    VdVirtqElem *e = &r->elem;
    s->stats.out++;
    r->ndata = vd_iov_slice(e->out_sg, e->out_num, 16, e->out_len - 16, &r->data);
    r->data_len = e->out_len - 16;
    if (vd_blk_is_read_only(s->blk) || !rw_valid(s, r)) {
        req_complete(r, VD_VIRTIO_BLK_S_IOERR);   /* RO: IOERR and no data written (5.2.6.1) */
        return;
    }
    run_add(s, run, r);
}

/* Backend completion of a flush or of one DISCARD/WRITE_ZEROES segment. */
static void op_done(void *opaque, int ret)
{
    BlkReq *r = opaque;
    if (ret < 0 && r->err == 0) {
        r->err = ret;
    }
    if (--r->pending == 0) {
        req_complete(r, status_of(r->err));
    }
}

/* VIRTIO_BLK_T_FLUSH: everything completed before it becomes stable. */
static void do_flush(VdVirtioBlk *s, BlkReq *r, MergeRun *run)
{
    s->stats.flush++;
    if (!vd_virtio_has_feature(s->vdev, VD_VIRTIO_BLK_F_FLUSH)) {
        req_complete(r, VD_VIRTIO_BLK_S_UNSUPP);
        return;
    }
    r->pending = 1;
    vd_blk_flush(s->blk, op_done, r);
}

/* VIRTIO_BLK_T_GET_ID: 20 bytes of serial, NUL-padded. */
static void do_get_id(VdVirtioBlk *s, BlkReq *r, MergeRun *run)
{
    VdVirtqElem *e = &r->elem;
    s->stats.get_id++;
    if (e->in_len - 1 < VD_VIRTIO_BLK_ID_BYTES) {
        req_complete(r, VD_VIRTIO_BLK_S_IOERR);
        return;
    }
    vd_iov_from_buf(e->in_sg, e->in_num, 0, s->id, VD_VIRTIO_BLK_ID_BYTES);
    r->written = VD_VIRTIO_BLK_ID_BYTES;
    req_complete(r, VD_VIRTIO_BLK_S_OK);
}

/* DISCARD and WRITE_ZEROES: validate every segment, then submit them all. */
static void do_dwz(VdVirtioBlk *s, BlkReq *r, bool zeroes)
{
    VdVirtqElem *e = &r->elem;
    unsigned feature = zeroes ? VD_VIRTIO_BLK_F_WRITE_ZEROES : VD_VIRTIO_BLK_F_DISCARD;
    if (!vd_virtio_has_feature(s->vdev, feature)) {
        req_complete(r, VD_VIRTIO_BLK_S_UNSUPP);
        return;
    }
    uint64_t len = e->out_len - 16;
    unsigned n = len / sizeof(DwzSeg);
    if (vd_blk_is_read_only(s->blk) || len == 0 || len % sizeof(DwzSeg) || n > VD_VIRTIO_BLK_MAX_DWZ_SEG) {
        req_complete(r, VD_VIRTIO_BLK_S_IOERR);
        return;
    }
    DwzSeg seg[VD_VIRTIO_BLK_MAX_DWZ_SEG];
    vd_iov_to_buf(e->out_sg, e->out_num, 16, seg, len);
    for (unsigned i = 0; i < n; i++) {
        seg[i].sector = GUINT64_FROM_LE(seg[i].sector);
        seg[i].num_sectors = GUINT32_FROM_LE(seg[i].num_sectors);
        seg[i].flags = GUINT32_FROM_LE(seg[i].flags);
        /* 5.2.6.2: unknown flags, or unmap on DISCARD, are UNSUPP */
        if (seg[i].flags & ~(uint32_t)VD_VIRTIO_BLK_WZ_F_UNMAP || (!zeroes && seg[i].flags)) {
            req_complete(r, VD_VIRTIO_BLK_S_UNSUPP);
            return;
        }
        if (seg[i].num_sectors > VD_VIRTIO_BLK_MAX_DWZ_SECTORS ||
            !in_range(s, seg[i].sector, (uint64_t)seg[i].num_sectors * VD_VIRTIO_BLK_SECTOR)) {
            req_complete(r, VD_VIRTIO_BLK_S_IOERR);
            return;
        }
    }
    r->pending = n;
    for (unsigned i = 0; i < n; i++) {
        uint64_t off = seg[i].sector * VD_VIRTIO_BLK_SECTOR;
        uint64_t bytes = (uint64_t)seg[i].num_sectors * VD_VIRTIO_BLK_SECTOR;
        if (zeroes) {
            unsigned flags = seg[i].flags & VD_VIRTIO_BLK_WZ_F_UNMAP ? VD_REQ_MAY_UNMAP : 0;
            vd_blk_write_zeroes(s->blk, off, bytes, flags, op_done, r);
        } else {
            vd_blk_discard(s->blk, off, bytes, op_done, r);
        }
    }
}

/* VIRTIO_BLK_T_DISCARD. */
static void do_discard(VdVirtioBlk *s, BlkReq *r, MergeRun *run)
{
    s->stats.discard++;
    do_dwz(s, r, false);
}

/* VIRTIO_BLK_T_WRITE_ZEROES. */
static void do_write_zeroes(VdVirtioBlk *s, BlkReq *r, MergeRun *run)
{
    s->stats.write_zeroes++;
    do_dwz(s, r, true);
}

typedef void BlkReqHandler(VdVirtioBlk *s, BlkReq *r, MergeRun *run);

/* Request type -> handler; an empty slot answers UNSUPP. */
static BlkReqHandler *const handlers[] = {
    [VD_VIRTIO_BLK_T_IN] = do_in,
    [VD_VIRTIO_BLK_T_OUT] = do_out,
    [VD_VIRTIO_BLK_T_FLUSH] = do_flush,
    [VD_VIRTIO_BLK_T_GET_ID] = do_get_id,
    [VD_VIRTIO_BLK_T_DISCARD] = do_discard,
    [VD_VIRTIO_BLK_T_WRITE_ZEROES] = do_write_zeroes,
};

/* Parse the header and status byte, then dispatch; a chain with no room for them breaks the device. */
static void handle_request(VdVirtioBlk *s, BlkReq *r, MergeRun *run)
{
    VdVirtqElem *e = &r->elem;
    struct { uint32_t type, ioprio; uint64_t sector; } hdr;
    if (e->in_len < 1 || vd_iov_to_buf(e->out_sg, e->out_num, 0, &hdr, sizeof(hdr)) != sizeof(hdr)) {
        s->stats.bad_layout++;
        vd_virtq_push(e, 0);
        vd_virtio_set_needs_reset(s->vdev, "virtio-blk: request without header or status byte");
        vd_virtq_elem_free(r);
        return;
    }
    vd_drain_inc(&s->drain);   /* from here on req_complete answers it */
    r->live.data = r;
    g_queue_push_tail_link(&s->live, &r->live);
    const struct iovec *last = &e->in_sg[e->in_num - 1];
    r->s = s;
    r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
    r->type = GUINT32_FROM_LE(hdr.type);
    r->sector = GUINT64_FROM_LE(hdr.sector);
    BlkReqHandler *h = r->type < G_N_ELEMENTS(handlers) ? handlers[r->type] : NULL;
    if (r->type != VD_VIRTIO_BLK_T_IN && r->type != VD_VIRTIO_BLK_T_OUT) {
        run_submit(s, run);   /* never merge across a FLUSH or anything else */
    }
    if (!h) {
        req_complete(r, VD_VIRTIO_BLK_S_UNSUPP);
        return;
    }
    h(s, r, run);
}

/* A queue was kicked: take every request, merge what is adjacent, notify once. */
static void blk_queue_notify(VdVirtioDevice *vdev, VdVirtQueue *vq)
{
    VdVirtioBlk *s = vd_virtio_device_opaque(vdev);
    MergeRun run = { 0 };
    BlkReq *r;
    s->dispatching = true;
    while ((r = vd_virtq_pop(vq, sizeof(BlkReq)))) {
        handle_request(s, r, &run);
    }
    run_submit(s, &run);
    s->dispatching = false;
    vd_virtq_notify(vq);
}

static const VdVirtioDeviceOps blk_ops = {
    .name = "virtio-blk",
    .device_id = VD_VIRTIO_ID_BLOCK,
    .config_size = VD_VIRTIO_BLK_CONFIG_SIZE,
    .get_features = blk_get_features,
    .set_features = blk_set_features,
    .get_config = blk_get_config,
    .config_write = blk_config_write,
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
};

/* Create the device; see virtio-blk.h. */
VdVirtioBlk *vd_virtio_blk_new(VdBlockBackend *blk, const VdVirtioBlkConf *conf, VdBus *bus, GError **errp)
{
    VdVirtioBlkConf def = { 0 };
    conf = conf ? conf : &def;
    unsigned nq = conf->num_queues ? conf->num_queues : 1;
    unsigned qs = conf->queue_size ? conf->queue_size : 256;
    if (nq > 64 || qs < 4) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "virtio-blk: %u queues of %u entries (1..64 queues of at least 4)", nq, qs);
        return NULL;
    }
    VdVirtioBlk *s = g_new0(VdVirtioBlk, 1);
    s->blk = blk;
    s->num_queues = nq;
    s->queue_size = qs;
    s->merge = !conf->no_merge;
    const char *id = conf->serial ? conf->serial : vd_blk_unique_id(blk);
    memcpy(s->id, id, strnlen(id, sizeof(s->id)));   /* NUL-padded (g_new0), no terminator at 20 bytes (5.2.6) */
    s->vdev = vd_virtio_device_new(&blk_ops, s, nq, qs, bus, errp);
    if (!s->vdev) {
        g_free(s);
        return NULL;
    }
    vd_blk_add_write_cache_notifier(blk, wce_changed, s);
    return s;
}

/* Reset, wait for outstanding I/O (its completions find the elements stale) and free. */
void vd_virtio_blk_free(VdVirtioBlk *s)
{
    if (!s) {
        return;
    }
    vd_virtio_reset(s->vdev);
    /* Teardown only: every request's answer comes from a backend callback, so an idle backend means none left. */
    g_assert(!vd_blk_in_completion());
    vd_blk_drain(s->blk);
    g_assert(s->drain.in_flight == 0 && !vd_virtio_resetting(s->vdev));
    vd_blk_remove_write_cache_notifier(s->blk, wce_changed, s);
    vd_virtio_device_free(s->vdev);
    g_free(s);
}

/* Requests taken from the rings whose status is not yet written to guest memory. */
unsigned vd_virtio_blk_in_flight(VdVirtioBlk *s)
{
    return s->drain.in_flight;
}

/* Call cb once vd_virtio_blk_in_flight is 0; see virtio-blk.h. */
void vd_virtio_blk_drain(VdVirtioBlk *s, VdDrainFunc *cb, void *opaque)
{
    vd_drain_wait(&s->drain, cb, opaque);
}

VdVirtioDevice *vd_virtio_blk_device(VdVirtioBlk *s) { return s->vdev; }
VdBlockBackend *vd_virtio_blk_backend(VdVirtioBlk *s) { return s->blk; }
bool vd_virtio_blk_writeback(VdVirtioBlk *s) { return vd_blk_write_cache(s->blk); }

/* Snapshot of the device counters. */
void vd_virtio_blk_get_stats(VdVirtioBlk *s, VdVirtioBlkStats *out)
{
    *out = s->stats;
}

/* "key=value" rendering of the device counters. */
void vd_virtio_blk_format_stats(VdVirtioBlk *s, GString *out)
{
#define C(f) VD_COUNTER(VdVirtioBlkStats, f)
    static const VdCounter counters[] = {
        C(in), C(out), C(flush), C(get_id), C(discard), C(write_zeroes), C(ok), C(ioerr), C(unsupp),
        C(merged_requests), C(merged_ios), C(wce_changes), C(wce_writes_ignored),
        C(wce_host_changes), C(wce_flush_errors), C(bad_layout),
    };
#undef C
    vd_counters_format(out, counters, G_N_ELEMENTS(counters), &s->stats);
    vd_counters_append(out, "writeback", vd_blk_write_cache(s->blk));
}

/* ---- migration (hw/vmstate.h) ---- */

#define BLK_STATE_VERSION 1

/* A request the source's backend held (werror=stop) or queued: re-issued on the destination. */
typedef struct HeldReq {
    uint16_t queue, head;
} HeldReq;

typedef struct BlkState {
    VdVirtioState *core;
    uint32_t nheld;
    HeldReq *held;
} BlkState;

/*
 * Save a quiescent device: the core's state, the configuration the stream
 * must match, then every request still popped (all of them parked in the
 * backend by then), by queue and head.  The writeback byte is the
 * backend's and travels in the drive's section.
 */
static bool blk_state_save(void *dev, VdMigWriter *w, GError **errp)
{
    VdVirtioBlk *s = dev;
    if (vd_virtio_resetting(s->vdev)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "virtio-blk: a device reset waits for %u requests held by the error policy; resume them first",
                    s->drain.in_flight);
        return false;
    }
    vd_virtio_save(s->vdev, w);
    vd_mig_put_u32(w, s->num_queues);
    vd_mig_put_u32(w, s->queue_size);
    vd_mig_put_u32(w, s->live.length);
    for (GList *l = s->live.head; l; l = l->next) {
        BlkReq *r = l->data;
        vd_mig_put_u16(w, vd_virtq_index(r->elem.vq));
        vd_mig_put_u16(w, r->elem.index);
    }
    return true;
}

/* Drop a parsed state. */
static void blk_state_free(void *state)
{
    BlkState *st = state;
    if (st) {
        vd_virtio_state_free(st->core);
        g_free(st->held);
        g_free(st);
    }
}

/* Read and check the section against this device; nothing changes. */
static void *blk_state_parse(void *dev, VdMigSection *sec, GError **errp)
{
    VdVirtioBlk *s = dev;
    BlkState *st = g_new0(BlkState, 1);
    uint32_t nq, qs;
    st->core = vd_virtio_parse(s->vdev, sec, errp);
    if (!st->core || !vd_mig_get_u32(sec, "num-queues", &nq, errp) ||
        !vd_mig_get_u32(sec, "queue-size", &qs, errp)) {
        goto fail;
    }
    if (nq != s->num_queues || qs != s->queue_size) {
        vd_mig_field_error(sec, "num-queues/queue-size", errp, "%u queues of %u in the stream, this device has "
                           "%u of %u", nq, qs, s->num_queues, s->queue_size);
        goto fail;
    }
    if (!vd_mig_get_u32(sec, "held requests", &st->nheld, errp)) {
        goto fail;
    }
    if (st->nheld > (uint64_t)nq * qs) {
        vd_mig_field_error(sec, "held requests", errp, "%u is more than the rings hold", st->nheld);
        goto fail;
    }
    st->held = g_new0(HeldReq, st->nheld);
    for (uint32_t i = 0; i < st->nheld; i++) {
        HeldReq *h = &st->held[i];
        if (!vd_mig_get_u16(sec, "held request queue", &h->queue, errp) ||
            !vd_mig_get_u16(sec, "held request head", &h->head, errp)) {
            goto fail;
        }
        if (h->queue >= nq || h->head >= qs) {
            vd_mig_field_error(sec, "held request", errp, "queue %u head %u is outside %u queues of %u", h->queue,
                               h->head, nq, qs);
            goto fail;
        }
    }
    if (!vd_mig_section_done(sec, errp)) {
        goto fail;
    }
    return st;
fail:
    blk_state_free(st);
    return NULL;
}

/* Become the source's device, then take back and re-issue every request it held (as QEMU does). */
static void blk_state_apply(void *dev, void *state)
{
    VdVirtioBlk *s = dev;
    BlkState *st = state;
    vd_virtio_apply(s->vdev, g_steal_pointer(&st->core));
    MergeRun run = { 0 };
    s->dispatching = true;
    for (uint32_t i = 0; i < st->nheld; i++) {
        VdVirtQueue *vq = vd_virtio_queue(s->vdev, st->held[i].queue);
        if (run.first && run.first->elem.vq != vq) {
            run_submit(s, &run);
        }
        BlkReq *r = vd_virtq_pop_head(vq, st->held[i].head, sizeof(BlkReq));
        if (r) {
            handle_request(s, r, &run);
        }
    }
    run_submit(s, &run);
    s->dispatching = false;
    for (unsigned q = 0; q < s->num_queues; q++) {
        vd_virtq_notify(vd_virtio_queue(s->vdev, q));
    }
    blk_state_free(st);
}

const VdDeviceStateOps vd_virtio_blk_state_ops = {
    .kind = "virtio-blk",
    .version = BLK_STATE_VERSION,
    .save = blk_state_save,
    .parse = blk_state_parse,
    .apply = blk_state_apply,
    .free_state = blk_state_free,
};
