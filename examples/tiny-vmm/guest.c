/*
 * guest.c - the tiny guest's drivers: ATA over PIIX3 IDE (PIO IDENTIFY,
 * SET FEATURES, bus-master WRITE DMA) and virtio-blk over virtio-mmio (one
 * split virtqueue).  It uses the register names of the vdisk headers, but
 * reaches the devices only through GuestExits and its own RAM.
 */
#include "guest.h"

#include <endian.h>
#include <stdio.h>
#include <string.h>

#include "hw/virtio-blk.h"
#include "hw/virtio-mmio.h"

/* ATA task file (offsets from the command block), status bits and opcodes. */
enum { ATA_DATA = 0, ATA_FEATURE = 1, ATA_COUNT = 2, ATA_LBA_LO = 3, ATA_LBA_MID = 4, ATA_LBA_HI = 5,
       ATA_DEVICE = 6, ATA_STATUS = 7, ATA_COMMAND = 7 };
enum { ST_BSY = 0x80, ST_DRDY = 0x40, ST_DRQ = 0x08, ST_ERR = 0x01 };
enum { CMD_IDENTIFY = 0xec, CMD_SET_FEATURES = 0xef, CMD_WRITE_DMA = 0xca };
enum { SF_ENABLE_WCE = 0x02, SF_DISABLE_WCE = 0x82 };
/* SFF-8038i bus-master registers and bits. */
enum { BM_COMMAND = 0, BM_STATUS = 2, BM_PRD = 4, BM_START = 0x01, BM_ST_ERR = 0x02, BM_ST_INTR = 0x04 };

/* Where things live in guest RAM. */
enum {
    GPA_PRD = 0x1000, GPA_IDE_BUF = 0x10000,
    GPA_DESC = 0x20000, GPA_AVAIL = 0x20100, GPA_USED = 0x20200,
    GPA_REQ_HDR = 0x21000, GPA_REQ_DATA = 0x22000, GPA_REQ_STATUS = 0x23000,
};
#define QUEUE_SIZE 8
#define SPIN_LIMIT 100000

/* Port input of size bytes. */
static uint64_t in(Guest *g, uint16_t port, unsigned size)
{
    return g->exits->pio_in(g->vmm, port, size);
}

/* Port output of size bytes. */
static void out(Guest *g, uint16_t port, uint64_t v, unsigned size)
{
    g->exits->pio_out(g->vmm, port, v, size);
}

/* 32-bit virtio-mmio register read. */
static uint32_t vio_rd(Guest *g, uint64_t reg)
{
    return g->exits->mmio_read(g->vmm, g->board.virtio_base + reg, 4);
}

/* 32-bit virtio-mmio register write. */
static void vio_wr(Guest *g, uint64_t reg, uint32_t v)
{
    g->exits->mmio_write(g->vmm, g->board.virtio_base + reg, v, 4);
}

/* Little-endian stores into guest RAM. */
static void st16(Guest *g, uint64_t gpa, uint16_t v) { v = htole16(v); memcpy(g->ram + gpa, &v, 2); }
static void st32(Guest *g, uint64_t gpa, uint32_t v) { v = htole32(v); memcpy(g->ram + gpa, &v, 4); }
static void st64(Guest *g, uint64_t gpa, uint64_t v) { v = htole64(v); memcpy(g->ram + gpa, &v, 8); }

/* Little-endian 16-bit load from guest RAM. */
static uint16_t ld16(Guest *g, uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, g->ram + gpa, 2);
    return le16toh(v);
}

/* Poll the alternate status until BSY is clear; the last status read. */
static uint8_t ide_wait_not_busy(Guest *g)
{
    uint8_t st = in(g, g->board.ide_ctl, 1);
    for (unsigned i = 0; (st & ST_BSY) && i < SPIN_LIMIT; i++) {
        g->exits->pause(g->vmm);
        st = in(g, g->board.ide_ctl, 1);
    }
    return st;
}

/* Wait for the channel interrupt, then read Status (which acknowledges it). */
static uint8_t ide_wait_irq(Guest *g)
{
    if (!g->exits->hlt(g->vmm, g->board.ide_irq)) {
        return 0xff;    /* no interrupt: report as BSY + ERR */
    }
    return in(g, g->board.ide_cmd + ATA_STATUS, 1);
}

