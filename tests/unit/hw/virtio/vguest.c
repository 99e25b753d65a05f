/* vguest.c - the unit tests' tiny virtio-mmio guest driver. */
#include "vguest.h"

#include <string.h>

/* Start a guest on the transport at base; the heap is the upper half of RAM. */
void vg_init(VGuest *g, VdBus *bus, uint64_t base, unsigned irq)
{
    memset(g, 0, sizeof(*g));
    g->bus = bus;
    g->base = base;
    g->irq = irq;
    g->heap = 0x1000;
    g->heap_end = vd_bus_ram_size(bus);
}

/* 32-bit register read. */
uint32_t vg_rd(VGuest *g, uint64_t off)
{
    uint64_t v = 0;
    vd_bus_read(g->bus, VD_SPACE_MMIO, g->base + off, 4, &v);
    return v;
}

/* 32-bit register write. */
void vg_wr(VGuest *g, uint64_t off, uint32_t v)
{
    vd_bus_write(g->bus, VD_SPACE_MMIO, g->base + off, v, 4);
}

/* Config space read of size bytes. */
uint64_t vg_config_read(VGuest *g, uint32_t off, unsigned size)
{
    uint64_t v = 0;
    vd_bus_read(g->bus, VD_SPACE_MMIO, g->base + VD_VMMIO_CONFIG + off, size, &v);
    return v;
}

/* Config space write of size bytes. */
void vg_config_write(VGuest *g, uint32_t off, uint64_t v, unsigned size)
{
    vd_bus_write(g->bus, VD_SPACE_MMIO, g->base + VD_VMMIO_CONFIG + off, v, size);
}

void *vg_ptr(VGuest *g, uint64_t gpa) { return vd_bus_ram(g->bus) + gpa; }

/* Bump allocation in guest RAM. */
uint64_t vg_alloc(VGuest *g, uint64_t len)
{
    uint64_t a = (g->heap + 15) & ~15ull;
    g_assert(a + len <= g->heap_end);
    g->heap = a + len;
    memset(vg_ptr(g, a), 0, len);
    return a;
}

/* Both feature words as the device offers them. */
uint64_t vg_device_features(VGuest *g)
{
    vg_wr(g, VD_VMMIO_DEVICE_FEATURES_SEL, 1);
    uint64_t hi = vg_rd(g, VD_VMMIO_DEVICE_FEATURES);
    vg_wr(g, VD_VMMIO_DEVICE_FEATURES_SEL, 0);
    return hi << 32 | vg_rd(g, VD_VMMIO_DEVICE_FEATURES);
}

/* Write 0 to status and wait (running the loop) until it reads back 0 (virtio 1.2, 2.4.1); false on timeout. */
bool vg_reset(VGuest *g)
{
    vg_wr(g, VD_VMMIO_STATUS, 0);
    gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (vg_rd(g, VD_VMMIO_STATUS) != 0 && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
    }
    return vg_rd(g, VD_VMMIO_STATUS) == 0;
}

/* The virtio 1.2 3.1.1 initialisation sequence up to FEATURES_OK. */
bool vg_negotiate(VGuest *g, uint64_t features)
{
    vg_reset(g);
    for (unsigned i = 0; i < VG_MAX_QUEUES; i++) {
        memset(&g->q[i], 0, sizeof(g->q[i]));
    }
    vg_wr(g, VD_VMMIO_STATUS, VD_VIRTIO_STATUS_ACKNOWLEDGE);
    vg_wr(g, VD_VMMIO_STATUS, VD_VIRTIO_STATUS_ACKNOWLEDGE | VD_VIRTIO_STATUS_DRIVER);
    vg_wr(g, VD_VMMIO_DRIVER_FEATURES_SEL, 0);
    vg_wr(g, VD_VMMIO_DRIVER_FEATURES, (uint32_t)features);
    vg_wr(g, VD_VMMIO_DRIVER_FEATURES_SEL, 1);
    vg_wr(g, VD_VMMIO_DRIVER_FEATURES, features >> 32);
    vg_wr(g, VD_VMMIO_STATUS, VD_VIRTIO_STATUS_ACKNOWLEDGE | VD_VIRTIO_STATUS_DRIVER | VD_VIRTIO_STATUS_FEATURES_OK);
    return vg_rd(g, VD_VMMIO_STATUS) & VD_VIRTIO_STATUS_FEATURES_OK;
}

/* Allocate and announce queue q's rings. */
bool vg_setup_queue(VGuest *g, unsigned q, unsigned num)
{
    VgQueue *vq = &g->q[q];
    memset(vq, 0, sizeof(*vq));
    vq->num = num;
    vq->desc = vg_alloc(g, 16ull * num);
    vq->avail = vg_alloc(g, 6 + 2ull * num);
    vq->used = vg_alloc(g, 6 + 8ull * num);
    vg_wr(g, VD_VMMIO_QUEUE_SEL, q);
    vg_wr(g, VD_VMMIO_QUEUE_NUM, num);
    vg_wr(g, VD_VMMIO_QUEUE_DESC_LOW, vq->desc);
    vg_wr(g, VD_VMMIO_QUEUE_DESC_HIGH, vq->desc >> 32);
    vg_wr(g, VD_VMMIO_QUEUE_DRIVER_LOW, vq->avail);
    vg_wr(g, VD_VMMIO_QUEUE_DRIVER_HIGH, vq->avail >> 32);
    vg_wr(g, VD_VMMIO_QUEUE_DEVICE_LOW, vq->used);
    vg_wr(g, VD_VMMIO_QUEUE_DEVICE_HIGH, vq->used >> 32);
    vg_wr(g, VD_VMMIO_QUEUE_READY, 1);
    return vg_rd(g, VD_VMMIO_QUEUE_READY) == 1;
}

