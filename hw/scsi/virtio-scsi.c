/*
 * virtio-scsi.c - the virtio SCSI host adapter: request queues that carry
 * CDBs to the SCSI disks of target 0, the control queue (task management,
 * asynchronous notification) and the event queue (LUN hotplug).
 */
#include "hw/virtio-scsi.h"
#include "util/bswap.h"
#include "util/counters.h"
#include "util/iov.h"

#include "hw/drain.h"

#include <gio/gio.h>
#include <string.h>

struct VdVirtioScsi {
    VdVirtioDevice *vdev;
    GMainContext *ctx;
    VdScsiTarget *target;
    GPtrArray *disks;               /* VdScsiDisk *, owned */
    unsigned num_queues, queue_size;
    uint32_t sense_size, cdb_size;  /* driver-writable config fields */
    GQueue events;                  /* VScsiEvent * waiting for a driver buffer */
    bool events_missed;
    VdDrain drain;                  /* commands and TMFs whose answer is not yet in guest memory */
    GQueue live;                    /* the commands among them (VScsiReq.live), in the order they were popped */
    VdVirtioScsiStats stats;
};

/* One command from a request queue. */
typedef struct VScsiReq {
    VdVirtqElem elem;               /* first: vd_virtq_pop allocates the whole struct */
    VdVirtioScsi *s;
    VdScsiRequest sreq;
    struct iovec *out, *in;         /* data-out / data-in parts of the chain */
    unsigned nout, nin;
    size_t in_data_len, resp_len;
    GList live;                     /* link in VdVirtioScsi.live while it counts in the drain */
} VScsiReq;

/* One control queue request waiting for task management to finish. */
typedef struct VScsiCtrl {
    VdVirtqElem elem;
    VdVirtioScsi *s;
    unsigned pending;
    uint8_t response;
} VScsiCtrl;

/* One event waiting for an event queue buffer. */
typedef struct VScsiEvent {
    uint8_t bytes[VD_VIRTIO_SCSI_EVENT_SIZE];
} VScsiEvent;

/*
 * Decode the 8-byte LUN field: 1, target, then single-level LUN in
 * peripheral (00 LL) or flat (01xxxxxx LL) form, then zeros.  Returns the
 * virtio response to give (OK if the disk exists) and the disk.
 */
static uint8_t vscsi_find(VdVirtioScsi *s, const uint8_t *lun, VdScsiDisk **disk)
{
    *disk = NULL;
    if (lun[0] != 1 || lun[1] != 0) {
        return VD_VIRTIO_SCSI_S_BAD_TARGET;
    }
    if ((lun[2] & 0xc0) != 0x40 && lun[2] != 0) {
        return VD_VIRTIO_SCSI_S_INCORRECT_LUN;
    }
    if (lun[4] | lun[5] | lun[6] | lun[7]) {
        return VD_VIRTIO_SCSI_S_INCORRECT_LUN;
    }
    unsigned n = (unsigned)(lun[2] & 0x3f) << 8 | lun[3];
    *disk = vd_scsi_target_find(s->target, n);
    return *disk ? VD_VIRTIO_SCSI_S_OK : VD_VIRTIO_SCSI_S_INCORRECT_LUN;
}

/* Return an element to the driver (if still live) and interrupt it. */
static void vscsi_push(VdVirtqElem *e, uint32_t written)
{
    if (vd_virtq_push(e, written)) {
        vd_virtq_notify(e->vq);
    }
}

/* Answer a command without a disk: only the response byte matters. */
static void vscsi_answer(VdVirtioScsi *s, VScsiReq *r, uint8_t response)
{
    uint8_t hdr[VD_VIRTIO_SCSI_RESP_HDR] = { 0 };
    vd_st_le32(hdr + 4, (uint32_t)MIN(r->elem.in_len - r->resp_len, (uint64_t)UINT32_MAX));  /* nothing moved */
    hdr[11] = response;
    vd_iov_from_buf(r->elem.in_sg, r->elem.in_num, 0, hdr, sizeof(hdr));
    vscsi_push(&r->elem, (uint32_t)r->resp_len);
    vd_virtq_elem_free(r);
}

