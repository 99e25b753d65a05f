/*
 * ide-regs.c - the ATA task-file registers of one channel: command block
 * (data, error/features, count, LBA low/mid/high, device, status/command),
 * control block (alternate status / device control), device selection,
 * the LBA48 two-deep register FIFOs with HOB, SRST and INTRQ with nIEN.
 *
 * Both devices on a cable see every register write; each keeps its own
 * copy.  Reads come from the selected device.  When the selected device is
 * absent and the other one is present, the present one answers for it
 * (ATA "device 0 only" configuration): Status and Alternate Status read 00h,
 * the other registers read the values last written.  A channel with no
 * device at all floats: every register reads 7Fh (DD7 pulled down).
 */
#include "ide-internal.h"

/* The currently selected device. */
static IdeDrive *selected(IdeChannel *ch)
{
    return &ch->drive[ch->sel];
}

/* True if no device sits on the cable. */
static bool channel_empty(const IdeChannel *ch)
{
    return !ide_present(&ch->drive[0]) && !ide_present(&ch->drive[1]);
}

/* Drive the channel's IRQ line from the selected device's INTRQ and nIEN. */
void vd_ide_update_irq(IdeChannel *ch)
{
    IdeDrive *d = selected(ch);
    bool level = ide_present(d) && d->intrq && !(ch->ctl & ATA_NIEN);
    if (level && !ch->irq_level) {
        vd_ide_bmdma_irq_edge(ch);
    }
    if (level != ch->irq_level) {
        ch->irq_level = level;
        vd_irq_set(ch->ctrl->bus, ch->irq, level);
    }
}

/* Assert a device's INTRQ (visible on the line only while it is selected and nIEN is 0). */
void vd_ide_raise_irq(IdeDrive *d)
{
    d->intrq = true;
    vd_ide_update_irq(d->ch);
}

/* Put the ATA-disk signature into the task file (after reset and diagnostics). */
void vd_ide_set_signature(IdeDrive *d)
{
    for (int i = 0; i < 2; i++) {
        d->nsect[i] = 1;
        d->lbal[i] = 1;
        d->lbam[i] = 0;
        d->lbah[i] = 0;
    }
    d->select = 0;
}

/* Power-on state of a newly attached drive. */
void vd_ide_power_on(IdeDrive *d)
{
    bool need_off = false;
    d->revert_on_reset = false;
    vd_ata_apply_power_on_defaults(d, &need_off);
    if (need_off) {
        /* Nothing has been written through this drive yet, so there is nothing to wait for. */
        vd_blk_set_write_cache(d->blk, false, NULL, NULL);
    }
    d->dirty_min_lba = UINT64_MAX;
    vd_ide_set_signature(d);
    d->error = 0x01;
    d->status = ATA_READY;
    d->intrq = false;
}

/* SRST went 1: both devices drop what they were doing and go busy. */
void vd_ide_reset_begin(IdeChannel *ch)
{
    for (int u = 0; u < 2; u++) {
        IdeDrive *d = &ch->drive[u];
        if (!ide_present(d)) {
            continue;
        }
        vd_ide_req_orphan(d);
        vd_ide_xfer_clear(d);
        d->status = ATA_BSY;
        d->intrq = false;
        d->reset_pending = false;
    }
}

/* The revert-to-defaults write-cache flush of a reset has finished. */
static void reset_wce_done(IdeDrive *d, IdeReq *r, int ret)
{
    if (ret == 0) {
        d->dirty_min_lba = UINT64_MAX;
    }
    d->status = ATA_READY;
}

/*
 * SRST went 0: diagnostics pass and signatures appear; each device stays
 * BSY until every request the reset abandoned has finished on the host (so
 * no old write can land after a new one), then finishes in vd_ide_reset_finish,
 * from the last orphan's callback if any is still running.
 */
void vd_ide_reset_end(IdeChannel *ch)
{
    ch->sel = 0;
    for (int u = 0; u < 2; u++) {
        IdeDrive *d = &ch->drive[u];
        vd_ide_set_signature(d);
        if (!ide_present(d)) {
            continue;
        }
        d->error = 0x01;
        d->status = ATA_BSY;
        d->sleeping = false;
        d->reset_pending = true;
        if (!d->orphans) {
            vd_ide_reset_finish(d);
        }
    }
}

/* The reset of d completes: nothing it abandoned still runs; the drive becomes ready. */
void vd_ide_reset_finish(IdeDrive *d)
{
    d->reset_pending = false;
    d->status = ATA_READY;
    if (d->revert_on_reset) {
        bool need_off = false;
        vd_ata_apply_power_on_defaults(d, &need_off);
        if (need_off) {
            /* Reverting turns the write cache off: stay busy until it is flushed. */
            if (vd_ata_set_wce(d, false, reset_wce_done)) {
                d->status = ATA_BSY;
            }
        }
    }
}

