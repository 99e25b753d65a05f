/* test-cli.c - the vdisk-vmm command line and --drive option strings. */
#include "system/cli.h"
#include "system/machine.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

/* Parse an argument list given as a NULL-terminated vector; returns the error message or NULL. */
static char *parse_action(VdVmmOptions *o, const char *const *args, VdCliAction *action)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, "vdisk-vmm");
    for (const char *const *a = args; *a; a++) {
        g_ptr_array_add(argv, (char *)*a);
    }
    GError *err = NULL;
    vd_vmm_options_init(o);
    if (vd_cli_parse(&vd_vmm_cli, o, argv->len, (char **)argv->pdata, action, &err)) {
        return NULL;
    }
    char *msg = g_strdup(err->message);
    g_error_free(err);
    return msg;
}

/* parse_action for a command line that must not ask for --help or --version. */
static char *parse(VdVmmOptions *o, const char *const *args)
{
    VdCliAction action = VD_CLI_RUN;
    char *msg = parse_action(o, args, &action);
    assert_int_equal(action, VD_CLI_RUN);
    return msg;
}

/* Options with one or two dashes, "=value" or a separate value, repeatable --drive. */
static void test_good_args(void **state)
{
    VdVmmOptions o;
    const char *args[] = { "-m", "256M", "--drive", "file=a.img,if=virtio", "-drive=driver=null,size=1M",
                           "--qtest", "unix:/tmp/q.sock,server", "--dump-dtb=x.dtb", "--serial", "s.log", NULL };
    assert_null(parse(&o, args));
    assert_int_equal(o.ram_size, 256ull << 20);
    assert_int_equal(o.drives->len, 2);
    assert_string_equal(((VdDriveSpec *)g_ptr_array_index(o.drives, 1))->text, "driver=null,size=1M");
    assert_string_equal(((VdDriveSpec *)g_ptr_array_index(o.drives, 0))->interface, "virtio");
    assert_string_equal(o.qtest, "unix:/tmp/q.sock,server");
    assert_string_equal(o.dump_dtb, "x.dtb");
    assert_string_equal(o.serial_log, "s.log");
    vd_vmm_options_clear(&o);

    const char *defaults[] = { "--memory=1024", NULL };
    assert_null(parse(&o, defaults));
    assert_int_equal(o.ram_size, 1ull << 30); /* no suffix: MiB, as QEMU's -m */
    assert_null(o.qtest);
    vd_vmm_options_clear(&o);
    assert_non_null(strstr(vd_vmm_cli.usage, "--drive SPEC"));

    const char *control[] = { "--control", "unix:/tmp/c.sock", NULL };
    assert_null(parse(&o, control));
    assert_string_equal(o.control, "unix:/tmp/c.sock");
    vd_vmm_options_clear(&o);
    const char *qmp[] = { "-qmp", "unix:/tmp/c.sock,server,wait=off", NULL }; /* QEMU's spelling */
    assert_null(parse(&o, qmp));
    assert_string_equal(o.control, "unix:/tmp/c.sock,server,wait=off");
    vd_vmm_options_clear(&o);
}

