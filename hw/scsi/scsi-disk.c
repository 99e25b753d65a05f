/*
 * scsi-disk.c - the SCSI disk core: lifecycle, the opcode dispatch table,
 * unit attentions, deferred completion and task management.
 *
 * The command handlers live in scsi-info.c, scsi-rw.c, scsi-provision.c and
 * scsi-mode.c; see scsi-internal.h for the rules they follow.
 */
#include "scsi-internal.h"

#include <errno.h>
#include <string.h>

/*
 * Indexed by opcode; an empty slot is INVALID COMMAND OPERATION CODE.  Each
 * entry also carries the CDB usage data REPORT SUPPORTED OPERATION CODES
 * returns: the bits of the CDB the disk evaluates (SPC-4 6.35.3).
 */
static const VdScsiOp vd_scsi_ops[256] = {
    [0x00] = { vd_scsi_cmd_test_unit_ready, 6, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 } },
    [0x03] = { vd_scsi_cmd_request_sense, 6, OP_NO_UA, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x03, 0x00, 0x00, 0x00, 0xff, 0x00 } },
    [0x08] = { vd_scsi_cmd_read, 6, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x08, 0x1f, 0xff, 0xff, 0xff, 0x00 } },
    [0x0a] = { vd_scsi_cmd_write, 6, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x0a, 0x1f, 0xff, 0xff, 0xff, 0x00 } },
    [0x12] = { vd_scsi_cmd_inquiry, 6, OP_NO_UA, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x12, 0x01, 0xff, 0xff, 0xff, 0x00 } },
    [0x15] = { vd_scsi_cmd_mode_select, 6, 0, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x15, 0x12, 0x00, 0x00, 0xff, 0x00 } },
    [0x1a] = { vd_scsi_cmd_mode_sense, 6, 0, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x1a, 0x08, 0xff, 0xff, 0xff, 0x00 } },
    [0x1b] = { vd_scsi_cmd_start_stop, 6, 0, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x1b, 0x01, 0x00, 0x00, 0x05, 0x00 } },
    [0x1e] = { vd_scsi_cmd_prevent_allow, 6, 0, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x1e, 0x00, 0x00, 0x00, 0x00, 0x00 } },
    [0x25] = { vd_scsi_cmd_read_capacity10, 10, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x25, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, 0x00 } },
    [0x28] = { vd_scsi_cmd_read, 10, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x28, 0x18, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00 } },
    [0x2a] = { vd_scsi_cmd_write, 10, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x2a, 0x18, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00 } },
    [0x2e] = { vd_scsi_cmd_write_verify, 10, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x2e, 0x12, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00 } },
    [0x2f] = { vd_scsi_cmd_verify, 10, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x2f, 0x16, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00 } },
    [0x35] = { vd_scsi_cmd_sync_cache, 10, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00 } },
    [0x41] = { vd_scsi_cmd_write_same, 10, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x41, 0x08, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0x00 } },
    [0x42] = { vd_scsi_cmd_unmap, 10, OP_MEDIUM | OP_LBP, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x42, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00 } },
    [0x55] = { vd_scsi_cmd_mode_select, 10, 0, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x55, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00 } },
    [0x5a] = { vd_scsi_cmd_mode_sense, 10, 0, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x5a, 0x18, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00 } },
    [0x88] = { vd_scsi_cmd_read, 16, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x88, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    [0x8a] = { vd_scsi_cmd_write, 16, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x8a, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    [0x8e] = { vd_scsi_cmd_write_verify, 16, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x8e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    [0x8f] = { vd_scsi_cmd_verify, 16, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x8f, 0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    [0x91] = { vd_scsi_cmd_sync_cache, 16, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x91, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    [0x93] = { vd_scsi_cmd_write_same, 16, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0x93, 0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    [0x9e] = { vd_scsi_cmd_service_action_in16, 16, OP_MEDIUM, 0x10,
               (const uint8_t[]){ 0x9e, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00 } },
    [0xa0] = { vd_scsi_cmd_report_luns, 12, OP_NO_UA, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0xa0, 0x00, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    [0xa3] = { vd_scsi_cmd_maintenance_in, 12, 0, 0x0c,
               (const uint8_t[]){ 0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    [0xa8] = { vd_scsi_cmd_read, 12, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0xa8, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
    [0xaa] = { vd_scsi_cmd_write, 12, OP_MEDIUM, VD_SCSI_NO_SA,
               (const uint8_t[]){ 0xaa, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 } },
};

/* The dispatch table entry of an opcode (fn NULL: not supported). */
const VdScsiOp *vd_scsi_op(uint8_t opcode)
{
    return &vd_scsi_ops[opcode];
}

/* CDB length implied by the opcode's group code (SPC-4 4.2.5.1). */
unsigned vd_scsi_cdb_length(uint8_t opcode)
{
    static const uint8_t group_len[8] = { 6, 10, 10, 0, 16, 12, 0, 0 };
    return group_len[opcode >> 5];
}

static gboolean vd_scsi_bh(gpointer opaque);

/* Make sure the completion source is attached. */
static void vd_scsi_schedule(VdScsiDisk *disk)
{
    if (!disk->bh) {
        disk->bh = g_idle_source_new();
        g_source_set_priority(disk->bh, G_PRIORITY_DEFAULT);
        g_source_set_callback(disk->bh, vd_scsi_bh, disk, NULL);
        g_source_attach(disk->bh, disk->ctx);
    }
}

/* Deliver one ended command to its transport and release TMFs waiting for it. */
static void vd_scsi_deliver(VdScsiDisk *disk, VdScsiCmd *cmd)
{
    VdScsiRequest *req = cmd->req;
    if (cmd->end != VD_SCSI_RESP_OK) {
        req->response = cmd->end;
        req->status = VD_SCSI_GOOD;
        req->sense_len = 0;
        req->in_resid = cmd->in_size;
        req->out_resid = cmd->out_size;
    }
    for (GSList *l = cmd->waiters; l; l = l->next) {
        VdScsiTmfWait *w = l->data;
        if (--w->remaining == 0) {
            g_queue_push_tail(&disk->tmf_done, w);
        }
    }
    g_slist_free(cmd->waiters);
    g_free(cmd->buf);
    g_free(cmd->buf2);
    g_free(cmd->iov);
    req->priv = NULL;
    g_free(cmd);
    req->complete(req, req->opaque);
}

/* Run every pending completion, then the TMFs they released. */
static void vd_scsi_run_completions(VdScsiDisk *disk)
{
    for (;;) {
        GList *l = g_queue_pop_head_link(&disk->done);
        if (l) {
            vd_scsi_deliver(disk, l->data);
            continue;
        }
        VdScsiTmfWait *w = g_queue_pop_head(&disk->tmf_done);
        if (!w) {
            break;
        }
        w->done(w->opaque, w->found);
        g_free(w);
    }
}

/* Idle callback: deliver completions outside the submitting call. */
static gboolean vd_scsi_bh(gpointer opaque)
{
    VdScsiDisk *disk = opaque;
    g_source_unref(disk->bh);
    disk->bh = NULL;
    vd_blk_completion_enter();   /* transports' callbacks run here: no drain may start inside */
    vd_scsi_run_completions(disk);
    vd_blk_completion_exit();
    return G_SOURCE_REMOVE;
}

/* Move an ended command from in-flight to the completion queue. */
static void vd_scsi_cmd_end(VdScsiCmd *cmd)
{
    VdScsiDisk *disk = cmd->disk;
    g_queue_unlink(&disk->cmds, &cmd->link);
    g_queue_push_tail_link(&disk->done, &cmd->link);
    vd_scsi_schedule(disk);
}

/* End with status GOOD and no data. */
void vd_scsi_cmd_good(VdScsiCmd *cmd)
{
    cmd->req->response = VD_SCSI_RESP_OK;
    cmd->req->status = VD_SCSI_GOOD;
    vd_scsi_cmd_end(cmd);
}

/* End with GOOD and data-in of min(avail, alloc) bytes. */
void vd_scsi_cmd_reply(VdScsiCmd *cmd, const void *data, size_t avail, size_t alloc)
{
    VdScsiRequest *req = cmd->req;
    size_t n = MIN(avail, alloc);
    if (n > cmd->in_size) {
        vd_scsi_cmd_overrun(cmd);
        return;
    }
    vd_iov_from_buf(req->in_iov, req->in_niov, 0, data, n);
    req->in_resid = cmd->in_size - n;
    vd_scsi_cmd_good(cmd);
}

/* End with CHECK CONDITION and fixed-format sense. */
void vd_scsi_cmd_fail(VdScsiCmd *cmd, VdScsiSense s)
{
    VdScsiRequest *req = cmd->req;
    vd_scsi_build_sense(req->sense, s);
    req->sense_len = VD_SCSI_SENSE_LEN;
    req->response = VD_SCSI_RESP_OK;
    req->status = VD_SCSI_CHECK_CONDITION;
    req->in_resid = cmd->in_size;
    vd_scsi_cmd_end(cmd);
}

/* End with CHECK CONDITION and a field pointer in the sense-key-specific bytes. */
void vd_scsi_cmd_fail_field(VdScsiCmd *cmd, VdScsiSense s, bool cdb, unsigned byte, int bit)
{
    vd_scsi_cmd_fail(cmd, s);
    vd_scsi_build_sense_field(cmd->req->sense, s, cdb, byte, bit);
}

/* End with the sense a backend error maps to. */
void vd_scsi_cmd_fail_errno(VdScsiCmd *cmd, int ret, bool write)
{
    vd_scsi_cmd_fail(cmd, vd_scsi_errno_sense(ret, write));
}

/* End because the buffers cannot hold the transfer. */
void vd_scsi_cmd_overrun(VdScsiCmd *cmd)
{
    VdScsiRequest *req = cmd->req;
    req->response = VD_SCSI_RESP_OVERRUN;
    req->status = VD_SCSI_GOOD;
    req->sense_len = 0;
    req->in_resid = cmd->in_size;
    req->out_resid = cmd->out_size;
    vd_scsi_cmd_end(cmd);
}

/* Copy the first need bytes of data-out into cmd->buf. */
bool vd_scsi_cmd_fetch(VdScsiCmd *cmd, size_t need)
{
    VdScsiRequest *req = cmd->req;
    if (need > cmd->out_size) {
        vd_scsi_cmd_overrun(cmd);
        return false;
    }
    g_free(cmd->buf);
    cmd->buf = g_malloc(need ? need : 1);
    cmd->buf_len = need;
    vd_iov_to_buf(req->out_iov, req->out_niov, 0, cmd->buf, need);
    req->out_resid = cmd->out_size - need;
    return true;
}

/* Build cmd->iov: the first len bytes of iov (len must not exceed its size). */
void vd_scsi_cmd_slice(VdScsiCmd *cmd, const struct iovec *iov, unsigned niov, size_t len)
{
    g_free(cmd->iov);
    cmd->niov = vd_iov_slice(iov, niov, 0, len, &cmd->iov);
}

/* Number of logical blocks. */
uint64_t vd_scsi_disk_blocks(VdScsiDisk *disk)
{
    int64_t len = vd_blk_length(disk->blk);
    return len > 0 ? (uint64_t)len / VD_SCSI_BLOCK_SIZE : 0;
}

/* Check [lba, lba+n) against the capacity, overflow-safe. */
bool vd_scsi_check_range(VdScsiCmd *cmd, uint64_t lba, uint64_t n)
{
    uint64_t blocks = vd_scsi_disk_blocks(cmd->disk);
    if (lba > blocks || n > blocks - lba) {
        vd_scsi_cmd_fail(cmd, VD_SENSE_LBA_OUT_OF_RANGE);
        return false;
    }
    return true;
}

/* Count one more backend request for cmd. */
void vd_scsi_io_begin(VdScsiCmd *cmd)
{
    cmd->pending++;
}

/* Backend callback: record the first error; when the last one is back, continue or end. */
void vd_scsi_io_cb(void *opaque, int ret)
{
    VdScsiCmd *cmd = opaque;
    if (ret < 0 && cmd->ret == 0) {
        cmd->ret = ret;
    }
    if (--cmd->pending) {
        return;
    }
    if (cmd->end != VD_SCSI_RESP_OK) {
        vd_scsi_cmd_good(cmd);      /* aborted: the response is replaced on delivery */
        return;
    }
    VdScsiStepFunc *step = cmd->step;
    cmd->step = NULL;
    step(cmd, cmd->ret);
}

/* Whether the backend supports discard, so UNMAP and LBPME are offered. */
bool vd_scsi_disk_lbp(VdScsiDisk *disk)
{
    return vd_blk_can_discard(disk->blk) && !vd_blk_is_read_only(disk->blk);
}

/* Queue a unit attention on one nexus unless it is already queued there. */
static void vd_scsi_ua_push(VdScsiDisk *disk, unsigned nexus, VdScsiSense s)
{
    VdScsiNexus *nx = &disk->nexus[nexus];
    for (unsigned i = 0; i < nx->n_ua; i++) {
        if (nx->ua[i].asc == s.asc && nx->ua[i].ascq == s.ascq) {
            return;
        }
    }
    if (s.asc == 0x29) {
        /* A reset supersedes every older condition (SAM-5 6.3). */
        nx->n_ua = 0;
    }
    if (nx->n_ua == VD_SCSI_UA_QUEUE) {
        /* Full: keep the oldest ones, as SPC-4 5.14 allows. */
        return;
    }
    nx->ua[nx->n_ua++] = s;
    if (disk->ua_notify) {
        disk->ua_notify(disk->ua_opaque, disk, nexus, s);
    }
}

/* Install the transport's unit attention listener. */
void vd_scsi_disk_set_ua_notify(VdScsiDisk *disk, VdScsiUaNotifyFunc *fn, void *opaque)
{
    disk->ua_notify = fn;
    disk->ua_opaque = opaque;
}

/* Public: queue a unit attention for one nexus or all of them. */
void vd_scsi_disk_set_unit_attention(VdScsiDisk *disk, unsigned nexus, VdScsiSense s)
{
    for (unsigned i = 0; i < VD_SCSI_NEXUS_MAX; i++) {
        if (nexus == VD_SCSI_NEXUS_MAX || nexus == i) {
            vd_scsi_ua_push(disk, i, s);
        }
    }
}

/* Raise s on every nexus but skip. */
void vd_scsi_ua_others(VdScsiDisk *disk, unsigned skip, VdScsiSense s)
{
    for (unsigned i = 0; i < VD_SCSI_NEXUS_MAX; i++) {
        if (i != skip) {
            vd_scsi_ua_push(disk, i, s);
        }
    }
}

/* Whether a unit attention is pending on nexus. */
bool vd_scsi_disk_has_unit_attention(VdScsiDisk *disk, unsigned nexus)
{
    return nexus < VD_SCSI_NEXUS_MAX && disk->nexus[nexus].n_ua > 0;
}

/* Take the oldest unit attention of nexus. */
bool vd_scsi_ua_pop(VdScsiDisk *disk, unsigned nexus, VdScsiSense *out)
{
    VdScsiNexus *nx = &disk->nexus[nexus];
    if (!nx->n_ua) {
        return false;
    }
    *out = nx->ua[0];
    memmove(&nx->ua[0], &nx->ua[1], (nx->n_ua - 1) * sizeof(nx->ua[0]));
    nx->n_ua--;
    return true;
}

/* Start one command: validate what every command shares, then dispatch. */
void vd_scsi_disk_submit(VdScsiDisk *disk, VdScsiRequest *req)
{
    VdScsiCmd *cmd = g_new0(VdScsiCmd, 1);
    cmd->disk = disk;
    cmd->req = req;
    cmd->link.data = cmd;
    cmd->end = VD_SCSI_RESP_OK;
    cmd->in_size = vd_iov_size(req->in_iov, req->in_niov);
    cmd->out_size = vd_iov_size(req->out_iov, req->out_niov);
    req->priv = cmd;
    req->response = VD_SCSI_RESP_OK;
    req->status = VD_SCSI_GOOD;
    req->sense_len = 0;
    req->in_resid = cmd->in_size;
    req->out_resid = cmd->out_size;
    g_queue_push_tail_link(&disk->cmds, &cmd->link);

    if (req->nexus >= VD_SCSI_NEXUS_MAX) {
        /* A transport bug, not a guest error: fail without touching any nexus state. */
        vd_scsi_cmd_fail(cmd, VD_SENSE_INTERNAL_FAILURE);
        return;
    }
    if (req->cdb_len == 0 || req->cdb_len > VD_SCSI_CDB_MAX) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 0, -1);
        return;
    }
    const uint8_t *cdb = req->cdb;
    const VdScsiOp *op = &vd_scsi_ops[cdb[0]];
    VdScsiNexus *nx = &disk->nexus[req->nexus];
    VdScsiSense ua;

    if (!(op->flags & OP_NO_UA) && vd_scsi_ua_pop(disk, req->nexus, &ua)) {
        vd_scsi_cmd_fail(cmd, ua);
        return;
    }
    if (!op->fn) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_OPCODE, true, 0, -1);
        return;
    }
    if (req->cdb_len < op->cdb_len) {
        /* The initiator sent fewer bytes than the opcode's CDB has. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 0, -1);
        return;
    }
    uint8_t control = cdb[op->cdb_len - 1];
    if (control & 0x04) {
        /* NACA: ACA is not supported (SAM-5 5.3.1). */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, op->cdb_len - 1, 2);
        return;
    }
    if (control & 0x01) {
        /* LINK: linked commands are obsolete. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, op->cdb_len - 1, 0);
        return;
    }
    if (nx->deferred && !(op->flags & OP_NO_UA)) {
        /* Like unit attentions, a deferred error waits for a command other than INQUIRY/REPORT LUNS/REQUEST SENSE. */
        nx->deferred = false;
        vd_scsi_cmd_fail(cmd, nx->deferred_sense);
        req->sense[0] = 0x71;
        return;
    }
    if ((op->flags & OP_MEDIUM) && disk->stopped) {
        vd_scsi_cmd_fail(cmd, VD_SENSE_NOT_READY_STOPPED);
        return;
    }
    op->fn(cmd, cdb);
}

/* Commands in flight plus background flushes. */
unsigned vd_scsi_disk_in_flight(VdScsiDisk *disk)
{
    return g_queue_get_length(&disk->cmds) + disk->bg_flushes;
}

/* Create a disk. */
VdScsiDisk *vd_scsi_disk_new(VdBlockBackend *blk, const VdScsiDiskConfig *cfg,
                             GMainContext *ctx, GError **errp)
{
    static const VdScsiDiskConfig defaults;
    if (!cfg) {
        cfg = &defaults;
    }
    if (!blk) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "SCSI disk needs a block backend");
        return NULL;
    }
    if (cfg->lun >= VD_SCSI_LUN_MAX) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "LUN %u is out of range (0..%u)", cfg->lun, VD_SCSI_LUN_MAX - 1);
        return NULL;
    }
    if ((cfg->vendor && strlen(cfg->vendor) > 8) || (cfg->product && strlen(cfg->product) > 16)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "INQUIRY vendor is at most 8 characters and product at most 16");
        return NULL;
    }
    if (cfg->serial && (strlen(cfg->serial) == 0 || strlen(cfg->serial) > 64)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "SCSI serial must be 1..64 characters");
        return NULL;
    }
    if (cfg->serial) {
        for (const char *p = cfg->serial; *p; p++) {
            if (*p < 0x20 || *p > 0x7e) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "SCSI serial must be printable ASCII");
                return NULL;
            }
        }
    }
    VdScsiDisk *disk = g_new0(VdScsiDisk, 1);
    disk->blk = blk;
    disk->ctx = ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
    disk->lun = cfg->lun;
    disk->serial = g_strdup(cfg->serial ? cfg->serial : vd_blk_unique_id(blk));
    /* Space-padded ASCII, as INQUIRY wants. */
    snprintf(disk->vendor, sizeof(disk->vendor), "%-8s", cfg->vendor ? cfg->vendor : "VDISK");
    snprintf(disk->product, sizeof(disk->product), "%-16s", cfg->product ? cfg->product : "VDISK DISK");
    /* NAA 3 locally assigned: 4-bit NAA, then 60 bits of FNV-1a over serial and LUN. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = disk->serial; *p; p++) {
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    }
    h = (h ^ cfg->lun) * 0x100000001b3ull;
    disk->naa = (3ull << 60) | (h & 0x0fffffffffffffffull);
    g_queue_init(&disk->cmds);
    g_queue_init(&disk->done);
    g_queue_init(&disk->tmf_done);
    vd_scsi_disk_set_unit_attention(disk, VD_SCSI_NEXUS_MAX, VD_SENSE_POWER_ON_RESET);
    vd_blk_add_write_cache_notifier(blk, vd_scsi_wce_changed, disk);
    return disk;
}

/* Wait for everything in flight, deliver every completion, then free. */
void vd_scsi_disk_free(VdScsiDisk *disk)
{
    if (!disk) {
        return;
    }
    while (vd_scsi_disk_in_flight(disk)) {
        g_main_context_iteration(disk->ctx, TRUE);
    }
    vd_scsi_run_completions(disk);
    vd_blk_remove_write_cache_notifier(disk->blk, vd_scsi_wce_changed, disk);
    if (disk->bh) {
        g_source_destroy(disk->bh);
        g_source_unref(disk->bh);
    }
    if (disk->target) {
        vd_scsi_target_forget(disk->target, disk);
    }
    g_main_context_unref(disk->ctx);
    g_free(disk->serial);
    g_free(disk);
}

