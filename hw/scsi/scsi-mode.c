/*
 * scsi-mode.c - MODE SENSE(6/10) and MODE SELECT(6/10) (SPC-4 6.11-6.14,
 * 7.5) with the pages a Linux guest reads: read-write error recovery (0x01),
 * caching (0x08) and control (0x0A).
 *
 * Only WCE in the caching page is changeable; it lives in the block backend
 * (vd_blk_write_cache), so MODE SENSE always shows the backend's real state.
 * On a write-through-only disk (the backend says so) WCE is 0 and not
 * changeable, and a MODE SELECT that sets it fails with 26/00 like any
 * other fixed bit (SPC-4 6.13, 7.5.3).
 * A change made by anyone else (the host, migration, the control socket)
 * raises MODE PARAMETERS CHANGED on every I_T nexus; the disk's own change
 * (MODE SELECT) on every other nexus.  RTD=1 (SPC-5) reverts every page to
 * its defaults.  Saving pages is not supported: PS is always 0, PC=3 gives
 * 39/00, SP=1 24/00.
 */
#include "scsi-internal.h"

#include <string.h>

#define VD_MODE_PAGE_MAX 20             /* largest page, header included */
#define VD_MODE_BUF_MAX  (8 + 16 + 3 * VD_MODE_PAGE_MAX)

/* Page control values of MODE SENSE byte 2. */
enum { PC_CURRENT = 0, PC_CHANGEABLE = 1, PC_DEFAULT = 2, PC_SAVED = 3 };

/* A mode page: its default bytes and its changeable mask, page header included. */
typedef struct VdModePage {
    uint8_t code;
    uint8_t len;                        /* PAGE LENGTH: bytes after the 2-byte header */
    uint8_t defaults[VD_MODE_PAGE_MAX];
    uint8_t changeable[VD_MODE_PAGE_MAX];
} VdModePage;

/* The pages, ascending by code as page 0x3F returns them. */
static const VdModePage vd_mode_pages[] = {
    /* Read-write error recovery: nothing to recover, every field 0. */
    { 0x01, 0x0a, { 0x01, 0x0a }, { 0x01, 0x0a } },
    /* Caching: WCE (byte 2 bit 2) current, default and changeable are set per backend below; RCD=0. */
    { 0x08, 0x12, { 0x08, 0x12 }, { 0x08, 0x12 } },
    /* Control: GLTSD=1 (no log saving), QUEUE ALGORITHM MODIFIER 1 (unrestricted reordering). */
    { 0x0a, 0x0a, { 0x0a, 0x0a, 0x02, 0x10 }, { 0x0a, 0x0a } },
};

/*
 * Write one page as PC asks (current, changeable or default); returns its
 * size.  WCE is changeable only if the backend has a cache to turn on: on a
 * write-through-only disk (vd_blk_write_through_only) it is 0 and fixed.
 */
static size_t vd_mode_page_fill(VdScsiDisk *disk, const VdModePage *pg, unsigned pc, uint8_t *p)
{
    size_t n = 2 + pg->len;
    memcpy(p, pc == PC_CHANGEABLE ? pg->changeable : pg->defaults, n);
    if (pg->code != 0x08) {
        return n;
    }
    bool wce;
    if (pc == PC_CHANGEABLE) {
        wce = !vd_blk_write_through_only(disk->blk);
    } else {
        wce = pc == PC_CURRENT ? vd_blk_write_cache(disk->blk) : vd_blk_default_write_cache(disk->blk);
    }
    p[2] = (p[2] & ~0x04) | (wce ? 0x04 : 0);
    return n;
}

/* Find a page by code. */
static const VdModePage *vd_mode_page_find(uint8_t code)
{
    for (size_t i = 0; i < G_N_ELEMENTS(vd_mode_pages); i++) {
        if (vd_mode_pages[i].code == code) {
            return &vd_mode_pages[i];
        }
    }
    return NULL;
}

/* Device-specific parameter of the header: WP for read-only disks, DPOFUA always. */
static uint8_t vd_mode_devspec(VdScsiDisk *disk)
{
    return (vd_blk_is_read_only(disk->blk) ? 0x80 : 0) | 0x10;
}

