/*
 * virtio-blk.h - the virtio block device (virtio 1.2, 5.2) on top of the
 * virtio core and one VdBlockBackend.
 *
 * Ownership: the caller owns the VdVirtioBlk (vd_virtio_blk_new /
 * vd_virtio_blk_free).  The VdVirtioDevice inside it (vd_virtio_blk_device)
 * belongs to the VdVirtioBlk: bind a transport to it, never free it;
 * vd_virtio_blk_free frees it.  The backend and the bus are borrowed and
 * must outlive the device.  Teardown: the transport (vd_virtio_mmio_free),
 * then vd_virtio_blk_free, then vd_blk_close, then vd_bus_free.
 *
 * Threading: every function runs on the thread that owns the backend's
 * GMainContext (the same context as the bus); completions arrive there.
 *
 * Guarantees:
 *  - Offered features: SIZE_MAX, SEG_MAX, BLK_SIZE, FLUSH, TOPOLOGY,
 *    CONFIG_WCE, MQ, RING_INDIRECT_DESC, RING_EVENT_IDX, VERSION_1; RO for a
 *    read-only backend, DISCARD and WRITE_ZEROES otherwise.
 *  - Every request gets exactly one status: OK, IOERR (bad range, bad
 *    layout, write to a read-only drive, backend error) or UNSUPP (unknown
 *    type, a type whose feature was not negotiated, unknown or forbidden
 *    DISCARD/WRITE_ZEROES flags).  A chain without room for the header or
 *    the status byte is answered with len 0 and puts the device in
 *    NEEDS_RESET (there is nowhere to put a status).
 *  - Write cache, exactly as virtio 1.2 5.2.6 says.  The backend owns it
 *    (vd_blk_write_cache); the device keeps no copy:
 *      * the writeback byte (config offset 32) reads the backend's state,
 *        0 or 1; a driver that negotiated CONFIG_WCE may write 0 or 1
 *        there, which sets the backend write cache (1->0 flushes first);
 *        any other value is ignored (the byte keeps its value); writes
 *        without CONFIG_WCE are ignored;
 *      * a change made by anyone else (the host, migration, the control
 *        socket) bumps the config generation and raises a configuration
 *        change interrupt once DRIVER_OK (wce_host_changes counts them);
 *      * a config write has no status: when the flush of a 1->0 change
 *        fails, wce_flush_errors counts it and the backend's sticky error
 *        fails every later FLUSH and durable write with IOERR;
 *      * at FEATURES_OK, a driver with neither FLUSH nor CONFIG_WCE gets
 *        writethrough (backend write cache off); with FLUSH but no
 *        CONFIG_WCE the drive keeps its configured mode (the driver treats
 *        it as writeback and flushes);
 *      * a device reset drains in-flight I/O and restores
 *        vd_blk_default_write_cache().
 *  - Adjacent sequential IN or OUT requests taken from one notification
 *    are merged into one host I/O (counted in merged_requests); a FLUSH or
 *    any other request type ends a merge run.  A request without data
 *    (header and status only) is never merged.
 *  - Drain and reset: a request counts as in flight from the moment it is
 *    popped until its status byte and used entry are written (or, after a
 *    reset, until its backend I/O ended).  vd_virtio_blk_drain calls back
 *    when that count is 0; a device reset completes from that callback, so
 *    the status register reads non-zero until the last old request's I/O
 *    ended (virtio 1.2, 2.4.1), and no loop is iterated in the reset.
 */
#ifndef VD_HW_VIRTIO_BLK_H
#define VD_HW_VIRTIO_BLK_H

#include "block/block-backend.h"
#include "hw/drain.h"
#include "hw/virtio.h"

#define VD_VIRTIO_ID_BLOCK 2

/* Feature bits. */
#define VD_VIRTIO_BLK_F_SIZE_MAX     1
#define VD_VIRTIO_BLK_F_SEG_MAX      2
#define VD_VIRTIO_BLK_F_GEOMETRY     4
#define VD_VIRTIO_BLK_F_RO           5
#define VD_VIRTIO_BLK_F_BLK_SIZE     6
#define VD_VIRTIO_BLK_F_FLUSH        9
#define VD_VIRTIO_BLK_F_TOPOLOGY     10
#define VD_VIRTIO_BLK_F_CONFIG_WCE   11
#define VD_VIRTIO_BLK_F_MQ           12
#define VD_VIRTIO_BLK_F_DISCARD      13
#define VD_VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types. */
#define VD_VIRTIO_BLK_T_IN           0
#define VD_VIRTIO_BLK_T_OUT          1
#define VD_VIRTIO_BLK_T_FLUSH        4
#define VD_VIRTIO_BLK_T_GET_ID       8
#define VD_VIRTIO_BLK_T_DISCARD      11
#define VD_VIRTIO_BLK_T_WRITE_ZEROES 13
#define VD_VIRTIO_BLK_T_SECURE_ERASE 14

/* Status byte values. */
#define VD_VIRTIO_BLK_S_OK     0
#define VD_VIRTIO_BLK_S_IOERR  1
#define VD_VIRTIO_BLK_S_UNSUPP 2

/* DISCARD / WRITE_ZEROES segment flags. */
#define VD_VIRTIO_BLK_WZ_F_UNMAP 1

