/*
 * qcow2-header.c - parse and validate a qcow2 header, its extensions, the
 * L1 table and the refcount table.  Pure functions on buffers: the header is
 * user-controlled input, and the fuzz target (tests/fuzz/fuzz-qcow2.c) runs
 * exactly these.  Every refusal is one line naming the field.
 */
#include "qcow2.h"
#include "util/bswap.h"

/* Incompatible feature bits this driver knows, by bit; the rest are refused by number. */
static const char *const incompat_names[] = {
    [0] = "dirty", [1] = "corrupt", [2] = "external data file", [3] = "compression type",
    [4] = "extended L2 entries",
};

#define ERR(...) (g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, __VA_ARGS__), false)

/* True if [a, a+alen) and [b, b+blen) overlap. */
static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* The header extensions after the fixed header: each one must fit in the header cluster; note bitmaps. */
static bool check_extensions(const uint8_t *buf, size_t len, Qcow2Header *h, GError **errp)
{
    uint64_t end = MIN((uint64_t)len, 1ull << h->cluster_bits);
    uint64_t off = h->header_length;
    while (off + 8 <= end) {
        uint32_t type = vd_ld_be32(buf + off), elen = vd_ld_be32(buf + off + 4);
        if (type == 0) {
            return true;
        }
        uint64_t next = off + 8 + (((uint64_t)elen + 7) & ~7ull);
        if (next > end) {
            return ERR("qcow2 header extension 0x%08x at byte %" G_GUINT64_FORMAT " is %u bytes long: "
                       "past the end of the header cluster", type, off, elen);
        }
        h->has_bitmaps |= type == QCOW2_EXT_BITMAPS;
        off = next;
    }
    return true; /* no end marker within the header cluster: QEMU stops there too */
}

/* The incompatible feature bits: refuse unknown ones and honour dirty (unless repaired) and corrupt. */
static bool check_incompatible(const Qcow2Header *h, bool read_only, bool repair, GError **errp)
{
    uint64_t f = h->incompatible_features;
    for (unsigned bit = 2; bit < 64; bit++) {
        if (f & (1ull << bit)) {
            const char *name = bit < G_N_ELEMENTS(incompat_names) ? incompat_names[bit] : NULL;
            if (name) {
                return ERR("qcow2 incompatible feature '%s' (bit %u) is not supported", name, bit);
            }
            return ERR("qcow2 unknown incompatible feature bit %u is set", bit);
        }
    }
    if ((f & QCOW2_INCOMPAT_CORRUPT) && !read_only) {
        return ERR("qcow2 image is marked corrupt (incompatible feature bit 1): open it read-only, "
                   "or repair it with 'qemu-img check -r all'");
    }
    if ((f & QCOW2_INCOMPAT_DIRTY) && !read_only && !repair) {
        return ERR("qcow2 image is dirty (incompatible feature bit 0: not closed cleanly, it may leak clusters): "
                   "open it with repair=leaks, repair it with 'qemu-img check -r leaks', or open it read-only");
    }
    return true;
}

/* The version-3 fields; v2 images get their fixed values. */
static bool parse_v3(const uint8_t *buf, size_t len, Qcow2Header *h, bool read_only, bool repair, GError **errp)
{
    if (h->version == 2) {
        h->refcount_order = 4;
        h->header_length = QCOW2_V2_HEADER_LENGTH;
        return true;
    }
    if (len < QCOW2_V3_HEADER_LENGTH) {
        return ERR("qcow2 header is truncated: %zu bytes, version 3 needs %u", len, QCOW2_V3_HEADER_LENGTH);
    }
    h->incompatible_features = vd_ld_be64(buf + 72);
    h->compatible_features = vd_ld_be64(buf + 80);
    h->autoclear_features = vd_ld_be64(buf + 88);
    h->refcount_order = vd_ld_be32(buf + 96);
    h->header_length = vd_ld_be32(buf + 100);
    if (h->header_length < QCOW2_V3_HEADER_LENGTH || h->header_length % 8 ||
        h->header_length > (1u << h->cluster_bits) || h->header_length > len) {
        return ERR("qcow2 header_length %u is invalid (a multiple of 8 from %u to the cluster size)",
                   h->header_length, QCOW2_V3_HEADER_LENGTH);
    }
    if (h->refcount_order > 6) {
        return ERR("qcow2 refcount_order %u is invalid (0 to 6)", h->refcount_order);
    }
    if (h->refcount_order != 4 && !read_only) {
        return ERR("qcow2 refcount_order %u (%u-bit refcounts) is supported read-only; writing needs 16-bit refcounts",
                   h->refcount_order, 1u << h->refcount_order);
    }
    if ((h->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS) && !read_only) {
        return ERR("qcow2 compatible feature 'lazy refcounts' is supported read-only");
    }
    return check_incompatible(h, read_only, repair, errp);
}

