/* attach-ide.c - wire an if=ide drive onto the machine (placeholder until hw/ provides the IDE model). */
#include "system/machine.h"

/* Refuse the drive: the IDE device model is not part of this build yet. */
bool vd_machine_attach_ide(VdMachine *m, VdDriveSpec *drive, GError **errp)
{
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                "if=ide: the IDE device model is not part of this build yet");
    return false;
}
