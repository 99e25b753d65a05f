/* virtio-mmio.c - the virtio-mmio version 2 register window for one virtio device. */
#include "hw/virtio-mmio.h"
#include "util/bswap.h"

#include <gio/gio.h>

struct VdVirtioMmio {
    VdBus *bus;
    VdRegion *region;
    unsigned irq;
    VdVirtioDevice *vdev;
    uint32_t isr;
    uint32_t device_features_sel, driver_features_sel, queue_sel, shm_sel;
};

/* Drive the IRQ line from InterruptStatus. */
static void update_irq(VdVirtioMmio *m)
{
    vd_irq_set(m->bus, m->irq, m->isr != 0);
}

/* Core -> transport: a used-buffer (queue >= 0) or config-change (-1) interrupt. */
static void mmio_notify(void *opaque, int queue)
{
    VdVirtioMmio *m = opaque;
    m->isr |= queue >= 0 ? VD_VIRTIO_ISR_QUEUE : VD_VIRTIO_ISR_CONFIG;
    update_irq(m);
}

static const VdVirtioTransportOps mmio_transport = { .notify = mmio_notify };

/* The selected queue, or NULL if QueueSel is out of range. */
static VdVirtQueue *cur_queue(VdVirtioMmio *m)
{
    return vd_virtio_queue(m->vdev, m->queue_sel);
}

/* Device config space: little-endian composition of 1..8 bytes. */
static uint64_t config_read(VdVirtioMmio *m, uint64_t off, unsigned size)
{
    uint8_t buf[8];
    vd_virtio_config_read(m->vdev, off, buf, size);
    return vd_ld_le_n(buf, size);
}

/* Read a 32-bit register. */
static uint32_t reg_read(VdVirtioMmio *m, uint64_t addr)
{
    VdVirtioDevice *v = m->vdev;
    VdVirtQueue *vq = cur_queue(m);
    uint64_t desc = 0, avail = 0, used = 0;
    if (vq) {
        vd_virtq_get_addr(vq, &desc, &avail, &used);
    }
    switch (addr) {
    case VD_VMMIO_MAGIC: return VD_VIRTIO_MMIO_MAGIC;
    case VD_VMMIO_VERSION: return VD_VIRTIO_MMIO_VERSION;
    case VD_VMMIO_DEVICE_ID: return vd_virtio_device_ops(v)->device_id;
    case VD_VMMIO_VENDOR_ID: return VD_VIRTIO_MMIO_VENDOR;
    case VD_VMMIO_DEVICE_FEATURES:
        return m->device_features_sel < 2 ? vd_virtio_host_features(v) >> (32 * m->device_features_sel) : 0;
    case VD_VMMIO_QUEUE_NUM_MAX: return vq ? vd_virtq_size_max(vq) : 0;
    case VD_VMMIO_QUEUE_NUM: return vq ? vd_virtq_size(vq) : 0;
    case VD_VMMIO_QUEUE_READY: return vq ? vd_virtq_ready(vq) : 0;
    case VD_VMMIO_INTERRUPT_STATUS: return m->isr;
    case VD_VMMIO_STATUS: return vd_virtio_get_status(v);
    case VD_VMMIO_QUEUE_DESC_LOW: return desc;
    case VD_VMMIO_QUEUE_DESC_HIGH: return desc >> 32;
    case VD_VMMIO_QUEUE_DRIVER_LOW: return avail;
    case VD_VMMIO_QUEUE_DRIVER_HIGH: return avail >> 32;
    case VD_VMMIO_QUEUE_DEVICE_LOW: return used;
    case VD_VMMIO_QUEUE_DEVICE_HIGH: return used >> 32;
    case VD_VMMIO_SHM_LEN_LOW:
    case VD_VMMIO_SHM_LEN_HIGH: return 0xffffffffu;   /* no shared memory regions */
    case VD_VMMIO_CONFIG_GENERATION: return vd_virtio_config_generation(v);
    default: return 0;
    }
}

/* Bus read callback. */
static uint64_t mmio_read(void *opaque, uint64_t addr, unsigned size)
{
    VdVirtioMmio *m = opaque;
    if (addr >= VD_VMMIO_CONFIG) {
        return config_read(m, addr - VD_VMMIO_CONFIG, size);
    }
    return size == 4 ? reg_read(m, addr) : 0;
}

/* Replace the 32-bit half `high` of a 64-bit value. */
static uint64_t set_half(uint64_t old, uint32_t v, bool high)
{
    return high ? (old & 0xffffffffull) | ((uint64_t)v << 32) : (old & ~0xffffffffull) | v;
}

/* A write to one of the six queue address registers. */
static void write_queue_addr(VdVirtioMmio *m, uint64_t addr, uint32_t v)
{
    VdVirtQueue *vq = cur_queue(m);
    if (!vq) {
        return;
    }
    uint64_t a[3];
    vd_virtq_get_addr(vq, &a[0], &a[1], &a[2]);
    unsigned which = (addr - VD_VMMIO_QUEUE_DESC_LOW) / 0x10;
    a[which] = set_half(a[which], v, addr & 4);
    vd_virtq_set_addr(vq, a[0], a[1], a[2]);
}

