/*
 * virtio.h - the transport-independent virtio core: a device object with
 * feature negotiation, the device status state machine, config space with a
 * generation counter, and split virtqueues (indirect descriptors, EVENT_IDX).
 *
 * Who uses it:
 *  - a device model (virtio-blk, virtio-scsi) supplies a VdVirtioDeviceOps
 *    table and pops/pushes VdVirtqElem from its queue_notify handler;
 *  - a transport (virtio-mmio, or a vhost-user server) forwards the
 *    driver's register writes to the vd_virtio_* setters and delivers the
 *    notifications the core asks for through VdVirtioTransportOps.
 *
 * Ownership:
 *  - A VdVirtioDevice belongs to the device model that created it with
 *    vd_virtio_device_new, and only that model frees it, from its own free
 *    function (vd_virtio_blk_free, vd_virtio_scsi_free).  A VMM only ever
 *    borrows one (vd_virtio_blk_device, vd_virtio_scsi_device) to bind a
 *    transport: it never calls vd_virtio_device_free, and the pointer dies
 *    with the model.
 *  - A transport (VdVirtioMmio, a vhost-user server) borrows the device and
 *    must be freed before it.  The VdBus (or the translate hook's opaque)
 *    must outlive the device.
 *  - A VdVirtqElem from vd_virtq_pop belongs to the device model until it
 *    frees it with vd_virtq_elem_free, after vd_virtq_push (or after finding
 *    it stale).  Its iovecs point into guest memory, owned by the VMM.
 *
 * Guarantees:
 *  - Guest memory is touched only through the device's translate hook
 *    (default: vd_dma_map on the VdBus given to vd_virtio_device_new), so a
 *    device never reads or writes outside what the hook maps.
 *  - Every descriptor chain is validated before the device sees it: loops,
 *    chain length > queue size, indirect tables (len a multiple of 16, at
 *    most queue-size entries, no nested INDIRECT, NEXT inside the table),
 *    device-writable descriptors after readable ones, addresses outside
 *    guest memory, and an avail idx more than queue size ahead.  A violation
 *    returns the offending head (if any) in the used ring with len 0, sets
 *    VD_VIRTIO_STATUS_NEEDS_RESET, sends a config-change notification and
 *    stops the device's queues until the driver resets it.  Nothing crashes
 *    and no request is left without an answer.
 *  - Elements popped before a reset are dead after it: vd_virtq_push of such
 *    an element is a no-op (returns false), so late backend completions never
 *    write into a ring the driver has since reconfigured.
 *  - A reset (status 0 written) finishes from a callback: the queues stop
 *    and old elements die at once, but the status register keeps its value
 *    until the device has nothing in flight and calls vd_virtio_reset_done
 *    (virtio 1.2, 2.4.1: the driver waits for status to read back 0).  No
 *    backend I/O of an old request touches guest memory after status reads
 *    0, and no main loop is iterated inside the register write.
 *  - Feature bits the driver sets that the device did not offer make
 *    FEATURES_OK fail (it reads back clear); VERSION_1 is required.
 *  - The config generation counter changes whenever the device changes its
 *    config space (vd_virtio_config_changed).
 *
 * For a transport without registers (a vhost-user server): set the
 * translate hook and the transport ops, call vd_virtio_set_guest_features
 * and vd_virtio_set_status(ACKNOWLEDGE|DRIVER|FEATURES_OK) on SET_FEATURES,
 * configure each ring with vd_virtq_set_size/set_addr (addresses in the
 * space the translate hook maps), vd_virtq_set_last_avail +
 * vd_virtq_sync_used_idx on SET_VRING_BASE, vd_virtq_set_ready, then set
 * DRIVER_OK and forward kicks with vd_virtio_queue_kick.  Queues are only
 * processed while DRIVER_OK is set and the device is not broken.
 *
 * Threading: one device belongs to one GMainContext thread; every function
 * here, every hook and every register access a transport forwards runs on
 * it (a VMM whose vCPUs run on other threads hands their exits to that
 * thread).  Ring accesses use the memory barriers the spec asks for, so a
 * driver on another CPU (KVM vCPU, vhost-user front end) sees a consistent
 * ring.
 */
#ifndef VD_HW_VIRTIO_H
#define VD_HW_VIRTIO_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "hw/bus.h"
#include "hw/vmstate.h"
#include "util/iov.h"   /* vd_iov_to_buf / vd_iov_from_buf for every device's element copies */

/* Device status bits (virtio 1.2, 2.1). */
#define VD_VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VD_VIRTIO_STATUS_DRIVER      0x02
#define VD_VIRTIO_STATUS_DRIVER_OK   0x04
#define VD_VIRTIO_STATUS_FEATURES_OK 0x08
#define VD_VIRTIO_STATUS_NEEDS_RESET 0x40
#define VD_VIRTIO_STATUS_FAILED      0x80

