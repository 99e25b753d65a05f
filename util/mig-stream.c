/* mig-stream.c - the migration stream container: writer, parser and bounds-checked field readers. */
#include "util/mig-stream.h"
#include "util/bswap.h"

#include <string.h>

struct VdMigWriter {
    GByteArray *buf;
    size_t section_start;     /* offset of the open section's header; 0: none open */
    size_t payload_start;
};

/* Section header bytes after the id: version, length, CRC. */
#define SECTION_TAIL (4 + 8 + 4)

/* CRC-32 table, built once (reflected polynomial 0xedb88320). */
static uint32_t crc_table[256];

/* Fill the CRC table on first use. */
static gpointer crc_table_init(gpointer unused)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[i] = c;
    }
    return NULL;
}

uint32_t vd_crc32(const void *data, size_t len)
{
    static GOnce once = G_ONCE_INIT;
    g_once(&once, crc_table_init, NULL);
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    }
    return c ^ 0xffffffffu;
}

VdMigWriter *vd_mig_writer_new(void)
{
    VdMigWriter *w = g_new0(VdMigWriter, 1);
    w->buf = g_byte_array_new();
    g_byte_array_append(w->buf, (const guint8 *)VD_MIG_MAGIC, VD_MIG_MAGIC_LEN);
    vd_mig_put_u32(w, VD_MIG_VERSION);
    return w;
}

void vd_mig_section_begin(VdMigWriter *w, const char *id, uint32_t version)
{
    size_t n = strlen(id);
    g_assert(!w->section_start && n > 0 && n <= VD_MIG_MAX_ID);
    w->section_start = w->buf->len;
    vd_mig_put_u16(w, n);
    vd_mig_put_bytes(w, id, n);
    vd_mig_put_u32(w, version);
    vd_mig_put_u64(w, 0);     /* length, filled in at the end */
    vd_mig_put_u32(w, 0);     /* CRC, likewise */
    w->payload_start = w->buf->len;
}

void vd_mig_section_end(VdMigWriter *w)
{
    g_assert(w->section_start);
    uint64_t len = w->buf->len - w->payload_start;
    uint8_t *tail = w->buf->data + w->payload_start - 12;
    vd_st_le64(tail, len);
    vd_st_le32(tail + 8, vd_crc32(w->buf->data + w->payload_start, len));
    w->section_start = 0;
}

/* Append the low size bytes of v, little-endian. */
static void put_le(VdMigWriter *w, uint64_t v, unsigned size)
{
    uint8_t b[8];
    vd_st_le_n(b, v, size);
    g_byte_array_append(w->buf, b, size);
}

void vd_mig_put_u8(VdMigWriter *w, uint8_t v) { put_le(w, v, 1); }
void vd_mig_put_u16(VdMigWriter *w, uint16_t v) { put_le(w, v, 2); }
void vd_mig_put_u32(VdMigWriter *w, uint32_t v) { put_le(w, v, 4); }
void vd_mig_put_u64(VdMigWriter *w, uint64_t v) { put_le(w, v, 8); }

void vd_mig_put_bytes(VdMigWriter *w, const void *p, size_t len)
{
    if (len) {
        g_byte_array_append(w->buf, p, len);
    }
}

GBytes *vd_mig_writer_finish(VdMigWriter *w)
{
    g_assert(!w->section_start);
    vd_mig_put_u16(w, 0);
    GBytes *b = g_byte_array_free_to_bytes(w->buf);
    g_free(w);
    return b;
}

void vd_mig_writer_free(VdMigWriter *w)
{
    if (w) {
        g_byte_array_unref(w->buf);
        g_free(w);
    }
}

/* Free a parsed section. */
static void section_free(gpointer p)
{
    VdMigSection *s = p;
    g_free(s->id);
    g_free(s);
}

/* Fail the container parse with a message naming where. */
static GPtrArray *stream_error(GPtrArray *secs, GError **errp, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static GPtrArray *stream_error(GPtrArray *secs, GError **errp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "migration stream: %s", msg);
    g_ptr_array_free(secs, TRUE);
    return NULL;
}

