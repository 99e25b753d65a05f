/*
 * scsi.h - a transport-independent SCSI disk (SBC-3/SPC-4 subset) on a
 * VdBlockBackend, and a SCSI target that groups disks by LUN.
 *
 * A transport (virtio-scsi, or a unit test) fills a VdScsiRequest with a CDB,
 * the data-out and data-in buffers (host pointers into guest memory that the
 * transport has already bounds-checked) and a completion callback, and hands
 * it to vd_scsi_disk_submit().
 *
 * Ownership: whoever calls vd_scsi_disk_new owns the disk and frees it with
 * vd_scsi_disk_free (a VMM using virtio-scsi never does: the adapter owns
 * its disks).  The backend is borrowed and must outlive the disk.  A
 * VdScsiRequest and the buffers it points to belong to the transport and
 * must stay valid from submit until req->complete has run.  A VdScsiTarget
 * does not own its disks.
 *
 * Guarantees:
 *  - Every submitted request completes exactly once, by calling req->complete
 *    from the disk's GMainContext, never from inside vd_scsi_disk_submit().
 *  - Every CDB field and every parameter list is validated; a bad one ends in
 *    CHECK CONDITION with fixed-format sense (response code 0x70, or 0x71 for
 *    a deferred error) carrying the exact sense key and ASC/ASCQ of SPC-4/SBC-3,
 *    and, for INVALID FIELD IN CDB / PARAMETER LIST, the field pointer.
 *  - The disk never reads or writes outside the request's iovecs, and never
 *    outside the backend (every LBA range is checked before any I/O).
 *  - A data-in buffer shorter than the data a command returns, or a data-out
 *    buffer shorter than the data a command needs, ends the request with
 *    response VD_SCSI_RESP_OVERRUN and no I/O.
 *  - WRITE(10/12/16) with FUA=1 is a VD_REQ_FUA write: durable at completion.
 *  - SYNCHRONIZE CACHE completes after the backend flush; with IMMED=1 it
 *    completes GOOD at once and the flush still runs (a failure is reported
 *    as a deferred error on the next command from the same I_T nexus).
 *  - The write cache is the backend's (vd_blk_write_cache); the disk keeps
 *    no copy, and MODE SENSE reads it every time.  MODE SELECT of the
 *    caching page (or with RTD=1, which reverts WCE to
 *    vd_blk_default_write_cache()) changes it through
 *    vd_blk_set_write_cache() and completes only after its callback, i.e.
 *    after the flush that a switch to write-through implies; a failed flush
 *    ends it in CHECK CONDITION with the sense of a failed write.  It raises
 *    MODE PARAMETERS CHANGED (2A/01) on every other nexus.  A change made by
 *    anyone else (the host, migration, the control socket) raises 2A/01 on
 *    every nexus.
 *
 * I_T nexuses: each request names its I_T nexus (0 .. VD_SCSI_NEXUS_MAX-1).
 * Unit attention conditions are kept per nexus.  virtio-scsi has a single
 * initiator port (the guest driver), so it uses nexus 0 for everything;
 * "other I_T nexuses" then exist only for a second transport (for example a
 * vhost-user front end) sharing the same disk.
 *
 * Threading: everything runs in the thread of the disk's GMainContext; the
 * completion and unit-attention callbacks are called there.
 */
#ifndef VD_HW_SCSI_H
#define VD_HW_SCSI_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/block-backend.h"
#include "hw/vmstate.h"

#define VD_SCSI_CDB_MAX     32      /* longest CDB a transport may pass */
#define VD_SCSI_SENSE_LEN   18      /* fixed-format sense, additional length 10 */
#define VD_SCSI_NEXUS_MAX   8       /* I_T nexuses a disk keeps state for */
#define VD_SCSI_LUN_MAX     16384   /* flat addressing: LUN 0 .. 16383 */
#define VD_SCSI_BLOCK_SIZE  512     /* logical block length */
#define VD_SCSI_MAX_XFER_BLOCKS   65536u  /* VPD B0 MAXIMUM TRANSFER LENGTH */
#define VD_SCSI_OPT_XFER_BLOCKS   2048u   /* VPD B0 OPTIMAL TRANSFER LENGTH (1 MiB) */
#define VD_SCSI_MAX_UNMAP_BLOCKS  0x400000u /* VPD B0 MAXIMUM UNMAP LBA COUNT (2 GiB) */
#define VD_SCSI_MAX_UNMAP_DESCS   64u       /* VPD B0 MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT */
#define VD_SCSI_MAX_WS_BLOCKS     0x400000u /* VPD B0 MAXIMUM WRITE SAME LENGTH */