/* The backend the disk was created on. */
VdBlockBackend *vd_scsi_disk_backend(VdScsiDisk *disk)
{
    return disk->blk;
}

/* The disk's LUN. */
unsigned vd_scsi_disk_lun(VdScsiDisk *disk)
{
    return disk->lun;
}

/* Mark matching in-flight commands as ended by a TMF and wait for them. */
static void vd_scsi_tmf(VdScsiDisk *disk, bool all_nexus, unsigned nexus, bool by_tag, uint64_t tag,
                        VdScsiResponse why, VdScsiTmfDoneFunc *done, void *opaque)
{
    VdScsiTmfWait *w = g_new0(VdScsiTmfWait, 1);
    w->done = done;
    w->opaque = opaque;
    for (GList *l = disk->cmds.head; l; l = l->next) {
        VdScsiCmd *cmd = l->data;
        if (!all_nexus && cmd->req->nexus != nexus) {
            continue;
        }
        if (by_tag && cmd->req->tag != tag) {
            continue;
        }
        if (cmd->end == VD_SCSI_RESP_OK) {
            cmd->end = why;
        }
        cmd->waiters = g_slist_prepend(cmd->waiters, w);
        w->remaining++;
        w->found = true;
    }
    if (w->remaining == 0) {
        g_queue_push_tail(&disk->tmf_done, w);
        vd_scsi_schedule(disk);
    }
}

