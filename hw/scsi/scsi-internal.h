/*
 * scsi-internal.h - what the files of the SCSI disk share: the disk and
 * per-command state, the command handlers of the dispatch table, and the
 * helpers that end a command.
 *
 * Guarantees for handlers: a handler is called once per command, after the
 * dispatcher has checked the CDB length, the CONTROL byte, pending unit
 * attentions and deferred errors.  It must end the command exactly once, by
 * one of vd_scsi_cmd_good / _reply / _fail / _fail_field / _overrun, either
 * directly or from a backend callback.
 */
#ifndef VD_HW_SCSI_INTERNAL_H
#define VD_HW_SCSI_INTERNAL_H

#include <gio/gio.h>

#include "hw/scsi.h"
#include "util/bswap.h"   /* CDBs and parameter data are big-endian: vd_ld_be* / vd_st_be* */
#include "util/iov.h"

#define VD_SCSI_UA_QUEUE 8          /* unit attentions queued per nexus */

/* Per-nexus state: queued unit attentions and one deferred error. */
typedef struct VdScsiNexus {
    VdScsiSense ua[VD_SCSI_UA_QUEUE];
    unsigned n_ua;
    bool deferred;
    VdScsiSense deferred_sense;
} VdScsiNexus;

struct VdScsiDisk {
    VdBlockBackend *blk;
    GMainContext *ctx;
    unsigned lun;
    char *serial;
    char vendor[9], product[17];
    uint64_t naa;                   /* NAA 3 (locally assigned) identifier */
    VdScsiTarget *target;           /* NULL unless added to a target */
    GQueue cmds;                    /* VdScsiCmd in flight */
    GQueue done;                    /* VdScsiCmd ended, completion not yet delivered */
    GQueue tmf_done;                /* VdScsiTmfWait whose done must be called */
    GSource *bh;                    /* delivers done and tmf_done */
    unsigned bg_flushes;            /* SYNCHRONIZE CACHE IMMED flushes still running */
    bool stopped;                   /* START STOP UNIT with START=0 */
    bool own_wce_change;            /* inside the disk's own vd_blk_set_write_cache call */
    VdScsiNexus nexus[VD_SCSI_NEXUS_MAX];
    VdScsiUaNotifyFunc *ua_notify;  /* transport listener for new unit attentions */
    void *ua_opaque;
};

/* A task management function waiting for the commands it ended. */
typedef struct VdScsiTmfWait {
    unsigned remaining;
    bool found;
    VdScsiTmfDoneFunc *done;
    void *opaque;
} VdScsiTmfWait;

typedef void VdScsiStepFunc(VdScsiCmd *cmd, int ret);

struct VdScsiCmd {
    VdScsiDisk *disk;
    VdScsiRequest *req;
    GList link;                     /* in disk->cmds, then disk->done */
    VdScsiResponse end;             /* RESP_OK, or ABORTED/RESET once a TMF hit it */
    GSList *waiters;                /* VdScsiTmfWait * */
    size_t in_size, out_size;       /* total bytes of the iovecs */
    /* working state of the handlers */
    uint64_t lba;
    uint64_t nblocks;
    unsigned flags;                 /* VD_REQ_* for writes */
    unsigned bytchk;
    size_t pos, chunk;              /* VERIFY progress: bytes read so far, last chunk */
    unsigned pending;               /* backend requests outstanding */
    int ret;                        /* first backend error */
    uint8_t *buf, *buf2;            /* bounce buffers */
    size_t buf_len;
    struct iovec *iov;              /* data iovecs cut to the transfer length */
    unsigned niov;
    struct iovec one;               /* a single-buffer iovec */
    VdScsiStepFunc *step;           /* continuation after the pending requests */
};

/* A command handler; cdb is req->cdb, already length-checked. */
typedef void VdScsiHandler(VdScsiCmd *cmd, const uint8_t *cdb);

/* Dispatch flags. */
#define OP_NO_UA   (1u << 0)   /* INQUIRY, REPORT LUNS, REQUEST SENSE: no unit attention (SPC-4 5.14) */
#define OP_MEDIUM  (1u << 1)   /* needs the medium: NOT READY while stopped */
#define OP_LBP     (1u << 2)   /* offered only with thin provisioning (vd_blk_can_discard) */
#define VD_SCSI_NO_SA 0xff     /* the opcode has no service actions */

/* One slot of the opcode-indexed dispatch table. */
typedef struct VdScsiOp {
    VdScsiHandler *fn;
    uint8_t cdb_len;
    uint8_t flags;
    uint8_t sa;                /* the one service action implemented, or VD_SCSI_NO_SA */
    const uint8_t *usage;      /* CDB usage data, cdb_len bytes */
} VdScsiOp;

