/*
 * aio-inline.c - the inline fast path for non-durable page-cache I/O, and
 * the ready list every deferred completion goes through.
 *
 * A read or write that needs no durability, is aligned, and goes to the
 * page cache (not O_DIRECT) of a driver that prepares its host ops is run
 * right here, on the owner thread, with one preadv2/pwritev, through the
 * same checkpoint (vd_driver_prepare: the contract, the fd and RWF flags)
 * as every other path.  While a fault rule or delay applies to its kind of
 * op, the op goes to the engine, so that the rule sees each op once.  Only
 * req->done is deferred: the request goes on the ready list, which a
 * GSource in the owner's context drains (no syscall, no thread; up to
 * VD_READY_BUDGET completions per loop iteration, those queued by the
 * callbacks included), so a completion never runs inside the call that
 * submitted it.
 *
 * inline= (blk->inline_mode): auto, the default, as below; on: inline
 * without the back-off or the depth rule; off: nothing runs inline, so the
 * host path a trace or an observer sees is fixed.
 *
 * Depth (inline=auto): a read submitted while other requests of the backend
 * are in flight goes to an engine that batches reads (io_uring: one submit
 * per loop iteration for all of them, and the kernel completes cached reads
 * at submit); measured here at QD32, 1.9x the reads per second of one
 * preadv2 each.  Alone (QD1) a read stays inline, 3x faster than the ring.
 * Writes stay inline at any depth: buffered io_uring writes go to io-wq.
 *
 * Bounding the owner loop's stall (inline=auto):
 *  - Reads use preadv2(RWF_NOWAIT): a page-cache miss answers EAGAIN at once
 *    and the read goes to the engine.  A short read (part cached) also goes
 *    to the engine, as a whole.  A file that cannot answer RWF_NOWAIT at all
 *    (tmpfs, FUSE, NFS: EOPNOTSUPP) has its reads sent to the engine from
 *    then on: the request that found out is retried there, never failed.
 *  - Buffered writes cannot ask (ext4 answers RWF_NOWAIT buffered writes
 *    with EOPNOTSUPP) and can block (dirty throttling, a partial page to
 *    read in).  Each inline write is timed (in->now: util/cycle-clock.h,
 *    the TSC where it is invariant, or a test's clock); two in a row that
 *    took longer than VD_INLINE_STALL_US send every write to the engine for
 *    VD_INLINE_BACKOFF_US after the second ended.  One slow write alone is
 *    most likely a preemption (under load a 2 us write is preempted past
 *    200 us many times a second), while dirty throttling holds every
 *    write of the thread.  So the loop stalls in at most two slow writes
 *    per back-off window (docs/cache-modes.md, "I/O engines").
 * Durable writes, flushes, discards, write-zeroes and unaligned requests
 * never come here.  A group-commit write may: it is a plain write by
 * itself, made durable by the shared flush that block-backend.c starts
 * after its completion.
 *
 * Lock rules: owner thread only (the list, the source, the back-off clock).
 */
#include "block-internal.h"
#include "util/cycle-clock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>

#define VD_INLINE_STALL_US 200          /* two inline writes in a row slower than this... */
#define VD_INLINE_BACKOFF_US 1000000    /* ...send writes to the engine for this long */
#define VD_READY_BUDGET 256             /* completions one dispatch runs before the loop polls again */

typedef struct VdInline {
    GSource source;
    VdBlockBackend *blk;
    VdRequest *head, **tail;            /* the ready list, linked through next_ready */
    gint64 write_backoff_until;         /* clock us; inline writes resume after it */
    bool last_write_slow;               /* the last inline write took longer than VD_INLINE_STALL_US */
    bool reads_cannot_nowait;           /* the file answered RWF_NOWAIT with EOPNOTSUPP: no inline reads */
    VdClockFunc *now;                   /* the clock inline writes are timed with (tests set it) */
    void *now_opaque;
} VdInline;

/* The default clock: monotonic microseconds from the TSC (two reads per inline write; the vDSO's cost 4 %). */
VD_HOT static gint64 default_now(void *opaque)
{
    return vd_cycle_clock_us();
}

