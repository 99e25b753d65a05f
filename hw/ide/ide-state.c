/*
 * ide-state.c - migration of the PIIX3 IDE function (hw/vmstate.h): PCI
 * configuration, both channels (selection, device control, bus-master
 * DMA registers) and every drive's task file, IDENTIFY settings (the
 * keep/revert-on-reset choice, multiple count, transfer mode, CHS
 * translation, power state), the command in progress and its PIO buffer.
 * The write cache is the backend's and travels in the drive's section.
 */
#include "ide-internal.h"

#include <stddef.h>
#include <string.h>

#define IDE_STATE_VERSION 1
#define IDE_MAX_BUF       (1u << 20)       /* larger than any PIO data phase */
#define IDE_MAX_DSM       (ATA_DSM_MAX_BLOCKS * IDE_SECTOR / 8)

/* One scalar field of a drive or channel: where it lives, its width in the stream, its largest value. */
typedef struct StateField {
    const char *name;
    size_t off;
    uint8_t size;        /* bytes in memory and in the stream: 1, 4 or 8 */
    uint64_t max;
} StateField;

#define DF(f, sz, mx) { #f, offsetof(IdeDrive, f), sz, mx }
#define CF(f, sz, mx) { #f, offsetof(IdeChannel, f), sz, mx }
#define U8 UINT8_MAX
#define U32 UINT32_MAX

/* Every drive field that migrates (buffers and DSM ranges follow them). */
static const StateField drive_fields[] = {
    DF(feature[0], 1, U8), DF(feature[1], 1, U8), DF(nsect[0], 1, U8), DF(nsect[1], 1, U8),
    DF(lbal[0], 1, U8), DF(lbal[1], 1, U8), DF(lbam[0], 1, U8), DF(lbam[1], 1, U8),
    DF(lbah[0], 1, U8), DF(lbah[1], 1, U8), DF(select, 1, U8), DF(status, 1, U8), DF(error, 1, U8),
    DF(intrq, 1, 1), DF(lookahead, 1, 1), DF(revert_on_reset, 1, 1), DF(multiple, 1, U8),
    DF(xfer_mode, 1, U8), DF(heads, 1, U8), DF(spt, 1, U8), DF(standby, 1, 1), DF(sleeping, 1, 1),
    DF(cmd, 1, U8), DF(addr, 4, IDE_ADDR_LBA48), DF(xfer, 4, IDE_XFER_DMA_OUT), DF(verify, 1, 1),
    DF(dma_running, 1, 1), DF(req_flags, 4, VD_REQ_FUA | VD_REQ_MAY_UNMAP), DF(lba, 8, UINT64_MAX),
    DF(buf_lba, 8, UINT64_MAX), DF(remaining, 4, U32), DF(drq_sectors, 4, U32), DF(block_sectors, 4, U32),
    DF(reset_pending, 1, 1), DF(dirty_min_lba, 8, UINT64_MAX), DF(dsm_next, 4, IDE_MAX_DSM),
};

/* Every channel field that migrates. */
static const StateField channel_fields[] = {
    CF(sel, 4, 1), CF(ctl, 1, U8), CF(bm.cmd, 1, U8), CF(bm.status, 1, U8), CF(bm.prd, 4, U32),
    CF(bm.stopped, 1, 1), CF(bm.long_table, 1, 1),
};

/* The PCI configuration registers a guest can write, replayed on the destination: offset, width. */
static const struct { uint8_t off, size; } pci_writable[] = {
    { VD_PCI_COMMAND, 2 }, { VD_PCI_BAR0, 4 }, { VD_PCI_BAR0 + 4, 4 }, { VD_PCI_BAR0 + 8, 4 },
    { VD_PCI_BAR0 + 12, 4 }, { VD_PCI_BAR0 + 16, 4 }, { VD_PCI_BAR0 + 20, 4 }, { 0x3c, 1 }, { 0x40, 4 },
    { 0x44, 1 },
};

/* Load a field's value from a struct. */
static uint64_t field_get(const void *base, const StateField *f)
{
    const uint8_t *p = (const uint8_t *)base + f->off;
    uint8_t v8;
    uint32_t v32;
    uint64_t v64;
    switch (f->size) {
    case 1: memcpy(&v8, p, 1); return v8;
    case 4: memcpy(&v32, p, 4); return v32;
    default: memcpy(&v64, p, 8); return v64;
    }
}

/* Store a field's value into a struct. */
static void field_set(void *base, const StateField *f, uint64_t v)
{
    uint8_t *p = (uint8_t *)base + f->off;
    uint8_t v8 = v;
    uint32_t v32 = v;
    switch (f->size) {
    case 1: memcpy(p, &v8, 1); break;
    case 4: memcpy(p, &v32, 4); break;
    default: memcpy(p, &v, 8); break;
    }
}

/* Write a field table's values. */
static void put_fields(VdMigWriter *w, const void *base, const StateField *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v = field_get(base, &t[i]);
        if (t[i].size == 1) {
            vd_mig_put_u8(w, v);
        } else if (t[i].size == 4) {
            vd_mig_put_u32(w, v);
        } else {
            vd_mig_put_u64(w, v);
        }
    }
}

