/*
 * test-protocol.c - the qtest-like server and the vdisk-vmm command line
 * under hostile input: pipelining, overlong lines, NUL bytes, random bytes,
 * end of file mid-line, unix-socket transports, bad options, --dump-dtb,
 * --serial, temporary demo images, and SIGTERM.
 */
#include "qtest-client.h"

#include <errno.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define DRIVE "--drive driver=null,size=1M,if=none,id=drive0"

/* Read the next reply without sending anything. */
static char *next_reply(VdQtest *q)
{
    return vd_qtest_raw(q, "", 0);
}

/* Commands written in one go are answered one reply each, in order. */
static void test_pipelined(void **state)
{
    VdQtest *q = vd_qtest_start(DRIVE);
    g_autoptr(GString) batch = g_string_new(NULL);
    for (unsigned i = 0; i < 500; i++) {
        g_string_append_printf(batch, "outb 0x3ff 0x%x\ninb 0x3ff\n", i & 0xff);
    }
    g_free(vd_qtest_raw(q, batch->str, batch->len)); /* the first outb's OK */
    for (unsigned i = 0; i < 500; i++) {
        if (i) {
            g_autofree char *ok = next_reply(q);
            assert_string_equal(ok, "OK");
        }
        g_autofree char *in = next_reply(q);
        g_autofree char *want = g_strdup_printf("OK 0x%04x", i & 0xff);
        assert_string_equal(in, want);
    }
    assert_int_equal(vd_qtest_quit(q), 0);
}

/* A line over the limit gets one FAIL; the lines around it still work. */
static void test_overlong_line(void **state)
{
    VdQtest *q = vd_qtest_start(DRIVE);
    vd_qtest_set_timeout(q, 60000);
    GString *big = g_string_new("outb 0x3ff 0x44\nwrite 0 1 0x");
    g_string_set_size(big, (64u << 20) + 4096);
    memset(big->str + 28, '1', big->len - 28);
    g_string_append(big, "\ninb 0x3ff\n");
    g_autofree char *first = vd_qtest_raw(q, big->str, big->len);
    g_string_free(big, TRUE);
    assert_string_equal(first, "OK");
    g_autofree char *fail = next_reply(q);
    assert_string_equal(fail, "FAIL line longer than 67108864 bytes");
    g_autofree char *after = next_reply(q);
    assert_string_equal(after, "OK 0x0044");
    assert_int_equal(vd_qtest_quit(q), 0);
}

/* NUL bytes, carriage returns, empty lines. */
static void test_odd_bytes(void **state)
{
    VdQtest *q = vd_qtest_start(DRIVE);
    g_autofree char *nul = vd_qtest_raw(q, "inb 0x3fd\0junk\n", 15);
    assert_string_equal(nul, "FAIL line contains a NUL byte");
    g_autofree char *cr = vd_qtest_raw(q, "inb 0x3fd\r\n", 11);
    assert_string_equal(cr, "OK 0x0060");
    g_autofree char *empty = vd_qtest_raw(q, "\n", 1);
    assert_string_equal(empty, "FAIL empty command");
    g_autofree char *blank = vd_qtest_raw(q, "  \t \n", 5);
    assert_string_equal(blank, "FAIL empty command");
    assert_int_equal(vd_qtest_quit(q), 0);
}