/* ABORT TASK. */
void vd_scsi_disk_abort_task(VdScsiDisk *disk, unsigned nexus, uint64_t tag,
                             VdScsiTmfDoneFunc *done, void *opaque)
{
    vd_scsi_tmf(disk, false, nexus, true, tag, VD_SCSI_RESP_ABORTED, done, opaque);
}

/* ABORT TASK SET: every command of one nexus. */
void vd_scsi_disk_abort_task_set(VdScsiDisk *disk, unsigned nexus, VdScsiTmfDoneFunc *done, void *opaque)
{
    vd_scsi_tmf(disk, false, nexus, false, 0, VD_SCSI_RESP_ABORTED, done, opaque);
}

/* CLEAR TASK SET: every command of every nexus. */
void vd_scsi_disk_clear_task_set(VdScsiDisk *disk, VdScsiTmfDoneFunc *done, void *opaque)
{
    vd_scsi_tmf(disk, true, 0, false, 0, VD_SCSI_RESP_ABORTED, done, opaque);
}

/*
 * LOGICAL UNIT RESET: end every command and raise 29/03 on every nexus.
 * The disk starts again (a stopped unit is started).  Deliberate deviation:
 * the write cache keeps its current WCE instead of going back to the default,
 * because Linux swallows the reset unit attention without re-reading the
 * caching page; a silent switch to write-back would break its durability
 * assumptions (see docs/guest-drivers/scsi.md).
 */
