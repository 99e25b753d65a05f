/*
 * vdisk-vhost - serve a vdisk virtio-blk or virtio-scsi device to another
 * VMM (QEMU, Cloud Hypervisor) over a vhost-user unix socket.
 *
 *   vdisk-vhost --socket PATH --device virtio-blk --drive file=IMG,cache=MODE
 *   vdisk-vhost --socket PATH --device virtio-scsi --drive file=A,cache=none --drive file=B
 *
 * The counters of the device, of each drive's block backend and of the
 * vhost-user protocol can be read from outside with --stats-file (see
 * docs/vhost-user.md): the file is rewritten atomically (write + rename)
 * when a front end connects or disconnects, after a SET_CONFIG, within
 * 200 ms of any counter changing, on SIGUSR1, and at exit.
 */
#include "vdisk-vhost.h"

#include "system/control.h"

#include <glib-unix.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "Usage: vdisk-vhost --socket PATH --device virtio-blk|virtio-scsi --drive SPEC [OPTION]...\n"
    "Serve a vdisk device to a VMM over vhost-user (the VMM is the front end).\n"
    "\n"
    "  --socket PATH          unix socket to listen on (a stale socket file is replaced)\n"
    "  --device KIND          virtio-blk (exactly one --drive) or virtio-scsi (one LUN\n"
    "                         per --drive, in order: LUN 0, 1, ...)\n"
    "  --drive SPEC           file=IMAGE,cache=writeback|none|writethrough|directsync|unsafe\n"
    "                         plus any other block backend key (format=raw, aio=,\n"
    "                         read-only=on, wt-policy=fua|dsync) and serial=S\n"
    "                         (write ,, for a comma inside a value)\n"
    "  --num-queues N         request queues (virtio-blk 1-64, default 4;\n"
    "                         virtio-scsi 1-16, default 1)\n"
    "  --queue-size N         ring entries, a power of two (default 128); make it the\n"
    "                         front end's ring size (QEMU's queue-size defaults to 128):\n"
    "                         virtio-blk advertises seg_max = N - 2\n"
    "  --stats-file PATH      keep the counters in PATH (rewritten on change, on\n"
    "                         SIGUSR1 and at exit)\n"
    "  --control unix:PATH    serve the QMP control socket on PATH (docs/control.md);\n"
    "                         --qmp unix:PATH,server is the same, in QEMU's spelling\n"
    "  --once                 exit after the first front end disconnects\n"
    "  -h, --help             show this help and exit\n"
    "\n"
    "SIGINT/SIGTERM: finish the requests in flight, write the stats, exit 0.\n";

typedef bool OptionFunc(VdVhostOptions *o, const char *arg, GError **errp);

/* --socket */
static bool opt_socket(VdVhostOptions *o, const char *arg, GError **errp)
{
    g_free(o->socket);
    o->socket = g_strdup(arg);
    return true;
}

/* --device: a name from the device table. */
static bool opt_device(VdVhostOptions *o, const char *arg, GError **errp)
{
    o->kind = vd_vhost_device_kind(arg);
    if (!o->kind) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--device %s: unknown (virtio-blk or virtio-scsi)", arg);
        return false;
    }
    return true;
}

/* --drive (repeatable) */
static bool opt_drive(VdVhostOptions *o, const char *arg, GError **errp)
{
    g_ptr_array_add(o->drives, g_strdup(arg));
    return true;
}

/* Parse an unsigned decimal in [min, max]. */
static bool parse_uint(const char *name, const char *arg, unsigned min, unsigned max, unsigned *out,
                       GError **errp)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s %s: expected %u..%u", name, arg, min, max);
        return false;
    }
    *out = v;
    return true;
}

/* --num-queues */
static bool opt_num_queues(VdVhostOptions *o, const char *arg, GError **errp)
{
    return parse_uint("--num-queues", arg, 1, 64, &o->num_queues, errp);
}

/* --queue-size: a power of two */
static bool opt_queue_size(VdVhostOptions *o, const char *arg, GError **errp)
{
    if (!parse_uint("--queue-size", arg, 4, 32768, &o->queue_size, errp)) {
        return false;
    }
    if (o->queue_size & (o->queue_size - 1)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "--queue-size %s: not a power of two", arg);
        return false;
    }
    return true;
}

/* --stats-file */
static bool opt_stats_file(VdVhostOptions *o, const char *arg, GError **errp)
{
    g_free(o->stats_file);
    o->stats_file = g_strdup(arg);
    return true;
}

