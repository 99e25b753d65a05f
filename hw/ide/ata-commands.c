/*
 * ata-commands.c - the ATA command set of the disk, dispatched from a
 * static table indexed by opcode.  An empty slot completes the command with
 * ERR + ABRT and an interrupt, as ATA requires for unsupported opcodes.
 *
 * Write-cache semantics (ATA8-ACS SET FEATURES, FLUSH CACHE):
 *  - 02h turns the cache on at once; 82h turns it off and completes only
 *    after the backend has drained and flushed (BSY meanwhile).  On a
 *    write-through-only disk (the backend says so; IDENTIFY word 82 bit 5
 *    is clear) the volatile write cache feature set is not supported, so
 *    both subcommands abort like any unsupported one.
 *  - FLUSH CACHE / FLUSH CACHE EXT hold BSY until vd_blk_flush completes.
 *    On failure: ERR + ABRT, and the LBA registers hold the lowest sector
 *    written into the cache since the last good flush (the first sector
 *    whose durability could not be ensured; 0 if none is known).
 *  - WRITE DMA FUA EXT / WRITE MULTIPLE FUA EXT are VD_REQ_FUA writes.
 *  - DATA SET MANAGEMENT (TRIM) discards through the backend (ata-dsm.c).
 */
#include "ide-internal.h"

#define C_EXT    0x01   /* 48-bit command: 16-bit count, 48-bit LBA */
#define C_MULTI  0x02   /* READ/WRITE MULTIPLE: DRQ blocks of the multiple count */
#define C_FUA    0x04   /* forced unit access write */
#define C_MEDIA  0x08   /* touches the media: leaves standby */

typedef struct AtaCmd AtaCmd;
typedef void AtaExecFunc(IdeDrive *d, const AtaCmd *c);

struct AtaCmd {
    const char *name;
    AtaExecFunc *exec;
    uint8_t flags;
};

/* Decode the command's starting sector and count; false (after failing with IDNF) if out of range. */
static bool decode_range(IdeDrive *d, const AtaCmd *c, uint64_t *lba, uint32_t *count)
{
    uint64_t start;
    uint32_t n;
    if (c->flags & C_EXT) {
        d->addr = IDE_ADDR_LBA48;
        start = (uint64_t)d->lbal[0] | (uint64_t)d->lbam[0] << 8 | (uint64_t)d->lbah[0] << 16 |
                (uint64_t)d->lbal[1] << 24 | (uint64_t)d->lbam[1] << 32 | (uint64_t)d->lbah[1] << 40;
        n = d->nsect[0] | (uint32_t)d->nsect[1] << 8;
        if (n == 0) {
            n = 65536;
        }
    } else {
        n = d->nsect[0] ? d->nsect[0] : 256;
        if (d->select & ATA_DEV_LBA) {
            d->addr = IDE_ADDR_LBA28;
            start = (uint64_t)d->lbal[0] | (uint64_t)d->lbam[0] << 8 | (uint64_t)d->lbah[0] << 16 |
                    (uint64_t)(d->select & 0x0f) << 24;
        } else {
            unsigned cyl = d->lbam[0] | d->lbah[0] << 8;
            unsigned head = d->select & 0x0f;
            unsigned sector = d->lbal[0];
            d->addr = IDE_ADDR_CHS;
            if (sector == 0 || sector > d->spt || head >= d->heads) {
                vd_ide_cmd_error(d, ATA_IDNF);
                return false;
            }
            start = ((uint64_t)cyl * d->heads + head) * d->spt + sector - 1;
        }
    }
    /* 28-bit commands reach the first 0FFFFFFFh sectors only (IDENTIFY words 60-61). */
    uint64_t limit = (c->flags & C_EXT) ? d->nsectors : MIN(d->nsectors, 0x0fffffffull);
    if (start >= limit || n > limit - start) {
        vd_ide_cmd_error(d, ATA_IDNF);
        return false;
    }
    *lba = start;
    *count = n;
    return true;
}

/* Sectors per DRQ block for this command; 0 (after failing with ABRT) if multiple mode is off. */
static uint32_t drq_block(IdeDrive *d, const AtaCmd *c)
{
    if (!(c->flags & C_MULTI)) {
        return 1;
    }
    if (d->multiple == 0) {
        vd_ide_cmd_error(d, ATA_ABRT);
    }
    return d->multiple;
}

