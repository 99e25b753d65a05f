/*
 * crashsim.c - the "crashsim" filter driver: the host-level power-cut model.
 *
 * Every op passes through to the child driver (crashsim has no prepare, so
 * every op runs in a worker of the thread pool and through this file).  On
 * the way it records each modifying op, with per-sector content tokens:
 *  - in flight from its start until the child returns;
 *  - then durable at once if it was a VD_DRV_FUA / VD_DRV_DSYNC write,
 *    else volatile;
 *  - a volatile op becomes durable when a flush_to_disk that STARTED after
 *    it completed succeeds.  Ops completing while a flush runs belong to the
 *    next epoch (the CrashMonkey rule).
 * Durable ops land in the durable map (sector -> the last durable writer)
 * and in the dm-log-writes op log.  Lock rules: crashsim-internal.h.
 */
#include "crashsim-internal.h"

#include <errno.h>
#include <string.h>

uint64_t vd_crash_hash_sector(const uint8_t *p)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (unsigned i = 0; i < VD_CRASH_SECTOR; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    return h | 1; /* content hashes are odd; the tokens are even */
}

/* Copy bytes [skip, skip+len) of an iovec to buf. */
static void iov_copy_out(const struct iovec *iov, int niov, uint64_t skip, uint8_t *buf, uint64_t len)
{
    for (int i = 0; i < niov && len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        uint64_t n = MIN(iov[i].iov_len - skip, len);
        memcpy(buf, (const uint8_t *)iov[i].iov_base + skip, n);
        buf += n;
        len -= n;
        skip = 0;
    }
}

/* The sector range [*sector, *sector + *nsect) touching [offset, offset+bytes). */
static void sector_span(uint64_t offset, uint64_t bytes, uint64_t *sector, uint64_t *nsect)
{
    *sector = offset / VD_CRASH_SECTOR;
    *nsect = bytes ? (offset + bytes + VD_CRASH_SECTOR - 1) / VD_CRASH_SECTOR - *sector : 0;
}

/* Mark the partly covered first and last sectors of a span as ANY. */
static void mark_partial_edges(uint64_t *hash, uint64_t offset, uint64_t bytes, uint64_t nsect)
{
    if (nsect && offset % VD_CRASH_SECTOR) {
        hash[0] = VD_CRASH_ANY;
    }
    if (nsect && (offset + bytes) % VD_CRASH_SECTOR) {
        hash[nsect - 1] = VD_CRASH_ANY;
    }
}

uint64_t *vd_crash_fill_tokens(uint64_t offset, uint64_t bytes, uint64_t token, uint64_t *sector, uint64_t *nsect)
{
    sector_span(offset, bytes, sector, nsect);
    uint64_t *hash = g_new(uint64_t, MAX(*nsect, 1));
    for (uint64_t i = 0; i < *nsect; i++) {
        hash[i] = token;
    }
    mark_partial_edges(hash, offset, bytes, *nsect);
    return hash;
}

uint64_t *vd_crash_hash_iov(uint64_t offset, uint64_t bytes, const struct iovec *iov, int niov,
                            uint64_t *sector, uint64_t *nsect)
{
    sector_span(offset, bytes, sector, nsect);
    uint64_t *hash = g_new(uint64_t, MAX(*nsect, 1));
    uint8_t buf[VD_CRASH_SECTOR];
    uint64_t head = offset - *sector * VD_CRASH_SECTOR;
    for (uint64_t i = 0; i < *nsect; i++) {
        uint64_t pos = i * VD_CRASH_SECTOR; /* byte of the span */
        if (pos < head || pos + VD_CRASH_SECTOR > head + bytes) {
            hash[i] = VD_CRASH_ANY;
            continue;
        }
        iov_copy_out(iov, niov, pos - head, buf, VD_CRASH_SECTOR);
        hash[i] = vd_crash_hash_sector(buf);
    }
    return hash;
}

void vd_crash_host_write_free(VdCrashHostWrite *w)
{
    g_free(w->hash);
    g_free(w->data);
    g_free(w);
}

/* Take w out of the pending set without freeing it (lock held). */
static void pending_steal(VdCrashSim *cs, VdCrashHostWrite *w)
{
    guint i;
    if (g_ptr_array_find(cs->pending, w, &i)) {
        g_ptr_array_steal_index(cs->pending, i);
    }
}

/* Record a modifying op as in flight (worker thread). */
static VdCrashHostWrite *host_begin(VdCrashSim *cs, VdCrashOpKind kind, VdDriverReq *req)
{
    VdCrashHostWrite *w = g_new0(VdCrashHostWrite, 1);
    w->kind = kind;
    w->fua = req->flags & (VD_DRV_FUA | VD_DRV_DSYNC);
    if (kind == VD_CRASH_OP_WRITE) {
        w->hash = vd_crash_hash_iov(req->offset, req->bytes, req->iov, req->niov, &w->sector, &w->nsect);
        w->data = g_malloc0(w->nsect * VD_CRASH_SECTOR);
        iov_copy_out(req->iov, req->niov, 0, w->data + (req->offset - w->sector * VD_CRASH_SECTOR), req->bytes);
    } else {
        uint64_t token = kind == VD_CRASH_OP_ZEROES ? cs->zero_hash : VD_CRASH_DISCARD;
        w->hash = vd_crash_fill_tokens(req->offset, req->bytes, token, &w->sector, &w->nsect);
    }
    g_mutex_lock(&cs->lock);
    w->start_seq = ++cs->host_seq;
    g_ptr_array_add(cs->pending, w);
    g_mutex_unlock(&cs->lock);
    return w;
}

