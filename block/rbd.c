/*
 * rbd.c - the "rbd" driver: a Ceph RBD image through librbd's asynchronous
 * API (driver=rbd,pool=P,image=I[,snapshot=S][,conf=PATH][,user=NAME]; user=
 * is QEMU's blockdev spelling, since id= names the drive; a snapshot opens
 * only with read-only=on).  QEMU's file=rbd:POOL/IMAGE[@SNAP][:conf=..][:id=..]
 * is translated into these options by filename-spelling.c.
 *
 * Every op is one librbd aio call: rbd_aio_readv, rbd_aio_writev,
 * rbd_aio_flush (stage 2 of a flush), rbd_aio_discard and
 * rbd_aio_write_zeroes.  The generic layer owns every write-cache rule; this
 * driver only sets librbd's client cache from the host cache mode, once, at
 * open (docs/cache-modes.md, "Ceph RBD"):
 *   - cache=none and directsync (opts->direct): rbd_cache=false.  librbd then
 *     completes a write only when the OSDs have committed it, so a write is
 *     durable when it completes and FUA is native: a FUA or WCE=0 write is a
 *     plain rbd_aio_writev with no flush.
 *   - writeback, writethrough and unsafe: rbd_cache=true.  A completed write
 *     may be only in librbd's cache, so FUA is emulated (write, then
 *     rbd_aio_flush) and a guest FLUSH becomes rbd_aio_flush (never under
 *     unsafe, whose flushes stop at stage 1).
 *   - rbd_cache_writethrough_until_flush=false in every mode: the guest's
 *     write-cache bit already decides write-through in the generic layer;
 *     librbd's own guess would hide a missing flush until the first one.
 * These settings are applied after the configuration file, so they win.
 *
 * librados and librbd are loaded at the first open (rbd-lib.h), so only a
 * process with an rbd drive pays for them.
 *
 * Lock rules: open, close, the capabilities and aio_submit run on the owner
 * thread.  librbd calls rbd_op_done on its own threads; it touches nothing
 * but its VdRbdOp (the result) and pushes it onto the completion channel
 * (util/completion-channel.h), which delivers it, and the driver's callback, on the
 * owner's GMainContext.  librbd's threads end in rados_shutdown, before the
 * channel is freed.
 */
#include "block/block-driver.h"
#include "rbd-lib.h"
#include "util/completion-channel.h"

#include <errno.h>
#include <string.h>

typedef struct VdRbdState {
    const VdRbdLib *lib;        /* librados and librbd, loaded at the first open */
    rados_t cluster;
    rados_ioctx_t io;
    rbd_image_t image;
    bool cluster_created;
    uint64_t size;
    const struct VdRbdCacheConf *cache; /* the librbd settings applied at open */
    VdCompletionChannel *channel;
} VdRbdState;

/* One op in flight: the engine's callback and librbd's result. */
typedef struct VdRbdOp {
    const VdRbdLib *lib;
    VdCompletionChannel *channel;
    VdDrvAioCb *cb;
    void *opaque;
    int ret;
} VdRbdOp;

/* librbd settings per host cache mode, indexed by VdDriverOpenOptions.direct. */
typedef struct VdRbdCacheConf {
    const char *rbd_cache;
    const char *writethrough_until_flush;
    VdFuaSupport fua;
} VdRbdCacheConf;

static const VdRbdCacheConf cache_confs[2] = {
    [false] = { "true", "false", VD_FUA_EMULATE },  /* writeback, writethrough, unsafe */
    [true] = { "false", "false", VD_FUA_NATIVE },   /* none, directsync */
};

static const char *const rbd_option_names[] = { "pool", "image", "snapshot", "conf", "user", NULL };

/* Owner thread: hand one finished op's result to the engine. */
static void rbd_deliver(void *unused, void *item)
{
    VdRbdOp *op = item;
    VdDrvAioCb *cb = op->cb;
    void *opaque = op->opaque;
    int ret = op->ret;
    g_free(op);
    cb(opaque, ret);
}

/* librbd's thread: record the result (bytes or -errno) and pass the op to the owner's loop. */
static void rbd_op_done(rbd_completion_t c, void *arg)
{
    VdRbdOp *op = arg;
    ssize_t r = op->lib->rbd_aio_get_return_value(c);
    op->lib->rbd_aio_release(c);
    op->ret = r < 0 ? (int)MAX(r, -4095) : 0;
    vd_completion_channel_push(op->channel, op);
}

/* Set one librados option or fail naming it. */
static bool rbd_conf_set(VdRbdState *s, const char *key, const char *value, GError **errp)
{
    int r = s->lib->rados_conf_set(s->cluster, key, value);
    if (r < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r), "rbd: cannot set %s=%s: %s", key, value,
                    g_strerror(-r));
        return false;
    }
    return true;
}

