/* broken-drivers.c - filters that break one durability promise each (see broken-drivers.h). */
#include "broken-drivers.h"

/* Open crashsim below us, over the protocol child of the options. */
static bool broken_open(VdBlockDriverState *bs, const VdDriverOpenOptions *o, GError **errp)
{
    return vd_bdrv_open_child(bs, &vd_driver_crashsim, o, errp);
}

/* Everything but the lie passes straight down to crashsim. */
static void broken_close(VdBlockDriverState *bs) { vd_bdrv_close_child(bs); }
static int64_t broken_get_length(VdBlockDriverState *bs) { return bs->child->drv->get_length(bs->child); }
static VdFuaSupport broken_can_fua(VdBlockDriverState *bs) { return vd_bdrv_can_fua(bs->child); }
static bool broken_can_dsync(VdBlockDriverState *bs) { return vd_bdrv_can_dsync(bs->child); }
static bool broken_can_discard(VdBlockDriverState *bs) { return vd_bdrv_can_discard(bs->child); }
static bool broken_can_zero(VdBlockDriverState *bs) { return vd_bdrv_can_zero(bs->child); }
static int broken_preadv(VdBlockDriverState *bs, VdDriverReq *req) { return bs->child->drv->preadv(bs->child, req); }
static int broken_discard(VdBlockDriverState *bs, VdDriverReq *req) { return vd_bdrv_discard(bs->child, req); }
static int broken_zeroes(VdBlockDriverState *bs, VdDriverReq *req) { return vd_bdrv_write_zeroes(bs->child, req); }
static int broken_flush_to_os(VdBlockDriverState *bs, VdDriverReq *req) { return vd_bdrv_flush_to_os(bs->child, req); }
static int broken_flush_ok(VdBlockDriverState *bs, VdDriverReq *req) { return vd_bdrv_flush_to_disk(bs->child, req); }
static int broken_pwritev_ok(VdBlockDriverState *bs, VdDriverReq *req) { return bs->child->drv->pwritev(bs->child, req); }

/* The lie of broken-fua: the write goes down without its durability flag. */
static int broken_pwritev_nofua(VdBlockDriverState *bs, VdDriverReq *req)
{
    VdDriverReq plain = *req;
    plain.flags &= ~(VD_DRV_FUA | VD_DRV_DSYNC);
    return bs->child->drv->pwritev(bs->child, &plain);
}

/* The lie of broken-flush: success, and nothing flushed. */
static int broken_flush_skip(VdBlockDriverState *bs, VdDriverReq *req) { return 0; }

#define BROKEN_DRIVER(NAME, PWRITEV, FLUSH) { \
    .name = NAME, .is_filter = true, .open = broken_open, .close = broken_close, \
    .get_length = broken_get_length, .can_fua = broken_can_fua, .can_dsync = broken_can_dsync, \
    .can_discard = broken_can_discard, .can_zero = broken_can_zero, .preadv = broken_preadv, \
    .pwritev = PWRITEV, .flush_to_os = broken_flush_to_os, .flush_to_disk = FLUSH, \
    .discard = broken_discard, .write_zeroes = broken_zeroes }

static const VdBlockDriver broken_fua = BROKEN_DRIVER("broken-fua", broken_pwritev_nofua, broken_flush_ok);
static const VdBlockDriver broken_flush = BROKEN_DRIVER("broken-flush", broken_pwritev_ok, broken_flush_skip);

void broken_drivers_register(void)
{
    static bool done;
    if (!done) {
        vd_block_register_driver(&broken_fua);
        vd_block_register_driver(&broken_flush);
        done = true;
    }
}
