/*
 * virtio-mmio.h - the virtio-mmio version 2 transport (virtio 1.2, 4.2).
 *
 * A VdVirtioMmio claims one 0x200-byte MMIO window on a VdBus for a
 * VdVirtioDevice and drives one level-triggered IRQ line.
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
/* Unmap the window and lower the IRQ (the device itself is not freed). */
void vd_virtio_mmio_free(VdVirtioMmio *mmio);
uint32_t vd_virtio_mmio_isr(VdVirtioMmio *mmio);

#endif
