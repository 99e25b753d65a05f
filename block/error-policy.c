/*
 * error-policy.c - werror=/rerror=: the one decision of what a failed
 * request gets (docs/cache-modes.md, "Error policy"), and the stop notifiers.
 * The holding, queueing and retrying live in block-backend.c, which calls
 * vd_error_action for every request that failed after reaching the engine.
 *
 * Threading: owner thread only.
 */
#include "block-internal.h"

#include <errno.h>

VdErrorPolicy vd_error_action(VdErrorPolicy policy, int err, bool ignorable)
{
    g_assert(err < 0);
    switch (policy) {
    case VD_ERR_IGNORE:
        return ignorable ? VD_ERR_IGNORE : VD_ERR_REPORT;
    case VD_ERR_STOP:
        return VD_ERR_STOP;
    case VD_ERR_ENOSPC:
        return err == -ENOSPC ? VD_ERR_STOP : VD_ERR_REPORT;
    case VD_ERR_REPORT:
        break;
    }
    return VD_ERR_REPORT;
}

void vd_error_notify_stop(VdBlockBackend *blk, bool is_read, int err)
{
    for (guint i = 0; i < blk->stop_notifiers->len; i++) {
        VdStopNotifier *n = &g_array_index(blk->stop_notifiers, VdStopNotifier, i);
        n->fn(n->opaque, is_read, err);
    }
}

/* Subscribe to the backend's entry into the stopped state. */
void vd_blk_add_stop_notifier(VdBlockBackend *blk, VdStopNotifyFunc *fn, void *opaque)
{
    VdStopNotifier n = { .fn = fn, .opaque = opaque };
    g_array_append_val(blk->stop_notifiers, n);
}

/* Remove a subscription added with vd_blk_add_stop_notifier. */
void vd_blk_remove_stop_notifier(VdBlockBackend *blk, VdStopNotifyFunc *fn, void *opaque)
{
    for (guint i = 0; i < blk->stop_notifiers->len; i++) {
        VdStopNotifier *n = &g_array_index(blk->stop_notifiers, VdStopNotifier, i);
        if (n->fn == fn && n->opaque == opaque) {
            g_array_remove_index(blk->stop_notifiers, i);
            return;
        }
    }
    g_warn_if_reached();
}

VdErrorPolicy vd_blk_werror(VdBlockBackend *blk) { return blk->werror; }
VdErrorPolicy vd_blk_rerror(VdBlockBackend *blk) { return blk->rerror; }
bool vd_blk_is_stopped(VdBlockBackend *blk) { return blk->stopped; }
unsigned vd_blk_parked(VdBlockBackend *blk) { return blk->held.length + blk->stop_queue.length; }
