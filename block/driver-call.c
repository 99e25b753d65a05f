/*
 * driver-call.c - the driver boundary: one checkpoint for every call into a
 * driver, where the host faults of fault.c are taken.
 *
 * Every call from request-exec.c goes through vd_driver_call; the io_uring
 * engine goes through vd_driver_prepare and vd_driver_check_result; the
 * aio-driver engine through vd_driver_aio_submit and vd_driver_aio_done.  All
 * assert the driver contract of include/block/block-driver.h: a violation
 * is a programming error in the generic layer or the driver, so it aborts.
 *
 * Lock rules: runs in workers and on the owner thread.  It reads only the
 * capabilities fixed at open; blk->faults is under blk->fault_lock.
 */
#include "block-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>

/* What the checkpoint needs to know about each kind of driver call. */
typedef struct VdDrvCallInfo {
    size_t slot;            /* offsetof the callback in VdBlockDriver */
    VdFaultOp fault;        /* the injectable fault; VD_FAULT__MAX: none */
    bool ranged;            /* offset/bytes name a range of the image */
    bool has_iov;
    int host_kind;          /* VdHostOpKind the driver can prepare, or -1 */
} VdDrvCallInfo;

static const VdDrvCallInfo call_info[VD_CALL__MAX] = {
    [VD_CALL_READ] = { offsetof(VdBlockDriver, preadv), VD_FAULT_READ, true, true, VD_HOST_READ },
    [VD_CALL_WRITE] = { offsetof(VdBlockDriver, pwritev), VD_FAULT_WRITE, true, true, VD_HOST_WRITE },
    [VD_CALL_FLUSH_OS] = { offsetof(VdBlockDriver, flush_to_os), VD_FAULT__MAX, false, false, -1 },
    [VD_CALL_FLUSH_DISK] = { offsetof(VdBlockDriver, flush_to_disk), VD_FAULT_FLUSH, false, false, VD_HOST_FDATASYNC },
    [VD_CALL_DISCARD] = { offsetof(VdBlockDriver, discard), VD_FAULT_DISCARD, true, false, -1 },
    [VD_CALL_ZEROES] = { offsetof(VdBlockDriver, write_zeroes), VD_FAULT_WRITE, true, false, -1 },
};

typedef int VdDriverOp(VdBlockDriverState *bs, VdDriverReq *req);

/* The VD_DRV_* flags the capabilities allow for this call. */
VD_HOT static unsigned allowed_flags(VdBlockBackend *blk, VdDrvCall call)
{
    switch (call) {
    case VD_CALL_WRITE:
        return (blk->cap_fua == VD_FUA_NATIVE ? VD_DRV_FUA : 0) | (blk->cap_dsync ? VD_DRV_DSYNC : 0);
    case VD_CALL_ZEROES:
        return VD_DRV_MAY_UNMAP;
    default:
        return 0;
    }
}

/* Assert the request side of the contract: range, alignment, iovecs, flags. */
VD_HOT static void check_request(VdBlockBackend *blk, VdDrvCall call, const VdDriverReq *dr)
{
    const VdDrvCallInfo *info = &call_info[call];
    g_assert(call < VD_CALL__MAX);
    if (info->ranged) {
        g_assert(dr->offset <= (uint64_t)blk->length && dr->bytes <= (uint64_t)blk->length - dr->offset);
        g_assert(vd_is_aligned(dr->offset | dr->bytes, blk->req_align));
    } else {
        g_assert(dr->offset == 0 && dr->bytes == 0);
    }
    if (info->has_iov) {
        g_assert(dr->niov >= 0 && dr->niov <= IOV_MAX);
        uint64_t sum = 0;
        for (int i = 0; i < dr->niov; i++) {
            g_assert(vd_is_aligned((uintptr_t)dr->iov[i].iov_base | dr->iov[i].iov_len, blk->mem_align));
            sum += dr->iov[i].iov_len;
        }
        g_assert(sum == dr->bytes);
    } else {
        g_assert(dr->niov == 0);
    }
    g_assert((dr->flags & ~allowed_flags(blk, call)) == 0);
    g_assert((dr->flags & (VD_DRV_FUA | VD_DRV_DSYNC)) != (VD_DRV_FUA | VD_DRV_DSYNC));
}