/* The fixed fields of every version. */
static bool parse_common(const uint8_t *buf, size_t len, Qcow2Header *h, GError **errp)
{
    if (len < QCOW2_V2_HEADER_LENGTH) {
        return ERR("qcow2 header is truncated: %zu bytes, at least %u needed", len, QCOW2_V2_HEADER_LENGTH);
    }
    if (vd_ld_be32(buf) != QCOW2_MAGIC) {
        return ERR("not a qcow2 image: magic is 0x%08x, expected 0x%08x", vd_ld_be32(buf), QCOW2_MAGIC);
    }
    *h = (Qcow2Header){ .version = vd_ld_be32(buf + 4) };
    if (h->version != 2 && h->version != 3) {
        return ERR("qcow2 version %u is not supported (2 or 3)", h->version);
    }
    h->backing_file_offset = vd_ld_be64(buf + 8);
    h->cluster_bits = vd_ld_be32(buf + 20);
    h->size = vd_ld_be64(buf + 24);
    h->crypt_method = vd_ld_be32(buf + 32);
    h->l1_size = vd_ld_be32(buf + 36);
    h->l1_table_offset = vd_ld_be64(buf + 40);
    h->refcount_table_offset = vd_ld_be64(buf + 48);
    h->refcount_table_clusters = vd_ld_be32(buf + 56);
    h->nb_snapshots = vd_ld_be32(buf + 60);
    h->snapshots_offset = vd_ld_be64(buf + 64);
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        return ERR("qcow2 cluster_bits %u is out of range (%u to %u: 512 bytes to 2 MiB)", h->cluster_bits,
                   QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS);
    }
    if (h->backing_file_offset) {
        return ERR("qcow2 backing files are not supported (backing_file_offset is set)");
    }
    if (h->crypt_method) {
        return ERR("qcow2 encryption is not supported (crypt_method %u)", h->crypt_method);
    }
    return true;
}

