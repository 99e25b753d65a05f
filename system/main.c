/* main.c - vdisk-vmm: build the machine from the command line and serve it. */
#include "system/cli.h"
#include "system/control.h"
#include "system/machine.h"
#include "system/migration.h"
#include "system/qtest.h"
#include "util/options.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEMO_IMAGE_SIZE (64ll << 20)

/* The demo drives used when the command line has no --drive. */
static const struct DemoDrive {
    const char *interface;
    const char *id;
} demo_drives[] = {
    { "virtio", "demo-virtio" },
    { "ide", "demo-ide" },
};

typedef struct Vmm {
    VdVmmOptions opts;
    GMainContext *ctx;
    VdMachine *m;
    GPtrArray *temp_images;   /* paths to unlink at exit */
    FILE *serial_log;
    VdIncoming *incoming;     /* --incoming: waiting for the stream, or NULL */
    bool quit;
    bool failed;              /* the run failed after serving started (a refused --incoming) */
} Vmm;

/* Print an error in the tool's format. */
static void report(const char *prefix, const GError *err)
{
    fprintf(stderr, "vdisk-vmm: %s%s\n", prefix, err->message);
}

/* Serial sink: append to the --serial file. */
static void serial_to_file(void *opaque, uint8_t byte)
{
    FILE *f = opaque;
    fputc(byte, f);
    if (byte == '\n') {
        fflush(f);
    }
}

/* Create an empty sparse image in $TMPDIR; its path is remembered for unlinking. */
static char *create_temp_image(Vmm *v, GError **errp)
{
    char *path = g_build_filename(g_get_tmp_dir(), "vdisk-demo-XXXXXX.img", NULL);
    int fd = mkostemps(path, 4, O_CLOEXEC);
    if (fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "cannot create a temporary image %s: %s",
                    path, g_strerror(errno));
        g_free(path);
        return NULL;
    }
    g_ptr_array_add(v->temp_images, path);
    if (ftruncate(fd, DEMO_IMAGE_SIZE) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "cannot size %s: %s", path, g_strerror(errno));
        close(fd);
        return NULL;
    }
    close(fd);
    return path;
}

/* Parse a --drive string and attach it; the machine owns it on success. */
static bool add_drive(Vmm *v, const char *spec_str, GError **errp)
{
    VdDriveSpec *d = vd_drive_spec_parse(spec_str, errp);
    if (!d) {
        return false;
    }
    if (!vd_machine_add_drive(v->m, d, errp)) {
        vd_drive_spec_free(d);
        return false;
    }
    return true;
}

/* No --drive: attach temporary images; a device model missing from the build is a note. */
static bool add_demo_drives(Vmm *v)
{
    for (size_t i = 0; i < G_N_ELEMENTS(demo_drives); i++) {
        g_autoptr(GError) err = NULL;
        const char *path = create_temp_image(v, &err);
        if (!path) {
            report("", err);
            return false;
        }
        g_autoptr(GString) spec = g_string_new(NULL);
        vd_opts_append(spec, "file", path);
        g_string_append_printf(spec, ",format=raw,if=%s,id=%s", demo_drives[i].interface, demo_drives[i].id);
        if (!add_drive(v, spec->str, &err)) {
            if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED)) {
                report("demo drive: ", err);
                return false;
            }
            fprintf(stderr, "vdisk-vmm: note: %s; continuing without %s\n", err->message, demo_drives[i].id);
        }
    }
    return true;
}

/* --dump-dtb: write the FDT. */
static bool dump_dtb(Vmm *v, GError **errp)
{
    size_t size;
    g_autofree void *fdt = vd_machine_build_fdt(v->m, &size, errp);
    return fdt && g_file_set_contents(v->opts.dump_dtb, fdt, size, errp);
}