/* Create the cluster handle for user=, read conf (or the default search path) and apply the cache table. */
static bool rbd_configure(VdRbdState *s, const VdDriverOpenOptions *o, GError **errp)
{
    const char *conf = vd_drv_opt(o, "conf"), *user = vd_drv_opt(o, "user");
    if (user && !*user) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "rbd: user= needs a Ceph user name (e.g. user=admin)");
        return false;
    }
    int r = s->lib->rados_create(&s->cluster, user);
    if (r < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r), "rbd: user=%s: cannot create a client: %s",
                    user ? user : "admin", g_strerror(-r));
        return false;
    }
    s->cluster_created = true;
    /* Errors are this driver's one line; librados's own go to its log file, if the conf names one. */
    if (!rbd_conf_set(s, "log_to_stderr", "false", errp) || !rbd_conf_set(s, "err_to_stderr", "false", errp)) {
        return false;
    }
    if (conf && !*conf) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "rbd: conf= needs a path to a ceph.conf");
        return false;
    }
    r = s->lib->rados_conf_read_file(s->cluster, conf);
    if (r < 0 && conf) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r), "rbd: conf=%s: cannot read it: %s", conf,
                    g_strerror(-r));
        return false;
    }
    /* Without conf=, no file on the default path is fine: CEPH_ARGS may name the monitors. */
    r = s->lib->rados_conf_parse_env(s->cluster, NULL);
    if (r < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r), "rbd: CEPH_ARGS: %s", g_strerror(-r));
        return false;
    }
    s->cache = &cache_confs[o->direct];
    return rbd_conf_set(s, "rbd_cache", s->cache->rbd_cache, errp) &&
           rbd_conf_set(s, "rbd_cache_writethrough_until_flush", s->cache->writethrough_until_flush, errp);
}

/* rados_connect's failure r as one line naming the user and, for ENOENT, the missing keyring. */
static void connect_error(VdRbdState *s, const char *where, const char *user, int r, GError **errp)
{
    char keyring[1024] = "";
    if (r == -ENOENT) {
        s->lib->rados_conf_get(s->cluster, "keyring", keyring, sizeof(keyring));
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "rbd: no keyring for client.%s (keyring=%s)",
                    user ? user : "admin", keyring);
    } else {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r), "rbd: cannot connect to the Ceph cluster as "
                    "client.%s (%s): %s", user ? user : "admin", where, g_strerror(-r));
    }
}

/* Connect, open the pool and the image; each failure names what failed. */
static bool rbd_connect_image(VdRbdState *s, const VdDriverOpenOptions *o, const char *pool, const char *image,
                              GError **errp)
{
    const char *conf = vd_drv_opt(o, "conf");
    g_autofree char *where = conf ? g_strdup_printf("conf=%s", conf) : g_strdup("the default ceph.conf");
    char mon[16] = "";
    /*
     * No monitor named: librados would look them up in DNS (SRV records),
     * print to stderr and leak in the resolver; vdisk needs them named.
     */
    if (s->lib->rados_conf_get(s->cluster, "mon_host", mon, sizeof(mon)) != -ENAMETOOLONG && !mon[0]) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "rbd: %s names no monitor (mon_host)", where);
        return false;
    }
    int r = s->lib->rados_connect(s->cluster);
    if (r < 0) {
        connect_error(s, where, vd_drv_opt(o, "user"), r, errp);
        return false;
    }
    r = s->lib->rados_ioctx_create(s->cluster, pool, &s->io);
    if (r < 0) {
        s->io = NULL;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r), "rbd: pool=%s: %s", pool,
                    r == -ENOENT ? "no such pool" : g_strerror(-r));
        return false;
    }
    const char *snap = vd_drv_opt(o, "snapshot");   /* read-only: rbd_drv_open checked */
    r = o->read_only ? s->lib->rbd_open_read_only(s->io, image, &s->image, snap)
                     : s->lib->rbd_open(s->io, image, &s->image, NULL);
    if (r < 0) {
        s->image = NULL;
        const char *why = r != -ENOENT ? g_strerror(-r) : snap ? "no such image or snapshot" : "no such image";
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r), "rbd: image=%s%s%s: %s in pool %s", image,
                    snap ? "@" : "", snap ? snap : "", why, pool);
        return false;
    }
    r = s->lib->rbd_get_size(s->image, &s->size);
    if (r < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-r), "rbd: image=%s: cannot get its size: %s", image,
                    g_strerror(-r));
        return false;
    }
    return true;
}

