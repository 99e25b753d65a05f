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
 * request completes through the ready list, like a failed CQE would.
 *
 * Batching: uring_submit only queues the SQE.  The ring is a GSource in the
 * owner's context whose prepare step submits everything queued, so there is
 * one io_uring_submit per loop iteration (or when the SQ ring is full), not
 * one io_uring_enter per request.  The same source watches the ring's own
 * descriptor, readable while CQEs wait, so callbacks run there like the
 * pool's.  The dispatch also sends what its callbacks queued and reaps what
 * completed at submit, up to VD_URING_BUDGET completions (uring_dispatch).
 *
 * Setup: IORING_SETUP_COOP_TASKRUN and IORING_SETUP_TASKRUN_FLAG where the
 * kernel has them (without, if it says EINVAL).  COOP_TASKRUN: a completion
 * never interrupts the owner thread while it runs; the kernel posts its CQE
 * when the thread next enters the kernel, or wakes it if it sleeps in
 * poll().  TASKRUN_FLAG: liburing's peek enters the kernel itself when
 * completions wait to be posted.  Not SINGLE_ISSUER: it binds the ring to
 * the first thread that submits, and the thread that runs the owner's
 * context may change (a VMM that probes a disk on its main thread, then
 * hands the context to an I/O thread); every submission from the new
 * thread would fail with EEXIST and its request never complete
 * (test_io_uring_owner_thread_changes).  Without DEFER_TASKRUN it optimises
 * nothing.  Not DEFER_TASKRUN, which the kernel documents for waiting
 * inside io_uring_enter: in a poll() loop its CQEs need an eventfd (its
 * ring descriptor does not wake poll()) and an io_uring_get_events per
 * wake-up, two syscalls more per loop iteration at 1.3 us each here
 * (docs/benchmarks.md); and it too needs a single issuer.
 *
 * Registered files: the first op on a descriptor puts it in the ring's
 * sparse file table (one io_uring_register call per descriptor, a kernel
 * from 5.19; without, ops name the descriptor itself), and every op on it
 * then carries IOSQE_FIXED_FILE, so the kernel takes no file reference per
 * op.  The table is keyed by descriptor number, which is sound because the
 * driver opens its descriptors before the engine starts and closes them
 * only after the engine is torn down (vd_blk_close), the same lifetime
 * bs->fd_flags relies on.  A table entry holds its own reference to the
 * file, so it can never name another file than the op's descriptor.
 *
 * Lock rule: the ring belongs to the owner thread only.
 */
#include "block-internal.h"
#include "util/loop-source.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <liburing.h>
#include <string.h>
#include <unistd.h>

#define VD_URING_ENTRIES 256
#define VD_URING_BUDGET 256     /* completions one dispatch reaps, those of requests its callbacks sent included */