/* A disk finished a command: write the response (and sense), return the chain. */
static void vscsi_cmd_complete(VdScsiRequest *sreq, void *opaque)
{
    VScsiReq *r = opaque;
    VdVirtioScsi *s = r->s;
    static const uint8_t responses[] = {
        [VD_SCSI_RESP_OK] = VD_VIRTIO_SCSI_S_OK,
        [VD_SCSI_RESP_OVERRUN] = VD_VIRTIO_SCSI_S_OVERRUN,
        [VD_SCSI_RESP_ABORTED] = VD_VIRTIO_SCSI_S_ABORTED,
        [VD_SCSI_RESP_RESET] = VD_VIRTIO_SCSI_S_RESET,
    };
    uint64_t *counters[] = { NULL, &s->stats.overrun, &s->stats.aborted, &s->stats.reset };
    if (counters[sreq->response]) {
        (*counters[sreq->response])++;
    }
    uint32_t sense_len = MIN(sreq->sense_len, s->sense_size);
    size_t resid = r->in_data_len ? sreq->in_resid : sreq->out_resid;
    uint8_t hdr[VD_VIRTIO_SCSI_RESP_HDR] = { 0 };
    vd_st_le32(hdr, sense_len);
    vd_st_le32(hdr + 4, (uint32_t)MIN(resid, (size_t)UINT32_MAX));
    hdr[10] = sreq->status;
    hdr[11] = responses[sreq->response];
    if (!vd_virtq_elem_stale(&r->elem)) {
        vd_iov_from_buf(r->elem.in_sg, r->elem.in_num, 0, hdr, sizeof(hdr));
        vd_iov_from_buf(r->elem.in_sg, r->elem.in_num, sizeof(hdr), sreq->sense, sense_len);
        size_t data = r->in_data_len - MIN(sreq->in_resid, r->in_data_len);
        vscsi_push(&r->elem, (uint32_t)MIN(r->resp_len + data, (size_t)UINT32_MAX));
    }
    g_queue_unlink(&s->live, &r->live);
    g_free(r->out);
    g_free(r->in);
    vd_virtq_elem_free(r);
    vd_drain_dec(&s->drain);   /* last: a drain callback may reset the device */
}

/* Validate one request-queue chain and hand its CDB to the disk. */
static void vscsi_handle_cmd(VdVirtioScsi *s, VScsiReq *r)
{
    VdVirtqElem *e = &r->elem;
    r->s = s;
    r->resp_len = VD_VIRTIO_SCSI_RESP_HDR + (size_t)s->sense_size;
    uint64_t req_len = VD_VIRTIO_SCSI_REQ_HDR + (uint64_t)s->cdb_size;
    if (e->in_len < r->resp_len) {
        s->stats.bad_layout++;
        vd_virtq_push(e, 0);
        vd_virtio_set_needs_reset(s->vdev, "virtio-scsi: request without room for the response");
        vd_virtq_elem_free(r);
        return;
    }
    if (e->out_len < req_len) {
        s->stats.failure++;
        vscsi_answer(s, r, VD_VIRTIO_SCSI_S_FAILURE);
        return;
    }
    uint8_t hdr[VD_VIRTIO_SCSI_REQ_HDR + VD_SCSI_CDB_MAX];
    size_t cdb_len = MIN(s->cdb_size, (uint32_t)VD_SCSI_CDB_MAX);
    vd_iov_to_buf(e->out_sg, e->out_num, 0, hdr, VD_VIRTIO_SCSI_REQ_HDR + cdb_len);
    VdScsiDisk *disk;
    uint8_t resp = vscsi_find(s, hdr, &disk);
    if (resp != VD_VIRTIO_SCSI_S_OK) {
        (*(resp == VD_VIRTIO_SCSI_S_BAD_TARGET ? &s->stats.bad_target : &s->stats.incorrect_lun))++;
        vscsi_answer(s, r, resp);
        return;
    }
    /* task_attr (hdr[16]) is not used: every command is a SIMPLE task. */
    r->nout = vd_iov_slice(e->out_sg, e->out_num, req_len, SIZE_MAX, &r->out);
    r->nin = vd_iov_slice(e->in_sg, e->in_num, r->resp_len, SIZE_MAX, &r->in);
    r->in_data_len = e->in_len - r->resp_len;
    VdScsiRequest *q = &r->sreq;
    memcpy(q->cdb, hdr + VD_VIRTIO_SCSI_REQ_HDR, cdb_len);
    q->cdb_len = cdb_len;
    q->nexus = 0;
    q->tag = vd_ld_le64(hdr + 8);
    q->out_iov = r->out;
    q->out_niov = r->nout;
    q->in_iov = r->in;
    q->in_niov = r->nin;
    q->complete = vscsi_cmd_complete;
    q->opaque = r;
    s->stats.commands++;
    vd_drain_inc(&s->drain);
    r->live.data = r;
    g_queue_push_tail_link(&s->live, &r->live);
    vd_scsi_disk_submit(disk, q);
}

/* Write the one-byte TMF response and return the chain. */
static void vscsi_ctrl_finish(VScsiCtrl *c)
{
    VdVirtioScsi *s = c->s;
    if (!vd_virtq_elem_stale(&c->elem)) {
        vd_iov_from_buf(c->elem.in_sg, c->elem.in_num, 0, &c->response, 1);
        vscsi_push(&c->elem, 1);
    }
    vd_virtq_elem_free(c);
    vd_drain_dec(&s->drain);   /* last: a drain callback may reset the device */
}

/* A disk finished its part of a TMF. */
static void vscsi_tmf_done(void *opaque, bool found)
{
    VScsiCtrl *c = opaque;
    if (--c->pending == 0) {
        vscsi_ctrl_finish(c);
    }
}