/* Reserved (transport/ring) feature bits. */
#define VD_VIRTIO_F_RING_INDIRECT_DESC 28
#define VD_VIRTIO_F_RING_EVENT_IDX     29
#define VD_VIRTIO_F_VERSION_1          32
#define VD_VIRTIO_F_ACCESS_PLATFORM    33
#define VD_VIRTIO_F_RING_PACKED        34
#define VD_VIRTIO_BIT(b) (1ull << (b))
/* What the core implements; devices normally offer all of it. */
#define VD_VIRTIO_CORE_FEATURES (VD_VIRTIO_BIT(VD_VIRTIO_F_RING_INDIRECT_DESC) | \
                                 VD_VIRTIO_BIT(VD_VIRTIO_F_RING_EVENT_IDX) | \
                                 VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1))

/* Split-ring layout constants. */
#define VD_VRING_DESC_F_NEXT       1
#define VD_VRING_DESC_F_WRITE      2
#define VD_VRING_DESC_F_INDIRECT   4
#define VD_VRING_AVAIL_F_NO_INTERRUPT 1
#define VD_VRING_USED_F_NO_NOTIFY  1
#define VD_VIRTQ_MAX_SIZE          32768

/* Interrupt causes (the virtio-mmio InterruptStatus bits). */
#define VD_VIRTIO_ISR_QUEUE  1
#define VD_VIRTIO_ISR_CONFIG 2

/* Largest device config space the core supports. */
#define VD_VIRTIO_CONFIG_MAX 256

typedef struct VdVirtioDevice VdVirtioDevice;
typedef struct VdVirtQueue VdVirtQueue;

/*
 * One request popped from a virtqueue.  out_sg: the device-readable buffers
 * (driver -> device), in_sg: the device-writable ones (device -> driver);
 * each iovec points straight into guest memory and stays valid while the
 * guest memory mapping does.  A device may embed this struct as the FIRST
 * member of a larger request struct (see vd_virtq_pop).
 */
typedef struct VdVirtqElem {
    unsigned index;           /* head descriptor index, returned in the used ring */
    unsigned out_num, in_num; /* number of iovecs in out_sg / in_sg */
    struct iovec *out_sg;     /* device-readable buffers */
    struct iovec *in_sg;      /* device-writable buffers */
    uint64_t out_len, in_len; /* total bytes in out_sg / in_sg */
    VdVirtQueue *vq;          /* the queue it came from */
    uint64_t epoch;           /* private: the device reset epoch at pop time */
} VdVirtqElem;

/*
 * Address translation: return a host pointer for guest address gpa covering
 * at most *len bytes, and shrink *len to the contiguous length actually
 * mapped (> 0), or return NULL if gpa is not in guest memory.  write says
 * whether the device will write there.  The core asks again for the rest
 * of a range when *len comes back shorter.
 */
typedef void *VdVirtioTranslateFunc(void *opaque, uint64_t gpa, uint64_t *len, bool write);

/* What a device model implements.  Every hook runs on the device's thread. */
typedef struct VdVirtioDeviceOps {
    const char *name;          /* "virtio-blk" */
    uint16_t device_id;        /* 2 block, 8 scsi */
    uint32_t config_size;      /* bytes of device config space (<= VD_VIRTIO_CONFIG_MAX) */
    /* Feature bits the device offers (include VD_VIRTIO_CORE_FEATURES as wanted). */
    uint64_t (*get_features)(VdVirtioDevice *vdev);
    /*
     * The driver set FEATURES_OK with `features` (already checked to be a
     * subset of the offer that includes VERSION_1).  Return false to refuse;
     * FEATURES_OK then reads back clear.  Optional.
     */
    bool (*set_features)(VdVirtioDevice *vdev, uint64_t features);
    /* Fill config_size bytes of config space (little-endian fields). */
    void (*get_config)(VdVirtioDevice *vdev, uint8_t *config);
    /* The driver wrote len bytes at offset (in range); ignore read-only fields. Optional. */
    void (*config_write)(VdVirtioDevice *vdev, uint32_t offset, const uint8_t *buf, uint32_t len);
    /* The driver set DRIVER_OK.  Optional. */
    void (*driver_ok)(VdVirtioDevice *vdev);
    /* The driver notified queue vq (which is ready and the device is not broken). */
    void (*queue_notify)(VdVirtioDevice *vdev, VdVirtQueue *vq);
    /*
     * A reset started (status 0 written; the queues are already stopped and
     * every popped element is stale).  Once nothing of the device is in
     * flight, restore power-on device state and call vd_virtio_reset_done
     * (before returning if nothing is in flight now).  Optional: without it
     * the reset finishes at once.
     */
    void (*reset)(VdVirtioDevice *vdev);
} VdVirtioDeviceOps;

