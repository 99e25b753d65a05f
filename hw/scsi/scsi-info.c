/*
 * scsi-info.c - the commands that describe the disk and its state: TEST UNIT
 * READY, INQUIRY (standard data and VPD pages), READ CAPACITY(10/16),
 * REPORT LUNS, START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL.
 */
#include "scsi-internal.h"

#include <string.h>

/* TEST UNIT READY: the dispatcher already reported NOT READY while stopped. */
void vd_scsi_cmd_test_unit_ready(VdScsiCmd *cmd, const uint8_t *cdb)
{
    vd_scsi_cmd_good(cmd);
}

/* Standard INQUIRY data, 36 bytes (SPC-4 6.6.2). */
static size_t vd_scsi_inquiry_std(VdScsiDisk *disk, uint8_t *p)
{
    memset(p, 0, 36);
    p[0] = 0x00;            /* qualifier 0, direct access block device */
    p[1] = 0x00;            /* RMB=0: not removable */
    p[2] = 0x06;            /* SPC-4 */
    p[3] = 0x12;            /* HISUP=1, response data format 2 */
    p[4] = 36 - 5;          /* additional length */
    p[7] = 0x02;            /* CMDQUE */
    memcpy(p + 8, disk->vendor, 8);
    memcpy(p + 16, disk->product, 16);
    memcpy(p + 32, "0.1 ", 4);
    return 36;
}

/* VPD pages offered, ascending (page 0x00 lists them). */
static const uint8_t vd_scsi_vpd_list[] = { 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 };

/* VPD 0x00: supported pages. */
static size_t vd_scsi_vpd_supported(VdScsiDisk *disk, uint8_t *p)
{
    memcpy(p + 4, vd_scsi_vpd_list, sizeof(vd_scsi_vpd_list));
    return 4 + sizeof(vd_scsi_vpd_list);
}

/* VPD 0x80: unit serial number. */
static size_t vd_scsi_vpd_serial(VdScsiDisk *disk, uint8_t *p)
{
    size_t n = strlen(disk->serial);
    memcpy(p + 4, disk->serial, n);
    return 4 + n;
}

/* VPD 0x83: a T10 vendor ID designator and an NAA 3 designator, both for the LU. */
static size_t vd_scsi_vpd_devid(VdScsiDisk *disk, uint8_t *p)
{
    size_t o = 4;
    size_t sn = strlen(disk->serial);
    p[o + 0] = 0x02;        /* code set ASCII */
    p[o + 1] = 0x01;        /* association LU, type T10 vendor ID */
    p[o + 3] = 8 + sn;
    memcpy(p + o + 4, disk->vendor, 8);
    memcpy(p + o + 12, disk->serial, sn);
    o += 4 + 8 + sn;
    p[o + 0] = 0x01;        /* code set binary */
    p[o + 1] = 0x03;        /* association LU, type NAA */
    p[o + 3] = 8;
    vd_st_be64(p + o + 4, disk->naa);
    o += 12;
    return o;
}

/* VPD 0xB0: block limits (SBC-3 6.5.3), page length 0x3C. */
static size_t vd_scsi_vpd_limits(VdScsiDisk *disk, uint8_t *p)
{
    p[4] = 0x01;                                   /* WSNZ: WRITE SAME of 0 blocks is invalid */
    vd_st_be16(p + 6, 1);                             /* optimal transfer length granularity */
    vd_st_be32(p + 8, VD_SCSI_MAX_XFER_BLOCKS);       /* maximum transfer length */
    vd_st_be32(p + 12, VD_SCSI_OPT_XFER_BLOCKS);      /* optimal: within what READ(10) can carry */
    if (vd_scsi_disk_lbp(disk)) {
        vd_st_be32(p + 20, VD_SCSI_MAX_UNMAP_BLOCKS);
        vd_st_be32(p + 24, VD_SCSI_MAX_UNMAP_DESCS);
        vd_st_be32(p + 28, 4096 / VD_SCSI_BLOCK_SIZE); /* optimal unmap granularity */
    }
    vd_st_be64(p + 36, VD_SCSI_MAX_WS_BLOCKS);        /* maximum WRITE SAME length */
    return 4 + 0x3c;
}