/* Apply a durable op to the durable map and the log (lock held). */
static void make_durable(VdCrashSim *cs, VdCrashHostWrite *w)
{
    for (uint64_t i = 0; i < w->nsect; i++) {
        gpointer key = GSIZE_TO_POINTER(w->sector + i + 1);
        VdCrashDurable *d = g_hash_table_lookup(cs->durable, key);
        if (!d) {
            d = g_new0(VdCrashDurable, 1);
            g_hash_table_insert(cs->durable, key, d);
        }
        if (d->seq < w->done_seq) {
            d->seq = w->done_seq;
            d->hash = w->hash[i];
        }
    }
    vd_crash_log_add(cs, VD_CRASH_LOG_OP, w, NULL);
}

/* The child returned: the op is durable, volatile, or (declined) never happened (worker thread). */
static void host_end(VdCrashSim *cs, VdCrashHostWrite *w, int ret)
{
    g_mutex_lock(&cs->lock);
    if (ret == -ENOTSUP && w->kind != VD_CRASH_OP_WRITE) {
        pending_steal(cs, w);
        vd_crash_host_write_free(w);
    } else {
        w->done_seq = ++cs->host_seq;
        if (ret < 0) {
            /* A failed op may have landed in part: it may or may not be there, with anything in it. */
            for (uint64_t i = 0; i < w->nsect; i++) {
                w->hash[i] = VD_CRASH_ANY;
            }
        } else if (w->fua) {
            pending_steal(cs, w);
            make_durable(cs, w);
        }
    }
    g_mutex_unlock(&cs->lock);
}

/* Order of completion, for making the flushed ops durable in the order they completed. */
static gint by_done_seq(gconstpointer a, gconstpointer b)
{
    const VdCrashHostWrite *x = *(VdCrashHostWrite *const *)a, *y = *(VdCrashHostWrite *const *)b;
    return x->done_seq < y->done_seq ? -1 : x->done_seq > y->done_seq;
}

/* A flush that started at host_seq epoch succeeded: everything completed before it is durable (lock held). */
static void flush_epoch_durable(VdCrashSim *cs, uint64_t epoch)
{
    g_autoptr(GPtrArray) now = g_ptr_array_new();
    for (guint i = 0; i < cs->pending->len;) {
        VdCrashHostWrite *w = g_ptr_array_index(cs->pending, i);
        if (w->done_seq && w->done_seq <= epoch) {
            g_ptr_array_add(now, w);
            g_ptr_array_steal_index(cs->pending, i);
        } else {
            i++;
        }
    }
    g_ptr_array_sort(now, by_done_seq);
    for (guint i = 0; i < now->len; i++) {
        make_durable(cs, g_ptr_array_index(now, i));
    }
    vd_crash_log_add(cs, VD_CRASH_LOG_FLUSH, NULL, NULL);
}

/* Open the child with the same options, then the empty model. */
static bool crash_open(VdBlockDriverState *bs, const VdDriverOpenOptions *o, GError **errp)
{
    VdCrashSim *cs = bs->opaque;
    if (!o->child) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "driver 'crashsim' needs a child: child=file,file=PATH or child=null,size=BYTES");
        return false;
    }
    /* log=: write an empty log now, so that a path that cannot be written fails the open. */
    if (o->crash_log && !vd_crash_log_write(NULL, o->crash_log, true, errp)) {
        g_prefix_error(errp, "log=%s: ", o->crash_log);
        return false;
    }
    if (!vd_bdrv_open_child(bs, o->child, o, errp)) {
        return false;
    }
    g_mutex_init(&cs->lock);
    cs->tear = o->crash_tear;
    cs->samples = o->crash_samples;
    uint8_t zero[VD_CRASH_SECTOR] = { 0 };
    cs->zero_hash = vd_crash_hash_sector(zero);
    cs->seen = vd_crash_guest_new();
    cs->durable = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    cs->pending = g_ptr_array_new_with_free_func((GDestroyNotify)vd_crash_host_write_free);
    cs->log = g_ptr_array_new_with_free_func(vd_crash_log_entry_free);
    cs->log_path = g_strdup(o->crash_log);
    return true;
}