/* Neither --qtest nor --dump-dtb: describe the machine on stdout. */
static void describe(Vmm *v)
{
    printf("vdisk machine: RAM 0x0+0x%" G_GINT64_MODIFIER "x\n", v->m->ram_size);
    for (guint i = 0; i < v->m->devices->len; i++) {
        const VdDeviceInfo *d = &g_array_index(v->m->devices, VdDeviceInfo, i);
        printf("  %-12s %s 0x%" G_GINT64_MODIFIER "x irq %d  %s\n", d->name,
               d->space == VD_SPACE_PIO ? "port" : "mmio", d->base, d->irq, d->description ? d->description : "");
    }
    for (guint i = 0; i < v->m->drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(v->m->drives, i);
        printf("  drive %s: if=%s index=%d driver=%s file=%s, %" G_GINT64_FORMAT " bytes, cache=%s%s\n", d->id,
               d->interface, d->index, vd_blk_driver_name(d->blk), vd_blk_filename(d->blk), vd_blk_length(d->blk),
               vd_cache_mode_name(vd_blk_cache_mode(d->blk)), vd_blk_is_read_only(d->blk) ? ", read-only" : "");
    }
}

/* SIGINT/SIGTERM/SIGHUP: leave the loop so that images are closed and temporary files removed (QEMU too shuts down on SIGHUP). */
static gboolean on_signal(gpointer opaque)
{
    ((Vmm *)opaque)->quit = true;
    return G_SOURCE_CONTINUE;
}

/* Control socket quit: leave the loop as a signal does. */
static void control_quit(void *opaque)
{
    ((Vmm *)opaque)->quit = true;
}

/* Control socket migrate: the machine migrates to uri (system/migration.h). */
static bool control_migrate(void *opaque, const char *uri, GError **errp)
{
    return vd_migrate(((Vmm *)opaque)->m, uri, errp);
}

/* Control socket query-migrate: the last migration's status name and error. */
static const char *control_query_migrate(void *opaque, const char **error)
{
    return vd_migration_status_name(vd_migration_status(((Vmm *)opaque)->m, error));
}

static const VdControlOps control_ops = {
    .quit = control_quit, .migrate = control_migrate, .query_migrate = control_query_migrate,
};

/* --control: listen, with every drive known by its id. */
static VdControlServer *control_start(Vmm *v, GError **errp)
{
    VdControlServer *c = vd_control_new(v->ctx, &control_ops, v);
    for (guint i = 0; i < v->m->drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(v->m->drives, i);
        vd_control_add_drive(c, d->id, d->blk);
    }
    if (!vd_control_listen(c, v->opts.control, errp)) {
        vd_control_free(c);
        return NULL;
    }
    return c;
}

/* The incoming migration ended: go on running the guest, or fail the run. */
static void incoming_done(void *opaque, const GError *err)
{
    Vmm *v = opaque;
    if (err) {
        report("", err);
        v->failed = v->quit = true;
    }
}

/* --incoming: the drives are opened inactive (QEMU's active=off), unless the option says otherwise. */
static bool mark_incoming_drives(Vmm *v, GError **errp)
{
    for (guint i = 0; i < v->opts.drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(v->opts.drives, i);
        g_autoptr(GPtrArray) items = vd_opts_split(d->backend_options, errp);
        if (!items) {
            return false;
        }
        bool given = false;
        for (guint k = 0; k < items->len; k++) {
            given |= strcmp(((VdOpt *)g_ptr_array_index(items, k))->key, "active") == 0;
        }
        if (!given) {
            char *opts = g_strconcat(d->backend_options, *d->backend_options ? "," : "", "active=off", NULL);
            g_free(d->backend_options);
            d->backend_options = opts;
        }
    }
    return true;
}