void vd_scsi_disk_lun_reset(VdScsiDisk *disk, VdScsiTmfDoneFunc *done, void *opaque)
{
    vd_scsi_tmf(disk, true, 0, false, 0, VD_SCSI_RESP_RESET, done, opaque);
    disk->stopped = false;
    for (unsigned i = 0; i < VD_SCSI_NEXUS_MAX; i++) {
        disk->nexus[i].deferred = false;
    }
    vd_scsi_disk_set_unit_attention(disk, VD_SCSI_NEXUS_MAX, VD_SENSE_LUN_RESET);
}

/* I_T NEXUS RESET: end the commands of nexus and raise 29/07 on it. */
void vd_scsi_disk_nexus_reset(VdScsiDisk *disk, unsigned nexus, VdScsiTmfDoneFunc *done, void *opaque)
{
    vd_scsi_tmf(disk, false, nexus, false, 0, VD_SCSI_RESP_RESET, done, opaque);
    if (nexus < VD_SCSI_NEXUS_MAX) {
        disk->nexus[nexus].deferred = false;
        vd_scsi_disk_set_unit_attention(disk, nexus, VD_SENSE_NEXUS_LOSS);
    }
}

/* The write cache of a hard reset is off: a failed flush becomes a deferred error on every nexus. */
static void vd_scsi_reset_wce_done(void *opaque, int ret)
{
    VdScsiDisk *disk = opaque;
    if (ret < 0) {
        for (unsigned i = 0; i < VD_SCSI_NEXUS_MAX; i++) {
            disk->nexus[i].deferred = true;
            disk->nexus[i].deferred_sense = vd_scsi_errno_sense(ret, true);
        }
    }
    disk->bg_flushes--;
}