/* A non-data command on the master (LBA mode); the final status. */
static uint8_t ide_nodata(Guest *g, uint8_t cmd, uint8_t feature)
{
    ide_wait_not_busy(g);
    out(g, g->board.ide_cmd + ATA_DEVICE, 0xe0, 1);
    out(g, g->board.ide_cmd + ATA_FEATURE, feature, 1);
    out(g, g->board.ide_cmd + ATA_COMMAND, cmd, 1);
    return ide_wait_irq(g);
}

/* IDENTIFY DEVICE; *wce gets word 85 bit 5 (write cache enabled).  False on error. */
static bool ide_identify(Guest *g, bool *wce)
{
    uint16_t id[256];
    ide_wait_not_busy(g);
    out(g, g->board.ide_cmd + ATA_DEVICE, 0xe0, 1);
    out(g, g->board.ide_cmd + ATA_COMMAND, CMD_IDENTIFY, 1);
    uint8_t st = ide_wait_irq(g);
    if ((st & (ST_ERR | ST_BSY)) || !(st & ST_DRQ)) {
        return false;
    }
    for (unsigned i = 0; i < 256; i++) {
        id[i] = in(g, g->board.ide_cmd + ATA_DATA, 2);
    }
    *wce = id[85] & (1u << 5);
    return true;
}

/* SET FEATURES 02h/82h and read IDENTIFY word 85 back, as Linux does. */
static bool ide_set_cache(Guest *g, bool on)
{
    uint8_t st = ide_nodata(g, CMD_SET_FEATURES, on ? SF_ENABLE_WCE : SF_DISABLE_WCE);
    bool wce = !on;
    bool ok = !(st & (ST_ERR | ST_BSY)) && (st & ST_DRDY) && ide_identify(g, &wce) && wce == on;
    printf("guest: ide: SET FEATURES %02xh (write cache %s): status 0x%02x, IDENTIFY word 85 says %s: %s\n",
           on ? SF_ENABLE_WCE : SF_DISABLE_WCE, on ? "on" : "off", st, wce ? "on" : "off", ok ? "ok" : "FAILED");
    return ok;
}

/* Turn the IDE write cache off: SET FEATURES 82h. */
bool guest_ide_cache_off(Guest *g)
{
    return ide_set_cache(g, false);
}

/* Turn the IDE write cache back on: SET FEATURES 02h. */
bool guest_ide_cache_on(Guest *g)
{
    return ide_set_cache(g, true);
}

/* WRITE DMA through the bus-master engine, interrupt driven. */
bool guest_ide_write_dma(Guest *g)
{
    const uint32_t bytes = GUEST_SECTORS * 512;
    uint16_t bm = g->board.ide_bmdma;
    memset(g->ram + GPA_IDE_BUF, GUEST_IDE_FILL, bytes);
    st32(g, GPA_PRD, GPA_IDE_BUF);                 /* one PRD entry: address, count, EOT */
    st32(g, GPA_PRD + 4, bytes | 0x80000000u);
    out(g, bm + BM_COMMAND, 0, 1);                 /* stopped, direction: memory to disk */
    out(g, bm + BM_STATUS, BM_ST_ERR | BM_ST_INTR, 1);
    out(g, bm + BM_PRD, GPA_PRD, 4);
    ide_wait_not_busy(g);
    out(g, g->board.ide_cmd + ATA_DEVICE, 0xe0, 1); /* LBA 0: bits 27:24 are 0 */
    out(g, g->board.ide_cmd + ATA_COUNT, GUEST_SECTORS, 1);
    out(g, g->board.ide_cmd + ATA_LBA_LO, 0, 1);
    out(g, g->board.ide_cmd + ATA_LBA_MID, 0, 1);
    out(g, g->board.ide_cmd + ATA_LBA_HI, 0, 1);
    out(g, g->board.ide_cmd + ATA_COMMAND, CMD_WRITE_DMA, 1);
    out(g, bm + BM_COMMAND, BM_START, 1);
    uint8_t st = ide_wait_irq(g);
    out(g, bm + BM_COMMAND, 0, 1);
    uint8_t bst = in(g, bm + BM_STATUS, 1);
    out(g, bm + BM_STATUS, BM_ST_ERR | BM_ST_INTR, 1);
    bool ok = !(st & (ST_ERR | ST_BSY | ST_DRQ)) && (bst & BM_ST_INTR) && !(bst & BM_ST_ERR);
    printf("guest: ide: WRITE DMA lba 0, %u sectors: status 0x%02x, bus-master status 0x%02x: %s\n",
           GUEST_SECTORS, st, bst, ok ? "ok" : "FAILED");
    return ok;
}