typedef struct VdUring {
    GSource source;             /* prepare: submit the batch; the ring's descriptor: reap */
    VdBlockBackend *blk;
    struct io_uring ring;
    gpointer ring_tag;          /* the ring's descriptor in the source */
    GSource *retry;             /* pending resubmission after a failed io_uring_submit */
    bool file_table;            /* the kernel took the sparse file table (unregistered at cleanup) */
    int n_slots;                /* slots fixed_slot may use: VD_DRV_MAX_FDS, fewer once an update failed */
    int fixed_fds[VD_DRV_MAX_FDS]; /* the descriptor registered in each slot; -1: slot free */
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

VD_HOT static void submit_or_retry(VdBlockBackend *blk)
{
    VdUring *u = blk->uring;
    int ret = 0;
    while (ret == 0 || ret == -EINTR) {
        ret = io_uring_submit(&u->ring);
        vd_drv_count(&blk->stats.uring_submits, 1);
        if (ret >= 0) {
            break;
        }
    }
    if (ret < 0 && !u->retry) {
        /* The SQEs stay in the ring; they go out with the retry. */
        u->retry = g_timeout_source_new(1);
        g_source_set_callback(u->retry, retry_submit, blk, NULL);
        g_source_attach(u->retry, blk->ctx);
    }
}

/* The checkpoint's name for the driver call a prepared op stands for. */
VD_HOT static VdDrvCall call_of(VdHostOpKind kind)
{
    static const VdDrvCall calls[] = {
        [VD_HOST_READ] = VD_CALL_READ, [VD_HOST_WRITE] = VD_CALL_WRITE, [VD_HOST_FDATASYNC] = VD_CALL_FLUSH_DISK,
    };
    return calls[kind];
}

/* Count the bytes of one completed op and trace it as it was submitted. */
VD_HOT static void account_completion(VdBlockBackend *blk, VdRequest *req, int res)
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
VD_HOT static void set_result(VdRequest *req, VdDrvCall call, unsigned flags, int res)
{
    req->ret = res < 0 ? res : 0;
    if (res < 0 && vd_driver_call_is_sync(call, flags)) {
        req->sync_failed = true;
    }
}

/* Loop prepare step: submit every SQE queued since the last one, in one call; ready if CQEs wait. */
VD_HOT static gboolean uring_prepare(GSource *source, gint *timeout)
{
    VdUring *u = (VdUring *)source;
    *timeout = -1;
    if (io_uring_sq_ready(&u->ring) && !u->retry) {
        submit_or_retry(u->blk);
    }
    /* Cached reads complete at submit, and a dispatch that ran out of budget leaves CQEs behind. */
    return io_uring_cq_ready(&u->ring) > 0;
}

/* Ready when the ring's descriptor says completions arrived, or CQEs are already posted. */
VD_HOT static gboolean uring_check(GSource *source)
{
    VdUring *u = (VdUring *)source;
    return (g_source_query_unix_fd(source, u->ring_tag) & G_IO_IN) != 0 || io_uring_cq_ready(&u->ring) > 0;
}

/* Finish (or retry through the pool) the request of one CQE. */
VD_HOT static void complete_cqe(VdBlockBackend *blk, VdRequest *req, int res)
{
    const VdHostOp *op = &req->uring_op;
    vd_driver_check_result(op->bytes, res);
    account_completion(blk, req, res);
    if (op->kind != VD_HOST_FDATASYNC && res >= 0 && (uint64_t)res != op->bytes) {
        /* Short transfer: let the pool's loop run the whole request again. */
        vd_engine_pool.submit(blk, req);
        return;
    }
    set_result(req, call_of(op->kind), op->kind == VD_HOST_WRITE ? req->drv_flags : 0, res);
    req->done(req);
}

/* Finish the requests of every CQE posted now; how many. */
VD_HOT static unsigned reap_cqes(VdUring *u)
{
    struct io_uring_cqe *cqe;
    unsigned n = 0;
    while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        VdRequest *req = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        complete_cqe(u->blk, req, res);
        n++;
    }
    return n;
}

/*
 * Owner thread: reap every completion and finish (or retry) its request.
 * The requests the callbacks submit are sent at once, and what completes at
 * submit (page-cache reads) is reaped in the same dispatch, up to
 * VD_URING_BUDGET completions: at depth that is one poll and one
 * io_uring_enter per round of the queue, not per request.
 * A completion still never runs inside the call that submitted it, and
 * what the budget leaves in the ring keeps the source ready (uring_prepare).
 */
VD_HOT static gboolean uring_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    VdUring *u = (VdUring *)source;
    gint64 outer = vd_stats_dispatch_begin(source);
    for (unsigned reaped = 0;;) {
        unsigned n = reap_cqes(u);
        reaped += n;
        if (n == 0 || reaped >= VD_URING_BUDGET || !io_uring_sq_ready(&u->ring) || u->retry) {
            break;
        }
        submit_or_retry(u->blk);
    }
    vd_stats_dispatch_end(outer);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs uring_funcs = {
    .prepare = uring_prepare,
    .check = uring_check,
    .dispatch = uring_dispatch,
};

/* Create the ring, with the cooperative flags where the kernel has them, and its file table. */
static int setup_ring(VdUring *u)
{
    struct io_uring_params p = { .flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG };
    int ret = io_uring_queue_init_params(VD_URING_ENTRIES, &u->ring, &p);
    if (ret == -EINVAL) {
        p = (struct io_uring_params){ 0 };  /* before 5.19 */
        ret = io_uring_queue_init_params(VD_URING_ENTRIES, &u->ring, &p);
    }
    if (ret == 0) {
        memset(u->fixed_fds, -1, sizeof(u->fixed_fds));
        u->file_table = io_uring_register_files_sparse(&u->ring, VD_DRV_MAX_FDS) == 0;
        u->n_slots = u->file_table ? VD_DRV_MAX_FDS : 0;
    }
    return ret;
}

