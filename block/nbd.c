/*
 * nbd.c - the "nbd" driver: a disk on an NBD server, through libnbd.
 *
 * driver=nbd,uri=nbd+unix:///EXPORT?socket=PATH (or nbd://HOST:PORT/EXPORT,
 * or QEMU's server.type=/server.path=/server.host=/server.port=/export=).
 * An asynchronous driver (aio_submit, block-driver.h): libnbd's aio_*
 * commands on a socket watched in the owner's loop (nbd-conn.c), many in
 * flight, no thread.  What the server offered in its handshake decides the
 * capabilities, once per open:
 *   NBD_FLAG_SEND_FUA    native FUA (NBD_CMD_FLAG_FUA), else write + flush
 *   NBD_FLAG_SEND_FLUSH  NBD_CMD_FLUSH; without it every write is durable
 *                        when acknowledged: the disk is write-through only
 *   NBD_FLAG_SEND_TRIM   discard; NBD_FLAG_SEND_WRITE_ZEROES: write-zeroes
 *                        (NBD_CMD_FLAG_NO_HOLE unless the guest may unmap)
 *   read-only export     opens only with read-only=on
 *   block sizes          the minimum is the request alignment; a request is
 *                        split at the maximum
 * Lock rules: nbd-internal.h (owner thread only).
 */
#include "nbd-internal.h"
#include "util/iov.h"

#include <errno.h>

#define VD_NBD_DEFAULT_MAX_BLOCK (32u << 20)  /* the NBD spec's default maximum payload */
#define VD_NBD_MAX_EFFECT (1u << 30)          /* the largest trim / zero command sent */

static const char *const nbd_option_names[] = {
    "uri", "server.type", "server.path", "server.host", "server.port", "export", NULL,
};

/* A libnbd yes/no query: 1, 0, or -1 on error (then the capability is off). */
static bool flag(int v)
{
    return v == 1;
}

bool vd_nbd_read_caps(VdNbdState *s, struct nbd_handle *h, bool first, GError **errp)
{
    int64_t size = nbd_get_size(h), min = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
    int64_t max = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
    if (size < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "driver=nbd: %s: %s", s->target.desc, nbd_get_error());
        return false;
    }
    VdNbdState c = {
        .size = size, .read_only = flag(nbd_is_read_only(h)), .can_flush = flag(nbd_can_flush(h)),
        .can_fua = flag(nbd_can_fua(h)), .can_trim = flag(nbd_can_trim(h)), .can_zero = flag(nbd_can_zero(h)),
        .min_block = min > 0 ? (uint32_t)min : 1,
        .max_block = max > 0 ? (uint32_t)MIN(max, (int64_t)VD_NBD_DEFAULT_MAX_BLOCK) : VD_NBD_DEFAULT_MAX_BLOCK,
    };
    if (!first && (c.size != s->size || c.read_only != s->read_only || c.can_flush != s->can_flush ||
                   c.can_fua != s->can_fua || c.can_trim != s->can_trim || c.can_zero != s->can_zero ||
                   c.min_block != s->min_block)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "driver=nbd: %s: the server came back with another size or other capabilities", s->target.desc);
        return false;
    }
    s->size = c.size;
    s->read_only = c.read_only;
    s->can_flush = c.can_flush;
    s->can_fua = c.can_fua;
    s->can_trim = c.can_trim;
    s->can_zero = c.can_zero;
    s->min_block = c.min_block;
    s->max_block = MAX(c.max_block / c.min_block * c.min_block, c.min_block);
    return true;
}

/* Connect (the whole handshake, blocking: this is open) and learn the capabilities. */
static bool nbd_open(VdBlockDriverState *bs, const VdDriverOpenOptions *o, GError **errp)
{
    VdNbdState *s = bs->opaque;
    s->ctx = o->ctx;
    g_queue_init(&s->done);
    if (!vd_nbd_target_parse(o, &s->target, errp)) {
        return false;
    }
    struct nbd_handle *h = vd_nbd_target_handle(&s->target, errp);
    if (!h) {
        vd_nbd_target_clear(&s->target);
        return false;
    }
    if (vd_nbd_target_connect(h, &s->target, false) == -1) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "driver=nbd: cannot open %s: %s", s->target.desc,
                    nbd_get_error());
    } else if (vd_nbd_read_caps(s, h, true, errp)) {
        if (!s->read_only || o->read_only) {
            s->h = h;
            vd_nbd_conn_start(s);
            return true;
        }
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_READ_ONLY,
                    "driver=nbd: %s is a read-only export; open it with read-only=on", s->target.desc);
    }
    nbd_close(h);
    vd_nbd_target_clear(&s->target);
    return false;
}