/* VPD 0xB1: block device characteristics: non-rotating medium. */
static size_t vd_scsi_vpd_chars(VdScsiDisk *disk, uint8_t *p)
{
    vd_st_be16(p + 4, 0x0001);
    return 4 + 0x3c;
}

/* VPD 0xB2: logical block provisioning (SBC-3 6.5.4). */
static size_t vd_scsi_vpd_lbp(VdScsiDisk *disk, uint8_t *p)
{
    if (vd_scsi_disk_lbp(disk)) {
        p[5] = 0xe0;        /* LBPU, LBPWS, LBPWS10; LBPRZ=0: unmapped blocks read undefined */
        p[6] = 0x02;        /* thin provisioned */
    }
    return 4 + 4;
}

typedef size_t VdScsiVpdFunc(VdScsiDisk *disk, uint8_t *p);

/* VPD builders by page code; the same set as vd_scsi_vpd_list. */
static const struct {
    uint8_t page;
    VdScsiVpdFunc *fn;
} vd_scsi_vpd_pages[] = {
    { 0x00, vd_scsi_vpd_supported },
    { 0x80, vd_scsi_vpd_serial },
    { 0x83, vd_scsi_vpd_devid },
    { 0xb0, vd_scsi_vpd_limits },
    { 0xb1, vd_scsi_vpd_chars },
    { 0xb2, vd_scsi_vpd_lbp },
};

/* INQUIRY (SPC-4 6.6): standard data, or a VPD page with EVPD=1. */
void vd_scsi_cmd_inquiry(VdScsiCmd *cmd, const uint8_t *cdb)
{
    uint8_t buf[256];
    size_t alloc = vd_ld_be16(cdb + 3);

    if (cdb[1] & 0x02) {
        /* CMDDT is obsolete: SPC-4 says reject it. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 1);
        return;
    }
    if (cdb[1] & 0xfc) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, -1);
        return;
    }
    memset(buf, 0, sizeof(buf));
    if (!(cdb[1] & 0x01)) {
        if (cdb[2] != 0) {
            /* A page code without EVPD. */
            vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 2, -1);
            return;
        }
        size_t n = vd_scsi_inquiry_std(cmd->disk, buf);
        vd_scsi_cmd_reply(cmd, buf, n, alloc);
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(vd_scsi_vpd_pages); i++) {
        if (vd_scsi_vpd_pages[i].page == cdb[2]) {
            size_t n = vd_scsi_vpd_pages[i].fn(cmd->disk, buf);
            buf[0] = 0x00;          /* qualifier 0, type 0 */
            buf[1] = cdb[2];
            vd_st_be16(buf + 2, n - 4);
            vd_scsi_cmd_reply(cmd, buf, n, alloc);
            return;
        }
    }
    vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 2, -1);
}

/* READ CAPACITY(10) (SBC-3 5.15). */
void vd_scsi_cmd_read_capacity10(VdScsiCmd *cmd, const uint8_t *cdb)
{
    uint8_t buf[8];
    uint64_t blocks = vd_scsi_disk_blocks(cmd->disk);
    if (!(cdb[8] & 0x01) && vd_ld_be32(cdb + 2) != 0) {
        /* PMI=0 requires LBA 0. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 2, -1);
        return;
    }
    uint64_t last = blocks ? blocks - 1 : 0;
    vd_st_be32(buf, last > 0xffffffffull ? 0xffffffffu : (uint32_t)last);
    vd_st_be32(buf + 4, VD_SCSI_BLOCK_SIZE);
    vd_scsi_cmd_reply(cmd, buf, sizeof(buf), sizeof(buf));
}

/* SERVICE ACTION IN(16): only READ CAPACITY(16), service action 0x10 (SBC-3 5.16). */
void vd_scsi_cmd_service_action_in16(VdScsiCmd *cmd, const uint8_t *cdb)
{
    uint8_t buf[32];
    if ((cdb[1] & 0x1f) != 0x10) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 4);
        return;
    }
    if (!(cdb[14] & 0x01) && vd_ld_be64(cdb + 2) != 0) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 2, -1);
        return;
    }
    uint64_t blocks = vd_scsi_disk_blocks(cmd->disk);
    memset(buf, 0, sizeof(buf));
    vd_st_be64(buf, blocks ? blocks - 1 : 0);
    vd_st_be32(buf + 8, VD_SCSI_BLOCK_SIZE);
    if (vd_scsi_disk_lbp(cmd->disk)) {
        buf[14] = 0x80;     /* LBPME */
    }
    vd_scsi_cmd_reply(cmd, buf, sizeof(buf), vd_ld_be32(cdb + 10));
}

