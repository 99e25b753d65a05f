/* control-cmds.c - QMP request checks, the command table and the command handlers (docs/control.md). */
#include "vdisk-version.h"
#include "control-internal.h"

#include <stddef.h>
#include <string.h>

/* ---- replies ---- */

/* Build {"<key>": value[, "id": id]} (takes value). */
static JsonNode *reply_new(const char *key, JsonNode *value, JsonNode *id)
{
    JsonObject *o = json_object_new();
    json_object_set_member(o, key, value);
    if (id) {
        json_object_set_member(o, "id", json_node_copy(id));
    }
    return json_node_init_object(json_node_alloc(), o);
}

/* Send {"error": {"class": cls, "desc": ...}} with id, if any. */
static void send_error_v(ControlClient *c, JsonNode *id, const char *cls, const char *fmt, va_list ap)
{
    g_autofree char *desc = g_strdup_vprintf(fmt, ap);
    JsonObject *e = json_object_new();
    json_object_set_string_member(e, "class", cls);
    json_object_set_string_member(e, "desc", desc);
    g_autoptr(JsonNode) msg = reply_new("error", json_node_init_object(json_node_alloc(), e), id);
    json_object_unref(e);
    vd_control_send(c, msg);
}

void vd_control_send_error(ControlClient *c, JsonNode *id, const char *cls, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error_v(c, id, cls, fmt, ap);
    va_end(ap);
}

/* Free a finished command and let its client run the next one. */
static void cmd_finish(ControlCmd *cmd)
{
    ControlClient *c = cmd->client;
    g_clear_pointer(&cmd->id, json_node_unref);
    json_object_unref(cmd->args);
    g_free(cmd);
    c->busy = false;
    if (!c->pumping) {
        vd_control_client_resume(c); /* never start the next command inside a completion callback */
    }
    vd_control_client_unref(c);
}

/* Complete cmd with {"return": ret} (takes ret; NULL means {}). */
static void cmd_return(ControlCmd *cmd, JsonNode *ret)
{
    if (!ret) {
        ret = json_node_init_object(json_node_alloc(), json_object_new());
        json_object_unref(json_node_get_object(ret)); /* the node holds the only reference */
    }
    g_autoptr(JsonNode) msg = reply_new("return", ret, cmd->id);
    vd_control_send(cmd->client, msg);
    cmd_finish(cmd);
}

/* Complete cmd with an error of QMP class cls. */
static void G_GNUC_PRINTF(3, 4) cmd_error(ControlCmd *cmd, const char *cls, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error_v(cmd->client, cmd->id, cls, fmt, ap);
    va_end(ap);
    cmd_finish(cmd);
}

/* Complete cmd with a GenericError carrying err's message. */
static void cmd_gerror(ControlCmd *cmd, const GError *err)
{
    cmd_error(cmd, "GenericError", "%s", err->message);
}

/* ---- drives ---- */

/* The drive called id, or NULL. */
static ControlDrive *find_drive(VdControlServer *s, const char *id)
{
    for (guint i = 0; i < s->drives->len; i++) {
        ControlDrive *d = g_ptr_array_index(s->drives, i);
        if (strcmp(d->id, id) == 0) {
            return d;
        }
    }
    return NULL;
}

/* The drive named by the "device" argument, or NULL after replying DeviceNotFound. */
static ControlDrive *device_arg(ControlCmd *cmd)
{
    const char *id = json_object_get_string_member(cmd->args, "device");
    ControlDrive *d = find_drive(cmd->client->server, id);
    if (!d) {
        cmd_error(cmd, "DeviceNotFound", "Device '%s' not found", id);
    }
    return d;
}

/* ---- commands ---- */

/* qmp_capabilities: leave negotiation mode; no capability is offered, so "enable" must be empty. */
static void cmd_qmp_capabilities(ControlCmd *cmd)
{
    ControlClient *c = cmd->client;
    if (c->negotiated) {
        cmd_error(cmd, "CommandNotFound", "Capabilities negotiation is already complete, command ignored");
        return;
    }
    JsonArray *enable = json_object_has_member(cmd->args, "enable") ?
        json_object_get_array_member(cmd->args, "enable") : NULL;
    if (enable && json_array_get_length(enable)) {
        cmd_error(cmd, "GenericError", "Capability '%s' not available (this server offers none)",
                  json_array_get_string_element(enable, 0));
        return;
    }
    c->negotiated = true;
    cmd_return(cmd, NULL);
}

