/*
 * align.h - alignment arithmetic for power-of-two alignments.
 *
 * Every alignment the block layer works with (a driver's request and memory
 * alignment) is a power of two: vd_blk_open refuses a driver that reports
 * another.  So the request path tests and rounds with a mask, not with a
 * 64-bit division (10 to 40 cycles each, several per request).
 *
 * Threading: none.
 */
#ifndef VD_UTIL_ALIGN_H
#define VD_UTIL_ALIGN_H

#include <stdbool.h>
#include <stdint.h>

/* True if a is a power of two (0 is not). */
static inline bool vd_is_pow2(uint64_t a) { return a && !(a & (a - 1)); }
/* True if v is a multiple of align (a power of two). */
static inline bool vd_is_aligned(uint64_t v, uint64_t align) { return !(v & (align - 1)); }
/* v rounded down to a multiple of align (a power of two). */
static inline uint64_t vd_align_down(uint64_t v, uint64_t align) { return v & ~(align - 1); }
/* v rounded up to a multiple of align (a power of two); v + align - 1 must not overflow. */
static inline uint64_t vd_align_up(uint64_t v, uint64_t align) { return (v + align - 1) & ~(align - 1); }

#endif
