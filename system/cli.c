/* cli.c - parse the vdisk-vmm command line. */
#include "system/cli.h"

#include "system/control.h"
#include "system/machine.h"
#include "system/migration.h"
#include "system/qtest.h"
#include "util/options.h"

#include <string.h>

#define CLI_ERROR(errp, ...) g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, __VA_ARGS__)

static const char usage_text[] =
    "Usage: vdisk-vmm [OPTION]...\n"
    "The vdisk machine: RAM, a PCI host bridge, a 16550A serial port, and the disks\n"
    "given with --drive, driven by a qtest-like protocol.\n"
    "\n"
    "  -m, --memory SIZE      guest RAM (default 128M; suffix K, M, G; no suffix = MiB;\n"
    "                         2M to 3G, a multiple of 4K)\n"
    "  --drive SPEC           add a disk (repeatable); SPEC is comma-separated key=value:\n"
    "                           if=ide|scsi|virtio|none  device interface (default ide;\n"
    "                                               none: a backend without a device)\n"
    "                           index=N             IDE position 0-3 (channel N/2, unit N%2)\n"
    "                                               or SCSI LUN\n"
    "                           id=NAME             drive id (default drive<N>)\n"
    "                           serial=S            serial number (up to 20 characters)\n"
    "                           num-queues=N        virtio queues (1-64)\n"
    "                         every other key goes to the block backend: file=IMAGE,\n"
    "                         format=raw, cache=writeback|none|writethrough|directsync|unsafe,\n"
    "                         aio=, read-only=on, wt-policy=fua|dsync, driver=null,size=...\n"
    "                         (write ,, for a comma inside a value)\n"
    "  --qtest stdio|unix:PATH|unix:PATH,server\n"
    "                         serve the qtest-like protocol (docs/qtest-protocol.md)\n"
    "  --control unix:PATH    serve the QMP control socket on PATH (docs/control.md);\n"
    "  --qmp unix:PATH,server the same, in QEMU's spelling\n"
    "  --dump-dtb FILE        write the flattened device tree to FILE and exit\n"
    "  --serial FILE          append the serial port's output to FILE (default: discard)\n"
    "  --incoming unix:PATH|fd:N\n"
    "                         be a migration destination: open the drives inactive\n"
    "                         (active=off) and wait for the source's stream there\n"
    "                         (docs/migration.md)\n"
    "  --incoming-timeout S   give up, exit status 1, when no stream arrived within S\n"
    "                         seconds (default 60)\n"
    "  -h, --help             show this help and exit\n"
    "  --version              show the version and exit\n"
    "\n"
    "Every option is given at most once, except --drive.  Exit status: 0 on success,\n"
    "--help and --version; 1 when something fails to open or run; 2 for a bad\n"
    "command line (nothing is opened then).\n"
    "\n"
    "Without --drive, a temporary 64 MiB image is attached as if=virtio,id=demo-virtio\n"
    "and another as if=ide,id=demo-ide; both are deleted at exit.\n"
    "Without --qtest, --control or --dump-dtb, the machine is built, described and torn down.\n";

void vd_vmm_options_init(VdVmmOptions *o)
{
    memset(o, 0, sizeof(*o));
    o->ram_size = VD_MACHINE_DEFAULT_RAM;
    o->incoming_timeout = VD_INCOMING_DEFAULT_TIMEOUT_S;
    o->drives = g_ptr_array_new_with_free_func((GDestroyNotify)vd_drive_spec_free);
}

void vd_vmm_options_clear(VdVmmOptions *o)
{
    g_clear_pointer(&o->drives, g_ptr_array_unref);
    g_clear_pointer(&o->qtest, g_free);
    g_clear_pointer(&o->control, g_free);
    g_clear_pointer(&o->dump_dtb, g_free);
    g_clear_pointer(&o->serial_log, g_free);
    g_clear_pointer(&o->incoming, g_free);
}

