/*
 * qcow2.c - the "qcow2" format driver: open (header, L1 and refcount tables,
 * checked before use), close (metadata written out, dirty bit cleared) and
 * the driver table.  It sits above a protocol child (driver=qcow2,file=IMG,
 * or format=qcow2), or above crashsim (child=crashsim,child.child=file).
 * No prepare: every op runs in the thread pool (qcow2.h has the lock rules).
 * repair=leaks recounts the references at open (qcow2-repair.c).
 * docs/qcow2.md describes the subset and the ordering rules.
 */
#include "qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* QEMU's defaults: an L2 cache covering the whole image up to 32 MiB, a refcount cache a quarter of it. */
#define QCOW2_DEFAULT_L2_CACHE_MAX (32u << 20)
#define QCOW2_MIN_L2_TABLES 2
#define QCOW2_MIN_REFBLOCKS 4

#define ERR(...) (g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, __VA_ARGS__), false)

/* An aligned buffer of len bytes, zeroed; NULL if out of memory. */
static void *aligned_zalloc(const BDRVQcow2State *s, size_t len)
{
    void *p = NULL;
    if (posix_memalign(&p, s->mem_align, MAX(len, 1)) != 0) {
        return NULL;
    }
    memset(p, 0, MAX(len, 1));
    return p;
}

/* Read [offset, offset+len) of the child into an aligned buffer (len rounded up to the alignment). */
static void *read_table(BDRVQcow2State *s, uint64_t offset, size_t len, const char *what, GError **errp)
{
    size_t alen = (len + s->align - 1) / s->align * s->align;
    void *buf = aligned_zalloc(s, alen);
    if (!buf) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "qcow2: out of memory reading the %s (%zu bytes)", what, len);
        return NULL;
    }
    int ret = qcow2_meta_read(s, offset, buf, alen);
    if (ret < 0) {
        free(buf);
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-ret), "qcow2: cannot read the %s: %s", what,
                    g_strerror(-ret));
        return NULL;
    }
    return buf;
}

/* Read and validate the header (a dirty one is fine with repair); keep its first sector(s) for the dirty-bit writes. */
static bool load_header(BDRVQcow2State *s, uint64_t file_len, bool repair, GError **errp)
{
    s->hdr_buf = read_table(s, 0, s->align, "header", errp);
    if (!s->hdr_buf) {
        return false;
    }
    /* The extensions may fill the whole header cluster: parse the cluster once its size is known. */
    uint32_t bits = (uint32_t)s->hdr_buf[20] << 24 | (uint32_t)s->hdr_buf[21] << 16 |
                    (uint32_t)s->hdr_buf[22] << 8 | s->hdr_buf[23];
    size_t len = s->align;
    g_autofree uint8_t *copy = NULL;
    const uint8_t *buf = s->hdr_buf;
    if (bits >= QCOW2_MIN_CLUSTER_BITS && bits <= QCOW2_MAX_CLUSTER_BITS && (1u << bits) > s->align) {
        len = MIN((uint64_t)1 << bits, (file_len + s->align - 1) / s->align * s->align);
        uint8_t *cl = read_table(s, 0, len, "header cluster", errp);
        if (!cl) {
            return false;
        }
        copy = g_memdup2(cl, len);
        free(cl);
        buf = copy;
    }
    return vd_qcow2_parse_header(buf, len, file_len, s->read_only, repair, &s->h, errp);
}

/* Read and check the L1 table (padded to whole clusters) and the refcount table. */
static bool load_tables(BDRVQcow2State *s, uint64_t file_len, GError **errp)
{
    size_t l1_bytes = ((uint64_t)s->h.l1_size * 8 + s->cluster_size - 1) / s->cluster_size * s->cluster_size;
    void *l1 = read_table(s, s->h.l1_table_offset, (uint64_t)s->h.l1_size * 8, "L1 table", errp);
    if (!l1) {
        return false;
    }
    s->l1 = g_malloc0(MAX(l1_bytes, 8));
    memcpy(s->l1, l1, (uint64_t)s->h.l1_size * 8);
    free(l1);
    if (!vd_qcow2_check_l1(&s->h, s->l1, file_len, errp)) {
        return false;
    }
    s->rt_entries = (uint64_t)s->h.refcount_table_clusters * s->cluster_size / 8;
    void *rt = read_table(s, s->h.refcount_table_offset, s->rt_entries * 8, "refcount table", errp);
    if (!rt) {
        return false;
    }
    s->rt = g_memdup2(rt, s->rt_entries * 8);
    free(rt);
    return vd_qcow2_check_reftable(&s->h, s->rt, s->rt_entries, file_len, errp);
}