/* What a transport implements. */
typedef struct VdVirtioTransportOps {
    /* Interrupt the driver: queue >= 0 for a used-buffer notification, -1 for config change. */
    void (*notify)(void *opaque, int queue);
    /*
     * Optional, for a dirty log (vhost-user live migration).  Called after
     * the bytes are in guest memory.  used_written: the core wrote bytes
     * [offset, offset+len) of queue's used ring (an entry, used idx,
     * avail_event).  buffer_written: an element is being answered, and the
     * device may have written any of its device-writable buffers (in_sg,
     * host addresses as the translate hook returned them).
     */
    void (*used_written)(void *opaque, unsigned queue, uint64_t offset, uint64_t len);
    void (*buffer_written)(void *opaque, const struct iovec *iov, unsigned n);
} VdVirtioTransportOps;

/*
 * Create a device with num_queues virtqueues of at most queue_max entries
 * (a power of two <= VD_VIRTQ_MAX_SIZE).  bus, if not NULL, provides the
 * default translate hook (vd_dma_map); otherwise call vd_virtio_set_translate
 * before the driver starts.  opaque is the device model's state.
 */
VdVirtioDevice *vd_virtio_device_new(const VdVirtioDeviceOps *ops, void *opaque, unsigned num_queues,
                                     unsigned queue_max, VdBus *bus, GError **errp);
/*
 * Free a device.  Only for the device model that created it, from its own
 * free function; never on a device obtained from vd_virtio_blk_device or
 * vd_virtio_scsi_device (vd_virtio_blk_free already frees that one).
 */
void vd_virtio_device_free(VdVirtioDevice *vdev);
void *vd_virtio_device_opaque(VdVirtioDevice *vdev);
const VdVirtioDeviceOps *vd_virtio_device_ops(VdVirtioDevice *vdev);
void vd_virtio_set_translate(VdVirtioDevice *vdev, VdVirtioTranslateFunc *fn, void *opaque);
void vd_virtio_set_transport(VdVirtioDevice *vdev, const VdVirtioTransportOps *ops, void *opaque);

/* --- the driver-facing state (called by transports) --- */
uint64_t vd_virtio_host_features(VdVirtioDevice *vdev);
uint64_t vd_virtio_guest_features(VdVirtioDevice *vdev);
/* Set the driver's feature bits; ignored once FEATURES_OK is set. */
void vd_virtio_set_guest_features(VdVirtioDevice *vdev, uint64_t features);
bool vd_virtio_has_feature(VdVirtioDevice *vdev, unsigned bit);
uint8_t vd_virtio_get_status(VdVirtioDevice *vdev);
/* Write the status register: 0 resets; FEATURES_OK negotiates; DRIVER_OK starts. */
void vd_virtio_set_status(VdVirtioDevice *vdev, uint8_t status);
/* Start a device reset; it finishes when the device calls vd_virtio_reset_done. */
void vd_virtio_reset(VdVirtioDevice *vdev);
/* Called by the device (from its drain callback): the reset is complete, status reads 0. */
void vd_virtio_reset_done(VdVirtioDevice *vdev);
/* True while a reset waits for the device's requests in flight. */
bool vd_virtio_resetting(VdVirtioDevice *vdev);
uint32_t vd_virtio_config_generation(VdVirtioDevice *vdev);
uint32_t vd_virtio_config_size(VdVirtioDevice *vdev);
/* Read/write device config space; out-of-range bytes read 0 and writes are dropped. */
void vd_virtio_config_read(VdVirtioDevice *vdev, uint32_t offset, void *buf, uint32_t len);
void vd_virtio_config_write(VdVirtioDevice *vdev, uint32_t offset, const void *buf, uint32_t len);

/* Per-queue configuration.  Setters are ignored while the queue is ready. */
unsigned vd_virtio_num_queues(VdVirtioDevice *vdev);
VdVirtQueue *vd_virtio_queue(VdVirtioDevice *vdev, unsigned index);
unsigned vd_virtq_index(VdVirtQueue *vq);
unsigned vd_virtq_size_max(VdVirtQueue *vq);
unsigned vd_virtq_size(VdVirtQueue *vq);
void vd_virtq_set_size(VdVirtQueue *vq, unsigned num);
/* A transport whose front end picks the ring (vhost-user) raises the largest size the queue takes. */
void vd_virtq_set_size_max(VdVirtQueue *vq, unsigned num_max);
void vd_virtq_set_addr(VdVirtQueue *vq, uint64_t desc, uint64_t avail, uint64_t used);
void vd_virtq_get_addr(VdVirtQueue *vq, uint64_t *desc, uint64_t *avail, uint64_t *used);
/*
 * Enable or disable a queue.  Enabling checks the size (power of two,
 * 1..max) and ring alignment and that the rings are in guest memory;
 * false (queue stays disabled) if not.
 */
