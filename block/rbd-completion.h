/*
 * rbd-completion.h - librbd completions delivered into the owner's loop.
 *
 * librbd runs a completion's callback on one of its own threads.  The rbd
 * driver's callback only records the result and pushes the finished op onto
 * this channel (a GAsyncQueue plus an eventfd); a GSource on the eventfd,
 * attached to the owner's GMainContext, pops every finished op there and
 * hands it to the deliver function.  So the driver's completion callbacks
 * (and everything above them) run on the owner thread only, and never inside
 * the call that submitted the op.
 *
 * Lock rules: vd_rbd_completion_push may be called from any thread (librbd's
 * or the owner's); the channel is created and freed on the owner thread, and
 * freed only after librbd's threads are gone (rados_shutdown), so no push
 * can race with the free.
 */
#ifndef VD_RBD_COMPLETION_H
#define VD_RBD_COMPLETION_H

#include <glib.h>
#include <stdbool.h>

typedef struct VdRbdChannel VdRbdChannel;

/* Called on the owner thread for each pushed item, in push order. */
typedef void VdRbdDeliverFunc(void *item);

/* A channel whose items are delivered to deliver from ctx; NULL and errp on failure. */
VdRbdChannel *vd_rbd_channel_new(GMainContext *ctx, VdRbdDeliverFunc *deliver, GError **errp);
/* Any thread: queue item for delivery and wake the owner's loop. */
void vd_rbd_channel_push(VdRbdChannel *ch, void *item);
/* Owner thread: detach and free; nothing may be pushed any more. */
void vd_rbd_channel_free(VdRbdChannel *ch);

#endif
