/* iov.c - iovec sums, copies, fills, advancing and slicing (see include/util/iov.h). */
#include "util/iov.h"
#include "util/hot.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

VD_HOT size_t vd_iov_size(const struct iovec *iov, unsigned niov)
{
    size_t total = 0;
    for (unsigned i = 0; i < niov; i++) {
        if (iov[i].iov_len > SIZE_MAX - total) {
            return SIZE_MAX;
        }
        total += iov[i].iov_len;
    }
    return total;
}

/*
 * Walk the pieces covering [offset, offset+len) and hand each one to fn
 * with its position in the byte string; returns the bytes visited.
 */
typedef void IovVisit(uint8_t *piece, size_t pos, size_t n, void *opaque);
static size_t iov_walk(const struct iovec *iov, unsigned niov, size_t offset, size_t len, IovVisit *fn,
                       void *opaque)
{
    size_t done = 0;
    for (unsigned i = 0; i < niov && done < len; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t n = MIN(iov[i].iov_len - offset, len - done);
        fn((uint8_t *)iov[i].iov_base + offset, done, n, opaque);
        done += n;
        offset = 0;
    }
    return done;
}

/* IovVisit: piece -> buffer. */
static void visit_to_buf(uint8_t *piece, size_t pos, size_t n, void *buf)
{
    memcpy((uint8_t *)buf + pos, piece, n);
}

/* IovVisit: buffer -> piece. */
static void visit_from_buf(uint8_t *piece, size_t pos, size_t n, void *buf)
{
    memcpy(piece, (const uint8_t *)buf + pos, n);
}

/* IovVisit: fill the piece with the byte *c. */
static void visit_memset(uint8_t *piece, size_t pos, size_t n, void *c)
{
    memset(piece, *(const int *)c, n);
}

size_t vd_iov_to_buf(const struct iovec *iov, unsigned niov, size_t offset, void *buf, size_t len)
{
    return iov_walk(iov, niov, offset, len, visit_to_buf, buf);
}

size_t vd_iov_from_buf(const struct iovec *iov, unsigned niov, size_t offset, const void *buf, size_t len)
{
    return iov_walk(iov, niov, offset, len, visit_from_buf, (void *)buf);
}

size_t vd_iov_memset(const struct iovec *iov, unsigned niov, size_t offset, int c, size_t len)
{
    return iov_walk(iov, niov, offset, len, visit_memset, &c);
}

size_t vd_iov_advance(struct iovec **iov, unsigned *niov, size_t n)
{
    size_t done = 0;
    while (done < n && *niov) {
        size_t k = MIN(n - done, (*iov)->iov_len);
        (*iov)->iov_base = (uint8_t *)(*iov)->iov_base + k;
        (*iov)->iov_len -= k;
        done += k;
        if ((*iov)->iov_len == 0) {
            (*iov)++;
            (*niov)--;
        }
    }
    return done;
}

/* A slice being built: the new array and how many pieces it has. */
typedef struct IovSlice {
    struct iovec *dst;
    unsigned k;
} IovSlice;

/* IovVisit: append the piece to the slice being built. */
static void visit_slice(uint8_t *piece, size_t pos, size_t n, void *opaque)
{
    IovSlice *s = opaque;
    s->dst[s->k++] = (struct iovec){ .iov_base = piece, .iov_len = n };
}

unsigned vd_iov_slice(const struct iovec *src, unsigned niov, size_t offset, size_t len, struct iovec **out)
{
    IovSlice s = { g_new(struct iovec, niov ? niov : 1), 0 };
    iov_walk(src, niov, offset, len, visit_slice, &s);
    *out = s.dst;
    return s.k;
}
