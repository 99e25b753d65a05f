/*
 * guest-virtio.c - the tiny guest's virtio-blk driver over virtio-mmio
 * version 2 with one split virtqueue: device initialisation (virtio 1.2,
 * 3.1.1), queue setup (4.2.3.2), and one request at a time on the ring
 * (2.7), as the reference driver does it
 * (tests/qtest-like/virtio-blk/virtio-mmio-driver.c, virtio-blk-driver.c;
 * docs/guest-drivers/virtio-blk.md), written against guest-cpu.h.
 */
#include "guest.h"

/* virtio-mmio registers (4.2.2). */
enum {
    VMMIO_MAGIC = 0x000, VMMIO_VERSION = 0x004, VMMIO_DEVICE_ID = 0x008,
    VMMIO_DEVICE_FEATURES = 0x010, VMMIO_DEVICE_FEATURES_SEL = 0x014,
    VMMIO_DRIVER_FEATURES = 0x020, VMMIO_DRIVER_FEATURES_SEL = 0x024,
    VMMIO_QUEUE_SEL = 0x030, VMMIO_QUEUE_NUM_MAX = 0x034, VMMIO_QUEUE_NUM = 0x038,
    VMMIO_QUEUE_READY = 0x044, VMMIO_QUEUE_NOTIFY = 0x050,
    VMMIO_INTERRUPT_STATUS = 0x060, VMMIO_INTERRUPT_ACK = 0x064, VMMIO_STATUS = 0x070,
    VMMIO_QUEUE_DESC_LOW = 0x080, VMMIO_QUEUE_DESC_HIGH = 0x084,
    VMMIO_QUEUE_DRIVER_LOW = 0x090, VMMIO_QUEUE_DRIVER_HIGH = 0x094,
    VMMIO_QUEUE_DEVICE_LOW = 0x0a0, VMMIO_QUEUE_DEVICE_HIGH = 0x0a4, VMMIO_CONFIG = 0x100,
};
#define VMMIO_MAGIC_VALUE 0x74726976u   /* "virt" */
#define VIRTIO_ID_BLOCK   2
enum { VSTAT_ACKNOWLEDGE = 1, VSTAT_DRIVER = 2, VSTAT_DRIVER_OK = 4, VSTAT_FEATURES_OK = 8 };
/* Feature bits: VERSION_1 (6), FLUSH and CONFIG_WCE (5.2.3). */
#define VF_VERSION_1      32
#define VBLK_F_FLUSH      9
#define VBLK_F_CONFIG_WCE 11
enum { VBLK_T_OUT = 1, VBLK_T_FLUSH = 4, VBLK_S_OK = 0, VBLK_CFG_WRITEBACK = 32 };
enum { VDESC_F_NEXT = 1, VDESC_F_WRITE = 2 };

/* Where queue 0 and the request live in guest RAM. */
enum {
    GPA_DESC = 0x20000, GPA_AVAIL = 0x20100, GPA_USED = 0x20200,
    GPA_REQ_HDR = 0x21000, GPA_REQ_DATA = 0x22000, GPA_REQ_STATUS = 0x23000,
};
#define QUEUE_SIZE 8
#define SPIN_LIMIT 100000

/* 32-bit register read. */
static uint32_t rd(Guest *g, uint32_t off)
{
    return gcpu_mmio_read(g->cpu, g->virtio.base[0] + off, 4);
}

/* 32-bit register write. */
static void wr(Guest *g, uint32_t off, uint32_t v)
{
    gcpu_mmio_write(g->cpu, g->virtio.base[0] + off, v, 4);
}

/* Write 0 to Status and wait until it reads 0 (4.2.3.1). */
static bool reset(Guest *g)
{
    wr(g, VMMIO_STATUS, 0);
    for (unsigned i = 0; rd(g, VMMIO_STATUS) != 0; i++) {
        if (i == SPIN_LIMIT) {
            return false;
        }
        gcpu_pause(g->cpu);
    }
    return true;
}

/* Feature negotiation up to FEATURES_OK (3.1.1 steps 2-6); false if the device refuses. */
static bool negotiate(Guest *g, uint64_t want)
{
    wr(g, VMMIO_STATUS, VSTAT_ACKNOWLEDGE);
    wr(g, VMMIO_STATUS, VSTAT_ACKNOWLEDGE | VSTAT_DRIVER);
    wr(g, VMMIO_DEVICE_FEATURES_SEL, 1);
    uint64_t offered = (uint64_t)rd(g, VMMIO_DEVICE_FEATURES) << 32;
    wr(g, VMMIO_DEVICE_FEATURES_SEL, 0);
    offered |= rd(g, VMMIO_DEVICE_FEATURES);
    if ((offered & want) != want) {
        return false;
    }
    wr(g, VMMIO_DRIVER_FEATURES_SEL, 0);
    wr(g, VMMIO_DRIVER_FEATURES, (uint32_t)want);
    wr(g, VMMIO_DRIVER_FEATURES_SEL, 1);
    wr(g, VMMIO_DRIVER_FEATURES, (uint32_t)(want >> 32));
    wr(g, VMMIO_STATUS, VSTAT_ACKNOWLEDGE | VSTAT_DRIVER | VSTAT_FEATURES_OK);
    return rd(g, VMMIO_STATUS) & VSTAT_FEATURES_OK;
}