/* --control/--qmp */
static bool opt_control(VdVhostOptions *o, const char *arg, GError **errp)
{
    g_free(o->control);
    o->control = g_strdup(arg);
    return vd_control_spec_valid(arg, errp);
}

/* --once */
static bool opt_once(VdVhostOptions *o, const char *arg, GError **errp)
{
    o->once = true;
    return true;
}

/* --help */
static bool opt_help(VdVhostOptions *o, const char *arg, GError **errp)
{
    o->help = true;
    return true;
}

/* The option table: getopt entry and handler side by side. */
static const struct {
    struct option opt;
    OptionFunc *fn;
} options[] = {
    { { "socket", required_argument, NULL, 1 }, opt_socket },
    { { "device", required_argument, NULL, 2 }, opt_device },
    { { "drive", required_argument, NULL, 3 }, opt_drive },
    { { "num-queues", required_argument, NULL, 4 }, opt_num_queues },
    { { "queue-size", required_argument, NULL, 5 }, opt_queue_size },
    { { "stats-file", required_argument, NULL, 6 }, opt_stats_file },
    { { "once", no_argument, NULL, 7 }, opt_once },
    { { "control", required_argument, NULL, 8 }, opt_control },
    { { "qmp", required_argument, NULL, 9 }, opt_control },
    { { "help", no_argument, NULL, 'h' }, opt_help },
};

/* Parse argv into o; false with errp set on any error. */
static bool parse_args(int argc, char **argv, VdVhostOptions *o, GError **errp)
{
    struct option longopts[G_N_ELEMENTS(options) + 1];
    for (size_t i = 0; i < G_N_ELEMENTS(options); i++) {
        longopts[i] = options[i].opt;
    }
    memset(&longopts[G_N_ELEMENTS(options)], 0, sizeof(struct option));
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        size_t i = 0;
        while (i < G_N_ELEMENTS(options) && options[i].opt.val != c) {
            i++;
        }
        if (i == G_N_ELEMENTS(options)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "unknown option or missing argument: %s",
                        argv[optind - 1]);
            return false;
        }
        if (!options[i].fn(o, optarg, errp)) {
            return false;
        }
    }
    if (optind < argc) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "unexpected argument: %s", argv[optind]);
        return false;
    }
    if (o->help) {
        return true;
    }
    if (!o->socket || !o->kind || o->drives->len == 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "--socket, --device and --drive are required");
        return false;
    }
    return true;
}

static VdVhostApp app;

/* Replace path with the text (temporary file + rename; no fsync: readers only need consistency). */
static bool write_atomically(const char *path, const GString *text, GError **errp)
{
    return g_file_set_contents_full(path, text->str, text->len, G_FILE_SET_CONTENTS_CONSISTENT, 0644, errp);
}

/* Write the stats file atomically if its contents changed (or if forced). */
static void stats_write(VdVhostApp *a, bool force)
{
    if (!a->opts.stats_file) {
        return;
    }
    g_autoptr(GString) s = g_string_new(NULL);
    g_string_append(s, "vhost ");
    vd_vhost_user_format_stats(a->server, s);
    g_string_append(s, "\n");
    a->opts.kind->format_stats(a, s);
    if (!force && a->last_stats && strcmp(a->last_stats, s->str) == 0) {
        return;
    }
    g_autoptr(GError) err = NULL;
    if (!write_atomically(a->opts.stats_file, s, &err)) {
        g_warning("stats file %s: %s", a->opts.stats_file, err->message);
        return;
    }
    g_free(a->last_stats);
    a->last_stats = g_strdup(s->str);
}

/* Server callback: iterate until the device has nothing in flight. */
static void app_drain(void *opaque)
{
    VdVhostApp *a = opaque;
    a->opts.kind->drain(a);
}

/* Server callback: a front end came or went, or config changed. */
static void app_changed(void *opaque)
{
    VdVhostApp *a = opaque;
    stats_write(a, false);
    if (a->opts.once && a->server && !vd_vhost_user_connected(a->server) && a->seen_connection) {
        g_main_loop_quit(a->loop);
    }
    if (a->server && vd_vhost_user_connected(a->server)) {
        a->seen_connection = true;
    }
}

static const VdVhostUserDeviceOps app_ops = { .drain = app_drain, .changed = app_changed };

/* Control socket quit: leave the loop as SIGTERM does. */
static void control_quit(void *opaque)
{
    g_main_loop_quit(((VdVhostApp *)opaque)->loop);
}

