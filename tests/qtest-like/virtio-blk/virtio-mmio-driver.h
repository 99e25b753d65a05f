/*
 * virtio-mmio-driver.h - a reference guest driver for virtio-mmio version 2
 * and split virtqueues, running over the qtest-like protocol.
 *
 * It is written to be read: every step of device discovery (from the FDT),
 * initialisation (virtio 1.2, 3.1.1), queue setup (4.2.3.2) and the split
 * ring protocol (2.7) is a small function with a comment saying what the
 * spec requires.  Guest driver authors can follow it line by line; the
 * virtio-blk driver (virtio-blk-driver.h) and the virtio-scsi harness
 * build on it.
 *
 * Guarantees:
 *  - Only the qtest client touches the machine: registers with readl/writel,
 *    rings and buffers with memread/memwrite, in guest RAM handed out by a
 *    VdGuestAlloc.
 *  - No wait lasts longer than the qtest session timeout.
 */
#ifndef VD_VIRTIO_MMIO_DRIVER_H
#define VD_VIRTIO_MMIO_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "qtest-client.h"

/* virtio-mmio register offsets (virtio 1.2, 4.2.2). */
enum {
    VMMIO_MAGIC = 0x000, VMMIO_VERSION = 0x004, VMMIO_DEVICE_ID = 0x008, VMMIO_VENDOR_ID = 0x00c,
    VMMIO_DEVICE_FEATURES = 0x010, VMMIO_DEVICE_FEATURES_SEL = 0x014,
    VMMIO_DRIVER_FEATURES = 0x020, VMMIO_DRIVER_FEATURES_SEL = 0x024,
    VMMIO_QUEUE_SEL = 0x030, VMMIO_QUEUE_NUM_MAX = 0x034, VMMIO_QUEUE_NUM = 0x038,
    VMMIO_QUEUE_READY = 0x044, VMMIO_QUEUE_NOTIFY = 0x050,
    VMMIO_INTERRUPT_STATUS = 0x060, VMMIO_INTERRUPT_ACK = 0x064, VMMIO_STATUS = 0x070,
    VMMIO_QUEUE_DESC_LOW = 0x080, VMMIO_QUEUE_DESC_HIGH = 0x084,
    VMMIO_QUEUE_DRIVER_LOW = 0x090, VMMIO_QUEUE_DRIVER_HIGH = 0x094,
    VMMIO_QUEUE_DEVICE_LOW = 0x0a0, VMMIO_QUEUE_DEVICE_HIGH = 0x0a4,
    VMMIO_CONFIG_GENERATION = 0x0fc, VMMIO_CONFIG = 0x100,
};

/* Device status bits (2.1). */
#define VSTAT_ACKNOWLEDGE 0x01
#define VSTAT_DRIVER      0x02
#define VSTAT_DRIVER_OK   0x04
#define VSTAT_FEATURES_OK 0x08
#define VSTAT_NEEDS_RESET 0x40
#define VSTAT_FAILED      0x80

/* Ring feature bits and descriptor flags. */
#define VF_RING_INDIRECT_DESC 28
#define VF_RING_EVENT_IDX     29
#define VF_VERSION_1          32
#define VDESC_F_NEXT     1
#define VDESC_F_WRITE    2
#define VDESC_F_INDIRECT 4

/* InterruptStatus bits. */
#define VISR_USED   1
#define VISR_CONFIG 2

#define VMMIO_MAX_QUEUE 256

/* One virtio-mmio device found in the FDT. */
typedef struct VdVmmio {
    VdQtest *qt;
    uint64_t base;          /* register window */
    unsigned irq;           /* interrupt line */
    uint32_t device_id;     /* 2 block, 8 scsi, 0 = empty slot */
    char drive[64];         /* the vdisk,drives property: which --drive backs it */
    uint64_t features;      /* negotiated */
} VdVmmio;