/* Config space offsets. */
#define VD_VIRTIO_BLK_CFG_CAPACITY        0
#define VD_VIRTIO_BLK_CFG_SIZE_MAX        8
#define VD_VIRTIO_BLK_CFG_SEG_MAX         12
#define VD_VIRTIO_BLK_CFG_BLK_SIZE        20
#define VD_VIRTIO_BLK_CFG_PHYS_BLOCK_EXP  24
#define VD_VIRTIO_BLK_CFG_ALIGN_OFFSET    25
#define VD_VIRTIO_BLK_CFG_MIN_IO_SIZE     26
#define VD_VIRTIO_BLK_CFG_OPT_IO_SIZE     28
#define VD_VIRTIO_BLK_CFG_WRITEBACK       32
#define VD_VIRTIO_BLK_CFG_NUM_QUEUES      34
#define VD_VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS 36
#define VD_VIRTIO_BLK_CFG_MAX_DISCARD_SEG 40
#define VD_VIRTIO_BLK_CFG_DISCARD_ALIGN   44
#define VD_VIRTIO_BLK_CFG_MAX_WZ_SECTORS  48
#define VD_VIRTIO_BLK_CFG_MAX_WZ_SEG      52
#define VD_VIRTIO_BLK_CFG_WZ_MAY_UNMAP    56
#define VD_VIRTIO_BLK_CONFIG_SIZE         60

#define VD_VIRTIO_BLK_ID_BYTES 20
#define VD_VIRTIO_BLK_SECTOR   512

/* The limits the device advertises and enforces. */
#define VD_VIRTIO_BLK_SIZE_MAX        (1u << 20)   /* bytes per data segment */
#define VD_VIRTIO_BLK_MAX_DWZ_SECTORS (1u << 22)   /* per DISCARD/WRITE_ZEROES segment */
#define VD_VIRTIO_BLK_MAX_DWZ_SEG     32

typedef struct VdVirtioBlk VdVirtioBlk;

typedef struct VdVirtioBlkConf {
    const char *serial;     /* GET_ID string (first 20 bytes); NULL: vd_blk_unique_id() */
    unsigned num_queues;    /* request queues, default 1 */
    unsigned queue_size;    /* entries per queue (power of two), default 256 */
    bool no_merge;          /* disable request merging */
} VdVirtioBlkConf;

typedef struct VdVirtioBlkStats {
    uint64_t in, out, flush, get_id, discard, write_zeroes; /* requests by type */
    uint64_t ok, ioerr, unsupp;                             /* statuses given */
    uint64_t merged_requests;     /* requests that rode along in another's host I/O */
    uint64_t merged_ios;          /* host I/Os that carried more than one request */
    uint64_t wce_changes;         /* guest writes to writeback that changed it */
    uint64_t wce_writes_ignored;  /* guest writes to writeback ignored (bad value, no CONFIG_WCE, 1 if write-through only) */
    uint64_t wce_host_changes;    /* write-cache changes made by others: config interrupts */
    uint64_t wce_flush_errors;    /* 1->0 changes of this device whose flush failed */
    uint64_t bad_layout;          /* chains without header or status: NEEDS_RESET */
} VdVirtioBlkStats;

/*
 * Create a virtio-blk device on blk (not owned).  bus provides the default
 * guest-memory translation (may be NULL if the caller sets one on the
 * VdVirtioDevice).  Bind a transport to vd_virtio_blk_device() next.
 */
VdVirtioBlk *vd_virtio_blk_new(VdBlockBackend *blk, const VdVirtioBlkConf *conf, VdBus *bus, GError **errp);
/*
 * Reset the device, drain the backend, stop listening to it and free the
 * VdVirtioBlk together with its VdVirtioDevice (the backend stays open).
 * Free the transport first.
 */
void vd_virtio_blk_free(VdVirtioBlk *s);
/* Requests popped whose answer is not yet in guest memory (stale ones until their I/O ends). */
unsigned vd_virtio_blk_in_flight(VdVirtioBlk *s);
/*
 * Call cb(opaque) once vd_virtio_blk_in_flight is 0: at once if it is 0
 * now, otherwise from the completion of the last request (so cb must only
 * finish state changes or schedule work; it must not drain again).  Never
 * iterates a loop.  Asserts it is not called from a completion callback.
 */
void vd_virtio_blk_drain(VdVirtioBlk *s, VdDrainFunc *cb, void *opaque);
/* The virtio device, borrowed: valid until vd_virtio_blk_free, which frees it. */
VdVirtioDevice *vd_virtio_blk_device(VdVirtioBlk *s);
VdBlockBackend *vd_virtio_blk_backend(VdVirtioBlk *s);
/* The guest-visible writeback state (what config byte 32 reads): the backend's. */
bool vd_virtio_blk_writeback(VdVirtioBlk *s);
void vd_virtio_blk_get_stats(VdVirtioBlk *s, VdVirtioBlkStats *out);
/* Print the counters as "key=value" pairs, space separated. */
void vd_virtio_blk_format_stats(VdVirtioBlk *s, GString *out);

/*
 * Migration (hw/vmstate.h; dev is a VdVirtioBlk): the virtio core's state,
 * the queue configuration (which must match on the destination) and every
 * request still popped when the machine was quiesced, i.e. parked in the
 * backend by werror=stop or queued while stopped, by queue and head.  The
 * destination takes those chains back from guest RAM and issues them again,
 * in their original order.  The writeback byte is the backend's and
 * travels once, in the drive's section.
 */
extern const VdDeviceStateOps vd_virtio_blk_state_ops;

#endif
