/* attach-virtio.c - wire an if=virtio drive onto the machine: virtio-blk on a virtio-mmio slot. */
#include "system/machine.h"

#include <gio/gio.h>

#include "hw/virtio-blk.h"
#include "hw/virtio-mmio.h"

/* What one if=virtio drive put on the machine. */
typedef struct VirtioBlkSlot {
    VdVirtioBlk *dev;
    VdVirtioMmio *mmio;
} VirtioBlkSlot;

/* Machine teardown: unmap the transport, then drain and free the device. */
static void virtio_blk_slot_free(void *opaque)
{
    VirtioBlkSlot *slot = opaque;
    vd_virtio_mmio_free(slot->mmio);
    vd_virtio_blk_free(slot->dev);
    g_free(slot);
}

/* The machine's drain: every answer of the device in guest memory. */
static void virtio_blk_slot_drain(void *dev, VdDrainFunc *cb, void *opaque)
{
    vd_virtio_blk_drain(dev, cb, opaque);
}

/* Claim the next virtio-mmio slot and put a virtio-blk device for drive there. */
bool vd_machine_attach_virtio(VdMachine *m, VdDriveSpec *drive, GError **errp)
{
    uint64_t base;
    unsigned irq;
    if (!vd_machine_next_virtio_slot(m, &base, &irq, errp)) {
        return false;
    }
    VdVirtioBlkConf conf = {
        .serial = drive->serial,
        .num_queues = drive->num_queues ? drive->num_queues : 1,
    };
    VirtioBlkSlot *slot = g_new0(VirtioBlkSlot, 1);
    slot->dev = vd_virtio_blk_new(drive->blk, &conf, m->bus, errp);
    if (slot->dev) {
        slot->mmio = vd_virtio_mmio_new(m->bus, base, VD_VIRTIO_MMIO_SIZE, irq, vd_virtio_blk_device(slot->dev), errp);
    }
    if (!slot->mmio) {
        vd_virtio_blk_free(slot->dev);
        g_free(slot);
        m->next_virtio_slot--;     /* give the slot back: nothing of the drive stays */
        return false;
    }
    g_autofree char *desc = g_strdup_printf("virtio-blk %s queues=%u", drive->id, conf.num_queues);
    VdDeviceInfo info = {
        .name = "virtio_mmio",
        .compatible = "virtio,mmio",
        .description = desc,
        .space = VD_SPACE_MMIO,
        .base = base,
        .size = VD_VIRTIO_MMIO_SIZE,
        .irq = irq,
        .drive_id = drive->id,
    };
    vd_machine_add_device(m, &info);
    vd_machine_on_free(m, virtio_blk_slot_free, slot);
    vd_machine_on_drain(m, virtio_blk_slot_drain, slot->dev);
    vd_machine_add_state(m, &vd_virtio_mmio_state_ops, drive->id, slot->mmio);
    vd_machine_add_state(m, &vd_virtio_blk_state_ops, drive->id, slot->dev);
    return true;
}
