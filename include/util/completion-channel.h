/*
 * completion-channel.h - finished work handed from any thread to the owner's
 * GMainContext.
 *
 * A worker (a thread pool's job, librbd's callback thread) pushes a finished
 * item; the channel queues it (a GAsyncQueue) and bumps an eventfd.  A
 * GSource on that eventfd, attached to the owner's context, wakes, reads the
 * eventfd once, and hands every queued item to the deliver function in push
 * order.  So deliver runs on the owner thread only, and never inside the
 * call that pushed (nor inside the call that submitted the work).
 *
 * Lock rules: vd_completion_channel_push may be called from any thread, the
 * owner's included.  new and free run on the owner thread; free only after
 * every pusher is gone (a joined thread pool, librados shut down) and every
 * item was delivered.
 */
#ifndef VD_UTIL_COMPLETION_CHANNEL_H
#define VD_UTIL_COMPLETION_CHANNEL_H

#include <gio/gio.h> /* GError domains: G_IO_ERROR */

typedef struct VdCompletionChannel VdCompletionChannel;

/* Called on the owner thread for each pushed item, in push order. */
typedef void VdCompletionDeliverFunc(void *opaque, void *item);

/* A channel whose items go to deliver(opaque, item) from ctx; NULL and errp ("eventfd: ...") on failure. */
VdCompletionChannel *vd_completion_channel_new(GMainContext *ctx, VdCompletionDeliverFunc *deliver, void *opaque,
                                               GError **errp);
/* Any thread: queue item for delivery and wake the owner's loop. */
void vd_completion_channel_push(VdCompletionChannel *ch, void *item);
/* Owner thread: detach from the context and free (NULL is a no-op); nothing may be pushed any more. */
void vd_completion_channel_free(VdCompletionChannel *ch);

#endif