/* Always-aborted commands (IDENTIFY PACKET DEVICE on a disk, NOP). */
static void cmd_abort(IdeDrive *d, const AtaCmd *c)
{
    vd_ide_cmd_error(d, ATA_ABRT);
}

/* READ SECTORS (EXT), READ MULTIPLE (EXT): PIO data-in. */
static void cmd_read_pio(IdeDrive *d, const AtaCmd *c)
{
    uint64_t lba;
    uint32_t n, drq = drq_block(d, c);
    if (!drq || !decode_range(d, c, &lba, &n)) {
        return;
    }
    d->xfer = IDE_XFER_PIO_IN;
    d->drq_sectors = drq;
    d->lba = lba;
    d->remaining = n;
    vd_ide_pio_disk_read(d);
}

/* WRITE SECTORS (EXT), WRITE MULTIPLE (EXT), WRITE MULTIPLE FUA EXT: PIO data-out. */
static void cmd_write_pio(IdeDrive *d, const AtaCmd *c)
{
    uint64_t lba;
    uint32_t n, drq = drq_block(d, c);
    if (!drq || !decode_range(d, c, &lba, &n)) {
        return;
    }
    d->drq_sectors = drq;
    d->lba = lba;
    d->remaining = n;
    d->req_flags = (c->flags & C_FUA) ? VD_REQ_FUA : 0;
    vd_ide_pio_disk_write_start(d);
}

/* READ DMA (EXT), WRITE DMA (EXT), WRITE DMA FUA EXT: wait for the bus-master engine. */
static void cmd_dma(IdeDrive *d, const AtaCmd *c, IdeXfer dir)
{
    uint64_t lba;
    uint32_t n;
    if (!decode_range(d, c, &lba, &n)) {
        return;
    }
    d->xfer = dir;
    d->lba = lba;
    d->remaining = n;
    d->req_flags = (c->flags & C_FUA) ? VD_REQ_FUA : 0;
    d->status = ATA_READY | ATA_DRQ;
    vd_ide_dma_try_start(d->ch);
}

/* READ DMA (EXT). */
static void cmd_read_dma(IdeDrive *d, const AtaCmd *c)
{
    cmd_dma(d, c, IDE_XFER_DMA_IN);
}

/* WRITE DMA (EXT), WRITE DMA FUA EXT. */
static void cmd_write_dma(IdeDrive *d, const AtaCmd *c)
{
    cmd_dma(d, c, IDE_XFER_DMA_OUT);
}

/* DATA SET MANAGEMENT: TRIM only, 1..ATA_DSM_MAX_BLOCKS blocks of range entries by DMA. */
static void cmd_dsm(IdeDrive *d, const AtaCmd *c)
{
    uint32_t blocks = d->nsect[0] | (uint32_t)d->nsect[1] << 8;
    if (!vd_blk_can_discard(d->blk) || !(d->feature[0] & 0x01) || blocks == 0 || blocks > ATA_DSM_MAX_BLOCKS) {
        vd_ide_cmd_error(d, ATA_ABRT);
        return;
    }
    d->addr = IDE_ADDR_LBA48;
    d->xfer = IDE_XFER_DMA_OUT;
    d->lba = 0;
    d->remaining = blocks;
    d->status = ATA_READY | ATA_DRQ;
    vd_ide_dma_try_start(d->ch);
}

/* READ VERIFY SECTORS (EXT): read the media, transfer nothing. */
static void cmd_verify(IdeDrive *d, const AtaCmd *c)
{
    uint64_t lba;
    uint32_t n;
    if (!decode_range(d, c, &lba, &n)) {
        return;
    }
    d->lba = lba;
    d->remaining = n;
    vd_ide_verify_start(d);
}

/* SEEK: only checks that the address exists. */
static void cmd_seek(IdeDrive *d, const AtaCmd *c)
{
    uint64_t lba;
    uint32_t n;
    uint8_t saved = d->nsect[0];
    d->nsect[0] = 1;            /* the count register plays no part in SEEK */
    bool ok = decode_range(d, c, &lba, &n);
    d->nsect[0] = saved;
    if (ok) {
        vd_ide_cmd_ok(d);
    }
}

