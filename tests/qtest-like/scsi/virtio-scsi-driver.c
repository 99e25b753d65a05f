/* virtio-scsi-driver.c - reference virtio-scsi guest driver (commands, TMFs, events, sd's cache control). */
#include "virtio-scsi-driver.h"
#include "util/bswap.h"   /* the wire structures are little-endian */

#include <string.h>

#define F(b) (1ull << (b))

/* 5.6.6.1: byte 0 is 1, byte 1 the target, bytes 2-3 the LUN in flat space (0x40 | lun >> 8). */
void vd_vscsi_lun(uint8_t out[8], unsigned target, unsigned lun)
{
    memset(out, 0, 8);
    out[0] = 1;
    out[1] = target;
    out[2] = 0x40 | (lun >> 8);
    out[3] = lun & 0xff;
}

/* Make one event buffer available to the device (5.6.6.3: device-writable, event_info_size bytes). */
static void post_event_buf(VdVscsi *s, unsigned i)
{
    VdVqBuf b = { s->event_buf[i], 16, true };
    vd_qtest_memset(s->dev.qt, s->event_buf[i], 0, 16);
    uint16_t head = vd_vq_add(&s->vq[VSCSI_EVENTQ], &b, 1, false, s->alloc);
    s->event_head[i] = head;
    vd_vq_publish(&s->vq[VSCSI_EVENTQ], head);
}

/* 3.1.1 for virtio-scsi: features, config, queues 0/1/2, DRIVER_OK, event buffers. */
bool vd_vscsi_init(VdVscsi *s, const VdVmmio *dev, uint64_t features, unsigned qsize, VdGuestAlloc *alloc)
{
    memset(s, 0, sizeof(*s));
    s->dev = *dev;
    s->alloc = alloc;
    s->next_tag = 1;
    features &= vd_vmmio_device_features(&s->dev);
    if (!vd_vmmio_negotiate(&s->dev, features)) {
        return false;
    }
    /* Linux writes both sizes before using the queues (virtscsi_probe). */
    vd_vmmio_config_write(&s->dev, VSCSI_CFG_CDB_SIZE, VSCSI_CDB_SIZE, 4);
    vd_vmmio_config_write(&s->dev, VSCSI_CFG_SENSE_SIZE, VSCSI_SENSE_SIZE, 4);
    s->cdb_size = vd_vmmio_config_read(&s->dev, VSCSI_CFG_CDB_SIZE, 4);
    s->sense_size = vd_vmmio_config_read(&s->dev, VSCSI_CFG_SENSE_SIZE, 4);
    if (s->cdb_size != VSCSI_CDB_SIZE || s->sense_size != VSCSI_SENSE_SIZE) {
        return false;
    }
    for (unsigned q = 0; q < 3; q++) {
        if (!vd_vq_setup(&s->vq[q], &s->dev, q, qsize, alloc)) {
            return false;
        }
    }
    vd_vmmio_driver_ok(&s->dev);
    for (unsigned i = 0; i < VSCSI_EVENT_BUFS; i++) {
        s->event_buf[i] = vd_guest_alloc(alloc, 16, 16);
        post_event_buf(s, i);
    }
    vd_vq_kick(&s->vq[VSCSI_EVENTQ]);
    return true;
}

