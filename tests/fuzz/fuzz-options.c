/*
 * fuzz-options.c - libFuzzer target: the option parsers.  The first byte
 * picks the parser, the rest is its input:
 *   0: vd_blk_open("driver=null," + input)  (inputs naming another driver
 *      or a file are skipped: the fuzzer must not open host files);
 *   1: vd_drive_spec_parse (vdisk-vmm --drive), then vd_blk_open of the
 *      backend keys it leaves when they stay on the null driver;
 *   2: vd_vmm_parse_args with NUL-separated arguments;
 *   3: vd_parse_size;
 *   4: vd_vhost_split_drive (vdisk-vhost --drive), or the shared --drive parser once
 *      the command-line tables of include/system/cmdline.h are in the tree.
 * Oracles: no crash or sanitizer report, and every refusal carries one
 * non-empty error line that is not a stray errno text ("Success").
 */
#include "fuzz-common.h"
#include "system/cli.h"
#ifdef VD_FUZZ_CLI_TABLES
#include "system/cmdline.h"
#endif
#ifdef VD_FUZZ_UTIL_OPTIONS
#include "util/options.h"           /* vd_parse_size(key, value, ...) */
#endif
#include "system/machine.h"
#include "vdisk-vhost.h"

#include <string.h>

/* Texts an error must never be: strerror of a stale or garbage errno. */
static const char *const errno_junk[] = { "Success", "Unknown error" };

/* Check a refusal: an error set, one line, not an errno leftover. */
static void check_error(const char *parser, GError *err, const char *input)
{
    if (!err || !err->message[0]) {
        fz_fail("%s refused '%s' without an error message", parser, input);
    }
    if (strchr(err->message, '\n') && !strchr(input, '\n')) {   /* an echoed value may carry its own */
        fz_fail("%s: error for '%s' spans lines: %s", parser, input, err->message);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(errno_junk); i++) {
        if (g_str_has_prefix(err->message, errno_junk[i]) && !fz_known("blk-open-size-errno")) {
            fz_fail("%s: error for '%s' is a stray errno text: %s", parser, input, err->message);
        }
    }
    g_error_free(err);
}

/* True if an option string could reach a driver that touches the host. */
static bool touches_host(const char *s)
{
    return strstr(s, "file") || strstr(s, "driver");
}

/* Open (and close) a null backend with these extra options. */
static void try_open(const char *parser, const char *opts)
{
    if (touches_host(opts)) {
        return;
    }
    g_autofree char *full = g_strconcat("driver=null,", opts, NULL);
    GError *err = NULL;
    VdBlockBackend *blk = vd_blk_open(full, NULL, &err);
    if (blk) {
        vd_blk_close(blk);
    } else {
        check_error(parser, err, full);
    }
}

/* vdisk-vmm --drive: parse, then open what it hands to the block layer. */
static void drive_spec(const char *s)
{
    GError *err = NULL;
    VdDriveSpec *d = vd_drive_spec_parse(s, &err);
    if (!d) {
        check_error("vd_drive_spec_parse", err, s);
        return;
    }
    const char *rest = d->backend_options;
    if (rest && g_str_has_prefix(rest, "driver=null") && (rest[11] == ',' || !rest[11])) {
        try_open("vd_blk_open after --drive", rest + (rest[11] ? 12 : 11));
    }
    vd_drive_spec_free(d);
}

/* vdisk-vmm's whole command line, arguments separated by NUL bytes. */
static void vmm_args(const char *data, size_t size)
{
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(argv, g_strdup("vdisk-vmm"));
    for (size_t at = 0; at < size && argv->len < 64;) {
        size_t n = strnlen(data + at, size - at);
        g_ptr_array_add(argv, g_strndup(data + at, n));
        at += n + 1;
    }
    g_ptr_array_add(argv, NULL);
    VdVmmOptions o;
    vd_vmm_options_init(&o);
    GError *err = NULL;
#ifdef VD_FUZZ_CLI_TABLES
    VdCliAction action;
    bool ok = vd_cli_parse(&vd_vmm_cli, &o, argv->len - 1, (char **)argv->pdata, &action, &err);
#else
    bool ok = vd_vmm_parse_args(&o, argv->len - 1, (char **)argv->pdata, &err);
#endif
    if (!ok) {
        g_autofree char *line = g_strjoinv(" ", (char **)argv->pdata);
        check_error("vd_vmm_parse_args", err, line);
    }
    vd_vmm_options_clear(&o);
    g_ptr_array_unref(argv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: one parser run over the rest of the input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_init();
    if (size < 1 || size > 4096) {
        return 0;
    }
    g_autofree char *s = g_strndup((const char *)data + 1, size - 1);
    GError *err = NULL;
    switch (data[0] % 5) {
    case 0:
        try_open("vd_blk_open", s);
        break;
    case 1:
        drive_spec(s);
        break;
    case 2:
        vmm_args((const char *)data + 1, size - 1);
        break;
    case 3: {
        uint64_t v;
#ifdef VD_FUZZ_UTIL_OPTIONS
        bool ok = vd_parse_size("size", s, data[0] % 41, &v, &err);
#else
        bool ok = vd_parse_size(s, data[0] % 41, &v, &err);
#endif
        if (!ok) {
            check_error("vd_parse_size", err, s);
        }
        break;
    }
    default: {
#ifdef VD_FUZZ_CLI_TABLES
        drive_spec(s);    /* vdisk-vhost shares vdisk-vmm's --drive parser */
#else
        g_autofree char *backend = NULL, *serial = NULL;
        if (!vd_vhost_split_drive(s, &backend, &serial, &err)) {
            check_error("vd_vhost_split_drive", err, s);
        }
#endif
        break;
    }
    }
    return 0;
}