/* Read a field table's values into base, each checked against its maximum. */
static bool get_fields(VdMigSection *s, const char *what, void *base, const StateField *t, size_t n, GError **errp)
{
    for (size_t i = 0; i < n; i++) {
        g_autofree char *name = g_strdup_printf("%s %s", what, t[i].name);
        uint64_t v = 0;
        uint8_t v8;
        uint32_t v32;
        bool ok = t[i].size == 1 ? vd_mig_get_u8(s, name, &v8, errp) && ((v = v8), true)
                : t[i].size == 4 ? vd_mig_get_u32(s, name, &v32, errp) && ((v = v32), true)
                : vd_mig_get_u64(s, name, &v, errp);
        if (!ok) {
            return false;
        }
        if (v > t[i].max) {
            return vd_mig_field_error(s, name, errp, "%" G_GUINT64_FORMAT " is above %" G_GUINT64_FORMAT, v, t[i].max);
        }
        field_set(base, &t[i], v);
    }
    return true;
}

/* Copy a field table's values from one struct to another. */
static void copy_fields(void *dst, const void *src, const StateField *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        field_set(dst, &t[i], field_get(src, &t[i]));
    }
}

/* What a drive needs besides its scalar fields. */
typedef struct DriveState {
    IdeDrive regs;               /* only the drive_fields are meaningful */
    bool present;
    uint8_t *buf;
    uint64_t buf_len, buf_pos, block_end;
    GArray *dsm;                 /* IdeDsmRange, or NULL */
} DriveState;

typedef struct IdeState {
    uint8_t config[256];
    IdeChannel ch[VD_IDE_CHANNELS];       /* only the channel_fields are meaningful */
    DriveState drive[VD_IDE_CHANNELS][2];
} IdeState;

/* Save one drive: presence, fields, PIO buffer, pending TRIM ranges. */
static void save_drive(VdMigWriter *w, const IdeDrive *d)
{
    vd_mig_put_u8(w, ide_present(d));
    put_fields(w, d, drive_fields, G_N_ELEMENTS(drive_fields));
    vd_mig_put_u64(w, d->buf_len);
    vd_mig_put_u64(w, d->buf_pos);
    vd_mig_put_u64(w, d->block_end);
    vd_mig_put_bytes(w, d->buf, d->buf_len);
    guint n = d->dsm_ranges ? d->dsm_ranges->len : 0;
    vd_mig_put_u32(w, n);
    for (guint i = 0; i < n; i++) {
        const IdeDsmRange *r = &g_array_index(d->dsm_ranges, IdeDsmRange, i);
        vd_mig_put_u64(w, r->lba);
        vd_mig_put_u32(w, r->count);
    }
}

/* True if the drive's request in the backend is a bus-master DMA transfer (restarted from its PRDs). */
static bool dma_held(const IdeDrive *d)
{
    return d->inflight && d->dma_running && (d->xfer == IDE_XFER_DMA_IN || d->xfer == IDE_XFER_DMA_OUT);
}

/*
 * Save a quiescent controller.  A DMA transfer parked in the backend
 * (werror=stop) travels as "waiting for the engine": the destination
 * walks its PRD table in the migrated RAM and issues it again, as QEMU
 * restarts IDE DMA.  Any other parked request (PIO, TRIM) refuses.
 */
static bool ide_state_save(void *dev, VdMigWriter *w, GError **errp)
{
    VdIdeController *c = dev;
    for (unsigned i = 0; i < VD_IDE_CHANNELS; i++) {
        for (unsigned u = 0; u < 2; u++) {
            const IdeDrive *d = &c->ch[i].drive[u];
            if ((d->inflight && !dma_held(d)) || d->orphans) {
                g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BUSY,
                            "IDE channel %u unit %u has a PIO or TRIM request held by werror=stop (only DMA ones "
                            "travel): resume with cont first", i, u);
                return false;
            }
        }
    }
    vd_mig_put_bytes(w, c->pci.config, sizeof(c->pci.config));
    for (unsigned i = 0; i < VD_IDE_CHANNELS; i++) {
        put_fields(w, &c->ch[i], channel_fields, G_N_ELEMENTS(channel_fields));
        for (unsigned u = 0; u < 2; u++) {
            IdeDrive d = c->ch[i].drive[u];   /* a view: only its fields are written */
            d.dma_running = d.dma_running && !dma_held(&d);
            save_drive(w, &d);
        }
    }
    return true;
}

/* Free a parsed state. */
static void ide_state_free(void *state)
{
    IdeState *st = state;
    if (!st) {
        return;
    }
    for (unsigned i = 0; i < VD_IDE_CHANNELS; i++) {
        for (unsigned u = 0; u < 2; u++) {
            g_free(st->drive[i][u].buf);
            if (st->drive[i][u].dsm) {
                g_array_free(st->drive[i][u].dsm, TRUE);
            }
        }
    }
    g_free(st);
}

