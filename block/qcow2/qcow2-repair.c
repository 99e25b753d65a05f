/*
 * qcow2-repair.c - repair=leaks (docs/qcow2.md "Dirty images"): at open,
 * count every cluster's references (the header cluster, the L1 table, the
 * refcount table, the refcount blocks, the L2 tables and the data clusters
 * they point at), then compare them with the stored refcounts:
 *  - a refcount above its references is a leak (what a cut or a kill leaves,
 *    by the ordering rules of qcow2.h): it is lowered;
 *  - a refcount below its references is corruption, which the ordering rules
 *    exclude: the open is refused naming the cluster, and nothing is written.
 * Every comparison runs before the first change.  The lowered refcount
 * blocks go out through the refcount cache and the driver's own flush path
 * (qcow2_mark_clean: stage 1 in dependency order, the child's flush, then the
 * dirty bit cleared and flushed).  Memory: one 16-bit count per cluster of the
 * file, and one cluster-sized buffer for the L2 tables.
 * Runs on the owner thread at open, before any I/O; takes s->lock for the
 * helpers (qcow2.h).
 */
#include "qcow2.h"
#include "util/bswap.h"

#include <stdlib.h>

#define ERR(...) (g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, __VA_ARGS__), false)
#define ERR_IO(ret, what) (g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-(ret)), \
                                       "qcow2 repair=leaks: cannot read the %s: %s", what, g_strerror(-(ret))), false)

/* The references counted so far: one count per cluster of the file. */
typedef struct Refs {
    uint16_t *n;
    uint64_t clusters;
} Refs;

/* One reference to every cluster of [off, off+len); refused past the end of the file or beyond 16 bits. */
static bool add_refs(const BDRVQcow2State *s, Refs *r, const char *what, uint64_t off, uint64_t len, GError **errp)
{
    uint64_t first = off / s->cluster_size, end = (off + len + s->cluster_size - 1) / s->cluster_size;
    for (uint64_t c = first; c < end; c++) {
        if (c >= r->clusters) {
            return ERR("qcow2 repair=leaks: the %s at 0x%" G_GINT64_MODIFIER "x lies beyond the end of the file: "
                       "the image is corrupt, not only leaking (nothing was changed)", what, off);
        }
        if (r->n[c] == UINT16_MAX) {
            return ERR("qcow2 repair=leaks: cluster 0x%" G_GINT64_MODIFIER "x has more than %u references: "
                       "the image is corrupt (nothing was changed)", c * s->cluster_size, UINT16_MAX);
        }
        r->n[c]++;
    }
    return true;
}

/* The references of one L2 table at l2off (L1 entry l1i): the table itself and every host cluster it points at. */
static bool count_l2(BDRVQcow2State *s, Refs *r, uint64_t l1i, uint64_t l2off, uint64_t *buf, GError **errp)
{
    if (!add_refs(s, r, "L2 table", l2off, s->cluster_size, errp)) {
        return false;
    }
    int ret = qcow2_meta_read(s, l2off, buf, s->cluster_size);
    if (ret < 0) {
        return ERR_IO(ret, "L2 table");
    }
    for (uint64_t i = 0; i < s->l2_entries; i++) {
        uint64_t e = vd_ld_be64(&buf[i]), host;
        const char *bad = qcow2_l2_entry_problem(s, e);
        Qcow2ClusterType type;
        if (bad) {
            return ERR("qcow2 repair=leaks: L2 entry %" G_GUINT64_FORMAT " of L1 entry %" G_GUINT64_FORMAT
                       " (0x%016" G_GINT64_MODIFIER "x): %s (nothing was changed)", i, l1i, e, bad);
        }
        qcow2_l2_entry_type(e, &type, &host);
        if (host && !add_refs(s, r, "data cluster", host, s->cluster_size, errp)) {
            return false;
        }
    }
    return true;
}