/* Lay the command out in guest RAM (see the header comment) and make it available. */
VdVscsiReq vd_vscsi_submit(VdVscsi *s, const uint8_t lun[8], const uint8_t *cdb, size_t cdb_len,
                           const void *out, uint32_t out_len, uint32_t in_len)
{
    VdQtest *qt = s->dev.qt;
    VdVscsiReq r = { .in_len = in_len, .tag = s->next_tag++ };
    uint32_t req_len = 19 + s->cdb_size;
    uint8_t req[19 + VSCSI_CDB_SIZE] = { 0 };
    memcpy(req, lun, 8);
    vd_st_le64(req + 8, r.tag);
    req[16] = 0;                         /* task_attr SIMPLE */
    memcpy(req + 19, cdb, MIN(cdb_len, (size_t)s->cdb_size));
    uint64_t hdr = vd_guest_alloc(s->alloc, req_len, 8);
    vd_qtest_memwrite(qt, hdr, req, req_len);
    VdVqBuf bufs[4];
    unsigned n = 0;
    bufs[n++] = (VdVqBuf){ hdr, req_len, false };
    if (out_len) {
        uint64_t data = vd_guest_alloc(s->alloc, out_len, 8);
        vd_qtest_memwrite(qt, data, out, out_len);
        bufs[n++] = (VdVqBuf){ data, out_len, false };
    }
    /* The response: response byte preset to our "no answer" marker. */
    uint32_t resp_len = 12 + s->sense_size;
    r.resp = vd_guest_alloc(s->alloc, resp_len, 8);
    vd_qtest_memset(qt, r.resp, 0, resp_len);
    vd_qtest_writeb(qt, r.resp + 11, VSCSI_NO_ANSWER);
    bufs[n++] = (VdVqBuf){ r.resp, resp_len, true };
    if (in_len) {
        r.data_in = vd_guest_alloc(s->alloc, in_len, 8);
        bufs[n++] = (VdVqBuf){ r.data_in, in_len, true };
    }
    r.head = vd_vq_add(&s->vq[VSCSI_REQQ], bufs, n, false, s->alloc);
    vd_vq_publish(&s->vq[VSCSI_REQQ], r.head);
    return r;
}

/* Collect used elements of queue q until head is among them; false on timeout / NEEDS_RESET. */
static bool wait_head(VdVscsi *s, unsigned q, uint16_t head, uint32_t *len)
{
    while (!s->done[q][head]) {
        uint32_t id, l, isr;
        if (!vd_vq_wait_used(&s->vq[q], &id, &l, &isr)) {
            s->isr_seen |= isr;
            return false;
        }
        s->isr_seen |= isr;
        s->done[q][id] = true;
        s->used_len[q][id] = l;
    }
    s->done[q][head] = false;
    *len = s->used_len[q][head];
    return true;
}

/* Read the response (and data-in) of a command. */
void vd_vscsi_collect(VdVscsi *s, const VdVscsiReq *r, VdVscsiResult *res, void *in)
{
    memset(res, 0, sizeof(*res));
    res->response = VSCSI_NO_ANSWER;
    if (!wait_head(s, VSCSI_REQQ, r->head, &res->used_len)) {
        return;
    }
    uint8_t resp[12 + VSCSI_SENSE_SIZE];
    vd_qtest_memread(s->dev.qt, r->resp, resp, 12 + s->sense_size);
    res->sense_len = vd_ld_le32(resp);
    res->resid = vd_ld_le32(resp + 4);
    res->status = resp[10];
    res->response = resp[11];
    memcpy(res->sense, resp + 12, MIN(res->sense_len, (uint32_t)VSCSI_SENSE_SIZE));
    if (in && r->in_len) {
        vd_qtest_memread(s->dev.qt, r->data_in, in, r->in_len);
    }
}

uint8_t vd_vscsi_cmd(VdVscsi *s, unsigned lun, const uint8_t *cdb, size_t cdb_len, const void *out,
                     uint32_t out_len, void *in, uint32_t in_len, VdVscsiResult *res)
{
    uint8_t l[8];
    VdVscsiResult local;
    res = res ? res : &local;
    vd_vscsi_lun(l, 0, lun);
    VdVscsiReq r = vd_vscsi_submit(s, l, cdb, cdb_len, out, out_len, in_len);
    vd_vq_kick(&s->vq[VSCSI_REQQ]);
    vd_vscsi_collect(s, &r, res, in);
    return res->response == VSCSI_S_OK ? res->status : VSCSI_NO_ANSWER;
}

