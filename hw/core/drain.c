/* drain.c - a device's in-flight count and the callbacks waiting for it to reach zero. */
#include "hw/drain.h"

#include "block/block-backend.h"

/* One callback waiting for the count to reach zero. */
typedef struct VdDrainWaiter {
    VdDrainFunc *cb;
    void *opaque;
} VdDrainWaiter;

/* Count a request the device took. */
void vd_drain_inc(VdDrain *d)
{
    d->in_flight++;
}

/* Run every waiter registered so far (new ones registered by a callback wait for the next zero). */
static void run_waiters(VdDrain *d)
{
    GSList *list = g_slist_reverse(d->waiters);
    d->waiters = NULL;
    for (GSList *l = list; l; l = l->next) {
        VdDrainWaiter *w = l->data;
        w->cb(w->opaque);
        g_free(w);
    }
    g_slist_free(list);
}

/* A request was answered; wake the waiters when it was the last one. */
void vd_drain_dec(VdDrain *d)
{
    g_assert(d->in_flight > 0);
    if (--d->in_flight == 0) {
        run_waiters(d);
    }
}

/* Call cb once nothing is in flight; see drain.h. */
void vd_drain_wait(VdDrain *d, VdDrainFunc *cb, void *opaque)
{
    g_assert(!vd_blk_in_completion());
    if (d->in_flight == 0) {
        cb(opaque);
        return;
    }
    VdDrainWaiter *w = g_new(VdDrainWaiter, 1);
    *w = (VdDrainWaiter){ cb, opaque };
    d->waiters = g_slist_prepend(d->waiters, w);
}

/* Teardown: iterate ctx until every request is answered. */
void vd_drain_sync(VdDrain *d, GMainContext *ctx)
{
    g_assert(!vd_blk_in_completion());
    while (d->in_flight) {
        g_main_context_iteration(ctx, TRUE);
    }
}
