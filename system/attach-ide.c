/*
 * attach-ide.c - wire an if=ide drive onto the machine: the PIIX3 IDE
 * function (00:01.1) is created with the first IDE drive; drive index N sits
 * on channel N/2 as unit N%2.  Each drive is announced with its channel's
 * command block, control block and IRQ; two drives on one channel share
 * one FDT node (the machine merges them).
 */
#include "system/machine.h"

#include "hw/ide.h"

/* Free the controller at machine teardown (before the drives are closed). */
static void free_ide(void *opaque)
{
    vd_ide_free(opaque);
}

/* The machine's drain: every request of the controller answered. */
static void drain_ide(void *dev, VdDrainFunc *cb, void *opaque)
{
    vd_ide_drain(dev, cb, opaque);
}

/* The controller, created on first use. */
static VdIdeController *machine_ide(VdMachine *m, GError **errp)
{
    if (!m->ide) {
        VdIdeController *ide = vd_ide_piix3_new(m->pci, VD_IDE_PIIX3_DEVFN, errp);
        if (!ide) {
            return NULL;
        }
        m->ide = ide;
        vd_machine_on_free(m, free_ide, ide);
        vd_machine_on_drain(m, drain_ide, ide);
        vd_machine_add_state(m, &vd_ide_state_ops, "piix3", ide);
    }
    return m->ide;
}

/* Attach an if=ide drive at its index and announce it with its channel resources. */
bool vd_machine_attach_ide(VdMachine *m, VdDriveSpec *drive, GError **errp)
{
    VdIdeController *ide = machine_ide(m, errp);
    if (!ide) {
        return false;
    }
    int index = -1;
    if (!vd_ide_attach(ide, drive->index, drive->blk, drive->serial, &index, errp)) {
        return false;
    }
    drive->index = index;

    uint16_t cmd, ctl;
    unsigned irq;
    unsigned channel = index / 2, unit = index % 2;
    vd_ide_channel_info(channel, &cmd, &ctl, &irq);
    g_autofree char *desc = g_strdup_printf("ATA disk %s on PIIX3 IDE channel %u %s (BMDMA at 0x%x+%u)",
                                            drive->id, channel, unit ? "slave" : "master",
                                            VD_IDE_BMDMA_BASE, channel * 8);
    VdDeviceInfo info = {
        .name = "ide",
        .compatible = "vdisk,piix3-ide",
        .description = desc,
        .space = VD_SPACE_PIO,
        .base = cmd, .size = VD_IDE_CMD_SIZE,
        .base2 = ctl, .size2 = VD_IDE_CTL_SIZE,
        .irq = irq,
        .drive_id = drive->id,
    };
    vd_machine_add_device(m, &info);
    return true;
}