/* EXECUTE DEVICE DIAGNOSTIC: both devices reset their task files; device 0 reports. */
static void cmd_diagnostic(IdeDrive *d, const AtaCmd *c)
{
    IdeChannel *ch = d->ch;
    IdeDrive *reporter = ide_present(&ch->drive[0]) ? &ch->drive[0] : &ch->drive[1];
    for (int u = 0; u < 2; u++) {
        IdeDrive *t = &ch->drive[u];
        vd_ide_set_signature(t);
        if (ide_present(t) && t != reporter) {
            vd_ide_req_orphan(t);
            vd_ide_xfer_clear(t);
            t->sleeping = false;
            t->error = 0x01;
            t->status = ATA_READY;
        }
    }
    ch->sel = 0;
    reporter->sleeping = false;
    vd_ide_cmd_ok(reporter);
    reporter->error = 0x01;     /* diagnostic code: device 0 passed, device 1 passed or absent */
}

/* INITIALIZE DEVICE PARAMETERS: the CHS translation used when LBA is 0. */
static void cmd_init_params(IdeDrive *d, const AtaCmd *c)
{
    if (d->nsect[0] == 0) {
        vd_ide_cmd_error(d, ATA_ABRT);
        return;
    }
    d->spt = d->nsect[0];
    d->heads = (d->select & 0x0f) + 1;
    vd_ide_cmd_ok(d);
}

/* SET MULTIPLE MODE: 0 disables; otherwise a power of two up to VD_IDE_MAX_MULTIPLE. */
static void cmd_set_multiple(IdeDrive *d, const AtaCmd *c)
{
    unsigned n = d->nsect[0];
    if (n > VD_IDE_MAX_MULTIPLE || (n & (n - 1))) {
        vd_ide_cmd_error(d, ATA_ABRT);
        return;
    }
    d->multiple = n;
    vd_ide_cmd_ok(d);
}

/* STANDBY IMMEDIATE / STANDBY. */
static void cmd_standby(IdeDrive *d, const AtaCmd *c)
{
    d->standby = true;
    vd_ide_cmd_ok(d);
}

/* IDLE IMMEDIATE / IDLE. */
static void cmd_idle(IdeDrive *d, const AtaCmd *c)
{
    d->standby = false;
    vd_ide_cmd_ok(d);
}

/* CHECK POWER MODE: count = 00h in standby, FFh active or idle. */
static void cmd_check_power(IdeDrive *d, const AtaCmd *c)
{
    d->nsect[0] = d->standby ? 0x00 : 0xff;
    vd_ide_cmd_ok(d);
}

/* SLEEP: every later command is aborted until a reset. */
static void cmd_sleep(IdeDrive *d, const AtaCmd *c)
{
    d->standby = true;
    d->sleeping = true;
    vd_ide_cmd_ok(d);
}

/* The flush of FLUSH CACHE (EXT) has completed. */
static void flush_done(IdeDrive *d, IdeReq *r, int ret)
{
    if (ret < 0) {
        uint64_t lba = d->dirty_min_lba == UINT64_MAX ? 0 : d->dirty_min_lba;
        vd_ide_cmd_io_error(d, ATA_ABRT, lba);
        return;
    }
    d->dirty_min_lba = UINT64_MAX;
    vd_ide_cmd_ok(d);
}

/* FLUSH CACHE / FLUSH CACHE EXT: BSY until the backend's flush completes. */
static void cmd_flush(IdeDrive *d, const AtaCmd *c)
{
    d->addr = (c->flags & C_EXT) ? IDE_ADDR_LBA48 : IDE_ADDR_LBA28;
    IdeReq *r = vd_ide_req_new(d, flush_done, 0);
    d->status = ATA_BSY | ATA_DRDY;
    vd_blk_flush(d->blk, vd_ide_req_cb, r);
}

/* IDENTIFY DEVICE: one 512-byte PIO data-in block. */
static void cmd_identify(IdeDrive *d, const AtaCmd *c)
{
    uint8_t *buf = g_malloc(IDE_SECTOR);
    vd_ata_identify(d, buf);
    vd_ide_pio_in_start(d, buf, IDE_SECTOR);
}

