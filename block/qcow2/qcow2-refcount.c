/*
 * qcow2-refcount.c - 16-bit refcounts, cluster allocation and frees.
 *
 * Allocation takes the first cluster with refcount 0 from s->free_hint on.
 * A range without a refcount block gets a new one at its first free cluster
 * (it counts itself, as QEMU's do); a refcount table too small for the
 * range is grown at the end of the file (grow_reftable).  A cluster beyond
 * everything ever written (s->fresh_idx) reads as zeroes, which saves the
 * zero copy-on-write of a new data cluster.  Frees of clusters that an L2
 * entry pointed at wait in s->deferred_frees (qcow2-flush.c).
 * Callers hold s->lock (qcow2.h).
 */
#include "qcow2.h"
#include "util/bswap.h"

#include <errno.h>
#include <string.h>

int qcow2_get_refcount(BDRVQcow2State *s, uint64_t cluster, uint64_t *ref)
{
    uint64_t rti = cluster / s->refs_per_block;
    *ref = 0;
    if (rti >= s->rt_entries || !s->rt[rti]) {
        return 0;
    }
    void *rb;
    int ret = qcow2_cache_get(s, &s->rb_cache, s->rt[rti], false, &rb);
    if (ret < 0) {
        return ret;
    }
    *ref = vd_ld_be16((uint8_t *)rb + (cluster % s->refs_per_block) * 2);
    qcow2_cache_put(&s->rb_cache, s->rt[rti]);
    return 0;
}

/* Add delta to the refcount of a cluster whose refcount block exists. */
static int update_refcount(BDRVQcow2State *s, uint64_t cluster, int delta)
{
    uint64_t rti = cluster / s->refs_per_block;
    if (rti >= s->rt_entries || !s->rt[rti]) {
        g_warning("qcow2: cluster %" G_GUINT64_FORMAT " has no refcount block: the image is corrupt", cluster);
        return -EIO;
    }
    void *rb;
    int ret = qcow2_cache_get(s, &s->rb_cache, s->rt[rti], false, &rb);
    if (ret < 0) {
        return ret;
    }
    uint8_t *p = (uint8_t *)rb + (cluster % s->refs_per_block) * 2;
    int64_t v = (int64_t)vd_ld_be16(p) + delta;
    if (v < 0 || v > UINT16_MAX) {
        qcow2_cache_put(&s->rb_cache, s->rt[rti]);
        g_warning("qcow2: refcount of cluster %" G_GUINT64_FORMAT " would become %" G_GINT64_FORMAT
                  ": the image is corrupt", cluster, v);
        return -EIO;
    }
    vd_st_be16(p, (uint16_t)v);
    qcow2_cache_mark_dirty(&s->rb_cache, s->rt[rti]);
    qcow2_cache_put(&s->rb_cache, s->rt[rti]);
    if (v == 0 && cluster < s->free_hint) {
        s->free_hint = cluster;
    }
    return 0;
}

/* A new, zeroed refcount block for range rti at cluster blk, counting the clusters [first, end) of its range. */
static int new_refblock(BDRVQcow2State *s, uint64_t rti, uint64_t blk, uint64_t first, uint64_t end)
{
    void *rb;
    uint64_t off = blk * s->cluster_size;
    int ret = qcow2_cache_get(s, &s->rb_cache, off, true, &rb);
    if (ret < 0) {
        return ret;
    }
    for (uint64_t c = first; c < end; c++) {
        vd_st_be16((uint8_t *)rb + (c % s->refs_per_block) * 2, 1);
    }
    qcow2_cache_mark_dirty(&s->rb_cache, off);
    qcow2_cache_put(&s->rb_cache, off);
    s->rt[rti] = off;
    s->rt_dirty = true;
    return 0;
}

/* How many ranges in [first_r, last_r] have no refcount block in a table of `entries`. */
static uint64_t missing_refblocks(BDRVQcow2State *s, uint64_t first_r, uint64_t last_r)
{
    uint64_t n = 0;
    for (uint64_t r = first_r; r <= last_r; r++) {
        n += r >= s->rt_entries || !s->rt[r];
    }
    return n;
}

/*
 * Grow the refcount table to cover range need_rti: a new table at the end
 * of the file, after the new refcount blocks that count it; written and made
 * durable before the header points at it; then the old table is freed.
 */
