/*
 * iov.h - the one set of iovec helpers every layer uses.
 *
 * An iovec array is a list of (base, len) pieces read as one byte string.
 * Every helper takes the array and its count, never walks past niov
 * entries, and copes with zero-length pieces.  Offsets and lengths past the
 * end are clipped: the return value says how many bytes were handled.
 *
 * Threading: none; the helpers touch only what they are given.
 */
#ifndef VD_UTIL_IOV_H
#define VD_UTIL_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Total bytes of an iovec array; SIZE_MAX if the sum overflows. */
size_t vd_iov_size(const struct iovec *iov, unsigned niov);
/* Copy up to len bytes from byte offset of the array into buf; returns the bytes copied. */
size_t vd_iov_to_buf(const struct iovec *iov, unsigned niov, size_t offset, void *buf, size_t len);
/* Copy up to len bytes of buf into the array from byte offset on; returns the bytes copied. */
size_t vd_iov_from_buf(const struct iovec *iov, unsigned niov, size_t offset, const void *buf, size_t len);
/* Fill up to len bytes of the array from byte offset on with c; returns the bytes set. */
size_t vd_iov_memset(const struct iovec *iov, unsigned niov, size_t offset, int c, size_t len);
/*
 * Consume n bytes from the front of a private, writable copy of an array:
 * *iov and *niov move past whole pieces, the first piece left is trimmed.
 * Returns the bytes consumed (less than n only if the array ran out).
 */
size_t vd_iov_advance(struct iovec **iov, unsigned *niov, size_t n);
/*
 * The bytes [offset, offset+len) of src as a new g_malloc'd array in *out
 * (never NULL; the caller g_free()s it) that points into src's buffers and
 * has no empty pieces.  len is clipped to what src holds; SIZE_MAX means
 * "to the end".  Returns the new array's count.
 */
unsigned vd_iov_slice(const struct iovec *src, unsigned niov, size_t offset, size_t len, struct iovec **out);

#endif
