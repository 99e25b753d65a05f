/* vdisk-vhost-devices.c - the device kinds vdisk-vhost serves: virtio-blk (virtio-scsi in vdisk-vhost-scsi.c). */
#include "vdisk-vhost.h"

#include "hw/virtio-blk.h"
#include "util/options.h"

#include <string.h>

/* The n-th --drive. */
const VdDriveSpec *vd_vhost_drive(VdVhostApp *a, guint n)
{
    return g_ptr_array_index(a->opts.drives, n);
}

/* Open every --drive as a block backend (its keys were checked when the command line was parsed). */
bool vd_vhost_open_drives(VdVhostApp *a, GError **errp)
{
    a->backends = g_ptr_array_new();
    for (guint i = 0; i < a->opts.drives->len; i++) {
        VdBlockBackend *blk = vd_blk_open(vd_vhost_drive(a, i)->backend_options, a->ctx, errp);
        if (!blk) {
            g_prefix_error(errp, "--drive %s: ", vd_vhost_drive(a, i)->text);
            return false;
        }
        g_ptr_array_add(a->backends, blk);
    }
    return true;
}

/* Close every backend (after draining it). */
void vd_vhost_close_drives(VdVhostApp *a)
{
    if (!a->backends) {
        return;
    }
    for (guint i = 0; i < a->backends->len; i++) {
        vd_blk_close(a->backends->pdata[i]);
    }
    g_clear_pointer(&a->backends, g_ptr_array_unref);
}

/* The device's drain: cb once every virtio-blk request is answered in guest memory. */
static void blk_drain(VdVhostApp *a, VdDrainFunc *cb, void *cb_opaque)
{
    vd_virtio_blk_drain(a->dev, cb, cb_opaque);
}

/* One "driveN key=value..." line per backend. */
void vd_vhost_format_drives(VdVhostApp *a, GString *out)
{
    for (guint i = 0; a->backends && i < a->backends->len; i++) {
        VdBlockBackend *blk = a->backends->pdata[i];
        g_string_append_printf(out, "drive%u ", i);
        vd_blk_format_stats(blk, out);
        g_string_append_printf(out, " write_cache=%d cache=%s file=%s\n", vd_blk_write_cache(blk),
                               vd_cache_mode_name(vd_blk_cache_mode(blk)), vd_blk_filename(blk));
    }
}

/* virtio-blk: exactly one drive (the command line was checked against max_drives). */
static bool blk_create(VdVhostApp *a, GError **errp)
{
    if (!vd_vhost_open_drives(a, errp)) {
        vd_vhost_close_drives(a);
        return false;
    }
    VdVirtioBlkConf conf = {
        .serial = vd_vhost_drive(a, 0)->serial,
        .num_queues = a->opts.num_queues ? a->opts.num_queues : 4,
        .queue_size = a->opts.queue_size,
    };
    VdVirtioBlk *b = vd_virtio_blk_new(a->backends->pdata[0], &conf, NULL, errp);
    if (!b) {
        vd_vhost_close_drives(a);
        return false;
    }
    a->dev = b;
    a->vdev = vd_virtio_blk_device(b);
    return true;
}

/* virtio-blk counters. */
static void blk_format_stats(VdVhostApp *a, GString *out)
{
    g_string_append(out, "device ");
    vd_virtio_blk_format_stats(a->dev, out);
    g_string_append(out, "\n");
    vd_vhost_format_drives(a, out);
}

/* Free the virtio-blk device and its drive. */
static void blk_destroy(VdVhostApp *a)
{
    g_clear_pointer(&a->dev, vd_virtio_blk_free);
    a->vdev = NULL;
    vd_vhost_close_drives(a);
}

static const VdVhostDeviceKind kind_blk = {
    "virtio-blk", blk_create, blk_drain, blk_format_stats, blk_destroy, 1, VD_DRIVE_MAX_QUEUES,
};

static const VdVhostDeviceKind *const kinds[] = {
    &kind_blk,
#ifdef VD_HAVE_VIRTIO_SCSI
    &vd_vhost_kind_scsi,
#endif
};

/* Look a device kind up by name. */
const VdVhostDeviceKind *vd_vhost_device_kind(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(kinds); i++) {
        if (strcmp(kinds[i]->name, name) == 0) {
            return kinds[i];
        }
    }
    return NULL;
}