/*
 * Ask the backend (the one owner of the write cache) for a new state.
 * Turning it off submits the backend's drain + flush and returns true: done
 * runs when it has finished.  Otherwise returns false at once.
 */
bool vd_ata_set_wce(IdeDrive *d, bool on, IdeReqDone *done)
{
    if (on == vd_blk_write_cache(d->blk)) {
        return false;
    }
    if (on) {
        vd_blk_set_write_cache(d->blk, true, NULL, NULL);
        return false;
    }
    IdeReq *r = vd_ide_req_new(d, done, 0);
    vd_blk_set_write_cache(d->blk, false, vd_ide_req_cb, r);
    return true;
}

/* The drain + flush of SET FEATURES 82h has completed. */
static void wce_off_done(IdeDrive *d, IdeReq *r, int ret)
{
    if (ret < 0) {
        vd_ide_cmd_error(d, ATA_ABRT);
        return;
    }
    d->dirty_min_lba = UINT64_MAX;
    vd_ide_cmd_ok(d);
}

/* Transfer modes SET FEATURES 03h accepts (count register), as in IDENTIFY words 63/64/88. */
static bool valid_xfer_mode(uint8_t mode)
{
    return mode <= 0x01 || (mode >= 0x08 && mode <= 0x0c) || (mode >= 0x20 && mode <= 0x22) ||
           (mode >= 0x40 && mode <= 0x45);
}

/* SET FEATURES: the subcommand is in the features register. */
static void cmd_set_features(IdeDrive *d, const AtaCmd *c)
{
    bool wc_feature = !vd_blk_write_through_only(d->blk);   /* IDENTIFY word 82 bit 5 */
    switch (d->feature[0]) {
    case 0x02:
        if (!wc_feature) {
            vd_ide_cmd_error(d, ATA_ABRT);
            return;
        }
        vd_ata_set_wce(d, true, NULL);
        break;
    case 0x82:
        if (!wc_feature) {
            vd_ide_cmd_error(d, ATA_ABRT);
            return;
        }
        if (vd_ata_set_wce(d, false, wce_off_done)) {
            d->status = ATA_BSY | ATA_DRDY;
            return;
        }
        d->dirty_min_lba = UINT64_MAX;
        break;
    case 0x03:
        if (!valid_xfer_mode(d->nsect[0])) {
            vd_ide_cmd_error(d, ATA_ABRT);
            return;
        }
        d->xfer_mode = d->nsect[0];
        break;
    case 0xaa:
        d->lookahead = true;
        break;
    case 0x55:
        d->lookahead = false;
        break;
    case 0x66:
        d->revert_on_reset = false;
        break;
    case 0xcc:
        d->revert_on_reset = true;
        break;
    default:
        vd_ide_cmd_error(d, ATA_ABRT);
        return;
    }
    vd_ide_cmd_ok(d);
}

/* READ NATIVE MAX ADDRESS (EXT): the last sector, capped at 0FFFFFFFh for the 28-bit form. */
static void cmd_native_max(IdeDrive *d, const AtaCmd *c)
{
    d->addr = (c->flags & C_EXT) ? IDE_ADDR_LBA48 : IDE_ADDR_LBA28;
    vd_ide_set_lba(d, d->nsectors - 1);
    vd_ide_cmd_ok(d);
}