/* Read the device status until it reads 0 after a reset (virtio 1.2, 4.2.3.1). */
static bool virtio_reset(Guest *g)
{
    vio_wr(g, VD_VMMIO_STATUS, 0);
    for (unsigned i = 0; vio_rd(g, VD_VMMIO_STATUS) != 0; i++) {
        if (i == SPIN_LIMIT) {
            return false;
        }
        g->exits->pause(g->vmm);
    }
    return true;
}

/* Feature negotiation up to FEATURES_OK; false if the device refuses. */
static bool virtio_negotiate(Guest *g, uint64_t want)
{
    vio_wr(g, VD_VMMIO_STATUS, VD_VIRTIO_STATUS_ACKNOWLEDGE);
    vio_wr(g, VD_VMMIO_STATUS, VD_VIRTIO_STATUS_ACKNOWLEDGE | VD_VIRTIO_STATUS_DRIVER);
    vio_wr(g, VD_VMMIO_DEVICE_FEATURES_SEL, 1);
    uint64_t offered = (uint64_t)vio_rd(g, VD_VMMIO_DEVICE_FEATURES) << 32;
    vio_wr(g, VD_VMMIO_DEVICE_FEATURES_SEL, 0);
    offered |= vio_rd(g, VD_VMMIO_DEVICE_FEATURES);
    if ((offered & want) != want) {
        return false;
    }
    vio_wr(g, VD_VMMIO_DRIVER_FEATURES_SEL, 0);
    vio_wr(g, VD_VMMIO_DRIVER_FEATURES, (uint32_t)want);
    vio_wr(g, VD_VMMIO_DRIVER_FEATURES_SEL, 1);
    vio_wr(g, VD_VMMIO_DRIVER_FEATURES, want >> 32);
    uint32_t st = VD_VIRTIO_STATUS_ACKNOWLEDGE | VD_VIRTIO_STATUS_DRIVER | VD_VIRTIO_STATUS_FEATURES_OK;
    vio_wr(g, VD_VMMIO_STATUS, st);
    return vio_rd(g, VD_VMMIO_STATUS) & VD_VIRTIO_STATUS_FEATURES_OK;
}

/* Announce queue 0's rings (zeroed) and enable it; false if QueueReady does not stick. */
static bool virtio_setup_queue(Guest *g)
{
    memset(g->ram + GPA_DESC, 0, GPA_REQ_HDR - GPA_DESC);
    g->avail_idx = g->used_seen = 0;
    vio_wr(g, VD_VMMIO_QUEUE_SEL, 0);
    if (vio_rd(g, VD_VMMIO_QUEUE_NUM_MAX) < QUEUE_SIZE) {
        return false;
    }
    vio_wr(g, VD_VMMIO_QUEUE_NUM, QUEUE_SIZE);
    vio_wr(g, VD_VMMIO_QUEUE_DESC_LOW, GPA_DESC);
    vio_wr(g, VD_VMMIO_QUEUE_DESC_HIGH, 0);
    vio_wr(g, VD_VMMIO_QUEUE_DRIVER_LOW, GPA_AVAIL);
    vio_wr(g, VD_VMMIO_QUEUE_DRIVER_HIGH, 0);
    vio_wr(g, VD_VMMIO_QUEUE_DEVICE_LOW, GPA_USED);
    vio_wr(g, VD_VMMIO_QUEUE_DEVICE_HIGH, 0);
    vio_wr(g, VD_VMMIO_QUEUE_READY, 1);
    return vio_rd(g, VD_VMMIO_QUEUE_READY) == 1;
}