/* {"qemu": {"major", "minor", "micro"}, "package"}: vdisk's own version, in QEMU's shape. */
static JsonNode *version_info(void)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "qemu");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "major");
    json_builder_add_int_value(b, VDISK_VERSION_MAJOR);
    json_builder_set_member_name(b, "minor");
    json_builder_add_int_value(b, VDISK_VERSION_MINOR);
    json_builder_set_member_name(b, "micro");
    json_builder_add_int_value(b, VDISK_VERSION_MICRO);
    json_builder_end_object(b);
    json_builder_set_member_name(b, "package");
    json_builder_add_string_value(b, "vdisk-" VDISK_VERSION);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

JsonNode *vd_control_greeting(void)
{
    JsonObject *qmp = json_object_new();
    json_object_set_member(qmp, "version", version_info());
    json_object_set_array_member(qmp, "capabilities", json_array_new());
    JsonObject *root = json_object_new();
    json_object_set_object_member(root, "QMP", qmp);
    JsonNode *n = json_node_init_object(json_node_alloc(), root);
    json_object_unref(root);
    return n;
}

/* query-version */
static void cmd_query_version(ControlCmd *cmd)
{
    cmd_return(cmd, version_info());
}

/* One BlockInfo of query-block: QEMU's members, plus x-vdisk-* for what QEMU has no member for. */
static JsonNode *block_info(ControlDrive *d)
{
    VdBlockBackend *blk = d->blk;
    VdCacheMode mode = vd_blk_cache_mode(blk);
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "device");
    json_builder_add_string_value(b, d->id);
    json_builder_set_member_name(b, "locked");
    json_builder_add_boolean_value(b, FALSE);
    json_builder_set_member_name(b, "removable");
    json_builder_add_boolean_value(b, FALSE);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "unknown");
    json_builder_set_member_name(b, "inserted");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "node-name");
    json_builder_add_string_value(b, d->id);
    json_builder_set_member_name(b, "file");
    json_builder_add_string_value(b, vd_blk_filename(blk));
    json_builder_set_member_name(b, "drv");
    json_builder_add_string_value(b, "raw"); /* QEMU's drv is the format; raw is the only one */
    json_builder_set_member_name(b, "ro");
    json_builder_add_boolean_value(b, vd_blk_is_read_only(blk));
    json_builder_set_member_name(b, "active");
    json_builder_add_boolean_value(b, vd_blk_is_active(blk));
    json_builder_set_member_name(b, "encrypted");
    json_builder_add_boolean_value(b, FALSE);
    json_builder_set_member_name(b, "backing_file_depth");
    json_builder_add_int_value(b, 0);
    /* QEMU's cache object: writeback is the guest-visible write cache now (blk_enable_write_cache) */
    json_builder_set_member_name(b, "cache");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "writeback");
    json_builder_add_boolean_value(b, vd_blk_write_cache(blk));
    json_builder_set_member_name(b, "direct");
    json_builder_add_boolean_value(b, vd_blk_is_direct(blk));
    json_builder_set_member_name(b, "no-flush");
    json_builder_add_boolean_value(b, mode == VD_CACHE_UNSAFE);
    json_builder_end_object(b);
    json_builder_set_member_name(b, "image");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "filename");
    json_builder_add_string_value(b, vd_blk_filename(blk));
    json_builder_set_member_name(b, "format");
    json_builder_add_string_value(b, "raw");
    json_builder_set_member_name(b, "virtual-size");
    json_builder_add_int_value(b, vd_blk_length(blk));
    json_builder_end_object(b);
    json_builder_set_member_name(b, "x-vdisk-driver");
    json_builder_add_string_value(b, vd_blk_driver_name(blk));
    json_builder_set_member_name(b, "x-vdisk-cache-mode");
    json_builder_add_string_value(b, vd_cache_mode_name(mode));
    json_builder_set_member_name(b, "x-vdisk-locking");
    json_builder_add_string_value(b, vd_blk_locking_name(blk));
    json_builder_set_member_name(b, "x-vdisk-wt-policy");
    json_builder_add_string_value(b, vd_wt_policy_name(vd_blk_wt_policy(blk)));
    json_builder_set_member_name(b, "x-vdisk-aio");
    json_builder_add_string_value(b, vd_aio_name(vd_blk_aio(blk)));
    json_builder_set_member_name(b, "x-vdisk-write-through-only");
    json_builder_add_boolean_value(b, vd_blk_write_through_only(blk));
    json_builder_end_object(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

/* query-block: one BlockInfo per drive, in the order the drives were added. */
static void cmd_query_block(ControlCmd *cmd)
{
    VdControlServer *s = cmd->client->server;
    JsonArray *a = json_array_new();
    for (guint i = 0; i < s->drives->len; i++) {
        json_array_add_element(a, block_info(g_ptr_array_index(s->drives, i)));
    }
    cmd_return(cmd, json_node_init_array(json_node_alloc(), a));
    json_array_unref(a);
}

/* Every VdBlockStats counter: its name in "x-vdisk", and QEMU's BlockDeviceStats name if it has one. */
static const struct StatField {
    const char *name;
    size_t offset;
    const char *qemu_name;
} stat_fields[] = {
#define F(field, qemu) { #field, offsetof(VdBlockStats, field), qemu }
    F(reads, "rd_operations"), F(writes, "wr_operations"), F(fua_writes, NULL), F(flushes, "flush_operations"),
    F(discards, "unmap_operations"), F(write_zeroes, NULL), F(bytes_read, "rd_bytes"),
    F(bytes_written, "wr_bytes"), F(wce_toggles, NULL), F(host_reads, NULL), F(host_writes, NULL),
    F(host_fdatasync, NULL), F(host_dsync_writes, NULL), F(host_rwf_dsync_writes, NULL), F(host_discards, NULL),
    F(host_zero_ranges, NULL), F(host_bytes_read, NULL), F(host_bytes_written, NULL), F(bounce_rmw, NULL),
    F(flushes_skipped, NULL), F(flushes_coalesced, NULL), F(flushes_stage1_only, NULL), F(errors, NULL),
    F(uring_ops, NULL),
#undef F
};

/*
 * QEMU's BlockLatencyHistogramInfo for one class of the backend's
 * histogram: one bin per bucket, and the boundaries between them (each
 * bucket's floor but the first's, vd_lat_bucket_floor_us) in ns, as QEMU's.
 */
static JsonObject *latency_histogram(VdBlockBackend *blk, VdLatencyClass cls)
{
    uint64_t bins[VD_LAT_BUCKETS];
    vd_blk_get_latency(blk, cls, bins);
    JsonArray *bounds = json_array_new(), *counts = json_array_new();
    for (unsigned i = 0; i < VD_LAT_BUCKETS; i++) {
        if (i > 0) {
            json_array_add_int_element(bounds, (gint64)vd_lat_bucket_floor_us(i) * 1000);
        }
        json_array_add_int_element(counts, (gint64)bins[i]);
    }
    JsonObject *h = json_object_new();
    json_object_set_array_member(h, "boundaries", bounds);
    json_object_set_array_member(h, "bins", counts);
    return h;
}

/* QEMU's latency histogram members, by the backend's class. */
static const struct {
    VdLatencyClass cls;
    const char *name;
} latency_members[] = {
    { VD_LAT_READ, "rd_latency_histogram" },
    { VD_LAT_WRITE, "wr_latency_histogram" },
    { VD_LAT_FLUSH, "flush_latency_histogram" },
};

/* One BlockStats of query-blockstats: QEMU's names where they exist, every counter under x-vdisk. */
static JsonNode *block_stats(ControlDrive *d)
{
    VdBlockStats st;
    vd_blk_get_stats(d->blk, &st);
    JsonObject *qemu = json_object_new(), *ours = json_object_new();
    for (size_t i = 0; i < G_N_ELEMENTS(stat_fields); i++) {
        uint64_t v;
        memcpy(&v, (const char *)&st + stat_fields[i].offset, sizeof(v));
        json_object_set_int_member(ours, stat_fields[i].name, (gint64)v);
        if (stat_fields[i].qemu_name) {
            json_object_set_int_member(qemu, stat_fields[i].qemu_name, (gint64)v);
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(latency_members); i++) {
        json_object_set_object_member(qemu, latency_members[i].name, latency_histogram(d->blk, latency_members[i].cls));
    }
    json_object_set_object_member(qemu, "x-vdisk", ours);
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "device", d->id);
    json_object_set_string_member(o, "node-name", d->id);
    json_object_set_object_member(o, "stats", qemu);
    JsonNode *n = json_node_init_object(json_node_alloc(), o);
    json_object_unref(o);
    return n;
}

/* query-blockstats: one entry per drive. */
static void cmd_query_blockstats(ControlCmd *cmd)
{
    VdControlServer *s = cmd->client->server;
    JsonArray *a = json_array_new();
    for (guint i = 0; i < s->drives->len; i++) {
        json_array_add_element(a, block_stats(g_ptr_array_index(s->drives, i)));
    }
    cmd_return(cmd, json_node_init_array(json_node_alloc(), a));
    json_array_unref(a);
}

/* query-commands: the names of the command table (defined below). */
static void cmd_query_commands(ControlCmd *cmd);

/* The backend's write-cache callback: reply now that the change (and its flush) finished. */
static void write_cache_done(void *opaque, int ret)
{
    ControlCmd *cmd = opaque;
    if (ret < 0) {
        cmd_error(cmd, "GenericError", "write cache turned off, but flushing the data it held failed: %s",
                  g_strerror(-ret));
        return;
    }
    cmd_return(cmd, NULL);
}

/* x-vdisk-set-write-cache: change the backend's write cache; the devices tell their guests. */
static void cmd_set_write_cache(ControlCmd *cmd)
{
    ControlDrive *d = device_arg(cmd);
    bool enable = d && json_object_get_boolean_member(cmd->args, "enable");
    if (enable && vd_blk_write_through_only(d->blk)) {
        cmd_error(cmd, "GenericError", "%s is write-through only (its server has no flush): the write cache stays off",
                  d->id);
    } else if (d) {
        vd_blk_set_write_cache(d->blk, enable, write_cache_done, cmd);
    }
}

/* One drive's device state, as x-vdisk-query-device reports it and x-vdisk-set-device-state takes it. */
static JsonNode *device_state(ControlDrive *d)
{
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "device", d->id);
    json_object_set_boolean_member(o, "write-cache", vd_blk_write_cache(d->blk));
    json_object_set_boolean_member(o, "active", vd_blk_is_active(d->blk));
    JsonNode *n = json_node_init_object(json_node_alloc(), o);
    json_object_unref(o);
    return n;
}

