/*
 * test-aio-fallback.c - where io_uring cannot be set up (an old kernel, a
 * seccomp sandbox), the default engine falls back to the thread pool and
 * still works, while an explicit aio=io_uring fails with a clear message.
 * A seccomp filter installed before any thread exists makes io_uring_setup
 * fail with ENOSYS for this whole process.
 */
#include "block-test-util.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static TempImage scratch;
static uint8_t buf[4096];

/* Deny io_uring_setup with ENOSYS, as a kernel without io_uring would. */
static int deny_io_uring(void **state)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = G_N_ELEMENTS(filter), .filter = filter };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        return -1;
    }
    temp_image_create(&scratch, "disk.img", 1 << 20);
    return 0;
}

static int cleanup(void **state)
{
    temp_image_remove(&scratch);
    return 0;
}

/* The default engine falls back to threads, and durable writes still work. */
static void test_default_falls_back(void **state)
{
    g_autofree char *opts = g_strdup_printf("file=%s", scratch.path);
    VdBlockBackend *blk = open_ok(opts);
    assert_int_equal(vd_blk_aio(blk), VD_AIO_THREADS);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, sizeof(buf), VD_REQ_FUA), 0);
    VdBlockStats s = stats_of(blk);
    assert_int_equal(s.host_rwf_dsync_writes, 1);
    assert_int_equal(s.uring_ops, 0);
    vd_blk_close(blk);
}

/* Asking for io_uring explicitly fails and says what to do instead. */
static void test_explicit_io_uring_fails(void **state)
{
    g_autofree char *opts = g_strdup_printf("file=%s,aio=io_uring", scratch.path);
    GError *err = NULL;
    assert_null(vd_blk_open(opts, NULL, &err));
    assert_non_null(strstr(err->message, "aio=io_uring: io_uring_queue_init: Function not implemented"));
    assert_non_null(strstr(err->message, "use aio=threads"));
    g_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_falls_back),
        cmocka_unit_test(test_explicit_io_uring_fails),
    };
    return cmocka_run_group_tests_name("block-aio-fallback", tests, deny_io_uring, cleanup);
}
