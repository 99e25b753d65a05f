/*
 * null.c - the "null" driver: a disk of size= bytes that reads zeroes and
 * forgets writes.  It makes no syscalls, so it measures the generic layer's
 * own overhead.  Every write is trivially durable: FUA is native and the
 * O_DSYNC policy is accepted.
 *
 * "null-aio" is the same disk as an asynchronous driver (QEMU's null-aio):
 * no worker thread, each request completes from an idle source in the
 * owner's loop, so the generic layer's async path (block/aio-driver.c) can
 * be measured and fuzzed without a thread hand-off per request.
 * Lock rules: null-aio's queue is owner thread only.
 */
#include "block/block-driver.h"
#include "util/iov.h"

#include <string.h>

typedef struct NullState {
    uint64_t size;
    GMainContext *ctx;          /* null-aio: where completions run */
    GQueue ready;               /* null-aio: NullAioOp waiting for the idle source */
    GSource *idle;              /* null-aio: attached while ready is non-empty */
} NullState;

/* A null-aio request waiting to complete. */
typedef struct NullAioOp {
    VdDrvAioCb *cb;
    void *opaque;
} NullAioOp;

static bool null_open(VdBlockDriverState *bs, const VdDriverOpenOptions *o, GError **errp)
{
    NullState *s = bs->opaque;
    s->size = o->size;
    s->ctx = o->ctx;
    g_queue_init(&s->ready);
    return true;
}

static void null_close(VdBlockDriverState *bs) {}
static int64_t null_get_length(VdBlockDriverState *bs) { return ((NullState *)bs->opaque)->size; }
static VdFuaSupport null_can_fua(VdBlockDriverState *bs) { return VD_FUA_NATIVE; }
static bool null_true(VdBlockDriverState *bs) { return true; }

static int null_preadv(VdBlockDriverState *bs, VdDriverReq *req)
{
    vd_iov_memset(req->iov, req->niov, 0, 0, SIZE_MAX);
    return 0;
}

static int null_ok(VdBlockDriverState *bs, VdDriverReq *req) { return 0; }

const VdBlockDriver vd_driver_null = {
    .name = "null",
    .instance_size = sizeof(NullState),
    .needs_filename = false,
    .open = null_open,
    .close = null_close,
    .get_length = null_get_length,
    .can_fua = null_can_fua,
    .can_dsync = null_true,
    .can_discard = null_true,
    .can_zero = null_true,
    .preadv = null_preadv,
    .pwritev = null_ok,
    .flush_to_disk = null_ok,
    .discard = null_ok,
    .write_zeroes = null_ok,
};

/*
 * null-aio idle source: complete the oldest request, one per dispatch.
 * The bookkeeping is done before the callback, which may submit more.
 */
static gboolean null_aio_ready(gpointer opaque)
{
    NullState *s = opaque;
    NullAioOp op = *(NullAioOp *)g_queue_peek_head(&s->ready);
    g_free(g_queue_pop_head(&s->ready));
    gboolean more = !g_queue_is_empty(&s->ready);
    if (!more) {
        g_source_unref(s->idle);
        s->idle = NULL;
    }
    op.cb(op.opaque, 0);
    return more;
}

/* null-aio: nothing may be left (the generic layer drains before close). */
static void null_aio_close(VdBlockDriverState *bs)
{
    NullState *s = bs->opaque;
    g_assert(g_queue_is_empty(&s->ready));
    if (s->idle) {
        g_source_destroy(s->idle);
        g_source_unref(s->idle);
    }
}

/* null-aio: do the op at once (reads give zeroes), complete it from the loop. */
static void null_aio_submit(VdBlockDriverState *bs, VdDrvAioOp op, VdDriverReq *req, VdDrvAioCb *cb, void *opaque)
{
    NullState *s = bs->opaque;
    if (op == VD_DRV_AIO_READ) {
        null_preadv(bs, req);
    }
    NullAioOp *o = g_new(NullAioOp, 1);
    *o = (NullAioOp){ .cb = cb, .opaque = opaque };
    g_queue_push_tail(&s->ready, o);
    if (!s->idle) {
        s->idle = g_idle_source_new();
        g_source_set_callback(s->idle, null_aio_ready, s, NULL);
        g_source_attach(s->idle, s->ctx);
    }
}

const VdBlockDriver vd_driver_null_aio = {
    .name = "null-aio",
    .instance_size = sizeof(NullState),
    .needs_filename = false,
    .open = null_open,
    .close = null_aio_close,
    .get_length = null_get_length,
    .can_fua = null_can_fua,
    .can_discard = null_true,
    .can_zero = null_true,
    .aio_submit = null_aio_submit,
};
