/*
 * bswap.h - loads and stores of little- and big-endian integers at any
 * address.  memcpy keeps unaligned access defined; the compiler turns each
 * helper into a plain load or store plus a byte swap where needed.
 *
 * Names: vd_ld_<order><bits> loads, vd_st_<order><bits> stores; the _n forms
 * take a width of 1..8 bytes (a guest register access).
 *
 * Threading: none.
 */
#ifndef VD_UTIL_BSWAP_H
#define VD_UTIL_BSWAP_H

#include <glib.h>
#include <stdint.h>
#include <string.h>

/* Little-endian u16 at p. */
static inline uint16_t vd_ld_le16(const void *p) { uint16_t v; memcpy(&v, p, 2); return GUINT16_FROM_LE(v); }
/* Little-endian u32 at p. */
static inline uint32_t vd_ld_le32(const void *p) { uint32_t v; memcpy(&v, p, 4); return GUINT32_FROM_LE(v); }
/* Little-endian u64 at p. */
static inline uint64_t vd_ld_le64(const void *p) { uint64_t v; memcpy(&v, p, 8); return GUINT64_FROM_LE(v); }
/* Big-endian u16 at p. */
static inline uint16_t vd_ld_be16(const void *p) { uint16_t v; memcpy(&v, p, 2); return GUINT16_FROM_BE(v); }
/* Big-endian u32 at p. */
static inline uint32_t vd_ld_be32(const void *p) { uint32_t v; memcpy(&v, p, 4); return GUINT32_FROM_BE(v); }
/* Big-endian u64 at p. */
static inline uint64_t vd_ld_be64(const void *p) { uint64_t v; memcpy(&v, p, 8); return GUINT64_FROM_BE(v); }
/* Big-endian 24-bit value at p (SCSI transfer lengths, MODE parameter lengths). */
static inline uint32_t vd_ld_be24(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] << 16 | (uint32_t)vd_ld_be16(b + 1);
}

/* Store v little-endian at p. */
static inline void vd_st_le16(void *p, uint16_t v) { v = GUINT16_TO_LE(v); memcpy(p, &v, 2); }
/* Store v little-endian at p. */
static inline void vd_st_le32(void *p, uint32_t v) { v = GUINT32_TO_LE(v); memcpy(p, &v, 4); }
/* Store v little-endian at p. */
static inline void vd_st_le64(void *p, uint64_t v) { v = GUINT64_TO_LE(v); memcpy(p, &v, 8); }
/* Store v big-endian at p. */
static inline void vd_st_be16(void *p, uint16_t v) { v = GUINT16_TO_BE(v); memcpy(p, &v, 2); }
/* Store v big-endian at p. */
static inline void vd_st_be32(void *p, uint32_t v) { v = GUINT32_TO_BE(v); memcpy(p, &v, 4); }
/* Store v big-endian at p. */
static inline void vd_st_be64(void *p, uint64_t v) { v = GUINT64_TO_BE(v); memcpy(p, &v, 8); }
/* Store the low 24 bits of v big-endian at p. */
static inline void vd_st_be24(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 16);
    vd_st_be16(b + 1, (uint16_t)v);
}

/* Little-endian value of size bytes (1..8) at p. */
static inline uint64_t vd_ld_le_n(const void *p, unsigned size)
{
    uint8_t b[8] = { 0 };
    memcpy(b, p, size < 8 ? size : 8);
    return vd_ld_le64(b);
}
/* Store the low size bytes (1..8) of v little-endian at p. */
static inline void vd_st_le_n(void *p, uint64_t v, unsigned size)
{
    uint8_t b[8];
    vd_st_le64(b, v);
    memcpy(p, b, size < 8 ? size : 8);
}

#endif
