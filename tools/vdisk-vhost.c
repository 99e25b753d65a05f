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
#include "util/options.h"

#include "system/control.h"

#include <glib-unix.h>

#include "system/cmdline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "Usage: vdisk-vhost --socket PATH --device virtio-blk|virtio-scsi --drive SPEC [OPTION]...\n"
    "Serve a vdisk device to a VMM over vhost-user (the VMM is the front end).\n"
    "\n"
    "  --socket PATH          unix socket to listen on (a stale socket file is replaced;\n"
    "                         removed at exit)\n"
    "  --socket-mode MODE     octal permissions of the socket file (e.g. 0660)\n"
    "  --socket-group GROUP   group (name or gid) owning the socket file\n"
    "  --fd N                 listen on inherited descriptor N instead of --socket\n"
    "                         (also: systemd socket activation, LISTEN_FDS=1)\n"
    "  --pidfile PATH         write the pid to PATH once serving (removed at exit)\n"
    "  --device KIND          virtio-blk (exactly one --drive) or virtio-scsi (one LUN\n"
    "                         per --drive, in order: LUN 0, 1, ...)\n"
    "  --drive SPEC           file=IMAGE,cache=writeback|none|writethrough|directsync|unsafe\n"
    "                         plus any other block backend key (format=raw, aio=,\n"
    "                         read-only=on, wt-policy=fua|dsync) and serial=S (1-20\n"
    "                         printable characters, no spaces, unique per process)\n"
    "                         (write ,, for a comma inside a value)\n"
    "  --num-queues N         request queues (virtio-blk 1-64, default 4;\n"
    "                         virtio-scsi 1-16, default 1)\n"
    "  --queue-size N         the smallest ring the front end uses, a power of two up to\n"
    "                         1024 (default 128, QEMU's default queue-size): rings of N\n"
    "                         to 1024 entries are taken; seg_max = N - 2\n"
    "  --stats-file PATH      keep the counters in PATH (rewritten on change, on\n"
    "                         SIGUSR1 and at exit); its directory must exist\n"
    "  --control unix:PATH    serve the QMP control socket on PATH (docs/control.md);\n"
    "                         --qmp unix:PATH,server is the same, in QEMU's spelling\n"
    "  --once                 exit after the first front end disconnects\n"
    "  -h, --help             show this help and exit\n"
    "  --version              show the version and exit\n"
    "\n"
    "Every option is given at most once, except --drive.\n"
    "SIGINT/SIGTERM: finish the requests in flight, write the stats, remove the socket\n"
    "file (not an inherited one) and the pidfile, exit 0.  SIGHUP: rewrite the stats file\n"
    "(as SIGUSR1; nothing is held open, so there is nothing to reopen); never exits.\n"
    "Readiness: once the socket accepts connections, --pidfile is written and, when\n"
    "NOTIFY_SOCKET is set, READY=1 is sent to it (sd_notify; @name is abstract).\n"
    "Exit status: 0 after SIGINT/SIGTERM, --help or --version; 1 when the drives,\n"
    "the device, the stats file or the socket cannot be set up; 2 for a bad command\n"
    "line (nothing is opened then).\n";

/* vdisk-vhost takes serial= of the device keys: --device, the --drive order and --num-queues say the rest. */
static const VdDriveRules drive_rules = {
    .keys = VD_DRIVE_KEY_SERIAL,
    .interface = NULL,
    .refusal = "not a vdisk-vhost key (its device keys: serial=; the device is --device, "
               "the LUN the --drive order, the queues --num-queues)",
};

/* --socket: a path (an empty one would be an abstract socket no front end can name). */
static bool opt_socket(void *opts, const char *arg, GError **errp)
{
    VdVhostOptions *o = opts;
    if (!*arg) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "--socket needs a path");
        return false;
    }
    o->socket = g_strdup(arg);
    return true;
}

