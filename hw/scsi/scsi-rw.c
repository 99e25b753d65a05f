/*
 * scsi-rw.c - the data path: READ and WRITE (6/10/12/16), VERIFY(10/16),
 * WRITE AND VERIFY(10/16) and SYNCHRONIZE CACHE(10/16) (SBC-3 chapter 5).
 *
 * Guest data moves straight between the guest's iovecs and the backend; only
 * VERIFY with byte comparison uses bounce buffers.
 */
#include "scsi-internal.h"

#include <string.h>

/* LBA, transfer length and the byte-1 flags of a READ/WRITE/VERIFY-shaped CDB. */
typedef struct VdScsiRw {
    uint64_t lba;
    uint64_t len;
    unsigned len_byte;      /* where the transfer length sits, for the field pointer */
    uint8_t flags;          /* CDB byte 1; 0 for 6-byte CDBs */
    bool six;
} VdScsiRw;

/* Decode a READ/WRITE/VERIFY CDB by its group. */
static VdScsiRw vd_scsi_decode_rw(const uint8_t *cdb)
{
    VdScsiRw rw = { 0 };
    switch (vd_scsi_cdb_length(cdb[0])) {
    case 6:
        rw.six = true;
        rw.lba = vd_ld_be24(cdb + 1) & 0x1fffff;
        rw.len = cdb[4] ? cdb[4] : 256;     /* READ(6)/WRITE(6): 0 means 256 blocks */
        rw.len_byte = 4;
        break;
    case 10:
        rw.lba = vd_ld_be32(cdb + 2);
        rw.len = vd_ld_be16(cdb + 7);
        rw.len_byte = 7;
        rw.flags = cdb[1];
        break;
    case 12:
        rw.lba = vd_ld_be32(cdb + 2);
        rw.len = vd_ld_be32(cdb + 6);
        rw.len_byte = 6;
        rw.flags = cdb[1];
        break;
    default:
        rw.lba = vd_ld_be64(cdb + 2);
        rw.len = vd_ld_be32(cdb + 10);
        rw.len_byte = 10;
        rw.flags = cdb[1];
        break;
    }
    return rw;
}