/* Size both caches from the options (bytes) or QEMU's defaults. */
static bool setup_caches(BDRVQcow2State *s, const VdDriverOpenOptions *o, GError **errp)
{
    uint64_t cover = s->cluster_size * s->l2_entries;
    uint64_t l2_all = (s->h.size + cover - 1) / cover * s->cluster_size;
    uint64_t l2 = o->l2_cache_size ? o->l2_cache_size : MIN(l2_all, QCOW2_DEFAULT_L2_CACHE_MAX);
    uint64_t rb = o->refcount_cache_size ? o->refcount_cache_size : l2 / 4;
    uint64_t n_l2 = o->l2_cache_size ? l2 / s->cluster_size : MAX(l2 / s->cluster_size, QCOW2_MIN_L2_TABLES);
    uint64_t n_rb = o->refcount_cache_size ? rb / s->cluster_size : MAX(rb / s->cluster_size, QCOW2_MIN_REFBLOCKS);
    if (n_l2 < QCOW2_MIN_L2_TABLES || n_l2 > UINT32_MAX) {
        return ERR("l2-cache-size=%" G_GUINT64_FORMAT " must hold %u to %u tables of the cluster size %u",
                   o->l2_cache_size, QCOW2_MIN_L2_TABLES, UINT32_MAX, s->cluster_size);
    }
    if (n_rb < QCOW2_MIN_REFBLOCKS || n_rb > UINT32_MAX) {
        return ERR("refcount-cache-size=%" G_GUINT64_FORMAT " must hold %u to %u blocks of the cluster size %u",
                   o->refcount_cache_size, QCOW2_MIN_REFBLOCKS, UINT32_MAX, s->cluster_size);
    }
    qcow2_cache_init(&s->l2_cache, QCOW2_LVL_L2, n_l2, s);
    qcow2_cache_init(&s->rb_cache, QCOW2_LVL_REFBLOCK, n_rb, s);
    return true;
}

/* Everything the open set up, except the child. */
static void free_state(BDRVQcow2State *s)
{
    qcow2_cache_destroy(&s->l2_cache);
    qcow2_cache_destroy(&s->rb_cache);
    g_clear_pointer(&s->l1, g_free);
    g_clear_pointer(&s->rt, g_free);
    g_clear_pointer(&s->hdr_buf, free);
    g_clear_pointer(&s->zero_cluster, free);
    g_clear_pointer(&s->inflight, g_hash_table_destroy);
    if (s->deferred_frees) {
        g_array_free(s->deferred_frees, TRUE);
        s->deferred_frees = NULL;
    }
}

/* Header, tables and caches, after the child is open. */
static bool open_image(BDRVQcow2State *s, const VdDriverOpenOptions *o, GError **errp)
{
    VdBlockDriverState *child = s->bs->child;
    int64_t file_len = child->drv->get_length(child);
    if (file_len < 0) {
        return ERR("qcow2: cannot get the size of the image file: %s", g_strerror((int)-file_len));
    }
    if (!load_header(s, file_len, o->qcow2_repair, errp)) {
        return false;
    }
    s->cluster_size = 1u << s->h.cluster_bits;
    if (s->cluster_size < s->align) {
        return ERR("qcow2 cluster size %u is smaller than the alignment %u the host needs (cache=none on this disk)",
                   s->cluster_size, s->align);
    }
    s->l2_entries = s->cluster_size / 8;
    s->refs_per_block = (uint64_t)s->cluster_size * 8 >> s->h.refcount_order;
    if (!load_tables(s, file_len, errp) || !setup_caches(s, o, errp)) {
        return false;
    }
    s->zero_cluster = aligned_zalloc(s, s->cluster_size);
    s->fresh_idx = ((uint64_t)file_len + s->cluster_size - 1) / s->cluster_size;
    s->inflight = g_hash_table_new(g_direct_hash, g_direct_equal);
    s->deferred_frees = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    if (!s->zero_cluster) {
        return ERR("qcow2: out of memory");
    }
    return !o->qcow2_repair || qcow2_repair_leaks(s, file_len, errp);
}