/* MODE SENSE(6/10). */
void vd_scsi_cmd_mode_sense(VdScsiCmd *cmd, const uint8_t *cdb)
{
    VdScsiDisk *disk = cmd->disk;
    bool six = cdb[0] == 0x1a;
    bool dbd = cdb[1] & 0x08;
    bool llbaa = !six && (cdb[1] & 0x10);
    unsigned pc = cdb[2] >> 6;
    uint8_t code = cdb[2] & 0x3f;
    uint8_t sub = cdb[3];
    size_t alloc = six ? cdb[4] : vd_ld_be16(cdb + 7);
    uint8_t buf[VD_MODE_BUF_MAX];

    if (pc == PC_SAVED) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_SAVING_NOT_SUPPORTED, true, 2, 7);
        return;
    }
    if (code != 0x3f && !vd_mode_page_find(code)) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 2, 5);
        return;
    }
    if (sub != 0x00 && sub != 0xff) {
        /* No page has subpages; 0xFF (all subpages) then means subpage 0 only. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 3, -1);
        return;
    }
    memset(buf, 0, sizeof(buf));
    size_t hdr = six ? 4 : 8;
    size_t o = hdr;
    if (!dbd) {
        uint64_t blocks = vd_scsi_disk_blocks(disk);
        if (llbaa) {
            vd_st_be64(buf + o, blocks);
            vd_st_be32(buf + o + 12, VD_SCSI_BLOCK_SIZE);
            o += 16;
        } else {
            vd_st_be32(buf + o, blocks > 0xffffffffull ? 0xffffffffu : (uint32_t)blocks);
            vd_st_be24(buf + o + 5, VD_SCSI_BLOCK_SIZE);
            o += 8;
        }
    }
    size_t bdl = o - hdr;
    for (size_t i = 0; i < G_N_ELEMENTS(vd_mode_pages); i++) {
        if (code == 0x3f || vd_mode_pages[i].code == code) {
            o += vd_mode_page_fill(disk, &vd_mode_pages[i], pc, buf + o);
        }
    }
    if (six) {
        buf[0] = o - 1;
        buf[2] = vd_mode_devspec(disk);
        buf[3] = bdl;
    } else {
        vd_st_be16(buf, o - 2);
        buf[3] = vd_mode_devspec(disk);
        buf[4] = llbaa && bdl ? 0x01 : 0;
        vd_st_be16(buf + 6, bdl);
    }
    vd_scsi_cmd_reply(cmd, buf, o, alloc);
}

/* Ask the backend for a new write-cache state, as this disk's own change. */
void vd_scsi_disk_set_wce(VdScsiDisk *disk, bool on, VdBlockCompletionFunc *cb, void *opaque)
{
    disk->own_wce_change = true;
    vd_blk_set_write_cache(disk->blk, on, cb, opaque);
    disk->own_wce_change = false;
}

/* The backend's write cache changed; the disk's own changes raise their unit attentions themselves. */
void vd_scsi_wce_changed(void *opaque, bool enabled)
{
    VdScsiDisk *disk = opaque;
    if (!disk->own_wce_change) {
        vd_scsi_ua_others(disk, VD_SCSI_NEXUS_MAX, VD_SENSE_MODE_PARAMS_CHANGED);
    }
}

/* MODE SELECT: the write cache switch (and its flush) is done. */
static void vd_mode_select_wce_done(void *opaque, int ret)
{
    VdScsiCmd *cmd = opaque;
    if (ret < 0) {
        vd_scsi_cmd_fail_errno(cmd, ret, true);
        return;
    }
    vd_scsi_cmd_good(cmd);
}

/* Check a block descriptor of a MODE SELECT list: only the current values are accepted. */
static bool vd_mode_check_bd(VdScsiCmd *cmd, const uint8_t *d, size_t at, bool longlba)
{
    uint64_t blocks = vd_scsi_disk_blocks(cmd->disk);
    uint64_t n = longlba ? vd_ld_be64(d) : vd_ld_be32(d);
    uint64_t cur = longlba ? blocks : MIN(blocks, 0xffffffffull);
    uint32_t blen = longlba ? vd_ld_be32(d + 12) : vd_ld_be24(d + 5);
    if (n != 0 && n != cur) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, at, -1);
        return false;
    }
    if (!longlba && d[4] != 0) {
        /* DENSITY CODE */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, at + 4, -1);
        return false;
    }
    if (blen != VD_SCSI_BLOCK_SIZE) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, at + (longlba ? 12 : 5), -1);
        return false;
    }
    return true;
}

/* Highest bit set in a nonzero byte, for the field pointer. */
static int vd_high_bit(uint8_t v)
{
    int b = 7;
    while (b > 0 && !(v & (1u << b))) {
        b--;
    }
    return b;
}

/*
 * Put WCE to newval as the command's own change: other nexuses get 2A/01;
 * turning the cache off ends the command after the backend's flush (a
 * failed flush ends it with the sense of a failed write).
 */
static void vd_mode_set_wce(VdScsiCmd *cmd, bool newval)
{
    VdScsiDisk *disk = cmd->disk;
    if (newval == vd_blk_write_cache(disk->blk)) {
        vd_scsi_cmd_good(cmd);
        return;
    }
    vd_scsi_ua_others(disk, cmd->req->nexus, VD_SENSE_MODE_PARAMS_CHANGED);
    if (newval) {
        /* Turning the cache on takes effect at once; nothing to wait for. */
        vd_scsi_disk_set_wce(disk, true, NULL, NULL);
        vd_scsi_cmd_good(cmd);
        return;
    }
    /* Turning it off: the backend drains and flushes, then calls back. */
    vd_scsi_disk_set_wce(disk, false, vd_mode_select_wce_done, cmd);
}