/* Random lines of random bytes: exactly one OK/FAIL reply each, and the machine still works. */
static void test_random_lines(void **state)
{
    VdQtest *q = vd_qtest_start(DRIVE);
    GRand *rand = g_rand_new_with_seed(20261121);
    static const char *const words[] = { "outb", "inl", "readq", "write", "b64write", "memset", "read",
                                         "clock_step", "trace", "inject", "drain", "0x", "-1", "drive0",
                                         "99999999999999999999", "0xffffffffffffffff", "AA==", "on" };
    unsigned fails = 0;
    for (unsigned i = 0; i < 3000; i++) {
        g_autoptr(GString) line = g_string_new(NULL);
        unsigned len = g_rand_int_range(rand, 0, 12);
        for (unsigned j = 0; j < len; j++) {
            if (g_rand_boolean(rand)) {
                g_string_append(line, words[g_rand_int_range(rand, 0, G_N_ELEMENTS(words))]);
                g_string_append_c(line, ' ');
            } else {
                char c = g_rand_int_range(rand, 1, 256);
                g_string_append_c(line, c == '\n' ? ' ' : c);
            }
        }
        g_string_append_c(line, '\n');
        g_autofree char *reply = vd_qtest_raw(q, line->str, line->len);
        assert_true(g_str_has_prefix(reply, "OK") || g_str_has_prefix(reply, "FAIL"));
        fails += g_str_has_prefix(reply, "FAIL");
    }
    g_rand_free(rand);
    assert_true(fails > 2500); /* nearly all of them are nonsense */
    vd_qtest_writel(q, 0x100, 0x600d);
    assert_int_equal(vd_qtest_readl(q, 0x100), 0x600d);
    assert_int_equal(vd_qtest_quit(q), 0);
}

/* End of input in the middle of a line: the VMM leaves cleanly. */
static void test_eof_midline(void **state)
{
    VdQtest *q = vd_qtest_start(DRIVE);
    vd_qtest_outb(q, 0x3ff, 1);
    vd_qtest_send(q, "outb 0x3ff", 10); /* no newline: never executed */
    assert_int_equal(vd_qtest_quit(q), 0);
}

/* Run vdisk-vmm with arguments to completion; its exit status, stdout and stderr. */
static int run_vmm(const char *const *args, char **envp, char **out, char **err)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, (char *)vd_qtest_vmm_path());
    for (const char *const *a = args; *a; a++) {
        g_ptr_array_add(argv, (char *)*a);
    }
    g_ptr_array_add(argv, NULL);
    int status;
    assert_true(g_spawn_sync(NULL, (char **)argv->pdata, envp, 0, NULL, NULL, out, err, &status, NULL));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Every bad option: exit status 1, one clear line on stderr naming it, nothing on stdout. */