static const VdControlOps control_ops = { .quit = control_quit };

/* --control: listen, with the drives known as drive0, drive1, ... (as in the stats file). */
static VdControlServer *control_start(VdVhostApp *a, GError **errp)
{
    VdControlServer *c = vd_control_new(a->ctx, &control_ops, a);
    for (guint i = 0; i < a->backends->len; i++) {
        g_autofree char *id = g_strdup_printf("drive%u", i);
        vd_control_add_drive(c, id, a->backends->pdata[i]);
    }
    if (!vd_control_listen(c, a->opts.control, errp)) {
        vd_control_free(c);
        return NULL;
    }
    return c;
}

/* Periodic stats refresh. */
static gboolean stats_tick(gpointer opaque)
{
    stats_write(opaque, false);
    return G_SOURCE_CONTINUE;
}

/* SIGUSR1: rewrite the stats file now. */
static gboolean on_sigusr1(gpointer opaque)
{
    stats_write(opaque, true);
    return G_SOURCE_CONTINUE;
}

/* SIGINT/SIGTERM: leave the loop; main drains and cleans up. */
static gboolean on_term(gpointer opaque)
{
    VdVhostApp *a = opaque;
    g_main_loop_quit(a->loop);
    return G_SOURCE_CONTINUE;
}

/* Parse, build the device, serve until SIGINT/SIGTERM (or --once), then drain and clean up. */
int main(int argc, char **argv)
{
    VdVhostApp *a = &app;
    g_autoptr(GError) err = NULL;
    a->opts.drives = g_ptr_array_new_with_free_func(g_free);
    a->opts.queue_size = 128;   /* QEMU's and Cloud Hypervisor's default ring size */
    if (!parse_args(argc, argv, &a->opts, &err)) {
        fprintf(stderr, "vdisk-vhost: %s\nTry 'vdisk-vhost --help'.\n", err->message);
        return 2;
    }
    if (a->opts.help) {
        fputs(usage_text, stdout);
        return 0;
    }
    a->ctx = g_main_context_default();
    if (!a->opts.kind->create(a, &err)) {
        fprintf(stderr, "vdisk-vhost: %s\n", err->message);
        return 1;
    }
    VdControlServer *control = NULL;
    if (a->opts.control && !(control = control_start(a, &err))) {
        fprintf(stderr, "vdisk-vhost: %s\n", err->message);
        a->opts.kind->destroy(a);
        return 1;
    }
    a->server = vd_vhost_user_server_new(a->opts.socket, a->vdev, &app_ops, a, a->ctx, &err);
    if (!a->server) {
        fprintf(stderr, "vdisk-vhost: %s\n", err->message);
        vd_control_free(control);
        a->opts.kind->destroy(a);
        return 1;
    }
    a->loop = g_main_loop_new(a->ctx, FALSE);
    guint tick = g_timeout_add(200, stats_tick, a);
    guint s1 = g_unix_signal_add(SIGUSR1, on_sigusr1, a);
    guint s2 = g_unix_signal_add(SIGINT, on_term, a);
    guint s3 = g_unix_signal_add(SIGTERM, on_term, a);
    stats_write(a, true);
    g_message("vdisk-vhost: serving %s on %s", a->opts.kind->name, a->opts.socket);
    g_main_loop_run(a->loop);
    vd_control_free(control);
    vd_vhost_user_server_free(a->server);   /* drains and resets if a front end is attached */
    a->server = NULL;
    a->opts.kind->drain(a);
    if (a->opts.stats_file) {
        /* one last time, from the final counters (the server is gone: keep its last line) */
        g_autoptr(GString) s = g_string_new(a->last_stats ? a->last_stats : "");
        char *nl = strchr(s->str, '\n');
        g_string_truncate(s, nl ? (gsize)(nl - s->str + 1) : 0);
        a->opts.kind->format_stats(a, s);
        if (!write_atomically(a->opts.stats_file, s, &err)) {
            g_warning("stats file %s: %s", a->opts.stats_file, err->message);
        }
    }
    g_source_remove(tick);
    g_source_remove(s1);
    g_source_remove(s2);
    g_source_remove(s3);
    a->opts.kind->destroy(a);
    g_main_loop_unref(a->loop);
    g_free(a->last_stats);
    g_free(a->opts.socket);
    g_free(a->opts.stats_file);
    g_free(a->opts.control);
    g_ptr_array_unref(a->opts.drives);
    return 0;
}
