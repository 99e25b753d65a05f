/*
 * test-shared-lun.c - the 2018 bug as a test: two hosts on one LUN.
 *
 * Two loop devices over one backing file behave like two hosts looking at
 * one SAN LUN: each block device has its own page cache.  The destination
 * opens its loop device and its guest reads (its page cache now holds the
 * old data) before the source's guest writes new data (cache=writeback,
 * so only the source's page cache has it) and migrates.  After the
 * hand-over (source: fdatasync; destination: POSIX_FADV_DONTNEED, checked
 * with mincore) the guest on the destination must read the new data.
 * Without the page-cache drop it would read the old data.
 *
 * Needs root and loop devices: otherwise it skips (exit 77) and says why.
 */
#include "virtio-blk-driver.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define IMG_SIZE (16u << 20)
#define QSIZE    64
#define F(b) (1ull << (b))

/* Fail the test with one line. */
#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "shared-lun: " __VA_ARGS__); fputc('\n', stderr); \
                                             cleanup(); return 1; } } while (0)

static char img[64], sock[80], loop_a[64], loop_b[64];

/* Attach a loop device to the image; false (and why) if that cannot be done here. */
static bool loop_attach(char *out, size_t len, char **why)
{
    const char *argv[] = { "losetup", "-f", "--show", img, NULL };
    g_autofree char *so = NULL, *se = NULL;
    int status;
    g_autoptr(GError) err = NULL;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &so, &se, &status, &err)) {
        *why = g_strdup_printf("cannot run losetup: %s", err->message);
        return false;
    }
    if (!g_spawn_check_wait_status(status, NULL) || !g_str_has_prefix(so, "/dev/loop")) {
        *why = g_strdup_printf("losetup -f --show failed: %s", g_strstrip(se));
        return false;
    }
    g_strlcpy(out, g_strstrip(so), len);
    return true;
}

/* Detach the loop devices and remove the files. */
static void cleanup(void)
{
    const char *loops[] = { loop_a, loop_b };
    for (size_t i = 0; i < G_N_ELEMENTS(loops); i++) {
        if (loops[i][0]) {
            const char *argv[] = { "losetup", "-d", loops[i], NULL };
            g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                         NULL, NULL, NULL, NULL);
        }
    }
    unlink(img);
    unlink(sock);
}

/* Initialise drive0's virtio-blk on q with every feature. */
static bool vblk_on(VdQtest *q, VdVblk *b, VdGuestAlloc *alloc)
{
    VdVmmio dev;
    return vd_vmmio_find(q, 2, "drive0", &dev) && vd_vblk_init(b, &dev, vd_vblk_all_features(), false, 1, QSIZE, alloc);
}

int main(void)
{
    g_autofree char *why = NULL;
    if (geteuid() != 0) {
        printf("SKIP shared-lun: loop devices need root\n");
        return 77;
    }
    g_strlcpy(img, "/tmp/vd-lun-XXXXXX", sizeof(img));
    int fd = mkstemp(img);
    uint8_t old_data[4096], new_data[4096], got[4096];
    memset(old_data, 0x0d, sizeof(old_data));
    memset(new_data, 0x2e, sizeof(new_data));
    if (fd < 0 || ftruncate(fd, IMG_SIZE) < 0 || pwrite(fd, old_data, sizeof(old_data), 0) != sizeof(old_data) ||
        fsync(fd) < 0) {
        printf("SKIP shared-lun: cannot create an image in /tmp\n");
        return 77;
    }
    close(fd);
    g_snprintf(sock, sizeof(sock), "%s.sock", img);
    if (!loop_attach(loop_a, sizeof(loop_a), &why) || !loop_attach(loop_b, sizeof(loop_b), &why)) {
        printf("SKIP shared-lun: %s\n", why);
        cleanup();
        return 77;
    }

    g_autofree char *src_args = g_strdup_printf("-m 32M --drive file=%s,if=virtio,id=drive0,cache=writeback", loop_a);
    g_autofree char *dst_args = g_strdup_printf("-m 32M --drive file=%s,if=virtio,id=drive0,cache=writeback "
                                                "--incoming unix:%s", loop_b, sock);
    VdQtest *src = vd_qtest_start(src_args);
    VdQtest *dst = vd_qtest_start(dst_args);
    VdGuestAlloc src_alloc, dst_alloc;
    vd_guest_alloc_init(&src_alloc, 0x100000, 0x800000);
    vd_guest_alloc_init(&dst_alloc, 0x800000, 0x1000000);
    VdVblk s, d;

    /* host B (the destination) reads the LUN first: its page cache holds the old data */
    CHECK(vblk_on(dst, &d, &dst_alloc), "virtio-blk did not start on the destination");
    CHECK(vd_vblk_read(&d, 0, got, sizeof(got)) == VBLK_S_OK && memcmp(got, old_data, sizeof(got)) == 0,
          "the destination did not read the old data before the migration");
    /* host A (the source) writes new data into its own page cache, write cache on, no flush */
    CHECK(vblk_on(src, &s, &src_alloc), "virtio-blk did not start on the source");
    CHECK(vd_vblk_writeback(&s) == 1, "the source's write cache is off");
    CHECK(vd_vblk_write(&s, 0, new_data, sizeof(new_data)) == VBLK_S_OK, "the source's write failed");

    g_autofree char *r = vd_qtest_cmd(src, "migrate unix:%s", sock);
    CHECK(strcmp(r, "OK") == 0, "migrate: %s", r);
    CHECK(vd_qtest_blockstat(src, "drive0", "host_fdatasync") >= 1, "the source handed over without fdatasync");
    s.dev.qt = dst;
    CHECK(vd_vblk_read(&s, 0, got, sizeof(got)) == VBLK_S_OK, "the read on the destination failed");
    CHECK(memcmp(got, new_data, sizeof(got)) == 0,
          "the destination's guest read stale data (0x%02x, the old 0x%02x; new 0x%02x): "
          "its page cache was not dropped",
          got[0], old_data[0], new_data[0]);
    int st_src = vd_qtest_quit(src), st_dst = vd_qtest_quit(dst);
    CHECK(st_src == 0 && st_dst == 0, "exit status source %d, destination %d", st_src, st_dst);
    cleanup();
    printf("shared-lun: the destination read the source's new data after the hand-over\n");
    return 0;
}