/* Checks every data command shares: protection field, length limit, LBA range. */
static bool vd_scsi_check_rw(VdScsiCmd *cmd, const VdScsiRw *rw)
{
    if (rw->flags & 0xe0) {
        /* RDPROTECT/WRPROTECT/VRPROTECT: protection information is not supported. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 7);
        return false;
    }
    if (rw->len > VD_SCSI_MAX_XFER_BLOCKS) {
        /* Beyond the MAXIMUM TRANSFER LENGTH of VPD page B0. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, rw->len_byte, -1);
        return false;
    }
    if (!vd_scsi_check_range(cmd, rw->lba, rw->len)) {
        return false;
    }
    cmd->lba = rw->lba;
    cmd->nblocks = rw->len;
    return true;
}

/* READ finished. */
static void vd_scsi_read_done(VdScsiCmd *cmd, int ret)
{
    if (ret < 0) {
        vd_scsi_cmd_fail_errno(cmd, ret, false);
        return;
    }
    cmd->req->in_resid = cmd->in_size - cmd->nblocks * VD_SCSI_BLOCK_SIZE;
    vd_scsi_cmd_good(cmd);
}

/* READ(6/10/12/16).  FUA on a read needs nothing: the backend is coherent with writes. */
void vd_scsi_cmd_read(VdScsiCmd *cmd, const uint8_t *cdb)
{
    VdScsiRw rw = vd_scsi_decode_rw(cdb);
    if (!vd_scsi_check_rw(cmd, &rw)) {
        return;
    }
    size_t bytes = rw.len * VD_SCSI_BLOCK_SIZE;
    if (bytes > cmd->in_size) {
        vd_scsi_cmd_overrun(cmd);
        return;
    }
    if (bytes == 0) {
        vd_scsi_cmd_good(cmd);
        return;
    }
    vd_scsi_cmd_slice(cmd, cmd->req->in_iov, cmd->req->in_niov, bytes);
    cmd->step = vd_scsi_read_done;
    vd_scsi_io_begin(cmd);
    vd_blk_preadv(cmd->disk->blk, rw.lba * VD_SCSI_BLOCK_SIZE, cmd->iov, cmd->niov, vd_scsi_io_cb, cmd);
}

/* WRITE finished. */
static void vd_scsi_write_done(VdScsiCmd *cmd, int ret)
{
    if (ret < 0) {
        vd_scsi_cmd_fail_errno(cmd, ret, true);
        return;
    }
    cmd->req->out_resid = cmd->out_size - cmd->nblocks * VD_SCSI_BLOCK_SIZE;
    vd_scsi_cmd_good(cmd);
}

/* Start the write of cmd->nblocks at cmd->lba from data-out; then step. */
static void vd_scsi_start_write(VdScsiCmd *cmd, VdScsiStepFunc *step)
{
    size_t bytes = cmd->nblocks * VD_SCSI_BLOCK_SIZE;
    vd_scsi_cmd_slice(cmd, cmd->req->out_iov, cmd->req->out_niov, bytes);
    cmd->step = step;
    vd_scsi_io_begin(cmd);
    vd_blk_pwritev(cmd->disk->blk, cmd->lba * VD_SCSI_BLOCK_SIZE, cmd->iov, cmd->niov,
                   cmd->flags, vd_scsi_io_cb, cmd);
}

/*
 * Checks shared by every command that writes blocks: the range, write
 * protection, and a data-out buffer that holds the transfer.  Completes cmd
 * and returns false when the command is over (an error, or no blocks).
 */
static bool write_prologue(VdScsiCmd *cmd, const VdScsiRw *rw)
{
    if (!vd_scsi_check_rw(cmd, rw)) {
        return false;
    }
    if (vd_blk_is_read_only(cmd->disk->blk)) {
        vd_scsi_cmd_fail(cmd, VD_SENSE_WRITE_PROTECTED);
        return false;
    }
    if ((size_t)rw->len * VD_SCSI_BLOCK_SIZE > cmd->out_size) {
        vd_scsi_cmd_overrun(cmd);
        return false;
    }
    if (rw->len == 0) {
        vd_scsi_cmd_good(cmd);
        return false;
    }
    return true;
}

/* WRITE(6/10/12/16); FUA=1 (not in WRITE(6)) makes a VD_REQ_FUA write. */
void vd_scsi_cmd_write(VdScsiCmd *cmd, const uint8_t *cdb)
{
    VdScsiRw rw = vd_scsi_decode_rw(cdb);
    if (!write_prologue(cmd, &rw)) {
        return;
    }
    cmd->flags = (rw.flags & 0x08) ? VD_REQ_FUA : 0;
    vd_scsi_start_write(cmd, vd_scsi_write_done);
}

/*
 * The verification loop: read the range VD_SCSI_VERIFY_CHUNK bytes at a
 * time into cmd->buf2 (so a VERIFY costs a bounded amount of host memory
 * whatever its length) and, with BYTCHK, compare each chunk with the
 * data-out buffer (01b) or with the single block in cmd->buf (11b).
 */
#define VD_SCSI_VERIFY_CHUNK (1u << 20)

/* One round of the loop: check the chunk just read, then read the next or end. */
static void vd_scsi_verify_step(VdScsiCmd *cmd, int ret)
{
    if (ret < 0) {
        vd_scsi_cmd_fail_errno(cmd, ret, false);
        return;
    }
    size_t bytes = cmd->nblocks * VD_SCSI_BLOCK_SIZE;
    if (cmd->pos && cmd->bytchk) {
        size_t base = cmd->pos - cmd->chunk;
        if (cmd->bytchk == 1) {
            vd_iov_to_buf(cmd->req->out_iov, cmd->req->out_niov, base, cmd->buf, cmd->chunk);
        }
        for (size_t i = 0; i < cmd->chunk; i++) {
            size_t exp = cmd->bytchk == 3 ? (base + i) % VD_SCSI_BLOCK_SIZE : i;
            if (cmd->buf2[i] != cmd->buf[exp]) {
                vd_scsi_cmd_fail(cmd, VD_SENSE_MISCOMPARE_VERIFY);
                /* INFORMATION: offset of the first byte that differs (SBC-3 5.32). */
                cmd->req->sense[0] |= 0x80;
                vd_st_be32(cmd->req->sense + 3, (uint32_t)(cmd->bytchk == 3 ? exp : base + i));
                return;
            }
        }
    }
    if (cmd->pos == bytes) {
        vd_scsi_cmd_good(cmd);
        return;
    }
    cmd->chunk = MIN(bytes - cmd->pos, (size_t)VD_SCSI_VERIFY_CHUNK);
    if (!cmd->buf2) {
        cmd->buf2 = g_malloc(cmd->chunk);
        if (cmd->bytchk == 1) {
            g_free(cmd->buf);
            cmd->buf = g_malloc(cmd->chunk);
        }
    }
    cmd->one.iov_base = cmd->buf2;
    cmd->one.iov_len = cmd->chunk;
    uint64_t off = cmd->lba * VD_SCSI_BLOCK_SIZE + cmd->pos;
    cmd->pos += cmd->chunk;
    cmd->step = vd_scsi_verify_step;
    vd_scsi_io_begin(cmd);
    vd_blk_preadv(cmd->disk->blk, off, &cmd->one, 1, vd_scsi_io_cb, cmd);
}

/* Start verifying cmd->nblocks at cmd->lba with cmd->bytchk. */
static void vd_scsi_start_verify(VdScsiCmd *cmd)
{
    cmd->pos = 0;
    vd_scsi_verify_step(cmd, 0);
}

/* VERIFY(10/16) (SBC-3 5.32): BYTCHK 00 medium check, 01 compare data-out, 11 compare one block. */
void vd_scsi_cmd_verify(VdScsiCmd *cmd, const uint8_t *cdb)
{
    VdScsiRw rw = vd_scsi_decode_rw(cdb);
    unsigned bytchk = (cdb[1] >> 1) & 3;
    if (bytchk == 2) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 2);
        return;
    }
    if (!vd_scsi_check_rw(cmd, &rw)) {
        return;
    }
    cmd->bytchk = bytchk;
    if (rw.len == 0) {
        vd_scsi_cmd_good(cmd);
        return;
    }
    size_t bytes = rw.len * VD_SCSI_BLOCK_SIZE;
    if (bytchk == 1) {
        if (bytes > cmd->out_size) {
            vd_scsi_cmd_overrun(cmd);
            return;
        }
        cmd->req->out_resid = cmd->out_size - bytes;
    } else if (bytchk == 3 && !vd_scsi_cmd_fetch(cmd, VD_SCSI_BLOCK_SIZE)) {
        return;
    }
    vd_scsi_start_verify(cmd);
}

