/*
 * null.c - the "null" driver: a disk of size= bytes that reads zeroes and
 * forgets writes.  It makes no syscalls, so it measures the generic layer's
 * own overhead.  Every write is trivially durable: FUA is native and the
 * O_DSYNC policy is accepted.
 */
#include "block/block-driver.h"
#include "util/iov.h"

#include <string.h>

typedef struct NullState {
    uint64_t size;
} NullState;

static bool null_open(VdBlockDriverState *bs, const VdDriverOpenOptions *o, GError **errp)
{
    ((NullState *)bs->opaque)->size = o->size;
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
