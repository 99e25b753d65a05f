/*
 * mig-stream.h - the migration stream: a versioned container of sections,
 * written by a VdMigWriter and checked and read by VdMigSection readers.
 * The layout is documented in docs/migration.md ("The stream").
 *
 *   stream   := magic "VDISKMIG" (8 bytes), le32 stream version, section*, end
 *   section  := le16 id length (1..255), id bytes, le32 section version,
 *               le64 payload length, le32 CRC-32 of the payload, payload
 *   end      := le16 0
 *
 * Every integer is little-endian.  A section's payload is a sequence of
 * fields its owner defines (and versions); the stream knows nothing of them.
 *
 * Guarantees:
 *  - vd_mig_stream_parse checks the whole container before anyone reads a
 *    field: magic, stream version, every section header, payload length
 *    and CRC, the end marker, and nothing after it.  Its one-line errors
 *    name the section (and the offset) that was wrong.
 *  - A reader never reads outside its section: each vd_mig_get_* is bounds
 *    checked and fails with a message naming the section and the field.
 *
 * Threading: none; a writer or reader belongs to its caller.
 */
#ifndef VD_UTIL_MIG_STREAM_H
#define VD_UTIL_MIG_STREAM_H

#include <gio/gio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VD_MIG_MAGIC       "VDISKMIG"
#define VD_MIG_MAGIC_LEN   8
#define VD_MIG_VERSION     1
#define VD_MIG_MAX_ID      255

typedef struct VdMigWriter VdMigWriter;

/* One section of a parsed stream: its id, version and payload, plus the read position. */
typedef struct VdMigSection {
    char *id;
    uint32_t version;
    const uint8_t *data;      /* points into the parsed stream's buffer */
    uint64_t len;
    uint64_t pos;
} VdMigSection;

/* A writer with the stream header already written. */
VdMigWriter *vd_mig_writer_new(void);
/* Start a section (the previous one must be ended). */
void vd_mig_section_begin(VdMigWriter *w, const char *id, uint32_t version);
/* End the section: its length and CRC are filled in. */
void vd_mig_section_end(VdMigWriter *w);
void vd_mig_put_u8(VdMigWriter *w, uint8_t v);
void vd_mig_put_u16(VdMigWriter *w, uint16_t v);
void vd_mig_put_u32(VdMigWriter *w, uint32_t v);
void vd_mig_put_u64(VdMigWriter *w, uint64_t v);
void vd_mig_put_bytes(VdMigWriter *w, const void *p, size_t len);
/* Write the end marker and hand the stream over (the writer is freed). */
GBytes *vd_mig_writer_finish(VdMigWriter *w);
/* Drop an unfinished writer. */
void vd_mig_writer_free(VdMigWriter *w);

/*
 * Check the container in data[0..len) (see above) and return its sections
 * in stream order (VdMigSection *, freed with the array); the sections
 * point into data, which must outlive them.  NULL with one line naming
 * what was wrong.
 */
GPtrArray *vd_mig_stream_parse(const uint8_t *data, size_t len, GError **errp);

/* Bounds-checked field readers: false with "section ID: field FIELD: ..." if the section ends first. */
bool vd_mig_get_u8(VdMigSection *s, const char *field, uint8_t *out, GError **errp);
bool vd_mig_get_u16(VdMigSection *s, const char *field, uint16_t *out, GError **errp);
bool vd_mig_get_u32(VdMigSection *s, const char *field, uint32_t *out, GError **errp);
bool vd_mig_get_u64(VdMigSection *s, const char *field, uint64_t *out, GError **errp);
/* A 0/1 byte; any other value is an error naming the field. */
bool vd_mig_get_bool(VdMigSection *s, const char *field, bool *out, GError **errp);
bool vd_mig_get_bytes(VdMigSection *s, const char *field, void *out, size_t len, GError **errp);
/* A pointer to the next len bytes of the payload (no copy). */
const uint8_t *vd_mig_get_ptr(VdMigSection *s, const char *field, size_t len, GError **errp);
/* Bytes of the payload not read yet. */
uint64_t vd_mig_left(const VdMigSection *s);
/* The payload was read to its end: false ("N bytes left over") otherwise. */
bool vd_mig_section_done(const VdMigSection *s, GError **errp);
/* Fail a field with a message of the reader's own (a value out of range); always returns false. */
bool vd_mig_field_error(const VdMigSection *s, const char *field, GError **errp, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of a buffer. */
uint32_t vd_crc32(const void *data, size_t len);

#endif
