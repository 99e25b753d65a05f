/* attach-virtio.c - wire an if=virtio drive onto the machine (placeholder until hw/ provides the virtio-blk model). */
#include "system/machine.h"

/* Refuse the drive: the virtio-blk device model is not part of this build yet. */
bool vd_machine_attach_virtio(VdMachine *m, VdDriveSpec *drive, GError **errp)
{
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                "if=virtio: the virtio-blk device model is not part of this build yet");
    return false;
}