/* The generic layer drained every request: disconnect. */
static void nbd_close_drv(VdBlockDriverState *bs)
{
    VdNbdState *s = bs->opaque;
    vd_nbd_conn_stop(s);
    vd_nbd_target_clear(&s->target);
}

/* The export's size, from the handshake. */
static int64_t nbd_get_length(VdBlockDriverState *bs) { return ((VdNbdState *)bs->opaque)->size; }

/*
 * Native FUA where the server has it; a server without flush acknowledges
 * only durable writes, so a plain write is already a FUA write there.
 */
static VdFuaSupport nbd_can_fua_drv(VdBlockDriverState *bs)
{
    VdNbdState *s = bs->opaque;
    return s->can_fua || !s->can_flush ? VD_FUA_NATIVE : VD_FUA_EMULATE;
}

/* NBD_FLAG_SEND_TRIM. */
static bool nbd_can_discard(VdBlockDriverState *bs) { return ((VdNbdState *)bs->opaque)->can_trim; }
/* NBD_FLAG_SEND_WRITE_ZEROES. */
static bool nbd_can_zero_drv(VdBlockDriverState *bs) { return ((VdNbdState *)bs->opaque)->can_zero; }
/* The server's minimum block size (1 if it gave none). */
static uint32_t nbd_align(VdBlockDriverState *bs) { return ((VdNbdState *)bs->opaque)->min_block; }
/* No NBD_FLAG_SEND_FLUSH: the server acknowledges only durable writes. */
static bool nbd_write_through_only(VdBlockDriverState *bs) { return !((VdNbdState *)bs->opaque)->can_flush; }

/* libnbd's completion of one command: record a failure; queue the request when it was the last. */
static int cmd_done(void *user_data, int *error)
{
    VdNbdReq *r = user_data;
    if (*error && !r->ret) {
        r->ret = -vd_nbd_errno(*error);
    }
    g_assert(r->left > 0);
    if (--r->left == 0) {
        vd_nbd_conn_finish(r->s, r);
    }
    return 1; /* retire the command */
}

/* Issue one command for [off, off+len) of r; false if libnbd refused it (r->ret set). */
static bool issue(VdNbdReq *r, uint64_t off, uint64_t len, uint8_t *buf, uint32_t flags)
{
    struct nbd_handle *h = r->s->h;
    nbd_completion_callback cb = { .callback = cmd_done, .user_data = r };
    int64_t cookie = -1;
    r->left++;
    switch (r->op) {
    case VD_DRV_AIO_READ:
        g_assert(buf);
        cookie = nbd_aio_pread(h, buf, len, off, cb, 0);
        break;
    case VD_DRV_AIO_WRITE:
        g_assert(buf);
        cookie = nbd_aio_pwrite(h, buf, len, off, cb, flags);
        break;
    case VD_DRV_AIO_FLUSH:
        cookie = nbd_aio_flush(h, cb, 0);
        break;
    case VD_DRV_AIO_DISCARD:
        cookie = nbd_aio_trim(h, len, off, cb, 0);
        break;
    case VD_DRV_AIO_WRITE_ZEROES:
        cookie = nbd_aio_zero(h, len, off, cb, flags);
        break;
    default:
        g_assert_not_reached();
    }
    if (cookie < 0) {
        /* Not queued: libnbd never calls cb for it. */
        r->left--;
        if (!r->ret) {
            r->ret = -vd_nbd_errno(nbd_get_errno());
        }
        return false;
    }
    return true;
}

/* The NBD command flags of a write or write-zeroes. */
static uint32_t cmd_flags(VdNbdState *s, const VdNbdReq *r)
{
    uint32_t f = 0;
    if ((r->req->flags & VD_DRV_FUA) && s->can_fua) {
        f |= LIBNBD_CMD_FLAG_FUA;
    }
    if (r->op == VD_DRV_AIO_WRITE_ZEROES && !(r->req->flags & VD_DRV_MAY_UNMAP)) {
        f |= LIBNBD_CMD_FLAG_NO_HOLE;
    }
    return f;
}

