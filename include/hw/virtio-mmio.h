/*
 * virtio-mmio.h - the virtio-mmio version 2 transport (virtio 1.2, 4.2).
 *
 * A VdVirtioMmio claims one VD_VIRTIO_MMIO_SIZE (0x200-byte) MMIO window on
 * a VdBus for a VdVirtioDevice and drives one level-triggered IRQ line.
 *
 * Ownership: the caller owns the VdVirtioMmio and frees it with
 * vd_virtio_mmio_free.  The VdVirtioDevice it serves is borrowed: it belongs
 * to its device model (vd_virtio_blk_free / vd_virtio_scsi_free free it) and
 * must outlive the transport.  Teardown order: vd_virtio_mmio_free first
 * (it unbinds itself from the device), then the device model's free, then
 * vd_blk_close, then vd_bus_free.  Freeing the device model first leaves the
 * transport pointing at a freed device.
 *
 * Threading: every function, and every access dispatched to the window,
 * runs on the thread that owns the bus's GMainContext.
 *
 * Guarantees:
 *  - Registers follow virtio 1.2 4.2.2 (Version reads 2; legacy
 *    GuestPageSize/QueuePFN are not implemented and read 0).
 *  - Register accesses that are not 32 bits wide read 0 and are ignored;
 *    device config space (0x100+) accepts 1, 2, 4 and 8 byte accesses.
 *  - The IRQ line is high exactly while InterruptStatus is non-zero.
 *  - Queue registers written while the selected queue is ready are ignored;
 *    QueueReady=1 reads back 0 when the core refuses the queue layout.
 */
#ifndef VD_HW_VIRTIO_MMIO_H
#define VD_HW_VIRTIO_MMIO_H

#include "hw/bus.h"
#include "hw/virtio.h"

#define VD_VIRTIO_MMIO_MAGIC   0x74726976u  /* "virt" */
#define VD_VIRTIO_MMIO_VERSION 2
#define VD_VIRTIO_MMIO_VENDOR  0x4b534456u  /* "VDSK" */
/* The window one device needs: registers 0x000-0x0ff, config space 0x100-0x1ff. */
#define VD_VIRTIO_MMIO_SIZE    0x200ull

/* Register offsets. */
enum {
    VD_VMMIO_MAGIC = 0x000, VD_VMMIO_VERSION = 0x004, VD_VMMIO_DEVICE_ID = 0x008, VD_VMMIO_VENDOR_ID = 0x00c,
    VD_VMMIO_DEVICE_FEATURES = 0x010, VD_VMMIO_DEVICE_FEATURES_SEL = 0x014,
    VD_VMMIO_DRIVER_FEATURES = 0x020, VD_VMMIO_DRIVER_FEATURES_SEL = 0x024,
    VD_VMMIO_QUEUE_SEL = 0x030, VD_VMMIO_QUEUE_NUM_MAX = 0x034, VD_VMMIO_QUEUE_NUM = 0x038,
    VD_VMMIO_QUEUE_READY = 0x044, VD_VMMIO_QUEUE_NOTIFY = 0x050,
    VD_VMMIO_INTERRUPT_STATUS = 0x060, VD_VMMIO_INTERRUPT_ACK = 0x064, VD_VMMIO_STATUS = 0x070,
    VD_VMMIO_QUEUE_DESC_LOW = 0x080, VD_VMMIO_QUEUE_DESC_HIGH = 0x084,
    VD_VMMIO_QUEUE_DRIVER_LOW = 0x090, VD_VMMIO_QUEUE_DRIVER_HIGH = 0x094,
    VD_VMMIO_QUEUE_DEVICE_LOW = 0x0a0, VD_VMMIO_QUEUE_DEVICE_HIGH = 0x0a4,
    VD_VMMIO_SHM_SEL = 0x0ac, VD_VMMIO_SHM_LEN_LOW = 0x0b0, VD_VMMIO_SHM_LEN_HIGH = 0x0b4,
    VD_VMMIO_CONFIG_GENERATION = 0x0fc, VD_VMMIO_CONFIG = 0x100,
};

typedef struct VdVirtioMmio VdVirtioMmio;

/* Map vdev's registers at base (window VD_VIRTIO_MMIO_SIZE bytes) with IRQ line irq. */
VdVirtioMmio *vd_virtio_mmio_new(VdBus *bus, uint64_t base, uint64_t size, unsigned irq, VdVirtioDevice *vdev,
                                 GError **errp);
/*
 * Unmap the window, unbind from vdev and lower the IRQ.  vdev is not freed
 * here and must not be freed by the caller either: its device model's free
 * does that (call it after this).
 */
void vd_virtio_mmio_free(VdVirtioMmio *mmio);
uint32_t vd_virtio_mmio_isr(VdVirtioMmio *mmio);

/* Migration (hw/vmstate.h): InterruptStatus and the selectors; dev is a VdVirtioMmio. */
extern const VdDeviceStateOps vd_virtio_mmio_state_ops;
/* regs: InterruptStatus, DeviceFeaturesSel, DriverFeaturesSel, QueueSel, SHMSel (for the state ops). */
void vd_virtio_mmio_get_regs(VdVirtioMmio *mmio, uint32_t regs[5]);
/* Set them and drive the IRQ line from InterruptStatus. */
void vd_virtio_mmio_set_regs(VdVirtioMmio *mmio, const uint32_t regs[5]);

#endif
