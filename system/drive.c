/* drive.c - parse a QEMU-style --drive option string into a VdDriveSpec. */
#include "system/machine.h"
#include "util/options.h"

#include <string.h>

#define DRIVE_ERROR(errp, ...) g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, __VA_ARGS__)

/* The interfaces a drive can use, in the order --help lists them. */
/* "none" is QEMU's: a backend with no device, for blockstats/trace/inject and tools. */
static const char *const interfaces[] = { "ide", "scsi", "virtio", "none" };

/* if=: one of the interfaces table. */
static bool set_interface(VdDriveSpec *d, const char *key, const char *value, GError **errp)
{
    for (size_t i = 0; i < G_N_ELEMENTS(interfaces); i++) {
        if (strcmp(value, interfaces[i]) == 0) {
            d->interface = g_strdup(value);
            return true;
        }
    }
    DRIVE_ERROR(errp, "if=%s: unknown interface (accepted: ide, scsi, virtio, none)", value);
    return false;
}

/* index=: position on the interface (IDE 0..3, SCSI LUN). */
static bool set_index(VdDriveSpec *d, const char *key, const char *value, GError **errp)
{
    unsigned v;
    if (!vd_parse_uint(key, value, 0, 255, &v, errp)) {
        return false;
    }
    d->index = v;
    return true;
}

/* id=: a letter, then letters, digits, '-', '_' or '.', at most 32 characters. */
static bool set_id(VdDriveSpec *d, const char *key, const char *value, GError **errp)
{
    size_t len = strlen(value);
    bool ok = len >= 1 && len <= 32 && g_ascii_isalpha(value[0]);
    for (size_t i = 1; ok && i < len; i++) {
        ok = g_ascii_isalnum(value[i]) || strchr("-_.", value[i]);
    }
    if (!ok) {
        DRIVE_ERROR(errp, "id=%s: an id is 1-32 characters: a letter, then letters, digits, '-', '_' or '.'",
                    value);
        return false;
    }
    d->id = g_strdup(value);
    return true;
}

/* serial=: printable ASCII without spaces, at most VD_DRIVE_SERIAL_MAX characters. */
static bool set_serial(VdDriveSpec *d, const char *key, const char *value, GError **errp)
{
    size_t len = strlen(value);
    bool ok = len >= 1 && len <= VD_DRIVE_SERIAL_MAX;
    for (size_t i = 0; ok && i < len; i++) {
        ok = value[i] > 0x20 && value[i] < 0x7f;
    }
    if (!ok) {
        DRIVE_ERROR(errp, "serial=%s: a serial number is 1-%d printable ASCII characters without spaces",
                    value, VD_DRIVE_SERIAL_MAX);
        return false;
    }
    d->serial = g_strdup(value);
    return true;
}

/* num-queues=: virtqueues for virtio-blk, request queues for virtio-scsi. */
static bool set_num_queues(VdDriveSpec *d, const char *key, const char *value, GError **errp)
{
    return vd_parse_uint(key, value, 1, VD_DRIVE_MAX_QUEUES, &d->num_queues, errp);
}

typedef bool DeviceKeySetter(VdDriveSpec *d, const char *key, const char *value, GError **errp);

/* Keys that belong to the device; every other key goes to the block backend. */
static const struct DeviceKey {
    const char *key;
    DeviceKeySetter *set;
} device_keys[] = {
    { "if", set_interface },
    { "index", set_index },
    { "id", set_id },
    { "serial", set_serial },
    { "num-queues", set_num_queues },
};

/* Apply a device key through the table; false if key is not a device key. */
static bool apply_device_key(VdDriveSpec *d, const char *key, const char *value, guint *seen,
                             bool *handled, GError **errp)
{
    for (size_t i = 0; i < G_N_ELEMENTS(device_keys); i++) {
        if (strcmp(key, device_keys[i].key) == 0) {
            *handled = true;
            if (*seen & (1u << i)) {
                DRIVE_ERROR(errp, "%s= is given twice", key);
                return false;
            }
            *seen |= 1u << i;
            return device_keys[i].set(d, key, value, errp);
        }
    }
    *handled = false;
    return true;
}

/* Checks that need more than one key. */
static bool check_combination(VdDriveSpec *d, guint seen, GError **errp)
{
    bool is_ide = strcmp(d->interface, "ide") == 0;
    bool is_virtio = strcmp(d->interface, "virtio") == 0;
    bool is_none = strcmp(d->interface, "none") == 0;
    if (is_ide && d->index >= VD_IDE_MAX_DRIVES) {
        DRIVE_ERROR(errp, "index=%d: IDE has %d positions (index 0-%d: channel index/2, unit index%%2)",
                    d->index, VD_IDE_MAX_DRIVES, VD_IDE_MAX_DRIVES - 1);
        return false;
    }
    if (is_none && d->index >= 0) {
        DRIVE_ERROR(errp, "index= does not apply to if=none: the drive has no device");
        return false;
    }
    if (!is_ide && !is_virtio && !is_none && d->index >= VD_SCSI_MAX_LUNS) {
        DRIVE_ERROR(errp, "index=%d: a SCSI drive's index is its LUN, 0-%d", d->index, VD_SCSI_MAX_LUNS - 1);
        return false;
    }
    if (is_virtio && d->index >= 0) {
        DRIVE_ERROR(errp, "index= does not apply to if=virtio: virtio-mmio slots follow command-line order");
        return false;
    }
    if ((is_ide || is_none) && (seen & (1u << 4))) {
        DRIVE_ERROR(errp, "num-queues= does not apply to if=%s", d->interface);
        return false;
    }
    return true;
}

VdDriveSpec *vd_drive_spec_parse(const char *str, GError **errp)
{
    if (!str || !*str) {
        DRIVE_ERROR(errp, "empty drive specification (expected file=IMAGE,if=ide|scsi|virtio,...)");
        return NULL;
    }
    VdDriveSpec *d = g_new0(VdDriveSpec, 1);
    d->index = -1;
    d->num_queues = 1;
    g_autoptr(GPtrArray) items = vd_opts_split(str, errp);
    g_autoptr(GString) backend = g_string_new(NULL);
    guint seen = 0;
    if (!items) {
        goto fail;
    }
    for (guint i = 0; i < items->len; i++) {
        const VdOpt *item = g_ptr_array_index(items, i);
        bool handled;
        if (!apply_device_key(d, item->key, item->value, &seen, &handled, errp)) {
            goto fail;
        }
        if (!handled) {
            vd_opts_append(backend, item->key, item->value);
        }
    }
    if (!d->interface) {
        d->interface = g_strdup("ide"); /* QEMU's default */
    }
    if (!check_combination(d, seen, errp)) {
        goto fail;
    }
    d->backend_options = g_strdup(backend->str);
    return d;
fail:
    vd_drive_spec_free(d);
    return NULL;
}

void vd_drive_spec_free(VdDriveSpec *d)
{
    if (!d) {
        return;
    }
    if (d->blk) {
        vd_blk_close(d->blk);
    }
    g_free(d->id);
    g_free(d->interface);
    g_free(d->serial);
    g_free(d->backend_options);
    g_free(d);
}
