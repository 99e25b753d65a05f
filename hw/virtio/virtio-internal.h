/*
 * virtio-internal.h - state shared by the virtio core's two files
 * (virtio.c: device, status, config; virtqueue.c: split rings).
 * Not for device models or transports: they use include/hw/virtio.h.
 */
#ifndef VD_HW_VIRTIO_INTERNAL_H
#define VD_HW_VIRTIO_INTERNAL_H

#include "hw/virtio.h"

struct VdVirtQueue {
    VdVirtioDevice *vdev;
    unsigned index;
    unsigned num_max, num;
    uint64_t desc, avail, used;   /* guest addresses of the three ring parts */
    bool ready;
    uint16_t last_avail;          /* next avail ring slot the device reads */
    uint16_t used_idx;            /* next used ring slot the device writes */
    uint16_t signalled_used;      /* used_idx at the last interrupt decision */
    bool signalled_used_valid;
    bool push_pending;            /* pushed since the last notify */
    unsigned inuse;               /* popped and not yet pushed */
    bool throttled;               /* a pop was refused because inuse reached num */
    bool in_queue_notify;         /* the device's queue_notify is running for this queue */
    bool kick_again;              /* kicked while in_queue_notify: run queue_notify once more */
};

struct VdVirtioDevice {
    const VdVirtioDeviceOps *ops;
    void *opaque;
    VdVirtioTranslateFunc *translate;
    void *translate_opaque;
    const VdVirtioTransportOps *tops;
    void *topaque;
    uint64_t host_features, guest_features;
    uint8_t status;
    uint32_t generation;
    uint64_t epoch;               /* bumped on every reset; stale elements die */
    bool resetting;               /* status 0 written; the device still has requests in flight */
    bool broken;
    char *broken_reason;
    unsigned nq;
    VdVirtQueue *vqs;
    VdVirtioStats stats;
};

/* Copy between guest memory and a buffer through the translate hook. */
void *vd_virtio_map_piece(VdVirtioDevice *vdev, uint64_t gpa, uint64_t len, bool write, uint64_t *piece);
bool vd_virtio_guest_read(VdVirtioDevice *vdev, uint64_t gpa, void *buf, uint64_t len);
bool vd_virtio_guest_write(VdVirtioDevice *vdev, uint64_t gpa, const void *buf, uint64_t len);
/* Tell the transport the core wrote [offset, offset+len) of vq's used ring (its dirty log). */
void vd_virtq_used_written(VdVirtQueue *vq, uint64_t offset, uint64_t len);
/* Tell the transport to interrupt the driver (queue >= 0) or signal config change (-1). */
void vd_virtio_raise(VdVirtioDevice *vdev, int queue);
/* A pop was refused for the in-use limit and a slot is free again: run the queue once more. */
void vd_virtq_resume_throttled(VdVirtQueue *vq);
/* Run the device's queue_notify if the queue is live (never nested; see virtio.c). */
void vd_virtq_run(VdVirtQueue *vq);
/* Put a queue back to its power-on state. */
void vd_virtq_reset(VdVirtQueue *vq);

#endif