/* A task management function (virtio 1.2, 5.6.6.2.1). */
static void vscsi_handle_tmf(VdVirtioScsi *s, VScsiCtrl *c, const uint8_t *req)
{
    uint32_t subtype = vd_ld_le32(req + 4);
    const uint8_t *lun = req + 8;
    uint64_t tag = vd_ld_le64(req + 16);
    VdScsiDisk *disk;
    uint8_t resp = vscsi_find(s, lun, &disk);
    s->stats.tmfs++;
    c->response = VD_VIRTIO_SCSI_S_FUNCTION_COMPLETE;
    c->pending = 1;     /* closed at the end, so done callbacks cannot finish early */
    if (resp == VD_VIRTIO_SCSI_S_BAD_TARGET ||
        (resp != VD_VIRTIO_SCSI_S_OK && subtype != VD_VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET)) {
        c->response = resp;
        vscsi_tmf_done(c, false);
        return;
    }
    switch (subtype) {
    case VD_VIRTIO_SCSI_T_TMF_ABORT_TASK:
        c->pending++;
        vd_scsi_disk_abort_task(disk, 0, tag, vscsi_tmf_done, c);
        break;
    case VD_VIRTIO_SCSI_T_TMF_ABORT_TASK_SET:
        c->pending++;
        vd_scsi_disk_abort_task_set(disk, 0, vscsi_tmf_done, c);
        break;
    case VD_VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET:
        c->pending++;
        vd_scsi_disk_clear_task_set(disk, vscsi_tmf_done, c);
        break;
    case VD_VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
        c->pending++;
        vd_scsi_disk_lun_reset(disk, vscsi_tmf_done, c);
        break;
    case VD_VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET:
        /* The nexus between the adapter and target 0: every LUN. */
        for (unsigned i = 0; i < s->disks->len; i++) {
            c->pending++;
            vd_scsi_disk_nexus_reset(g_ptr_array_index(s->disks, i), 0, vscsi_tmf_done, c);
        }
        break;
    case VD_VIRTIO_SCSI_T_TMF_QUERY_TASK:
        c->response = vd_scsi_disk_query_task(disk, 0, true, tag) ? VD_VIRTIO_SCSI_S_FUNCTION_SUCCEEDED
                                                                  : VD_VIRTIO_SCSI_S_FUNCTION_COMPLETE;
        break;
    case VD_VIRTIO_SCSI_T_TMF_QUERY_TASK_SET:
        c->response = vd_scsi_disk_query_task(disk, 0, false, 0) ? VD_VIRTIO_SCSI_S_FUNCTION_SUCCEEDED
                                                                 : VD_VIRTIO_SCSI_S_FUNCTION_COMPLETE;
        break;
    default:
        /* CLEAR ACA (no ACA support) and unknown subtypes. */
        c->response = VD_VIRTIO_SCSI_S_FUNCTION_REJECTED;
        break;
    }
    vscsi_tmf_done(c, false);
}

/* A control queue request: TMF or AN query/subscribe. */
static void vscsi_handle_ctrl(VdVirtioScsi *s, VScsiCtrl *c)
{
    VdVirtqElem *e = &c->elem;
    uint8_t req[VD_VIRTIO_SCSI_TMF_REQ] = { 0 };
    c->s = s;
    size_t got = vd_iov_to_buf(e->out_sg, e->out_num, 0, req, sizeof(req));
    uint32_t type = got >= 4 ? vd_ld_le32(req) : UINT32_MAX;
    bool tmf = type == VD_VIRTIO_SCSI_T_TMF;
    bool an = type == VD_VIRTIO_SCSI_T_AN_QUERY || type == VD_VIRTIO_SCSI_T_AN_SUBSCRIBE;
    uint64_t resp_len = tmf ? 1 : VD_VIRTIO_SCSI_AN_RESP;
    if ((!tmf && !an) || e->in_len < resp_len) {
        s->stats.bad_layout++;
        vd_virtq_push(e, 0);
        vd_virtio_set_needs_reset(s->vdev, "virtio-scsi: control request of unknown type or without response room");
        vd_virtq_elem_free(c);
        return;
    }
    vd_drain_inc(&s->drain);
    if (tmf) {
        if (e->out_len < VD_VIRTIO_SCSI_TMF_REQ) {
            s->stats.failure++;
            c->response = VD_VIRTIO_SCSI_S_FAILURE;
            vscsi_ctrl_finish(c);
            return;
        }
        vscsi_handle_tmf(s, c, req);
        return;
    }
    /* AN: no notification class is supported, so event_actual is 0. */
    uint8_t resp[VD_VIRTIO_SCSI_AN_RESP] = { 0 };
    s->stats.an_requests++;
    if (e->out_len < VD_VIRTIO_SCSI_AN_REQ) {
        s->stats.failure++;
        resp[4] = VD_VIRTIO_SCSI_S_FAILURE;
    } else {
        VdScsiDisk *disk;
        resp[4] = vscsi_find(s, req + 4, &disk);
    }
    vd_iov_from_buf(e->in_sg, e->in_num, 0, resp, sizeof(resp));
    vscsi_push(e, sizeof(resp));
    vd_virtq_elem_free(c);
    vd_drain_dec(&s->drain);
}

