/* fake-attach.c - device-less attach functions that register what real devices register. */
#include "fake-attach.h"

bool fake_attach_fail;
unsigned fake_attach_calls;

/* Fail once when the test asks for it. */
static bool maybe_fail(GError **errp)
{
    fake_attach_calls++;
    if (fake_attach_fail) {
        fake_attach_fail = false;
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "fake attach failure");
        return true;
    }
    return false;
}

/* IDE: drive index N on channel N/2. */
bool vd_machine_attach_ide(VdMachine *m, VdDriveSpec *drive, GError **errp)
{
    if (maybe_fail(errp)) {
        return false;
    }
    unsigned ch = drive->index / 2;
    vd_machine_add_device(m, &(VdDeviceInfo){
        .name = "ide", .compatible = "vdisk,ide-channel", .description = "fake IDE",
        .space = VD_SPACE_PIO, .base = ch ? 0x170 : 0x1f0, .size = 8,
        .base2 = ch ? 0x376 : 0x3f6, .size2 = 1, .irq = ch ? 15 : 14, .drive_id = drive->id });
    return true;
}

/* virtio: the next slot. */
bool vd_machine_attach_virtio(VdMachine *m, VdDriveSpec *drive, GError **errp)
{
    uint64_t base;
    unsigned irq;
    if (maybe_fail(errp) || !vd_machine_next_virtio_slot(m, &base, &irq, errp)) {
        return false;
    }
    vd_machine_add_device(m, &(VdDeviceInfo){
        .name = "virtio_mmio", .compatible = "virtio,mmio", .description = "fake virtio-blk",
        .space = VD_SPACE_MMIO, .base = base, .size = VD_VIRTIO_MMIO_SIZE, .irq = irq, .drive_id = drive->id });
    return true;
}

/* SCSI: one controller slot for the first drive; later drives are LUNs on it. */
bool vd_machine_attach_scsi(VdMachine *m, VdDriveSpec *drive, GError **errp)
{
    static uint64_t scsi_base;
    static unsigned scsi_irq;
    if (maybe_fail(errp)) {
        return false;
    }
    if (!m->scsi) {
        if (!vd_machine_next_virtio_slot(m, &scsi_base, &scsi_irq, errp)) {
            return false;
        }
        m->scsi = m; /* any non-NULL marker */
    }
    vd_machine_add_device(m, &(VdDeviceInfo){
        .name = "virtio_mmio", .compatible = "virtio,mmio", .description = "fake virtio-scsi",
        .space = VD_SPACE_MMIO, .base = scsi_base, .size = VD_VIRTIO_MMIO_SIZE, .irq = scsi_irq,
        .drive_id = drive->id });
    return true;
}