/* Put one control request (req readable, resp_len writable) and wait for it. */
static bool ctrl_request(VdVscsi *s, const uint8_t *req, uint32_t req_len, uint8_t *resp, uint32_t resp_len)
{
    VdQtest *qt = s->dev.qt;
    uint64_t a = vd_guest_alloc(s->alloc, req_len, 8);
    uint64_t b = vd_guest_alloc(s->alloc, resp_len, 8);
    vd_qtest_memwrite(qt, a, req, req_len);
    vd_qtest_memset(qt, b, VSCSI_NO_ANSWER, resp_len);
    VdVqBuf bufs[2] = { { a, req_len, false }, { b, resp_len, true } };
    uint16_t head = vd_vq_add(&s->vq[VSCSI_CTRLQ], bufs, 2, false, s->alloc);
    vd_vq_publish(&s->vq[VSCSI_CTRLQ], head);
    vd_vq_kick(&s->vq[VSCSI_CTRLQ]);
    uint32_t len;
    if (!wait_head(s, VSCSI_CTRLQ, head, &len)) {
        return false;
    }
    vd_qtest_memread(qt, b, resp, resp_len);
    return true;
}

/* TMF request: le32 type 0, le32 subtype, lun[8], le64 tag; response: one byte. */
uint8_t vd_vscsi_tmf(VdVscsi *s, uint32_t subtype, const uint8_t lun[8], uint64_t tag)
{
    uint8_t req[24] = { 0 };
    vd_st_le32(req, VSCSI_T_TMF);
    vd_st_le32(req + 4, subtype);
    memcpy(req + 8, lun, 8);
    vd_st_le64(req + 16, tag);
    uint8_t resp = VSCSI_NO_ANSWER;
    return ctrl_request(s, req, sizeof(req), &resp, 1) ? resp : VSCSI_NO_ANSWER;
}

/* AN request: le32 type, lun[8], le32 event_requested; response: le32 event_actual, u8 response. */
uint8_t vd_vscsi_an(VdVscsi *s, uint32_t type, const uint8_t lun[8], uint32_t requested, uint32_t *actual)
{
    uint8_t req[16] = { 0 };
    vd_st_le32(req, type);
    memcpy(req + 4, lun, 8);
    vd_st_le32(req + 12, requested);
    uint8_t resp[5];
    if (!ctrl_request(s, req, sizeof(req), resp, sizeof(resp))) {
        return VSCSI_NO_ANSWER;
    }
    *actual = vd_ld_le32(resp);
    return resp[4];
}

/* An event arrives in one of our buffers; read it and hand the buffer back. */
bool vd_vscsi_event(VdVscsi *s, uint8_t ev[16], unsigned timeout_ms)
{
    uint32_t id, len;
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    while (!vd_vq_get_used(&s->vq[VSCSI_EVENTQ], &id, &len)) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        vd_qtest_poll(s->dev.qt, 10);
        vd_vmmio_ack(&s->dev);
    }
    for (unsigned i = 0; i < VSCSI_EVENT_BUFS; i++) {
        if (s->event_head[i] == id) {
            vd_qtest_memread(s->dev.qt, s->event_buf[i], ev, 16);
            post_event_buf(s, i);
            vd_vq_kick(&s->vq[VSCSI_EVENTQ]);
            return true;
        }
    }
    return false;
}

/* Fixed-format sense: key in byte 2, ASC/ASCQ in bytes 12/13. */
uint8_t vd_vscsi_sense_key(const VdVscsiResult *r)
{
    return r->sense[2] & 0x0f;
}

uint16_t vd_vscsi_asc(const VdVscsiResult *r)
{
    return (uint16_t)(r->sense[12] << 8 | r->sense[13]);
}

/* What scsi_scan does first: TEST UNIT READY, retried past unit attentions. */
bool vd_vscsi_wait_ready(VdVscsi *s, unsigned lun)
{
    static const uint8_t tur[6] = { 0 };
    for (int i = 0; i < 8; i++) {
        VdVscsiResult r;
        if (vd_vscsi_cmd(s, lun, tur, 6, NULL, 0, NULL, 0, &r) == 0) {
            return true;
        }
        if (r.response != VSCSI_S_OK || vd_vscsi_sense_key(&r) != 0x6) {
            return false;
        }
    }
    return false;
}

/* READ(10) of n blocks at lba. */
uint8_t vd_vscsi_read10(VdVscsi *s, unsigned lun, uint32_t lba, void *buf, uint16_t n)
{
    uint8_t cdb[10] = { 0x28, 0, lba >> 24, lba >> 16, lba >> 8, lba, 0, n >> 8, n, 0 };
    return vd_vscsi_cmd(s, lun, cdb, 10, NULL, 0, buf, n * 512u, NULL);
}