/* Announce queue 0's rings (zeroed) and enable it; false if QueueReady does not stick. */
static bool setup_queue(Guest *g)
{
    __builtin_memset(gcpu_ram(g->cpu, GPA_DESC), 0, GPA_REQ_HDR - GPA_DESC);
    g->avail_idx = g->used_seen = 0;
    wr(g, VMMIO_QUEUE_SEL, 0);
    if (rd(g, VMMIO_QUEUE_NUM_MAX) < QUEUE_SIZE) {
        return false;
    }
    wr(g, VMMIO_QUEUE_NUM, QUEUE_SIZE);
    wr(g, VMMIO_QUEUE_DESC_LOW, GPA_DESC);
    wr(g, VMMIO_QUEUE_DESC_HIGH, 0);
    wr(g, VMMIO_QUEUE_DRIVER_LOW, GPA_AVAIL);
    wr(g, VMMIO_QUEUE_DRIVER_HIGH, 0);
    wr(g, VMMIO_QUEUE_DEVICE_LOW, GPA_USED);
    wr(g, VMMIO_QUEUE_DEVICE_HIGH, 0);
    wr(g, VMMIO_QUEUE_READY, 1);
    return rd(g, VMMIO_QUEUE_READY) == 1;
}

/* Check the device is virtio-blk, reset it, negotiate, set up queue 0, DRIVER_OK. */
bool guest_virtio_init(Guest *g)
{
    const uint64_t want = 1ull << VF_VERSION_1 | 1ull << VBLK_F_FLUSH | 1ull << VBLK_F_CONFIG_WCE;
    bool blk = rd(g, VMMIO_MAGIC) == VMMIO_MAGIC_VALUE && rd(g, VMMIO_VERSION) == 2 &&
               rd(g, VMMIO_DEVICE_ID) == VIRTIO_ID_BLOCK;
    bool ok = blk && reset(g) && negotiate(g, want) && setup_queue(g);
    if (ok) {
        wr(g, VMMIO_STATUS, rd(g, VMMIO_STATUS) | VSTAT_DRIVER_OK);
    }
    unsigned wb = gcpu_mmio_read(g->cpu, g->virtio.base[0] + VMMIO_CONFIG + VBLK_CFG_WRITEBACK, 1);
    ok = ok && wb == 1;
    guest_printf(g, "guest: step virtio-init: %s, VERSION_1+FLUSH+CONFIG_WCE negotiated, queue 0 of %u, "
                 "writeback=%u: %s\n", blk ? "virtio-blk" : "NOT virtio-blk", QUEUE_SIZE, wb, ok ? "ok" : "FAILED");
    return ok;
}

/* One descriptor: address, length, flags, next. */
static void put_desc(Guest *g, unsigned i, uint32_t addr, uint32_t len, uint16_t flags)
{
    uint8_t *d = gcpu_ram(g->cpu, GPA_DESC + 16 * i);
    gst64(d, addr);
    gst32(d + 8, len);
    gst16(d + 12, flags);
    gst16(d + 14, (uint16_t)(i + 1));
}

/* Put one request (header, optional data, status) on queue 0, kick, wait; its status or -1. */
static int request(Guest *g, uint32_t type, uint32_t data_len)
{
    uint8_t *hdr = gcpu_ram(g->cpu, GPA_REQ_HDR);
    volatile uint8_t *status = gcpu_ram(g->cpu, GPA_REQ_STATUS);
    gst32(hdr, type);
    gst32(hdr + 4, 0);
    gst64(hdr + 8, 0);                                         /* sector 0 */
    *status = 0xff;
    unsigned n = 0;
    put_desc(g, n++, GPA_REQ_HDR, 16, VDESC_F_NEXT);
    if (data_len) {                                            /* FLUSH has no data descriptor */
        put_desc(g, n++, GPA_REQ_DATA, data_len, VDESC_F_NEXT); /* OUT: device-readable */
    }
    put_desc(g, n, GPA_REQ_STATUS, 1, VDESC_F_WRITE);
    gst16(gcpu_ram(g->cpu, GPA_AVAIL + 4 + 2 * (g->avail_idx % QUEUE_SIZE)), 0);   /* head: descriptor 0 */
    GUEST_WMB();                                               /* ring entry before the index */
    gst16(gcpu_ram(g->cpu, GPA_AVAIL + 2), ++g->avail_idx);
    GUEST_MB();
    wr(g, VMMIO_QUEUE_NOTIFY, 0);
    if (!gcpu_wait_irq(g->cpu, g->virtio.irq)) {
        return -1;
    }
    wr(g, VMMIO_INTERRUPT_ACK, rd(g, VMMIO_INTERRUPT_STATUS));
    if (gld16(gcpu_ram(g->cpu, GPA_USED + 2)) == g->used_seen) {
        return -1;                                             /* an interrupt without a used entry */
    }
    g->used_seen++;
    return *status;
}

/* One OUT request of GUEST_SECTORS at sector 0, from a buffer of GUEST_VIRTIO_FILL. */
bool guest_virtio_write(Guest *g)
{
    __builtin_memset(gcpu_ram(g->cpu, GPA_REQ_DATA), GUEST_VIRTIO_FILL, GUEST_SECTORS * 512);
    int st = request(g, VBLK_T_OUT, GUEST_SECTORS * 512);
    guest_printf(g, "guest: step virtio-write: OUT sector 0, %u sectors: status %d: %s\n", GUEST_SECTORS, st,
                 st == VBLK_S_OK ? "ok" : "FAILED");
    return st == VBLK_S_OK;
}

/* One FLUSH request. */
bool guest_virtio_flush(Guest *g)
{
    int st = request(g, VBLK_T_FLUSH, 0);
    guest_printf(g, "guest: step virtio-flush: FLUSH: status %d: %s\n", st, st == VBLK_S_OK ? "ok" : "FAILED");
    return st == VBLK_S_OK;
}