/* Status register write; 0 resets the device and the transport. */
static void write_status(VdVirtioMmio *m, uint32_t v)
{
    vd_virtio_set_status(m->vdev, v & 0xff);
    if ((v & 0xff) == 0) {
        m->isr = 0;
        m->device_features_sel = m->driver_features_sel = m->queue_sel = m->shm_sel = 0;
        update_irq(m);
    }
}

/* Write a 32-bit register. */
static void reg_write(VdVirtioMmio *m, uint64_t addr, uint32_t v)
{
    VdVirtioDevice *vdev = m->vdev;
    VdVirtQueue *vq = cur_queue(m);
    switch (addr) {
    case VD_VMMIO_DEVICE_FEATURES_SEL: m->device_features_sel = v; break;
    case VD_VMMIO_DRIVER_FEATURES:
        if (m->driver_features_sel < 2) {
            vd_virtio_set_guest_features(vdev, set_half(vd_virtio_guest_features(vdev), v,
                                                        m->driver_features_sel == 1));
        }
        break;
    case VD_VMMIO_DRIVER_FEATURES_SEL: m->driver_features_sel = v; break;
    case VD_VMMIO_QUEUE_SEL: m->queue_sel = v; break;
    case VD_VMMIO_QUEUE_NUM:
        if (vq) {
            vd_virtq_set_size(vq, v);
        }
        break;
    case VD_VMMIO_QUEUE_READY:
        if (vq) {
            vd_virtq_set_ready(vq, v & 1);
        }
        break;
    case VD_VMMIO_QUEUE_NOTIFY: vd_virtio_queue_kick(vdev, v & 0xffff); break;
    case VD_VMMIO_INTERRUPT_ACK:
        m->isr &= ~v;
        update_irq(m);
        break;
    case VD_VMMIO_STATUS: write_status(m, v); break;
    case VD_VMMIO_QUEUE_DESC_LOW: case VD_VMMIO_QUEUE_DESC_HIGH:
    case VD_VMMIO_QUEUE_DRIVER_LOW: case VD_VMMIO_QUEUE_DRIVER_HIGH:
    case VD_VMMIO_QUEUE_DEVICE_LOW: case VD_VMMIO_QUEUE_DEVICE_HIGH:
        write_queue_addr(m, addr, v);
        break;
    case VD_VMMIO_SHM_SEL: m->shm_sel = v; break;
    default: break;   /* read-only or unimplemented: ignored */
    }
}

/* Bus write callback. */
static void mmio_write(void *opaque, uint64_t addr, uint64_t value, unsigned size)
{
    VdVirtioMmio *m = opaque;
    if (addr >= VD_VMMIO_CONFIG) {
        uint8_t buf[8];
        vd_st_le_n(buf, value, size);
        vd_virtio_config_write(m->vdev, addr - VD_VMMIO_CONFIG, buf, size);
        return;
    }
    if (size == 4) {
        reg_write(m, addr, value);
    }
}

static const VdIoOps mmio_ops = { .read = mmio_read, .write = mmio_write };

/* Map the transport; see virtio-mmio.h. */
VdVirtioMmio *vd_virtio_mmio_new(VdBus *bus, uint64_t base, uint64_t size, unsigned irq, VdVirtioDevice *vdev,
                                 GError **errp)
{
    if (irq >= VD_IRQ_LINES || size < VD_VMMIO_CONFIG + vd_virtio_config_size(vdev)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "virtio-mmio: bad IRQ %u or window size", irq);
        return NULL;
    }
    VdVirtioMmio *m = g_new0(VdVirtioMmio, 1);
    m->bus = bus;
    m->irq = irq;
    m->vdev = vdev;
    g_autofree char *name = g_strdup_printf("virtio-mmio(%s)", vd_virtio_device_ops(vdev)->name);
    m->region = vd_bus_map(bus, VD_SPACE_MMIO, base, size, &mmio_ops, m, name, errp);
    if (!m->region) {
        g_free(m);
        return NULL;
    }
    vd_virtio_set_transport(vdev, &mmio_transport, m);
    return m;
}

/* Unmap and detach from the device. */
void vd_virtio_mmio_free(VdVirtioMmio *m)
{
    if (!m) {
        return;
    }
    vd_virtio_set_transport(m->vdev, NULL, NULL);
    vd_bus_unmap(m->bus, m->region);
    m->isr = 0;
    update_irq(m);
    g_free(m);
}

uint32_t vd_virtio_mmio_isr(VdVirtioMmio *m) { return m->isr; }

/* The transport's own registers, for migration. */
void vd_virtio_mmio_get_regs(VdVirtioMmio *m, uint32_t regs[5])
{
    regs[0] = m->isr;
    regs[1] = m->device_features_sel;
    regs[2] = m->driver_features_sel;
    regs[3] = m->queue_sel;
    regs[4] = m->shm_sel;
}

/* Restore the registers on a migration destination; the IRQ line follows InterruptStatus. */
void vd_virtio_mmio_set_regs(VdVirtioMmio *m, const uint32_t regs[5])
{
    m->isr = regs[0];
    m->device_features_sel = regs[1];
    m->driver_features_sel = regs[2];
    m->queue_sel = regs[3];
    m->shm_sel = regs[4];
    update_irq(m);
}