/* Serve qtest and/or the control socket until the qtest client goes away, quit, or a signal. */
static bool serve(Vmm *v, GError **errp)
{
    /* Signals first: a client that sees the control socket may signal at once. */
    int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    GSource *sources[G_N_ELEMENTS(sigs)];
    for (size_t i = 0; i < G_N_ELEMENTS(sigs); i++) {
        sources[i] = g_unix_signal_source_new(sigs[i]);
        g_source_set_callback(sources[i], on_signal, v, NULL);
        g_source_attach(sources[i], v->ctx);
    }
    VdControlServer *ctl = v->opts.control ? control_start(v, errp) : NULL;
    VdQtestServer *s = NULL;
    bool ok = !v->opts.control || ctl;
    if (ok && v->opts.qtest) {
        ok = (s = vd_qtest_server_open(v->m, v->opts.qtest, errp)) != NULL;
    }
    while (ok && !v->quit && !(s && vd_qtest_server_done(s))) {
        g_main_context_iteration(v->ctx, TRUE);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(sigs); i++) {
        g_source_destroy(sources[i]);
        g_source_unref(sources[i]);
    }
    vd_qtest_server_free(s);
    vd_control_free(ctl);
    return ok;
}

/* Everything after option parsing; false on error (already reported). */
static bool run(Vmm *v)
{
    g_autoptr(GError) err = NULL;
    v->m = vd_machine_new(v->opts.ram_size, v->ctx, &err);
    if (!v->m) {
        report("", err);
        return false;
    }
    if (v->opts.serial_log) {
        v->serial_log = fopen(v->opts.serial_log, "ae");
        if (!v->serial_log) {
            fprintf(stderr, "vdisk-vmm: --serial %s: %s\n", v->opts.serial_log, g_strerror(errno));
            return false;
        }
        v->m->serial_out = serial_to_file;
        v->m->serial_opaque = v->serial_log;
    }
    if (v->opts.incoming && !mark_incoming_drives(v, &err)) {
        report("--incoming: ", err);
        return false;
    }
    for (guint i = 0; i < v->opts.drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(v->opts.drives, i);
        if (!vd_machine_add_drive(v->m, d, &err)) {
            g_autofree char *prefix = g_strdup_printf("--drive %s: ", d->text);
            report(prefix, err);
            return false;
        }
        v->opts.drives->pdata[i] = NULL;    /* the machine's now */
    }
    if (!v->opts.drives->len && !add_demo_drives(v)) {
        return false;
    }
    if (v->opts.dump_dtb) {
        if (!dump_dtb(v, &err)) {
            report("--dump-dtb: ", err);
            return false;
        }
        return true;
    }
    if (v->opts.incoming) {
        v->incoming = vd_incoming_new(v->m, v->opts.incoming, v->opts.incoming_timeout, incoming_done, v, &err);
        if (!v->incoming) {
            report("", err);
            return false;
        }
    }
    if (v->opts.qtest || v->opts.control || v->opts.incoming) {
        bool ok = serve(v, &err);
        g_clear_pointer(&v->incoming, vd_incoming_free);
        if (!ok) {
            report("", err);
            return false;
        }
        return !v->failed;
    }
    describe(v);
    return true;
}

/* Exit status: system/cmdline.h (0 ok, 1 run-time failure, 2 bad command line). */
int main(int argc, char **argv)
{
    Vmm v = { 0 };
    int status;
    signal(SIGPIPE, SIG_IGN);
    vd_vmm_options_init(&v.opts);
    if (!vd_cli_start(&vd_vmm_cli, &v.opts, argc, argv, &status)) {
        vd_vmm_options_clear(&v.opts);
        return status;
    }
    v.ctx = g_main_context_new();
    g_main_context_push_thread_default(v.ctx);
    v.temp_images = g_ptr_array_new_with_free_func(g_free);

    bool ok = run(&v);

    vd_machine_free(v.m);
    if (v.serial_log) {
        fclose(v.serial_log);
    }
    for (guint i = 0; i < v.temp_images->len; i++) {
        unlink(g_ptr_array_index(v.temp_images, i));
    }
    g_ptr_array_free(v.temp_images, TRUE);
    g_main_context_pop_thread_default(v.ctx);
    g_main_context_unref(v.ctx);
    vd_vmm_options_clear(&v.opts);
    return ok ? VD_EXIT_OK : VD_EXIT_FAILURE;
}
