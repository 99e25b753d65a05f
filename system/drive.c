/*
 * drive.c - parse a QEMU-style --drive option string into a VdDriveSpec: the
 * drive -> device glue that vdisk-vmm and vdisk-vhost share (system/drive.h).
 */
#include "system/drive.h"
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
G_STATIC_ASSERT(VD_DRIVE_KEY_NUM_QUEUES == 1u << (G_N_ELEMENTS(device_keys) - 1)); /* bit i = device_keys[i] */

const VdDriveRules vd_drive_rules_vmm = {
    .keys = VD_DRIVE_KEY_IF | VD_DRIVE_KEY_INDEX | VD_DRIVE_KEY_ID | VD_DRIVE_KEY_SERIAL | VD_DRIVE_KEY_NUM_QUEUES,
    .interface = "ide", /* QEMU's default */
};

/* Apply a device key through the table; *handled is false if key is not a device key. */
static bool apply_device_key(VdDriveSpec *d, const VdDriveRules *rules, const char *key, const char *value,
                             guint *seen, bool *handled, GError **errp)
{
    for (size_t i = 0; i < G_N_ELEMENTS(device_keys); i++) {
        if (strcmp(key, device_keys[i].key) == 0) {
            *handled = true;
            if (!(rules->keys & (1u << i))) {
                DRIVE_ERROR(errp, "%s=%s: %s", key, value, rules->refusal);
                return false;
            }
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
    if (!d->interface) {
        return true;        /* the tool picks the device; its rules refuse if=, index=, num-queues= */
    }
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
    if ((is_ide || is_none) && (seen & VD_DRIVE_KEY_NUM_QUEUES)) {
        DRIVE_ERROR(errp, "num-queues= does not apply to if=%s", d->interface);
        return false;
    }
    return true;
}

/* Parse a --drive string by vdisk-vmm's rules. */
VdDriveSpec *vd_drive_spec_parse(const char *str, GError **errp)
{
    return vd_drive_spec_parse_rules(str, &vd_drive_rules_vmm, errp);
}

/* Parse a --drive string: device keys by the tool's rules, the rest checked as the backend will. */
VdDriveSpec *vd_drive_spec_parse_rules(const char *str, const VdDriveRules *rules, GError **errp)
{
    if (!str || !*str) {
        DRIVE_ERROR(errp, "empty drive specification (expected file=IMAGE,...)");
        return NULL;
    }
    VdDriveSpec *d = g_new0(VdDriveSpec, 1);
    d->text = g_strdup(str);
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
        if (!apply_device_key(d, rules, item->key, item->value, &seen, &handled, errp)) {
            goto fail;
        }
        if (!handled) {
            vd_opts_append(backend, item->key, item->value);
        }
    }
    if (!d->interface) {
        d->interface = g_strdup(rules->interface);
    }
    if (!check_combination(d, seen, errp) || !vd_blk_check_options(backend->str, errp)) {
        goto fail;
    }
    d->backend_options = g_strdup(backend->str);
    return d;
fail:
    vd_drive_spec_free(d);
    return NULL;
}

/* Close the drive's backend if open, free the spec. */
void vd_drive_spec_free(VdDriveSpec *d)
{
    if (!d) {
        return;
    }
    if (d->blk) {
        vd_blk_close(d->blk);
    }
    g_free(d->text);
    g_free(d->id);
    g_free(d->interface);
    g_free(d->serial);
    g_free(d->backend_options);
    g_free(d);
}

/* The first drive in others with this value of a string field, or NULL. */
static const VdDriveSpec *find_same(GPtrArray *others, size_t field, const char *value)
{
    for (guint i = 0; value && i < others->len; i++) {
        const VdDriveSpec *o = g_ptr_array_index(others, i);
        const char *v = G_STRUCT_MEMBER(const char *, o, field);
        if (v && strcmp(v, value) == 0) {
            return o;
        }
    }
    return NULL;
}

/* Refuse d when a drive in others already has its id= or serial=. */
bool vd_drive_spec_check_unique(const VdDriveSpec *d, GPtrArray *others, GError **errp)
{
    /* Unique per process: a serial names one disk to the guest (/dev/disk/by-id, the SCSI NAA id). */
    static const struct { const char *key; size_t field; } unique[] = {
        { "id", G_STRUCT_OFFSET(VdDriveSpec, id) },
        { "serial", G_STRUCT_OFFSET(VdDriveSpec, serial) },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(unique); i++) {
        const char *value = G_STRUCT_MEMBER(const char *, d, unique[i].field);
        if (find_same(others, unique[i].field, value)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "%s=%s: a drive with this %s already exists",
                        unique[i].key, value, unique[i].key);
            return false;
        }
    }
    return true;
}