/* REPORT LUNS (SPC-4 6.33): every LUN of the target, single-level addressing. */
void vd_scsi_cmd_report_luns(VdScsiCmd *cmd, const uint8_t *cdb)
{
    uint32_t alloc = vd_ld_be32(cdb + 6);
    uint8_t select = cdb[2];
    if (select > 0x02) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 2, -1);
        return;
    }
    if (alloc < 16) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 6, -1);
        return;
    }
    GArray *luns = vd_scsi_disk_luns(cmd->disk);
    /* SELECT REPORT 1 asks for well-known LUNs only: there are none. */
    unsigned n = select == 0x01 ? 0 : luns->len;
    size_t len = 8 + 8 * (size_t)n;
    uint8_t *buf = g_malloc0(len);
    vd_st_be32(buf, 8 * n);
    for (unsigned i = 0; i < n; i++) {
        unsigned lun = g_array_index(luns, unsigned, i);
        uint8_t *e = buf + 8 + 8 * i;
        if (lun < 256) {
            e[1] = lun;                         /* peripheral device addressing */
        } else {
            e[0] = 0x40 | (lun >> 8);           /* flat space addressing */
            e[1] = lun & 0xff;
        }
    }
    g_array_unref(luns);
    vd_scsi_cmd_reply(cmd, buf, len, alloc);
    g_free(buf);
}

/* START STOP UNIT, second step: the flush before stopping is back. */
static void vd_scsi_stop_flushed(VdScsiCmd *cmd, int ret)
{
    if (ret < 0) {
        vd_scsi_cmd_fail_errno(cmd, ret, true);
        return;
    }
    cmd->disk->stopped = true;
    vd_scsi_cmd_good(cmd);
}

/* Flush done for START STOP UNIT with IMMED=1: only counts the background flush. */
static void vd_scsi_stop_bg_cb(void *opaque, int ret)
{
    VdScsiDisk *disk = opaque;
    disk->bg_flushes--;
}

/*
 * START STOP UNIT (SBC-3 5.25).  START=0 stops the unit after flushing the
 * write cache (unless NO_FLUSH); medium-access commands then get NOT READY
 * 04/02 until START=1.  Power conditions and LOEJ (no removable medium) are
 * rejected.
 */
void vd_scsi_cmd_start_stop(VdScsiCmd *cmd, const uint8_t *cdb)
{
    bool immed = cdb[1] & 0x01;
    uint8_t pc = cdb[4] >> 4;
    bool no_flush = cdb[4] & 0x04;
    bool loej = cdb[4] & 0x02;
    bool start = cdb[4] & 0x01;

    if (pc != 0) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 4, 7);
        return;
    }
    if (loej) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 4, 1);
        return;
    }
    if (start) {
        cmd->disk->stopped = false;
        vd_scsi_cmd_good(cmd);
        return;
    }
    if (no_flush) {
        cmd->disk->stopped = true;
        vd_scsi_cmd_good(cmd);
        return;
    }
    if (immed) {
        cmd->disk->stopped = true;
        cmd->disk->bg_flushes++;
        vd_blk_flush(cmd->disk->blk, vd_scsi_stop_bg_cb, cmd->disk);
        vd_scsi_cmd_good(cmd);
        return;
    }
    cmd->step = vd_scsi_stop_flushed;
    vd_scsi_io_begin(cmd);
    vd_blk_flush(cmd->disk->blk, vd_scsi_io_cb, cmd);
}

/* PREVENT ALLOW MEDIUM REMOVAL: nothing to prevent on a fixed disk. */
void vd_scsi_cmd_prevent_allow(VdScsiCmd *cmd, const uint8_t *cdb)
{
    if (cdb[4] & 0x03) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 4, 0);
        return;
    }
    vd_scsi_cmd_good(cmd);
}