/* WRITE AND VERIFY: the durable write is done; read back (and compare with BYTCHK=01). */
static void vd_scsi_write_verify_written(VdScsiCmd *cmd, int ret)
{
    if (ret < 0) {
        vd_scsi_cmd_fail_errno(cmd, ret, true);
        return;
    }
    vd_scsi_start_verify(cmd);
}

/*
 * WRITE AND VERIFY(10/16) (SBC-3 5.38).  Verifying the medium implies the
 * data is on the medium, so the write is a VD_REQ_FUA write; then the range
 * is read back, and with BYTCHK=01 compared with the data-out buffer.
 */
void vd_scsi_cmd_write_verify(VdScsiCmd *cmd, const uint8_t *cdb)
{
    VdScsiRw rw = vd_scsi_decode_rw(cdb);
    unsigned bytchk = (cdb[1] >> 1) & 3;
    if (bytchk >= 2) {
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 2);
        return;
    }
    if (!write_prologue(cmd, &rw)) {
        return;
    }
    cmd->bytchk = bytchk;
    cmd->flags = VD_REQ_FUA;
    cmd->req->out_resid = cmd->out_size - (size_t)rw.len * VD_SCSI_BLOCK_SIZE;
    vd_scsi_start_write(cmd, vd_scsi_write_verify_written);
}

/* SYNCHRONIZE CACHE finished (IMMED=0). */
static void vd_scsi_sync_done(VdScsiCmd *cmd, int ret)
{
    if (ret < 0) {
        vd_scsi_cmd_fail_errno(cmd, ret, true);
        return;
    }
    vd_scsi_cmd_good(cmd);
}

/* A background flush of SYNCHRONIZE CACHE with IMMED=1. */
typedef struct VdScsiBgFlush {
    VdScsiDisk *disk;
    unsigned nexus;
} VdScsiBgFlush;

/* Background flush back: a failure becomes a deferred error for the nexus (SPC-4 4.5.5). */
static void vd_scsi_bg_flush_cb(void *opaque, int ret)
{
    VdScsiBgFlush *bg = opaque;
    VdScsiDisk *disk = bg->disk;
    if (ret < 0) {
        disk->nexus[bg->nexus].deferred = true;
        disk->nexus[bg->nexus].deferred_sense = vd_scsi_errno_sense(ret, true);
    }
    disk->bg_flushes--;
    g_free(bg);
}

/*
 * SYNCHRONIZE CACHE(10/16) (SBC-3 5.22).  The whole cache is flushed, a
 * superset of any LBA range; the range is still checked.  IMMED=1: GOOD at
 * once, the flush runs in the background.
 */
void vd_scsi_cmd_sync_cache(VdScsiCmd *cmd, const uint8_t *cdb)
{
    bool immed = cdb[1] & 0x02;
    uint64_t lba, n;
    if (cdb[0] == 0x35) {
        lba = vd_ld_be32(cdb + 2);
        n = vd_ld_be16(cdb + 7);
    } else {
        lba = vd_ld_be64(cdb + 2);
        n = vd_ld_be32(cdb + 10);
    }
    if (!vd_scsi_check_range(cmd, lba, n)) {
        return;
    }
    if (immed) {
        VdScsiBgFlush *bg = g_new(VdScsiBgFlush, 1);
        bg->disk = cmd->disk;
        bg->nexus = cmd->req->nexus;
        cmd->disk->bg_flushes++;
        vd_blk_flush(cmd->disk->blk, vd_scsi_bg_flush_cb, bg);
        vd_scsi_cmd_good(cmd);
        return;
    }
    cmd->step = vd_scsi_sync_done;
    vd_scsi_io_begin(cmd);
    vd_blk_flush(cmd->disk->blk, vd_scsi_io_cb, cmd);
}
