/*
 * aio-uring.c - the io_uring engine (aio=io_uring, the default), VdEngineOps.
 *
 * A request that is one host op goes straight to io_uring: an aligned read,
 * an aligned write (plain; or, with O_DIRECT, a durable one: RWF_DSYNC for
 * native FUA or on the O_DSYNC descriptor), and a flush that is only an
 * fdatasync.  The op is prepared by the driver through the checkpoint
 * (vd_driver_prepare), so its descriptor and RWF flags are the ones the
 * pool path would use, and it is counted from the SQE actually submitted.
 * Everything with several steps (bounce/RMW, emulated FUA, write-zeroes,
 * discard, stage-1 flushes), durable buffered writes (see single_call) and
 * drivers without prepare go down to the thread-pool engine, which runs the
 * same driver operations.  A short read or write is run again, as a whole,
 * through the pool.  An injected fault fails the op at preparation, and the
 * request completes through the pool's queue, like a failed CQE would.
 *
 * The ring's completions are signalled on an eventfd watched by a GSource in
 * the owner's context, so callbacks run there like the pool's.  Lock rule:
 * the ring belongs to the owner thread only.
 */
#include "block-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define VD_URING_ENTRIES 256

typedef struct VdUring {
    struct io_uring ring;
    int event_fd;
    GSource *source;
    GSource *retry;             /* pending resubmission after a failed io_uring_submit */
} VdUring;

/* Push queued SQEs to the kernel; on failure try again shortly, so none is stranded. */
static void submit_or_retry(VdBlockBackend *blk);

/* Timer callback: push the SQEs a failed io_uring_submit left in the ring. */
static gboolean retry_submit(gpointer opaque)
{
    VdBlockBackend *blk = opaque;
    g_source_unref(blk->uring->retry);
    blk->uring->retry = NULL;
    submit_or_retry(blk);
    return G_SOURCE_REMOVE;
}

static void submit_or_retry(VdBlockBackend *blk)
{
    VdUring *u = blk->uring;
    int ret;
    do {
        ret = io_uring_submit(&u->ring);
    } while (ret == -EINTR);
    if (ret < 0 && !u->retry) {
        /* The SQEs stay in the ring; they go out with the retry. */
        u->retry = g_timeout_source_new(1);
        g_source_set_callback(u->retry, retry_submit, blk, NULL);
        g_source_attach(u->retry, blk->ctx);
    }
}

/* The checkpoint's name for the driver call a prepared op stands for. */
static VdDrvCall call_of(VdHostOpKind kind)
{
    static const VdDrvCall calls[] = {
        [VD_HOST_READ] = VD_CALL_READ, [VD_HOST_WRITE] = VD_CALL_WRITE, [VD_HOST_FDATASYNC] = VD_CALL_FLUSH_DISK,
    };
    return calls[kind];
}

/* Count the bytes of one completed op and trace it as it was submitted. */
static void account_completion(VdBlockBackend *blk, VdRequest *req, int res)
{
    VdBlockStats *st = &blk->stats;
    const VdHostOp *op = &req->uring_op;
    if (op->kind == VD_HOST_READ) {
        vd_drv_count(&st->host_bytes_read, res > 0 ? res : 0);
    } else if (op->kind == VD_HOST_WRITE) {
        vd_drv_count(&st->host_bytes_written, res > 0 ? res : 0);
    }
    if (!req->trace) {
        return;
    }
    VdDriverReq dr = { .trace = req->trace };
    if (op->kind == VD_HOST_FDATASYNC) {
        vd_drv_trace(&dr, "io_uring fsync(DATASYNC)=%d", res);
        return;
    }
    int fl = vd_drv_fd_flags(&blk->bs, op->fd);
    const char *extra = (op->rwf & RWF_DSYNC) ? ",RWF_DSYNC" : (fl >= 0 && (fl & O_DSYNC) == O_DSYNC) ? ",O_DSYNC fd" : "";
    vd_drv_trace(&dr, "io_uring %s(off=%" G_GUINT64_FORMAT ",len=%" G_GUINT64_FORMAT "%s)=%d",
                 op->kind == VD_HOST_READ ? "readv" : "writev", op->offset, op->bytes, extra, res);
}

/* Record an op's failure in req; a failed sync step makes the generic layer's error sticky. */
static void set_result(VdRequest *req, VdDrvCall call, unsigned flags, int res)
{
    req->ret = res < 0 ? res : 0;
    if (res < 0 && vd_driver_call_is_sync(call, flags)) {
        req->sync_failed = true;
    }
}

/* Owner thread: reap every completion and finish (or retry) its request. */
static gboolean uring_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    VdBlockBackend *blk = opaque;
    VdUring *u = blk->uring;
    uint64_t count;
    ssize_t n;
    do {
        n = read(fd, &count, sizeof(count));
    } while (n < 0 && errno == EINTR);
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        VdRequest *req = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        const VdHostOp *op = &req->uring_op;
        vd_driver_check_result(op->bytes, res);
        account_completion(blk, req, res);
        if (op->kind != VD_HOST_FDATASYNC && res >= 0 && (uint64_t)res != op->bytes) {
            /* Short transfer: let the pool's loop run the whole request again. */
            vd_engine_pool.submit(blk, req);
            continue;
        }
        set_result(req, call_of(op->kind), op->kind == VD_HOST_WRITE ? req->drv_flags : 0, res);
        req->done(req);
    }
    return G_SOURCE_CONTINUE;
}

