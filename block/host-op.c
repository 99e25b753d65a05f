/*
 * host-op.c - what drivers and engines use to count and trace host ops.
 *
 * A leaf: it calls nothing else in block/, so a driver or an engine calling
 * it never calls back up into the layers above.  Any thread.
 *
 * Lock rules: bs->fd_flags entries are written once under bs->fd_lock and
 * published through bs->n_fd_flags (release/acquire), so lookups need no
 * lock; the counters are atomic (vd_drv_count).
 */
#include "block/block-driver.h"
#include "util/hot.h"

#include <fcntl.h>
#include <sys/uio.h>

/* Look fd up among the first n cached entries; -2 if absent. */
VD_HOT static int cached_fd_flags(VdBlockDriverState *bs, int fd, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (bs->fd_flags[i].fd == fd) {
            return bs->fd_flags[i].flags;
        }
    }
    return -2;
}

/*
 * Entries are written once, under fd_lock, before n_fd_flags is published
 * with release semantics, so the common path reads them without the lock.
 */
VD_HOT int vd_drv_fd_flags(VdBlockDriverState *bs, int fd)
{
    int flags = cached_fd_flags(bs, fd, __atomic_load_n(&bs->n_fd_flags, __ATOMIC_ACQUIRE));
    if (flags != -2) {
        return flags;
    }
    g_mutex_lock(&bs->fd_lock);
    unsigned n = bs->n_fd_flags;
    flags = cached_fd_flags(bs, fd, n);
    if (flags == -2) {
        flags = fcntl(fd, F_GETFL);
        if (flags >= 0 && n < VD_DRV_MAX_FDS) {
            bs->fd_flags[n] = (VdDrvFdFlags){ .fd = fd, .flags = flags };
            __atomic_store_n(&bs->n_fd_flags, n + 1, __ATOMIC_RELEASE);
        }
    }
    g_mutex_unlock(&bs->fd_lock);
    return flags;
}

VD_HOT void vd_drv_count_host_op(VdBlockDriverState *bs, VdHostOpKind kind, int fd, int rwf)
{
    VdBlockStats *st = bs->stats;
    switch (kind) {
    case VD_HOST_READ:
        vd_drv_count(&st->host_reads, 1);
        break;
    case VD_HOST_WRITE:
        vd_drv_count(&st->host_writes, 1);
        if (rwf & RWF_DSYNC) {
            vd_drv_count(&st->host_rwf_dsync_writes, 1);
        }
        int flags = vd_drv_fd_flags(bs, fd);
        if (flags >= 0 && (flags & O_DSYNC) == O_DSYNC) {
            vd_drv_count(&st->host_dsync_writes, 1);
        }
        break;
    case VD_HOST_FDATASYNC:
        vd_drv_count(&st->host_fdatasync, 1);
        break;
    }
}

void vd_drv_trace(VdDriverReq *req, const char *fmt, ...)
{
    if (!req->trace) {
        return;
    }
    if (req->trace->len) {
        g_string_append(req->trace, "; ");
    }
    va_list ap;
    va_start(ap, fmt);
    g_string_append_vprintf(req->trace, fmt, ap);
    va_end(ap);
}
