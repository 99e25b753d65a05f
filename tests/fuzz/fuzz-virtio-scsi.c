/*
 * fuzz-virtio-scsi.c - libFuzzer target: virtqueue descriptor tables,
 * command requests and control-queue TMF/AN requests for virtio-scsi over
 * virtio-mmio (hw/scsi/virtio-scsi.c and the SCSI disk) with two null LUNs,
 * driven by the shared fuzz guest (fz-virtio.c).  Queue 0 is control, 1 the
 * event queue (not answered on demand), 2 and 3 request queues.
 * Oracles: see fz-virtio.h and docs/fuzzing.md.
 */
#include "fz-virtio.h"
#include "hw/virtio-mmio.h"
#include "hw/virtio-scsi.h"

#include <string.h>

#define DISK_BLOCKS 512u      /* 256 KiB: small, VERIFY reads its whole range */
#define CTRL_Q  0
#define EVENT_Q 1
#define REQ_Q   2
#define F(b) VD_VIRTIO_BIT(b)

enum { OP_CMD = FZV_OP__MAX, OP_RW, OP_TMF, OP_EVENT_BUF, OP__MAX };

static const uint8_t rw_opcodes[] = { 0x28, 0x2a, 0x88, 0x8a, 0x35, 0x91, 0x15, 0x55, 0x1a, 0x5a, 0x12, 0x00, 0x03,
                                      0xa0, 0x25, 0x9e, 0x42, 0x41, 0x93, 0x1b };

/* Write the 19-byte request header and a CDB of cdb_len (the rest of the 32 zero). */
static uint64_t req_header(FzVirtio *v, FzIn *in, const uint8_t *cdb, size_t cdb_len, uint32_t *len)
{
    uint8_t h[VD_VIRTIO_SCSI_REQ_HDR + VD_VIRTIO_SCSI_CDB_DEFAULT] = { 0 };
    uint8_t lunsel = fz_u8(in);
    h[0] = 1;                                 /* single-level LUN structure */
    h[1] = (lunsel & 0x80) ? lunsel : 0;      /* target */
    h[2] = 0x40;                              /* flat addressing */
    h[3] = lunsel & 3;                        /* LUN 0, 1, and absent ones */
    if (lunsel & 0x40) {
        fz_bytes(in, h, 8);                   /* any LUN encoding */
    }
    uint64_t tag = fz_u8(in);
    memcpy(h + 8, &tag, 8);
    h[16] = fz_u8(in) & 3;                    /* task attribute */
    memcpy(h + VD_VIRTIO_SCSI_REQ_HDR, cdb, MIN(cdb_len, (size_t)VD_VIRTIO_SCSI_CDB_DEFAULT));
    uint64_t a = fzv_alloc(v, sizeof(h));
    memcpy(vg_ptr(&v->g, a), h, sizeof(h));
    *len = (lunsel & 0x20) ? fz_u8(in) % sizeof(h) : sizeof(h);
    return a;
}

/* Submit header, optional data-out, response, optional data-in on a request queue. */
static void submit_cmd(FzVirtio *v, FzIn *in, const uint8_t *cdb, size_t cdb_len, uint32_t out_len, uint32_t in_len)
{
    VgBuf b[5];
    unsigned n = 0;
    uint32_t hlen;
    uint64_t h = req_header(v, in, cdb, cdb_len, &hlen);
    uint8_t shape = fz_u8(in);
    b[n++] = (VgBuf){ h, hlen, false };
    if (out_len) {
        uint64_t d = fzv_alloc(v, out_len);
        fz_bytes(in, vg_ptr(&v->g, d), MIN(out_len, 24u));
        b[n++] = (VgBuf){ d, out_len, false };
    }
    uint32_t resp = (shape & 0x10) ? fz_u8(in) : VD_VIRTIO_SCSI_RESP_HDR + VD_VIRTIO_SCSI_SENSE_DEFAULT;
    b[n++] = (VgBuf){ fzv_alloc(v, resp), resp, true };
    if (in_len) {
        b[n++] = (VgBuf){ fzv_alloc(v, in_len), in_len, true };
    }
    fzv_submit(v, REQ_Q + (shape & 1), b, n, shape & 0x02);
}

/* OP_CMD: any CDB with fuzzed data-out and data-in sizes. */
static void op_cmd(FzVirtio *v, FzIn *in)
{
    uint8_t cdb[VD_VIRTIO_SCSI_CDB_DEFAULT] = { 0 };
    fz_bytes(in, cdb, 1 + fz_u8(in) % sizeof(cdb));
    uint32_t out_len = fz_u16(in) % 4096, in_len = fz_u16(in) % 8192;
    submit_cmd(v, in, cdb, sizeof(cdb), out_len, in_len);
}

