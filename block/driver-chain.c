/*
 * driver-chain.c - the driver chain: a filter (crashsim) has a child driver
 * state, opened with the same options.  Capabilities combine down the chain
 * because a filter answers each one by asking its child through these
 * helpers; a flush runs stage 1 all the way down before stage 2.
 *
 * Threading: open/close/find and the capability helpers run on the owner
 * thread (at open); the I/O helpers run wherever the calling driver op runs.
 */
#include "block/block-driver.h"

#include <errno.h>

bool vd_bdrv_open_child(VdBlockDriverState *parent, const VdBlockDriver *drv, const VdDriverOpenOptions *opts,
                        GError **errp)
{
    g_assert(!parent->child);
    VdBlockDriverState *c = g_new0(VdBlockDriverState, 1);
    c->drv = drv;
    c->opaque = g_malloc0(MAX(drv->instance_size, 1));
    c->stats = parent->stats;
    /* The child named by the options gets the rest of the chain; a driver a filter picks itself gets the same. */
    VdDriverOpenOptions co = *opts;
    if (drv == opts->child) {
        co.child = opts->below_child ? opts->below_child[0] : NULL;
        co.below_child = co.child ? opts->below_child + 1 : NULL;
    }
    if (!drv->open(c, &co, errp)) {
        g_free(c->opaque);
        g_free(c);
        return false;
    }
    parent->child = c;
    return true;
}

void vd_bdrv_close_child(VdBlockDriverState *parent)
{
    VdBlockDriverState *c = parent->child;
    if (c) {
        c->drv->close(c);
        g_free(c->opaque);
        g_free(c);
        parent->child = NULL;
    }
}

VdBlockDriverState *vd_bdrv_find(VdBlockDriverState *bs, const VdBlockDriver *drv)
{
    for (; bs && bs->drv; bs = bs->child) {
        if (bs->drv == drv) {
            return bs;
        }
    }
    return NULL;
}

VdFuaSupport vd_bdrv_can_fua(VdBlockDriverState *bs) { return bs->drv->can_fua ? bs->drv->can_fua(bs) : VD_FUA_EMULATE; }
bool vd_bdrv_can_dsync(VdBlockDriverState *bs) { return bs->drv->can_dsync && bs->drv->can_dsync(bs); }
bool vd_bdrv_can_discard(VdBlockDriverState *bs)
{
    return bs->drv->discard && bs->drv->can_discard && bs->drv->can_discard(bs);
}
bool vd_bdrv_can_zero(VdBlockDriverState *bs)
{
    return bs->drv->write_zeroes && bs->drv->can_zero && bs->drv->can_zero(bs);
}
uint32_t vd_bdrv_request_alignment(VdBlockDriverState *bs)
{
    return bs->drv->request_alignment ? MAX(bs->drv->request_alignment(bs), 1u) : 1;
}
uint32_t vd_bdrv_mem_alignment(VdBlockDriverState *bs)
{
    return bs->drv->mem_alignment ? MAX(bs->drv->mem_alignment(bs), 1u) : 1;
}

int vd_bdrv_flush_to_os(VdBlockDriverState *bs, VdDriverReq *req)
{
    return bs->drv->flush_to_os ? bs->drv->flush_to_os(bs, req) : 0;
}

/* Run a child's data op; a child that prepares its host ops (file) gets its op prepared first. */
static int call_prepared(VdBlockDriverState *bs, VdHostOpKind kind, int (*fn)(VdBlockDriverState *, VdDriverReq *),
                         VdDriverReq *req)
{
    VdDriverReq r = *req;
    VdHostOp op;
    if (bs->drv->prepare) {
        int ret = bs->drv->prepare(bs, kind, req, &op);
        if (ret < 0) {
            return ret;
        }
        r.op = &op;
    }
    return fn(bs, &r);
}

int vd_bdrv_preadv(VdBlockDriverState *bs, VdDriverReq *req)
{
    return call_prepared(bs, VD_HOST_READ, bs->drv->preadv, req);
}

int vd_bdrv_pwritev(VdBlockDriverState *bs, VdDriverReq *req)
{
    return call_prepared(bs, VD_HOST_WRITE, bs->drv->pwritev, req);
}

int vd_bdrv_flush_to_disk(VdBlockDriverState *bs, VdDriverReq *req)
{
    return bs->drv->flush_to_disk ? call_prepared(bs, VD_HOST_FDATASYNC, bs->drv->flush_to_disk, req) : 0;
}

bool vd_bdrv_set_perm(VdBlockDriverState *bs, VdImagePerm perm, GError **errp)
{
    return !bs->drv->set_perm || bs->drv->set_perm(bs, perm, errp);
}

int vd_bdrv_discard(VdBlockDriverState *bs, VdDriverReq *req)
{
    return bs->drv->discard ? bs->drv->discard(bs, req) : -ENOTSUP;
}

int vd_bdrv_write_zeroes(VdBlockDriverState *bs, VdDriverReq *req)
{
    return bs->drv->write_zeroes ? bs->drv->write_zeroes(bs, req) : -ENOTSUP;
}
