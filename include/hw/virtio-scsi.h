/*
 * virtio-scsi.h - the virtio SCSI host adapter (virtio 1.2, 5.6) on the
 * virtio core, with SCSI disks (hw/scsi.h) as its logical units.
 *
 * Topology: one target (0) on channel 0; LUNs are added with
 * vd_virtio_scsi_add_lun, before or after the driver starts.  All commands
 * arrive on I_T nexus 0 of each disk (a virtio-scsi adapter is one initiator
 * port).
 *
 * Ownership: the caller owns the VdVirtioScsi (vd_virtio_scsi_new /
 * vd_virtio_scsi_free).  The adapter owns its VdVirtioDevice
 * (vd_virtio_scsi_device: borrowed, never freed by the caller) and the
 * VdScsiDisk of each LUN (vd_virtio_scsi_disk: borrowed).  The backends and
 * the bus are borrowed and must outlive the adapter.  Teardown: the
 * transport, then vd_virtio_scsi_free, then vd_blk_close of each backend,
 * then vd_bus_free.
 *
 * Threading: every function runs on the thread that owns the adapter's
 * GMainContext (conf->ctx or the bus's); disk completions arrive there.
 *
 * Guarantees:
 *  - Queues: 0 control, 1 event, 2.. requests (num_queues of them).
 *  - Offered features: HOTPLUG (a LUN added after DRIVER_OK is announced
 *    with a TRANSPORT_RESET/RESCAN event), CHANGE (a "parameters changed"
 *    unit attention, ASC 2Ah, is also sent as a PARAM_CHANGE event),
 *    RING_INDIRECT_DESC, RING_EVENT_IDX, VERSION_1.  INOUT and T10_PI are
 *    not offered.
 *  - Every request is checked before a disk sees it: a chain without room
 *    for the response (12 + sense_size bytes) is returned with len 0 and puts
 *    the device in NEEDS_RESET; a request header shorter than 19 + cdb_size
 *    bytes gets response FAILURE; lun[0] != 1 or a target other than 0 gets
 *    BAD_TARGET; a malformed LUN field or a LUN with no disk gets
 *    INCORRECT_LUN.  Everything else gets OK (with SCSI status and sense),
 *    OVERRUN, ABORTED or RESET.
 *  - Control queue: TMF ABORT TASK, ABORT TASK SET, CLEAR TASK SET,
 *    LOGICAL UNIT RESET, I_T NEXUS RESET (FUNCTION COMPLETE once the
 *    affected commands have completed), QUERY TASK / QUERY TASK SET
 *    (FUNCTION SUCCEEDED if found, else FUNCTION COMPLETE), CLEAR ACA and
 *    unknown subtypes FUNCTION REJECTED.  AN QUERY / SUBSCRIBE answer OK with
 *    event_actual 0: no asynchronous notification classes are supported.
 *    An unknown control type breaks the device (NEEDS_RESET): there is no
 *    response layout to answer with.
 *  - Event queue: events wait for a driver buffer; if more than
 *    VD_VIRTIO_SCSI_EVENTS_PENDING pile up, the next delivered event has
 *    VIRTIO_SCSI_T_EVENTS_MISSED set.
 *  - Device reset: in-flight commands are ended, each disk's write cache goes
 *    back to its power-on state and each disk reports POWER ON, RESET 29/00.
 *    The reset completes (status reads 0) from the drain callback, once
 *    every old command's I/O has ended: no DMA into guest memory after it.
 *  - Drain: a command or TMF counts as in flight from the moment it is
 *    popped until its response is written to guest memory, including the
 *    time it waits in the disk's completion queues (disk->done,
 *    disk->tmf_done) for the idle source.  vd_virtio_scsi_drain calls back
 *    when that count is 0; it never iterates a loop.
 */
#ifndef VD_HW_VIRTIO_SCSI_H
#define VD_HW_VIRTIO_SCSI_H

#include "block/block-backend.h"
#include "hw/drain.h"
#include "hw/scsi.h"
#include "hw/virtio.h"

