/*
 * test-locking.c - image locks: vdisk against vdisk (two opens in one
 * process conflict, as OFD locks are per open file description), the
 * migration hand-over, locking=off, and vdisk against QEMU's own tools
 * (qemu-io, qemu-nbd), which must see vdisk's locks and vice versa.
 */
#include "block-test-util.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

static TempImage scratch;
static uint8_t buf[4096] __attribute__((aligned(4096)));

/* A fresh 1 MiB image for each test. */
static int setup(void **state)
{
    temp_image_create(&scratch, "disk.img", 1 << 20);
    return 0;
}

static int teardown(void **state)
{
    temp_image_remove(&scratch);
    return 0;
}

/* Open the scratch image with extra options; NULL and *msg set on failure. */
static VdBlockBackend *try_open(const char *extra, char **msg)
{
    g_autofree char *opts = g_strdup_printf("file=%s%s%s", scratch.path, *extra ? "," : "", extra);
    GError *err = NULL;
    VdBlockBackend *blk = vd_blk_open(opts, NULL, &err);
    *msg = err ? g_strdup(err->message) : NULL;
    g_clear_error(&err);
    return blk;
}

/* Open the scratch image with extra options; the test fails if it cannot. */
static VdBlockBackend *open_image(const char *extra)
{
    g_autofree char *opts = g_strdup_printf("file=%s%s%s", scratch.path, *extra ? "," : "", extra);
    return open_ok(opts);
}

/* The one-line conflict error for the scratch image. */
static char *conflict_msg(const char *mode, const char *why)
{
    return g_strdup_printf("file=%s: in use by another process for %s (%s); use locking=off to override", scratch.path,
                           mode, why);
}

/* Open must fail with exactly the conflict line for mode and why. */
static void expect_conflict(const char *extra, const char *mode, const char *why)
{
    g_autofree char *msg = NULL;
    VdBlockBackend *blk = try_open(extra, &msg);
    if (blk) {
        vd_blk_close(blk);
        fail_msg("open '%s' was allowed", extra);
    }
    g_autofree char *want = conflict_msg(mode, why);
    assert_string_equal(msg, want);
}

/* Two read-write opens in one process: the second is refused, naming the writer. */
static void test_two_writers(void **state)
{
    VdBlockBackend *a = open_image("");
    expect_conflict("", "writing", "Failed to get \"write\" lock");
    expect_conflict("aio=threads,cache=none", "writing", "Failed to get \"write\" lock");
    /* The refused open left nothing behind: once a closes, a writer opens. */
    vd_blk_close(a);
    VdBlockBackend *b = open_image("");
    vd_blk_close(b);
}

/* Readers share with readers; a reader and a writer exclude each other, both ways round. */
static void test_readers_and_writers(void **state)
{
    VdBlockBackend *r1 = open_image("read-only=on");
    VdBlockBackend *r2 = open_image("read-only=on");
    expect_conflict("", "reading", "Failed to get \"write\" lock");
    vd_blk_close(r1);
    vd_blk_close(r2);

    VdBlockBackend *w = open_image("");
    expect_conflict("read-only=on", "writing", "Failed to get shared \"write\" lock");
    vd_blk_close(w);
}

/* locking=off takes no lock and checks none, on either side; locking=on locks like auto. */
static void test_locking_off(void **state)
{
    VdBlockBackend *a = open_image("");
    VdBlockBackend *b = open_image("locking=off");
    vd_blk_close(b);
    vd_blk_close(a);

    a = open_image("locking=off");
    b = open_image("locking=on");
    expect_conflict("locking=auto", "writing", "Failed to get \"write\" lock");
    vd_blk_close(b);
    vd_blk_close(a);
}

/* Migration: inactivate lets another open write; invalidate_cache then fails until that writer is gone. */
static void test_inactivate_handover(void **state)
{
    g_autoptr(GError) err = NULL;
    VdBlockBackend *src = open_image("");
    assert_true(vd_blk_inactivate(src, &err));
    VdBlockBackend *dst = open_image("");
    assert_int_equal(vd_blk_pwrite_sync(dst, 0, buf, 4096, 0), 0);

    assert_false(vd_blk_invalidate_cache(src, &err));
    g_autofree char *want = conflict_msg("writing", "Failed to get \"write\" lock");
    assert_string_equal(err->message, want);
    g_clear_error(&err);
    /* Still inactive, and still not in dst's way. */
    assert_int_equal(vd_blk_pwrite_sync(src, 0, buf, 4096, 0), -EPERM);
    assert_int_equal(vd_blk_pwrite_sync(dst, 4096, buf, 4096, 0), 0);

    vd_blk_close(dst);
    assert_true(vd_blk_invalidate_cache(src, &err));
    assert_int_equal(vd_blk_pwrite_sync(src, 0, buf, 4096, 0), 0);
    expect_conflict("", "writing", "Failed to get \"write\" lock");
    vd_blk_close(src);
}

/* A destination opened with active=off coexists with the writing source, and takes over when it inactivates. */
static void test_incoming_destination(void **state)
{
    g_autoptr(GError) err = NULL;
    VdBlockBackend *src = open_image("");
    VdBlockBackend *dst = open_image("active=off");
    assert_int_equal(vd_blk_pwrite_sync(dst, 0, buf, 4096, 0), -EPERM);
    assert_int_equal(vd_blk_pread_sync(dst, 0, buf, 4096), 0);
    assert_false(vd_blk_invalidate_cache(dst, &err));
    g_autofree char *want = conflict_msg("writing", "Failed to get \"write\" lock");
    assert_string_equal(err->message, want);
    g_clear_error(&err);
    assert_int_equal(vd_blk_pwrite_sync(dst, 0, buf, 4096, 0), -EPERM);
    assert_int_equal(vd_blk_pwrite_sync(src, 0, buf, 4096, 0), 0);

    assert_true(vd_blk_inactivate(src, &err));
    assert_true(vd_blk_invalidate_cache(dst, &err));
    assert_int_equal(vd_blk_pwrite_sync(dst, 0, buf, 4096, 0), 0);
    assert_false(vd_blk_invalidate_cache(src, &err));
    vd_blk_close(src);
    vd_blk_close(dst);
}