/* Issue r's commands: split at the server's maximum, through one buffer. */
static void issue_all(VdNbdState *s, VdNbdReq *r)
{
    VdDriverReq *req = r->req;
    uint8_t *buf = NULL;
    bool data = r->op == VD_DRV_AIO_READ || r->op == VD_DRV_AIO_WRITE;
    if (r->op == VD_DRV_AIO_FLUSH) {
        r->flush_gen = s->write_gen;
        issue(r, 0, 0, NULL, 0);
        return;
    }
    if (data && req->niov == 1) {
        buf = req->iov[0].iov_base;
    } else if (data) {
        buf = r->bounce = g_malloc(req->bytes);
        if (r->op == VD_DRV_AIO_WRITE) {
            vd_iov_to_buf(req->iov, req->niov, 0, buf, req->bytes);
        }
    }
    uint64_t step = data ? s->max_block : VD_NBD_MAX_EFFECT / s->min_block * s->min_block;
    uint32_t flags = cmd_flags(s, r);
    for (uint64_t done = 0; done < req->bytes; done += step) {
        uint64_t len = MIN(step, req->bytes - done);
        if (!issue(r, req->offset + done, len, buf ? buf + done : NULL, flags)) {
            return;
        }
    }
}

/*
 * Start one request.  A guard count keeps it from finishing while its
 * commands are issued (libnbd may fail them at once if the socket dies);
 * every result, even an immediate one, is delivered later from the loop.
 */
static void nbd_aio_submit(VdBlockDriverState *bs, VdDrvAioOp op, VdDriverReq *req, VdDrvAioCb *cb, void *opaque)
{
    VdNbdState *s = bs->opaque;
    VdNbdReq *r = g_new0(VdNbdReq, 1);
    *r = (VdNbdReq){ .s = s, .op = op, .req = req, .cb = cb, .opaque = opaque, .left = 1 };
    if (!s->ready) {
        r->ret = -EIO; /* disconnected: the error policy decides (werror=stop holds it) */
    } else if (op == VD_DRV_AIO_FLUSH && s->cache_lost) {
        /* Writes the server acknowledged before a drop may have gone with its cache. */
        s->cache_lost = false;
        s->flushed_gen = s->write_gen;
        r->ret = -EIO;
    } else if (op != VD_DRV_AIO_FLUSH || s->can_flush) {
        issue_all(s, r);
    }
    cmd_done(r, &(int){ 0 });
}

void vd_nbd_req_deliver(VdNbdReq *r)
{
    VdNbdState *s = r->s;
    if (r->ret == 0 && r->op == VD_DRV_AIO_READ && r->bounce) {
        vd_iov_from_buf(r->req->iov, r->req->niov, 0, r->bounce, r->req->bytes);
    }
    bool durable = r->op == VD_DRV_AIO_WRITE && (r->req->flags & VD_DRV_FUA);
    if (r->ret == 0 && r->op != VD_DRV_AIO_READ && r->op != VD_DRV_AIO_FLUSH && !durable) {
        s->write_gen++;
    } else if (r->ret == 0 && r->op == VD_DRV_AIO_FLUSH && r->flush_gen > s->flushed_gen) {
        s->flushed_gen = r->flush_gen;
    }
    g_free(r->bounce);
    VdDrvAioCb *cb = r->cb;
    void *opaque = r->opaque;
    int ret = r->ret;
    g_free(r);
    cb(opaque, ret);
}

const VdBlockDriver vd_driver_nbd = {
    .name = "nbd",
    .instance_size = sizeof(VdNbdState),
    .remote = true,
    .option_names = nbd_option_names,
    .open = nbd_open,
    .close = nbd_close_drv,
    .get_length = nbd_get_length,
    .can_fua = nbd_can_fua_drv,
    .can_discard = nbd_can_discard,
    .can_zero = nbd_can_zero_drv,
    .request_alignment = nbd_align,
    .aio_submit = nbd_aio_submit,
    .write_through_only = nbd_write_through_only,
};
