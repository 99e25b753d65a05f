/*
 * aio-pool.c - the thread-pool I/O engine (aio=threads), VdEngineOps.
 *
 * Jobs (request-exec.c) run in a GThreadPool.  A finished job is pushed
 * onto a GAsyncQueue and an eventfd is bumped; a GSource on that eventfd,
 * attached to the owner's GMainContext, pops each finished request and runs
 * req->done there, so a callback is never run from inside the call that
 * submitted it.
 *
 * Lock rules: the queue is thread-safe; everything else in VdPool is set up
 * and torn down on the owner thread while no job runs.  The io_uring engine
 * uses this engine for the requests it does not run itself (a downward
 * call); this file calls no other engine.
 */
#include "block-internal.h"

#include <errno.h>
#include <glib-unix.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define VD_AIO_POOL_THREADS 16

typedef struct VdPool {
    GThreadPool *threads;
    GAsyncQueue *completions;
    int event_fd;
    GSource *event_source;
} VdPool;

/* Hand a finished request back to the owner thread. */
static void post_completion(VdBlockBackend *blk, VdRequest *req)
{
    g_async_queue_push(blk->pool->completions, req);
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(blk->pool->event_fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    /* EAGAIN means the counter is already non-zero: the source will wake. */
}

/* Worker thread body: run the host operations of one request. */
static void worker_run(gpointer data, gpointer user_data)
{
    VdBlockBackend *blk = user_data;
    VdRequest *req = data;
    vd_request_execute(blk, req);
    post_completion(blk, req);
}

/* Owner thread: drain the completion queue. */
static gboolean completions_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    VdBlockBackend *blk = opaque;
    uint64_t count;
    ssize_t n;
    do {
        n = read(fd, &count, sizeof(count));
    } while (n < 0 && errno == EINTR);
    VdRequest *req;
    while ((req = g_async_queue_try_pop(blk->pool->completions))) {
        req->done(req);
    }
    return G_SOURCE_CONTINUE;
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
    if (p->event_source) {
        g_source_destroy(p->event_source);
        g_source_unref(p->event_source);
    }
    if (p->completions) {
        g_async_queue_unref(p->completions);
    }
    if (p->event_fd >= 0) {
        close(p->event_fd);
    }
    g_free(p);
    blk->pool = NULL;
}

/* Start the workers and the completion source in the owner's context. */
static bool pool_init(VdBlockBackend *blk, GError **errp)
{
    VdPool *p = g_new0(VdPool, 1);
    blk->pool = p;
    p->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->event_fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "eventfd: %s", g_strerror(errno));
        pool_cleanup(blk);
        return false;
    }
    p->completions = g_async_queue_new();
    p->threads = g_thread_pool_new(worker_run, blk, VD_AIO_POOL_THREADS, FALSE, errp);
    if (!p->threads) {
        pool_cleanup(blk);
        return false;
    }
    p->event_source = g_unix_fd_source_new(p->event_fd, G_IO_IN);
    g_source_set_callback(p->event_source, (GSourceFunc)(void (*)(void))completions_ready, blk, NULL);
    g_source_attach(p->event_source, blk->ctx);
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