/* ---- QEMU side by side ---- */

/* Full path of a QEMU tool, or NULL after printing why the test is skipped. */
static char *qemu_tool(const char *name)
{
    char *path = g_find_program_in_path(name);
    if (!path) {
        print_message("skipped: %s is not installed, so vdisk cannot be checked against QEMU's locks\n", name);
    }
    return path;
}

/* Run argv to the end; its exit status, with stderr in *err. */
static int run(const char *const *argv, char **err)
{
    int status = -1;
    GError *gerr = NULL;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, err, &status, &gerr)) {
        fail_msg("cannot run %s: %s", argv[0], gerr->message);
    }
    return g_spawn_check_wait_status(status, NULL) ? 0 : 1;
}

/* True once another open file description holds a lock on byte 101 (QEMU's "write" permission). */
static bool write_byte_held(void)
{
    int fd = open(scratch.path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 101, .l_len = 1 };
    assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
    close(fd);
    return fl.l_type != F_UNLCK;
}

/* Start argv in the background and wait until it holds the write lock; its pid. */
static GPid start_holder(const char *const *argv)
{
    GPid pid;
    GError *gerr = NULL;
    if (!g_spawn_async(NULL, (char **)argv, NULL,
                       G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                       NULL, &pid, &gerr)) {
        fail_msg("cannot start %s: %s", argv[0], gerr->message);
    }
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!write_byte_held()) {
        if (g_get_monotonic_time() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("%s never took the write lock", argv[0]);
        }
        g_usleep(10000);
    }
    return pid;
}

/* Stop a holder started by start_holder. */
static void stop_holder(GPid pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    g_spawn_close_pid(pid);
}

/* While vdisk holds the image, qemu-io may read but not write (QEMU's own error). */
static void test_qemu_io_against_vdisk(void **state)
{
    g_autofree char *qemu_io = qemu_tool("qemu-io");
    if (!qemu_io) {
        skip();
    }
    const char *write_argv[] = { qemu_io, "-f", "raw", "-c", "write 0 512", scratch.path, NULL };
    const char *read_argv[] = { qemu_io, "-r", "-f", "raw", "-c", "read 0 512", scratch.path, NULL };
    static const char *const holders[] = { "", "read-only=on", "cache=none,aio=threads" };
    for (size_t i = 0; i < G_N_ELEMENTS(holders); i++) {
        VdBlockBackend *blk = open_image(holders[i]);
        g_autofree char *err = NULL, *rerr = NULL;
        assert_int_not_equal(run(write_argv, &err), 0);
        if (!strstr(err, "Failed to get \"write\" lock")) {
            fail_msg("vdisk holding with '%s': qemu-io write said '%s'", holders[i], err);
        }
        assert_int_equal(run(read_argv, &rerr), 0);
        vd_blk_close(blk);
    }
    /* Inactive (migrated away): QEMU may take the image. */
    VdBlockBackend *blk = open_image("");
    g_autoptr(GError) gerr = NULL;
    assert_true(vd_blk_inactivate(blk, &gerr));
    g_autofree char *err = NULL;
    assert_int_equal(run(write_argv, &err), 0);
    vd_blk_close(blk);
    /* And with locking=off vdisk is invisible to QEMU. */
    blk = open_image("locking=off");
    g_autofree char *err2 = NULL;
    assert_int_equal(run(write_argv, &err2), 0);
    vd_blk_close(blk);
}

/* While QEMU (qemu-io, qemu-nbd) holds the image read-write, vdisk refuses to open it. */
static void test_vdisk_against_qemu(void **state)
{
    g_autofree char *qemu_io = qemu_tool("qemu-io");
    if (!qemu_io) {
        skip();
    }
    const char *io_argv[] = { qemu_io, "-f", "raw", "-c", "sleep 20000", scratch.path, NULL };
    GPid pid = start_holder(io_argv);
    expect_conflict("", "writing", "Failed to get shared \"write\" lock");
    expect_conflict("read-only=on", "writing", "Failed to get shared \"write\" lock");
    VdBlockBackend *blk = open_image("locking=off");
    vd_blk_close(blk);
    stop_holder(pid);
    blk = open_image("");
    vd_blk_close(blk);

    g_autofree char *qemu_nbd = g_find_program_in_path("qemu-nbd");
    if (!qemu_nbd) {
        print_message("qemu-nbd is not installed: checked against qemu-io only\n");
        return;
    }
    g_autofree char *sock = g_build_filename(scratch.dir, "nbd.sock", NULL);
    const char *nbd_argv[] = { qemu_nbd, "-f", "raw", "-k", sock, scratch.path, NULL };
    pid = start_holder(nbd_argv);
    expect_conflict("", "writing", "Failed to get shared \"write\" lock");
    stop_holder(pid);
    unlink(sock);
}

/* An unknown locking= value names the key and the accepted values. */
static void test_bad_locking_value(void **state)
{
    g_autofree char *msg = NULL;
    assert_null(try_open("locking=maybe", &msg));
    assert_string_equal(msg, "invalid locking 'maybe'; accepted values: auto, on, off");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_and_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locking_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inactivate_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incoming_destination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qemu_io_against_vdisk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vdisk_against_qemu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_locking_value, setup, teardown),
    };
    return cmocka_run_group_tests_name("block-locking", tests, NULL, NULL);
}