/* Hand pending events to the driver's event buffers. */
static void vscsi_flush_events(VdVirtioScsi *s)
{
    VdVirtQueue *vq = vd_virtio_queue(s->vdev, 1);
    if (!vd_virtq_ready(vq) || !(vd_virtio_get_status(s->vdev) & VD_VIRTIO_STATUS_DRIVER_OK)) {
        return;
    }
    bool pushed = false;
    while (!g_queue_is_empty(&s->events)) {
        VdVirtqElem *e = vd_virtq_pop(vq, sizeof(VdVirtqElem));
        if (!e) {
            break;
        }
        if (e->in_len < VD_VIRTIO_SCSI_EVENT_SIZE) {
            s->stats.bad_layout++;
            vd_virtq_push(e, 0);
            vd_virtio_set_needs_reset(s->vdev, "virtio-scsi: event buffer shorter than 16 bytes");
            vd_virtq_elem_free(e);
            return;
        }
        VScsiEvent *ev = g_queue_pop_head(&s->events);
        if (s->events_missed) {
            vd_st_le32(ev->bytes, vd_ld_le32(ev->bytes) | VD_VIRTIO_SCSI_T_EVENTS_MISSED);
            s->events_missed = false;
        }
        vd_iov_from_buf(e->in_sg, e->in_num, 0, ev->bytes, sizeof(ev->bytes));
        vd_virtq_push(e, sizeof(ev->bytes));
        vd_virtq_elem_free(e);
        g_free(ev);
        s->stats.events++;
        pushed = true;
    }
    if (pushed) {
        vd_virtq_notify(vq);
    }
}

/* Queue an event for LUN lun (it waits for a driver buffer). */
static void vscsi_post_event(VdVirtioScsi *s, uint32_t event, unsigned lun, uint32_t reason)
{
    if (g_queue_get_length(&s->events) >= VD_VIRTIO_SCSI_EVENTS_PENDING) {
        s->events_missed = true;
        s->stats.events_missed++;
        return;
    }
    VScsiEvent *ev = g_new0(VScsiEvent, 1);
    vd_st_le32(ev->bytes, event);
    ev->bytes[4] = 1;
    ev->bytes[5] = 0;
    ev->bytes[6] = 0x40 | (lun >> 8);
    ev->bytes[7] = lun & 0xff;
    vd_st_le32(ev->bytes + 12, reason);
    g_queue_push_tail(&s->events, ev);
    vscsi_flush_events(s);
}

/* A queue was kicked: control (0), event (1) or a request queue. */
static void vscsi_queue_notify(VdVirtioDevice *vdev, VdVirtQueue *vq)
{
    VdVirtioScsi *s = vd_virtio_device_opaque(vdev);
    unsigned idx = vd_virtq_index(vq);
    if (idx == 1) {
        vscsi_flush_events(s);
        return;
    }
    if (idx == 0) {
        VScsiCtrl *c;
        while (!vd_virtio_broken(vdev) && (c = vd_virtq_pop(vq, sizeof(VScsiCtrl)))) {
            vscsi_handle_ctrl(s, c);
        }
        return;
    }
    VScsiReq *r;
    while (!vd_virtio_broken(vdev) && (r = vd_virtq_pop(vq, sizeof(VScsiReq)))) {
        vscsi_handle_cmd(s, r);
    }
}

/* Features: HOTPLUG, CHANGE, plus what the core implements. */
static uint64_t vscsi_get_features(VdVirtioDevice *vdev)
{
    return VD_VIRTIO_CORE_FEATURES | VD_VIRTIO_BIT(VD_VIRTIO_SCSI_F_HOTPLUG) |
           VD_VIRTIO_BIT(VD_VIRTIO_SCSI_F_CHANGE);
}

/*
 * A disk queued a unit attention.  With CHANGE negotiated, a "parameters
 * changed" one (ASC 2Ah) for our nexus is also sent as a PARAM_CHANGE event,
 * reason = ASC | ASCQ << 8 (virtio 1.2, 5.6.6.3.3); Linux rescans the disk
 * on 2A/00, 2A/01 and 2A/09.  The unit attention itself stays queued.
 */
