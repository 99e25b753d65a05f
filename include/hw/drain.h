/*
 * drain.h - the in-flight count of a device and the callbacks waiting for
 * it to reach zero.  Every device (virtio-blk, virtio-scsi, IDE) counts a
 * request from the moment it takes it from the guest until its completion
 * is written to guest memory (used ring, status byte, task file), so a
 * request whose backend I/O ended but whose answer is still queued counts
 * too.
 *
 * Rules:
 *  - vd_drain_wait never iterates a main loop: it runs cb at once when
 *    nothing is in flight, otherwise from the completion that ends the last
 *    request (cb must then not start another drain; defer work to the loop).
 *  - vd_drain_wait asserts it is not called from inside a completion
 *    callback (vd_blk_in_completion): a drain reached from a completion
 *    would wait for itself.
 *
 * Threading: owned by the device's thread.
 */
#ifndef VD_HW_DRAIN_H
#define VD_HW_DRAIN_H

#include <glib.h>
#include <stdbool.h>

/* Called once nothing of the device is in flight. */
typedef void VdDrainFunc(void *opaque);

typedef struct VdDrain {
    unsigned in_flight;      /* requests taken and not yet answered in guest memory */
    GSList *waiters;         /* VdDrainWaiter *, oldest last */
} VdDrain;

/* A request was taken from the guest. */
void vd_drain_inc(VdDrain *d);
/* A request's answer reached guest memory; at zero every waiter runs (oldest first). */
void vd_drain_dec(VdDrain *d);
/* Run cb(opaque) once in_flight is 0 (at once if it is 0 now). */
void vd_drain_wait(VdDrain *d, VdDrainFunc *cb, void *opaque);
/* Iterate ctx until in_flight is 0: only for teardown, never from a callback of ctx's sources. */
void vd_drain_sync(VdDrain *d, GMainContext *ctx);

#endif