/* --device: a name from the device table. */
static bool opt_device(void *opts, const char *arg, GError **errp)
{
    VdVhostOptions *o = opts;
    o->kind = vd_vhost_device_kind(arg);
    if (!o->kind) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--device %s: unknown (virtio-blk or virtio-scsi)", arg);
        return false;
    }
    return true;
}

/* --drive (repeatable): checked in full (system/drive.h), against the drives before it too. */
static bool opt_drive(void *opts, const char *arg, GError **errp)
{
    VdVhostOptions *o = opts;
    VdDriveSpec *d = vd_drive_spec_parse_rules(arg, &drive_rules, errp);
    if (!d || !vd_drive_spec_check_unique(d, o->drives, errp)) {
        vd_drive_spec_free(d);
        g_prefix_error(errp, "--drive %s: ", arg);
        return false;
    }
    g_ptr_array_add(o->drives, d);
    return true;
}

/* --num-queues: 1..64 here; the device's own limit is checked with the others (check_options). */
static bool opt_num_queues(void *opts, const char *arg, GError **errp)
{
    return vd_cli_parse_uint("--num-queues", arg, 1, VD_DRIVE_MAX_QUEUES, &((VdVhostOptions *)opts)->num_queues,
                             errp);
}

/* --queue-size: a power of two */
static bool opt_queue_size(void *opts, const char *arg, GError **errp)
{
    VdVhostOptions *o = opts;
    if (!vd_cli_parse_uint("--queue-size", arg, 4, VD_VHOST_USER_MAX_RING, &o->queue_size, errp)) {
        return false;
    }
    if (o->queue_size & (o->queue_size - 1)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "--queue-size %s: not a power of two", arg);
        return false;
    }
    return true;
}

/* --stats-file: a path (whether it can be written is checked at start: check_stats_file). */
static bool opt_stats_file(void *opts, const char *arg, GError **errp)
{
    VdVhostOptions *o = opts;
    if (!*arg) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "--stats-file needs a path");
        return false;
    }
    o->stats_file = g_strdup(arg);
    return true;
}

/* --control/--qmp */
static bool opt_control(void *opts, const char *arg, GError **errp)
{
    VdVhostOptions *o = opts;
    g_free(o->control);
    o->control = g_strdup(arg);
    return vd_control_spec_valid(arg, errp);
}

/* --once */
static bool opt_once(void *opts, const char *arg, GError **errp)
{
    ((VdVhostOptions *)opts)->once = true;
    return true;
}

/* --socket-mode, --socket-group, --fd, --pidfile: vdisk-vhost-daemon.c. */
static bool opt_socket_mode(void *opts, const char *arg, GError **errp)
{
    return vd_vhost_parse_socket_mode(opts, arg, errp);
}

/* --socket-group GROUP */
static bool opt_socket_group(void *opts, const char *arg, GError **errp)
{
    return vd_vhost_parse_socket_group(opts, arg, errp);
}

/* --fd N */
static bool opt_fd(void *opts, const char *arg, GError **errp)
{
    return vd_vhost_parse_fd(opts, arg, errp);
}

/* --pidfile PATH */
static bool opt_pidfile(void *opts, const char *arg, GError **errp)
{
    VdVhostOptions *o = opts;
    if (!*arg) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "--pidfile needs a path");
        return false;
    }
    o->pidfile = g_strdup(arg);
    return true;
}

/* The option table (--help and --version are the convention's, system/cmdline.h). */
static const VdCliOption options[] = {
    { "socket", NULL, true, false, opt_socket },
    { "device", NULL, true, false, opt_device },
    { "drive", NULL, true, true, opt_drive },
    { "num-queues", NULL, true, false, opt_num_queues },
    { "queue-size", NULL, true, false, opt_queue_size },
    { "stats-file", NULL, true, false, opt_stats_file },
    { "once", NULL, false, false, opt_once },
    { "control", "qmp", true, false, opt_control },
    { "socket-mode", NULL, true, false, opt_socket_mode },
    { "socket-group", NULL, true, false, opt_socket_group },
    { "fd", NULL, true, false, opt_fd },
    { "pidfile", NULL, true, false, opt_pidfile },
};