static void vscsi_ua_notify(void *opaque, VdScsiDisk *disk, unsigned nexus, VdScsiSense sense)
{
    VdVirtioScsi *s = opaque;
    if (nexus != 0 || sense.asc != 0x2a || !(vd_virtio_get_status(s->vdev) & VD_VIRTIO_STATUS_DRIVER_OK) ||
        !vd_virtio_has_feature(s->vdev, VD_VIRTIO_SCSI_F_CHANGE)) {
        return;
    }
    vscsi_post_event(s, VD_VIRTIO_SCSI_T_PARAM_CHANGE, vd_scsi_disk_lun(disk),
                     (uint32_t)sense.asc | (uint32_t)sense.ascq << 8);
}

/* The config space (virtio 1.2, 5.6.4). */
static void vscsi_get_config(VdVirtioDevice *vdev, uint8_t *cfg)
{
    VdVirtioScsi *s = vd_virtio_device_opaque(vdev);
    memset(cfg, 0, VD_VIRTIO_SCSI_CONFIG_SIZE);
    vd_st_le32(cfg + VD_VIRTIO_SCSI_CFG_NUM_QUEUES, s->num_queues);
    vd_st_le32(cfg + VD_VIRTIO_SCSI_CFG_SEG_MAX, s->queue_size - 2);
    vd_st_le32(cfg + VD_VIRTIO_SCSI_CFG_MAX_SECTORS, VD_SCSI_MAX_XFER_BLOCKS);
    vd_st_le32(cfg + VD_VIRTIO_SCSI_CFG_CMD_PER_LUN, s->queue_size);
    vd_st_le32(cfg + VD_VIRTIO_SCSI_CFG_EVENT_INFO_SIZE, VD_VIRTIO_SCSI_EVENT_SIZE);
    vd_st_le32(cfg + VD_VIRTIO_SCSI_CFG_SENSE_SIZE, s->sense_size);
    vd_st_le32(cfg + VD_VIRTIO_SCSI_CFG_CDB_SIZE, s->cdb_size);
    vd_st_le16(cfg + VD_VIRTIO_SCSI_CFG_MAX_CHANNEL, 0);
    vd_st_le16(cfg + VD_VIRTIO_SCSI_CFG_MAX_TARGET, 0);
    vd_st_le32(cfg + VD_VIRTIO_SCSI_CFG_MAX_LUN, VD_SCSI_LUN_MAX - 1);
}

/*
 * The driver may write sense_size and cdb_size (whole 32-bit fields).  Any
 * value up to 256 is accepted: the request layout follows it, the disk sees
 * at most VD_SCSI_CDB_MAX CDB bytes and sense is cut to sense_size.
 */
static void vscsi_config_write(VdVirtioDevice *vdev, uint32_t offset, const uint8_t *buf, uint32_t len)
{
    VdVirtioScsi *s = vd_virtio_device_opaque(vdev);
    static const uint32_t fields[] = { VD_VIRTIO_SCSI_CFG_SENSE_SIZE, VD_VIRTIO_SCSI_CFG_CDB_SIZE };
    for (size_t i = 0; i < G_N_ELEMENTS(fields); i++) {
        if (offset != fields[i] || len != 4) {
            continue;
        }
        uint32_t v = vd_ld_le32(buf);
        if (v > 256) {
            return;
        }
        *(i == 0 ? &s->sense_size : &s->cdb_size) = v;
    }
}

/* No-op TMF completion for resets the adapter starts itself. */
static void vscsi_reset_done(void *opaque, bool found)
{
}

/* Every command and TMF of the old epoch is answered: default config, and the reset completes. */
static void vscsi_reset_drained(void *opaque)
{
    VdVirtioScsi *s = opaque;
    g_queue_clear_full(&s->events, g_free);
    s->events_missed = false;
    s->sense_size = VD_VIRTIO_SCSI_SENSE_DEFAULT;
    s->cdb_size = VD_VIRTIO_SCSI_CDB_DEFAULT;
    vd_virtio_reset_done(s->vdev);
}

/* Device reset: end every command (power-on state for every LUN), finish from the drain callback. */
static void vscsi_reset(VdVirtioDevice *vdev)
{
    VdVirtioScsi *s = vd_virtio_device_opaque(vdev);
    for (unsigned i = 0; i < s->disks->len; i++) {
        vd_scsi_disk_hard_reset(g_ptr_array_index(s->disks, i), vscsi_reset_done, NULL);
    }
    vd_virtio_scsi_drain(s, vscsi_reset_drained, s);
}

static const VdVirtioDeviceOps vscsi_ops = {
    .name = "virtio-scsi",
    .device_id = VD_VIRTIO_ID_SCSI,
    .config_size = VD_VIRTIO_SCSI_CONFIG_SIZE,
    .get_features = vscsi_get_features,
    .get_config = vscsi_get_config,
    .config_write = vscsi_config_write,
    .queue_notify = vscsi_queue_notify,
    .reset = vscsi_reset,
};

