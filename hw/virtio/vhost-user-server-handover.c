/*
 * vhost-user-server-handover.c - the image hand-over of live migration,
 * tied to the vring life cycle (docs/vhost-user.md, "Live migration"):
 * the first ring to start takes the images (vd_blk_invalidate_cache: the
 * write lock, the host page cache dropped); once the last ring stopped
 * (GET_VRING_BASE, drained) or the front end left, they are given up
 * (vd_blk_inactivate: fdatasync, the write lock released).  The block
 * backend's active flag is the only state: an image already in the wanted
 * state is left alone.
 *
 * Both run from the loop, never inside a completion: after a drain
 * (GET_VRING_BASE, a disconnect) or from a message or kick handler.
 * vd_blk_inactivate waits for its flush by iterating the context; the
 * server reads no message and runs no kick meanwhile (they wait).
 *
 * Threading: the server's GMainContext.
 */
#include "vhost-user-server-internal.h"

#include "block/block-backend.h"

/* Add an image the hand-over moves; see vhost-user-server.h. */
void vd_vhost_user_server_add_image(VdVhostUserServer *s, VdBlockBackend *blk)
{
    g_ptr_array_add(s->images, blk);
}

/* Take every inactive image (the first ring starts); false (errp set) if one cannot be taken. */
bool vd_vhost_images_take(VdVhostUserServer *s, GError **errp)
{
    for (guint i = 0; i < s->images->len; i++) {
        VdBlockBackend *blk = s->images->pdata[i];
        if (vd_blk_is_active(blk)) {
            continue;
        }
        if (!vd_blk_invalidate_cache(blk, errp)) {
            return false;
        }
        s->stats.images_taken++;
        g_message("vhost-user: %s: image taken (active): a ring starts", vd_blk_filename(blk));
    }
    return true;
}

/* Give every active image up (no ring runs any more); a failed flush keeps it active and says so. */
void vd_vhost_images_release(VdVhostUserServer *s)
{
    for (guint i = 0; i < s->images->len; i++) {
        VdBlockBackend *blk = s->images->pdata[i];
        g_autoptr(GError) err = NULL;
        if (!vd_blk_is_active(blk)) {
            continue;
        }
        if (!vd_blk_inactivate(blk, &err)) {
            g_warning("vhost-user: the image stays active (the next owner cannot take it): %s", err->message);
            continue;
        }
        s->stats.images_released++;
        g_message("vhost-user: %s: image released (inactive): no ring runs", vd_blk_filename(blk));
    }
}