/* x-vdisk-query-device: the guest-chosen state each drive's device carries across a migration. */
static void cmd_query_device(ControlCmd *cmd)
{
    VdControlServer *s = cmd->client->server;
    JsonArray *arr = json_array_new();
    for (guint i = 0; i < s->drives->len; i++) {
        json_array_add_element(arr, device_state(g_ptr_array_index(s->drives, i)));
    }
    cmd_return(cmd, json_node_init_array(json_node_alloc(), arr));
    json_array_unref(arr);
}

/* x-vdisk-set-device-state: a migration destination takes the source's device state before its guest runs. */
static void cmd_set_device_state(ControlCmd *cmd)
{
    ControlDrive *d = device_arg(cmd);
    if (!d) {
        return;
    }
    if (vd_blk_is_active(d->blk)) {
        cmd_error(cmd, "GenericError",
                  "%s is active: device state is set only on a migration destination, before its guest runs "
                  "(x-vdisk-set-write-cache changes a running guest's write cache)", d->id);
        return;
    }
    vd_blk_set_write_cache(d->blk, json_object_get_boolean_member(cmd->args, "write-cache"), write_cache_done, cmd);
}

/* Activate (invalidate_cache) or inactivate one drive; false with errp set. */
static bool set_active(ControlDrive *d, bool active, GError **errp)
{
    bool ok = active ? vd_blk_invalidate_cache(d->blk, errp) : vd_blk_inactivate(d->blk, errp);
    if (!ok) {
        g_prefix_error(errp, "%s: ", d->id);
    }
    return ok;
}