/* --help and --version end parsing at once (what follows them is not looked at); the rest before them is. */
static void test_help_version(void **state)
{
    static const struct { const char *args[4]; VdCliAction action; const char *message; } cases[] = {
        { { "-h" }, VD_CLI_HELP, NULL },
        { { "--help", "--bogus" }, VD_CLI_HELP, NULL },
        { { "--drive", "file=a", "--version", "x" }, VD_CLI_VERSION, NULL },
        { { "-version" }, VD_CLI_VERSION, NULL },
        { { "--bogus", "--help" }, VD_CLI_RUN, "unknown option '--bogus'" },
        { { "--version=1" }, VD_CLI_RUN, "option '--version' takes no value" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        VdVmmOptions o;
        VdCliAction action = VD_CLI_RUN;
        g_autofree char *msg = parse_action(&o, cases[i].args, &action);
        vd_vmm_options_clear(&o);
        if (action != cases[i].action || !msg != !cases[i].message || (msg && !strstr(msg, cases[i].message))) {
            fail_msg("case %zu: action %d, message '%s'", i, action, msg ? msg : "(none)");
        }
    }
    assert_non_null(strstr(vd_cli_version(), "."));
}

/* Every bad argument is refused with a message naming it. */
static void test_bad_args(void **state)
{
    static const struct { const char *args[4]; const char *message; } cases[] = {
        { { "--bogus" }, "unknown option '--bogus'" },
        { { "--bogus=1" }, "unknown option '--bogus'" },
        { { "disk.img" }, "unexpected argument 'disk.img'" },
        { { "-" }, "unexpected argument '-'" },
        { { "--drive" }, "option '--drive' needs a value" },
        { { "-m" }, "option '-m' needs a value" },
        { { "--help=yes" }, "option '--help' takes no value" },
        { { "-m", "4G" }, "-m 4G: RAM must be" },
        { { "-m", "1M" }, "-m 1M: RAM must be" },
        { { "-m", "3001K" }, "-m 3001K: RAM must be" },
        { { "-m", "lots" }, "-m=lots: not a size" },
        { { "--qtest", "tcp:1234" }, "--qtest tcp:1234: expected stdio" },
        { { "--qtest", "unix:" }, "the socket path must be non-empty" },
        { { "--dump-dtb=" }, "--dump-dtb needs a file name" },
        { { "--control", "tcp:4444" }, "--control tcp:4444: expected unix:PATH" },
        { { "--qmp", "unix:/x,server,wait=on" }, "unknown flag 'wait=on'" },
        { { "--drive", "if=floppy,file=x" }, "--drive if=floppy,file=x: if=floppy: unknown interface" },
        { { "-m", "1G", "--memory=2G" }, "option '--memory' is given twice" },
        { { "--qtest", "stdio", "-qtest=stdio" }, "option '-qtest' is given twice" },
        { { "--serial", "a", "--serial", "a" }, "option '--serial' is given twice" },
        { { "--drive", "file=a,serial=SN1", "--drive=file=b,serial=SN1" },
          "--drive file=b,serial=SN1: serial=SN1: a drive with this serial already exists" },
        { { "--drive", "file=a,id=x", "--drive", "file=b,id=x" }, "--drive file=b,id=x: id=x: a drive with this id" },
        { { "--drive", "file=a,cache=sometimes" }, "--drive file=a,cache=sometimes: invalid cache 'sometimes'" },
        { { "--drive", "file=a,bogus=1" }, "--drive file=a,bogus=1: unknown option 'bogus'" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        VdVmmOptions o;
        g_autofree char *msg = parse(&o, cases[i].args);
        vd_vmm_options_clear(&o);
        if (!msg || !strstr(msg, cases[i].message)) {
            fail_msg("case %zu: expected '%s', got '%s'", i, cases[i].message, msg ? msg : "(success)");
        }
    }
}

/* Device keys are split off; everything else reaches the backend unchanged, commas re-escaped. */
static void test_drive_split(void **state)
{
    GError *err = NULL;
    VdDriveSpec *d = vd_drive_spec_parse(
        "file=a,,b.img,if=virtio,cache=none,id=disk-1,serial=SN42,num-queues=4,aio=threads", &err);
    assert_non_null(d);
    assert_string_equal(d->backend_options, "file=a,,b.img,cache=none,aio=threads");
    assert_string_equal(d->interface, "virtio");
    assert_string_equal(d->id, "disk-1");
    assert_string_equal(d->serial, "SN42");
    assert_int_equal(d->num_queues, 4);
    assert_int_equal(d->index, -1);
    assert_string_equal(d->text, "file=a,,b.img,if=virtio,cache=none,id=disk-1,serial=SN42,num-queues=4,aio=threads");
    vd_drive_spec_free(d);

    d = vd_drive_spec_parse("file=x.img,index=3", &err);
    assert_string_equal(d->interface, "ide"); /* QEMU's default */
    assert_int_equal(d->index, 3);
    assert_null(d->id);
    assert_int_equal(d->num_queues, 1);
    vd_drive_spec_free(d);
}

/* Malformed drive strings: each message names the offending key or value. */
static void test_drive_errors(void **state)
{
    static const struct { const char *spec; const char *message; } cases[] = {
        { "", "empty drive specification" },
        { "file", "'file' is not of the form key=value" },
        { "=x", "'=x' is not of the form key=value" },
        { "file=a,", "empty option in 'file=a,'" },
        { "file=a,if=ide,if=ide", "if= is given twice" },
        { "file=a,index=x", "index=x: expected a number from 0 to 255" },
        { "file=a,index=-1", "index=-1: expected a number" },
        { "file=a,index=4", "index=4: IDE has 4 positions" },
        { "file=a,if=scsi,index=64", "index=64: a SCSI drive's index is its LUN" },
        { "file=a,if=virtio,index=0", "index= does not apply to if=virtio" },
        { "file=a,if=none,index=0", "index= does not apply to if=none" },
        { "file=a,id=1abc", "id=1abc: an id is 1-32 characters" },
        { "file=a,id=a b", "id=a b: an id is" },
        { "file=a,id=", "id=: an id is" },
        { "file=a,serial=123456789012345678901", "serial=123456789012345678901: a serial number is 1-20" },
        { "file=a,serial=a b", "serial=a b:" },
        { "file=a,serial=", "serial=: a serial number is 1-20" },
        { "file=a,serial=\x01x", "a serial number is 1-20 printable ASCII characters" },
        { "file=a,cache=sometimes", "invalid cache 'sometimes'" },
        { "file=a,if=virtio,foo=bar", "unknown option 'foo'" },
        { "file=a,if=virtio,num-queues=0", "num-queues=0: expected a number from 1 to 64" },
        { "file=a,if=virtio,num-queues=65", "num-queues=65: expected a number from 1 to 64" },
        { "file=a,num-queues=2", "num-queues= does not apply to if=ide" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        GError *err = NULL;
        VdDriveSpec *d = vd_drive_spec_parse(cases[i].spec, &err);
        if (d || !strstr(err->message, cases[i].message)) {
            fail_msg("case '%s': expected '%s', got '%s'", cases[i].spec, cases[i].message,
                     d ? "(success)" : err->message);
        }
        g_error_free(err);
    }
}

/* A tool's rules: the keys it does not take are refused by name, the others checked as vdisk-vmm checks them. */
static void test_drive_rules(void **state)
{
    static const VdDriveRules rules = { .keys = VD_DRIVE_KEY_SERIAL, .refusal = "not here" };
    static const struct { const char *spec; const char *message; } bad[] = {
        { "file=a,if=virtio", "if=virtio: not here" },
        { "file=a,if=floppy", "if=floppy: not here" },
        { "file=a,index=0", "index=0: not here" },
        { "file=a,id=x", "id=x: not here" },
        { "file=a,num-queues=2", "num-queues=2: not here" },
        { "file=a,serial=123456789012345678901", "a serial number is 1-20" },
        { "file=a,serial=a b", "serial=a b: a serial number" },
        { "file=a,serial=", "serial=: a serial number" },
        { "file=a,serial=x,serial=y", "serial= is given twice" },
        { "file=a,cache=sometimes", "invalid cache 'sometimes'" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        GError *err = NULL;
        VdDriveSpec *d = vd_drive_spec_parse_rules(bad[i].spec, &rules, &err);
        if (d || !strstr(err->message, bad[i].message)) {
            fail_msg("case '%s': expected '%s', got '%s'", bad[i].spec, bad[i].message, d ? "(success)" : err->message);
        }
        g_error_free(err);
    }
    VdDriveSpec *d = vd_drive_spec_parse_rules("file=a,,b,serial=12345678901234567890", &rules, NULL);
    assert_non_null(d);
    assert_string_equal(d->serial, "12345678901234567890"); /* 20: whole, never cut */
    assert_string_equal(d->backend_options, "file=a,,b");
    assert_null(d->interface);
    g_autoptr(GPtrArray) drives = g_ptr_array_new_with_free_func((GDestroyNotify)vd_drive_spec_free);
    g_ptr_array_add(drives, d);
    VdDriveSpec *same = vd_drive_spec_parse_rules("file=b,serial=12345678901234567890", &rules, NULL);
    GError *err = NULL;
    assert_false(vd_drive_spec_check_unique(same, drives, &err));
    assert_string_equal(err->message, "serial=12345678901234567890: a drive with this serial already exists");
    g_clear_error(&err);
    vd_drive_spec_free(same);
    VdDriveSpec *other = vd_drive_spec_parse_rules("file=b,serial=SN2", &rules, NULL);
    assert_true(vd_drive_spec_check_unique(other, drives, NULL));
    vd_drive_spec_free(other);
}

/* The shared unsigned parser takes digits only. */
static void test_parse_uint(void **state)
{
    static const char *const bad[] = { " 2", "+2", "2 ", "-1", "", "0x2", "2x", "65", "0", "99999999999" };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        GError *err = NULL;
        unsigned v = 42;
        if (vd_cli_parse_uint("--n", bad[i], 1, 64, &v, &err)) {
            fail_msg("'%s' accepted as %u", bad[i], v);
        }
        g_autofree char *want = g_strdup_printf("--n '%s': expected a number from 1 to 64", bad[i]);
        assert_string_equal(err->message, want);
        assert_int_equal(v, 42);
        g_error_free(err);
    }
    unsigned v = 0;
    assert_true(vd_cli_parse_uint("--n", "064", 1, 64, &v, NULL));
    assert_int_equal(v, 64);
}

/* Operand tool: each operand is appended to the GString, after a '|'. */
static bool take_operand(void *opts, const char *value, GError **errp)
{
    g_string_append_printf(opts, "|%s", value);
    return true;
}

/* Operand tool's -x: recorded as "x". */
static bool take_x(void *opts, const char *value, GError **errp)
{
    g_string_append(opts, "x");
    return true;
}

/* A tool with operands takes options up to the first operand or "--", then every argument as an operand. */
static void test_operands(void **state)
{
    static const VdCliOption options[] = { { "x", NULL, false, true, take_x } };
    static const VdCliTool tool = { .name = "t", .usage = "", .options = options, .n_options = 1,
                                    .operand = take_operand };
    static const struct { const char *args[5]; const char *result; } cases[] = {
        { { "-x", "FILE", "-x", "--bogus" }, "x|FILE|-x|--bogus" },
        { { "-x", "--", "-x" }, "x|-x" },
        { { "-", "-x" }, "|-|-x" },
        { { "FILE", "--" }, "|FILE|--" },
        { { "--bogus", "FILE" }, NULL },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_ptr_array_add(argv, "t");
        for (const char *const *a = cases[i].args; *a; a++) {
            g_ptr_array_add(argv, (char *)*a);
        }
        g_autoptr(GString) got = g_string_new(NULL);
        g_autoptr(GError) err = NULL;
        VdCliAction action;
        bool ok = vd_cli_parse(&tool, got, argv->len, (char **)argv->pdata, &action, &err);
        if (ok != !!cases[i].result || (ok && strcmp(got->str, cases[i].result) != 0)) {
            fail_msg("case %zu: got '%s' (%s)", i, got->str, err ? err->message : "ok");
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_args),
        cmocka_unit_test(test_help_version),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_drive_rules),
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_drive_split),
        cmocka_unit_test(test_drive_errors),
        cmocka_unit_test(test_operands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
