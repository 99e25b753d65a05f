/*
 * test-handover-order.c - the 2008 ordering as a test: the source makes
 * everything durable before the destination writes.
 *
 * Source and destination open one image through the crash simulator
 * (driver=crashsim, docs/crash-testing.md), each writing its host op log
 * (log=) with the hand-over marks "inactivated t=..." and "activated t=..."
 * on CLOCK_MONOTONIC.  The source's guest writes with its write cache on
 * and never flushes; then it migrates.  Checked:
 *  - a power cut of the source right after the hand-over loses nothing the
 *    guest was acknowledged (crash: failures=0, every write promised);
 *  - merged on one time line, every source write is durable (logged)
 *    before its "inactivated" mark, the destination is "activated" after
 *    that mark, and it writes nothing before it is activated.
 */
#include "virtio-blk-driver.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define IMG_SIZE (16u << 20)
#define QSIZE    64
#define NWRITES  8
#define LOG_FLUSH 1u
#define LOG_DISCARD 4u
#define LOG_MARK  8u

/* What a dm-log-writes log says, in order: W (write), F (flush), or a mark's text; and mark times. */
typedef struct OpLog {
    GPtrArray *ops;     /* char *: "W", "F" or the mark text */
} OpLog;

/* Read a crashsim log= file; aborts the test on a malformed one. */
static OpLog read_log(const char *path)
{
    g_autofree char *raw = NULL;
    gsize len;
    g_autoptr(GError) err = NULL;
    if (!g_file_get_contents(path, &raw, &len, &err)) {
        fprintf(stderr, "handover-order: %s\n", err->message);
        exit(1);
    }
    OpLog l = { g_ptr_array_new_with_free_func(g_free) };
    uint64_t n;
    memcpy(&n, raw + 16, 8);
    size_t pos = 512;
    for (uint64_t i = 0; i < GUINT64_FROM_LE(n) && pos + 512 <= len; i++) {
        uint64_t f[4];
        memcpy(f, raw + pos, sizeof(f));
        uint64_t nsect = GUINT64_FROM_LE(f[1]), flags = GUINT64_FROM_LE(f[2]), mlen = GUINT64_FROM_LE(f[3]);
        if (flags & LOG_MARK) {
            g_ptr_array_add(l.ops, g_strndup(raw + pos + 32, MIN(mlen, 480)));
        } else {
            g_ptr_array_add(l.ops, g_strdup(flags & LOG_FLUSH ? "F" : "W"));
        }
        pos += 512 + ((flags & (LOG_FLUSH | LOG_MARK | LOG_DISCARD)) ? 0 : nsect * 512);
    }
    return l;
}

/* Index of the mark starting with prefix, its time in *t; -1 if absent. */
static int find_mark(const OpLog *l, const char *prefix, int64_t *t)
{
    for (guint i = 0; i < l->ops->len; i++) {
        const char *op = g_ptr_array_index(l->ops, i);
        if (g_str_has_prefix(op, prefix)) {
            *t = g_ascii_strtoll(strstr(op, "t=") + 2, NULL, 10);
            return i;
        }
    }
    return -1;
}

/* Print a log on one line (for the failure message). */
static void dump(const char *name, const OpLog *l)
{
    fprintf(stderr, "  %s:", name);
    for (guint i = 0; i < l->ops->len; i++) {
        fprintf(stderr, " [%s]", (char *)g_ptr_array_index(l->ops, i));
    }
    fputc('\n', stderr);
}

/* Fail with the merged logs. */
#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "handover-order: " __VA_ARGS__); fputc('\n', stderr); \
                                             dump("source", &src_log); dump("destination", &dst_log); \
                                             return 1; } } while (0)