/* blockdev-set-active (QEMU 10): one drive by node-name or device, or all of them. */
static void cmd_set_active(ControlCmd *cmd)
{
    VdControlServer *s = cmd->client->server;
    const char *node = json_object_get_string_member_with_default(cmd->args, "node-name", NULL);
    const char *dev = json_object_get_string_member_with_default(cmd->args, "device", NULL);
    bool active = json_object_get_boolean_member(cmd->args, "active");
    g_autoptr(GError) err = NULL;
    if (node && dev) {
        cmd_error(cmd, "GenericError", "Parameters 'node-name' and 'device' are mutually exclusive");
        return;
    }
    if (node || dev) {
        ControlDrive *d = find_drive(s, node ? node : dev);
        if (!d && node) {
            cmd_error(cmd, "GenericError", "Failed to find node with node-name='%s'", node);
        } else if (!d) {
            cmd_error(cmd, "DeviceNotFound", "Device '%s' not found", dev);
        } else if (!set_active(d, active, &err)) {
            cmd_gerror(cmd, err);
        } else {
            cmd_return(cmd, NULL);
        }
        return;
    }
    for (guint i = 0; i < s->drives->len; i++) {
        if (!set_active(g_ptr_array_index(s->drives, i), active, &err)) {
            cmd_gerror(cmd, err);
            return;
        }
    }
    cmd_return(cmd, NULL);
}