/* Set DRIVER_OK on top of the current status. */
void vg_driver_ok(VGuest *g)
{
    vg_wr(g, VD_VMMIO_STATUS, vg_rd(g, VD_VMMIO_STATUS) | VD_VIRTIO_STATUS_DRIVER_OK);
}

/* Store one 16-byte descriptor at table[idx]. */
void vg_write_desc_at(VGuest *g, uint64_t table, unsigned idx, uint64_t addr, uint32_t len, uint16_t flags,
                      uint16_t next)
{
    uint8_t *p = vg_ptr(g, table + 16ull * idx);
    uint64_t a = GUINT64_TO_LE(addr);
    uint32_t l = GUINT32_TO_LE(len);
    uint16_t f = GUINT16_TO_LE(flags), n = GUINT16_TO_LE(next);
    memcpy(p, &a, 8);
    memcpy(p + 8, &l, 4);
    memcpy(p + 12, &f, 2);
    memcpy(p + 14, &n, 2);
}

/* Descriptor idx of queue q's own table. */
void vg_set_desc(VGuest *g, unsigned q, unsigned idx, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    vg_write_desc_at(g, g->q[q].desc, idx, addr, len, flags, next);
}

/* Direct chain over consecutive (rolling) descriptor slots. */
unsigned vg_chain(VGuest *g, unsigned q, const VgBuf *bufs, unsigned n)
{
    VgQueue *vq = &g->q[q];
    unsigned head = vq->next_desc % vq->num;
    for (unsigned i = 0; i < n; i++) {
        unsigned idx = (head + i) % vq->num, nxt = (head + i + 1) % vq->num;
        uint16_t flags = (bufs[i].write ? VD_VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VD_VRING_DESC_F_NEXT : 0);
        vg_set_desc(g, q, idx, bufs[i].addr, bufs[i].len, flags, i + 1 < n ? nxt : 0);
    }
    vq->next_desc = (head + n) % vq->num;
    return head;
}

/* One direct INDIRECT descriptor pointing at a fresh table holding bufs. */
unsigned vg_chain_indirect(VGuest *g, unsigned q, const VgBuf *bufs, unsigned n)
{
    uint64_t table = vg_alloc(g, 16ull * n);
    for (unsigned i = 0; i < n; i++) {
        uint16_t flags = (bufs[i].write ? VD_VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VD_VRING_DESC_F_NEXT : 0);
        vg_write_desc_at(g, table, i, bufs[i].addr, bufs[i].len, flags, i + 1 < n ? i + 1 : 0);
    }
    VgQueue *vq = &g->q[q];
    unsigned head = vq->next_desc % vq->num;
    vg_set_desc(g, q, head, table, 16 * n, VD_VRING_DESC_F_INDIRECT, 0);
    vq->next_desc = (head + 1) % vq->num;
    return head;
}

/* Append head to the avail ring and publish the new idx. */
void vg_publish(VGuest *g, unsigned q, uint16_t head)
{
    VgQueue *vq = &g->q[q];
    uint16_t *ring = vg_ptr(g, vq->avail + 4);
    ring[vq->avail_idx % vq->num] = GUINT16_TO_LE(head);
    vq->avail_idx++;
    __atomic_store_n((uint16_t *)vg_ptr(g, vq->avail + 2), GUINT16_TO_LE(vq->avail_idx), __ATOMIC_RELEASE);
}

/* QueueNotify. */
void vg_kick(VGuest *g, unsigned q)
{
    vg_wr(g, VD_VMMIO_QUEUE_NOTIFY, q);
}

/* The device's used idx for queue q. */
uint16_t vg_used_idx(VGuest *g, unsigned q)
{
    return GUINT16_FROM_LE(__atomic_load_n((uint16_t *)vg_ptr(g, g->q[q].used + 2), __ATOMIC_ACQUIRE));
}

/* Consume the next used entry if there is one. */
bool vg_pop_used(VGuest *g, unsigned q, uint32_t *id, uint32_t *len)
{
    VgQueue *vq = &g->q[q];
    if (vg_used_idx(g, q) == vq->used_seen) {
        return false;
    }
    uint32_t *e = vg_ptr(g, vq->used + 4 + 8ull * (vq->used_seen % vq->num));
    *id = GUINT32_FROM_LE(e[0]);
    *len = GUINT32_FROM_LE(e[1]);
    vq->used_seen++;
    return true;
}

/* Read InterruptStatus and write it back to InterruptACK. */
uint32_t vg_ack(VGuest *g)
{
    uint32_t isr = vg_rd(g, VD_VMMIO_INTERRUPT_STATUS);
    vg_wr(g, VD_VMMIO_INTERRUPT_ACK, isr);
    return isr;
}

/* Run the machine's loop until q has an unseen used entry. */
bool vg_wait_used(VGuest *g, unsigned q, unsigned timeout_ms)
{
    gint64 end = g_get_monotonic_time() + timeout_ms * 1000ll;
    GMainContext *ctx = vd_bus_context(g->bus);
    while (vg_used_idx(g, q) == g->q[q].used_seen) {
        if (g_get_monotonic_time() > end) {
            return false;
        }
        g_main_context_iteration(ctx, FALSE);
        g_usleep(50);
    }
    return true;
}
