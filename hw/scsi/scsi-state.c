/*
 * scsi-state.c - migration of a SCSI disk's guest-visible state: START
 * STOP UNIT's stopped state and, per I_T nexus, the queued unit attentions
 * and the deferred error.  The caching mode page's WCE is the backend's and
 * travels in the drive's section; the other mode pages are fixed.
 */
#include "scsi-internal.h"

struct VdScsiDiskState {
    bool stopped;
    VdScsiNexus nexus[VD_SCSI_NEXUS_MAX];
};

/* Write one sense triple. */
static void put_sense(VdMigWriter *w, VdScsiSense s)
{
    vd_mig_put_u8(w, s.key);
    vd_mig_put_u8(w, s.asc);
    vd_mig_put_u8(w, s.ascq);
}

/* Read one sense triple (the key is 4 bits). */
static bool get_sense(VdMigSection *sec, const char *what, VdScsiSense *s, GError **errp)
{
    if (!vd_mig_get_u8(sec, what, &s->key, errp) || !vd_mig_get_u8(sec, what, &s->asc, errp) ||
        !vd_mig_get_u8(sec, what, &s->ascq, errp)) {
        return false;
    }
    return s->key <= 0xf || vd_mig_field_error(sec, what, errp, "sense key 0x%x is not 0..0xf", s->key);
}

bool vd_scsi_disk_save(VdScsiDisk *disk, VdMigWriter *w, GError **errp)
{
    if (disk->done.length || disk->tmf_done.length || disk->bg_flushes) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BUSY, "SCSI LUN %u has %u answers or background flushes "
                    "pending: resume with cont first", disk->lun,
                    disk->done.length + disk->tmf_done.length + disk->bg_flushes);
        return false;
    }
    vd_mig_put_u8(w, disk->stopped);
    for (unsigned i = 0; i < VD_SCSI_NEXUS_MAX; i++) {
        const VdScsiNexus *nx = &disk->nexus[i];
        vd_mig_put_u8(w, nx->n_ua);
        for (unsigned k = 0; k < nx->n_ua; k++) {
            put_sense(w, nx->ua[k]);
        }
        vd_mig_put_u8(w, nx->deferred);
        put_sense(w, nx->deferred_sense);
    }
    return true;
}

VdScsiDiskState *vd_scsi_disk_parse(VdScsiDisk *disk, VdMigSection *sec, GError **errp)
{
    VdScsiDiskState *st = g_new0(VdScsiDiskState, 1);
    g_autofree char *what = g_strdup_printf("LUN %u", disk->lun);
    if (!vd_mig_get_bool(sec, what, &st->stopped, errp)) {
        goto fail;
    }
    for (unsigned i = 0; i < VD_SCSI_NEXUS_MAX; i++) {
        VdScsiNexus *nx = &st->nexus[i];
        g_autofree char *ua = g_strdup_printf("LUN %u nexus %u unit attentions", disk->lun, i);
        uint8_t n;
        if (!vd_mig_get_u8(sec, ua, &n, errp)) {
            goto fail;
        }
        if (n > VD_SCSI_UA_QUEUE) {
            vd_mig_field_error(sec, ua, errp, "%u queued (at most %u)", n, VD_SCSI_UA_QUEUE);
            goto fail;
        }
        nx->n_ua = n;
        for (unsigned k = 0; k < n; k++) {
            if (!get_sense(sec, ua, &nx->ua[k], errp)) {
                goto fail;
            }
        }
        g_autofree char *def = g_strdup_printf("LUN %u nexus %u deferred error", disk->lun, i);
        if (!vd_mig_get_bool(sec, def, &nx->deferred, errp) || !get_sense(sec, def, &nx->deferred_sense, errp)) {
            goto fail;
        }
    }
    return st;
fail:
    g_free(st);
    return NULL;
}

void vd_scsi_disk_apply(VdScsiDisk *disk, VdScsiDiskState *st)
{
    disk->stopped = st->stopped;
    memcpy(disk->nexus, st->nexus, sizeof(disk->nexus));
    g_free(st);
}

void vd_scsi_disk_state_free(VdScsiDiskState *st)
{
    g_free(st);
}
