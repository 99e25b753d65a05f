/*
 * aio-driver.c - the engine for asynchronous drivers (aio=driver): nbd, rbd.
 *
 * Such a driver has no worker callbacks: it starts an op with aio_submit and
 * calls back later from the owner's GMainContext.  This engine turns each
 * request's plan (decided in block-backend.c) into a short list of steps,
 * the same host ops request-exec.c makes in a worker: a bounce buffer for an
 * unaligned read, a read-modify-write of the partial blocks of a write or a
 * write-zeroes, the driver's write-zeroes (or writes of zeroes when it
 * declines), the aligned interior of a discard, and a trailing flush where
 * FUA is emulated.  Steps run one after another: each starts from the
 * callback of the one before, so no loop runs inside a callback, and every
 * step passes the checkpoint (driver-call.c: contract, faults, counters).
 * An injected delay (delay.OP=) is a timer before the step, never a sleep.
 *
 * A request completes through req->done, always from the loop: the last
 * step's callback, or the engine's idle queue (no host op, an injected
 * fault), never inside submit.
 *
 * Lock rules: everything here belongs to the owner thread.
 */
#include "block-internal.h"
#include "util/iov.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* What a step does before its op is started: fill the bounce block. */
typedef enum VdAioPrep {
    VD_PREP_NONE,
    VD_PREP_COPY_IN,    /* the request's data into the block (read-modify-write) */
    VD_PREP_MEMSET,     /* zero [from, to) of the block (partial write-zeroes) */
} VdAioPrep;

/* One driver op of a request. */
typedef struct VdAioStep {
    VdDrvCall call;
    uint64_t offset, bytes;
    uint8_t *data;          /* the block's buffer for offset; NULL: the request's iovecs */
    unsigned flags;         /* VD_DRV_* */
    VdAioPrep prep;
    uint64_t from, to;      /* VD_PREP_MEMSET: image offsets */
    bool zero_writes;       /* write-zeroes by writes of blk->zero_buf, chunk by chunk */
} VdAioStep;

#define VD_AIO_MAX_STEPS 6  /* head RMW (2) + tail RMW (2) + middle + flush */

/* One request on its way through the driver. */
typedef struct VdAioJob {
    VdBlockBackend *blk;
    VdRequest *req;
    VdAioStep steps[VD_AIO_MAX_STEPS];
    unsigned n_steps, cur;
    uint8_t *buf;           /* bounce buffer the steps' data point into */
    struct iovec iov;       /* the current step's buffer */
    VdDriverReq dr;         /* the current step as the driver sees it */
    VdDrvCall call;         /* the call dr was submitted as */
    bool pending;           /* the driver owes a callback for dr */
    bool submitting;        /* inside aio_submit: a callback now breaks the contract */
    int deferred_ret;       /* an injected fault's result, delivered from the idle queue */
} VdAioJob;

typedef struct VdAioDrv {
    GQueue later;           /* VdAioJob to finish (or fail) from the loop */
    GSource *later_source;  /* idle source draining later, one job per dispatch */
} VdAioDrv;

static void step_start(VdAioJob *job);
static void step_result(VdAioJob *job, int ret);

/* A job for req with no steps yet. */
static VdAioJob *job_new(VdBlockBackend *blk, VdRequest *req)
{
    VdAioJob *job = g_new0(VdAioJob, 1);
    job->blk = blk;
    job->req = req;
    return job;
}

/* Finish the request: copy a bounced read out, hand it back to the generic layer. */
static void job_finish(VdAioJob *job, int ret)
{
    VdRequest *req = job->req;
    if (job->n_steps) {
        if (ret == 0 && req->type == VD_OP_READ && job->buf) {
            vd_iov_from_buf(req->iov, req->niov, 0, job->buf + (req->offset - req->align_off), req->bytes);
        }
        req->ret = ret < 0 ? ret : 0;
    }
    free(job->buf);
    g_free(job);
    req->done(req);
}