/* Close the child, write the op log if log= asked for it, and free the model, the guest log and the op log. */
static void crash_close(VdBlockDriverState *bs)
{
    VdCrashSim *cs = bs->opaque;
    vd_bdrv_close_child(bs);
    if (!cs->durable) {
        return;
    }
    g_autoptr(GError) err = NULL;
    if (cs->log_path && !vd_crash_log_write(cs, cs->log_path, true, &err)) {
        g_warning("crashsim: log=%s: %s", cs->log_path, err->message);
    }
    g_free(cs->log_path);
    vd_crash_guest_free(cs->seen);
    g_hash_table_destroy(cs->durable);
    g_ptr_array_free(cs->pending, TRUE);
    g_ptr_array_free(cs->log, TRUE);
    g_mutex_clear(&cs->lock);
}

/* Length and capabilities: the child's, so they combine down the chain. */
static int64_t crash_get_length(VdBlockDriverState *bs) { return bs->child->drv->get_length(bs->child); }
static VdFuaSupport crash_can_fua(VdBlockDriverState *bs) { return vd_bdrv_can_fua(bs->child); }
static bool crash_can_dsync(VdBlockDriverState *bs) { return vd_bdrv_can_dsync(bs->child); }
static bool crash_can_discard(VdBlockDriverState *bs) { return vd_bdrv_can_discard(bs->child); }
static bool crash_can_zero(VdBlockDriverState *bs) { return vd_bdrv_can_zero(bs->child); }
static uint32_t crash_request_alignment(VdBlockDriverState *bs) { return vd_bdrv_request_alignment(bs->child); }
static uint32_t crash_mem_alignment(VdBlockDriverState *bs) { return vd_bdrv_mem_alignment(bs->child); }

/* Reads change nothing: straight to the child. */
static int crash_preadv(VdBlockDriverState *bs, VdDriverReq *req)
{
    return vd_bdrv_preadv(bs->child, req);
}

/* A write: in flight while the child runs it, then durable or volatile. */
static int crash_pwritev(VdBlockDriverState *bs, VdDriverReq *req)
{
    VdCrashHostWrite *w = host_begin(bs->opaque, VD_CRASH_OP_WRITE, req);
    int ret = vd_bdrv_pwritev(bs->child, req);
    host_end(bs->opaque, w, ret);
    return ret;
}

/* A discard: recorded like a write whose sectors may read back as anything. */
static int crash_discard(VdBlockDriverState *bs, VdDriverReq *req)
{
    VdCrashHostWrite *w = host_begin(bs->opaque, VD_CRASH_OP_DISCARD, req);
    int ret = vd_bdrv_discard(bs->child, req);
    host_end(bs->opaque, w, ret);
    return ret;
}

/* Write-zeroes: recorded like a write of zero sectors. */
static int crash_write_zeroes(VdBlockDriverState *bs, VdDriverReq *req)
{
    VdCrashHostWrite *w = host_begin(bs->opaque, VD_CRASH_OP_ZEROES, req);
    int ret = vd_bdrv_write_zeroes(bs->child, req);
    host_end(bs->opaque, w, ret);
    return ret;
}

/* Stage 1: crashsim caches nothing itself; the child's caches go down to the OS. */
static int crash_flush_to_os(VdBlockDriverState *bs, VdDriverReq *req)
{
    return vd_bdrv_flush_to_os(bs->child, req);
}

/* Stage 2: what completed before this flush started is durable once it succeeds. */
static int crash_flush_to_disk(VdBlockDriverState *bs, VdDriverReq *req)
{
    VdCrashSim *cs = bs->opaque;
    g_mutex_lock(&cs->lock);
    uint64_t epoch = cs->host_seq;
    g_mutex_unlock(&cs->lock);
    int ret = vd_bdrv_flush_to_disk(bs->child, req);
    if (ret >= 0) {
        g_mutex_lock(&cs->lock);
        flush_epoch_durable(cs, epoch);
        g_mutex_unlock(&cs->lock);
    }
    return ret;
}

/* Migration's cache drop: the child's, if it has one. */
/* Image locks belong to the child that opens the file. */
static bool crash_set_perm(VdBlockDriverState *bs, VdImagePerm perm, GError **errp)
{
    return vd_bdrv_set_perm(bs->child, perm, errp);
}

static int crash_drop_page_cache(VdBlockDriverState *bs, VdDriverReq *req)
{
    return bs->child->drv->drop_page_cache ? bs->child->drv->drop_page_cache(bs->child, req) : 0;
}

const VdBlockDriver vd_driver_crashsim = {
    .name = "crashsim",
    .instance_size = sizeof(VdCrashSim),
    .is_filter = true,
    .open = crash_open,
    .close = crash_close,
    .get_length = crash_get_length,
    .can_fua = crash_can_fua,
    .can_dsync = crash_can_dsync,
    .can_discard = crash_can_discard,
    .can_zero = crash_can_zero,
    .request_alignment = crash_request_alignment,
    .mem_alignment = crash_mem_alignment,
    .preadv = crash_preadv,
    .pwritev = crash_pwritev,
    .flush_to_os = crash_flush_to_os,
    .flush_to_disk = crash_flush_to_disk,
    .discard = crash_discard,
    .write_zeroes = crash_write_zeroes,
    .drop_page_cache = crash_drop_page_cache,
    .set_perm = crash_set_perm,
};