static const AtaCmd ata_cmds[256] = {
    [0x00] = { "NOP", cmd_abort, 0 },
    [ATA_CMD_DSM] = { "DATA SET MANAGEMENT", cmd_dsm, C_EXT | C_MEDIA },
    [0x20] = { "READ SECTORS", cmd_read_pio, C_MEDIA },
    [0x21] = { "READ SECTORS (no retry)", cmd_read_pio, C_MEDIA },
    [0x24] = { "READ SECTORS EXT", cmd_read_pio, C_EXT | C_MEDIA },
    [0x25] = { "READ DMA EXT", cmd_read_dma, C_EXT | C_MEDIA },
    [0x27] = { "READ NATIVE MAX ADDRESS EXT", cmd_native_max, C_EXT },
    [0x29] = { "READ MULTIPLE EXT", cmd_read_pio, C_EXT | C_MULTI | C_MEDIA },
    [0x30] = { "WRITE SECTORS", cmd_write_pio, C_MEDIA },
    [0x31] = { "WRITE SECTORS (no retry)", cmd_write_pio, C_MEDIA },
    [0x34] = { "WRITE SECTORS EXT", cmd_write_pio, C_EXT | C_MEDIA },
    [0x35] = { "WRITE DMA EXT", cmd_write_dma, C_EXT | C_MEDIA },
    [0x39] = { "WRITE MULTIPLE EXT", cmd_write_pio, C_EXT | C_MULTI | C_MEDIA },
    [0x3d] = { "WRITE DMA FUA EXT", cmd_write_dma, C_EXT | C_FUA | C_MEDIA },
    [0x40] = { "READ VERIFY SECTORS", cmd_verify, C_MEDIA },
    [0x41] = { "READ VERIFY SECTORS (no retry)", cmd_verify, C_MEDIA },
    [0x42] = { "READ VERIFY SECTORS EXT", cmd_verify, C_EXT | C_MEDIA },
    [0x70] = { "SEEK", cmd_seek, C_MEDIA },
    [0x90] = { "EXECUTE DEVICE DIAGNOSTIC", cmd_diagnostic, 0 },
    [0x91] = { "INITIALIZE DEVICE PARAMETERS", cmd_init_params, 0 },
    [0xa1] = { "IDENTIFY PACKET DEVICE", cmd_abort, 0 },
    [0xc4] = { "READ MULTIPLE", cmd_read_pio, C_MULTI | C_MEDIA },
    [0xc5] = { "WRITE MULTIPLE", cmd_write_pio, C_MULTI | C_MEDIA },
    [0xc6] = { "SET MULTIPLE MODE", cmd_set_multiple, 0 },
    [0xc8] = { "READ DMA", cmd_read_dma, C_MEDIA },
    [0xca] = { "WRITE DMA", cmd_write_dma, C_MEDIA },
    [0xce] = { "WRITE MULTIPLE FUA EXT", cmd_write_pio, C_EXT | C_MULTI | C_FUA | C_MEDIA },
    [0xe0] = { "STANDBY IMMEDIATE", cmd_standby, 0 },
    [0xe1] = { "IDLE IMMEDIATE", cmd_idle, 0 },
    [0xe2] = { "STANDBY", cmd_standby, 0 },
    [0xe3] = { "IDLE", cmd_idle, 0 },
    [0xe5] = { "CHECK POWER MODE", cmd_check_power, 0 },
    [0xe6] = { "SLEEP", cmd_sleep, 0 },
    [0xe7] = { "FLUSH CACHE", cmd_flush, 0 },
    [0xea] = { "FLUSH CACHE EXT", cmd_flush, C_EXT },
    [0xec] = { "IDENTIFY DEVICE", cmd_identify, 0 },
    [0xef] = { "SET FEATURES", cmd_set_features, 0 },
    [0xf8] = { "READ NATIVE MAX ADDRESS", cmd_native_max, 0 },
};

/* Start a command on d (which is present and not busy). */
void vd_ata_exec(IdeDrive *d, uint8_t opcode)
{
    const AtaCmd *c = &ata_cmds[opcode];
    vd_ide_req_orphan(d);          /* nothing is in flight unless BSY; defensive */
    vd_ide_xfer_clear(d);
    d->cmd = opcode;
    d->error = 0;
    if (!c->exec || (d->sleeping && opcode != 0x90)) {
        vd_ide_cmd_error(d, ATA_ABRT);
        return;
    }
    if (c->flags & C_MEDIA) {
        d->standby = false;
    }
    c->exec(d, c);
}

/*
 * Reset the settings SET FEATURES and friends change to their power-on
 * values.  Turning the write cache on is done here; *need_wce_off tells the
 * caller that the backend's cache is on and must be turned off (with the
 * flush the caller waits for, or not).
 */
void vd_ata_apply_power_on_defaults(IdeDrive *d, bool *need_wce_off)
{
    bool wce = vd_blk_default_write_cache(d->blk);
    d->multiple = 0;
    d->lookahead = true;
    d->xfer_mode = 0;
    d->heads = 16;
    d->spt = 63;
    d->standby = false;
    d->sleeping = false;
    *need_wce_off = !wce && vd_blk_write_cache(d->blk);
    if (wce) {
        vd_ata_set_wce(d, true, NULL);
    }
}