/* Set up the pool (for multi-step requests) and the ring. */
static bool uring_init(VdBlockBackend *blk, GError **errp)
{
    if (!vd_engine_pool.init(blk, errp)) {
        return false;
    }
    VdUring *u = g_new0(VdUring, 1);
    int ret = io_uring_queue_init(VD_URING_ENTRIES, &u->ring, 0);
    if (ret < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-ret), "aio=io_uring: io_uring_queue_init: %s; use aio=threads",
                    g_strerror(-ret));
        g_free(u);
        vd_engine_pool.cleanup(blk);
        return false;
    }
    u->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (u->event_fd < 0 || io_uring_register_eventfd(&u->ring, u->event_fd) < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "aio=io_uring: cannot register an eventfd");
        if (u->event_fd >= 0) {
            close(u->event_fd);
        }
        io_uring_queue_exit(&u->ring);
        g_free(u);
        vd_engine_pool.cleanup(blk);
        return false;
    }
    u->source = g_unix_fd_source_new(u->event_fd, G_IO_IN);
    g_source_set_callback(u->source, (GSourceFunc)(void (*)(void))uring_ready, blk, NULL);
    g_source_attach(u->source, blk->ctx);
    blk->uring = u;
    return true;
}

/* Tear down the ring, then the pool under it. */
static void uring_cleanup(VdBlockBackend *blk)
{
    VdUring *u = blk->uring;
    if (u) {
        g_source_destroy(u->source);
        g_source_unref(u->source);
        if (u->retry) {
            g_source_destroy(u->retry);
            g_source_unref(u->retry);
        }
        io_uring_queue_exit(&u->ring);
        close(u->event_fd);
        g_free(u);
        blk->uring = NULL;
    }
    vd_engine_pool.cleanup(blk);
}

/*
 * The driver call req is as one host op, or VD_CALL__MAX if it takes
 * several steps (or should run in the pool).
 */
static VdDrvCall single_call(VdBlockBackend *blk, VdRequest *req)
{
    bool direct = blk->cache_mode == VD_CACHE_NONE || blk->cache_mode == VD_CACHE_DIRECTSYNC;
    switch (req->type) {
    case VD_OP_READ:
        return vd_request_is_aligned(blk, req) ? VD_CALL_READ : VD_CALL__MAX;
    case VD_OP_WRITE:
        if (req->fua_emulate || !vd_request_is_aligned(blk, req)) {
            return VD_CALL__MAX;
        }
        /*
         * io-wq runs buffered writes to one file one at a time, so durable
         * buffered writes would lose the parallelism that lets the file
         * system batch their journal commits (measured: 3x fewer IOPS at
         * QD32).  The pool's threads keep it.
         */
        return req->durable && !direct ? VD_CALL__MAX : VD_CALL_WRITE;
    case VD_OP_FLUSH:
        return req->stage2 && !blk->bs.drv->flush_to_os && blk->bs.drv->flush_to_disk ? VD_CALL_FLUSH_DISK
                                                                                        : VD_CALL__MAX;
    default:
        return VD_CALL__MAX;
    }
}

/* Fill an SQE with the prepared op, exactly, and count what it carries. */
static void fill_sqe(VdBlockBackend *blk, struct io_uring_sqe *sqe, const VdHostOp *op)
{
    switch (op->kind) {
    case VD_HOST_READ:
        io_uring_prep_readv(sqe, op->fd, op->iov, op->niov, op->offset);
        sqe->rw_flags = op->rwf;
        break;
    case VD_HOST_WRITE:
        io_uring_prep_writev(sqe, op->fd, op->iov, op->niov, op->offset);
        sqe->rw_flags = op->rwf;
        break;
    case VD_HOST_FDATASYNC:
        io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
        break;
    }
    vd_drv_count(&blk->stats.uring_ops, 1);
    vd_drv_count_host_op(&blk->bs, op->kind, sqe->fd, op->kind == VD_HOST_FDATASYNC ? 0 : (int)sqe->rw_flags);
}

/* Submit req as one io_uring op if it is one host op; otherwise hand it to the pool. */
static void uring_submit(VdBlockBackend *blk, VdRequest *req)
{
    struct io_uring *ring = &blk->uring->ring;
    VdDrvCall call = single_call(blk, req);
    if (call != VD_CALL__MAX && io_uring_sq_space_left(ring) == 0) {
        submit_or_retry(blk);
    }
    if (call == VD_CALL__MAX || io_uring_sq_space_left(ring) == 0) {
        vd_engine_pool.submit(blk, req);
        return;
    }
    VdDriverReq dr = { .trace = req->trace };
    if (call != VD_CALL_FLUSH_DISK) {
        dr = (VdDriverReq){ .offset = req->offset, .bytes = req->bytes, .iov = req->iov, .niov = req->niov,
                            .flags = call == VD_CALL_WRITE ? req->drv_flags : 0, .trace = req->trace };
    }
    int ret = vd_driver_prepare(blk, call, &dr, &req->uring_op);
    if (ret == -ENOTSUP) {
        vd_engine_pool.submit(blk, req);
        return;
    }
    if (ret < 0) {
        /* An injected fault: the op fails as its CQE would have. */
        set_result(req, call, dr.flags, ret);
        vd_engine_pool.complete_later(blk, req);
        return;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    g_assert(sqe);
    fill_sqe(blk, sqe, &req->uring_op);
    io_uring_sqe_set_data(sqe, req);
    submit_or_retry(blk);
}

/* Completions without a host op go through the pool's queue, never inline. */
static void uring_complete_later(VdBlockBackend *blk, VdRequest *req)
{
    vd_engine_pool.complete_later(blk, req);
}

const VdEngineOps vd_engine_uring = {
    .name = "io_uring",
    .kind = VD_AIO_IO_URING,
    .init = uring_init,
    .cleanup = uring_cleanup,
    .submit = uring_submit,
    .complete_later = uring_complete_later,
};