/* Hard reset: power-on state for the guest, see scsi.h. */
void vd_scsi_disk_hard_reset(VdScsiDisk *disk, VdScsiTmfDoneFunc *done, void *opaque)
{
    vd_scsi_tmf(disk, true, 0, false, 0, VD_SCSI_RESP_RESET, done, opaque);
    disk->stopped = false;
    for (unsigned i = 0; i < VD_SCSI_NEXUS_MAX; i++) {
        disk->nexus[i].deferred = false;
        disk->nexus[i].n_ua = 0;
    }
    vd_scsi_disk_set_unit_attention(disk, VD_SCSI_NEXUS_MAX, VD_SENSE_POWER_ON_RESET);
    bool wce = vd_blk_default_write_cache(disk->blk);
    if (wce == vd_blk_write_cache(disk->blk)) {
        return;
    }
    if (wce) {
        vd_scsi_disk_set_wce(disk, true, NULL, NULL);
        return;
    }
    disk->bg_flushes++;
    vd_scsi_disk_set_wce(disk, false, vd_scsi_reset_wce_done, disk);
}

/* Whether a command of nexus (with tag, if by_tag) is in flight. */
bool vd_scsi_disk_query_task(VdScsiDisk *disk, unsigned nexus, bool by_tag, uint64_t tag)
{
    for (GList *l = disk->cmds.head; l; l = l->next) {
        VdScsiCmd *cmd = l->data;
        if (cmd->req->nexus == nexus && (!by_tag || cmd->req->tag == tag) && cmd->end == VD_SCSI_RESP_OK) {
            return true;
        }
    }
    return false;
}