/* SCSI status bytes (SAM-5). */
enum {
    VD_SCSI_GOOD = 0x00,
    VD_SCSI_CHECK_CONDITION = 0x02,
    VD_SCSI_BUSY = 0x08,
    VD_SCSI_RESERVATION_CONFLICT = 0x18,
    VD_SCSI_TASK_SET_FULL = 0x28,
};

/* Sense keys (SPC-4 table 27). */
enum {
    VD_SENSE_KEY_NO_SENSE = 0x0,
    VD_SENSE_KEY_RECOVERED_ERROR = 0x1,
    VD_SENSE_KEY_NOT_READY = 0x2,
    VD_SENSE_KEY_MEDIUM_ERROR = 0x3,
    VD_SENSE_KEY_HARDWARE_ERROR = 0x4,
    VD_SENSE_KEY_ILLEGAL_REQUEST = 0x5,
    VD_SENSE_KEY_UNIT_ATTENTION = 0x6,
    VD_SENSE_KEY_DATA_PROTECT = 0x7,
    VD_SENSE_KEY_ABORTED_COMMAND = 0xb,
    VD_SENSE_KEY_MISCOMPARE = 0xe,
};

/* A sense key with its additional sense code and qualifier. */
typedef struct VdScsiSense {
    uint8_t key, asc, ascq;
} VdScsiSense;

#define VD_SENSE(k, a, q) ((VdScsiSense){ (k), (a), (q) })
#define VD_SENSE_NO_SENSE            VD_SENSE(0x0, 0x00, 0x00)
#define VD_SENSE_NOT_READY_STOPPED   VD_SENSE(0x2, 0x04, 0x02) /* INITIALIZING COMMAND REQUIRED */
#define VD_SENSE_READ_ERROR          VD_SENSE(0x3, 0x11, 0x00) /* UNRECOVERED READ ERROR */
#define VD_SENSE_WRITE_ERROR         VD_SENSE(0x3, 0x0c, 0x00)
#define VD_SENSE_INTERNAL_FAILURE    VD_SENSE(0x4, 0x44, 0x00) /* INTERNAL TARGET FAILURE */
#define VD_SENSE_PARAM_LIST_LENGTH   VD_SENSE(0x5, 0x1a, 0x00)
#define VD_SENSE_INVALID_OPCODE      VD_SENSE(0x5, 0x20, 0x00)
#define VD_SENSE_LBA_OUT_OF_RANGE    VD_SENSE(0x5, 0x21, 0x00)
#define VD_SENSE_INVALID_FIELD_CDB   VD_SENSE(0x5, 0x24, 0x00)
#define VD_SENSE_LUN_NOT_SUPPORTED   VD_SENSE(0x5, 0x25, 0x00)
#define VD_SENSE_INVALID_FIELD_PARAM VD_SENSE(0x5, 0x26, 0x00)
#define VD_SENSE_SAVING_NOT_SUPPORTED VD_SENSE(0x5, 0x39, 0x00)
#define VD_SENSE_POWER_ON_RESET      VD_SENSE(0x6, 0x29, 0x00)
#define VD_SENSE_LUN_RESET           VD_SENSE(0x6, 0x29, 0x03) /* BUS DEVICE RESET FUNCTION OCCURRED */
#define VD_SENSE_NEXUS_LOSS          VD_SENSE(0x6, 0x29, 0x07) /* I_T NEXUS LOSS OCCURRED */
#define VD_SENSE_MODE_PARAMS_CHANGED VD_SENSE(0x6, 0x2a, 0x01)
#define VD_SENSE_CAPACITY_CHANGED    VD_SENSE(0x6, 0x2a, 0x09)
#define VD_SENSE_LUNS_CHANGED        VD_SENSE(0x6, 0x3f, 0x0e) /* REPORTED LUNS DATA HAS CHANGED */
#define VD_SENSE_WRITE_PROTECTED     VD_SENSE(0x7, 0x27, 0x00)
#define VD_SENSE_SPACE_ALLOC_FAILED  VD_SENSE(0x7, 0x27, 0x07)
#define VD_SENSE_MISCOMPARE_VERIFY   VD_SENSE(0xe, 0x1d, 0x00)