/* Idle source: finish one queued job (no host op) or deliver its injected fault. */
static gboolean later_ready(gpointer opaque)
{
    VdBlockBackend *blk = opaque;
    VdAioDrv *a = blk->aiodrv;
    VdAioJob *job = g_queue_pop_head(&a->later);
    if (job->cur < job->n_steps) {
        step_result(job, job->deferred_ret);
    } else {
        job_finish(job, 0);
    }
    if (!g_queue_is_empty(&a->later)) {
        return G_SOURCE_CONTINUE;
    }
    g_source_unref(a->later_source);
    a->later_source = NULL;
    return G_SOURCE_REMOVE;
}

/* Queue a job to be finished from the loop. */
static void run_later(VdAioJob *job)
{
    VdAioDrv *a = job->blk->aiodrv;
    g_queue_push_tail(&a->later, job);
    if (!a->later_source) {
        a->later_source = g_idle_source_new();
        g_source_set_priority(a->later_source, G_PRIORITY_DEFAULT);
        g_source_set_callback(a->later_source, later_ready, job->blk, NULL);
        g_source_attach(a->later_source, job->blk->ctx);
    }
}

/* The driver's callback for the current step. */
static void step_done(void *opaque, int ret)
{
    VdAioJob *job = opaque;
    g_assert(job->pending);          /* exactly once */
    g_assert(!job->submitting);      /* never inside aio_submit */
    job->pending = false;
    vd_driver_aio_done(job->blk, job->call, &job->dr, ret);
    step_result(job, ret);
}

/* Fill the current step's block, describe it to the driver and start it through the checkpoint. */
static void step_issue(VdAioJob *job)
{
    VdBlockBackend *blk = job->blk;
    VdRequest *req = job->req;
    VdAioStep *st = &job->steps[job->cur];
    if (st->prep == VD_PREP_COPY_IN) {
        vd_iov_to_buf(req->iov, req->niov, 0, st->data + (req->offset - st->offset), req->bytes);
    } else if (st->prep == VD_PREP_MEMSET) {
        memset(st->data + (st->from - st->offset), 0, st->to - st->from);
    }
    job->dr = (VdDriverReq){ .offset = st->offset, .bytes = st->bytes, .flags = st->flags, .trace = req->trace };
    if (st->zero_writes) {
        job->iov = (struct iovec){ .iov_base = blk->zero_buf, .iov_len = MIN(st->bytes, VD_ZERO_BUF_SIZE) };
        job->dr.bytes = job->iov.iov_len;
        job->dr.iov = &job->iov;
        job->dr.niov = 1;
    } else if (st->data) {
        job->iov = (struct iovec){ .iov_base = st->data, .iov_len = st->bytes };
        job->dr.iov = &job->iov;
        job->dr.niov = 1;
    } else if (st->call == VD_CALL_READ || st->call == VD_CALL_WRITE) {
        job->dr.iov = req->iov;
        job->dr.niov = req->niov;
    }
    job->call = st->zero_writes ? VD_CALL_WRITE : st->call;
    job->pending = job->submitting = true;
    int ret = vd_driver_aio_submit(blk, job->call, &job->dr, step_done, job);
    job->submitting = false;
    if (ret < 0) {
        /* An injected fault: nothing was submitted; it fails from the loop like a driver error. */
        job->pending = false;
        job->deferred_ret = ret;
        run_later(job);
    }
}

/* Timer: an injected delay before the current step is over. */
static gboolean delay_over(gpointer opaque)
{
    step_issue(opaque);
    return G_SOURCE_REMOVE;
}

/* Start the current step (after its injected delay, if any), or finish after the last. */
static void step_start(VdAioJob *job)
{
    if (job->cur == job->n_steps) {
        job_finish(job, 0);
        return;
    }
    VdAioStep *st = &job->steps[job->cur];
    unsigned delay = vd_driver_call_delay(job->blk, st->zero_writes ? VD_CALL_WRITE : st->call);
    if (delay) {
        vd_drv_trace(&(VdDriverReq){ .trace = job->req->trace }, "delay=%uus", delay);
        GSource *t = g_timeout_source_new((delay + 999) / 1000);
        g_source_set_callback(t, delay_over, job, NULL);
        g_source_attach(t, job->blk->ctx);
        g_source_unref(t);
        return;
    }
    step_issue(job);
}

