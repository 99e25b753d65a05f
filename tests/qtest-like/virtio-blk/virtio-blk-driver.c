/* virtio-blk-driver.c - reference virtio-blk guest driver (requests, write cache) over virtio-mmio. */
#include "virtio-blk-driver.h"
#include "util/bswap.h"

#include <string.h>

#define F(b) (1ull << (b))

/* Every feature bit this driver knows how to use. */
uint64_t vd_vblk_all_features(void)
{
    return F(VF_VERSION_1) | F(VF_RING_INDIRECT_DESC) | F(VF_RING_EVENT_IDX) | F(VBLK_F_SIZE_MAX) |
           F(VBLK_F_SEG_MAX) | F(VBLK_F_RO) | F(VBLK_F_BLK_SIZE) | F(VBLK_F_FLUSH) | F(VBLK_F_TOPOLOGY) |
           F(VBLK_F_CONFIG_WCE) | F(VBLK_F_MQ) | F(VBLK_F_DISCARD) | F(VBLK_F_WRITE_ZEROES);
}

/* 3.1.1 for a block device: features, then queues (step 7), then DRIVER_OK. */
bool vd_vblk_init(VdVblk *b, const VdVmmio *dev, uint64_t features, bool exact, unsigned nq, unsigned qsize,
                  VdGuestAlloc *alloc)
{
    memset(b, 0, sizeof(*b));
    b->dev = *dev;
    b->alloc = alloc;
    if (!exact) {
        features &= vd_vmmio_device_features(&b->dev);
    }
    if (!vd_vmmio_negotiate(&b->dev, features)) {
        return false;
    }
    /* Without MQ there is exactly one request queue (5.2.2). */
    unsigned max_q = features & F(VBLK_F_MQ) ? vd_vmmio_config_read(&b->dev, VBLK_CFG_NUM_QUEUES, 2) : 1;
    if (nq > max_q || nq > VBLK_MAX_QUEUES) {
        return false;
    }
    for (unsigned q = 0; q < nq; q++) {
        if (!vd_vq_setup(&b->vq[q], &b->dev, q, qsize, alloc)) {
            return false;
        }
    }
    b->nq = nq;
    b->capacity = vd_vmmio_config_read(&b->dev, VBLK_CFG_CAPACITY, 8);
    vd_vmmio_driver_ok(&b->dev);
    return true;
}

/* True for the types whose data buffer the device fills. */
static bool data_from_device(uint32_t type)
{
    return type == VBLK_T_IN || type == VBLK_T_GET_ID;
}

/* Lay out header, data and status in guest RAM and make the chain available. */
VdVblkReq vd_vblk_submit(VdVblk *b, unsigned q, uint32_t type, uint64_t sector, const void *data, uint32_t len)
{
    VdQtest *qt = b->dev.qt;
    VdVblkReq r = { .q = q, .len = len, .type = type };
    r.hdr = vd_guest_alloc(b->alloc, 16, 16);
    uint8_t hdr[16] = { 0 };
    vd_st_le32(hdr, type);
    vd_st_le64(hdr + 8, sector);
    vd_qtest_memwrite(qt, r.hdr, hdr, sizeof(hdr));
    VdVqBuf bufs[3] = { { r.hdr, 16, false } };
    unsigned n = 1;
    if (len) {
        r.data = vd_guest_alloc(b->alloc, len, 16);
        if (!data_from_device(type) && data) {
            vd_qtest_memwrite(qt, r.data, data, len);
        }
        bufs[n++] = (VdVqBuf){ r.data, len, data_from_device(type) };
    }
    r.status = vd_guest_alloc(b->alloc, 1, 1);
    vd_qtest_writeb(qt, r.status, VBLK_NO_STATUS);
    bufs[n++] = (VdVqBuf){ r.status, 1, true };
    r.head = vd_vq_add(&b->vq[q], bufs, n, b->indirect, b->alloc);
    vd_vq_publish(&b->vq[q], r.head);
    return r;
}

/* Collect used elements until r's head is among them; then read its status. */
uint8_t vd_vblk_complete(VdVblk *b, const VdVblkReq *r, void *data_out)
{
    VdVq *vq = &b->vq[r->q];
    while (!b->done[r->q][r->head]) {
        uint32_t id, len, isr;
        if (!vd_vq_wait_used(vq, &id, &len, &isr)) {
            b->isr_seen |= isr;
            return VBLK_NO_STATUS;   /* no answer: timeout or NEEDS_RESET */
        }
        b->isr_seen |= isr;
        b->done[r->q][id] = true;
    }
    b->done[r->q][r->head] = false;
    if (data_out && data_from_device(r->type) && r->len) {
        vd_qtest_memread(b->dev.qt, r->data, data_out, r->len);
    }
    return vd_qtest_readb(b->dev.qt, r->status);
}

/* One request, start to finish. */
uint8_t vd_vblk_request(VdVblk *b, unsigned q, uint32_t type, uint64_t sector, void *data, uint32_t len)
{
    VdVblkReq r = vd_vblk_submit(b, q, type, sector, data, len);
    vd_vq_kick(&b->vq[q]);
    return vd_vblk_complete(b, &r, data);
}

/* IN on queue 0. */
uint8_t vd_vblk_read(VdVblk *b, uint64_t sector, void *buf, uint32_t len)
{
    return vd_vblk_request(b, 0, VBLK_T_IN, sector, buf, len);
}

/* OUT on queue 0. */
uint8_t vd_vblk_write(VdVblk *b, uint64_t sector, const void *buf, uint32_t len)
{
    return vd_vblk_request(b, 0, VBLK_T_OUT, sector, (void *)buf, len);
}

/* FLUSH: every write completed before it is stable when it completes. */
uint8_t vd_vblk_flush(VdVblk *b)
{
    return vd_vblk_request(b, 0, VBLK_T_FLUSH, 0, NULL, 0);
}

/* GET_ID: the device fills 20 bytes. */
uint8_t vd_vblk_get_id(VdVblk *b, char id[20])
{
    return vd_vblk_request(b, 0, VBLK_T_GET_ID, 0, id, 20);
}

/* One segment: le64 sector, le32 num_sectors, le32 flags. */
uint8_t vd_vblk_dwz(VdVblk *b, uint32_t type, uint64_t sector, uint32_t nsectors, uint32_t flags)
{
    uint8_t seg[16];
    vd_st_le64(seg, sector);
    vd_st_le32(seg + 8, nsectors);
    vd_st_le32(seg + 12, flags);
    return vd_vblk_request(b, 0, type, 0, seg, sizeof(seg));
}

/* The writeback byte (config offset 32). */
uint8_t vd_vblk_writeback(VdVblk *b)
{
    return vd_vmmio_config_read(&b->dev, VBLK_CFG_WRITEBACK, 1);
}

/* Linux's cache_type store does exactly this: write the byte, then read it back. */
uint8_t vd_vblk_set_writeback(VdVblk *b, uint8_t v)
{
    vd_vmmio_config_write(&b->dev, VBLK_CFG_WRITEBACK, v, 1);
    return vd_vblk_writeback(b);
}