GPtrArray *vd_mig_stream_parse(const uint8_t *data, size_t len, GError **errp)
{
    GPtrArray *secs = g_ptr_array_new_with_free_func(section_free);
    if (len < VD_MIG_MAGIC_LEN + 4 || memcmp(data, VD_MIG_MAGIC, VD_MIG_MAGIC_LEN) != 0) {
        return stream_error(secs, errp, "not a vdisk migration stream (%zu bytes, no \"%s\" magic)", len,
                            VD_MIG_MAGIC);
    }
    uint32_t version = vd_ld_le32(data + VD_MIG_MAGIC_LEN);
    if (version != VD_MIG_VERSION) {
        return stream_error(secs, errp, "stream version %u is not supported (this vdisk reads version %u)",
                            version, VD_MIG_VERSION);
    }
    size_t pos = VD_MIG_MAGIC_LEN + 4;
    for (;;) {
        if (len - pos < 2) {
            return stream_error(secs, errp, "truncated at offset %zu: no end marker after %u sections", pos,
                                secs->len);
        }
        uint16_t idlen = vd_ld_le16(data + pos);
        pos += 2;
        if (idlen == 0) {
            break;
        }
        if (idlen > VD_MIG_MAX_ID || len - pos < (size_t)idlen + SECTION_TAIL) {
            return stream_error(secs, errp, "truncated or corrupt section header at offset %zu (id length %u)",
                                pos - 2, idlen);
        }
        g_autofree char *id = g_strndup((const char *)data + pos, idlen);
        if (strlen(id) != idlen || !g_utf8_validate(id, -1, NULL)) {
            return stream_error(secs, errp, "corrupt section id at offset %zu", pos);
        }
        pos += idlen;
        uint32_t sversion = vd_ld_le32(data + pos);
        uint64_t plen = vd_ld_le64(data + pos + 4);
        uint32_t crc = vd_ld_le32(data + pos + 12);
        pos += SECTION_TAIL;
        if (plen > len - pos) {
            return stream_error(secs, errp, "section '%s' is truncated: %" G_GUINT64_FORMAT
                                " payload bytes announced, %zu left in the stream", id, plen, len - pos);
        }
        if (vd_crc32(data + pos, plen) != crc) {
            return stream_error(secs, errp, "section '%s' is corrupt: its CRC-32 does not match", id);
        }
        VdMigSection *s = g_new0(VdMigSection, 1);
        s->id = g_steal_pointer(&id);
        s->version = sversion;
        s->data = data + pos;
        s->len = plen;
        g_ptr_array_add(secs, s);
        pos += plen;
    }
    if (pos != len) {
        return stream_error(secs, errp, "%zu bytes after the end marker", len - pos);
    }
    return secs;
}

bool vd_mig_field_error(const VdMigSection *s, const char *field, GError **errp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "migration stream: section '%s' (version %u): %s: %s",
                s->id, s->version, field, msg);
    return false;
}

const uint8_t *vd_mig_get_ptr(VdMigSection *s, const char *field, size_t len, GError **errp)
{
    if (len > s->len - s->pos) {
        vd_mig_field_error(s, field, errp, "the section ends first (%zu bytes needed at offset %" G_GUINT64_FORMAT
                           ", %" G_GUINT64_FORMAT " left)", len, s->pos, s->len - s->pos);
        return NULL;
    }
    const uint8_t *p = s->data + s->pos;
    s->pos += len;
    return p;
}

bool vd_mig_get_bytes(VdMigSection *s, const char *field, void *out, size_t len, GError **errp)
{
    const uint8_t *p = vd_mig_get_ptr(s, field, len, errp);
    if (p && len) {
        memcpy(out, p, len);
    }
    return p != NULL;
}

/* Read a little-endian integer of size bytes (1, 2, 4 or 8). */
static bool get_le(VdMigSection *s, const char *field, unsigned size, uint64_t *out, GError **errp)
{
    const uint8_t *p = vd_mig_get_ptr(s, field, size, errp);
    if (p) {
        *out = vd_ld_le_n(p, size);
    }
    return p != NULL;
}

bool vd_mig_get_u8(VdMigSection *s, const char *field, uint8_t *out, GError **errp)
{
    uint64_t v;
    bool ok = get_le(s, field, 1, &v, errp);
    *out = ok ? v : 0;
    return ok;
}

bool vd_mig_get_u16(VdMigSection *s, const char *field, uint16_t *out, GError **errp)
{
    uint64_t v;
    bool ok = get_le(s, field, 2, &v, errp);
    *out = ok ? v : 0;
    return ok;
}

bool vd_mig_get_u32(VdMigSection *s, const char *field, uint32_t *out, GError **errp)
{
    uint64_t v;
    bool ok = get_le(s, field, 4, &v, errp);
    *out = ok ? v : 0;
    return ok;
}

bool vd_mig_get_u64(VdMigSection *s, const char *field, uint64_t *out, GError **errp)
{
    return get_le(s, field, 8, out, errp);
}

bool vd_mig_get_bool(VdMigSection *s, const char *field, bool *out, GError **errp)
{
    uint8_t v;
    if (!vd_mig_get_u8(s, field, &v, errp)) {
        return false;
    }
    if (v > 1) {
        return vd_mig_field_error(s, field, errp, "%u is not a boolean (0 or 1)", v);
    }
    *out = v;
    return true;
}

uint64_t vd_mig_left(const VdMigSection *s)
{
    return s->len - s->pos;
}

bool vd_mig_section_done(const VdMigSection *s, GError **errp)
{
    if (s->pos != s->len) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "migration stream: section '%s' (version %u): %" G_GUINT64_FORMAT
                    " bytes left over after its last field",
                    s->id, s->version, s->len - s->pos);
        return false;
    }
    return true;
}