/* A step ended with ret: go on to the next, fall back, or fail the request. */
static void step_result(VdAioJob *job, int ret)
{
    VdAioStep *st = &job->steps[job->cur];
    if (ret == -ENOTSUP && st->call == VD_CALL_DISCARD) {
        ret = 0; /* advisory */
    } else if (ret == -ENOTSUP && st->call == VD_CALL_ZEROES && !st->zero_writes) {
        st->zero_writes = true; /* the driver declined: write zeroes instead */
        st->flags = 0;
        step_start(job);
        return;
    }
    if (ret < 0) {
        if (vd_driver_call_is_sync(job->call, job->dr.flags)) {
            job->req->sync_failed = true;
        }
        job_finish(job, ret);
        return;
    }
    if (st->zero_writes && st->bytes > job->dr.bytes) {
        st->offset += job->dr.bytes;
        st->bytes -= job->dr.bytes;
        step_start(job);
        return;
    }
    job->cur++;
    step_start(job);
}

/* Append a step to the job's list. */
static VdAioStep *add_step(VdAioJob *job, VdDrvCall call, uint64_t offset, uint64_t bytes, uint8_t *data,
                           unsigned flags)
{
    g_assert(job->n_steps < VD_AIO_MAX_STEPS);
    VdAioStep *st = &job->steps[job->n_steps++];
    *st = (VdAioStep){ .call = call, .offset = offset, .bytes = bytes, .data = data, .flags = flags };
    return st;
}

/* Read: straight into the request's iovecs, or the aligned range into a bounce buffer. */
static int plan_read(VdAioJob *job)
{
    VdBlockBackend *blk = job->blk;
    VdRequest *req = job->req;
    if (vd_request_is_aligned(blk, req)) {
        add_step(job, VD_CALL_READ, req->offset, req->bytes, NULL, 0);
        return 0;
    }
    job->buf = vd_request_bounce_alloc(blk, req->align_end - req->align_off);
    if (!job->buf) {
        return -ENOMEM;
    }
    add_step(job, VD_CALL_READ, req->align_off, req->align_end - req->align_off, job->buf, 0);
    return 0;
}

/* Write: straight, or read the partial edge blocks, then write the aligned range. */
static int plan_write(VdAioJob *job)
{
    VdBlockBackend *blk = job->blk;
    VdRequest *req = job->req;
    if (vd_request_is_aligned(blk, req)) {
        add_step(job, VD_CALL_WRITE, req->offset, req->bytes, NULL, req->drv_flags);
        return 0;
    }
    uint32_t ra = blk->req_align;
    uint64_t len = req->align_end - req->align_off, end = req->offset + req->bytes;
    job->buf = vd_request_bounce_alloc(blk, len);
    if (!job->buf) {
        return -ENOMEM;
    }
    if (req->offset != req->align_off) {
        vd_drv_count(&blk->stats.bounce_rmw, 1);
        add_step(job, VD_CALL_READ, req->align_off, ra, job->buf, 0);
    }
    bool tail_is_head_block = len == ra && req->offset != req->align_off;
    if (end != req->align_end && !tail_is_head_block) {
        vd_drv_count(&blk->stats.bounce_rmw, 1);
        add_step(job, VD_CALL_READ, req->align_end - ra, ra, job->buf + len - ra, 0);
    }
    add_step(job, VD_CALL_WRITE, req->align_off, len, job->buf, req->drv_flags)->prep = VD_PREP_COPY_IN;
    return 0;
}

/* Zero [from, to) inside the block at `block` by read-modify-write through data. */
static void plan_zero_partial(VdAioJob *job, uint64_t block, uint64_t from, uint64_t to, uint8_t *data)
{
    VdBlockBackend *blk = job->blk;
    vd_drv_count(&blk->stats.bounce_rmw, 1);
    add_step(job, VD_CALL_READ, block, blk->req_align, data, 0);
    VdAioStep *st = add_step(job, VD_CALL_WRITE, block, blk->req_align, data, 0);
    st->prep = VD_PREP_MEMSET;
    st->from = from;
    st->to = to;
}

