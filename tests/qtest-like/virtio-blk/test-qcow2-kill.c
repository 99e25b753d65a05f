/*
 * test-qcow2-kill.c - seed 003 (docs/qcow2.md): with cache=unsafe a guest
 * writes into new clusters of a qcow2 image, sends FLUSH, and vdisk-vmm is
 * SIGKILLed.  cache=unsafe skips the host fdatasync but still runs stage 1,
 * which writes the L2 and refcount caches to the OS; so the killed process
 * leaves an image that `qemu-img check` finds clean and whose flushed data
 * reads back (`qemu-img convert -O raw`).  And a SIGTERM closes the image
 * clean: caches written out, dirty bit cleared.  Skips without qemu-img.
 */
#include "virtio-blk-driver.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define QSIZE    64
#define RAM_ALLOC_START 0x100000ull
#define RAM_ALLOC_END   0x4000000ull
#define WRITES 64
#define WRITE_BYTES 4096u
#define STRIDE_SECTORS 24577u   /* 12 MiB + 512 B: a new cluster, most in a new L2 table */

/* Run a command; its exit status (its output goes to stderr when it fails). */
static int run(const char *const *argv)
{
    g_autofree char *out = NULL, *err = NULL;
    int status = 0;
    assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, NULL));
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    if (code) {
        fprintf(stderr, "%s %s: exit %d\n%s%s", argv[0], argv[1], code, out, err);
    }
    return code;
}

/* The content of write i. */
static void pattern(uint8_t *buf, unsigned i)
{
    for (unsigned b = 0; b < WRITE_BYTES; b++) {
        buf[b] = (uint8_t)(i * 37 + b / 512 + 1);
    }
}

/* vdisk-vmm with the qcow2 image as a virtio-blk drive (extra drive options), its driver initialised. */
static VdQtest *start_guest(const char *img, const char *extra, VdGuestAlloc *alloc, VdVblk *b)
{
    g_autofree char *args = g_strdup_printf("--drive file=%s,format=qcow2%s,if=virtio,id=drive0", img, extra);
    VdQtest *q = vd_qtest_start(args);
    vd_guest_alloc_init(alloc, RAM_ALLOC_START, RAM_ALLOC_END);
    VdVmmio dev;
    assert_true(vd_vmmio_find(q, 2, "drive0", &dev));
    assert_true(vd_vblk_init(b, &dev, vd_vblk_all_features(), false, 1, QSIZE, alloc));
    return q;
}

/* Seed 003: allocating writes, FLUSH, SIGKILL under cache=unsafe: clean, and the flushed data is there. */
static void test_unsafe_flush_then_sigkill(void **state)
{
    (void)state;
    g_autofree char *dir = g_dir_make_tmp("vdisk-qcow2-kill-XXXXXX", NULL);
    g_autofree char *img = g_build_filename(dir, "disk.qcow2", NULL);
    g_autofree char *raw = g_build_filename(dir, "disk.raw", NULL);
    const char *create[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "1G", NULL };
    assert_int_equal(run(create), 0);
    VdGuestAlloc alloc;
    VdVblk b;
    VdQtest *q = start_guest(img, ",cache=unsafe", &alloc, &b);
    uint8_t buf[WRITE_BYTES];
    for (unsigned i = 0; i < WRITES; i++) {
        pattern(buf, i);
        assert_int_equal(vd_vblk_write(&b, (uint64_t)i * STRIDE_SECTORS, buf, sizeof(buf)), VBLK_S_OK);
    }
    assert_int_equal(vd_vblk_flush(&b), VBLK_S_OK);
    assert_int_equal(kill(vd_qtest_pid(q), SIGKILL), 0);
    assert_int_equal(vd_qtest_quit(q), 128 + SIGKILL);

    const char *check[] = { "qemu-img", "check", "-q", img, NULL };
    assert_int_equal(run(check), 0);
    const char *convert[] = { "qemu-img", "convert", "-f", "qcow2", "-O", "raw", img, raw, NULL };
    assert_int_equal(run(convert), 0);
    g_autofree uint8_t *data = NULL;
    gsize len;
    assert_true(g_file_get_contents(raw, (char **)&data, &len, NULL));
    for (unsigned i = 0; i < WRITES; i++) {
        pattern(buf, i);
        if (memcmp(data + (uint64_t)i * STRIDE_SECTORS * 512, buf, sizeof(buf)) != 0) {
            fail_msg("flushed write %u (sector %u) did not survive the kill", i, i * STRIDE_SECTORS);
        }
    }
    g_autofree char *rm = g_strdup_printf("rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
}

/* SIGTERM: vdisk-vmm closes its drives, so the caches are written out and the dirty bit is cleared. */
static void test_sigterm_closes_clean(void **state)
{
    (void)state;
    g_autofree char *dir = g_dir_make_tmp("vdisk-qcow2-term-XXXXXX", NULL);
    g_autofree char *img = g_build_filename(dir, "disk.qcow2", NULL);
    const char *create[] = { "qemu-img", "create", "-q", "-f", "qcow2", img, "64M", NULL };
    assert_int_equal(run(create), 0);
    VdGuestAlloc alloc;
    VdVblk b;
    VdQtest *q = start_guest(img, "", &alloc, &b);
    uint8_t buf[WRITE_BYTES];
    pattern(buf, 7);
    assert_int_equal(vd_vblk_write(&b, 2048, buf, sizeof(buf)), VBLK_S_OK); /* no FLUSH: only the close writes it out */
    vd_qtest_drain(q);
    g_autofree char *hdr = NULL;
    gsize len;
    assert_true(g_file_get_contents(img, &hdr, &len, NULL));
    assert_int_equal(hdr[79] & 1, 0); /* nothing written out yet: still clean on disk */
    assert_int_equal(kill(vd_qtest_pid(q), SIGTERM), 0);
    assert_int_equal(vd_qtest_quit(q), 0);
    g_free(hdr);
    assert_true(g_file_get_contents(img, &hdr, &len, NULL));
    assert_int_equal(hdr[79] & 1, 0); /* the dirty bit set by the writeout is cleared again */
    const char *check[] = { "qemu-img", "check", "-q", img, NULL };
    assert_int_equal(run(check), 0);
    g_autofree char *raw = g_build_filename(dir, "disk.raw", NULL);
    const char *convert[] = { "qemu-img", "convert", "-f", "qcow2", "-O", "raw", img, raw, NULL };
    assert_int_equal(run(convert), 0);
    g_autofree uint8_t *data = NULL;
    assert_true(g_file_get_contents(raw, (char **)&data, &len, NULL));
    assert_memory_equal(data + 2048 * 512, buf, sizeof(buf));
    g_autofree char *rm = g_strdup_printf("rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
}

int main(void)
{
    g_autofree char *qemu_img = g_find_program_in_path("qemu-img");
    if (!qemu_img) {
        printf("SKIP harness-qcow2-kill: qemu-img not found (apt-get install qemu-utils)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsafe_flush_then_sigkill),
        cmocka_unit_test(test_sigterm_closes_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