int main(void)
{
    char img[64];
    g_strlcpy(img, "/tmp/vd-order-XXXXXX", sizeof(img));
    int fd = mkstemp(img);
    if (fd < 0 || ftruncate(fd, IMG_SIZE) < 0) {
        printf("SKIP handover-order: cannot create an image in /tmp\n");
        return 77;
    }
    close(fd);
    g_autofree char *sock = g_strdup_printf("%s.sock", img);
    g_autofree char *src_path = g_strdup_printf("%s.src.log", img), *dst_path = g_strdup_printf("%s.dst.log", img);
    g_autofree char *src_args = g_strdup_printf("-m 32M --drive driver=crashsim,file=%s,if=virtio,id=drive0,"
                                                "cache=writeback,log=%s", img, src_path);
    g_autofree char *dst_args = g_strdup_printf("-m 32M --drive driver=crashsim,file=%s,if=virtio,id=drive0,"
                                                "cache=writeback,log=%s --incoming unix:%s", img, dst_path, sock);
    VdQtest *src = vd_qtest_start(src_args);
    VdQtest *dst = vd_qtest_start(dst_args);
    g_free(vd_qtest_ok(dst, "info"));
    VdGuestAlloc alloc;
    vd_guest_alloc_init(&alloc, 0x100000, 0x1000000);
    VdVmmio dev;
    VdVblk b;
    if (!vd_vmmio_find(src, 2, "drive0", &dev) ||
        !vd_vblk_init(&b, &dev, vd_vblk_all_features(), false, 1, QSIZE, &alloc)) {
        fprintf(stderr, "handover-order: virtio-blk did not start\n");
        return 1;
    }
    uint8_t buf[4096];
    for (unsigned i = 0; i < NWRITES; i++) {
        memset(buf, 'a' + i, sizeof(buf));
        if (vd_vblk_write(&b, 64 * i, buf, sizeof(buf)) != VBLK_S_OK) {
            fprintf(stderr, "handover-order: write %u failed\n", i);
            return 1;
        }
    }
    g_autofree char *r = vd_qtest_cmd(src, "migrate unix:%s", sock);
    g_autofree char *cut = vd_qtest_cmd(src, "crash drive0 7");   /* a power cut right after the hand-over */
    b.dev.qt = dst;
    memset(buf, 'z', sizeof(buf));
    uint8_t wst = vd_vblk_write(&b, 8, buf, sizeof(buf)), fst = vd_vblk_flush(&b);
    int st_src = vd_qtest_quit(src), st_dst = vd_qtest_quit(dst);   /* the logs are written at close */

    OpLog src_log = read_log(src_path), dst_log = read_log(dst_path);
    unlink(src_path);
    unlink(dst_path);
    unlink(img);
    CHECK(strcmp(r, "OK") == 0, "migrate: %s", r);
    CHECK(wst == VBLK_S_OK && fst == VBLK_S_OK, "the destination's write/flush failed: %u/%u", wst, fst);
    CHECK(st_src == 0 && st_dst == 0, "exit status source %d, destination %d", st_src, st_dst);
    CHECK(g_str_has_prefix(cut, "OK ") && strstr(cut, " failures=0"), "a cut after the hand-over lost data: %s", cut);
    int64_t t_inact, t_act;
    int i_inact = find_mark(&src_log, "inactivated", &t_inact), i_act = find_mark(&dst_log, "activated", &t_act);
    CHECK(i_inact >= 0 && i_act >= 0, "a hand-over mark is missing");
    unsigned before = 0;
    for (guint i = 0; i < src_log.ops->len; i++) {
        bool w = strcmp(g_ptr_array_index(src_log.ops, i), "W") == 0;
        CHECK(!w || (int)i < i_inact, "source write %u became durable only after the hand-over", i);
        before += w;
    }
    CHECK(before >= NWRITES, "only %u of the source's %u writes are durable at the hand-over", before, NWRITES);
    CHECK(t_act > t_inact, "the destination activated at %" PRId64 " us, before the source's hand-over at %" PRId64,
          t_act, t_inact);
    for (int i = 0; i < i_act; i++) {
        CHECK(strcmp(g_ptr_array_index(dst_log.ops, i), "W") != 0, "the destination wrote before it was activated");
    }
    printf("handover-order: source durable and inactive at t=%" PRId64 ", destination active %" PRId64 " us later\n",
           t_inact, t_act - t_inact);
    g_ptr_array_free(src_log.ops, TRUE);
    g_ptr_array_free(dst_log.ops, TRUE);
    return 0;
}
