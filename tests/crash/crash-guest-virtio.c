/*
 * crash-guest-virtio.c - the crash runner's virtio-blk guest: OUT and FLUSH
 * requests on one split virtqueue over virtio-mmio, and the `writeback`
 * config byte (CONFIG_WCE) for the write cache.  virtio-blk has no FUA.
 * Uses the unit tests' guest (tests/unit/hw/virtio/vguest.c).
 */
#include "crash-guests.h"

#include "hw/virtio-blk.h"
#include "vguest.h"

#include <string.h>

#define RAM (8u << 20)
#define BASE 0xfeb00000ull
#define IRQ 16
#define QSIZE 64

struct CrashGuest {
    VdBus *bus;
    VdVirtioBlk *dev;
    VdVirtioMmio *mmio;
    VGuest g;
    uint64_t hdr[CG_MAX_DEPTH], status[CG_MAX_DEPTH], data[CG_MAX_DEPTH];
    unsigned head[CG_MAX_DEPTH];
    bool busy[CG_MAX_DEPTH];
};

/* virtio-blk on virtio-mmio, FLUSH and CONFIG_WCE negotiated, one queue, per-slot buffers. */
static CrashGuest *vblk_open(VdBlockBackend *blk, GError **errp)
{
    CrashGuest *g = g_new0(CrashGuest, 1);
    VdVirtioBlkConf conf = { .num_queues = 1, .queue_size = QSIZE };
    g->bus = vd_bus_new(RAM, NULL, errp);
    g->dev = g->bus ? vd_virtio_blk_new(blk, &conf, g->bus, errp) : NULL;
    g->mmio = g->dev ? vd_virtio_mmio_new(g->bus, BASE, 0x200, IRQ, vd_virtio_blk_device(g->dev), errp) : NULL;
    if (!g->mmio) {
        if (g->dev) {
            vd_virtio_blk_free(g->dev);
        }
        if (g->bus) {
            vd_bus_free(g->bus);
        }
        g_free(g);
        return NULL;
    }
    vg_init(&g->g, g->bus, BASE, IRQ);
    uint64_t features = VD_VIRTIO_CORE_FEATURES | VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_FLUSH) |
                        VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_CONFIG_WCE);
    if (!vg_negotiate(&g->g, features) || !vg_setup_queue(&g->g, 0, QSIZE)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "virtio-blk: feature negotiation or queue setup failed");
        vd_virtio_mmio_free(g->mmio);
        vd_virtio_blk_free(g->dev);
        vd_bus_free(g->bus);
        g_free(g);
        return NULL;
    }
    vg_driver_ok(&g->g);
    for (unsigned i = 0; i < CG_MAX_DEPTH; i++) {
        g->hdr[i] = vg_alloc(&g->g, 16);
        g->status[i] = vg_alloc(&g->g, 1);
        g->data[i] = vg_alloc(&g->g, CG_MAX_SECTORS * 512);
    }
    return g;
}

/* Publish one request of the given type in slot. */
static void submit(CrashGuest *g, unsigned slot, uint32_t type, uint64_t lba, uint32_t len)
{
    uint32_t t = GUINT32_TO_LE(type);
    uint64_t s = GUINT64_TO_LE(lba);
    memset(vg_ptr(&g->g, g->hdr[slot]), 0, 16);
    memcpy(vg_ptr(&g->g, g->hdr[slot]), &t, 4);
    memcpy(vg_ptr(&g->g, g->hdr[slot] + 8), &s, 8);
    *(uint8_t *)vg_ptr(&g->g, g->status[slot]) = 0xee;
    VgBuf b[3] = { { g->hdr[slot], 16, false } };
    unsigned n = 1;
    if (len) {
        b[n++] = (VgBuf){ g->data[slot], len, false };
    }
    b[n++] = (VgBuf){ g->status[slot], 1, true };
    /* Each slot owns descriptors 3*slot..3*slot+2: a rolling allocator could reuse a chain still in flight. */
    g->g.q[0].next_desc = 3 * slot;
    g->head[slot] = vg_chain(&g->g, 0, b, n);
    g->busy[slot] = true;
    vg_publish(&g->g, 0, g->head[slot]);
    vg_kick(&g->g, 0);
}

/* VIRTIO_BLK_T_OUT of nsect sectors. */
static void vblk_submit_write(CrashGuest *g, unsigned slot, uint64_t lba, unsigned nsect, bool fua, const uint8_t *data)
{
    memcpy(vg_ptr(&g->g, g->data[slot]), data, nsect * 512);
    submit(g, slot, VD_VIRTIO_BLK_T_OUT, lba, nsect * 512);
}

/* VIRTIO_BLK_T_FLUSH. */
static void vblk_submit_flush(CrashGuest *g, unsigned slot)
{
    submit(g, slot, VD_VIRTIO_BLK_T_FLUSH, 0, 0);
}

/* The next used entry, mapped back to its slot. */
static bool vblk_poll(CrashGuest *g, unsigned *slot, bool *ok)
{
    uint32_t id, len;
    if (!vg_pop_used(&g->g, 0, &id, &len)) {
        return false;
    }
    vg_ack(&g->g);
    for (unsigned i = 0; i < CG_MAX_DEPTH; i++) {
        if (g->busy[i] && g->head[i] == id) {
            g->busy[i] = false;
            *slot = i;
            *ok = *(uint8_t *)vg_ptr(&g->g, g->status[i]) == 0;
            return true;
        }
    }
    g_error("virtio-blk: used id %u matches no request in flight", id);
}

/* The guest's view: the config write returns, and the cache is in the new mode. */
static bool vblk_set_wce(CrashGuest *g, bool on)
{
    vg_config_write(&g->g, VD_VIRTIO_BLK_CFG_WRITEBACK, on, 1);
    return vg_config_read(&g->g, VD_VIRTIO_BLK_CFG_WRITEBACK, 1) == on;
}

/* Free the transport, the device and the bus. */
static void vblk_close(CrashGuest *g)
{
    vd_virtio_mmio_free(g->mmio);
    vd_virtio_blk_free(g->dev);
    vd_bus_free(g->bus);
    g_free(g);
}

const CrashGuestOps crash_guest_virtio_blk = {
    .name = "virtio-blk", .depth = CG_MAX_DEPTH, .has_fua = false, .switch_drains = false, .open = vblk_open,
    .submit_write = vblk_submit_write, .submit_flush = vblk_submit_flush, .set_wce = vblk_set_wce,
    .poll = vblk_poll, .close = vblk_close,
};
