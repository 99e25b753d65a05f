/* vdisk-vhost-devices.c - the device kinds vdisk-vhost serves: virtio-blk (virtio-scsi in vdisk-vhost-scsi.c). */
#include "vdisk-vhost.h"

#include "hw/virtio-blk.h"
#include "util/options.h"

#include <string.h>

/* Take serial= out of a drive spec; the rest goes to vd_blk_open. */
bool vd_vhost_split_drive(const char *spec, char **backend_opts, char **serial, GError **errp)
{
    g_autoptr(GPtrArray) parts = vd_opts_split(spec, errp);
    g_autoptr(GString) rest = g_string_new(NULL);
    *serial = NULL;
    if (!parts) {
        g_prefix_error(errp, "--drive %s: ", spec);
        return false;
    }
    for (guint i = 0; i < parts->len; i++) {
        const VdOpt *kv = parts->pdata[i];
        if (strcmp(kv->key, "serial") == 0) {
            g_free(*serial);
            *serial = g_strdup(kv->value);
            continue;
        }
        vd_opts_append(rest, kv->key, kv->value);
    }
    *backend_opts = g_string_free(g_steal_pointer(&rest), FALSE);
    return true;
}

/* Open every --drive as a block backend; serials are returned in order. */
bool vd_vhost_open_drives(VdVhostApp *a, GPtrArray *serials, GError **errp)
{
    a->backends = g_ptr_array_new();
    for (guint i = 0; i < a->opts.drives->len; i++) {
        g_autofree char *opts = NULL;
        char *serial = NULL;
        if (!vd_vhost_split_drive(a->opts.drives->pdata[i], &opts, &serial, errp)) {
            return false;
        }
        g_ptr_array_add(serials, serial);
        VdBlockBackend *blk = vd_blk_open(opts, a->ctx, errp);
        if (!blk) {
            g_prefix_error(errp, "--drive %s: ", (char *)a->opts.drives->pdata[i]);
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

/* virtio-blk: exactly one drive. */
static bool blk_create(VdVhostApp *a, GError **errp)
{
    g_autoptr(GPtrArray) serials = g_ptr_array_new_with_free_func(g_free);
    if (a->opts.drives->len != 1) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "virtio-blk takes exactly one --drive (got %u)",
                    a->opts.drives->len);
        return false;
    }
    if (!vd_vhost_open_drives(a, serials, errp)) {
        vd_vhost_close_drives(a);
        return false;
    }
    VdVirtioBlkConf conf = {
        .serial = serials->pdata[0],
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
    "virtio-blk", blk_create, blk_drain, blk_format_stats, blk_destroy,
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