/* Sizes and where the tables lie: in the file, aligned, not overlapping each other. */
static bool check_layout(const Qcow2Header *h, uint64_t file_len, bool read_only, GError **errp)
{
    uint64_t cs = 1ull << h->cluster_bits;
    uint64_t l2_cover = cs * (cs / 8);
    if (h->size == 0 || h->size > VD_BLK_MAX_BYTES) {
        return ERR("qcow2 size %" G_GUINT64_FORMAT " is out of range (1 to 2^63 - 512 bytes)", h->size);
    }
    uint64_t need = h->size / l2_cover + (h->size % l2_cover != 0);
    if (h->l1_size < need || (uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
        return ERR("qcow2 l1_size %u does not fit size %" G_GUINT64_FORMAT " (needs %" G_GUINT64_FORMAT
                   " entries, at most %u)", h->l1_size, h->size, need, QCOW2_MAX_L1_BYTES / 8);
    }
    uint64_t l1_bytes = (uint64_t)h->l1_size * 8;
    if (h->l1_table_offset % cs || h->l1_table_offset == 0 || h->l1_table_offset > file_len ||
        l1_bytes > file_len - h->l1_table_offset) {
        return ERR("qcow2 l1_table_offset 0x%" G_GINT64_MODIFIER "x is invalid (cluster-aligned, after the header, "
                   "and the table inside the file)", h->l1_table_offset);
    }
    uint64_t rt_bytes = (uint64_t)h->refcount_table_clusters * cs;
    if (h->refcount_table_clusters == 0 || rt_bytes > QCOW2_MAX_REFTABLE_BYTES) {
        return ERR("qcow2 refcount_table_clusters %u is out of range (1 to %" G_GUINT64_FORMAT ")",
                   h->refcount_table_clusters, QCOW2_MAX_REFTABLE_BYTES / cs);
    }
    if (h->refcount_table_offset % cs || h->refcount_table_offset == 0 || h->refcount_table_offset > file_len ||
        rt_bytes > file_len - h->refcount_table_offset) {
        return ERR("qcow2 refcount_table_offset 0x%" G_GINT64_MODIFIER "x is invalid (cluster-aligned, after the "
                   "header, and the table inside the file)", h->refcount_table_offset);
    }
    if (overlaps(h->l1_table_offset, l1_bytes, h->refcount_table_offset, rt_bytes)) {
        return ERR("qcow2 L1 table (l1_table_offset) overlaps the refcount table (refcount_table_offset)");
    }
    if (h->nb_snapshots && !read_only) {
        return ERR("qcow2 internal snapshots (nb_snapshots %u) are supported read-only", h->nb_snapshots);
    }
    if (h->nb_snapshots && (h->snapshots_offset % cs || h->snapshots_offset == 0 || h->snapshots_offset >= file_len)) {
        return ERR("qcow2 snapshots_offset 0x%" G_GINT64_MODIFIER "x is invalid", h->snapshots_offset);
    }
    return true;
}

bool vd_qcow2_parse_header(const uint8_t *buf, size_t len, uint64_t file_len, bool read_only, bool repair,
                           Qcow2Header *h, GError **errp)
{
    return parse_common(buf, len, h, errp) && parse_v3(buf, len, h, read_only, repair, errp) &&
           check_extensions(buf, len, h, errp) && check_layout(h, file_len, read_only, errp);
}

/* A table's entry points at a cluster that must be aligned, in the file and clear of the fixed metadata. */
static bool check_table_cluster(const Qcow2Header *h, const char *what, uint64_t idx, uint64_t off,
                                uint64_t file_len, GError **errp)
{
    uint64_t cs = 1ull << h->cluster_bits;
    if (off % cs) {
        return ERR("qcow2 %s entry %" G_GUINT64_FORMAT ": offset 0x%" G_GINT64_MODIFIER "x is not cluster-aligned",
                   what, idx, off);
    }
    if (off >= file_len) {
        return ERR("qcow2 %s entry %" G_GUINT64_FORMAT ": offset 0x%" G_GINT64_MODIFIER "x is beyond the end of "
                   "the file", what, idx, off);
    }
    if (off == 0 || overlaps(off, cs, h->l1_table_offset, (uint64_t)h->l1_size * 8) ||
        overlaps(off, cs, h->refcount_table_offset, (uint64_t)h->refcount_table_clusters * cs)) {
        return ERR("qcow2 %s entry %" G_GUINT64_FORMAT ": offset 0x%" G_GINT64_MODIFIER "x overlaps the header, "
                   "the L1 table or the refcount table", what, idx, off);
    }
    return true;
}

bool vd_qcow2_check_l1(const Qcow2Header *h, uint64_t *l1, uint64_t file_len, GError **errp)
{
    for (uint64_t i = 0; i < h->l1_size; i++) {
        uint64_t e = vd_ld_be64(&l1[i]);
        l1[i] = e;
        if (e & QCOW2_L1_RESERVED) {
            return ERR("qcow2 L1 entry %" G_GUINT64_FORMAT ": reserved bits are set (0x%016" G_GINT64_MODIFIER "x)",
                       i, e);
        }
        if ((e & QCOW2_OFFSET_MASK) && !check_table_cluster(h, "L1", i, e & QCOW2_OFFSET_MASK, file_len, errp)) {
            return false;
        }
    }
    return true;
}

bool vd_qcow2_check_reftable(const Qcow2Header *h, uint64_t *rt, uint64_t entries, uint64_t file_len, GError **errp)
{
    for (uint64_t i = 0; i < entries; i++) {
        uint64_t e = vd_ld_be64(&rt[i]);
        rt[i] = e;
        if (e & QCOW2_RT_RESERVED) {
            return ERR("qcow2 refcount table entry %" G_GUINT64_FORMAT ": reserved bits are set", i);
        }
        if (e && !check_table_cluster(h, "refcount table", i, e, file_len, errp)) {
            return false;
        }
    }
    return true;
}

void vd_qcow2_store_features(uint8_t *buf, uint64_t incompatible, uint64_t autoclear)
{
    vd_st_be64(buf + 72, incompatible);
    vd_st_be64(buf + 88, autoclear);
}