static int grow_reftable(BDRVQcow2State *s, uint64_t need_rti)
{
    uint64_t entries = s->rt_entries;
    while (entries <= need_rti) {
        entries *= 2;
    }
    uint64_t rt_clusters = (entries * 8 + s->cluster_size - 1) / s->cluster_size;
    if (rt_clusters * s->cluster_size > QCOW2_MAX_REFTABLE_BYTES) {
        return -ENOSPC;
    }
    entries = rt_clusters * s->cluster_size / 8;
    uint64_t start = s->fresh_idx, k = 0;
    for (;;) { /* the refcount blocks the new area needs, the area including them */
        uint64_t end = start + k + rt_clusters;
        uint64_t need = missing_refblocks(s, start / s->refs_per_block, (end - 1) / s->refs_per_block);
        if (need <= k) {
            break;
        }
        k = need;
    }
    uint64_t end = start + k + rt_clusters;
    uint64_t *old = s->rt, old_entries = s->rt_entries;
    uint64_t old_off = s->h.refcount_table_offset, old_clusters = s->h.refcount_table_clusters;
    s->rt = g_new0(uint64_t, entries);
    memcpy(s->rt, old, old_entries * 8);
    s->rt_entries = entries;
    uint64_t blk = start;
    int ret = 0;
    for (uint64_t r = start / s->refs_per_block; ret >= 0 && r <= (end - 1) / s->refs_per_block; r++) {
        uint64_t first = MAX(start, r * s->refs_per_block), last = MIN(end, (r + 1) * s->refs_per_block);
        if (s->rt[r]) {
            for (uint64_t c = first; ret >= 0 && c < last; c++) {
                ret = update_refcount(s, c, 1);
            }
        } else {
            ret = new_refblock(s, r, blk++, first, last);
        }
    }
    s->fresh_idx = end;
    s->h.refcount_table_offset = (start + k) * s->cluster_size;
    s->h.refcount_table_clusters = rt_clusters;
    /* The new blocks and table, durable, before the header points at them. */
    if (ret >= 0 && (ret = qcow2_order_before(s, QCOW2_LVL_REFTABLE)) >= 0) {
        s->rt_dirty = true;
        ret = qcow2_order_before(s, QCOW2_LVL_L2);
    }
    if (ret < 0) {
        g_free(s->rt);
        s->rt = old;
        s->rt_entries = old_entries;
        s->h.refcount_table_offset = old_off;
        s->h.refcount_table_clusters = old_clusters;
        return ret;
    }
    vd_st_be64(s->hdr_buf + 48, s->h.refcount_table_offset);
    vd_st_be32(s->hdr_buf + 56, s->h.refcount_table_clusters);
    ret = qcow2_write_header(s);
    if (ret >= 0) {
        ret = qcow2_barrier(s);
    }
    g_free(old);
    for (uint64_t c = 0; ret >= 0 && c < old_clusters; c++) {
        ret = update_refcount(s, old_off / s->cluster_size + c, -1);
    }
    return ret;
}

int qcow2_alloc_cluster(BDRVQcow2State *s, uint64_t *offset, bool *fresh)
{
    for (uint64_t i = s->free_hint;; i++) {
        uint64_t rti = i / s->refs_per_block, ref;
        if (i * s->cluster_size > QCOW2_OFFSET_MASK) {
            return -ENOSPC;
        }
        if (rti >= s->rt_entries) {
            int ret = grow_reftable(s, rti);
            if (ret < 0) {
                return ret;
            }
            i = s->free_hint - 1;
            continue;
        }
        if (!s->rt[rti]) {
            /* No refcount block for this range yet: cluster i becomes one, counting itself. */
            int ret = new_refblock(s, rti, i, i, i + 1);
            if (ret < 0) {
                return ret;
            }
            s->fresh_idx = MAX(s->fresh_idx, i + 1);
            continue;
        }
        int ret = qcow2_get_refcount(s, i, &ref);
        if (ret < 0) {
            return ret;
        }
        if (ref == 0) {
            ret = update_refcount(s, i, 1);
            if (ret < 0) {
                return ret;
            }
            s->free_hint = i + 1;
            *offset = i * s->cluster_size;
            *fresh = i >= s->fresh_idx;
            s->fresh_idx = MAX(s->fresh_idx, i + 1);
            return 0;
        }
    }
}

int qcow2_free_cluster_now(BDRVQcow2State *s, uint64_t offset)
{
    return update_refcount(s, offset / s->cluster_size, -1);
}

void qcow2_free_cluster_deferred(BDRVQcow2State *s, uint64_t offset)
{
    g_array_append_val(s->deferred_frees, offset);
}

int qcow2_apply_deferred_frees(BDRVQcow2State *s)
{
    int ret = 0;
    for (guint i = 0; ret >= 0 && i < s->deferred_frees->len; i++) {
        ret = qcow2_free_cluster_now(s, g_array_index(s->deferred_frees, uint64_t, i));
    }
    g_array_set_size(s->deferred_frees, 0);
    return ret;
}
