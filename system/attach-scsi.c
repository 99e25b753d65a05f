/* attach-scsi.c - wire an if=scsi drive onto the machine (placeholder until hw/ provides the virtio-scsi model). */
#include "system/machine.h"

/* Refuse the drive: the virtio-scsi device model is not part of this build yet. */
bool vd_machine_attach_scsi(VdMachine *m, VdDriveSpec *drive, GError **errp)
{
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                "if=scsi: the virtio-scsi device model is not part of this build yet");
    return false;
}