#define VD_VIRTIO_ID_SCSI 8

/* Feature bits. */
#define VD_VIRTIO_SCSI_F_INOUT    0
#define VD_VIRTIO_SCSI_F_HOTPLUG  1
#define VD_VIRTIO_SCSI_F_CHANGE   2
#define VD_VIRTIO_SCSI_F_T10_PI   3

/* Response codes. */
#define VD_VIRTIO_SCSI_S_OK                 0
#define VD_VIRTIO_SCSI_S_FUNCTION_COMPLETE  0
#define VD_VIRTIO_SCSI_S_OVERRUN            1
#define VD_VIRTIO_SCSI_S_ABORTED            2
#define VD_VIRTIO_SCSI_S_BAD_TARGET         3
#define VD_VIRTIO_SCSI_S_RESET              4
#define VD_VIRTIO_SCSI_S_BUSY               5
#define VD_VIRTIO_SCSI_S_TRANSPORT_FAILURE  6
#define VD_VIRTIO_SCSI_S_TARGET_FAILURE     7
#define VD_VIRTIO_SCSI_S_NEXUS_FAILURE      8
#define VD_VIRTIO_SCSI_S_FAILURE            9
#define VD_VIRTIO_SCSI_S_FUNCTION_SUCCEEDED 10
#define VD_VIRTIO_SCSI_S_FUNCTION_REJECTED  11
#define VD_VIRTIO_SCSI_S_INCORRECT_LUN      12

/* Control queue request types and TMF subtypes. */
#define VD_VIRTIO_SCSI_T_TMF          0
#define VD_VIRTIO_SCSI_T_AN_QUERY     1
#define VD_VIRTIO_SCSI_T_AN_SUBSCRIBE 2
#define VD_VIRTIO_SCSI_T_TMF_ABORT_TASK         0
#define VD_VIRTIO_SCSI_T_TMF_ABORT_TASK_SET     1
#define VD_VIRTIO_SCSI_T_TMF_CLEAR_ACA          2
#define VD_VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET     3
#define VD_VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET    4
#define VD_VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET 5
#define VD_VIRTIO_SCSI_T_TMF_QUERY_TASK         6
#define VD_VIRTIO_SCSI_T_TMF_QUERY_TASK_SET     7

/* Events. */
#define VD_VIRTIO_SCSI_T_EVENTS_MISSED   0x80000000u
#define VD_VIRTIO_SCSI_T_NO_EVENT        0
#define VD_VIRTIO_SCSI_T_TRANSPORT_RESET 1
#define VD_VIRTIO_SCSI_T_ASYNC_NOTIFY    2
#define VD_VIRTIO_SCSI_T_PARAM_CHANGE    3
#define VD_VIRTIO_SCSI_EVT_RESET_HARD    0
#define VD_VIRTIO_SCSI_EVT_RESET_RESCAN  1
#define VD_VIRTIO_SCSI_EVT_RESET_REMOVED 2

/* Wire sizes. */
#define VD_VIRTIO_SCSI_REQ_HDR     19   /* lun[8] id task_attr prio crn, before the CDB */
#define VD_VIRTIO_SCSI_RESP_HDR    12   /* sense_len resid status_qualifier status response */
#define VD_VIRTIO_SCSI_TMF_REQ     24
#define VD_VIRTIO_SCSI_AN_REQ      16
#define VD_VIRTIO_SCSI_AN_RESP     5
#define VD_VIRTIO_SCSI_EVENT_SIZE  16
#define VD_VIRTIO_SCSI_CDB_DEFAULT   32
#define VD_VIRTIO_SCSI_SENSE_DEFAULT 96
#define VD_VIRTIO_SCSI_EVENTS_PENDING 16