/* How the transport-level exchange ended (independent of the SCSI status). */
typedef enum VdScsiResponse {
    VD_SCSI_RESP_OK,        /* status, sense and residuals are valid */
    VD_SCSI_RESP_OVERRUN,   /* the buffers are too small for the command */
    VD_SCSI_RESP_ABORTED,   /* ended by ABORT TASK / ABORT TASK SET */
    VD_SCSI_RESP_RESET,     /* ended by LOGICAL UNIT RESET or I_T NEXUS RESET */
} VdScsiResponse;

typedef struct VdScsiDisk VdScsiDisk;
typedef struct VdScsiTarget VdScsiTarget;
typedef struct VdScsiRequest VdScsiRequest;
typedef struct VdScsiCmd VdScsiCmd;

typedef void VdScsiCompleteFunc(VdScsiRequest *req, void *opaque);

/* One SCSI command.  The transport owns the memory; see the field groups. */
struct VdScsiRequest {
    /* Set by the transport before vd_scsi_disk_submit(). */
    uint8_t cdb[VD_SCSI_CDB_MAX];   /* bytes past cdb_len are ignored */
    size_t cdb_len;                 /* bytes the initiator sent (1..VD_SCSI_CDB_MAX) */
    unsigned nexus;                 /* I_T nexus, < VD_SCSI_NEXUS_MAX */
    uint64_t tag;                   /* task tag, for ABORT TASK */
    const struct iovec *out_iov;    /* data-out (initiator to disk); must stay valid */
    unsigned out_niov;
    const struct iovec *in_iov;     /* data-in (disk to initiator); must stay valid */
    unsigned in_niov;
    VdScsiCompleteFunc *complete;
    void *opaque;

    /* Set by the disk before complete() runs. */
    VdScsiResponse response;
    uint8_t status;                 /* SCSI status when response == OK */
    uint8_t sense[VD_SCSI_SENSE_LEN];
    uint8_t sense_len;              /* 0, or VD_SCSI_SENSE_LEN with CHECK CONDITION */
    size_t in_resid;                /* data-in bytes not transferred */
    size_t out_resid;               /* data-out bytes not consumed */

    /* Private to the disk between submit and complete. */
    VdScsiCmd *priv;
};

/* Static configuration of a disk. */
typedef struct VdScsiDiskConfig {
    unsigned lun;                   /* its LUN, for REPORT LUNS of a lone disk */
    const char *serial;             /* VPD 0x80, hashed with the LUN into the NAA id of VPD 0x83;
                                       NULL: vd_blk_unique_id() of the backend */
    const char *vendor;             /* INQUIRY vendor (8 chars max), NULL: "VDISK" */
    const char *product;            /* INQUIRY product (16 chars max), NULL: "VDISK DISK" */
} VdScsiDiskConfig;

/*
 * Create a disk on blk (not owned: the caller closes blk after freeing the
 * disk).  Completions run in ctx (NULL: thread default).  Every nexus starts
 * with a POWER ON, RESET unit attention pending, as a real disk does.
 */
VdScsiDisk *vd_scsi_disk_new(VdBlockBackend *blk, const VdScsiDiskConfig *cfg,
                             GMainContext *ctx, GError **errp);
/* Wait for every command and background flush, deliver completions, free. */
void vd_scsi_disk_free(VdScsiDisk *disk);
VdBlockBackend *vd_scsi_disk_backend(VdScsiDisk *disk);
unsigned vd_scsi_disk_lun(VdScsiDisk *disk);

/* Start one command; it completes later through req->complete. */
void vd_scsi_disk_submit(VdScsiDisk *disk, VdScsiRequest *req);
/*
 * Commands in the disk's in-flight list plus background flushes.  Commands
 * that ended and wait in the completion queue (and TMFs waiting for the idle
 * source) are NOT counted: a transport drains with its own count of answers
 * not yet delivered (vd_virtio_scsi_drain), never with this.
 */
unsigned vd_scsi_disk_in_flight(VdScsiDisk *disk);

/*
 * Task management.  Each ends the matching commands (their response becomes
 * ABORTED or RESET) and calls done once they have all completed; done runs
 * from the context, never inside the call.
 *  - abort_task: the command with (nexus, tag); found reports whether it was.
 *  - abort_task_set / clear_task_set: every command of nexus / of every nexus.
 *  - lun_reset: every command; unit attention 29/03 for every nexus.
 *  - nexus_reset: the commands of nexus; unit attention 29/07 for it.
 */
typedef void VdScsiTmfDoneFunc(void *opaque, bool found);
void vd_scsi_disk_abort_task(VdScsiDisk *disk, unsigned nexus, uint64_t tag,
                             VdScsiTmfDoneFunc *done, void *opaque);