/* Write-zeroes: partial edge blocks by RMW, the aligned middle by the driver (or zero writes). */
static int plan_zeroes(VdAioJob *job)
{
    VdBlockBackend *blk = job->blk;
    VdRequest *req = job->req;
    uint32_t ra = blk->req_align;
    uint64_t off = req->offset, end = req->offset + req->bytes;
    uint64_t mid_start = off, mid_end = end;
    if (off != req->align_off || end != req->align_end) {
        job->buf = vd_request_bounce_alloc(blk, 2 * (size_t)ra);
        if (!job->buf) {
            return -ENOMEM;
        }
    }
    if (req->align_end - req->align_off == ra && (off != req->align_off || end != req->align_end)) {
        plan_zero_partial(job, req->align_off, off, end, job->buf); /* the whole range is inside one block */
        mid_start = mid_end = end;
    } else {
        if (off != req->align_off) {
            mid_start = req->align_off + ra;
            plan_zero_partial(job, req->align_off, off, mid_start, job->buf);
        }
        if (end != req->align_end) {
            mid_end = req->align_end - ra;
            plan_zero_partial(job, mid_end, mid_end, end, job->buf + ra);
        }
    }
    if (mid_end > mid_start) {
        VdAioStep *st = add_step(job, VD_CALL_ZEROES, mid_start, mid_end - mid_start, NULL,
                                 (req->flags & VD_REQ_MAY_UNMAP) ? VD_DRV_MAY_UNMAP : 0);
        st->zero_writes = !blk->cap_zero;
        if (st->zero_writes) {
            st->flags = 0;
        }
    }
    return 0;
}

/* Discard the aligned interior of the range, if the driver discards. */
static int plan_discard(VdAioJob *job)
{
    VdBlockBackend *blk = job->blk;
    VdRequest *req = job->req;
    uint64_t start, end;
    if (vd_request_discard_range(blk, req, &start, &end)) {
        add_step(job, VD_CALL_DISCARD, start, end - start, NULL, 0);
    }
    return 0;
}

/* A flush is the protocol's flush (stage 2); cache=unsafe skips it. */
static int plan_flush(VdAioJob *job)
{
    if (job->req->stage2) {
        add_step(job, VD_CALL_FLUSH_DISK, 0, 0, NULL, 0);
    }
    return 0;
}

typedef int VdAioPlanFunc(VdAioJob *job);

static VdAioPlanFunc *const plan_fn[] = {
    [VD_OP_READ] = plan_read, [VD_OP_WRITE] = plan_write, [VD_OP_FLUSH] = plan_flush,
    [VD_OP_DISCARD] = plan_discard, [VD_OP_ZEROES] = plan_zeroes,
};

/* Turn req into steps and start the first; anything that needs no host op finishes from the loop. */
static void aiodrv_submit(VdBlockBackend *blk, VdRequest *req)
{
    VdAioJob *job = job_new(blk, req);
    int ret = plan_fn[req->type](job);
    if (ret == 0 && req->fua_emulate) {
        add_step(job, VD_CALL_FLUSH_DISK, 0, 0, NULL, 0);
    }
    if (ret < 0 || job->n_steps == 0) {
        req->ret = ret;
        job->n_steps = job->cur = 0;
        run_later(job);
        return;
    }
    step_start(job);
}

/* The engine's state; the driver, opened before, must be asynchronous. */
static bool aiodrv_init(VdBlockBackend *blk, GError **errp)
{
    if (!blk->bs.drv->aio_submit) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "aio=driver needs a driver with its own asynchronous I/O (nbd, rbd), not driver=%s",
                    blk->bs.drv->name);
        return false;
    }
    blk->aiodrv = g_new0(VdAioDrv, 1);
    g_queue_init(&blk->aiodrv->later);
    return true;
}

/* Nothing is in flight: free the state. */
static void aiodrv_cleanup(VdBlockBackend *blk)
{
    VdAioDrv *a = blk->aiodrv;
    if (!a) {
        return;
    }
    g_assert(g_queue_is_empty(&a->later) && !a->later_source);
    g_free(a);
    blk->aiodrv = NULL;
}

const VdEngineOps vd_engine_driver = {
    .name = "driver",
    .kind = VD_AIO_DRIVER,
    .init = aiodrv_init,
    .cleanup = aiodrv_cleanup,
    .submit = aiodrv_submit,
};