/* True if the machine runs: no drives, or some drive's backend is not stopped. */
static bool machine_running(VdControlServer *s)
{
    bool running = !s->drives->len;
    for (guint i = 0; i < s->drives->len; i++) {
        running |= !vd_blk_is_stopped(((ControlDrive *)g_ptr_array_index(s->drives, i))->blk);
    }
    return running;
}

/* True if some drive's backend is stopped (or there are no drives: cont always "resumes" then). */
static bool machine_stopped(VdControlServer *s)
{
    bool stopped = !s->drives->len;
    for (guint i = 0; i < s->drives->len; i++) {
        stopped |= vd_blk_is_stopped(((ControlDrive *)g_ptr_array_index(s->drives, i))->blk);
    }
    return stopped;
}

/* stop: stop every drive's backend (new requests queue), reply, then STOP if the machine was running. */
static void cmd_stop(ControlCmd *cmd)
{
    VdControlServer *s = cmd->client->server;
    bool was_running = machine_running(s);
    for (guint i = 0; i < s->drives->len; i++) {
        vd_blk_stop(((ControlDrive *)g_ptr_array_index(s->drives, i))->blk);
    }
    cmd_return(cmd, NULL);
    if (was_running) {
        vd_control_emit_event(s, "STOP", NULL);
    }
}

/*
 * cont: resume every stopped backend (held requests retried in order), reply, then RESUME.
 * A drive whose image was handed over takes it back first (vd_blk_cont); if one cannot,
 * the reply names it and the drives after it stay stopped.
 */
static void cmd_cont(ControlCmd *cmd)
{
    VdControlServer *s = cmd->client->server;
    bool was_stopped = machine_stopped(s);
    for (guint i = 0; i < s->drives->len; i++) {
        ControlDrive *d = g_ptr_array_index(s->drives, i);
        g_autoptr(GError) err = NULL;
        if (!vd_blk_cont(d->blk, &err)) {
            cmd_error(cmd, "GenericError", "%s: %s", d->id, err->message);
            return;
        }
    }
    cmd_return(cmd, NULL);
    if (was_stopped) {
        vd_control_emit_event(s, "RESUME", NULL);
    }
}

/* quit: reply, announce SHUTDOWN, then start the binary's clean shutdown. */
static void cmd_quit(ControlCmd *cmd)
{
    VdControlServer *s = cmd->client->server;
    cmd_return(cmd, NULL);
    JsonObject *data = json_object_new();
    json_object_set_boolean_member(data, "guest", FALSE);
    json_object_set_string_member(data, "reason", "host-qmp-quit");
    vd_control_emit_event(s, "SHUTDOWN", data);
    s->ops->quit(s->opaque);
}

