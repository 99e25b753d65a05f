/*
 * aio-pool.c - the thread-pool I/O engine.
 *
 * Jobs run in a GThreadPool.  A finished job is pushed onto a GAsyncQueue
 * and an eventfd is bumped; a GSource on that eventfd, attached to the
 * owner's GMainContext, pops each finished request and runs req->done there.
 * Requests that need no host operation take the same queue, so a callback is
 * never run from inside the call that submitted it.
 */
#include "block-internal.h"

#include <errno.h>
#include <glib-unix.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define VD_AIO_POOL_THREADS 16

/* Hand a finished request back to the owner thread. */
static void post_completion(VdBlockBackend *blk, VdRequest *req)
{
    g_async_queue_push(blk->completions, req);
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(blk->event_fd, &one, sizeof(one));
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
    while ((req = g_async_queue_try_pop(blk->completions))) {
        req->done(req);
    }
    return G_SOURCE_CONTINUE;
}

bool vd_aio_init(VdBlockBackend *blk, GError **errp)
{
    blk->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (blk->event_fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "eventfd: %s", g_strerror(errno));
        return false;
    }
    blk->completions = g_async_queue_new();
    blk->pool = g_thread_pool_new(worker_run, blk, VD_AIO_POOL_THREADS, FALSE, errp);
    if (!blk->pool) {
        return false;
    }
    blk->event_source = g_unix_fd_source_new(blk->event_fd, G_IO_IN);
    g_source_set_callback(blk->event_source, (GSourceFunc)(void (*)(void))completions_ready, blk, NULL);
    g_source_attach(blk->event_source, blk->ctx);
    if (blk->aio != VD_AIO_IO_URING) {
        return true;
    }
    g_autoptr(GError) uring_err = NULL;
    if (vd_uring_init(blk, &uring_err)) {
        return true;
    }
    if (blk->aio_explicit) {
        g_propagate_error(errp, g_steal_pointer(&uring_err));
        return false;
    }
    /* The default engine is unavailable here (old kernel, seccomp): use the pool. */
    g_debug("%s; falling back to aio=threads", uring_err->message);
    blk->aio = VD_AIO_THREADS;
    return true;
}

/* Stop the workers (waiting for running jobs) and detach from the loop. */
void vd_aio_cleanup(VdBlockBackend *blk)
{
    vd_uring_cleanup(blk);
    if (blk->pool) {
        g_thread_pool_free(blk->pool, FALSE, TRUE);
    }
    if (blk->event_source) {
        g_source_destroy(blk->event_source);
        g_source_unref(blk->event_source);
    }
    if (blk->completions) {
        g_async_queue_unref(blk->completions);
    }
    if (blk->event_fd >= 0) {
        close(blk->event_fd);
    }
}

void vd_aio_submit(VdBlockBackend *blk, VdRequest *req)
{
    if (blk->uring && vd_uring_try_submit(blk, req)) {
        return;
    }
    g_thread_pool_push(blk->pool, req, NULL);
}

/* Run req in the thread pool, bypassing io_uring (its retry path). */
void vd_aio_submit_to_pool(VdBlockBackend *blk, VdRequest *req)
{
    g_thread_pool_push(blk->pool, req, NULL);
}

void vd_aio_complete_later(VdBlockBackend *blk, VdRequest *req)
{
    post_completion(blk, req);
}
