/*
 * vmstate.h - the device-state contract of live migration: how a device
 * front end puts its guest-visible state in a migration stream section and
 * takes it back (docs/migration.md).
 *
 * Rules every device follows:
 *  - save runs only on a quiescent device: the machine has stopped every
 *    backend (vd_blk_stop) and waited until nothing but parked requests
 *    (vd_blk_parked: held by werror=stop, or queued while stopped) is in
 *    flight and every answer is in guest memory.  A device that cannot
 *    carry a parked request of its own fails save with a reason; the
 *    source then resumes as if nothing happened.
 *  - parse reads and checks the whole section (versions, ranges, that the
 *    configuration matches this device) and changes nothing; apply cannot
 *    fail.  So a destination is never half-loaded: every section of the
 *    stream is parsed before the first apply.
 *  - The write cache is the backend's (vd_blk_write_cache), and the stream
 *    carries it once per drive, in the drive's own section written by the
 *    machine; no device section repeats it.  It is applied before the
 *    device sections, so a device sees it as a change made by someone else
 *    and must, in apply, overwrite whatever that change did to its state
 *    (a SCSI unit attention, a virtio config generation).
 *  - apply runs after the destination activated the image
 *    (vd_blk_invalidate_cache), so re-issuing a request that travelled in
 *    the stream is allowed to write.
 *
 * Threading: the device's thread (its GMainContext), like every device call.
 */
#ifndef VD_HW_VMSTATE_H
#define VD_HW_VMSTATE_H

#include "util/mig-stream.h"

typedef struct VdDeviceStateOps {
    const char *kind;      /* section id prefix, e.g. "virtio-blk" */
    uint32_t version;      /* the section version save writes and parse accepts */
    /* Write the state of a quiescent device; false with a reason if it cannot. */
    bool (*save)(void *dev, VdMigWriter *w, GError **errp);
    /* Read and check the whole section; returns the parsed state, or NULL with one line naming the field. */
    void *(*parse)(void *dev, VdMigSection *sec, GError **errp);
    /* Make the device what the parsed state says (re-issuing any request it carries); frees state. */
    void (*apply)(void *dev, void *state);
    /* Drop a parsed state that will not be applied. */
    void (*free_state)(void *state);
} VdDeviceStateOps;

#endif
