/*
 * piix3.c - the PIIX3 IDE PCI function (8086:7010, class 0101h, prog-if
 * 80h: both channels in legacy mode, bus-master capable) and the
 * controller's lifetime: creation, drive attach, free.
 *
 * Power-on state, as firmware would leave it (this machine has none):
 * PCI command = I/O space + bus master, BAR4 = VD_IDE_BMDMA_BASE, IDETIM
 * (40h-41h primary, 42h-43h secondary) = 8000h: decode enabled, and the
 * bus-master "drive N DMA capable" bits set for each attached drive.  Clearing
 * an IDETIM decode bit stops the channel's legacy ports from decoding.
 */
#include "ide-internal.h"

#include <string.h>

#define PIIX_IDETIM_PRI   0x40
#define PIIX_IDETIM_SEC   0x42
#define PIIX_SIDETIM      0x44
#define PIIX_IDETIM_IDE   0x8000   /* IDE decode enable */

typedef struct ChannelLayout {
    uint16_t cmd, ctl;
    unsigned irq;
} ChannelLayout;

static const ChannelLayout channel_layout[VD_IDE_CHANNELS] = {
    { VD_IDE_PRIMARY_CMD, VD_IDE_PRIMARY_CTL, VD_IDE_PRIMARY_IRQ },
    { VD_IDE_SECONDARY_CMD, VD_IDE_SECONDARY_CTL, VD_IDE_SECONDARY_IRQ },
};

/* The fixed legacy resources of a channel. */
void vd_ide_channel_info(unsigned channel, uint16_t *cmd_base, uint16_t *ctl_base, unsigned *irq)
{
    const ChannelLayout *l = &channel_layout[channel % VD_IDE_CHANNELS];
    if (cmd_base) {
        *cmd_base = l->cmd;
    }
    if (ctl_base) {
        *ctl_base = l->ctl;
    }
    if (irq) {
        *irq = l->irq;
    }
}

/* Map a channel's command and control blocks if not mapped yet. */
static bool channel_map(IdeChannel *ch, GError **errp)
{
    VdBus *bus = ch->ctrl->bus;
    if (!ch->cmd_region) {
        g_autofree char *name = g_strdup_printf("ide%u-cmd", ch->index);
        ch->cmd_region = vd_bus_map(bus, VD_SPACE_PIO, ch->cmd_base, VD_IDE_CMD_SIZE, &vd_ide_cmd_ops, ch, name, errp);
        if (!ch->cmd_region) {
            return false;
        }
    }
    if (!ch->ctl_region) {
        g_autofree char *name = g_strdup_printf("ide%u-ctl", ch->index);
        ch->ctl_region = vd_bus_map(bus, VD_SPACE_PIO, ch->ctl_base, VD_IDE_CTL_SIZE, &vd_ide_ctl_ops, ch, name, errp);
        if (!ch->ctl_region) {
            return false;
        }
    }
    return true;
}

/* Stop decoding a channel's legacy ports. */
static void channel_unmap(IdeChannel *ch)
{
    vd_bus_unmap(ch->ctrl->bus, ch->cmd_region);
    vd_bus_unmap(ch->ctrl->bus, ch->ctl_region);
    ch->cmd_region = ch->ctl_region = NULL;
}

/* Make each channel's port decode follow its IDETIM decode-enable bit. */
static void update_decode(VdIdeController *c)
{
    static const unsigned idetim[VD_IDE_CHANNELS] = { PIIX_IDETIM_PRI, PIIX_IDETIM_SEC };
    for (unsigned i = 0; i < VD_IDE_CHANNELS; i++) {
        uint16_t v = c->pci.config[idetim[i]] | c->pci.config[idetim[i] + 1] << 8;
        if (v & PIIX_IDETIM_IDE) {
            channel_map(&c->ch[i], NULL);   /* a port conflict leaves the channel dark */
        } else {
            channel_unmap(&c->ch[i]);
        }
    }
}

/* Config writes past the header: IDETIM and SIDETIM are plain read/write registers. */
static void piix3_config_write(VdPciDevice *dev, unsigned offset, uint32_t value, unsigned size)
{
    VdIdeController *c = (VdIdeController *)dev;
    bool touched = false;
    for (unsigned i = 0; i < size; i++) {
        unsigned off = offset + i;
        if (off >= PIIX_IDETIM_PRI && off <= PIIX_SIDETIM) {
            dev->config[off] = value >> (8 * i);
            touched = true;
        }
    }
    if (touched) {
        update_decode(c);
    }
}