/*
 * MODE SELECT(6/10).  Accepts PF=1 lists (header, an optional block
 * descriptor equal to the current one, whole pages).  Everything is checked
 * before anything changes.  A changed WCE goes to the backend; a switch to
 * write-through completes only after the backend's flush.  A change raises
 * MODE PARAMETERS CHANGED on every other I_T nexus (SPC-4 6.13: the pages
 * are shared by all nexuses).  RTD=1 (SPC-5: byte 1 bit 1 of both CDBs;
 * PF is then ignored) takes no parameter list and reverts every page to its
 * default values, i.e. WCE to vd_blk_default_write_cache() with the same
 * flush, errors and unit attentions as a MODE SELECT that changes WCE.
 */
void vd_scsi_cmd_mode_select(VdScsiCmd *cmd, const uint8_t *cdb)
{
    VdScsiDisk *disk = cmd->disk;
    bool six = cdb[0] == 0x15;
    size_t pll = six ? cdb[4] : vd_ld_be16(cdb + 7);
    size_t hdr = six ? 4 : 8;

    if (cdb[1] & 0x01) {
        /* SP=1: saved pages are not implemented. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 0);
        return;
    }
    if (cdb[1] & 0x02) {
        /* RTD: revert to defaults.  A parameter list is not allowed with it. */
        if (pll != 0) {
            vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, six ? 4 : 7, -1);
            return;
        }
        vd_mode_set_wce(cmd, vd_blk_default_write_cache(disk->blk));
        return;
    }
    if (!(cdb[1] & 0x10)) {
        /* PF=0: vendor-specific (SCSI-1) format is not implemented. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 4);
        return;
    }
    if (pll == 0) {
        vd_scsi_cmd_good(cmd);
        return;
    }
    if (pll < hdr) {
        vd_scsi_cmd_fail(cmd, VD_SENSE_PARAM_LIST_LENGTH);
        return;
    }
    if (!vd_scsi_cmd_fetch(cmd, pll)) {
        return;
    }
    const uint8_t *p = cmd->buf;
    size_t mt_at = six ? 1 : 2;
    size_t ds_at = six ? 2 : 3;
    bool longlba = !six && (p[4] & 0x01);
    size_t bdl = six ? p[3] : vd_ld_be16(p + 6);

    /* MODE DATA LENGTH is reserved in MODE SELECT and ignored. */
    if (p[mt_at] != 0) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, mt_at, -1);
        return;
    }
    if (p[ds_at] & ~0x90) {
        /* WP and DPOFUA are reserved for MODE SELECT (older Linux echoes them); the rest must be 0. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, ds_at, vd_high_bit(p[ds_at] & ~0x90));
        return;
    }
    if (bdl != 0 && bdl != (longlba ? 16u : 8u)) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, six ? 3 : 6, -1);
        return;
    }
    if (hdr + bdl > pll) {
        vd_scsi_cmd_fail(cmd, VD_SENSE_PARAM_LIST_LENGTH);
        return;
    }
    if (bdl && !vd_mode_check_bd(cmd, p + hdr, hdr, longlba)) {
        return;
    }

    bool have_wce = false, new_wce = false;
    size_t o = hdr + bdl;
    while (o < pll) {
        if (pll - o < 2) {
            vd_scsi_cmd_fail(cmd, VD_SENSE_PARAM_LIST_LENGTH);
            return;
        }
        if (p[o] & 0x40) {
            /* SPF: no subpages are implemented. */
            vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, o, 6);
            return;
        }
        const VdModePage *pg = vd_mode_page_find(p[o] & 0x3f);
        if (!pg) {
            vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, o, 5);
            return;
        }
        if (p[o + 1] != pg->len) {
            vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, o + 1, -1);
            return;
        }
        if (o + 2 + pg->len > pll) {
            vd_scsi_cmd_fail(cmd, VD_SENSE_PARAM_LIST_LENGTH);
            return;
        }
        uint8_t cur[VD_MODE_PAGE_MAX], mask[VD_MODE_PAGE_MAX];
        vd_mode_page_fill(disk, pg, PC_CURRENT, cur);
        vd_mode_page_fill(disk, pg, PC_CHANGEABLE, mask);
        for (size_t i = 2; i < 2u + pg->len; i++) {
            uint8_t bad = (p[o + i] ^ cur[i]) & ~mask[i];
            if (bad) {
                vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, o + i, vd_high_bit(bad));
                return;
            }
        }
        if (pg->code == 0x08) {
            have_wce = true;
            new_wce = p[o + 2] & 0x04;
        }
        o += 2 + pg->len;
    }

    if (!have_wce) {
        vd_scsi_cmd_good(cmd);
        return;
    }
    vd_mode_set_wce(cmd, new_wce);
}