/* Create the adapter; see virtio-scsi.h. */
VdVirtioScsi *vd_virtio_scsi_new(const VdVirtioScsiConf *conf, VdBus *bus, GError **errp)
{
    VdVirtioScsiConf def = { 0 };
    conf = conf ? conf : &def;
    unsigned nq = conf->num_queues ? conf->num_queues : 1;
    unsigned qs = conf->queue_size ? conf->queue_size : 128;
    if (nq > 16 || qs < 4 || qs > VD_VIRTQ_MAX_SIZE || (qs & (qs - 1))) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "virtio-scsi: %u request queues of %u entries (1..16 queues, a power of two >= 4 entries)",
                    nq, qs);
        return NULL;
    }
    VdVirtioScsi *s = g_new0(VdVirtioScsi, 1);
    s->ctx = conf->ctx ? g_main_context_ref(conf->ctx)
           : bus ? g_main_context_ref(vd_bus_context(bus)) : g_main_context_ref_thread_default();
    s->target = vd_scsi_target_new();
    s->disks = g_ptr_array_new();
    s->num_queues = nq;
    s->queue_size = qs;
    s->sense_size = VD_VIRTIO_SCSI_SENSE_DEFAULT;
    s->cdb_size = VD_VIRTIO_SCSI_CDB_DEFAULT;
    g_queue_init(&s->events);
    s->vdev = vd_virtio_device_new(&vscsi_ops, s, 2 + nq, qs, bus, errp);
    if (!s->vdev) {
        vd_scsi_target_free(s->target);
        g_ptr_array_free(s->disks, TRUE);
        g_main_context_unref(s->ctx);
        g_free(s);
        return NULL;
    }
    return s;
}

/* Add a LUN; announce it if the driver is running with HOTPLUG. */
bool vd_virtio_scsi_add_lun(VdVirtioScsi *s, VdBlockBackend *blk, unsigned lun, const char *serial,
                            GError **errp)
{
    if (vd_scsi_target_find(s->target, lun)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "virtio-scsi: LUN %u is already in use", lun);
        return false;
    }
    VdScsiDiskConfig cfg = { .lun = lun, .serial = serial };
    VdScsiDisk *disk = vd_scsi_disk_new(blk, &cfg, s->ctx, errp);
    if (!disk) {
        return false;
    }
    if (!vd_scsi_target_add(s->target, disk, errp)) {
        vd_scsi_disk_free(disk);
        return false;
    }
    g_ptr_array_add(s->disks, disk);
    vd_scsi_disk_set_ua_notify(disk, vscsi_ua_notify, s);
    if ((vd_virtio_get_status(s->vdev) & VD_VIRTIO_STATUS_DRIVER_OK) &&
        vd_virtio_has_feature(s->vdev, VD_VIRTIO_SCSI_F_HOTPLUG)) {
        vscsi_post_event(s, VD_VIRTIO_SCSI_T_TRANSPORT_RESET, lun, VD_VIRTIO_SCSI_EVT_RESET_RESCAN);
    }
    return true;
}

/* Reset, wait for everything, free disks and adapter. */
void vd_virtio_scsi_free(VdVirtioScsi *s)
{
    if (!s) {
        return;
    }
    vd_virtio_reset(s->vdev);
    vd_drain_sync(&s->drain, s->ctx);   /* teardown: every command and TMF answered (stale) */
    g_assert(!vd_virtio_resetting(s->vdev));
    for (unsigned i = 0; i < s->disks->len; i++) {
        vd_scsi_disk_free(g_ptr_array_index(s->disks, i));
    }
    vd_scsi_target_free(s->target);
    g_ptr_array_free(s->disks, TRUE);
    g_queue_clear_full(&s->events, g_free);
    vd_virtio_device_free(s->vdev);
    g_main_context_unref(s->ctx);
    g_free(s);
}

/* Commands and TMFs taken whose answer is not yet in guest memory (disk->done, disk->tmf_done included). */
unsigned vd_virtio_scsi_in_flight(VdVirtioScsi *s)
{
    return s->drain.in_flight;
}

/* Call cb once vd_virtio_scsi_in_flight is 0; see virtio-scsi.h. */
void vd_virtio_scsi_drain(VdVirtioScsi *s, VdDrainFunc *cb, void *opaque)
{
    vd_drain_wait(&s->drain, cb, opaque);
}

/* The virtio device, for binding a transport. */
VdVirtioDevice *vd_virtio_scsi_device(VdVirtioScsi *s)
{
    return s->vdev;
}

/* The disk behind a LUN, or NULL. */
VdScsiDisk *vd_virtio_scsi_disk(VdVirtioScsi *s, unsigned lun)
{
    return vd_scsi_target_find(s->target, lun);
}

/* Number of LUNs of target 0. */
unsigned vd_virtio_scsi_lun_count(VdVirtioScsi *s)
{
    return vd_scsi_target_count(s->target);
}

/* Copy the adapter counters. */
void vd_virtio_scsi_get_stats(VdVirtioScsi *s, VdVirtioScsiStats *out)
{
    *out = s->stats;
}