/* Create the function: both channels' ports, config space as firmware leaves it, BAR4. */
VdIdeController *vd_ide_piix3_new(VdPciHost *pci, unsigned devfn, GError **errp)
{
    VdIdeController *c = g_new0(VdIdeController, 1);
    c->bus = vd_pci_host_bus(pci);
    for (unsigned i = 0; i < VD_IDE_CHANNELS; i++) {
        IdeChannel *ch = &c->ch[i];
        ch->ctrl = c;
        ch->index = i;
        vd_ide_channel_info(i, &ch->cmd_base, &ch->ctl_base, &ch->irq);
        for (unsigned u = 0; u < 2; u++) {
            ch->drive[u].ch = ch;
            ch->drive[u].unit = u;
        }
        if (!channel_map(ch, errp)) {
            vd_ide_free(c);
            return NULL;
        }
    }
    VdPciDevice *dev = &c->pci;
    vd_pci_device_init(dev, "piix3-ide", VD_IDE_PIIX3_VENDOR, VD_IDE_PIIX3_DEVICE, 0x01, 0x01, 0x80);
    dev->config[VD_PCI_COMMAND] = VD_PCI_COMMAND_IO | VD_PCI_COMMAND_MASTER;
    dev->config[VD_PCI_STATUS + 1] = 0x02;              /* DEVSEL timing: medium */
    dev->config[PIIX_IDETIM_PRI + 1] = PIIX_IDETIM_IDE >> 8;
    dev->config[PIIX_IDETIM_SEC + 1] = PIIX_IDETIM_IDE >> 8;
    dev->config_write = piix3_config_write;
    vd_pci_device_set_bar(dev, 4, VD_IDE_BMDMA_SIZE, true, &vd_ide_bmdma_ops, c, VD_IDE_BMDMA_BASE);
    if (!vd_pci_register(pci, dev, devfn, errp)) {
        vd_ide_free(c);
        return NULL;
    }
    return c;
}

/* Detach in-flight requests, drop the IRQ lines, unmap everything, free. */
void vd_ide_free(VdIdeController *c)
{
    if (!c) {
        return;
    }
    g_assert(!c->drain.waiters);   /* nobody may wait for a controller being freed */
    for (unsigned i = 0; i < VD_IDE_CHANNELS; i++) {
        IdeChannel *ch = &c->ch[i];
        for (unsigned u = 0; u < 2; u++) {
            ide_req_detach_all(&ch->drive[u]);
            ide_xfer_clear(&ch->drive[u]);
        }
        if (ch->irq_level) {
            vd_irq_set(c->bus, ch->irq, false);
        }
        channel_unmap(ch);
    }
    vd_pci_unregister(&c->pci);
    g_free(c);
}

/* Put a disk at an index (or the first free one) and power it on. */
bool vd_ide_attach(VdIdeController *c, int index, VdBlockBackend *blk, const char *serial,
                   int *index_out, GError **errp)
{
    if (index < 0) {
        for (index = 0; index < VD_IDE_MAX_DRIVES && vd_ide_has_drive(c, index); index++) {
        }
        if (index == VD_IDE_MAX_DRIVES) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "all %d IDE positions are taken", VD_IDE_MAX_DRIVES);
            return false;
        }
    } else if (index >= VD_IDE_MAX_DRIVES) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "IDE index %d is out of range (0..%d)",
                    index, VD_IDE_MAX_DRIVES - 1);
        return false;
    } else if (vd_ide_has_drive(c, index)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "IDE index %d is taken", index);
        return false;
    }
    IdeDrive *d = &c->ch[index / 2].drive[index % 2];
    d->blk = blk;
    /* vd_blk_open refuses images that are empty or not whole sectors. */
    d->nsectors = (uint64_t)vd_blk_length(blk) / IDE_SECTOR;
    if (serial && *serial) {
        g_strlcpy(d->serial, serial, sizeof(d->serial));
    } else {
        g_strlcpy(d->serial, vd_blk_unique_id(blk), sizeof(d->serial));
    }
    ide_power_on(d);
    /* As firmware would: mark the drive DMA capable in the bus-master status. */
    d->ch->bm.status |= d->unit ? BM_ST_DRV1_DMA : BM_ST_DRV0_DMA;
    /* The other device's register copy starts with the same values. */
    IdeDrive *other = &c->ch[index / 2].drive[(index % 2) ^ 1];
    if (!ide_present(other)) {
        ide_set_signature(other);
    }
    if (index_out) {
        *index_out = index;
    }
    return true;
}

/* True if a disk sits at index. */
bool vd_ide_has_drive(VdIdeController *c, unsigned index)
{
    return index < VD_IDE_MAX_DRIVES && ide_present(&c->ch[index / 2].drive[index % 2]);
}

/* The PCI function of the controller. */
VdPciDevice *vd_ide_pci_device(VdIdeController *c)
{
    return &c->pci;
}

/* Backend requests of the controller not yet called back; see ide.h. */
unsigned vd_ide_in_flight(VdIdeController *c)
{
    return c->drain.in_flight;
}

/* Call cb once vd_ide_in_flight is 0; see ide.h. */
void vd_ide_drain(VdIdeController *c, VdDrainFunc *cb, void *opaque)
{
    vd_drain_wait(&c->drain, cb, opaque);
}