/* A task-file register as the selected (present) device d reports it. */
static uint8_t taskfile_read(IdeChannel *ch, IdeDrive *d, unsigned reg)
{
    int i = (ch->ctl & ATA_HOB) ? 1 : 0;
    switch (reg) {
    case 1: return d->error;
    case 2: return d->nsect[i];
    case 3: return d->lbal[i];
    case 4: return d->lbam[i];
    case 5: return d->lbah[i];
    case 6: return d->select;
    default: return d->status;
    }
}

/* Command-block read (0x1f0-0x1f7). */
static uint64_t cmd_read(void *opaque, uint64_t addr, unsigned size)
{
    IdeChannel *ch = opaque;
    IdeDrive *d = selected(ch);
    if (channel_empty(ch)) {
        return addr == 0 ? ((uint64_t)IDE_FLOATING_WORD << 16 | IDE_FLOATING_WORD) : IDE_FLOATING_BYTE;
    }
    if (!ide_present(d)) {
        /* The other device answers for the absent one. */
        if (addr == 0 || addr == 7) {
            return 0;
        }
        return taskfile_read(ch, &ch->drive[ch->sel ^ 1], addr);
    }
    if (addr == 0) {
        return vd_ide_data_read(d, size);
    }
    if (addr == 7) {
        uint8_t st = d->status;
        d->intrq = false;        /* reading Status acknowledges the interrupt */
        vd_ide_update_irq(ch);
        return st;
    }
    if (d->status & ATA_BSY) {
        /* While BSY the command block registers are not the device's to give. */
        return d->status;
    }
    return taskfile_read(ch, d, addr);
}

/* Push a written byte into a two-deep LBA48 register FIFO. */
static void fifo_push(uint8_t reg[2], uint8_t v)
{
    reg[1] = reg[0];
    reg[0] = v;
}

/* Command-block write (0x1f0-0x1f7). */
static void cmd_write(void *opaque, uint64_t addr, uint64_t value, unsigned size)
{
    IdeChannel *ch = opaque;
    IdeDrive *d = selected(ch);
    uint8_t v = value;
    if (channel_empty(ch)) {
        return;
    }
    if (ide_present(d) && (d->status & ATA_BSY)) {
        return;                  /* a busy device ignores the command block */
    }
    if (addr == 0) {
        if (ide_present(d)) {
            vd_ide_data_write(d, value, size);
        }
        return;
    }
    ch->ctl &= ~ATA_HOB;        /* any command-block write clears HOB */
    if (addr == 7) {
        if (!ide_present(d)) {
            /*
             * Only EXECUTE DEVICE DIAGNOSTIC reaches a device that is not
             * selected, and like any command not while that device is BSY
             * (in a reset, or with a request on the host).
             */
            IdeDrive *other = &ch->drive[ch->sel ^ 1];
            if (v == 0x90 && !(other->status & ATA_BSY)) {
                vd_ata_exec(other, v);
            }
            return;
        }
        d->intrq = false;       /* writing Command acknowledges the interrupt */
        vd_ide_update_irq(ch);
        vd_ata_exec(d, v);
        return;
    }
    for (int u = 0; u < 2; u++) {
        IdeDrive *t = &ch->drive[u];
        switch (addr) {
        case 1: fifo_push(t->feature, v); break;
        case 2: fifo_push(t->nsect, v); break;
        case 3: fifo_push(t->lbal, v); break;
        case 4: fifo_push(t->lbam, v); break;
        case 5: fifo_push(t->lbah, v); break;
        case 6: t->select = v; break;
        }
    }
    if (addr == 6) {
        ch->sel = (v & ATA_DEV_SLAVE) ? 1 : 0;
        vd_ide_update_irq(ch);
    }
}

/* Control-block read: Alternate Status, which does not acknowledge INTRQ. */
static uint64_t ctl_read(void *opaque, uint64_t addr, unsigned size)
{
    IdeChannel *ch = opaque;
    IdeDrive *d = selected(ch);
    if (channel_empty(ch)) {
        return IDE_FLOATING_BYTE;
    }
    return ide_present(d) ? d->status : 0;
}

/* Control-block write: Device Control (nIEN, SRST, HOB). */
static void ctl_write(void *opaque, uint64_t addr, uint64_t value, unsigned size)
{
    IdeChannel *ch = opaque;
    uint8_t old = ch->ctl;
    ch->ctl = value & (ATA_NIEN | ATA_SRST | ATA_HOB);
    if (!(old & ATA_SRST) && (ch->ctl & ATA_SRST)) {
        vd_ide_reset_begin(ch);
    } else if ((old & ATA_SRST) && !(ch->ctl & ATA_SRST)) {
        vd_ide_reset_end(ch);
    }
    vd_ide_update_irq(ch);
}

const VdIoOps vd_ide_cmd_ops = { .read = cmd_read, .write = cmd_write };
const VdIoOps vd_ide_ctl_ops = { .read = ctl_read, .write = ctl_write };
