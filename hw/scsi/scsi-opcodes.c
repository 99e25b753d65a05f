/*
 * scsi-opcodes.c - REPORT SUPPORTED OPERATION CODES (MAINTENANCE IN, service
 * action 0Ch; SPC-4 6.35), answered from the dispatch table so that what it
 * reports is exactly what the disk executes.
 */
#include "scsi-internal.h"

#include <string.h>

#define RSOC_TIMEOUTS_LEN 12    /* command timeouts descriptor: length field 0x0A + 10 bytes */

/* Whether the disk executes this table entry now (UNMAP needs a discarding backend). */
static bool vd_scsi_op_supported(VdScsiDisk *disk, const VdScsiOp *op)
{
    return op->fn && (!(op->flags & OP_LBP) || vd_blk_can_discard(disk->blk));
}

/* A command timeouts descriptor with no timeouts given (all zero = not specified). */
static size_t vd_rsoc_timeouts(uint8_t *p)
{
    memset(p, 0, RSOC_TIMEOUTS_LEN);
    vd_st_be16(p, RSOC_TIMEOUTS_LEN - 2);
    return RSOC_TIMEOUTS_LEN;
}

/* REPORTING OPTIONS 000b: every supported command, 8-byte descriptors (+ timeouts with RCTD). */
static size_t vd_rsoc_all(VdScsiDisk *disk, bool rctd, uint8_t *buf)
{
    size_t o = 4;
    for (unsigned opc = 0; opc < 256; opc++) {
        const VdScsiOp *op = vd_scsi_op(opc);
        if (!vd_scsi_op_supported(disk, op)) {
            continue;
        }
        uint8_t *d = buf + o;
        memset(d, 0, 8);
        d[0] = opc;
        bool has_sa = op->sa != VD_SCSI_NO_SA;
        vd_st_be16(d + 2, has_sa ? op->sa : 0);
        d[5] = (rctd ? 0x02 : 0) | (has_sa ? 0x01 : 0);
        vd_st_be16(d + 6, op->cdb_len);
        o += 8;
        if (rctd) {
            o += vd_rsoc_timeouts(buf + o);
        }
    }
    vd_st_be32(buf, o - 4);
    return o;
}

/* One-command format: SUPPORT 011b with the CDB usage data, or 001b (not supported). */
static size_t vd_rsoc_one(VdScsiDisk *disk, const VdScsiOp *op, bool supported, bool rctd, uint8_t *buf)
{
    memset(buf, 0, 4);
    if (!supported) {
        buf[1] = 0x01;
        return 4;
    }
    buf[1] = (rctd ? 0x80 : 0) | 0x03;
    vd_st_be16(buf + 2, op->cdb_len);
    memcpy(buf + 4, op->usage, op->cdb_len);
    size_t o = 4 + op->cdb_len;
    if (rctd) {
        o += vd_rsoc_timeouts(buf + o);
    }
    return o;
}

/* MAINTENANCE IN: only REPORT SUPPORTED OPERATION CODES is implemented. */
void vd_scsi_cmd_maintenance_in(VdScsiCmd *cmd, const uint8_t *cdb)
{
    VdScsiDisk *disk = cmd->disk;
    if ((cdb[1] & 0x1f) != 0x0c) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 4);
        return;
    }
    bool rctd = cdb[2] & 0x80;
    unsigned options = cdb[2] & 0x07;
    const VdScsiOp *op = vd_scsi_op(cdb[3]);
    uint16_t sa = vd_ld_be16(cdb + 4);
    bool has_sa = op->fn && op->sa != VD_SCSI_NO_SA;    /* empty slots have no service actions */
    uint8_t buf[4 + 256 * (8 + RSOC_TIMEOUTS_LEN)];
    size_t n;

    if (cdb[2] & 0x78) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 2, 6);
        return;
    }
    switch (options) {
    case 0:
        n = vd_rsoc_all(disk, rctd, buf);
        break;
    case 1:
        /* Opcode alone: an opcode with service actions is an error here (SPC-4 6.35.1). */
        if (has_sa) {
            vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 2, 2);
            return;
        }
        n = vd_rsoc_one(disk, op, vd_scsi_op_supported(disk, op), rctd, buf);
        break;
    case 2:
        /* Opcode and service action: an opcode without service actions is an error. */
        if (op->fn && !has_sa) {
            vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 2, 2);
            return;
        }
        n = vd_rsoc_one(disk, op, vd_scsi_op_supported(disk, op) && sa == op->sa, rctd, buf);
        break;
    case 3:
        /* Either form: the service action counts only for opcodes that have them. */
        n = vd_rsoc_one(disk, op, vd_scsi_op_supported(disk, op) && (!has_sa || sa == op->sa), rctd, buf);
        break;
    default:
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 2, 2);
        return;
    }
    vd_scsi_cmd_reply(cmd, buf, n, vd_ld_be32(cdb + 6));
}