/* Checks across options: the required ones, and the device's limits. */
static bool check_options(void *opts, GError **errp)
{
    VdVhostOptions *o = opts;
    if (!vd_vhost_take_listen_fds(o, errp)) {
        return false;
    }
    if (o->socket && o->listen_fd >= 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "--socket and --fd: give one of them");
        return false;
    }
    if (o->listen_fd >= 0 && (o->socket_mode >= 0 || o->socket_gid >= 0)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--socket-mode/--socket-group: only for a --socket we create (set them where %s is made)",
                    o->activated ? "the .socket unit's socket" : "the --fd socket");
        return false;
    }
    if ((!o->socket && o->listen_fd < 0) || !o->kind || o->drives->len == 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--socket (or --fd, or LISTEN_FDS), --device and --drive are required");
        return false;
    }
    if (o->drives->len > o->kind->max_drives) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "--drive: %s takes %s %u (got %u)",
                    o->kind->name, o->kind->max_drives == 1 ? "exactly" : "at most", o->kind->max_drives,
                    o->drives->len);
        return false;
    }
    if (o->num_queues > o->kind->max_queues) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "--num-queues %u: %s takes at most %u",
                    o->num_queues, o->kind->name, o->kind->max_queues);
        return false;
    }
    return true;
}

static const VdCliTool vhost_cli = {
    .name = "vdisk-vhost",
    .usage = usage_text,
    .options = options,
    .n_options = G_N_ELEMENTS(options),
    .check = check_options,
};

/* At start: the stats file's directory exists and is writable, and the path is not a directory. */
static bool check_stats_file(const char *path, GError **errp)
{
    g_autofree char *dir = g_path_get_dirname(path);
    const char *problem = NULL;
    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        problem = "is a directory";
    } else if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        problem = "its directory does not exist";
    } else if (access(dir, W_OK | X_OK) < 0) {
        problem = g_strerror(errno);
    }
    if (problem) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "--stats-file %s: %s", path, problem);
        return false;
    }
    return true;
}

static VdVhostApp app;

/*
 * Replace path with the text: a temporary file renamed over it, so a reader
 * sees the old text or the new one.  Never fsync: this runs on the I/O loop
 * every 200 ms while the counters move, and the file is a view of them, not
 * data.  (GLib's G_FILE_SET_CONTENTS_CONSISTENT syncs the file and its
 * directory: two journal commits that stalled the loop and queued behind the
 * guest's I/O on the same file system.)
 */
static bool write_atomically(const char *path, const GString *text, GError **errp)
{
    g_autofree char *tmp = g_strdup_printf("%s.XXXXXX", path);
    int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "%s: %s", tmp, g_strerror(errno));
        return false;
    }
    /* A regular file takes it in one write; a short one means the file system is full. */
    ssize_t n = write(fd, text->str, text->len);
    int err = n < 0 ? errno : (gsize)n < text->len ? ENOSPC : 0;
    if (close(fd) < 0 && !err) {
        err = errno;
    }
    if (!err && rename(tmp, path) < 0) {
        err = errno;
    }
    if (err) {
        unlink(tmp);
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err), "%s: %s", path, g_strerror(err));
        return false;
    }
    return true;
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