/* Ready when the list holds a request. */
VD_HOT static gboolean ready_prepare(GSource *source, gint *timeout)
{
    *timeout = -1;
    return ((VdInline *)source)->head != NULL;
}

/* Same test after the poll. */
VD_HOT static gboolean ready_check(GSource *source)
{
    return ((VdInline *)source)->head != NULL;
}

/*
 * Run req->done for the ready requests, those their callbacks queue
 * included, up to VD_READY_BUDGET; the rest wait for the next iteration so
 * that the loop's other sources get their turn.  A submitter that sends its
 * next request from the callback (QD1) thus pays one poll per budget, not
 * one per request.  A completion still never runs inside the call that
 * submitted it: it is taken from the list after that callback returned.
 */
VD_HOT static gboolean ready_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    VdInline *in = (VdInline *)source;
    gint64 outer = vd_stats_dispatch_begin(source);
    for (unsigned n = 0; in->head && n < VD_READY_BUDGET; n++) {
        VdRequest *req = in->head;
        in->head = req->next_ready;
        if (!in->head) {
            in->tail = &in->head;
        }
        req->next_ready = NULL;
        req->done(req);
    }
    vd_stats_dispatch_end(outer);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs ready_funcs = {
    .prepare = ready_prepare,
    .check = ready_check,
    .dispatch = ready_dispatch,
};

bool vd_inline_init(VdBlockBackend *blk, GError **errp)
{
    VdInline *in = (VdInline *)g_source_new(&ready_funcs, sizeof(VdInline));
    in->blk = blk;
    in->tail = &in->head;
    in->now = default_now;
    vd_cycle_clock_is_tsc();            /* calibrate now (2 ms, once per process), not in a timed write */
    g_source_set_name(&in->source, "vdisk ready list");
    g_source_attach(&in->source, blk->ctx);
    blk->inline_path = in;
    return true;
}

void vd_inline_cleanup(VdBlockBackend *blk)
{
    VdInline *in = blk->inline_path;
    if (!in) {
        return;
    }
    g_assert(in->head == NULL);
    g_source_destroy(&in->source);
    g_source_unref(&in->source);
    blk->inline_path = NULL;
}

void vd_blk_set_inline_clock(VdBlockBackend *blk, VdClockFunc *now, void *opaque)
{
    VdInline *in = blk->inline_path;
    in->now = now ? now : default_now;
    in->now_opaque = opaque;
    in->write_backoff_until = 0;
    in->last_write_slow = false;
}

VD_HOT void vd_inline_complete_later(VdBlockBackend *blk, VdRequest *req)
{
    VdInline *in = blk->inline_path;
    req->next_ready = NULL;
    *in->tail = req;
    in->tail = &req->next_ready;
}

/* The driver call req would be inline, or VD_CALL__MAX if it must go to the engine. */
VD_HOT static VdDrvCall inline_call(VdBlockBackend *blk, VdRequest *req)
{
    static const VdDrvCall calls[] = {
        [VD_OP_READ] = VD_CALL_READ, [VD_OP_WRITE] = VD_CALL_WRITE, [VD_OP_FLUSH] = VD_CALL__MAX,
        [VD_OP_DISCARD] = VD_CALL__MAX, [VD_OP_ZEROES] = VD_CALL__MAX,
    };
    static const VdFaultOp faults[] = {
        [VD_OP_READ] = VD_FAULT_READ, [VD_OP_WRITE] = VD_FAULT_WRITE, [VD_OP_FLUSH] = VD_FAULT__MAX,
        [VD_OP_DISCARD] = VD_FAULT__MAX, [VD_OP_ZEROES] = VD_FAULT__MAX,
    };
    if (req->type == VD_OP_READ && blk->inline_mode == VD_INLINE_AUTO && blk->engine->batches_reads &&
        blk->in_flight > 1) {
        return VD_CALL__MAX;        /* at depth, the engine's one submit per iteration costs less */
    }
    if (req->type == VD_OP_READ && blk->inline_path->reads_cannot_nowait) {
        return VD_CALL__MAX;        /* a read here could block the loop on a miss */
    }
    if (blk->inline_mode == VD_INLINE_OFF || calls[req->type] == VD_CALL__MAX || req->durable ||
        blk->cache_mode == VD_CACHE_NONE || blk->cache_mode == VD_CACHE_DIRECTSYNC || !blk->bs.drv->prepare ||
        !vd_request_is_aligned(blk, req) || vd_fault_armed(blk, faults[req->type])) {
        return VD_CALL__MAX;
    }
    return calls[req->type];
}