/* "key=value" rendering of the adapter counters. */
void vd_virtio_scsi_format_stats(VdVirtioScsi *s, GString *out)
{
#define C(f) VD_COUNTER(VdVirtioScsiStats, f)
    static const VdCounter counters[] = {
        C(commands), C(bad_target), C(incorrect_lun), C(failure), C(overrun), C(aborted), C(reset), C(tmfs),
        C(an_requests), C(events), C(events_missed), C(bad_layout),
    };
#undef C
    vd_counters_format(out, counters, G_N_ELEMENTS(counters), &s->stats);
    vd_counters_append(out, "luns", vd_scsi_target_count(s->target));
}

/* ---- migration (hw/vmstate.h) ---- */

#define VSCSI_STATE_VERSION 1

typedef struct VScsiState {
    VdVirtioState *core;
    uint32_t sense_size, cdb_size;
    bool events_missed;
    GQueue events;                  /* VScsiEvent * */
    VdScsiDiskState **disks;        /* in s->disks order */
    uint32_t nheld;
    struct { uint16_t queue, head; } *held;   /* each command parked on the source */
} VScsiState;

/*
 * Save a quiescent adapter: the core, the configuration, pending events,
 * each LUN's disk state, then every command still popped (all parked in a
 * backend by then), by queue and head, to be issued again on the
 * destination.  A task management function in flight refuses.
 */
static bool vscsi_state_save(void *dev, VdMigWriter *w, GError **errp)
{
    VdVirtioScsi *s = dev;
    if (s->drain.in_flight != s->live.length || vd_virtio_resetting(s->vdev)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BUSY, "virtio-scsi: a reset or task management function waits "
                    "for commands held by werror=stop: resume with cont first");
        return false;
    }
    vd_virtio_save(s->vdev, w);
    vd_mig_put_u32(w, s->num_queues);
    vd_mig_put_u32(w, s->queue_size);
    vd_mig_put_u32(w, s->sense_size);
    vd_mig_put_u32(w, s->cdb_size);
    vd_mig_put_u8(w, s->events_missed);
    vd_mig_put_u32(w, s->events.length);
    for (GList *l = s->events.head; l; l = l->next) {
        vd_mig_put_bytes(w, ((VScsiEvent *)l->data)->bytes, VD_VIRTIO_SCSI_EVENT_SIZE);
    }
    vd_mig_put_u32(w, s->disks->len);
    for (guint i = 0; i < s->disks->len; i++) {
        VdScsiDisk *disk = g_ptr_array_index(s->disks, i);
        vd_mig_put_u32(w, vd_scsi_disk_lun(disk));
        if (!vd_scsi_disk_save(disk, w, errp)) {
            return false;
        }
    }
    vd_mig_put_u32(w, s->live.length);
    for (GList *l = s->live.head; l; l = l->next) {
        VScsiReq *r = l->data;
        vd_mig_put_u16(w, vd_virtq_index(r->elem.vq));
        vd_mig_put_u16(w, r->elem.index);
    }
    return true;
}

/* Drop a parsed state. */
static void vscsi_state_free(void *state)
{
    VScsiState *st = state;
    if (!st) {
        return;
    }
    vd_virtio_state_free(st->core);
    g_queue_clear_full(&st->events, g_free);
    for (guint i = 0; st->disks && st->disks[i]; i++) {
        vd_scsi_disk_state_free(st->disks[i]);
    }
    g_free(st->disks);
    g_free(st->held);
    g_free(st);
}

/* Read the events waiting for a driver buffer. */
static bool vscsi_parse_events(VdMigSection *sec, VScsiState *st, GError **errp)
{
    uint32_t n;
    if (!vd_mig_get_bool(sec, "events missed", &st->events_missed, errp) ||
        !vd_mig_get_u32(sec, "pending events", &n, errp)) {
        return false;
    }
    if (n > VD_VIRTIO_SCSI_EVENTS_PENDING) {
        return vd_mig_field_error(sec, "pending events", errp, "%u (at most %u)", n, VD_VIRTIO_SCSI_EVENTS_PENDING);
    }
    for (uint32_t i = 0; i < n; i++) {
        VScsiEvent *ev = g_new0(VScsiEvent, 1);
        g_queue_push_tail(&st->events, ev);
        if (!vd_mig_get_bytes(sec, "pending event", ev->bytes, sizeof(ev->bytes), errp)) {
            return false;
        }
    }
    return true;
}

