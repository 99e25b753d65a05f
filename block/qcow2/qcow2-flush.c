/*
 * qcow2-flush.c - metadata write-back in dependency order, and the two flush
 * stages of the driver chain.
 *
 * Levels (qcow2.h): HEADER_DIRTY < DATA < REFBLOCK < REFTABLE < L2 < L1.  Before a
 * table of level L is written, every dirty table of a lower level is written
 * and, if any lower-level write is not yet durable, the child is flushed (an
 * ordering point, qcow2_barrier).  So a refcount block reaches the disk
 * before an L2 entry that points at a cluster it counts, and an L2 table
 * before the L1 entry that points at it.  Frees go the other way round (an
 * L2 entry stops pointing at a cluster before its refcount drops): they wait
 * in s->deferred_frees until stage 1 has made the L2 tables durable.
 *
 * Stage 1 (flush_to_os) writes every level in that order; stage 2
 * (flush_to_disk) is the child's.  Which stages a guest FLUSH, a FUA write or
 * a write-through write runs is decided by the generic layer alone
 * (block-backend.c, request-exec.c); with cache=unsafe it runs stage 1 only,
 * and the ordering points are skipped too (no_flush), so metadata still
 * reaches the OS in order: a killed process leaves a consistent image.
 * Everything here runs with s->lock held, except the two stage entry points.
 */
#include "qcow2.h"
#include "util/bswap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Run one read or write of [offset, offset+len) on the child. */
static int child_io(BDRVQcow2State *s, bool write, uint64_t offset, void *buf, size_t len)
{
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    VdDriverReq r = { .offset = offset, .bytes = len, .iov = &iov, .niov = 1 };
    int ret = write ? vd_bdrv_pwritev(s->bs->child, &r) : vd_bdrv_preadv(s->bs->child, &r);
    return ret < 0 ? ret : 0;
}

int qcow2_meta_read(BDRVQcow2State *s, uint64_t offset, void *buf, size_t len)
{
    return child_io(s, false, offset, buf, len);
}

void qcow2_note_unsynced(BDRVQcow2State *s, Qcow2Level level)
{
    s->unsynced |= 1u << level;
    s->meta_writes++;
}

int qcow2_barrier(BDRVQcow2State *s)
{
    if (!s->no_flush) {
        VdDriverReq r = { 0 };
        int ret = vd_bdrv_flush_to_disk(s->bs->child, &r);
        if (ret < 0) {
            return ret;
        }
        s->barriers++;
    }
    s->unsynced = 0;
    return 0;
}

int qcow2_write_header(BDRVQcow2State *s)
{
    int ret = child_io(s, true, 0, s->hdr_buf, s->align);
    if (ret >= 0) {
        qcow2_note_unsynced(s, QCOW2_LVL_HEADER_DIRTY);
    }
    return ret;
}

/* The refcount table, big-endian, in one write. */
static int write_reftable(BDRVQcow2State *s)
{
    size_t len = s->rt_entries * 8;
    uint64_t *be = NULL;
    if (posix_memalign((void **)&be, s->mem_align, len) != 0) {
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < s->rt_entries; i++) {
        vd_st_be64(&be[i], s->rt[i]);
    }
    int ret = qcow2_meta_write(s, QCOW2_LVL_REFTABLE, s->h.refcount_table_offset, be, len);
    free(be);
    if (ret >= 0) {
        s->rt_dirty = false;
    }
    return ret;
}

/* The dirty span of the L1 table, widened to the child's alignment, big-endian. */
static int write_l1(BDRVQcow2State *s)
{
    uint64_t lo = s->l1_dirty_lo * 8 / s->align * s->align;
    uint64_t hi = (s->l1_dirty_hi * 8 + s->align - 1) / s->align * s->align;
    uint64_t *be = NULL;
    if (posix_memalign((void **)&be, s->mem_align, hi - lo) != 0) {
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < (hi - lo) / 8; i++) {
        vd_st_be64(&be[i], s->l1[lo / 8 + i]);
    }
    int ret = qcow2_meta_write(s, QCOW2_LVL_L1, s->h.l1_table_offset + lo, be, hi - lo);
    free(be);
    if (ret >= 0) {
        s->l1_dirty_lo = s->l1_dirty_hi = 0;
    }
    return ret;
}