/* Count every reference the metadata makes. */
static bool count_refs(BDRVQcow2State *s, Refs *r, GError **errp)
{
    if (!add_refs(s, r, "header", 0, s->cluster_size, errp) ||
        !add_refs(s, r, "L1 table", s->h.l1_table_offset, (uint64_t)s->h.l1_size * 8, errp) ||
        !add_refs(s, r, "refcount table", s->h.refcount_table_offset,
                  (uint64_t)s->h.refcount_table_clusters * s->cluster_size, errp)) {
        return false;
    }
    for (uint64_t i = 0; i < s->rt_entries; i++) {
        if (s->rt[i] && !add_refs(s, r, "refcount block", s->rt[i], s->cluster_size, errp)) {
            return false;
        }
    }
    uint64_t *buf = NULL;
    if (posix_memalign((void **)&buf, s->mem_align, s->cluster_size) != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "qcow2 repair=leaks: out of memory");
        return false;
    }
    bool ok = true;
    for (uint64_t i = 0; ok && i < s->h.l1_size; i++) {
        uint64_t l2off = s->l1[i] & QCOW2_OFFSET_MASK;
        ok = !l2off || count_l2(s, r, i, l2off, buf, errp);
    }
    free(buf);
    return ok;
}

/* The references a refcount entry of cluster c should count: none past the end of the file. */
static uint64_t wanted(const Refs *r, uint64_t c)
{
    return c < r->clusters ? r->n[c] : 0;
}

/* Refuse a refcount below its references, naming the cluster. */
static bool refuse_low(const BDRVQcow2State *s, uint64_t c, uint64_t stored, uint64_t refs, GError **errp)
{
    return ERR("qcow2 repair=leaks: cluster 0x%" G_GINT64_MODIFIER "x has refcount %" G_GUINT64_FORMAT " but %"
               G_GUINT64_FORMAT " references: the image is corrupt, not only leaking (nothing was changed; "
               "see 'qemu-img check')", c * s->cluster_size, stored, refs);
}

/*
 * Compare every stored refcount with its references.  fix false: only check (refuse a refcount below its
 * references); fix true: lower each one above them in the cache and count it in *leaks.
 */
static bool compare_refcounts(BDRVQcow2State *s, const Refs *r, bool fix, uint64_t *leaks, GError **errp)
{
    for (uint64_t c = 0; !fix && c < r->clusters; c++) {
        uint64_t rti = c / s->refs_per_block;
        if (r->n[c] && (rti >= s->rt_entries || !s->rt[rti])) {
            return refuse_low(s, c, 0, r->n[c], errp); /* no refcount block counts it */
        }
    }
    for (uint64_t rti = 0; rti < s->rt_entries; rti++) {
        uint8_t *rb;
        uint64_t off = s->rt[rti];
        if (!off) {
            continue;
        }
        int ret = qcow2_cache_get(s, &s->rb_cache, off, false, (void **)&rb);
        if (ret < 0) {
            return ERR_IO(ret, "refcount block");
        }
        bool changed = false, ok = true;
        for (uint64_t j = 0; ok && j < s->refs_per_block; j++) {
            uint64_t c = rti * s->refs_per_block + j, stored = vd_ld_be16(rb + j * 2), want = wanted(r, c);
            if (stored < want) {
                ok = refuse_low(s, c, stored, want, errp);
            } else if (stored > want && fix) {
                vd_st_be16(rb + j * 2, (uint16_t)want);
                changed = true;
                (*leaks)++;
            }
        }
        if (changed) {
            qcow2_cache_mark_dirty(&s->rb_cache, off);
        }
        qcow2_cache_put(&s->rb_cache, off);
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool qcow2_repair_leaks(BDRVQcow2State *s, uint64_t file_len, GError **errp)
{
    if (s->h.has_bitmaps) {
        return ERR("qcow2 repair=leaks: the image has persistent bitmaps, whose clusters this driver does not "
                   "count; repair it with 'qemu-img check -r leaks'");
    }
    Refs r = { .clusters = (file_len + s->cluster_size - 1) / s->cluster_size };
    r.n = g_try_new0(uint16_t, MAX(r.clusters, 1));
    if (!r.n) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "qcow2 repair=leaks: out of memory counting %"
                    G_GUINT64_FORMAT " clusters", r.clusters);
        return false;
    }
    uint64_t leaks = 0;
    g_mutex_lock(&s->lock);
    bool ok = count_refs(s, &r, errp) && compare_refcounts(s, &r, false, &leaks, errp) &&
              compare_refcounts(s, &r, true, &leaks, errp);
    if (ok && (leaks || (s->h.incompatible_features & QCOW2_INCOMPAT_DIRTY))) {
        s->free_hint = 0;
        int ret = qcow2_mark_clean(s);
        if (ret < 0) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-ret), "qcow2 repair=leaks: cannot write the "
                        "repaired refcounts: %s", g_strerror(-ret));
            ok = false;
        }
    }
    g_mutex_unlock(&s->lock);
    g_free(r.n);
    return ok;
}
