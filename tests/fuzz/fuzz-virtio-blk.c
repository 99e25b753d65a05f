/*
 * fuzz-virtio-blk.c - libFuzzer target: virtqueue descriptor tables and
 * requests for virtio-blk over virtio-mmio (hw/block/virtio-blk.c, the
 * virtio core) on a null backend, driven by the shared fuzz guest
 * (fz-virtio.c).  Besides the generic ring operations, OP_REQ builds a
 * request from a type, a sector and a data layout so most inputs reach the
 * device's request code.  Oracles: see fz-virtio.h and docs/fuzzing.md.
 */
#include "fz-virtio.h"
#include "hw/virtio-blk.h"
#include "hw/virtio-mmio.h"

#include <string.h>

#define DISK_SECTORS 8192u     /* 4 MiB */
#define F(b) VD_VIRTIO_BIT(b)

enum { OP_REQ = FZV_OP__MAX, OP__MAX };

/* Feature sets an input picks from with its second byte. */
static const uint64_t feature_sets[] = {
    VD_VIRTIO_CORE_FEATURES | F(VD_VIRTIO_BLK_F_FLUSH) | F(VD_VIRTIO_BLK_F_CONFIG_WCE) | F(VD_VIRTIO_BLK_F_MQ) |
        F(VD_VIRTIO_BLK_F_DISCARD) | F(VD_VIRTIO_BLK_F_WRITE_ZEROES) | F(VD_VIRTIO_BLK_F_SEG_MAX) |
        F(VD_VIRTIO_BLK_F_SIZE_MAX) | F(VD_VIRTIO_BLK_F_BLK_SIZE),
    VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1),
    VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1) | VD_VIRTIO_BIT(VD_VIRTIO_F_RING_EVENT_IDX) | F(VD_VIRTIO_BLK_F_FLUSH),
};

/* null-aio disks (no thread hand-off per request), one on the thread pool. */
static const char *const backends[] = {
    "driver=null,size=4M,aio=threads",
    "driver=null-aio,size=4M,cache=writethrough",
    "driver=null-aio,size=4M,read-only=on",
    "driver=null-aio,size=4M,cache=unsafe",
};

static const uint32_t req_types[] = {
    VD_VIRTIO_BLK_T_IN, VD_VIRTIO_BLK_T_OUT, VD_VIRTIO_BLK_T_FLUSH, VD_VIRTIO_BLK_T_GET_ID,
    VD_VIRTIO_BLK_T_DISCARD, VD_VIRTIO_BLK_T_WRITE_ZEROES, VD_VIRTIO_BLK_T_SECURE_ERASE, 2, 0xffffffffu,
};

/* OP_REQ: header, data (0-3 segments, or DISCARD/WRITE_ZEROES ranges), status; direct or indirect. */
static void op_req(FzVirtio *v, FzIn *in)
{
    uint8_t shape = fz_u8(in);
    uint32_t type = req_types[fz_u8(in) % G_N_ELEMENTS(req_types)];
    uint64_t sector = (shape & 0x80) ? fz_u64(in) : fz_u16(in) % (DISK_SECTORS + 64);
    VgBuf b[6];
    unsigned n = 0;
    uint64_t hdr = fzv_alloc(v, 16);
    memcpy(vg_ptr(&v->g, hdr), &type, 4);
    memset(vg_ptr(&v->g, hdr + 4), 0, 4);
    memcpy(vg_ptr(&v->g, hdr + 8), &sector, 8);
    b[n++] = (VgBuf){ hdr, (shape & 0x40) ? fz_u8(in) % 32 : 16, false };
    bool din = type == VD_VIRTIO_BLK_T_IN || type == VD_VIRTIO_BLK_T_GET_ID;
    if (type == VD_VIRTIO_BLK_T_DISCARD || type == VD_VIRTIO_BLK_T_WRITE_ZEROES) {
        unsigned segs = 1 + fz_u8(in) % 4;
        uint64_t seg = fzv_alloc(v, 16 * segs);
        for (unsigned i = 0; i < segs; i++) {
            uint64_t s = fz_u16(in) % (DISK_SECTORS + 64);
            uint32_t num = fz_u16(in), flags = fz_u8(in) & 3;
            memcpy(vg_ptr(&v->g, seg + 16 * i), &s, 8);
            memcpy(vg_ptr(&v->g, seg + 16 * i + 8), &num, 4);
            memcpy(vg_ptr(&v->g, seg + 16 * i + 12), &flags, 4);
        }
        b[n++] = (VgBuf){ seg, 16 * segs - ((shape & 0x20) ? 1 : 0), false };
    } else {
        unsigned segs = shape & 3;
        for (unsigned i = 0; i < segs; i++) {
            uint32_t len = (shape & 0x10) ? fz_u16(in) : 512u * (fz_u8(in) % 9);
            b[n++] = (VgBuf){ fzv_alloc(v, len), len, din };
        }
    }
    if (!(shape & 0x08)) {
        b[n++] = (VgBuf){ fzv_alloc(v, 1), 1, true };
    }
    fzv_submit(v, fz_u8(in), b, n, shape & 0x04);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: a fresh device and guest, the operations, then everything answered. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FzIn in = { data, size };
    fz_init();
    uint8_t setup = fz_u8(&in);
    VdBlockBackend *blk = fz_backend(backends[setup % G_N_ELEMENTS(backends)]);
    VdBus *bus = fz_bus(FZV_RAM);
    VdVirtioBlkConf conf = { .num_queues = 2, .queue_size = FZV_QSIZE, .no_merge = setup & 0x80 };
    VdVirtioBlk *dev = blk && bus ? vd_virtio_blk_new(blk, &conf, bus, NULL) : NULL;
    VdVirtioMmio *mmio = dev ? vd_virtio_mmio_new(bus, FZV_BASE, 0x200, FZV_IRQ, vd_virtio_blk_device(dev), NULL)
                             : NULL;
    if (!mmio) {
        fz_fail("cannot build the virtio-blk machine");
    }
    FzVirtio v;
    uint64_t features = feature_sets[fz_u8(&in) % G_N_ELEMENTS(feature_sets)];
    fzv_start(&v, bus, features, (features & F(VD_VIRTIO_BLK_F_MQ)) ? 2 : 1, 2);
    unsigned ops = 0;
    while (fz_more(&in) && ops++ < 256) {
        unsigned op = fz_u8(&in) % OP__MAX;
        if (op == OP_REQ) {
            op_req(&v, &in);
        } else {
            fzv_op(&v, &in, op);
        }
    }
    fzv_settle(&v);
    vd_virtio_mmio_free(mmio);
    vd_virtio_blk_free(dev);
    fz_drain_blk(blk);
    fz_order_reset();
    return 0;
}