static void test_cli_errors(void **state)
{
    static const struct { const char *args[5]; const char *message; } cases[] = {
        { { "--frobnicate" }, "vdisk-vmm: unknown option '--frobnicate' (see --help)\n" },
        { { "disk.img" }, "vdisk-vmm: unexpected argument 'disk.img'" },
        { { "-m", "64X" }, "vdisk-vmm: -m=64X: not a size" },
        { { "-m", "8G" }, "vdisk-vmm: -m 8G: RAM must be a multiple of 4K from 2M to 3G" },
        { { "--drive" }, "vdisk-vmm: option '--drive' needs a value" },
        { { "--drive", "if=cdrom,file=x" }, "vdisk-vmm: --drive if=cdrom,file=x: if=cdrom: unknown interface" },
        { { "--drive", "driver=null,size=1M,if=none,bogus=1" }, "bogus" },
        { { "--drive", "file=/nonexistent/disk.img,if=none" }, "/nonexistent/disk.img" },
        { { "--drive", "driver=null,size=1M,if=none,id=a", "--drive", "driver=null,size=1M,if=none,id=a" },
          "id=a: a drive with this id already exists" },
        { { "--qtest", "tcp:localhost:1" }, "vdisk-vmm: --qtest tcp:localhost:1: expected stdio" },
        { { "--qtest", "unix:/nonexistent/dir/sock", "--drive", "driver=null,size=1M,if=none" }, "cannot connect to /nonexistent/dir/sock" },
        { { "--dump-dtb", "/nonexistent/dir/x.dtb", "--drive", "driver=null,size=1M,if=none" }, "--dump-dtb: " },
        { { "--serial", "/nonexistent/dir/log", "--drive", "driver=null,size=1M,if=none" }, "--serial /nonexistent/dir/log: No such file or directory" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *out = NULL, *err = NULL;
        int status = run_vmm(cases[i].args, NULL, &out, &err);
        if (status != 1 || !strstr(err, cases[i].message) || out[0]) {
            fail_msg("case %zu (%s): status %d, stderr '%s', stdout '%s'", i, cases[i].args[0], status, err, out);
        }
        /* One line: the message, not a dump of usage or a crash report. */
        if ((size_t)(strchr(err, '\n') - err + 1) != strlen(err)) {
            fail_msg("case %zu: more than one line: '%s'", i, err);
        }
    }
    g_autofree char *out = NULL, *err = NULL;
    assert_int_equal(run_vmm((const char *[]){ "--help", NULL }, NULL, &out, &err), 0);
    assert_true(g_str_has_prefix(out, "Usage: vdisk-vmm"));
    assert_string_equal(err, "");
}

/* --dump-dtb writes a blob that dtc decompiles without a warning. */
static void test_dump_dtb(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("vdisk-dtb-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "machine.dtb", NULL);
    g_autofree char *out = NULL, *err = NULL;
    /* Every kind of device: two drives share the primary IDE node, two LUNs the virtio-scsi node. */
    const char *args[] = { "-m", "256M", "--dump-dtb", path,
                           "--drive", "driver=null,size=1M,if=virtio,id=vda",
                           "--drive", "driver=null,size=1M,if=ide,id=hd0",
                           "--drive", "driver=null,size=1M,if=ide,id=hd1",
                           "--drive", "driver=null,size=1M,if=ide,index=2,id=hd2",
                           "--drive", "driver=null,size=1M,if=scsi,id=sd0",
                           "--drive", "driver=null,size=1M,if=scsi,id=sd1",
                           "--drive", "driver=null,size=1M,if=virtio,id=vdb", NULL };
    if (run_vmm(args, NULL, &out, &err) != 0) {
        fail_msg("vdisk-vmm --dump-dtb failed: %s", err);
    }
    const char *dtc = g_getenv("DTC");
    if (dtc && *dtc) {
        g_autofree char *dts = NULL, *warn = NULL;
        int status;
        const char *dargv[] = { dtc, "-I", "dtb", "-O", "dts", path, NULL };
        assert_true(g_spawn_sync(NULL, (char **)dargv, NULL, 0, NULL, NULL, &dts, &warn, &status, NULL));
        assert_string_equal(warn, "");
        assert_true(g_spawn_check_wait_status(status, NULL));
        static const char *const expect[] = {
            "memory@0 {\n\t\tdevice_type = \"memory\";\n\t\treg = <0x00 0x00 0x00 0x10000000>;",
            "serial@i3f8 {\n\t\t\tcompatible = \"ns16550a\";\n\t\t\treg = <0x01 0x3f8 0x08>;\n"
            "\t\t\tinterrupts = <0x04>;",
            "ide@i1f0 {", "reg = <0x01 0x1f0 0x08 0x01 0x3f6 0x01>;\n\t\t\tinterrupts = <0x0e>;\n"
            "\t\t\tvdisk,drives = \"hd0\\0hd1\";",
            "ide@i170 {", "reg = <0x01 0x170 0x08 0x01 0x376 0x01>;\n\t\t\tinterrupts = <0x0f>;\n"
            "\t\t\tvdisk,drives = \"hd2\";",
            "virtio_mmio@feb00000 {\n\t\tcompatible = \"virtio,mmio\";\n\t\treg = <0x00 0xfeb00000 0x00 0x200>;\n"
            "\t\tinterrupts = <0x10>;\n\t\tvdisk,drives = \"vda\";",
            "virtio_mmio@feb00200 {\n\t\tcompatible = \"virtio,mmio\";\n\t\treg = <0x00 0xfeb00200 0x00 0x200>;\n"
            "\t\tinterrupts = <0x11>;\n\t\tvdisk,drives = \"sd0\\0sd1\";",
            "virtio_mmio@feb00400 {", "interrupts = <0x12>;\n\t\tvdisk,drives = \"vdb\";",
            "pci-host@icf8 {",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(expect); i++) {
            if (!strstr(dts, expect[i])) {
                fail_msg("'%s' is missing from:\n%s", expect[i], dts);
            }
        }
    }
    unlink(path);
    rmdir(dir);
}

/* Count directory entries. */
static unsigned count_files(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    unsigned n = 0;
    while (g_dir_read_name(d)) {
        n++;
    }
    g_dir_close(d);
    return n;
}

/* Without --drive: two 64 MiB temporary images exist while the VMM runs, none after. */
static void test_demo_images(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("vdisk-demo-XXXXXX", NULL);
    g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "TMPDIR", dir, TRUE);
    g_autofree char *out = NULL, *err = NULL;
    assert_int_equal(run_vmm((const char *[]){ NULL }, env, &out, &err), 0);
    assert_int_equal(count_files(dir), 0);
    /* Both demo drives attach: no "continuing without" note. */
    assert_null(strstr(err, "continuing without"));

    g_setenv("TMPDIR", dir, TRUE);
    VdQtest *q = vd_qtest_start(NULL);
    g_unsetenv("TMPDIR");
    g_free(vd_qtest_ok(q, "endianness")); /* the machine is up */
    assert_int_equal(count_files(dir), 2);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 64 << 20);
        assert_true(g_str_has_prefix(name, "vdisk-demo-") && g_str_has_suffix(name, ".img"));
    }
    g_dir_close(d);
    /* SIGTERM ends the session cleanly, and the images go too. */
    kill(vd_qtest_pid(q), SIGTERM);
    assert_int_equal(vd_qtest_quit(q), 0);
    assert_int_equal(count_files(dir), 0);
    rmdir(dir);
}

