/*
 * aio-pool.c - the thread-pool I/O engine (aio=threads), VdEngineOps.
 *
 * Jobs (request-exec.c) run in a GThreadPool.  A finished job is pushed
 * onto a completion channel (util/completion-channel.c: a queue and an
 * eventfd); its GSource, attached to the owner's GMainContext, runs
 * req->done there, so a callback is never run from inside the call that
 * submitted it.
 *
 * Lock rules: the channel's push is thread-safe; everything else in VdPool
 * is set up and torn down on the owner thread while no job runs.  The
 * io_uring engine uses this engine for the requests it does not run itself
 * (a downward call); this file calls no other engine.
 */
#include "block-internal.h"
#include "util/completion-channel.h"

#define VD_AIO_POOL_THREADS 16

typedef struct VdPool {
    GThreadPool *threads;
    VdCompletionChannel *completions;
} VdPool;

/* Worker thread body: run the host operations of one request, then hand it back to the owner thread. */
static void worker_run(gpointer data, gpointer user_data)
{
    VdBlockBackend *blk = user_data;
    VdRequest *req = data;
    vd_request_execute(blk, req);
    vd_completion_channel_push(blk->pool->completions, req);
}

/* Owner thread: one finished request's completion. */
static void completion_deliver(void *opaque, void *item)
{
    VdRequest *req = item;
    req->done(req);
}

/* Stop the workers (waiting for running jobs) and detach from the loop. */
static void pool_cleanup(VdBlockBackend *blk)
{
    VdPool *p = blk->pool;
    if (!p) {
        return;
    }
    if (p->threads) {
        g_thread_pool_free(p->threads, FALSE, TRUE);
    }
    vd_completion_channel_free(p->completions);
    g_free(p);
    blk->pool = NULL;
}

/* Start the completion channel in the owner's context, then the workers. */
static bool pool_init(VdBlockBackend *blk, GError **errp)
{
    VdPool *p = g_new0(VdPool, 1);
    blk->pool = p;
    p->completions = vd_completion_channel_new(blk->ctx, completion_deliver, blk, errp);
    if (!p->completions) {
        pool_cleanup(blk);
        return false;
    }
    p->threads = g_thread_pool_new(worker_run, blk, VD_AIO_POOL_THREADS, FALSE, errp);
    if (!p->threads) {
        pool_cleanup(blk);
        return false;
    }
    return true;
}

/* Run req's job in a worker. */
static void pool_submit(VdBlockBackend *blk, VdRequest *req)
{
    g_thread_pool_push(blk->pool->threads, req, NULL);
}

const VdEngineOps vd_engine_pool = {
    .name = "threads",
    .kind = VD_AIO_THREADS,
    .init = pool_init,
    .cleanup = pool_cleanup,
    .submit = pool_submit,
};
