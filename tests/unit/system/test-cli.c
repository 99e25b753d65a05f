/* test-cli.c - the vdisk-vmm command line and --drive option strings. */
#include "system/cli.h"
#include "system/machine.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

/* Sizes: suffixes in either case, the default unit, and refusals. */
static void test_sizes(void **state)
{
    static const struct { const char *str; unsigned shift; uint64_t bytes; } good[] = {
        { "256M", 0, 256ull << 20 }, { "1G", 0, 1ull << 30 }, { "4k", 0, 4096 }, { "512", 0, 512 },
        { "256", 20, 256ull << 20 }, { "7b", 20, 7 }, { "2T", 0, 2ull << 40 }, { "0", 20, 0 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        uint64_t v = 1;
        assert_true(vd_parse_size(good[i].str, good[i].shift, &v, NULL));
        assert_int_equal(v, good[i].bytes);
    }
    static const char *const bad[] = { "", "M", "0x10", "-1", "1.5G", "12Q", "1MB", " 1M", "99999999999999999999",
                                       "16777216T" };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        GError *err = NULL;
        uint64_t v = 42;
        assert_false(vd_parse_size(bad[i], 0, &v, &err));
        assert_non_null(strstr(err->message, "is not a size"));
        assert_int_equal(v, 42);
        g_error_free(err);
    }
}

/* Parse an argument list given as a NULL-terminated vector; returns the error message or NULL. */
static char *parse(VdVmmOptions *o, const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, "vdisk-vmm");
    for (const char *const *a = args; *a; a++) {
        g_ptr_array_add(argv, (char *)*a);
    }
    GError *err = NULL;
    vd_vmm_options_init(o);
    if (vd_vmm_parse_args(o, argv->len, (char **)argv->pdata, &err)) {
        return NULL;
    }
    char *msg = g_strdup(err->message);
    g_error_free(err);
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
    assert_string_equal(g_ptr_array_index(o.drives, 1), "driver=null,size=1M");
    assert_string_equal(o.qtest, "unix:/tmp/q.sock,server");
    assert_string_equal(o.dump_dtb, "x.dtb");
    assert_string_equal(o.serial_log, "s.log");
    assert_false(o.help);
    vd_vmm_options_clear(&o);

    const char *defaults[] = { "-h", "--memory=1024", NULL };
    assert_null(parse(&o, defaults));
    assert_true(o.help);
    assert_int_equal(o.ram_size, 1ull << 30); /* no suffix: MiB, as QEMU's -m */
    assert_null(o.qtest);
    vd_vmm_options_clear(&o);
    assert_non_null(strstr(vd_vmm_usage(), "--drive SPEC"));

    const char *control[] = { "--control", "unix:/tmp/c.sock", NULL };
    assert_null(parse(&o, control));
    assert_string_equal(o.control, "unix:/tmp/c.sock");
    vd_vmm_options_clear(&o);
    const char *qmp[] = { "-qmp", "unix:/tmp/c.sock,server,wait=off", NULL }; /* QEMU's spelling */
    assert_null(parse(&o, qmp));
    assert_string_equal(o.control, "unix:/tmp/c.sock,server,wait=off");
    vd_vmm_options_clear(&o);
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
        { { "-m", "lots" }, "-m: 'lots' is not a size" },
        { { "--qtest", "tcp:1234" }, "--qtest tcp:1234: expected stdio" },
        { { "--qtest", "unix:" }, "the socket path must be non-empty" },
        { { "--dump-dtb=" }, "--dump-dtb needs a file name" },
        { { "--control", "tcp:4444" }, "--control tcp:4444: expected unix:PATH" },
        { { "--qmp", "unix:/x,server,wait=on" }, "unknown flag 'wait=on'" },
        { { "--drive", "if=floppy,file=x" }, "--drive if=floppy,file=x: if=floppy: unknown interface" },
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
        { "file=a,", "'' is not of the form key=value" },
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_good_args),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_drive_split),
        cmocka_unit_test(test_drive_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