/* Release whatever open got as far as: image, pool, cluster (joining librbd's threads), channel. */
static void rbd_drv_close(VdBlockDriverState *bs)
{
    VdRbdState *s = bs->opaque;
    if (s->image) {
        s->lib->rbd_close(s->image);
        s->image = NULL;
    }
    if (s->io) {
        s->lib->rados_ioctx_destroy(s->io);
        s->io = NULL;
    }
    if (s->cluster_created) {
        s->lib->rados_shutdown(s->cluster);
        s->cluster_created = false;
    }
    g_clear_pointer(&s->channel, vd_completion_channel_free);
}

/* Open pool/image with the cache settings of the host cache mode. */
static bool rbd_drv_open(VdBlockDriverState *bs, const VdDriverOpenOptions *o, GError **errp)
{
    VdRbdState *s = bs->opaque;
    const char *pool = vd_drv_opt(o, "pool"), *image = vd_drv_opt(o, "image");
    if (!pool || !*pool) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "driver 'rbd' needs pool=NAME");
        return false;
    }
    if (!image || !*image) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "driver 'rbd' needs image=NAME");
        return false;
    }
    const char *snap = vd_drv_opt(o, "snapshot");
    if (snap && !*snap) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "rbd: snapshot= needs a snapshot name");
        return false;
    }
    if (snap && !o->read_only) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "rbd: snapshot=%s cannot be written: open it with read-only=on", snap);
        return false;
    }
    s->lib = vd_rbd_lib(errp);
    if (!s->lib) {
        return false;
    }
    s->channel = vd_completion_channel_new(o->ctx, rbd_deliver, NULL, errp);
    if (!s->channel) {
        g_prefix_error(errp, "rbd: ");
    }
    if (!s->channel || !rbd_configure(s, o, errp) || !rbd_connect_image(s, o, pool, image, errp)) {
        rbd_drv_close(bs);
        return false;
    }
    return true;
}

static int64_t rbd_get_length(VdBlockDriverState *bs) { return (int64_t)((VdRbdState *)bs->opaque)->size; }

/* Native FUA only without librbd's cache: a write then completes once the OSDs committed it. */
static VdFuaSupport rbd_can_fua(VdBlockDriverState *bs) { return ((VdRbdState *)bs->opaque)->cache->fua; }

static bool rbd_true(VdBlockDriverState *bs) { return true; }

/* Start one librbd aio call for op on req; its completion calls cb from the owner's loop. */
static void rbd_aio_submit(VdBlockDriverState *bs, VdDrvAioOp op, VdDriverReq *req, VdDrvAioCb *cb, void *opaque)
{
    VdRbdState *s = bs->opaque;
    VdRbdOp *rop = g_new0(VdRbdOp, 1);
    *rop = (VdRbdOp){ .lib = s->lib, .channel = s->channel, .cb = cb, .opaque = opaque };
    rbd_completion_t c;
    int r = s->lib->rbd_aio_create_completion(rop, rbd_op_done, &c);
    if (r == 0) {
        switch (op) {
        case VD_DRV_AIO_READ:
            r = s->lib->rbd_aio_readv(s->image, req->iov, req->niov, req->offset, c);
            break;
        case VD_DRV_AIO_WRITE:
            /* VD_DRV_FUA comes only with native FUA (no client cache): a completed write is committed. */
            r = s->lib->rbd_aio_writev(s->image, req->iov, req->niov, req->offset, c);
            break;
        case VD_DRV_AIO_FLUSH:
            r = s->lib->rbd_aio_flush(s->image, c);
            break;
        case VD_DRV_AIO_DISCARD:
            r = s->lib->rbd_aio_discard(s->image, req->offset, req->bytes, c);
            break;
        case VD_DRV_AIO_WRITE_ZEROES:
            r = s->lib->rbd_aio_write_zeroes(s->image, req->offset, req->bytes, c,
                                     (req->flags & VD_DRV_MAY_UNMAP) ? 0 : RBD_WRITE_ZEROES_FLAG_THICK_PROVISION, 0);
            break;
        default:
            g_assert_not_reached();
        }
        if (r < 0) {
            s->lib->rbd_aio_release(c);
        }
    }
    if (r < 0) {
        /* Not started: the result still arrives later, from the loop, never inside aio_submit. */
        rop->ret = MAX(r, -4095);
        vd_completion_channel_push(s->channel, rop);
    }
}

const VdBlockDriver vd_driver_rbd = {
    .name = "rbd",
    .instance_size = sizeof(VdRbdState),
    .remote = true,
    .option_names = rbd_option_names,
    .open = rbd_drv_open,
    .close = rbd_drv_close,
    .get_length = rbd_get_length,
    .can_fua = rbd_can_fua,
    .can_discard = rbd_true,
    .can_zero = rbd_true,
    .aio_submit = rbd_aio_submit,
};