/* Open the child, then the image on it. */
static bool qcow2_open(VdBlockDriverState *bs, const VdDriverOpenOptions *o, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    if (!o->child) {
        return ERR("driver 'qcow2' needs its image: file=PATH (or child=crashsim,child.child=file,file=PATH)");
    }
    if (!vd_bdrv_open_child(bs, o->child, o, errp)) {
        return false;
    }
    s->bs = bs;
    s->read_only = o->read_only;
    s->no_flush = o->no_flush;
    s->align = MAX(512u, vd_bdrv_request_alignment(bs->child));
    s->mem_align = MAX(vd_bdrv_mem_alignment(bs->child), (uint32_t)sizeof(void *));
    g_mutex_init(&s->lock);
    g_cond_init(&s->alloc_cond);
    if (!open_image(s, o, errp)) {
        g_prefix_error(errp, "%s: ", o->filename ? o->filename : "qcow2");
        free_state(s);
        g_mutex_clear(&s->lock);
        g_cond_clear(&s->alloc_cond);
        vd_bdrv_close_child(bs);
        return false;
    }
    return true;
}

/* Write the metadata out, clear the dirty bit, free everything, close the child. */
static void qcow2_close(VdBlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    if (!s->bs) {
        return;
    }
    qcow2_shutdown(s);
    free_state(s);
    g_mutex_clear(&s->lock);
    g_cond_clear(&s->alloc_cond);
    vd_bdrv_close_child(bs);
}

/* The guest's size: the header's. */
static int64_t qcow2_get_length(VdBlockDriverState *bs)
{
    return (int64_t)((BDRVQcow2State *)bs->opaque)->h.size;
}

/* Capabilities: FUA is emulated (write, then both flush stages), discard and zeroes are metadata ops. */
static bool qcow2_can_discard(VdBlockDriverState *bs) { (void)bs; return true; }
static bool qcow2_can_zero(VdBlockDriverState *bs) { (void)bs; return true; }
static uint32_t qcow2_request_alignment(VdBlockDriverState *bs) { return ((BDRVQcow2State *)bs->opaque)->align; }
static uint32_t qcow2_mem_alignment(VdBlockDriverState *bs) { return ((BDRVQcow2State *)bs->opaque)->mem_align; }

/* Image locks belong to the child that opens the file. */
static bool qcow2_set_perm(VdBlockDriverState *bs, VdImagePerm perm, GError **errp)
{
    return vd_bdrv_set_perm(bs->child, perm, errp);
}

/* Migration's cache drop: the child's, if it has one. */
static int qcow2_drop_page_cache(VdBlockDriverState *bs, VdDriverReq *req)
{
    return bs->child->drv->drop_page_cache ? bs->child->drv->drop_page_cache(bs->child, req) : 0;
}

const VdBlockDriver vd_driver_qcow2 = {
    .name = "qcow2",
    .instance_size = sizeof(BDRVQcow2State),
    .is_filter = true,
    .open = qcow2_open,
    .close = qcow2_close,
    .get_length = qcow2_get_length,
    .can_discard = qcow2_can_discard,
    .can_zero = qcow2_can_zero,
    .request_alignment = qcow2_request_alignment,
    .mem_alignment = qcow2_mem_alignment,
    .preadv = qcow2_preadv,
    .pwritev = qcow2_pwritev,
    .flush_to_os = qcow2_flush_to_os,
    .flush_to_disk = qcow2_flush_to_disk,
    .discard = qcow2_discard,
    .write_zeroes = qcow2_write_zeroes,
    .drop_page_cache = qcow2_drop_page_cache,
    .set_perm = qcow2_set_perm,
};