/* -m SIZE */
static bool opt_memory(void *opts, const char *value, GError **errp)
{
    VdVmmOptions *o = opts;
    uint64_t size;
    if (!vd_parse_size("-m", value, 20, &size, errp)) {
        return false;
    }
    if (size < VD_RAM_MIN || size > VD_RAM_MAX || size % 4096) {
        CLI_ERROR(errp, "-m %s: RAM must be a multiple of 4K from 2M to 3G "
                  "(the virtio-mmio window starts at 0xfeb00000)", value);
        return false;
    }
    o->ram_size = size;
    return true;
}

/* --drive SPEC: checked here (with the drives before it), opened later by the machine. */
static bool opt_drive(void *opts, const char *value, GError **errp)
{
    VdVmmOptions *o = opts;
    VdDriveSpec *d = vd_drive_spec_parse(value, errp);
    if (!d || !vd_drive_spec_check_unique(d, o->drives, errp)) {
        vd_drive_spec_free(d);
        g_prefix_error(errp, "--drive %s: ", value);
        return false;
    }
    g_ptr_array_add(o->drives, d);
    return true;
}

/* --qtest TRANSPORT */
static bool opt_qtest(void *opts, const char *value, GError **errp)
{
    VdVmmOptions *o = opts;
    if (!vd_qtest_spec_valid(value, errp)) {
        return false;
    }
    g_free(o->qtest);
    o->qtest = g_strdup(value);
    return true;
}

/* --control/--qmp SPEC */
static bool opt_control(void *opts, const char *value, GError **errp)
{
    VdVmmOptions *o = opts;
    if (!vd_control_spec_valid(value, errp)) {
        return false;
    }
    g_free(o->control);
    o->control = g_strdup(value);
    return true;
}

/* Store a non-empty file name. */
static bool set_file(char **field, const char *opt, const char *value, GError **errp)
{
    if (!*value) {
        CLI_ERROR(errp, "%s needs a file name", opt);
        return false;
    }
    g_free(*field);
    *field = g_strdup(value);
    return true;
}

/* --dump-dtb FILE */
static bool opt_dump_dtb(void *opts, const char *value, GError **errp)
{
    return set_file(&((VdVmmOptions *)opts)->dump_dtb, "--dump-dtb", value, errp);
}

/* --serial FILE */
static bool opt_serial(void *opts, const char *value, GError **errp)
{
    return set_file(&((VdVmmOptions *)opts)->serial_log, "--serial", value, errp);
}

/* --incoming URI: checked here, listened on once the machine is built. */
static bool opt_incoming(void *opts, const char *value, GError **errp)
{
    VdVmmOptions *o = opts;
    VdMigrationUri u;
    if (!vd_migration_uri_parse(value, &u, errp)) {
        g_prefix_error(errp, "--incoming: ");
        return false;
    }
    vd_migration_uri_clear(&u);
    g_free(o->incoming);
    o->incoming = g_strdup(value);
    return true;
}

/* --incoming-timeout SECONDS (1..86400) */
static bool opt_incoming_timeout(void *opts, const char *value, GError **errp)
{
    return vd_parse_uint("--incoming-timeout", value, 1, 86400, &((VdVmmOptions *)opts)->incoming_timeout, errp);
}

/* The option table (--help and --version are the convention's, system/cmdline.h). */
static const VdCliOption cli_options[] = {
    { "memory", "m", true, false, opt_memory },
    { "drive", NULL, true, true, opt_drive },
    { "qtest", NULL, true, false, opt_qtest },
    { "control", "qmp", true, false, opt_control },
    { "dump-dtb", NULL, true, false, opt_dump_dtb },
    { "serial", NULL, true, false, opt_serial },
    { "incoming", NULL, true, false, opt_incoming },
    { "incoming-timeout", NULL, true, false, opt_incoming_timeout },
};

const VdCliTool vd_vmm_cli = {
    .name = "vdisk-vmm",
    .usage = usage_text,
    .options = cli_options,
    .n_options = G_N_ELEMENTS(cli_options),
};
