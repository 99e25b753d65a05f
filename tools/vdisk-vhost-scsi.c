/* vdisk-vhost-scsi.c - the virtio-scsi device kind of vdisk-vhost: one SCSI disk (LUN) per --drive. */
#include "vdisk-vhost.h"

#include "hw/virtio-scsi.h"

/* The device's drain: cb once every command and TMF is answered in guest memory. */
static void scsi_drain(VdVhostApp *a, VdDrainFunc *cb, void *cb_opaque)
{
    vd_virtio_scsi_drain(a->dev, cb, cb_opaque);
}

/* virtio-scsi: target 0, LUN n for the n-th --drive. */
static bool scsi_create(VdVhostApp *a, GError **errp)
{
    g_autoptr(GPtrArray) serials = g_ptr_array_new_with_free_func(g_free);
    if (a->opts.num_queues > 16) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "virtio-scsi: at most 16 request queues");
        return false;
    }
    if (!vd_vhost_open_drives(a, serials, errp)) {
        vd_vhost_close_drives(a);
        return false;
    }
    VdVirtioScsiConf conf = { .num_queues = a->opts.num_queues ? a->opts.num_queues : 1,
                              .queue_size = a->opts.queue_size };
    VdVirtioScsi *s = vd_virtio_scsi_new(&conf, NULL, errp);
    if (!s) {
        vd_vhost_close_drives(a);
        return false;
    }
    for (guint i = 0; i < a->backends->len; i++) {
        if (!vd_virtio_scsi_add_lun(s, a->backends->pdata[i], i, serials->pdata[i], errp)) {
            vd_virtio_scsi_free(s);
            vd_vhost_close_drives(a);
            return false;
        }
    }
    a->dev = s;
    a->vdev = vd_virtio_scsi_device(s);
    return true;
}

/* virtio-scsi counters, then one line per drive. */
static void scsi_format_stats(VdVhostApp *a, GString *out)
{
    g_string_append(out, "device ");
    vd_virtio_scsi_format_stats(a->dev, out);
    g_string_append(out, "\n");
    vd_vhost_format_drives(a, out);
}

/* Free the adapter (it drains), then the drives. */
static void scsi_destroy(VdVhostApp *a)
{
    g_clear_pointer(&a->dev, vd_virtio_scsi_free);
    a->vdev = NULL;
    vd_vhost_close_drives(a);
}

const VdVhostDeviceKind vd_vhost_kind_scsi = {
    "virtio-scsi", scsi_create, scsi_drain, scsi_format_stats, scsi_destroy,
};