VD_HOT void vd_driver_check_result(uint64_t bytes, int64_t ret)
{
    g_assert(ret >= -4095);
    g_assert(ret <= 0 || (uint64_t)ret <= bytes);
}

VD_HOT bool vd_driver_call_is_sync(VdDrvCall call, unsigned flags)
{
    return call == VD_CALL_FLUSH_DISK || (call == VD_CALL_WRITE && (flags & (VD_DRV_FUA | VD_DRV_DSYNC)));
}

/*
 * The delay of this call under delay.OP=: a durable write (FUA, O_DSYNC)
 * is a flush too, as on network storage, so it also waits delay.flush.
 */
VD_HOT static unsigned call_delay(VdBlockBackend *blk, VdDrvCall call, unsigned flags)
{
    unsigned us = vd_fault_delay(blk, call_info[call].fault);
    if (call == VD_CALL_WRITE && vd_driver_call_is_sync(call, flags)) {
        us += vd_fault_delay(blk, VD_FAULT_FLUSH);
    }
    return us;
}

/* Assert that a prepared op is dr, as the plan asked: same range and iov, fd and flags per the flags. */
VD_HOT static void check_prepared(VdBlockBackend *blk, VdHostOpKind kind, const VdDriverReq *dr, const VdHostOp *op)
{
    g_assert(op->kind == kind && op->fd >= 0);
    g_assert(op->offset == dr->offset && op->bytes == dr->bytes);
    g_assert(op->iov == dr->iov && op->niov == dr->niov);
    g_assert((op->rwf & ~RWF_DSYNC) == 0);
    g_assert(!!(op->rwf & RWF_DSYNC) == !!(dr->flags & VD_DRV_FUA));
    if (kind == VD_HOST_WRITE) {
        int flags = vd_drv_fd_flags(&blk->bs, op->fd);
        g_assert(flags >= 0);
        g_assert(((flags & O_DSYNC) == O_DSYNC) == !!(dr->flags & VD_DRV_DSYNC));
    }
}

VD_HOT int vd_driver_prepare(VdBlockBackend *blk, VdDrvCall call, VdDriverReq *dr, VdHostOp *op)
{
    check_request(blk, call, dr);
    int kind = call_info[call].host_kind;
    if (kind < 0 || !blk->bs.drv->prepare) {
        return -ENOTSUP;
    }
    if (call_delay(blk, call, dr->flags)) {
        return -ENOTSUP; /* a delayed op sleeps in a pool worker, never on the owner thread */
    }
    int err = vd_fault_take(blk, call_info[call].fault, dr->offset, dr->bytes);
    if (err) {
        vd_drv_trace(dr, "injected-fault=-%s", g_strerror(err));
        return -err;
    }
    int ret = blk->bs.drv->prepare(&blk->bs, kind, dr, op);
    g_assert(ret == 0 || ret == -ENOTSUP);
    if (ret == 0) {
        check_prepared(blk, kind, dr, op);
    }
    return ret;
}

int vd_driver_call(VdBlockBackend *blk, VdDrvCall call, VdDriverReq *dr)
{
    check_request(blk, call, dr);
    VdDriverOp *fn = *(VdDriverOp *const *)((const char *)blk->bs.drv + call_info[call].slot);
    g_assert(fn);
    unsigned delay = call_delay(blk, call, dr->flags);
    if (delay) {
        vd_drv_trace(dr, "delay=%uus", delay);
        g_usleep(delay);
    }
    int err = vd_fault_take(blk, call_info[call].fault, dr->offset, dr->bytes);
    if (err) {
        vd_drv_trace(dr, "injected-fault=-%s", g_strerror(err));
        return -err;
    }
    VdHostOp op;
    int kind = call_info[call].host_kind;
    if (kind >= 0 && blk->bs.drv->prepare && blk->bs.drv->prepare(&blk->bs, kind, dr, &op) == 0) {
        check_prepared(blk, kind, dr, &op);
        dr->op = &op;
    }
    int ret = fn(&blk->bs, dr);
    dr->op = NULL;
    vd_driver_check_result(dr->bytes, ret);
    return ret;
}