/* Write whatever of one level is dirty. */
static int write_level(BDRVQcow2State *s, Qcow2Level level)
{
    switch (level) {
    case QCOW2_LVL_HEADER_DIRTY:
        if (s->h.version < 3 || s->dirty_marked) {
            return 0;
        }
        /* The first metadata write of this open: mark the image dirty, and drop autoclear features we do not keep. */
        s->h.incompatible_features |= QCOW2_INCOMPAT_DIRTY;
        s->h.autoclear_features = 0;
        vd_qcow2_store_features(s->hdr_buf, s->h.incompatible_features, s->h.autoclear_features);
        s->dirty_marked = true;
        return qcow2_write_header(s);
    case QCOW2_LVL_DATA:
        return 0; /* written by the requests themselves */
    case QCOW2_LVL_REFBLOCK:
        return qcow2_cache_write_dirty(s, &s->rb_cache);
    case QCOW2_LVL_REFTABLE:
        return s->rt_dirty ? write_reftable(s) : 0;
    case QCOW2_LVL_L2:
        return qcow2_cache_write_dirty(s, &s->l2_cache);
    case QCOW2_LVL_L1:
        return s->l1_dirty_hi > s->l1_dirty_lo ? write_l1(s) : 0;
    case QCOW2_LVL__MAX:
        break;
    }
    g_assert_not_reached();
}

int qcow2_order_before(BDRVQcow2State *s, Qcow2Level level)
{
    for (Qcow2Level l = QCOW2_LVL_HEADER_DIRTY; l < level; l++) {
        int ret = write_level(s, l);
        if (ret < 0) {
            return ret;
        }
    }
    return (s->unsynced & ((1u << level) - 1)) ? qcow2_barrier(s) : 0;
}

int qcow2_meta_write(BDRVQcow2State *s, Qcow2Level level, uint64_t offset, const void *buf, size_t len)
{
    int ret = qcow2_order_before(s, level);
    if (ret < 0) {
        return ret;
    }
    ret = child_io(s, true, offset, (void *)buf, len);
    if (ret >= 0) {
        qcow2_note_unsynced(s, level);
    }
    return ret;
}

int qcow2_writeout_all(BDRVQcow2State *s)
{
    /* From DATA up: the dirty bit goes out before the first table that is written (qcow2_order_before), not alone. */
    for (Qcow2Level l = QCOW2_LVL_DATA; l < QCOW2_LVL__MAX; l++) {
        int ret = write_level(s, l);
        if (ret < 0) {
            return ret;
        }
    }
    if (!s->deferred_frees->len) {
        return 0;
    }
    /* The L2 entries that pointed at the freed clusters are written: make them durable, then drop the refcounts. */
    int ret = qcow2_barrier(s);
    if (ret >= 0) {
        ret = qcow2_apply_deferred_frees(s);
    }
    return ret < 0 ? ret : write_level(s, QCOW2_LVL_REFBLOCK);
}

int qcow2_flush_to_os(VdBlockDriverState *bs, VdDriverReq *req)
{
    BDRVQcow2State *s = bs->opaque;
    g_mutex_lock(&s->lock);
    int ret = s->read_only ? 0 : qcow2_writeout_all(s);
    g_mutex_unlock(&s->lock);
    return ret < 0 ? ret : vd_bdrv_flush_to_os(bs->child, req);
}

int qcow2_flush_to_disk(VdBlockDriverState *bs, VdDriverReq *req)
{
    BDRVQcow2State *s = bs->opaque;
    g_mutex_lock(&s->lock);
    uint64_t gen = s->meta_writes;
    g_mutex_unlock(&s->lock);
    int ret = vd_bdrv_flush_to_disk(bs->child, req);
    g_mutex_lock(&s->lock);
    if (ret >= 0 && s->meta_writes == gen) {
        s->unsynced = 0; /* nothing was written while the flush ran: every metadata write is durable */
    }
    g_mutex_unlock(&s->lock);
    return ret;
}

int qcow2_mark_clean(BDRVQcow2State *s)
{
    /* Everything out and durable first; only then may the header say clean. */
    int ret = qcow2_writeout_all(s);
    if (ret >= 0) {
        ret = qcow2_barrier(s);
    }
    if (ret >= 0 && s->h.version >= 3) {
        s->h.incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
        vd_qcow2_store_features(s->hdr_buf, s->h.incompatible_features, s->h.autoclear_features);
        ret = qcow2_write_header(s);
        if (ret >= 0) {
            ret = qcow2_barrier(s);
        }
    }
    if (ret >= 0) {
        s->dirty_marked = false;
    }
    return ret;
}

void qcow2_shutdown(BDRVQcow2State *s)
{
    if (s->read_only) {
        return;
    }
    g_mutex_lock(&s->lock);
    int ret = qcow2_writeout_all(s);
    if (ret >= 0 && s->dirty_marked) {
        ret = qcow2_mark_clean(s);
    }
    g_mutex_unlock(&s->lock);
    if (ret < 0) {
        g_warning("qcow2: writing the metadata out at close failed: %s; the image may leak clusters",
                  g_strerror(-ret));
    }
}
