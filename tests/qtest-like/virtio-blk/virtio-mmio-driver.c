/* virtio-mmio-driver.c - reference virtio-mmio v2 + split virtqueue guest driver over qtest. */
#include "virtio-mmio-driver.h"
#include "util/bswap.h"

#include <libfdt.h>
#include <string.h>

/* ---- discovery ---------------------------------------------------------- */

/* Read a big-endian cell pair (#address-cells = #size-cells = 2 at the root). */
static uint64_t fdt_u64(const fdt32_t *cells)
{
    return (uint64_t)fdt32_to_cpu(cells[0]) << 32 | fdt32_to_cpu(cells[1]);
}

/*
 * The machine describes each virtio-mmio slot as a node
 *   virtio_mmio@feb00000 { compatible = "virtio,mmio"; reg = <0 0xfeb00000 0 0x200>;
 *                          interrupts = <16>; vdisk,drives = "drive0"; }
 * so a driver needs nothing but the device tree to find its devices.
 */
unsigned vd_vmmio_discover(VdQtest *qt, VdVmmio *out, unsigned max)
{
    size_t size;
    g_autofree void *fdt = vd_qtest_dtb(qt, &size);
    g_assert(fdt_check_header(fdt) == 0);
    unsigned n = 0;
    for (int node = fdt_node_offset_by_compatible(fdt, -1, "virtio,mmio"); node >= 0;
         node = fdt_node_offset_by_compatible(fdt, node, "virtio,mmio")) {
        int len;
        const fdt32_t *reg = fdt_getprop(fdt, node, "reg", &len);
        const fdt32_t *irq = fdt_getprop(fdt, node, "interrupts", NULL);
        if (!reg || len < 16 || !irq) {
            continue;
        }
        VdVmmio d = { .qt = qt, .base = fdt_u64(reg), .irq = fdt32_to_cpu(irq[0]) };
        const char *drive = fdt_getprop(fdt, node, "vdisk,drives", NULL);
        g_strlcpy(d.drive, drive ? drive : "", sizeof(d.drive));
        /* A real driver checks the magic and version before trusting the slot. */
        if (vd_vmmio_read(&d, VMMIO_MAGIC) != 0x74726976 || vd_vmmio_read(&d, VMMIO_VERSION) != 2) {
            continue;
        }
        d.device_id = vd_vmmio_read(&d, VMMIO_DEVICE_ID);
        if (d.device_id == 0) {
            continue;   /* an empty slot */
        }
        if (n < max) {
            out[n] = d;
        }
        n++;
    }
    /* Node order in the tree is not slot order; present devices by address (= slot). */
    unsigned kept = MIN(n, max);
    for (unsigned i = 1; i < kept; i++) {
        for (unsigned j = i; j > 0 && out[j - 1].base > out[j].base; j--) {
            VdVmmio t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    }
    return n;
}

/* The first device with this id (and drive, if given). */
bool vd_vmmio_find(VdQtest *qt, uint32_t device_id, const char *drive, VdVmmio *out)
{
    VdVmmio all[8];
    unsigned n = MIN(vd_vmmio_discover(qt, all, G_N_ELEMENTS(all)), G_N_ELEMENTS(all));
    for (unsigned i = 0; i < n; i++) {
        if (all[i].device_id == device_id && (!drive || strcmp(all[i].drive, drive) == 0)) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

/* ---- registers and initialisation --------------------------------------- */

/* Registers are 32 bits wide and must be accessed as such (4.2.2.2). */
uint32_t vd_vmmio_read(VdVmmio *d, uint32_t off) { return vd_qtest_readl(d->qt, d->base + off); }
void vd_vmmio_write(VdVmmio *d, uint32_t off, uint32_t v) { vd_qtest_writel(d->qt, d->base + off, v); }
uint8_t vd_vmmio_status(VdVmmio *d) { return vd_vmmio_read(d, VMMIO_STATUS); }

/* The 64 feature bits, read 32 at a time through DeviceFeaturesSel. */
uint64_t vd_vmmio_device_features(VdVmmio *d)
{
    vd_vmmio_write(d, VMMIO_DEVICE_FEATURES_SEL, 1);
    uint64_t hi = vd_vmmio_read(d, VMMIO_DEVICE_FEATURES);
    vd_vmmio_write(d, VMMIO_DEVICE_FEATURES_SEL, 0);
    return hi << 32 | vd_vmmio_read(d, VMMIO_DEVICE_FEATURES);
}

/* A reset forgets features, queues and status; wait until Status reads 0 (4.2.3.1). */
void vd_vmmio_reset(VdVmmio *d)
{
    vd_vmmio_write(d, VMMIO_STATUS, 0);
    /* The device reads non-zero until its old requests have finished (virtio 1.2, 2.4.1). */
    gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (vd_vmmio_status(d) != 0 && g_get_monotonic_time() < end) {
        g_usleep(1000);
    }
    g_assert_cmpuint(vd_vmmio_status(d), ==, 0);
    d->features = 0;
}

/* The device initialisation sequence of 3.1.1, up to FEATURES_OK. */
bool vd_vmmio_negotiate(VdVmmio *d, uint64_t features)
{
    vd_vmmio_reset(d);                                                     /* 1 */
    vd_vmmio_write(d, VMMIO_STATUS, VSTAT_ACKNOWLEDGE);                    /* 2 */
    vd_vmmio_write(d, VMMIO_STATUS, VSTAT_ACKNOWLEDGE | VSTAT_DRIVER);     /* 3 */
    vd_vmmio_write(d, VMMIO_DRIVER_FEATURES_SEL, 0);                       /* 4 */
    vd_vmmio_write(d, VMMIO_DRIVER_FEATURES, (uint32_t)features);
    vd_vmmio_write(d, VMMIO_DRIVER_FEATURES_SEL, 1);
    vd_vmmio_write(d, VMMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    vd_vmmio_write(d, VMMIO_STATUS, VSTAT_ACKNOWLEDGE | VSTAT_DRIVER | VSTAT_FEATURES_OK); /* 5 */
    if (!(vd_vmmio_status(d) & VSTAT_FEATURES_OK)) {                       /* 6 */
        vd_vmmio_write(d, VMMIO_STATUS, VSTAT_ACKNOWLEDGE | VSTAT_DRIVER | VSTAT_FAILED);
        return false;
    }
    d->features = features;
    return true;
}

/* Step 8: the driver is ready; the device may now use the queues. */
void vd_vmmio_driver_ok(VdVmmio *d)
{
    vd_vmmio_write(d, VMMIO_STATUS, vd_vmmio_status(d) | VSTAT_DRIVER_OK);
}

/* Config space starts at 0x100; multi-byte fields are little-endian. */
uint64_t vd_vmmio_config_read(VdVmmio *d, uint32_t off, unsigned size)
{
    uint64_t a = d->base + VMMIO_CONFIG + off;
    switch (size) {
    case 1: return vd_qtest_readb(d->qt, a);
    case 2: return vd_qtest_readw(d->qt, a);
    case 4: return vd_qtest_readl(d->qt, a);
    default: return vd_qtest_readq(d->qt, a);
    }
}

/* Config space write of size bytes. */
void vd_vmmio_config_write(VdVmmio *d, uint32_t off, uint64_t v, unsigned size)
{
    uint64_t a = d->base + VMMIO_CONFIG + off;
    switch (size) {
    case 1: vd_qtest_writeb(d->qt, a, v); break;
    case 2: vd_qtest_writew(d->qt, a, v); break;
    case 4: vd_qtest_writel(d->qt, a, v); break;
    default: vd_qtest_writeq(d->qt, a, v); break;
    }
}

/* Interrupt handler body: which causes, then acknowledge them so the line drops. */
uint32_t vd_vmmio_ack(VdVmmio *d)
{
    uint32_t isr = vd_vmmio_read(d, VMMIO_INTERRUPT_STATUS);
    if (isr) {
        vd_vmmio_write(d, VMMIO_INTERRUPT_ACK, isr);
    }
    return isr;
}

/* ---- split virtqueues ------------------------------------------------------ */

/* Byte offsets inside the rings (2.7.6, 2.7.8). */
#define AVAIL_IDX        2
#define AVAIL_RING(i)    (4 + 2 * (uint64_t)(i))
#define USED_IDX         2
#define USED_RING(i)     (4 + 8 * (uint64_t)(i))

/* Queue setup as 4.2.3.2 describes it. */
bool vd_vq_setup(VdVq *vq, VdVmmio *d, unsigned index, unsigned num, VdGuestAlloc *alloc)
{
    memset(vq, 0, sizeof(*vq));
    vq->dev = d;
    vq->index = index;
    vq->event_idx = d->features & (1ull << VF_RING_EVENT_IDX);
    vd_vmmio_write(d, VMMIO_QUEUE_SEL, index);                       /* select the queue */
    if (vd_vmmio_read(d, VMMIO_QUEUE_READY) != 0) {                  /* must not be in use */
        return false;
    }
    unsigned max = vd_vmmio_read(d, VMMIO_QUEUE_NUM_MAX);            /* 0: no such queue */
    if (max == 0 || num > max || num > VMMIO_MAX_QUEUE) {
        return false;
    }
    vq->num = num;
    /* Alignment: descriptor table 16, available ring 2, used ring 4 (2.7). */
    vq->desc = vd_guest_alloc(alloc, 16ull * num, 16);
    vq->avail = vd_guest_alloc(alloc, 6 + 2ull * num, 2);
    vq->used = vd_guest_alloc(alloc, 6 + 8ull * num, 4);
    vd_qtest_memset(d->qt, vq->desc, 0, 16ull * num);
    vd_qtest_memset(d->qt, vq->avail, 0, 6 + 2ull * num);
    vd_qtest_memset(d->qt, vq->used, 0, 6 + 8ull * num);
    /* Every descriptor starts on the free list, chained through next[]. */
    for (unsigned i = 0; i < num; i++) {
        vq->next[i] = i + 1;
    }
    vq->free_head = 0;
    vq->num_free = num;
    vd_vmmio_write(d, VMMIO_QUEUE_NUM, num);
    vd_vmmio_write(d, VMMIO_QUEUE_DESC_LOW, (uint32_t)vq->desc);
    vd_vmmio_write(d, VMMIO_QUEUE_DESC_HIGH, vq->desc >> 32);
    vd_vmmio_write(d, VMMIO_QUEUE_DRIVER_LOW, (uint32_t)vq->avail);
    vd_vmmio_write(d, VMMIO_QUEUE_DRIVER_HIGH, vq->avail >> 32);
    vd_vmmio_write(d, VMMIO_QUEUE_DEVICE_LOW, (uint32_t)vq->used);
    vd_vmmio_write(d, VMMIO_QUEUE_DEVICE_HIGH, vq->used >> 32);
    vd_vmmio_write(d, VMMIO_QUEUE_READY, 1);
    return vd_vmmio_read(d, VMMIO_QUEUE_READY) == 1;
}

/* One 16-byte descriptor: le64 addr, le32 len, le16 flags, le16 next. */
void vd_vq_write_desc(VdVmmio *d, uint64_t table, unsigned idx, uint64_t addr, uint32_t len, uint16_t flags,
                      uint16_t next)
{
    uint8_t raw[16];
    vd_st_le64(raw, addr);
    vd_st_le32(raw + 8, len);
    vd_st_le16(raw + 12, flags);
    vd_st_le16(raw + 14, next);
    vd_qtest_memwrite(d->qt, table + 16ull * idx, raw, sizeof(raw));
}

/* Chain bufs through free descriptors (or one INDIRECT descriptor); device-readable ones come first. */
unsigned vd_vq_add(VdVq *vq, const VdVqBuf *bufs, unsigned n, bool indirect, VdGuestAlloc *alloc)
{
    VdVmmio *d = vq->dev;
    unsigned need = indirect ? 1 : n;
    g_assert(n > 0 && vq->num_free >= need);
    uint16_t head = vq->free_head;
    if (indirect) {
        /* The indirect table is its own little descriptor array; NEXT indices point inside it. */
        uint64_t table = vd_guest_alloc(alloc, 16ull * n, 16);
        for (unsigned i = 0; i < n; i++) {
            uint16_t flags = (bufs[i].device_writes ? VDESC_F_WRITE : 0) | (i + 1 < n ? VDESC_F_NEXT : 0);
            vd_vq_write_desc(d, table, i, bufs[i].addr, bufs[i].len, flags, i + 1 < n ? i + 1 : 0);
        }
        vd_vq_write_desc(d, vq->desc, head, table, 16 * n, VDESC_F_INDIRECT, 0);
        vq->free_head = vq->next[head];
    } else {
        uint16_t idx = head;
        for (unsigned i = 0; i < n; i++) {
            uint16_t nxt = vq->next[idx];
            uint16_t flags = (bufs[i].device_writes ? VDESC_F_WRITE : 0) | (i + 1 < n ? VDESC_F_NEXT : 0);
            vd_vq_write_desc(d, vq->desc, idx, bufs[i].addr, bufs[i].len, flags, i + 1 < n ? nxt : 0);
            if (i + 1 < n) {
                idx = nxt;
            }
        }
        vq->free_head = vq->next[idx];
    }
    vq->num_free -= need;
    vq->chain_len[head] = need;
    return head;
}

/* 2.7.13: write the ring slot, then publish it by bumping idx (the device reads idx first). */
void vd_vq_publish(VdVq *vq, uint16_t head)
{
    VdQtest *qt = vq->dev->qt;
    vd_qtest_writew(qt, vq->avail + AVAIL_RING(vq->avail_idx % vq->num), head);
    vq->avail_idx++;
    vd_qtest_writew(qt, vq->avail + AVAIL_IDX, vq->avail_idx);
}

/* QueueNotify with the queue index (no NOTIFICATION_DATA). */
void vd_vq_kick(VdVq *vq)
{
    vd_vmmio_write(vq->dev, VMMIO_QUEUE_NOTIFY, vq->index);
}

/* Give a finished chain's descriptors back to the free list. */
static void free_chain(VdVq *vq, uint16_t head)
{
    unsigned n = vq->chain_len[head];
    uint16_t last = head;
    for (unsigned i = 1; i < n; i++) {
        last = vq->next[last];
    }
    vq->next[last] = vq->free_head;
    vq->free_head = head;
    vq->num_free += n;
    vq->chain_len[head] = 0;
}

/* 2.7.14: consume the next used element, if the device has written one. */
bool vd_vq_get_used(VdVq *vq, uint32_t *id, uint32_t *len)
{
    VdQtest *qt = vq->dev->qt;
    uint16_t used_idx = vd_qtest_readw(qt, vq->used + USED_IDX);
    if (used_idx == vq->last_used) {
        return false;
    }
    uint64_t e = vq->used + USED_RING(vq->last_used % vq->num);
    *id = vd_qtest_readl(qt, e);
    *len = vd_qtest_readl(qt, e + 4);
    vq->last_used++;
    if (vq->event_idx) {
        /* used_event: interrupt me again as soon as the next element is used. */
        vd_qtest_writew(qt, vq->avail + AVAIL_RING(vq->num), vq->last_used);
    }
    g_assert(*id < vq->num && vq->chain_len[*id] > 0);   /* the device returned a head we gave it */
    free_chain(vq, *id);
    return true;
}

/* Sleep on the interrupt line until the used ring moves (or the device needs a reset). */
bool vd_vq_wait_used(VdVq *vq, uint32_t *id, uint32_t *len, uint32_t *isr_out)
{
    VdVmmio *d = vq->dev;
    uint32_t isr_seen = 0;
    bool got = false;
    gint64 deadline = g_get_monotonic_time() + VD_QTEST_DEFAULT_TIMEOUT_MS * 1000ll;
    for (;;) {
        if (vd_vq_get_used(vq, id, len)) {
            got = true;
            break;
        }
        if (isr_seen & VISR_CONFIG && vd_vmmio_status(d) & VSTAT_NEEDS_RESET) {
            break;
        }
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0) {
            break;
        }
        if (!vd_qtest_irq_level(d->qt, d->irq)) {
            vd_qtest_wait_irq(d->qt, d->irq, true, left);
        }
        isr_seen |= vd_vmmio_ack(d);   /* the line drops once the causes are acknowledged */
    }
    if (isr_out) {
        *isr_out = isr_seen;
    }
    return got;
}