/* Server callback: cb once the device has nothing in flight. */
static void app_drain(void *opaque, VdDrainFunc *cb, void *cb_opaque)
{
    VdVhostApp *a = opaque;
    a->opts.kind->drain(a, cb, cb_opaque);
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

/* SIGUSR1 (and SIGHUP): rewrite the stats file now. */
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

/* Build the device and serve until SIGINT/SIGTERM (or --once), then drain; false: failed to start. */
static bool run(VdVhostApp *a, GError **errp)
{
    if (a->opts.stats_file && !check_stats_file(a->opts.stats_file, errp)) {
        return false;
    }
    a->ctx = g_main_context_default();
    if (!a->opts.kind->create(a, errp)) {
        return false;
    }
    VdControlServer *control = NULL;
    if (a->opts.control && !(control = control_start(a, errp))) {
        a->opts.kind->destroy(a);
        return false;
    }
    if (!vd_vhost_listen(a, &app_ops, errp)) {
        vd_control_free(control);
        a->opts.kind->destroy(a);
        return false;
    }
    for (guint i = 0; i < a->backends->len; i++) {
        vd_vhost_user_server_add_image(a->server, a->backends->pdata[i]);   /* the migration hand-over */
    }
    a->loop = g_main_loop_new(a->ctx, FALSE);
    guint tick = g_timeout_add(200, stats_tick, a);
    guint s1 = g_unix_signal_add(SIGUSR1, on_sigusr1, a);
    guint s2 = g_unix_signal_add(SIGINT, on_term, a);
    guint s3 = g_unix_signal_add(SIGTERM, on_term, a);
    guint s4 = g_unix_signal_add(SIGHUP, on_sigusr1, a);   /* never fatal: a stats rewrite */
    stats_write(a, true);
    g_message("vdisk-vhost: serving %s on %s", a->opts.kind->name,
              a->opts.socket ? a->opts.socket : a->opts.activated ? "the systemd socket" : "--fd");
    g_autoptr(GError) ready_err = NULL;
    if (vd_vhost_announce_ready(a, &ready_err)) {
        g_main_loop_run(a->loop);
    } else {
        g_propagate_error(errp, g_steal_pointer(&ready_err));
    }
    vd_vhost_announce_stopping(a);
    vd_control_free(control);
    vd_vhost_user_server_free(a->server);   /* drains and resets if a front end is attached */
    a->server = NULL;
    if (a->opts.stats_file) {
        /* one last time, from the final counters (the server is gone: keep its last line) */
        g_autoptr(GString) s = g_string_new(a->last_stats ? a->last_stats : "");
        char *nl = strchr(s->str, '\n');
        g_string_truncate(s, nl ? (gsize)(nl - s->str + 1) : 0);
        a->opts.kind->format_stats(a, s);
        g_autoptr(GError) err = NULL;
        if (!write_atomically(a->opts.stats_file, s, &err)) {
            g_warning("stats file %s: %s", a->opts.stats_file, err->message);
        }
    }
    g_source_remove(tick);
    g_source_remove(s1);
    g_source_remove(s2);
    g_source_remove(s3);
    g_source_remove(s4);
    a->opts.kind->destroy(a);
    g_main_loop_unref(a->loop);
    return errp == NULL || *errp == NULL;
}

/* Parse (exit 0 or 2 per system/cmdline.h), then run (exit 0, or 1 when something could not be set up). */
int main(int argc, char **argv)
{
    VdVhostApp *a = &app;
    g_autoptr(GError) err = NULL;
    int status;
    a->opts.drives = g_ptr_array_new_with_free_func((GDestroyNotify)vd_drive_spec_free);
    a->opts.queue_size = 128;   /* QEMU's and Cloud Hypervisor's default ring size */
    a->opts.socket_mode = a->opts.socket_gid = a->opts.listen_fd = -1;
    if (vd_cli_start(&vhost_cli, &a->opts, argc, argv, &status)) {
        status = VD_EXIT_OK;
        if (!run(a, &err)) {
            fprintf(stderr, "vdisk-vhost: %s\n", err->message);
            status = VD_EXIT_FAILURE;
        }
    }
    g_free(a->last_stats);
    g_free(a->opts.socket);
    g_free(a->opts.stats_file);
    g_free(a->opts.control);
    g_free(a->opts.pidfile);
    g_ptr_array_unref(a->opts.drives);
    return status;
}