/* --serial: transmitted bytes land in the file; loopback bytes do not. */
static void test_serial_log(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("vdisk-serial-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "serial.log", NULL);
    const char *args[] = { "--drive", "driver=null,size=1M,if=none", "--serial", path, NULL };
    VdQtest *q = vd_qtest_startv(args);
    for (const char *p = "hi\n"; *p; p++) {
        vd_qtest_outb(q, 0x3f8, *p);
    }
    vd_qtest_outb(q, 0x3fc, 0x10); /* loopback */
    vd_qtest_outb(q, 0x3f8, 'X');
    assert_int_equal(vd_qtest_inb(q, 0x3f8), 'X');
    assert_int_equal(vd_qtest_quit(q), 0);
    g_autofree char *text = NULL;
    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    assert_string_equal(text, "hi\n");
    unlink(path);
    rmdir(dir);
}

/* Exchange one command over a connected socket. */
static void socket_roundtrip(int fd)
{
    assert_int_equal(write(fd, "endianness\n", 11), 11);
    char buf[64] = { 0 };
    size_t got = 0;
    while (got < 10) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
        assert_true(n > 0);
        got += n;
    }
    assert_string_equal(buf, "OK little\n");
}

/* Start vdisk-vmm in the background with a --qtest transport. */
static GPid spawn_vmm(const char *transport)
{
    const char *argv[] = { vd_qtest_vmm_path(), "--drive", "driver=null,size=1M,if=none", "--qtest", transport, NULL };
    GPid pid;
    assert_true(g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, NULL));
    return pid;
}

/* Wait for a child and return its exit status. */
static int reap(GPid pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* unix:PATH (the VMM connects, as QEMU does) and unix:PATH,server (the VMM listens). */
static void test_unix_sockets(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("vdisk-sock-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "qtest.sock", NULL);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));

    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    g_autofree char *client = g_strdup_printf("unix:%s", path);
    GPid pid = spawn_vmm(client);
    int fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    socket_roundtrip(fd);
    close(fd);
    close(lfd);
    unlink(path);
    assert_int_equal(reap(pid), 0);

    g_autofree char *server = g_strdup_printf("unix:%s,server", path);
    pid = spawn_vmm(server);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    int tries = 0;
    while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && tries++ < 1000) {
        g_usleep(5000);
    }
    assert_true(tries < 1000);
    socket_roundtrip(fd);
    close(fd);
    assert_int_equal(reap(pid), 0);
    assert_false(g_file_test(path, G_FILE_TEST_EXISTS)); /* the VMM removed its socket */
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_overlong_line),
        cmocka_unit_test(test_odd_bytes),
        cmocka_unit_test(test_random_lines),
        cmocka_unit_test(test_eof_midline),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_dump_dtb),
        cmocka_unit_test(test_demo_images),
        cmocka_unit_test(test_serial_log),
        cmocka_unit_test(test_unix_sockets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
