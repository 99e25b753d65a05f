/*
 * qcow2-cluster.c - guest offset -> host cluster: the L1 table (in memory,
 * written back at stage 1 after the L2 tables) and L2 tables (qcow2-cache.c).
 * Every L2 entry is checked before use; a bad one fails the request with
 * -EIO and one warning naming the entry.  Callers hold s->lock (qcow2.h).
 */
#include "qcow2.h"
#include "util/bswap.h"

#include <errno.h>

/* The L1 index and L2 index of guest_off. */
static void split(const BDRVQcow2State *s, uint64_t guest_off, uint64_t *l1i, uint64_t *l2i)
{
    uint64_t cluster = guest_off / s->cluster_size;
    *l1i = cluster / s->l2_entries;
    *l2i = cluster % s->l2_entries;
}

const char *qcow2_l2_entry_problem(const BDRVQcow2State *s, uint64_t e)
{
    if (e & QCOW2_OFLAG_COMPRESSED) {
        return "a compressed cluster (not supported)";
    }
    if (e & QCOW2_L2_RESERVED) {
        return "reserved bits set";
    }
    if ((e & QCOW2_OFFSET_MASK) % s->cluster_size) {
        return "offset not cluster-aligned";
    }
    if ((e & QCOW2_OFLAG_ZERO) && s->h.version < 3) {
        return "zero flag in a version 2 image";
    }
    return NULL;
}

void qcow2_l2_entry_type(uint64_t e, Qcow2ClusterType *type, uint64_t *host)
{
    *host = e & QCOW2_OFFSET_MASK;
    if (e & QCOW2_OFLAG_ZERO) {
        *type = *host ? QCOW2_ZERO_ALLOC : QCOW2_ZERO_PLAIN;
    } else {
        *type = *host ? QCOW2_NORMAL : QCOW2_UNALLOCATED;
    }
}

/* Check one L2 entry and classify it. */
static int classify(const BDRVQcow2State *s, uint64_t l1i, uint64_t l2i, uint64_t e, Qcow2ClusterType *type,
                    uint64_t *host)
{
    const char *bad = qcow2_l2_entry_problem(s, e);
    if (bad) {
        g_warning("qcow2: L2 entry %" G_GUINT64_FORMAT " of L1 entry %" G_GUINT64_FORMAT
                  " (0x%016" G_GINT64_MODIFIER "x): %s", l2i, l1i, e, bad);
        return -EIO;
    }
    qcow2_l2_entry_type(e, type, host);
    return 0;
}

int qcow2_get_mapping(BDRVQcow2State *s, uint64_t guest_off, Qcow2ClusterType *type, uint64_t *host)
{
    uint64_t l1i, l2i;
    split(s, guest_off, &l1i, &l2i);
    uint64_t l2off = s->l1[l1i] & QCOW2_OFFSET_MASK;
    *type = QCOW2_UNALLOCATED;
    *host = 0;
    if (!l2off) {
        return 0;
    }
    void *t;
    int ret = qcow2_cache_get(s, &s->l2_cache, l2off, false, &t);
    if (ret < 0) {
        return ret;
    }
    uint64_t e = vd_ld_be64((uint8_t *)t + l2i * 8);
    qcow2_cache_put(&s->l2_cache, l2off);
    return classify(s, l1i, l2i, e, type, host);
}

int qcow2_ensure_l2(BDRVQcow2State *s, uint64_t guest_off)
{
    uint64_t l1i, l2i, off;
    split(s, guest_off, &l1i, &l2i);
    if (s->l1[l1i] & QCOW2_OFFSET_MASK) {
        return 0;
    }
    bool fresh;
    int ret = qcow2_alloc_cluster(s, &off, &fresh);
    if (ret < 0) {
        return ret;
    }
    void *t;
    ret = qcow2_cache_get(s, &s->l2_cache, off, true, &t);
    if (ret < 0) {
        qcow2_free_cluster_now(s, off);
        return ret;
    }
    qcow2_cache_mark_dirty(&s->l2_cache, off);
    qcow2_cache_put(&s->l2_cache, off);
    s->l1[l1i] = off | QCOW2_OFLAG_COPIED;
    if (s->l1_dirty_hi == s->l1_dirty_lo) {
        s->l1_dirty_lo = l1i;
        s->l1_dirty_hi = l1i + 1;
    } else {
        s->l1_dirty_lo = MIN(s->l1_dirty_lo, l1i);
        s->l1_dirty_hi = MAX(s->l1_dirty_hi, l1i + 1);
    }
    return 0;
}

int qcow2_set_l2_entry(BDRVQcow2State *s, uint64_t guest_off, uint64_t entry)
{
    uint64_t l1i, l2i;
    int ret = qcow2_ensure_l2(s, guest_off);
    if (ret < 0) {
        return ret;
    }
    split(s, guest_off, &l1i, &l2i);
    uint64_t l2off = s->l1[l1i] & QCOW2_OFFSET_MASK;
    void *t;
    ret = qcow2_cache_get(s, &s->l2_cache, l2off, false, &t);
    if (ret < 0) {
        return ret;
    }
    vd_st_be64((uint8_t *)t + l2i * 8, entry);
    qcow2_cache_mark_dirty(&s->l2_cache, l2off);
    qcow2_cache_put(&s->l2_cache, l2off);
    return 0;
}
