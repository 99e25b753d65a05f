/*
 * virtio-blk-driver.h - a reference virtio-blk guest driver over the
 * reference virtio-mmio driver (virtio-mmio-driver.h).
 *
 * How a request looks in guest memory (virtio 1.2, 5.2.6):
 *
 *   descriptor 0  device-readable  16 bytes: le32 type, le32 reserved, le64 sector
 *   descriptor 1  data             readable for OUT/DISCARD/WRITE_ZEROES,
 *                                  device-writable for IN/GET_ID, absent for FLUSH
 *   descriptor 2  device-writable  1 byte: the status (OK 0, IOERR 1, UNSUPP 2)
 *
 * Write cache: with CONFIG_WCE negotiated the driver reads and writes the
 * `writeback` byte at config offset 32 (1 = writeback, 0 = writethrough);
 * a write is stable once a FLUSH sent after its completion has completed,
 * or at completion while writeback is 0.  See docs/guest-drivers/virtio-blk.md.
 */
#ifndef VD_VIRTIO_BLK_DRIVER_H
#define VD_VIRTIO_BLK_DRIVER_H

#include "virtio-mmio-driver.h"

/* Feature bits (5.2.3). */
#define VBLK_F_SIZE_MAX     1
#define VBLK_F_SEG_MAX      2
#define VBLK_F_RO           5
#define VBLK_F_BLK_SIZE     6
#define VBLK_F_FLUSH        9
#define VBLK_F_TOPOLOGY     10
#define VBLK_F_CONFIG_WCE   11
#define VBLK_F_MQ           12
#define VBLK_F_DISCARD      13
#define VBLK_F_WRITE_ZEROES 14

/* Request types and statuses. */
#define VBLK_T_IN           0
#define VBLK_T_OUT          1
#define VBLK_T_FLUSH        4
#define VBLK_T_GET_ID       8
#define VBLK_T_DISCARD      11
#define VBLK_T_WRITE_ZEROES 13
#define VBLK_S_OK           0
#define VBLK_S_IOERR        1
#define VBLK_S_UNSUPP       2
#define VBLK_NO_STATUS      0xff   /* the driver's marker: the device never answered */

/* Config offsets (5.2.4). */
#define VBLK_CFG_CAPACITY   0
#define VBLK_CFG_SEG_MAX    12
#define VBLK_CFG_BLK_SIZE   20
#define VBLK_CFG_WRITEBACK  32
#define VBLK_CFG_NUM_QUEUES 34

#define VBLK_MAX_QUEUES 8

typedef struct VdVblk {
    VdVmmio dev;
    VdVq vq[VBLK_MAX_QUEUES];
    unsigned nq;
    uint64_t capacity;        /* in 512-byte sectors */
    VdGuestAlloc *alloc;
    bool indirect;            /* put requests in indirect tables */
    bool done[VBLK_MAX_QUEUES][VMMIO_MAX_QUEUE];   /* used, not yet collected */
    uint32_t isr_seen;        /* interrupt causes seen while waiting */
} VdVblk;

/* Every feature this driver understands. */
uint64_t vd_vblk_all_features(void);
/*
 * Initialise dev as virtio-blk: negotiate features (intersected with what
 * the device offers unless exact is true), set up nq request queues of
 * qsize entries, DRIVER_OK.  Returns false if the device refused.
 */
bool vd_vblk_init(VdVblk *b, const VdVmmio *dev, uint64_t features, bool exact, unsigned nq, unsigned qsize,
                  VdGuestAlloc *alloc);

/* One in-flight request: lets a test put several in the ring before one kick. */
typedef struct VdVblkReq {
    unsigned q;
    uint16_t head;
    uint64_t hdr, data, status;
    uint32_t len;
    uint32_t type;
} VdVblkReq;

/* Build and publish a request (no kick); data is copied in for OUT-like types. */
VdVblkReq vd_vblk_submit(VdVblk *b, unsigned q, uint32_t type, uint64_t sector, const void *data, uint32_t len);
/* Wait for a request's completion (any order on the queue); returns its status, copies IN data out. */
uint8_t vd_vblk_complete(VdVblk *b, const VdVblkReq *r, void *data_out);
/* Submit, kick and wait. */
uint8_t vd_vblk_request(VdVblk *b, unsigned q, uint32_t type, uint64_t sector, void *data, uint32_t len);
uint8_t vd_vblk_read(VdVblk *b, uint64_t sector, void *buf, uint32_t len);
uint8_t vd_vblk_write(VdVblk *b, uint64_t sector, const void *buf, uint32_t len);
uint8_t vd_vblk_flush(VdVblk *b);
/* GET_ID: the 20-byte serial, NUL-padded (not necessarily NUL-terminated). */
uint8_t vd_vblk_get_id(VdVblk *b, char id[20]);
/* One-segment DISCARD or WRITE_ZEROES (flags: 1 = unmap). */
uint8_t vd_vblk_dwz(VdVblk *b, uint32_t type, uint64_t sector, uint32_t nsectors, uint32_t flags);

/* The writeback byte: read it, or write it (needs CONFIG_WCE) and read it back. */
uint8_t vd_vblk_writeback(VdVblk *b);
uint8_t vd_vblk_set_writeback(VdVblk *b, uint8_t v);

#endif
