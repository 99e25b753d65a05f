/*
 * aio-uring.c - the io_uring engine (aio=io_uring).
 *
 * Single-step requests go straight to io_uring: an aligned read, an aligned
 * write (plain; or, with O_DIRECT, RWF_DSYNC for native FUA or on the O_DSYNC
 * descriptor), and a flush that is only an fdatasync.  Durable buffered
 * writes stay in the pool (see single_op_fd).  Everything with several steps
 * (bounce/RMW, emulated FUA, write-zeroes, discard, stage-1 flushes) and
 * anything with an injected fault pending goes to the thread pool, which
 * runs the same driver operations.  A short read or write is run again, as
 * a whole, through the thread pool.
 *
 * The ring's completions are signalled on an eventfd watched by a GSource in
 * the owner's context, so callbacks run there like the pool's.  Lock rule:
 * the ring belongs to the owner thread only.
 */
#include "block-internal.h"

#include <errno.h>
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

/* Count and trace one completed io_uring op like the driver would have. */
static void account(VdBlockBackend *blk, VdRequest *req, int res)
{
    VdBlockStats *st = &blk->stats;
    vd_drv_count(&st->uring_ops, 1);
    const char *extra = (req->drv_flags & VD_DRV_FUA) ? ",RWF_DSYNC" : (req->drv_flags & VD_DRV_DSYNC) ? ",O_DSYNC fd" : "";
    switch (req->type) {
    case VD_OP_READ:
        vd_drv_count(&st->host_reads, 1);
        vd_drv_count(&st->host_bytes_read, res > 0 ? res : 0);
        break;
    case VD_OP_WRITE:
        vd_drv_count(&st->host_writes, 1);
        vd_drv_count(&st->host_bytes_written, res > 0 ? res : 0);
        vd_drv_count((req->drv_flags & VD_DRV_FUA) ? &st->host_rwf_dsync_writes : &st->host_dsync_writes,
                     (req->drv_flags & (VD_DRV_FUA | VD_DRV_DSYNC)) ? 1 : 0);
        break;
    default:
        vd_drv_count(&st->host_fdatasync, 1);
        break;
    }
    if (req->trace) {
        VdDriverReq dr = { .trace = req->trace };
        if (req->type == VD_OP_FLUSH) {
            vd_drv_trace(&dr, "io_uring fsync(DATASYNC)=%d", res);
        } else {
            vd_drv_trace(&dr, "io_uring %s(off=%" G_GUINT64_FORMAT ",len=%" G_GUINT64_FORMAT "%s)=%d",
                         req->type == VD_OP_READ ? "readv" : "writev", req->offset, req->bytes, extra, res);
        }
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
        account(blk, req, res);
        if (req->type != VD_OP_FLUSH && res >= 0 && (uint64_t)res != req->bytes) {
            /* Short transfer: let the pool's loop run the whole request again. */
            vd_aio_submit_to_pool(blk, req);
            continue;
        }
        req->ret = res < 0 ? res : 0;
        req->done(req);
    }
    return G_SOURCE_CONTINUE;
}

bool vd_uring_init(VdBlockBackend *blk, GError **errp)
{
    VdUring *u = g_new0(VdUring, 1);
    int ret = io_uring_queue_init(VD_URING_ENTRIES, &u->ring, 0);
    if (ret < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-ret), "aio=io_uring: io_uring_queue_init: %s; use aio=threads",
                    g_strerror(-ret));
        g_free(u);
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
        return false;
    }
    u->source = g_unix_fd_source_new(u->event_fd, G_IO_IN);
    g_source_set_callback(u->source, (GSourceFunc)(void (*)(void))uring_ready, blk, NULL);
    g_source_attach(u->source, blk->ctx);
    blk->uring = u;
    return true;
}

void vd_uring_cleanup(VdBlockBackend *blk)
{
    VdUring *u = blk->uring;
    if (!u) {
        return;
    }
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

/* The descriptor for a single-op request, or -1 if it needs the pool. */
static int single_op_fd(VdBlockBackend *blk, VdRequest *req)
{
    const VdBlockDriver *drv = blk->bs.drv;
    if (req->skip_exec || !drv->get_fd) {
        return -1;
    }
    switch (req->type) {
    case VD_OP_READ:
        if (vd_fault_pending(blk, VD_FAULT_READ) || !vd_request_is_aligned(blk, req)) {
            return -1;
        }
        return drv->get_fd(&blk->bs, 0);
    case VD_OP_WRITE:
        if (req->fua_emulate || vd_fault_pending(blk, VD_FAULT_WRITE) || !vd_request_is_aligned(blk, req)) {
            return -1;
        }
        if (req->durable && !vd_blk_is_direct(blk)) {
            /*
             * io-wq runs buffered writes to one file one at a time, so
             * durable buffered writes would lose the parallelism that lets
             * the file system batch their journal commits (measured: 3x
             * fewer IOPS at QD32).  The pool's threads keep it.
             */
            return -1;
        }
        return drv->get_fd(&blk->bs, req->drv_flags);
    case VD_OP_FLUSH:
        if (!req->stage2 || drv->flush_to_os || vd_fault_pending(blk, VD_FAULT_FLUSH)) {
            return -1;
        }
        return drv->get_fd(&blk->bs, 0);
    default:
        return -1;
    }
}

bool vd_uring_try_submit(VdBlockBackend *blk, VdRequest *req)
{
    int fd = single_op_fd(blk, req);
    if (fd < 0) {
        return false;
    }
    struct io_uring *ring = &blk->uring->ring;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) {
        submit_or_retry(blk);
        sqe = io_uring_get_sqe(ring);
        if (!sqe) {
            return false;
        }
    }
    switch (req->type) {
    case VD_OP_READ:
        io_uring_prep_readv(sqe, fd, req->iov, req->niov, req->offset);
        break;
    case VD_OP_WRITE:
        io_uring_prep_writev(sqe, fd, req->iov, req->niov, req->offset);
        sqe->rw_flags = (req->drv_flags & VD_DRV_FUA) ? RWF_DSYNC : 0;
        break;
    default:
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        break;
    }
    io_uring_sqe_set_data(sqe, req);
    submit_or_retry(blk);
    return true;
}
