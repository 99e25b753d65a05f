/*
 * scsi-provision.c - thin provisioning and pattern writes: UNMAP and
 * WRITE SAME(10/16) (SBC-3 5.28, 5.41, 5.42).
 */
#include "scsi-internal.h"

#include <string.h>

#define VD_SCSI_WS_CHUNK (1u << 20)     /* WRITE SAME pattern buffer */

/* Every discard/write of the command is back. */
static void vd_scsi_provision_done(VdScsiCmd *cmd, int ret)
{
    if (ret < 0) {
        vd_scsi_cmd_fail_errno(cmd, ret, true);
        return;
    }
    vd_scsi_cmd_good(cmd);
}

/* UNMAP (SBC-3 5.28): validate the whole parameter list, then discard every range. */
void vd_scsi_cmd_unmap(VdScsiCmd *cmd, const uint8_t *cdb)
{
    VdScsiDisk *disk = cmd->disk;
    size_t pll = vd_ld_be16(cdb + 7);

    if (!vd_blk_can_discard(disk->blk)) {
        /* LBPU=0 in VPD B2: the command is not implemented. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_OPCODE, true, 0, -1);
        return;
    }
    if (cdb[1] & 0x01) {
        /* ANCHOR with ANC_SUP=0. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 0);
        return;
    }
    if (vd_blk_is_read_only(disk->blk)) {
        vd_scsi_cmd_fail(cmd, VD_SENSE_WRITE_PROTECTED);
        return;
    }
    if (pll == 0) {
        vd_scsi_cmd_good(cmd);
        return;
    }
    if (pll < 8) {
        vd_scsi_cmd_fail(cmd, VD_SENSE_PARAM_LIST_LENGTH);
        return;
    }
    if (!vd_scsi_cmd_fetch(cmd, pll)) {
        return;
    }
    const uint8_t *p = cmd->buf;
    size_t data_len = vd_ld_be16(p);
    size_t bd_len = vd_ld_be16(p + 2);
    if (data_len + 2 > pll || bd_len + 8 > pll) {
        vd_scsi_cmd_fail(cmd, VD_SENSE_PARAM_LIST_LENGTH);
        return;
    }
    if (bd_len + 6 > data_len) {
        /* The descriptors do not fit in the UNMAP DATA LENGTH. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, 0, -1);
        return;
    }
    size_t ndesc = bd_len / 16;     /* a trailing partial descriptor is ignored */
    if (ndesc > VD_SCSI_MAX_UNMAP_DESCS) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, 2, -1);
        return;
    }
    uint64_t blocks = vd_scsi_disk_blocks(disk);
    for (size_t i = 0; i < ndesc; i++) {
        const uint8_t *d = p + 8 + 16 * i;
        uint64_t lba = vd_ld_be64(d);
        uint32_t n = vd_ld_be32(d + 8);
        if (n > VD_SCSI_MAX_UNMAP_BLOCKS) {
            vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_PARAM, false, 8 + 16 * i + 8, -1);
            return;
        }
        if (lba > blocks || n > blocks - lba) {
            vd_scsi_cmd_fail(cmd, VD_SENSE_LBA_OUT_OF_RANGE);
            return;
        }
    }
    /* All valid: issue every discard at once; one extra count closes the batch. */
    cmd->step = vd_scsi_provision_done;
    vd_scsi_io_begin(cmd);
    for (size_t i = 0; i < ndesc; i++) {
        const uint8_t *d = p + 8 + 16 * i;
        uint32_t n = vd_ld_be32(d + 8);
        if (n) {
            vd_scsi_io_begin(cmd);
            vd_blk_discard(disk->blk, vd_ld_be64(d) * VD_SCSI_BLOCK_SIZE,
                           (uint64_t)n * VD_SCSI_BLOCK_SIZE, vd_scsi_io_cb, cmd);
        }
    }
    vd_scsi_io_cb(cmd, 0);
}

/* Whether a buffer is all zero bytes. */
static bool vd_is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

/*
 * WRITE SAME(10/16): one block (or none with NDOB) written to every block of
 * the range.  Zeros become a write-zeroes request, which may deallocate when
 * UNMAP=1; any other pattern is written from a repeated buffer.
 */
void vd_scsi_cmd_write_same(VdScsiCmd *cmd, const uint8_t *cdb)
{
    VdScsiDisk *disk = cmd->disk;
    bool sixteen = cdb[0] == 0x93;
    uint64_t lba = sixteen ? vd_ld_be64(cdb + 2) : vd_ld_be32(cdb + 2);
    uint64_t n = sixteen ? vd_ld_be32(cdb + 10) : vd_ld_be16(cdb + 7);
    bool ndob = sixteen && (cdb[1] & 0x01);
    bool unmap = cdb[1] & 0x08;

    if (cdb[1] & 0xe0) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 7);
        return;
    }
    if (cdb[1] & 0x10) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 4);
        return;
    }
    if (cdb[1] & 0x06) {
        /* PBDATA / LBDATA: obsolete, not supported. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 2);
        return;
    }
    if (!sixteen && (cdb[1] & 0x01)) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 0);
        return;
    }
    if (n == 0 || n > VD_SCSI_MAX_WS_BLOCKS) {
        /* WSNZ=1, and MAXIMUM WRITE SAME LENGTH. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, sixteen ? 10 : 7, -1);
        return;
    }
    if (!vd_scsi_check_range(cmd, lba, n)) {
        return;
    }
    if (vd_blk_is_read_only(disk->blk)) {
        vd_scsi_cmd_fail(cmd, VD_SENSE_WRITE_PROTECTED);
        return;
    }
    uint64_t off = lba * VD_SCSI_BLOCK_SIZE;
    uint64_t bytes = n * VD_SCSI_BLOCK_SIZE;
    bool zero = ndob;
    if (!ndob) {
        if (!vd_scsi_cmd_fetch(cmd, VD_SCSI_BLOCK_SIZE)) {
            return;
        }
        zero = vd_is_zero(cmd->buf, VD_SCSI_BLOCK_SIZE);
    }
    cmd->step = vd_scsi_provision_done;
    vd_scsi_io_begin(cmd);
    if (zero) {
        unsigned flags = unmap && vd_blk_can_discard(disk->blk) ? VD_REQ_MAY_UNMAP : 0;
        vd_blk_write_zeroes(disk->blk, off, bytes, flags, vd_scsi_io_cb, cmd);
        return;
    }
    /* A chunk of repeated pattern, written as many times as needed, all at once. */
    size_t chunk = MIN(bytes, (uint64_t)VD_SCSI_WS_CHUNK);
    cmd->buf2 = g_malloc(chunk);
    for (size_t o = 0; o < chunk; o += VD_SCSI_BLOCK_SIZE) {
        memcpy(cmd->buf2 + o, cmd->buf, VD_SCSI_BLOCK_SIZE);
    }
    cmd->iov = g_new(struct iovec, 2);
    cmd->iov[0].iov_base = cmd->buf2;
    cmd->iov[0].iov_len = chunk;
    cmd->iov[1].iov_base = cmd->buf2;
    cmd->iov[1].iov_len = bytes % chunk;
    uint64_t done = 0;
    while (done < bytes) {
        bool tail = bytes - done < chunk;
        vd_scsi_io_begin(cmd);
        vd_blk_pwritev(disk->blk, off + done, &cmd->iov[tail ? 1 : 0], 1, 0, vd_scsi_io_cb, cmd);
        done += tail ? cmd->iov[1].iov_len : chunk;
    }
    vd_scsi_io_cb(cmd, 0);
}
