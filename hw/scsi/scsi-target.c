/*
 * scsi-target.c - a SCSI target: the disks behind one target id, by LUN.
 * It answers REPORT LUNS for every disk it holds and lets a transport find
 * a disk by LUN.  LUNs can be added while the guest runs.
 */
#include "scsi-internal.h"

struct VdScsiTarget {
    GPtrArray *disks;           /* VdScsiDisk *, ascending by LUN */
};

/* An empty target. */
VdScsiTarget *vd_scsi_target_new(void)
{
    VdScsiTarget *t = g_new0(VdScsiTarget, 1);
    t->disks = g_ptr_array_new();
    return t;
}

/* Free the target and detach its disks (which stay alive). */
void vd_scsi_target_free(VdScsiTarget *t)
{
    if (!t) {
        return;
    }
    for (unsigned i = 0; i < t->disks->len; i++) {
        VdScsiDisk *disk = g_ptr_array_index(t->disks, i);
        disk->target = NULL;
    }
    g_ptr_array_free(t->disks, TRUE);
    g_free(t);
}

/* Add a disk under its LUN; raises REPORTED LUNS DATA HAS CHANGED on the others. */
bool vd_scsi_target_add(VdScsiTarget *t, VdScsiDisk *disk, GError **errp)
{
    if (disk->target) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "SCSI disk LUN %u already belongs to a target",
                    disk->lun);
        return false;
    }
    unsigned pos = 0;
    while (pos < t->disks->len) {
        VdScsiDisk *d = g_ptr_array_index(t->disks, pos);
        if (d->lun == disk->lun) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "LUN %u is already in use", disk->lun);
            return false;
        }
        if (d->lun > disk->lun) {
            break;
        }
        pos++;
    }
    for (unsigned i = 0; i < t->disks->len; i++) {
        vd_scsi_disk_set_unit_attention(g_ptr_array_index(t->disks, i), VD_SCSI_NEXUS_MAX,
                                        VD_SENSE_LUNS_CHANGED);
    }
    g_ptr_array_insert(t->disks, pos, disk);
    disk->target = t;
    return true;
}

/* Remove a disk being freed. */
void vd_scsi_target_forget(VdScsiTarget *t, VdScsiDisk *disk)
{
    g_ptr_array_remove(t->disks, disk);
    disk->target = NULL;
}

/* The disk with this LUN, or NULL. */
VdScsiDisk *vd_scsi_target_find(VdScsiTarget *t, unsigned lun)
{
    for (unsigned i = 0; i < t->disks->len; i++) {
        VdScsiDisk *d = g_ptr_array_index(t->disks, i);
        if (d->lun == lun) {
            return d;
        }
    }
    return NULL;
}

/* Number of LUNs. */
unsigned vd_scsi_target_count(VdScsiTarget *t)
{
    return t->disks->len;
}

/* The n-th smallest LUN. */
unsigned vd_scsi_target_lun_at(VdScsiTarget *t, unsigned n)
{
    VdScsiDisk *d = g_ptr_array_index(t->disks, n);
    return d->lun;
}

/* LUNs REPORT LUNS lists for this disk: its target's, or its own. */
GArray *vd_scsi_disk_luns(VdScsiDisk *disk)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(unsigned));
    if (disk->target) {
        for (unsigned i = 0; i < disk->target->disks->len; i++) {
            VdScsiDisk *d = g_ptr_array_index(disk->target->disks, i);
            g_array_append_val(a, d->lun);
        }
    } else {
        g_array_append_val(a, disk->lun);
    }
    return a;
}