/* WRITE(10); FUA is byte 1 bit 3, which sd sets for REQ_FUA when the disk reports DPOFUA. */
uint8_t vd_vscsi_write10(VdVscsi *s, unsigned lun, uint32_t lba, const void *buf, uint16_t n, bool fua)
{
    uint8_t cdb[10] = { 0x2a, fua ? 0x08 : 0, lba >> 24, lba >> 16, lba >> 8, lba, 0, n >> 8, n, 0 };
    return vd_vscsi_cmd(s, lun, cdb, 10, buf, n * 512u, NULL, 0, NULL);
}

/* sd_sync_cache(): SYNCHRONIZE CACHE(10), every field zero (whole cache, IMMED=0). */
uint8_t vd_vscsi_sync_cache(VdVscsi *s, unsigned lun)
{
    static const uint8_t cdb[10] = { 0x35 };
    return vd_vscsi_cmd(s, lun, cdb, 10, NULL, 0, NULL, 0, NULL);
}

/* scsi_mode_sense() with MODE SENSE(6): cmd[1] = dbd, cmd[2] = page, cmd[4] = len. */
static uint8_t mode_sense6(VdVscsi *s, unsigned lun, uint8_t dbd, uint8_t page, uint8_t *buf, uint8_t len)
{
    uint8_t cdb[6] = { 0x1a, dbd & 0x18, page, 0, len, 0 };
    memset(buf, 0, len);
    return vd_vscsi_cmd(s, lun, cdb, 6, NULL, 0, buf, len, NULL);
}

/* sd_read_cache_type(): find page 8 after the header and block descriptors; WCE is byte 2 bit 2. */
bool vd_vscsi_read_cache_type(VdVscsi *s, unsigned lun, bool *wce, bool *dpofua)
{
    uint8_t buf[255];
    if (mode_sense6(s, lun, 0, 0x08, buf, 4) != 0) {
        return false;   /* Linux: "Assuming drive cache: write through" */
    }
    unsigned len = buf[0] + 1u;
    if (len > 4 && mode_sense6(s, lun, 0, 0x08, buf, len) != 0) {
        return false;
    }
    unsigned off = 4 + buf[3];
    while (off + 2 < len && (buf[off] & 0x3f) != 0x08) {
        off += 2 + buf[off + 1];
    }
    if (off + 2 >= len) {
        return false;
    }
    *wce = buf[off + 2] & 0x04;
    *dpofua = buf[2] & 0x10;
    return true;
}

/* cache_type_store() + scsi_mode_select() for MODE SELECT(6), byte for byte. */
uint8_t vd_vscsi_set_cache_type(VdVscsi *s, unsigned lun, bool write_back, uint8_t *sent, size_t *sent_len,
                                VdVscsiResult *res)
{
    uint8_t buffer[64];
    if (mode_sense6(s, lun, 0x08, 0x08, buffer, sizeof(buffer)) != 0) {
        return VSCSI_NO_ANSWER;
    }
    unsigned length = buffer[0] + 1u, header_length = 4, bdl = buffer[3];
    uint8_t medium_type = buffer[1];
    unsigned len = MIN(sizeof(buffer), length - header_length - bdl);
    uint8_t *data = buffer + header_length + bdl;
    data[2] &= ~0x05;                          /* clear WCE and RCD */
    data[2] |= write_back ? 0x04 : 0;
    int sp = data[0] & 0x80 ? 1 : 0;           /* PS bit -> SP */
    data[0] &= ~0x80;
    sent[0] = 0;                               /* mode data length: reserved */
    sent[1] = medium_type;
    sent[2] = 0;                               /* device-specific: WP/DPOFUA cleared */
    sent[3] = bdl;
    memcpy(sent + 4, data, len);
    *sent_len = len + 4;
    uint8_t cdb[6] = { 0x15, 0x10 | (sp ? 0x01 : 0), 0, 0, (uint8_t)(len + 4), 0 };
    return vd_vscsi_cmd(s, lun, cdb, 6, sent, len + 4, NULL, 0, res);
}