/* migrate: hand the machine over to the destination at uri; the reply comes when it finished or failed. */
static void cmd_migrate(ControlCmd *cmd)
{
    VdControlServer *s = cmd->client->server;
    g_autoptr(GError) err = NULL;
    if (!s->ops->migrate) {
        cmd_error(cmd, "GenericError", "this binary cannot migrate its guest");
    } else if (!s->ops->migrate(s->opaque, json_object_get_string_member(cmd->args, "uri"), &err)) {
        cmd_gerror(cmd, err);
    } else {
        cmd_return(cmd, NULL);
    }
}

/* query-migrate: {"status": ...} and, after a failure, "error-desc" (QEMU's names). */
static void cmd_query_migrate(ControlCmd *cmd)
{
    VdControlServer *s = cmd->client->server;
    const char *error = NULL;
    JsonObject *o = json_object_new();
    if (s->ops->query_migrate) {
        json_object_set_string_member(o, "status", s->ops->query_migrate(s->opaque, &error));
    }
    if (error) {
        json_object_set_string_member(o, "error-desc", error);
    }
    cmd_return(cmd, json_node_init_object(json_node_alloc(), o));
    json_object_unref(o);
}

/* ---- the command table ---- */

typedef enum ArgType { ARG_BOOL, ARG_STR, ARG_STR_LIST } ArgType;

/* A command argument: name, JSON type, and whether it may be left out. */
typedef struct ControlArg {
    const char *name;
    ArgType type;
    bool optional;
} ControlArg;

#define MAX_ARGS 3

/* QMP's spelling of each ArgType in "Invalid parameter type" errors. */
static const char *const arg_type_names[] = {
    [ARG_BOOL] = "boolean", [ARG_STR] = "string", [ARG_STR_LIST] = "array of strings",
};

static const struct ControlCommand {
    const char *name;
    void (*fn)(ControlCmd *cmd);
    bool in_negotiation;        /* may run before qmp_capabilities */
    ControlArg args[MAX_ARGS];  /* name NULL ends the list */
} commands[] = {
    { "qmp_capabilities", cmd_qmp_capabilities, true, { { "enable", ARG_STR_LIST, true } } },
    { "query-version", cmd_query_version, false, { { NULL } } },
    { "query-commands", cmd_query_commands, false, { { NULL } } },
    { "query-block", cmd_query_block, false, { { NULL } } },
    { "query-blockstats", cmd_query_blockstats, false, { { NULL } } },
    { "x-vdisk-set-write-cache", cmd_set_write_cache, false,
      { { "device", ARG_STR, false }, { "enable", ARG_BOOL, false } } },
    { "x-vdisk-query-device", cmd_query_device, false, { { NULL } } },
    { "x-vdisk-set-device-state", cmd_set_device_state, false,
      { { "device", ARG_STR, false }, { "write-cache", ARG_BOOL, false } } },
    { "blockdev-set-active", cmd_set_active, false,
      { { "node-name", ARG_STR, true }, { "device", ARG_STR, true }, { "active", ARG_BOOL, false } } },
    { "block-set-active", cmd_set_active, false,
      { { "node-name", ARG_STR, true }, { "device", ARG_STR, true }, { "active", ARG_BOOL, false } } },
    { "stop", cmd_stop, false, { { NULL } } },
    { "cont", cmd_cont, false, { { NULL } } },
    { "quit", cmd_quit, false, { { NULL } } },
    { "migrate", cmd_migrate, false, { { "uri", ARG_STR, false } } },
    { "query-migrate", cmd_query_migrate, false, { { NULL } } },
};

/* query-commands: every name in the table, in table order. */
static void cmd_query_commands(ControlCmd *cmd)
{
    JsonArray *a = json_array_new();
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "name", commands[i].name);
        json_array_add_object_element(a, o);
    }
    cmd_return(cmd, json_node_init_array(json_node_alloc(), a));
    json_array_unref(a);
}

/* True if node has the JSON type t. */
static bool arg_type_ok(JsonNode *node, ArgType t)
{
    if (t == ARG_BOOL || t == ARG_STR) {
        GType want = t == ARG_BOOL ? G_TYPE_BOOLEAN : G_TYPE_STRING;
        return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == want;
    }
    if (!JSON_NODE_HOLDS_ARRAY(node)) {
        return false;
    }
    JsonArray *a = json_node_get_array(node);
    bool ok = true;
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonNode *e = json_array_get_element(a, i);
        ok &= JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING;
    }
    return ok;
}