bool vd_virtq_set_ready(VdVirtQueue *vq, bool ready);
bool vd_virtq_ready(VdVirtQueue *vq);
/* For vhost-user GET/SET_VRING_BASE: the next avail index the device will read. */
uint16_t vd_virtq_last_avail(VdVirtQueue *vq);
void vd_virtq_set_last_avail(VdVirtQueue *vq, uint16_t idx);
/* vhost-user: take the used idx from the used ring in guest memory (false if unmapped). */
bool vd_virtq_sync_used_idx(VdVirtQueue *vq);
/* The driver kicked queue index: runs the device's queue_notify if the queue is live. */
void vd_virtio_queue_kick(VdVirtioDevice *vdev, unsigned index);

/* --- the device-facing API (called by device models) --- */
/*
 * Take the next available request, or NULL if none (or the device is
 * broken, or queue-size elements are already popped and not pushed: a
 * correct driver never has more outstanding, so every popped element must
 * eventually be pushed; the first vd_virtq_notify after a push that frees a
 * slot runs queue_notify again, so the device need not track this).
 * elem_size >= sizeof(VdVirtqElem): the returned block is that big (zeroed beyond the element), so a device can embed VdVirtqElem first
 * in its request struct.  Free it with vd_virtq_elem_free.
 */
void *vd_virtq_pop(VdVirtQueue *vq, size_t elem_size);
/* Return a request with `written` bytes written to in_sg; false if it is stale (reset since pop). */
bool vd_virtq_push(VdVirtqElem *elem, uint32_t written);
/* Elements popped and not yet pushed (reset to 0 by a device reset). */
unsigned vd_virtq_inuse(VdVirtQueue *vq);
/* Interrupt the driver if it wants to hear about used buffers pushed since the last notify. */
void vd_virtq_notify(VdVirtQueue *vq);
void vd_virtq_elem_free(void *elem);
VdVirtioDevice *vd_virtq_device(VdVirtQueue *vq);
/* True if the element was popped before the latest device reset. */
bool vd_virtq_elem_stale(const VdVirtqElem *elem);

/* Mark the device broken: NEEDS_RESET + config notification; queues stop. */
void vd_virtio_set_needs_reset(VdVirtioDevice *vdev, const char *why);
bool vd_virtio_broken(VdVirtioDevice *vdev);
/* The device changed its config space: bump the generation and notify. */
void vd_virtio_config_changed(VdVirtioDevice *vdev);

/* Counters a test or the harness can read. */
typedef struct VdVirtioStats {
    uint64_t kicks, popped, pushed, interrupts, interrupts_suppressed, chain_errors, resets;
} VdVirtioStats;
void vd_virtio_get_stats(VdVirtioDevice *vdev, VdVirtioStats *out);
/* The reason given to the last vd_virtio_set_needs_reset, or NULL. */
const char *vd_virtio_broken_reason(VdVirtioDevice *vdev);

/*
 * Migration (hw/vmstate.h; hw/virtio/virtio-state.c).  A device model puts
 * the core's state first in its own section: features, status, config
 * generation, NEEDS_RESET, and per queue its size, ring addresses, ready,
 * last avail idx, used idx and interrupt-suppression state.  parse checks
 * it against this device (offered features, queue count, sizes, rings
 * inside guest memory) and changes nothing; apply cannot fail.  Requests
 * the device had popped and not answered are the model's to carry: on the
 * destination it takes each one back by its head (vd_virtq_pop_head).
 */
typedef struct VdVirtioState VdVirtioState;
void vd_virtio_save(VdVirtioDevice *vdev, VdMigWriter *w);
VdVirtioState *vd_virtio_parse(VdVirtioDevice *vdev, VdMigSection *sec, GError **errp);
/* Apply a parsed state (frees it); the queues hold no popped element afterwards. */
void vd_virtio_apply(VdVirtioDevice *vdev, VdVirtioState *st);
void vd_virtio_state_free(VdVirtioState *st);
/*
 * Take again the chain at head, popped on the migration source and not
 * answered there (the avail index is already past it).  NULL, with the
 * device broken as for any bad chain, if the chain is invalid.
 */
void *vd_virtq_pop_head(VdVirtQueue *vq, unsigned head, size_t elem_size);
/* True if a queue of num entries at these addresses would pass vd_virtq_set_ready's checks. */
bool vd_virtq_layout_ok(VdVirtQueue *vq, unsigned num, uint64_t desc, uint64_t avail, uint64_t used);

#endif