unsigned vd_driver_call_delay(VdBlockBackend *blk, VdDrvCall call)
{
    return vd_fault_delay(blk, call_info[call].fault);
}

/* What an asynchronous driver runs for each call, and the host counter it counts in. */
typedef struct VdAioCallInfo {
    VdDrvAioOp op;
    const char *name;       /* in the trace */
    size_t counter;         /* offsetof in VdBlockStats */
} VdAioCallInfo;

static const VdAioCallInfo aio_call_info[VD_CALL__MAX] = {
    [VD_CALL_READ] = { VD_DRV_AIO_READ, "read", offsetof(VdBlockStats, host_reads) },
    [VD_CALL_WRITE] = { VD_DRV_AIO_WRITE, "write", offsetof(VdBlockStats, host_writes) },
    [VD_CALL_FLUSH_OS] = { VD_DRV_AIO__MAX, NULL, 0 },
    [VD_CALL_FLUSH_DISK] = { VD_DRV_AIO_FLUSH, "flush", offsetof(VdBlockStats, host_fdatasync) },
    [VD_CALL_DISCARD] = { VD_DRV_AIO_DISCARD, "discard", offsetof(VdBlockStats, host_discards) },
    [VD_CALL_ZEROES] = { VD_DRV_AIO_WRITE_ZEROES, "write_zeroes", offsetof(VdBlockStats, host_zero_ranges) },
};

int vd_driver_aio_submit(VdBlockBackend *blk, VdDrvCall call, VdDriverReq *dr, VdDrvAioCb *cb, void *opaque)
{
    check_request(blk, call, dr);
    const VdAioCallInfo *info = &aio_call_info[call];
    g_assert(info->op < VD_DRV_AIO__MAX && blk->bs.drv->aio_submit);
    int err = vd_fault_take(blk, call_info[call].fault, dr->offset, dr->bytes);
    if (err) {
        vd_drv_trace(dr, "injected-fault=-%s", g_strerror(err));
        return -err;
    }
    vd_drv_count((uint64_t *)((char *)&blk->stats + info->counter), 1);
    if (dr->flags & VD_DRV_FUA) {
        vd_drv_count(&blk->stats.host_rwf_dsync_writes, 1);
    }
    blk->bs.drv->aio_submit(&blk->bs, info->op, dr, cb, opaque);
    return 0;
}

void vd_driver_aio_done(VdBlockBackend *blk, VdDrvCall call, VdDriverReq *dr, int ret)
{
    vd_driver_check_result(dr->bytes, ret);
    g_assert(ret <= 0); /* an asynchronous driver does the whole range or fails */
    if (ret == 0 && call == VD_CALL_READ) {
        vd_drv_count(&blk->stats.host_bytes_read, dr->bytes);
    } else if (ret == 0 && call == VD_CALL_WRITE) {
        vd_drv_count(&blk->stats.host_bytes_written, dr->bytes);
    }
    if (call_info[call].ranged) {
        vd_drv_trace(dr, "%s %s(off=%" G_GUINT64_FORMAT ",len=%" G_GUINT64_FORMAT "%s%s)=%d", blk->bs.drv->name,
                     aio_call_info[call].name, dr->offset, dr->bytes, (dr->flags & VD_DRV_FUA) ? ",FUA" : "",
                     (dr->flags & VD_DRV_MAY_UNMAP) ? ",MAY_UNMAP" : "", ret);
    } else {
        vd_drv_trace(dr, "%s %s()=%d", blk->bs.drv->name, aio_call_info[call].name, ret);
    }
}