/* Trace one inline syscall as it was made. */
VD_HOT static void trace_op(VdRequest *req, const VdHostOp *op, ssize_t n, int err)
{
    if (!req->trace) {
        return;                     /* the common case: no varargs call per request */
    }
    VdDriverReq dr = { .trace = req->trace };
    vd_drv_trace(&dr, "%s(off=%" G_GUINT64_FORMAT ",len=%" G_GUINT64_FORMAT "%s)=%zd",
                 op->kind == VD_HOST_READ ? "preadv2" : "pwritev", op->offset, op->bytes,
                 op->kind == VD_HOST_READ ? ",RWF_NOWAIT" : "", n < 0 ? (ssize_t)-err : n);
}

/* One syscall for op; the byte count, or -errno. */
VD_HOT static ssize_t run_op(const VdHostOp *op)
{
    ssize_t n = op->kind == VD_HOST_READ ? preadv2(op->fd, op->iov, op->niov, op->offset, op->rwf | RWF_NOWAIT)
                                         : pwritev(op->fd, op->iov, op->niov, op->offset);
    return n < 0 ? -errno : n;
}

VD_HOT bool vd_inline_try(VdBlockBackend *blk, VdRequest *req)
{
    VdInline *in = blk->inline_path;
    VdDrvCall call = inline_call(blk, req);
    if (call == VD_CALL__MAX) {
        return false;
    }
    bool timed = call == VD_CALL_WRITE && blk->inline_mode == VD_INLINE_AUTO;
    gint64 t0 = 0;
    if (timed) {
        t0 = in->now(in->now_opaque);
        if (t0 < in->write_backoff_until) {
            return false;
        }
    }
    VdDriverReq dr = { .offset = req->offset, .bytes = req->bytes, .iov = req->iov, .niov = req->niov,
                       .flags = 0, .trace = req->trace };
    VdHostOp op;
    int ret = vd_driver_prepare(blk, call, &dr, &op);
    if (ret == -ENOTSUP) {
        return false;
    }
    if (ret == 0) {
        g_assert(op.rwf == 0);      /* not durable: no RWF_DSYNC, and the O_DSYNC fd is not asked for */
        ssize_t n = run_op(&op);
        if (timed) {
            gint64 t1 = in->now(in->now_opaque);
            bool slow = t1 - t0 > VD_INLINE_STALL_US;
            if (slow && in->last_write_slow) {
                in->write_backoff_until = t1 + VD_INLINE_BACKOFF_US;
                vd_drv_count(&blk->stats.inline_backoffs, 1);
                slow = false;               /* the next pair starts after the back-off */
            }
            in->last_write_slow = slow;
        }
        vd_driver_check_result(op.bytes, n);
        vd_drv_count_host_op(&blk->bs, op.kind, op.fd, op.kind == VD_HOST_READ ? RWF_NOWAIT : 0);
        trace_op(req, &op, n, (int)-n);
        if (n >= 0) {
            vd_drv_count(op.kind == VD_HOST_READ ? &blk->stats.host_bytes_read : &blk->stats.host_bytes_written, n);
        }
        if (n == -EOPNOTSUPP && op.kind == VD_HOST_READ) {
            in->reads_cannot_nowait = true;     /* only RWF_NOWAIT was refused: the engine reads without it */
            return false;
        }
        if (n == -EAGAIN || n == -EINTR || (n >= 0 && (uint64_t)n != op.bytes)) {
            /* Not cached, interrupted, or short: the engine runs the whole request. */
            return false;
        }
        ret = n < 0 ? (int)n : 0;
    }
    /* Done, or an injected fault or host error: the request completes as the engine's would. */
    vd_drv_count(&blk->stats.inline_ops, 1);
    req->ret = ret;
    vd_inline_complete_later(blk, req);
    return true;
}