/* Check args against def: every member known and well typed, every mandatory one present. */
static bool check_args(const struct ControlCommand *def, JsonObject *args, GError **errp)
{
    g_autoptr(GList) members = json_object_get_members(args);
    for (GList *m = members; m; m = m->next) {
        const ControlArg *a = def->args;
        while (a < def->args + MAX_ARGS && a->name && strcmp(a->name, m->data) != 0) {
            a++;
        }
        if (a == def->args + MAX_ARGS || !a->name) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "Parameter '%s' is unexpected",
                        (char *)m->data);
            return false;
        }
        if (!arg_type_ok(json_object_get_member(args, a->name), a->type)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "Invalid parameter type for '%s', expected: %s", a->name, arg_type_names[a->type]);
            return false;
        }
    }
    for (const ControlArg *a = def->args; a < def->args + MAX_ARGS && a->name; a++) {
        if (!a->optional && !json_object_has_member(args, a->name)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "Parameter '%s' is missing", a->name);
            return false;
        }
    }
    return true;
}

/* The top-level members a request may have. */
static const char *const request_members[] = { "execute", "arguments", "id" };

/* Check the request's shape (QEMU's wording); its command name and arguments on success. */
static bool check_request(JsonObject *req, const char **name, JsonObject **args, GError **errp)
{
    g_autoptr(GList) members = json_object_get_members(req);
    for (GList *m = members; m; m = m->next) {
        bool known = false;
        for (size_t i = 0; i < G_N_ELEMENTS(request_members); i++) {
            known |= strcmp(m->data, request_members[i]) == 0;
        }
        if (!known) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "QMP input member '%s' is unexpected",
                        (char *)m->data);
            return false;
        }
    }
    JsonNode *exec = json_object_get_member(req, "execute");
    JsonNode *a = json_object_get_member(req, "arguments");
    if (!exec) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "QMP input lacks member 'execute'");
        return false;
    }
    if (!JSON_NODE_HOLDS_VALUE(exec) || json_node_get_value_type(exec) != G_TYPE_STRING) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "QMP input member 'execute' must be a string");
        return false;
    }
    if (a && !JSON_NODE_HOLDS_OBJECT(a)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "QMP input member 'arguments' must be an object");
        return false;
    }
    *name = json_node_get_string(exec);
    *args = a ? json_object_ref(json_node_get_object(a)) : json_object_new();
    return true;
}

/* The table entry called name, or NULL. */
static const struct ControlCommand *find_command(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

void vd_control_dispatch(ControlClient *c, JsonNode *request)
{
    if (!JSON_NODE_HOLDS_OBJECT(request)) {
        vd_control_send_error(c, NULL, "GenericError", "QMP input must be a JSON object");
        return;
    }
    JsonObject *req = json_node_get_object(request);
    JsonNode *id = json_object_get_member(req, "id");
    const char *name;
    JsonObject *args = NULL;
    g_autoptr(GError) err = NULL;
    if (!check_request(req, &name, &args, &err)) {
        vd_control_send_error(c, id, "GenericError", "%s", err->message);
        return;
    }
    const struct ControlCommand *def = find_command(name);
    if (!c->negotiated && (!def || !def->in_negotiation)) {
        vd_control_send_error(c, id, "CommandNotFound",
                              "Expecting capabilities negotiation with 'qmp_capabilities' before command '%s'",
                              name);
    } else if (!def) {
        vd_control_send_error(c, id, "CommandNotFound", "The command %s has not been found", name);
    } else if (!check_args(def, args, &err)) {
        vd_control_send_error(c, id, "GenericError", "%s: %s", name, err->message);
    } else {
        ControlCmd *cmd = g_new0(ControlCmd, 1);
        cmd->client = vd_control_client_ref(c);
        cmd->id = id ? json_node_copy(id) : NULL;
        cmd->args = g_steal_pointer(&args);
        cmd->name = def->name;
        c->busy = true;
        def->fn(cmd);
    }
    g_clear_pointer(&args, json_object_unref);
}