/* Read one drive; it must be present exactly where it is present here. */
static bool parse_drive(VdMigSection *s, const IdeDrive *here, DriveState *d, const char *what, GError **errp)
{
    if (!vd_mig_get_bool(s, what, &d->present, errp) ||
        !get_fields(s, what, &d->regs, drive_fields, G_N_ELEMENTS(drive_fields), errp) ||
        !vd_mig_get_u64(s, what, &d->buf_len, errp) || !vd_mig_get_u64(s, what, &d->buf_pos, errp) ||
        !vd_mig_get_u64(s, what, &d->block_end, errp)) {
        return false;
    }
    if (d->present != ide_present(here)) {
        return vd_mig_field_error(s, what, errp, "a disk %s on the source, %s here", d->present ? "sits" : "is absent",
                                  ide_present(here) ? "one sits" : "none");
    }
    if (d->buf_len > IDE_MAX_BUF || d->buf_pos > d->buf_len || d->block_end > d->buf_len) {
        return vd_mig_field_error(s, what, errp, "PIO buffer position %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT
                                  " of %" G_GUINT64_FORMAT " bytes is impossible", d->buf_pos, d->block_end,
                                  d->buf_len);
    }
    d->buf = d->buf_len ? g_malloc(d->buf_len) : NULL;
    uint32_t n;
    if (!vd_mig_get_bytes(s, what, d->buf, d->buf_len, errp) || !vd_mig_get_u32(s, what, &n, errp)) {
        return false;
    }
    if (n > IDE_MAX_DSM) {
        return vd_mig_field_error(s, what, errp, "%u TRIM ranges (at most %u)", n, IDE_MAX_DSM);
    }
    d->dsm = n ? g_array_sized_new(FALSE, TRUE, sizeof(IdeDsmRange), n) : NULL;
    for (uint32_t i = 0; i < n; i++) {
        IdeDsmRange r;
        if (!vd_mig_get_u64(s, what, &r.lba, errp) || !vd_mig_get_u32(s, what, &r.count, errp)) {
            return false;
        }
        g_array_append_val(d->dsm, r);
    }
    return true;
}

/* Read and check the whole section; nothing changes. */
static void *ide_state_parse(void *dev, VdMigSection *s, GError **errp)
{
    VdIdeController *c = dev;
    IdeState *st = g_new0(IdeState, 1);
    if (!vd_mig_get_bytes(s, "PCI configuration", st->config, sizeof(st->config), errp)) {
        goto fail;
    }
    for (unsigned i = 0; i < VD_IDE_CHANNELS; i++) {
        g_autofree char *ch = g_strdup_printf("channel %u", i);
        if (!get_fields(s, ch, &st->ch[i], channel_fields, G_N_ELEMENTS(channel_fields), errp)) {
            goto fail;
        }
        for (unsigned u = 0; u < 2; u++) {
            g_autofree char *what = g_strdup_printf("channel %u unit %u", i, u);
            if (!parse_drive(s, &c->ch[i].drive[u], &st->drive[i][u], what, errp)) {
                goto fail;
            }
        }
    }
    if (!vd_mig_section_done(s, errp)) {
        goto fail;
    }
    return st;
fail:
    ide_state_free(st);
    return NULL;
}

/* Give a drive the parsed state (buffers change hands). */
static void apply_drive(IdeDrive *d, DriveState *ds)
{
    copy_fields(d, &ds->regs, drive_fields, G_N_ELEMENTS(drive_fields));
    g_free(d->buf);
    d->buf = g_steal_pointer(&ds->buf);
    d->buf_len = ds->buf_len;
    d->buf_pos = ds->buf_pos;
    d->block_end = ds->block_end;
    if (d->dsm_ranges) {
        g_array_free(d->dsm_ranges, TRUE);
    }
    d->dsm_ranges = g_steal_pointer(&ds->dsm);
}

/* Become the source's controller: PCI registers replayed (BARs move), channels, drives, IRQ lines. */
static void ide_state_apply(void *dev, void *state)
{
    VdIdeController *c = dev;
    IdeState *st = state;
    for (size_t i = 0; i < G_N_ELEMENTS(pci_writable); i++) {
        unsigned off = pci_writable[i].off, size = pci_writable[i].size;
        uint32_t v = 0;
        memcpy(&v, st->config + off, size);
        vd_pci_config_write(&c->pci, off, GUINT32_FROM_LE(v), size);
    }
    for (unsigned i = 0; i < VD_IDE_CHANNELS; i++) {
        IdeChannel *ch = &c->ch[i];
        copy_fields(ch, &st->ch[i], channel_fields, G_N_ELEMENTS(channel_fields));
        for (unsigned u = 0; u < 2; u++) {
            apply_drive(&ch->drive[u], &st->drive[i][u]);
        }
        vd_ide_update_irq(ch);
        vd_ide_dma_try_start(ch);   /* a DMA transfer held on the source is issued again */
    }
    ide_state_free(st);
}

const VdDeviceStateOps vd_ide_state_ops = {
    .kind = "ide",
    .version = IDE_STATE_VERSION,
    .save = ide_state_save,
    .parse = ide_state_parse,
    .apply = ide_state_apply,
    .free_state = ide_state_free,
};