/* The table entry of an opcode (fn NULL: not supported). */
const VdScsiOp *vd_scsi_op(uint8_t opcode);

/* Ends: status GOOD with no data. */
void vd_scsi_cmd_good(VdScsiCmd *cmd);
/* Ends: GOOD with min(avail, alloc) bytes of data-in (OVERRUN if they don't fit). */
void vd_scsi_cmd_reply(VdScsiCmd *cmd, const void *data, size_t avail, size_t alloc);
/* Ends: CHECK CONDITION with sense s. */
void vd_scsi_cmd_fail(VdScsiCmd *cmd, VdScsiSense s);
/* Ends: CHECK CONDITION with s and a field pointer (cdb: in CDB, else parameter list; bit<0: none). */
void vd_scsi_cmd_fail_field(VdScsiCmd *cmd, VdScsiSense s, bool cdb, unsigned byte, int bit);
/* Ends: CHECK CONDITION with the sense that a backend error ret implies for a read or write. */
void vd_scsi_cmd_fail_errno(VdScsiCmd *cmd, int ret, bool write);
/* Ends: the buffers are too small (response OVERRUN). */
void vd_scsi_cmd_overrun(VdScsiCmd *cmd);
/* Copy need bytes of data-out into a new cmd->buf; false (and ended with OVERRUN) if short. */
bool vd_scsi_cmd_fetch(VdScsiCmd *cmd, size_t need);
/* Point cmd->iov at the first len bytes of the given iovecs. */
void vd_scsi_cmd_slice(VdScsiCmd *cmd, const struct iovec *iov, unsigned niov, size_t len);

/* The sense a backend errno maps to. */
VdScsiSense vd_scsi_errno_sense(int ret, bool write);
/* Fill fixed-format sense with a sense-key-specific field pointer. */
void vd_scsi_build_sense_field(uint8_t *sense, VdScsiSense s, bool cdb, unsigned byte, int bit);

/* Unit attention queue of one nexus. */
bool vd_scsi_ua_pop(VdScsiDisk *disk, unsigned nexus, VdScsiSense *out);
/* Raise s on every nexus except skip (VD_SCSI_NEXUS_MAX: none skipped). */
void vd_scsi_ua_others(VdScsiDisk *disk, unsigned skip, VdScsiSense s);

/* Block count of the disk. */
uint64_t vd_scsi_disk_blocks(VdScsiDisk *disk);
/* LBA range check: false and ended with LBA OUT OF RANGE if [lba, lba+n) leaves the disk. */
bool vd_scsi_check_range(VdScsiCmd *cmd, uint64_t lba, uint64_t n);
/* Backend request accounting: start one, and the callback that ends one. */
void vd_scsi_io_begin(VdScsiCmd *cmd);
void vd_scsi_io_cb(void *opaque, int ret);
/* Whether thin provisioning (UNMAP, WRITE SAME UNMAP) is offered. */
bool vd_scsi_disk_lbp(VdScsiDisk *disk);
/* LUNs to list in REPORT LUNS (sorted); caller frees with g_array_unref. */
GArray *vd_scsi_disk_luns(VdScsiDisk *disk);
void vd_scsi_target_forget(VdScsiTarget *t, VdScsiDisk *disk);

/* Handlers (scsi-info.c). */
VdScsiHandler vd_scsi_cmd_test_unit_ready, vd_scsi_cmd_request_sense, vd_scsi_cmd_inquiry,
    vd_scsi_cmd_read_capacity10, vd_scsi_cmd_service_action_in16, vd_scsi_cmd_report_luns,
    vd_scsi_cmd_start_stop, vd_scsi_cmd_prevent_allow;
/* Handlers (scsi-opcodes.c). */
VdScsiHandler vd_scsi_cmd_maintenance_in;
/* Handlers (scsi-rw.c). */
VdScsiHandler vd_scsi_cmd_read, vd_scsi_cmd_write, vd_scsi_cmd_verify, vd_scsi_cmd_write_verify,
    vd_scsi_cmd_sync_cache;
/* Handlers (scsi-provision.c). */
VdScsiHandler vd_scsi_cmd_unmap, vd_scsi_cmd_write_same;
/* Handlers (scsi-mode.c). */
VdScsiHandler vd_scsi_cmd_mode_sense, vd_scsi_cmd_mode_select;
/* The disk's own write-cache change (not announced back to it as a foreign one); cb may be NULL. */
void vd_scsi_disk_set_wce(VdScsiDisk *disk, bool on, VdBlockCompletionFunc *cb, void *opaque);
/* Backend write-cache notifier: a change made by anyone else raises 2A/01 on every nexus. */
VdWriteCacheNotifyFunc vd_scsi_wce_changed;

#endif