/* OP_RW: a data-path or mode command with an LBA near the end and a short length. */
static void op_rw(FzVirtio *v, FzIn *in)
{
    uint8_t cdb[16] = { 0 };
    cdb[0] = rw_opcodes[fz_u8(in) % G_N_ELEMENTS(rw_opcodes)];
    cdb[1] = fz_u8(in);
    uint32_t lba = fz_u16(in) % (DISK_BLOCKS + 16);
    unsigned count = fz_u8(in) % 9;
    unsigned len = vd_scsi_cdb_length(cdb[0]);
    if (len == 16) {
        for (int i = 0; i < 4; i++) {
            cdb[6 + i] = lba >> (24 - 8 * i);
        }
        cdb[13] = count;
    } else if (len == 10) {
        for (int i = 0; i < 4; i++) {
            cdb[2 + i] = lba >> (24 - 8 * i);
        }
        cdb[8] = count;
    } else {
        cdb[4] = count * 8;
    }
    bool out = cdb[0] == 0x2a || cdb[0] == 0x8a || cdb[0] == 0x15 || cdb[0] == 0x55 || cdb[0] == 0x41 ||
               cdb[0] == 0x93 || cdb[0] == 0x42;
    uint32_t bytes = count * 512u;
    submit_cmd(v, in, cdb, len ? len : 10, out ? bytes : 0, out ? 0 : bytes + 64);
}

/* OP_TMF: a TMF or AN request on the control queue, with a response buffer of fuzzed size. */
static void op_tmf(FzVirtio *v, FzIn *in)
{
    uint8_t req[VD_VIRTIO_SCSI_TMF_REQ] = { 0 };
    uint32_t type = fz_u8(in) % 4, subtype = fz_u8(in) % 9;
    memcpy(req, &type, 4);
    uint8_t lunsel = fz_u8(in);
    uint64_t tag = fz_u8(in);
    if (type == VD_VIRTIO_SCSI_T_TMF) {
        memcpy(req + 4, &subtype, 4);
        req[8] = 1;
        req[10] = 0x40;
        req[11] = lunsel & 3;
        memcpy(req + 16, &tag, 8);
    } else {
        req[4] = 1;
        req[6] = 0x40;
        req[7] = lunsel & 3;
        uint32_t events = fz_u8(in);
        memcpy(req + 12, &events, 4);
    }
    uint64_t a = fzv_alloc(v, sizeof(req));
    memcpy(vg_ptr(&v->g, a), req, sizeof(req));
    uint8_t shape = fz_u8(in);
    uint32_t rlen = (shape & 0x10) ? shape % 8 : 8;
    VgBuf b[2] = { { a, (shape & 0x20) ? shape % 24 : (type == 0 ? 24 : 16), false },
                   { fzv_alloc(v, rlen), rlen, true } };
    fzv_submit(v, CTRL_Q, b, 2, shape & 0x02);
}

/* OP_EVENT_BUF: give the device an event buffer (answered only when an event happens). */
static void op_event_buf(FzVirtio *v, FzIn *in)
{
    uint32_t len = (fz_u8(in) & 1) ? fz_u8(in) % 32 : VD_VIRTIO_SCSI_EVENT_SIZE;
    VgBuf b = { fzv_alloc(v, len), len, true };
    fzv_submit(v, EVENT_Q, &b, 1, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: a fresh adapter with two LUNs and a guest, the operations, then everything answered. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FzIn in = { data, size };
    fz_init();
    uint8_t setup = fz_u8(&in);
    /* null-aio disks (no thread hand-off per request); LUN 1 on the pool when setup bit 2 says so. */
    static const char *const lun1[] = {
        "driver=null-aio,size=128K", "driver=null-aio,size=128K,read-only=on",
        "driver=null,size=128K,aio=threads", "driver=null,size=128K,aio=threads,read-only=on",
    };
    VdBlockBackend *blk0 = fz_backend((setup & 1) ? "driver=null-aio,size=256K,cache=writethrough"
                                                  : "driver=null-aio,size=256K");
    VdBlockBackend *blk1 = fz_backend(lun1[(setup >> 1) & 3]);
    VdBus *bus = fz_bus(FZV_RAM);
    VdVirtioScsiConf conf = { .num_queues = 2, .queue_size = FZV_QSIZE };
    VdVirtioScsi *dev = vd_virtio_scsi_new(&conf, bus, NULL);
    if (!blk0 || !blk1 || !dev || !vd_virtio_scsi_add_lun(dev, blk0, 0, NULL, NULL) ||
        !vd_virtio_scsi_add_lun(dev, blk1, 1, "fuzz1", NULL)) {
        fz_fail("cannot build the virtio-scsi machine");
    }
    VdVirtioMmio *mmio = vd_virtio_mmio_new(bus, FZV_BASE, 0x200, FZV_IRQ, vd_virtio_scsi_device(dev), NULL);
    FzVirtio v;
    uint64_t features = VD_VIRTIO_CORE_FEATURES | ((setup & 4) ? F(VD_VIRTIO_SCSI_F_HOTPLUG) | F(VD_VIRTIO_SCSI_F_CHANGE) : 0);
    fzv_start(&v, bus, features, 4, EVENT_Q);
    unsigned ops = 0;
    while (fz_more(&in) && ops++ < 256) {
        unsigned op = fz_u8(&in) % OP__MAX;
        switch (op) {
        case OP_CMD:
            op_cmd(&v, &in);
            break;
        case OP_RW:
            op_rw(&v, &in);
            break;
        case OP_TMF:
            op_tmf(&v, &in);
            break;
        case OP_EVENT_BUF:
            op_event_buf(&v, &in);
            break;
        default:
            fzv_op(&v, &in, op);
            break;
        }
    }
    fzv_settle(&v);
    vd_virtio_mmio_free(mmio);
    vd_virtio_scsi_free(dev);
    fz_drain_blk(blk0);
    fz_drain_blk(blk1);
    fz_order_reset();
    return 0;
}
