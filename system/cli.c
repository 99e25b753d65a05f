/* cli.c - parse the vdisk-vmm command line. */
#include "system/cli.h"

#include "system/control.h"
#include "system/machine.h"
#include "system/qtest.h"

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
    "  -h, --help             show this help and exit\n"
    "\n"
    "Without --drive, a temporary 64 MiB image is attached as if=virtio,id=demo-virtio\n"
    "and another as if=ide,id=demo-ide; both are deleted at exit.\n"
    "Without --qtest, --control or --dump-dtb, the machine is built, described and torn down.\n";

const char *vd_vmm_usage(void)
{
    return usage_text;
}

void vd_vmm_options_init(VdVmmOptions *o)
{
    memset(o, 0, sizeof(*o));
    o->ram_size = VD_MACHINE_DEFAULT_RAM;
    o->drives = g_ptr_array_new_with_free_func(g_free);
}

void vd_vmm_options_clear(VdVmmOptions *o)
{
    g_clear_pointer(&o->drives, g_ptr_array_unref);
    g_clear_pointer(&o->qtest, g_free);
    g_clear_pointer(&o->control, g_free);
    g_clear_pointer(&o->dump_dtb, g_free);
    g_clear_pointer(&o->serial_log, g_free);
}

bool vd_parse_size(const char *str, unsigned default_shift, uint64_t *out, GError **errp)
{
    static const struct { char suffix; unsigned shift; } suffixes[] = {
        { 'b', 0 }, { 'k', 10 }, { 'm', 20 }, { 'g', 30 }, { 't', 40 },
    };
    size_t len = strlen(str), ndigits = strspn(str, "0123456789");
    unsigned shift = default_shift;
    bool ok = ndigits > 0 && (len == ndigits || len == ndigits + 1);
    if (ok && len == ndigits + 1) {
        ok = false;
        for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
            if (g_ascii_tolower(str[ndigits]) == suffixes[i].suffix) {
                shift = suffixes[i].shift;
                ok = true;
            }
        }
    }
    guint64 v = 0;
    g_autofree char *digits = g_strndup(str, ndigits);
    if (!ok || !g_ascii_string_to_unsigned(digits, 10, 0, UINT64_MAX >> shift, &v, NULL)) {
        CLI_ERROR(errp, "'%s' is not a size (digits with an optional suffix B, K, M, G or T)", str);
        return false;
    }
    *out = v << shift;
    return true;
}

/* -m SIZE */
static bool opt_memory(VdVmmOptions *o, const char *value, GError **errp)
{
    uint64_t size;
    if (!vd_parse_size(value, 20, &size, errp)) {
        g_prefix_error(errp, "-m: ");
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

/* --drive SPEC: checked here, opened later by the machine. */
static bool opt_drive(VdVmmOptions *o, const char *value, GError **errp)
{
    VdDriveSpec *d = vd_drive_spec_parse(value, errp);
    if (!d) {
        g_prefix_error(errp, "--drive %s: ", value);
        return false;
    }
    vd_drive_spec_free(d);
    g_ptr_array_add(o->drives, g_strdup(value));
    return true;
}

/* --qtest TRANSPORT */
static bool opt_qtest(VdVmmOptions *o, const char *value, GError **errp)
{
    if (!vd_qtest_spec_valid(value, errp)) {
        return false;
    }
    g_free(o->qtest);
    o->qtest = g_strdup(value);
    return true;
}

/* --control/--qmp SPEC */
static bool opt_control(VdVmmOptions *o, const char *value, GError **errp)
{
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
static bool opt_dump_dtb(VdVmmOptions *o, const char *value, GError **errp)
{
    return set_file(&o->dump_dtb, "--dump-dtb", value, errp);
}

/* --serial FILE */
static bool opt_serial(VdVmmOptions *o, const char *value, GError **errp)
{
    return set_file(&o->serial_log, "--serial", value, errp);
}

/* --help */
static bool opt_help(VdVmmOptions *o, const char *value, GError **errp)
{
    o->help = true;
    return true;
}

/* The option table: names without dashes; takes_value says whether a value follows. */
static const struct CliOption {
    const char *name;
    const char *alias;
    bool takes_value;
    bool (*apply)(VdVmmOptions *o, const char *value, GError **errp);
} cli_options[] = {
    { "memory", "m", true, opt_memory },
    { "drive", NULL, true, opt_drive },
    { "qtest", NULL, true, opt_qtest },
    { "control", "qmp", true, opt_control },
    { "dump-dtb", NULL, true, opt_dump_dtb },
    { "serial", NULL, true, opt_serial },
    { "help", "h", false, opt_help },
};

/* The table entry for an option name (dashes stripped), or NULL. */
static const struct CliOption *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < G_N_ELEMENTS(cli_options); i++) {
        const struct CliOption *opt = &cli_options[i];
        if ((strlen(opt->name) == len && strncmp(opt->name, name, len) == 0) ||
            (opt->alias && strlen(opt->alias) == len && strncmp(opt->alias, name, len) == 0)) {
            return opt;
        }
    }
    return NULL;
}

bool vd_vmm_parse_args(VdVmmOptions *o, int argc, char **argv, GError **errp)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            CLI_ERROR(errp, "unexpected argument '%s' (options start with -, see --help)", arg);
            return false;
        }
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const struct CliOption *opt = find_option(name, name_len);
        if (!opt) {
            CLI_ERROR(errp, "unknown option '%.*s' (see --help)", (int)(name + name_len - arg), arg);
            return false;
        }
        const char *value = NULL;
        if (opt->takes_value) {
            if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                CLI_ERROR(errp, "option '%s' needs a value (see --help)", arg);
                return false;
            }
        } else if (eq) {
            CLI_ERROR(errp, "option '%.*s' takes no value", (int)(name + name_len - arg), arg);
            return false;
        }
        if (!opt->apply(o, value, errp)) {
            return false;
        }
    }
    return true;
}