void vd_scsi_disk_abort_task_set(VdScsiDisk *disk, unsigned nexus,
                                 VdScsiTmfDoneFunc *done, void *opaque);
void vd_scsi_disk_clear_task_set(VdScsiDisk *disk, VdScsiTmfDoneFunc *done, void *opaque);
void vd_scsi_disk_lun_reset(VdScsiDisk *disk, VdScsiTmfDoneFunc *done, void *opaque);
void vd_scsi_disk_nexus_reset(VdScsiDisk *disk, unsigned nexus,
                              VdScsiTmfDoneFunc *done, void *opaque);

/*
 * Hard reset (the adapter was reset, i.e. power-on for the guest): end every
 * command with RESET, start a stopped unit, drop deferred errors, put the
 * write cache back to its power-on state (vd_blk_default_write_cache; if
 * the flush of that change fails, every nexus gets it as a deferred error) and
 * leave POWER ON, RESET 29/00 as the only unit attention of every nexus.
 */
void vd_scsi_disk_hard_reset(VdScsiDisk *disk, VdScsiTmfDoneFunc *done, void *opaque);
/* QUERY TASK (by_tag) / QUERY TASK SET: whether such a command of nexus is in flight. */
bool vd_scsi_disk_query_task(VdScsiDisk *disk, unsigned nexus, bool by_tag, uint64_t tag);

/*
 * Called whenever a unit attention is newly queued for a nexus (before any
 * command reports it), so a transport can also announce it asynchronously
 * (virtio-scsi PARAM_CHANGE events).  fn NULL removes the listener.
 */
typedef void VdScsiUaNotifyFunc(void *opaque, VdScsiDisk *disk, unsigned nexus, VdScsiSense sense);
void vd_scsi_disk_set_ua_notify(VdScsiDisk *disk, VdScsiUaNotifyFunc *fn, void *opaque);

/* Queue a unit attention for one nexus (or all when nexus == VD_SCSI_NEXUS_MAX). */
void vd_scsi_disk_set_unit_attention(VdScsiDisk *disk, unsigned nexus, VdScsiSense sense);
/* True if a unit attention is pending for nexus (the AN "query" answer). */
bool vd_scsi_disk_has_unit_attention(VdScsiDisk *disk, unsigned nexus);

/*
 * Migration (hw/vmstate.h): a disk's part of its transport's section:
 * stopped (START STOP UNIT), and per nexus the queued unit attentions and
 * the deferred error.  The caching page's WCE is the backend's and travels
 * in the drive's section.  Commands parked by werror=stop are the
 * transport's to carry (it issues them again on the destination); save
 * refuses while answers wait for delivery or background flushes run; parse checks and changes
 * nothing; apply replaces the disk's unit attentions (so the one the
 * write-cache load just raised goes) and frees st.
 */
typedef struct VdScsiDiskState VdScsiDiskState;
bool vd_scsi_disk_save(VdScsiDisk *disk, VdMigWriter *w, GError **errp);
VdScsiDiskState *vd_scsi_disk_parse(VdScsiDisk *disk, VdMigSection *sec, GError **errp);
void vd_scsi_disk_apply(VdScsiDisk *disk, VdScsiDiskState *st);
void vd_scsi_disk_state_free(VdScsiDiskState *st);

/*
 * A target: the disks behind one target id, by LUN.  REPORT LUNS sent to any
 * of its disks lists them all.  LUNs may be added at any time; adding one
 * raises REPORTED LUNS DATA HAS CHANGED on the disks already present.
 */
VdScsiTarget *vd_scsi_target_new(void);
/* Free the target; the disks are not freed (their owner does that). */
void vd_scsi_target_free(VdScsiTarget *t);
bool vd_scsi_target_add(VdScsiTarget *t, VdScsiDisk *disk, GError **errp);
VdScsiDisk *vd_scsi_target_find(VdScsiTarget *t, unsigned lun);
/* Number of LUNs, and the n-th smallest LUN. */
unsigned vd_scsi_target_count(VdScsiTarget *t);
unsigned vd_scsi_target_lun_at(VdScsiTarget *t, unsigned n);

/* Fill sense[VD_SCSI_SENSE_LEN] as fixed-format sense data (response code 0x70). */
void vd_scsi_build_sense(uint8_t *sense, VdScsiSense s);
/* Number of CDB bytes the opcode's group implies (6/10/12/16), 0 if reserved/vendor. */
unsigned vd_scsi_cdb_length(uint8_t opcode);

#endif