/* Set up the pool (for multi-step requests) and the ring. */
static bool uring_init(VdBlockBackend *blk, GError **errp)
{
    if (!vd_engine_pool.init(blk, errp)) {
        return false;
    }
    VdUring *u = (VdUring *)g_source_new(&uring_funcs, sizeof(VdUring));
    u->blk = blk;
    int ret = setup_ring(u);
    if (ret < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-ret), "aio=io_uring: io_uring_queue_init: %s; use aio=threads",
                    g_strerror(-ret));
        g_source_unref(&u->source);
        vd_engine_pool.cleanup(blk);
        return false;
    }
    u->ring_tag = g_source_add_unix_fd(&u->source, u->ring.ring_fd, G_IO_IN);
    g_source_set_name(&u->source, "vdisk io_uring");
    vd_source_no_block(&u->source);
    g_source_attach(&u->source, blk->ctx);
    blk->uring = u;
    return true;
}

/* Tear down the ring, then the pool under it. */
static void uring_cleanup(VdBlockBackend *blk)
{
    VdUring *u = blk->uring;
    if (u) {
        if (u->retry) {
            g_source_destroy(u->retry);
            g_source_unref(u->retry);
        }
        g_source_destroy(&u->source);
        /*
         * The kernel frees a closed ring later, from a work queue: a file
         * still in its table would stay open (its OFD lock held) after the
         * driver's close.  Unregistering drops them now.
         */
        if (u->file_table) {
            int ret = io_uring_unregister_files(&u->ring);
            if (ret < 0) {
                g_warning("vdisk io_uring: unregistering the image's descriptors: %s", g_strerror(-ret));
            }
        }
        io_uring_queue_exit(&u->ring);
        g_source_unref(&u->source);
        blk->uring = NULL;
    }
    vd_engine_pool.cleanup(blk);
}

/*
 * The driver call req is as one host op, or VD_CALL__MAX if it takes
 * several steps (or should run in the pool).
 */
VD_HOT static VdDrvCall single_call(VdBlockBackend *blk, VdRequest *req)
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

/* The registered-file slot of fd, registering it on its first op; -1: the op names fd itself. */
VD_HOT static int fixed_slot(VdUring *u, int fd)
{
    for (int i = 0; i < u->n_slots; i++) {
        if (u->fixed_fds[i] == fd) {
            return i;
        }
        if (u->fixed_fds[i] == -1) {
            if (io_uring_register_files_update(&u->ring, i, &fd, 1) != 1) {
                u->n_slots = i;     /* new descriptors are named as they are; the registered ones stay */
                return -1;
            }
            u->fixed_fds[i] = fd;
            return i;
        }
    }
    return -1;
}

/* Fill an SQE with the prepared op, exactly, and count what it carries. */
VD_HOT static void fill_sqe(VdBlockBackend *blk, struct io_uring_sqe *sqe, const VdHostOp *op)
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
    int slot = fixed_slot(blk->uring, op->fd);
    if (slot >= 0) {
        sqe->fd = slot;
        sqe->flags |= IOSQE_FIXED_FILE;
    }
    vd_drv_count(&blk->stats.uring_ops, 1);
    vd_drv_count_host_op(&blk->bs, op->kind, op->fd, op->kind == VD_HOST_FDATASYNC ? 0 : (int)sqe->rw_flags);
}

/* Submit req as one io_uring op if it is one host op; otherwise hand it to the pool. */
VD_HOT static void uring_submit(VdBlockBackend *blk, VdRequest *req)
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
        vd_engine_complete_later(blk, req);
        return;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    g_assert(sqe);
    fill_sqe(blk, sqe, &req->uring_op);
    io_uring_sqe_set_data(sqe, req);
    /* Submitted with the rest of this iteration's batch, by uring_prepare. */
}

const VdEngineOps vd_engine_uring = {
    .name = "io_uring",
    .kind = VD_AIO_IO_URING,
    .init = uring_init,
    .cleanup = uring_cleanup,
    .submit = uring_submit,
    .batches_reads = true,
};
