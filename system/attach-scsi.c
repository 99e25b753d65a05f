/*
 * attach-scsi.c - wire an if=scsi drive onto the machine.  The first SCSI
 * drive creates the one virtio-scsi controller in the next virtio-mmio slot
 * (m->scsi); every SCSI drive becomes target 0, LUN = its index, which the
 * machine hands out as the drive's order among the SCSI drives (or takes
 * from index=).  Drives attached later are added to the running controller.
 */
#include "system/machine.h"

#include <gio/gio.h>

#include "hw/virtio-mmio.h"
#include "hw/virtio-scsi.h"

/* The controller the first SCSI drive created. */
typedef struct ScsiController {
    VdVirtioScsi *dev;
    VdVirtioMmio *mmio;
    uint64_t base;
    unsigned irq;
} ScsiController;

/* Machine teardown: unmap the transport, then drain and free the adapter and its disks. */
static void scsi_controller_free(void *opaque)
{
    ScsiController *c = opaque;
    vd_virtio_mmio_free(c->mmio);
    vd_virtio_scsi_free(c->dev);
    g_free(c);
}

/* The machine's drain: every response of the adapter (all LUNs) in guest memory. */
static void scsi_controller_drain(void *dev, VdDrainFunc *cb, void *opaque)
{
    vd_virtio_scsi_drain(dev, cb, opaque);
}

/* Create the controller in the next virtio-mmio slot. */
static ScsiController *scsi_controller_new(VdMachine *m, VdDriveSpec *drive, GError **errp)
{
    ScsiController *c = g_new0(ScsiController, 1);
    if (!vd_machine_next_virtio_slot(m, &c->base, &c->irq, errp)) {
        g_free(c);
        return NULL;
    }
    VdVirtioScsiConf conf = { .num_queues = drive->num_queues ? drive->num_queues : 1 };
    c->dev = vd_virtio_scsi_new(&conf, m->bus, errp);
    if (c->dev) {
        c->mmio = vd_virtio_mmio_new(m->bus, c->base, VD_VIRTIO_MMIO_SIZE, c->irq, vd_virtio_scsi_device(c->dev),
                                     errp);
    }
    if (!c->mmio) {
        vd_virtio_scsi_free(c->dev);
        g_free(c);
        m->next_virtio_slot--;     /* give the slot back */
        return NULL;
    }
    vd_machine_on_free(m, scsi_controller_free, c);
    vd_machine_on_drain(m, scsi_controller_drain, c->dev);
    vd_machine_add_state(m, &vd_virtio_mmio_state_ops, "scsi", c->mmio);
    vd_machine_add_state(m, &vd_virtio_scsi_state_ops, "scsi", c->dev);
    m->scsi = c;
    return c;
}

/* Attach one SCSI drive as a LUN of the controller (created on first use). */
bool vd_machine_attach_scsi(VdMachine *m, VdDriveSpec *drive, GError **errp)
{
    ScsiController *c = m->scsi;
    if (drive->index < 0 || drive->index >= VD_SCSI_MAX_LUNS) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "if=scsi: LUN %d out of range", drive->index);
        return false;
    }
    if (!c && !(c = scsi_controller_new(m, drive, errp))) {
        return false;
    }
    if (!vd_virtio_scsi_add_lun(c->dev, drive->blk, (unsigned)drive->index,
                                drive->serial, errp)) {
        return false;
    }
    g_autofree char *desc = g_strdup_printf("virtio-scsi %s target 0 lun %d", drive->id, drive->index);
    VdDeviceInfo info = {
        .name = "virtio_mmio",
        .compatible = "virtio,mmio",
        .description = desc,
        .space = VD_SPACE_MMIO,
        .base = c->base,
        .size = VD_VIRTIO_MMIO_SIZE,
        .irq = (int)c->irq,
        .drive_id = drive->id,
    };
    vd_machine_add_device(m, &info);
    return true;
}
