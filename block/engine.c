/*
 * engine.c - choose the I/O engine once, at open, and route each request:
 * inline (aio-inline.c) when it qualifies, else to the engine.
 *
 * A driver with its own asynchronous I/O (aio_submit: nbd, rbd) always gets
 * the aio-driver engine, and no other driver does.  For the others,
 * aio=threads and aio=io_uring name an engine; without aio= the default
 * (io_uring) falls back to the thread pool where io_uring cannot be set up
 * (an old kernel, a seccomp sandbox).  An explicit aio= never falls back.
 * Completions without a host op go through the ready list (no syscall).
 * Owner thread only.
 */
#include "block-internal.h"

static const VdEngineOps *const engines[] = {
    [VD_AIO_THREADS] = &vd_engine_pool,
    [VD_AIO_IO_URING] = &vd_engine_uring,
    [VD_AIO_DRIVER] = &vd_engine_driver,
};

/* Set blk->engine to the first engine that can be set up, per aio=. */
static bool open_engine(VdBlockBackend *blk, VdAioEngine aio, bool aio_explicit, GError **errp)
{
    g_return_val_if_fail(aio < G_N_ELEMENTS(engines), false);
    if (blk->bs.drv->aio_submit) { /* options.c refused any other explicit aio= */
        aio = VD_AIO_DRIVER;
    }
    g_autoptr(GError) err = NULL;
    if (engines[aio]->init(blk, &err)) {
        blk->engine = engines[aio];
        return true;
    }
    if (aio_explicit || aio != VD_AIO_IO_URING) {
        g_propagate_error(errp, g_steal_pointer(&err));
        return false;
    }
    g_debug("%s; falling back to aio=threads", err->message);
    if (!vd_engine_pool.init(blk, errp)) {
        return false;
    }
    blk->engine = &vd_engine_pool;
    return true;
}

bool vd_engine_open(VdBlockBackend *blk, VdAioEngine aio, bool aio_explicit, GError **errp)
{
    if (!vd_inline_init(blk, errp)) {
        return false;
    }
    if (!open_engine(blk, aio, aio_explicit, errp)) {
        vd_inline_cleanup(blk);
        return false;
    }
    return true;
}

void vd_engine_close(VdBlockBackend *blk)
{
    blk->engine->cleanup(blk);
    vd_inline_cleanup(blk);
}

VD_HOT bool vd_engine_submit(VdBlockBackend *blk, VdRequest *req)
{
    if (vd_inline_try(blk, req)) {
        return true;
    }
    blk->engine->submit(blk, req);
    return false;
}

void vd_engine_complete_later(VdBlockBackend *blk, VdRequest *req)
{
    vd_inline_complete_later(blk, req);
}