/* Config space offsets (all little-endian). */
#define VD_VIRTIO_SCSI_CFG_NUM_QUEUES      0
#define VD_VIRTIO_SCSI_CFG_SEG_MAX         4
#define VD_VIRTIO_SCSI_CFG_MAX_SECTORS     8
#define VD_VIRTIO_SCSI_CFG_CMD_PER_LUN     12
#define VD_VIRTIO_SCSI_CFG_EVENT_INFO_SIZE 16
#define VD_VIRTIO_SCSI_CFG_SENSE_SIZE      20
#define VD_VIRTIO_SCSI_CFG_CDB_SIZE        24
#define VD_VIRTIO_SCSI_CFG_MAX_CHANNEL     28
#define VD_VIRTIO_SCSI_CFG_MAX_TARGET      30
#define VD_VIRTIO_SCSI_CFG_MAX_LUN         32
#define VD_VIRTIO_SCSI_CONFIG_SIZE         36

typedef struct VdVirtioScsi VdVirtioScsi;

typedef struct VdVirtioScsiConf {
    unsigned num_queues;    /* request queues, default 1 (1..16) */
    unsigned queue_size;    /* entries per queue (power of two), default 128 */
    GMainContext *ctx;      /* where the disks complete: NULL = the bus's context, or the
                               thread-default one without a bus (vhost-user: the backends' context) */
} VdVirtioScsiConf;

typedef struct VdVirtioScsiStats {
    uint64_t commands;      /* requests handed to a disk */
    uint64_t bad_target, incorrect_lun, failure, overrun, aborted, reset;
    uint64_t tmfs, an_requests, events, events_missed, bad_layout;
} VdVirtioScsiStats;

/*
 * Create the adapter with no LUNs.  bus (may be NULL when the caller sets a
 * translate hook on the VdVirtioDevice, as a vhost-user server does) provides
 * guest memory.  Bind a transport to vd_virtio_scsi_device() next.
 */
VdVirtioScsi *vd_virtio_scsi_new(const VdVirtioScsiConf *conf, VdBus *bus, GError **errp);
/* Reset the device, wait for every command, free the disks and the adapter (backends stay open). */
void vd_virtio_scsi_free(VdVirtioScsi *s);
/* The virtio device, borrowed: valid until vd_virtio_scsi_free, which frees it. */
VdVirtioDevice *vd_virtio_scsi_device(VdVirtioScsi *s);
/*
 * Add a SCSI disk on blk (not owned) as LUN lun of target 0.  If the driver
 * is running and negotiated HOTPLUG, a rescan event announces it.
 */
bool vd_virtio_scsi_add_lun(VdVirtioScsi *s, VdBlockBackend *blk, unsigned lun, const char *serial,
                            GError **errp);
VdScsiDisk *vd_virtio_scsi_disk(VdVirtioScsi *s, unsigned lun);
/* Commands and TMFs taken whose response is not yet in guest memory. */
unsigned vd_virtio_scsi_in_flight(VdVirtioScsi *s);
/*
 * Call cb(opaque) once vd_virtio_scsi_in_flight is 0: at once if it is 0
 * now, otherwise from the delivery of the last response (cb must not drain
 * again; schedule work instead).  Asserts it is not called from a
 * completion callback.
 */
void vd_virtio_scsi_drain(VdVirtioScsi *s, VdDrainFunc *cb, void *opaque);
unsigned vd_virtio_scsi_lun_count(VdVirtioScsi *s);
void vd_virtio_scsi_get_stats(VdVirtioScsi *s, VdVirtioScsiStats *out);
/* Print the counters as "key=value" pairs, space separated. */
void vd_virtio_scsi_format_stats(VdVirtioScsi *s, GString *out);

/*
 * Migration (hw/vmstate.h; dev is a VdVirtioScsi): the virtio core's state,
 * the queue configuration (which must match), the driver-written
 * sense_size and cdb_size, events waiting for a buffer, each LUN's disk
 * state (vd_scsi_disk_save), then every command parked by werror=stop, by
 * queue and head: the destination takes each chain back from guest RAM and
 * submits it again.  Mode-page WCE is the backend's and travels in the
 * drive's section.  A task management function in flight refuses to save.
 */
extern const VdDeviceStateOps vd_virtio_scsi_state_ops;

#endif
