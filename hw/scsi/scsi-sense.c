/*
 * scsi-sense.c - fixed-format sense data, the errno to sense mapping, and
 * REQUEST SENSE.
 */
#include "scsi-internal.h"

#include <errno.h>
#include <string.h>

/* Fill 18 bytes of fixed-format current sense (SPC-4 4.5.3). */
void vd_scsi_build_sense(uint8_t *sense, VdScsiSense s)
{
    memset(sense, 0, VD_SCSI_SENSE_LEN);
    sense[0] = 0x70;
    sense[2] = s.key & 0x0f;
    sense[7] = VD_SCSI_SENSE_LEN - 8;
    sense[12] = s.asc;
    sense[13] = s.ascq;
}

/* Fixed sense with SKSV=1 and a field pointer (SPC-4 4.5.2.4.2). */
void vd_scsi_build_sense_field(uint8_t *sense, VdScsiSense s, bool cdb, unsigned byte, int bit)
{
    vd_scsi_build_sense(sense, s);
    sense[15] = 0x80 | (cdb ? 0x40 : 0) | (bit >= 0 ? 0x08 | (bit & 7) : 0);
    sense[16] = byte >> 8;
    sense[17] = byte;
}

/* Map a backend errno to sense data (medium error for reads, write error otherwise). */
VdScsiSense vd_scsi_errno_sense(int ret, bool write)
{
    switch (-ret) {
    case EROFS:
    case EPERM:
    case EACCES:
        return VD_SENSE_WRITE_PROTECTED;
    case ENOSPC:
    case EDQUOT:
        return VD_SENSE_SPACE_ALLOC_FAILED;
    case ERANGE:
    case EINVAL:
    case ENOMEM:
        return VD_SENSE_INTERNAL_FAILURE;
    default:
        return write ? VD_SENSE_WRITE_ERROR : VD_SENSE_READ_ERROR;
    }
}

/*
 * REQUEST SENSE (SPC-4 6.29): report and clear the oldest unit attention or
 * the deferred error of this nexus, else NO SENSE.  Only fixed format.
 */
void vd_scsi_cmd_request_sense(VdScsiCmd *cmd, const uint8_t *cdb)
{
    VdScsiDisk *disk = cmd->disk;
    VdScsiNexus *nx = &disk->nexus[cmd->req->nexus];
    uint8_t sense[VD_SCSI_SENSE_LEN];
    VdScsiSense s;

    if (cdb[1] & 0x01) {
        /* DESC=1: descriptor format is not supported. */
        vd_scsi_cmd_fail_field(cmd, VD_SENSE_INVALID_FIELD_CDB, true, 1, 0);
        return;
    }
    if (vd_scsi_ua_pop(disk, cmd->req->nexus, &s)) {
        vd_scsi_build_sense(sense, s);
    } else if (nx->deferred) {
        nx->deferred = false;
        vd_scsi_build_sense(sense, nx->deferred_sense);
        sense[0] = 0x71;
    } else if (disk->stopped) {
        vd_scsi_build_sense(sense, VD_SENSE_NOT_READY_STOPPED);
    } else {
        vd_scsi_build_sense(sense, VD_SENSE_NO_SENSE);
    }
    vd_scsi_cmd_reply(cmd, sense, sizeof(sense), cdb[4]);
}