/* Read the commands parked on the source: each on a request queue, its head inside the ring. */
static bool vscsi_parse_held(VdVirtioScsi *s, VdMigSection *sec, VScsiState *st, GError **errp)
{
    if (!vd_mig_get_u32(sec, "held commands", &st->nheld, errp)) {
        return false;
    }
    if (st->nheld > (uint64_t)s->num_queues * s->queue_size) {
        return vd_mig_field_error(sec, "held commands", errp, "%u is more than the rings hold", st->nheld);
    }
    st->held = g_malloc0_n(st->nheld, sizeof(*st->held));
    for (uint32_t i = 0; i < st->nheld; i++) {
        if (!vd_mig_get_u16(sec, "held command queue", &st->held[i].queue, errp) ||
            !vd_mig_get_u16(sec, "held command head", &st->held[i].head, errp)) {
            return false;
        }
        unsigned q = st->held[i].queue;
        if (q < 2 || q >= 2 + s->num_queues || st->held[i].head >= s->queue_size) {
            return vd_mig_field_error(sec, "held command", errp, "queue %u head %u is not on a request queue of %u",
                                      st->held[i].queue, st->held[i].head, s->queue_size);
        }
    }
    return true;
}

/* Read and check the section against this adapter and its LUNs; nothing changes. */
static void *vscsi_state_parse(void *dev, VdMigSection *sec, GError **errp)
{
    VdVirtioScsi *s = dev;
    VScsiState *st = g_new0(VScsiState, 1);
    g_queue_init(&st->events);
    st->disks = g_new0(VdScsiDiskState *, s->disks->len + 1);
    uint32_t nq, qs, ndisks;
    st->core = vd_virtio_parse(s->vdev, sec, errp);
    if (!st->core || !vd_mig_get_u32(sec, "num-queues", &nq, errp) || !vd_mig_get_u32(sec, "queue-size", &qs, errp)) {
        goto fail;
    }
    if (nq != s->num_queues || qs != s->queue_size) {
        vd_mig_field_error(sec, "num-queues/queue-size", errp, "%u queues of %u in the stream, this adapter has "
                           "%u of %u", nq, qs, s->num_queues, s->queue_size);
        goto fail;
    }
    if (!vd_mig_get_u32(sec, "sense_size", &st->sense_size, errp) ||
        !vd_mig_get_u32(sec, "cdb_size", &st->cdb_size, errp)) {
        goto fail;
    }
    if (st->sense_size > 256 || st->cdb_size > 256) {
        vd_mig_field_error(sec, "sense_size/cdb_size", errp, "%u/%u (at most 256)", st->sense_size, st->cdb_size);
        goto fail;
    }
    if (!vscsi_parse_events(sec, st, errp) || !vd_mig_get_u32(sec, "LUNs", &ndisks, errp)) {
        goto fail;
    }
    if (ndisks != s->disks->len) {
        vd_mig_field_error(sec, "LUNs", errp, "%u on the source, %u here", ndisks, s->disks->len);
        goto fail;
    }
    for (guint i = 0; i < s->disks->len; i++) {
        VdScsiDisk *disk = g_ptr_array_index(s->disks, i);
        uint32_t lun;
        if (!vd_mig_get_u32(sec, "LUN", &lun, errp)) {
            goto fail;
        }
        if (lun != vd_scsi_disk_lun(disk)) {
            vd_mig_field_error(sec, "LUN", errp, "LUN %u on the source where this adapter has LUN %u", lun,
                               vd_scsi_disk_lun(disk));
            goto fail;
        }
        if (!(st->disks[i] = vd_scsi_disk_parse(disk, sec, errp))) {
            goto fail;
        }
    }
    if (!vscsi_parse_held(s, sec, st, errp) || !vd_mig_section_done(sec, errp)) {
        goto fail;
    }
    return st;
fail:
    vscsi_state_free(st);
    return NULL;
}

/* Become the source's adapter: core, configuration, pending events, each LUN's unit attentions. */
static void vscsi_state_apply(void *dev, void *state)
{
    VdVirtioScsi *s = dev;
    VScsiState *st = state;
    vd_virtio_apply(s->vdev, g_steal_pointer(&st->core));
    s->sense_size = st->sense_size;
    s->cdb_size = st->cdb_size;
    s->events_missed = st->events_missed;
    g_queue_clear_full(&s->events, g_free);
    GQueue tmp = s->events;
    s->events = st->events;
    st->events = tmp;
    for (guint i = 0; i < s->disks->len; i++) {
        vd_scsi_disk_apply(g_ptr_array_index(s->disks, i), g_steal_pointer(&st->disks[i]));
    }
    for (uint32_t i = 0; i < st->nheld; i++) {
        VdVirtQueue *vq = vd_virtio_queue(s->vdev, st->held[i].queue);
        VScsiReq *r = vd_virtq_pop_head(vq, st->held[i].head, sizeof(VScsiReq));
        if (r) {
            vscsi_handle_cmd(s, r);
        }
    }
    vscsi_state_free(st);
}

const VdDeviceStateOps vd_virtio_scsi_state_ops = {
    .kind = "virtio-scsi",
    .version = VSCSI_STATE_VERSION,
    .save = vscsi_state_save,
    .parse = vscsi_state_parse,
    .apply = vscsi_state_apply,
    .free_state = vscsi_state_free,
};