/* Find, reset and start the virtio-blk device (virtio 1.2, 3.1.1). */
bool guest_virtio_init(Guest *g)
{
    const uint64_t want = VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1) | VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_FLUSH) |
                          VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_CONFIG_WCE);
    bool found = vio_rd(g, VD_VMMIO_MAGIC) == VD_VIRTIO_MMIO_MAGIC && vio_rd(g, VD_VMMIO_VERSION) == 2 &&
                 vio_rd(g, VD_VMMIO_DEVICE_ID) == VD_VIRTIO_ID_BLOCK;
    bool ok = found && virtio_reset(g) && virtio_negotiate(g, want) && virtio_setup_queue(g);
    if (ok) {
        vio_wr(g, VD_VMMIO_STATUS, vio_rd(g, VD_VMMIO_STATUS) | VD_VIRTIO_STATUS_DRIVER_OK);
    }
    unsigned wb = g->exits->mmio_read(g->vmm, g->board.virtio_base + VD_VMMIO_CONFIG + VD_VIRTIO_BLK_CFG_WRITEBACK, 1);
    ok = ok && wb == 1;
    printf("guest: virtio-blk: %s, VERSION_1+FLUSH+CONFIG_WCE negotiated, queue 0 of %u, writeback=%u: %s\n",
           found ? "found" : "NOT found", QUEUE_SIZE, wb, ok ? "ok" : "FAILED");
    return ok;
}

/* Put one request (header, optional data, status) on queue 0, kick, wait; its status or -1. */
static int virtio_request(Guest *g, uint32_t type, uint32_t data_len)
{
    unsigned nd = 0;
    st32(g, GPA_REQ_HDR, type);
    st32(g, GPA_REQ_HDR + 4, 0);
    st64(g, GPA_REQ_HDR + 8, 0);                       /* sector 0 */
    g->ram[GPA_REQ_STATUS] = 0xff;
    const struct { uint64_t addr; uint32_t len; uint16_t flags; } chain[3] = {
        { GPA_REQ_HDR, 16, 0 },
        { GPA_REQ_DATA, data_len, 0 },                 /* OUT: device-readable */
        { GPA_REQ_STATUS, 1, VD_VRING_DESC_F_WRITE },
    };
    for (unsigned i = 0; i < 3; i++) {
        if (chain[i].len == 0) {
            continue;                                  /* FLUSH: no data descriptor */
        }
        uint64_t d = GPA_DESC + 16ull * nd;
        st64(g, d, chain[i].addr);
        st32(g, d + 8, chain[i].len);
        st16(g, d + 12, chain[i].flags | (i < 2 ? VD_VRING_DESC_F_NEXT : 0));
        st16(g, d + 14, nd + 1);
        nd++;
    }
    st16(g, GPA_AVAIL + 4 + 2 * (g->avail_idx % QUEUE_SIZE), 0);     /* head is descriptor 0 */
    __atomic_thread_fence(__ATOMIC_RELEASE);           /* ring entry before the index */
    st16(g, GPA_AVAIL + 2, ++g->avail_idx);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    vio_wr(g, VD_VMMIO_QUEUE_NOTIFY, 0);
    if (!g->exits->hlt(g->vmm, g->board.virtio_irq)) {
        return -1;
    }
    vio_wr(g, VD_VMMIO_INTERRUPT_ACK, vio_rd(g, VD_VMMIO_INTERRUPT_STATUS));
    if (ld16(g, GPA_USED + 2) == g->used_seen) {
        return -1;                                     /* interrupt without a used entry */
    }
    g->used_seen++;
    return g->ram[GPA_REQ_STATUS];
}

/* One OUT request from a buffer filled with GUEST_VIRTIO_FILL. */
bool guest_virtio_write(Guest *g)
{
    memset(g->ram + GPA_REQ_DATA, GUEST_VIRTIO_FILL, GUEST_SECTORS * 512);
    int st = virtio_request(g, VD_VIRTIO_BLK_T_OUT, GUEST_SECTORS * 512);
    printf("guest: virtio-blk: OUT sector 0, %u sectors: status %d: %s\n", GUEST_SECTORS, st,
           st == VD_VIRTIO_BLK_S_OK ? "ok" : "FAILED");
    return st == VD_VIRTIO_BLK_S_OK;
}

/* One FLUSH request. */
bool guest_virtio_flush(Guest *g)
{
    int st = virtio_request(g, VD_VIRTIO_BLK_T_FLUSH, 0);
    printf("guest: virtio-blk: FLUSH: status %d: %s\n", st, st == VD_VIRTIO_BLK_S_OK ? "ok" : "FAILED");
    return st == VD_VIRTIO_BLK_S_OK;
}