/* One split virtqueue, driver side. */
typedef struct VdVq {
    VdVmmio *dev;
    unsigned index, num;
    uint64_t desc, avail, used;    /* guest addresses of the three parts */
    uint16_t avail_idx;            /* our next avail slot */
    uint16_t last_used;            /* used entries consumed */
    uint16_t free_head;            /* first free descriptor */
    unsigned num_free;
    uint16_t next[VMMIO_MAX_QUEUE];     /* shadow of each descriptor's next field */
    uint8_t chain_len[VMMIO_MAX_QUEUE]; /* descriptors used by the chain at each head */
    bool event_idx;
} VdVq;

/* A buffer of a request: where it is in guest RAM, how long, who writes it. */
typedef struct VdVqBuf {
    uint64_t addr;
    uint32_t len;
    bool device_writes;
} VdVqBuf;

/*
 * Discovery: walk the FDT (qtest `dtb`) for nodes compatible "virtio,mmio"
 * and fill up to max entries; returns how many there are.  Empty slots
 * (DeviceID 0) are skipped.
 */
unsigned vd_vmmio_discover(VdQtest *qt, VdVmmio *out, unsigned max);
/* The first device of device_id backed by drive (NULL: any); false if none. */
bool vd_vmmio_find(VdQtest *qt, uint32_t device_id, const char *drive, VdVmmio *out);

uint32_t vd_vmmio_read(VdVmmio *d, uint32_t off);
void vd_vmmio_write(VdVmmio *d, uint32_t off, uint32_t v);
uint8_t vd_vmmio_status(VdVmmio *d);
uint64_t vd_vmmio_device_features(VdVmmio *d);
/* Writing 0 to Status resets the device. */
void vd_vmmio_reset(VdVmmio *d);
/*
 * Steps 1-6 of 3.1.1: reset, ACKNOWLEDGE, DRIVER, write the features, set
 * FEATURES_OK and read it back.  Returns false (and sets FAILED) if the
 * device refused the set.
 */
bool vd_vmmio_negotiate(VdVmmio *d, uint64_t features);
/* Step 8: DRIVER_OK. */
void vd_vmmio_driver_ok(VdVmmio *d);
/* Config space accessors (little-endian), size 1, 2, 4 or 8. */
uint64_t vd_vmmio_config_read(VdVmmio *d, uint32_t off, unsigned size);
void vd_vmmio_config_write(VdVmmio *d, uint32_t off, uint64_t v, unsigned size);
/* Read InterruptStatus and acknowledge those bits. */
uint32_t vd_vmmio_ack(VdVmmio *d);

/* Allocate and register queue index with num entries (<= QueueNumMax); false if refused. */
bool vd_vq_setup(VdVq *vq, VdVmmio *d, unsigned index, unsigned num, VdGuestAlloc *alloc);
/*
 * Put a request in the descriptor table: a direct chain of n descriptors or,
 * if indirect, one INDIRECT descriptor pointing at a table of n.  Returns the
 * head index; it is not yet visible to the device (see vd_vq_publish).
 */
unsigned vd_vq_add(VdVq *vq, const VdVqBuf *bufs, unsigned n, bool indirect, VdGuestAlloc *alloc);
/* Write one raw descriptor (for tests that build malformed chains). */
void vd_vq_write_desc(VdVmmio *d, uint64_t table, unsigned idx, uint64_t addr, uint32_t len, uint16_t flags,
                      uint16_t next);
/* Make head available: avail ring slot, then (after it) the avail idx. */
void vd_vq_publish(VdVq *vq, uint16_t head);
/* Tell the device (QueueNotify). */
void vd_vq_kick(VdVq *vq);
/* Take the next used element if there is one; frees its descriptors. */
bool vd_vq_get_used(VdVq *vq, uint32_t *id, uint32_t *len);
/*
 * Wait for the next used element: sleeps on the IRQ line, acknowledges
 * InterruptStatus, then looks at the used ring.  false on timeout or if
 * the device signalled NEEDS_RESET instead (see *isr_out).
 */
bool vd_vq_wait_used(VdVq *vq, uint32_t *id, uint32_t *len, uint32_t *isr_out);

#endif
