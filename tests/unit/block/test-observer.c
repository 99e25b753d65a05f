/*
 * test-observer.c - an observer of durability that sits outside vdisk: the
 * kernel's ext4:ext4_sync_file_enter tracepoint, filtered by the image's
 * device and inode.  It fires once for every fdatasync and for every
 * RWF_DSYNC or O_DSYNC write that reached the file, from any path: a
 * thread-pool syscall or io_uring work, which strace cannot see.
 *
 * For each engine (the default, io_uring; and aio=threads), inline path
 * (inline=auto, on, off), cache mode and writethrough policy, one scenario
 * of FUA writes, write-cache-off writes and flushes runs, then 8 concurrent
 * write-cache-off writes (group commit: 1 to 8 syncs), and the number of
 * sync events must equal the backend's own counters (host_fdatasync +
 * host_rwf_dsync_writes + host_dsync_writes) and lie in what the scenario
 * implies, and no concurrent write may complete before a sync of the file
 * has started since the writes were issued (event times on the instance's
 * mono clock against CLOCK_MONOTONIC at each completion): group commit
 * skipping its shared flush shows there, with io_uring too.  A write whose
 * durability was
 * dropped on the way to the kernel (a lost RWF_DSYNC, a dsync write on the
 * plain descriptor) shows up as a missing event while the counters, which
 * count what was meant, still claim it.
 *
 * Needs root, tracefs (mounted here at /sys/kernel/tracing if it is not)
 * and an ext4 test directory; otherwise it prints why and exits 77 (skip).
 * It uses its own tracefs instance (instances/vdisk-obs-PID), so parallel
 * runs do not see each other's events.
 */
#include "block/block-backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define EXT4_MAGIC 0xEF53
#define SKIP 77
#define TRACEFS "/sys/kernel/tracing"

static uint8_t buf[4096] __attribute__((aligned(4096)));
static char *instance; /* the tracefs instance folder, once made */
static char *image, *image_dir;

/* Write s to a tracefs file; false with errno on failure. */
static bool write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ssize_t n = write(fd, s, strlen(s));
    int err = errno;
    close(fd);
    errno = err;
    return n == (ssize_t)strlen(s);
}

/* Path of a file inside our instance (g_free). */
static char *inst_path(const char *rel)
{
    return g_build_filename(instance, rel, NULL);
}

/* Remove the instance and the image; registered with atexit. */
static void cleanup(void)
{
    if (instance) {
        g_autofree char *enable = inst_path("events/ext4/ext4_sync_file_enter/enable");
        write_file(enable, "0");
        rmdir(instance);
    }
    if (image) {
        unlink(image);
        rmdir(image_dir);
    }
}

/* Print why the check cannot run here and exit with the skip code. */
G_GNUC_NORETURN static void skip(const char *why)
{
    printf("SKIP: %s\n", why);
    exit(SKIP);
}

/* Mount tracefs if needed and make our own instance; skip with a reason where impossible. */
static void make_instance(void)
{
    if (geteuid() != 0) {
        skip("not root: tracefs and its ext4 events need root");
    }
    if (access(TRACEFS "/instances", F_OK) != 0 && mount("tracefs", TRACEFS, "tracefs", 0, NULL) != 0) {
        g_autofree char *why = g_strdup_printf("tracefs is not mounted at " TRACEFS " and mounting it failed: %s",
                                               g_strerror(errno));
        skip(why);
    }
    if (access(TRACEFS "/events/ext4/ext4_sync_file_enter", F_OK) != 0) {
        skip("this kernel has no ext4:ext4_sync_file_enter tracepoint");
    }
    char *path = g_strdup_printf(TRACEFS "/instances/vdisk-obs-%d", (int)getpid());
    if (mkdir(path, 0700) != 0) {
        g_autofree char *why = g_strdup_printf("cannot make the tracefs instance %s: %s", path, g_strerror(errno));
        g_free(path);
        skip(why);
    }
    instance = path;
}

/* Filter the instance's ext4_sync_file_enter to one file and switch it on. */
static void watch_file(const struct stat *st)
{
    /* The kernel's dev_t: major << 20 | minor. */
    unsigned kdev = (major(st->st_dev) << 20) | minor(st->st_dev);
    g_autofree char *filter = g_strdup_printf("dev == %u && ino == %llu", kdev, (unsigned long long)st->st_ino);
    g_autofree char *filter_path = inst_path("events/ext4/ext4_sync_file_enter/filter");
    g_autofree char *enable_path = inst_path("events/ext4/ext4_sync_file_enter/enable");
    g_autofree char *clock_path = inst_path("trace_clock");
    /* mono: event times on CLOCK_MONOTONIC, to order them against completions. */
    if (!write_file(clock_path, "mono") || !write_file(filter_path, filter) || !write_file(enable_path, "1")) {
        g_autofree char *why = g_strdup_printf("cannot enable the filtered tracepoint: %s", g_strerror(errno));
        skip(why);
    }
}

/* Empty the instance's trace buffer. */
static void clear_events(void)
{
    g_autofree char *trace = inst_path("trace");
    g_assert(write_file(trace, ""));
}

/* Sync events recorded since the last clear_events. */
static unsigned count_events(void)
{
    g_autofree char *trace = inst_path("trace");
    g_autofree char *text = NULL;
    g_assert(g_file_get_contents(trace, &text, NULL, NULL));
    unsigned n = 0;
    for (const char *p = text; (p = strstr(p, "ext4_sync_file_enter:")); p++) {
        n++;
    }
    return n;
}

/* Sync events with a time in (after, upto], seconds on CLOCK_MONOTONIC. */
static unsigned count_events_between(double after, double upto)
{
    g_autofree char *trace = inst_path("trace");
    g_autofree char *text = NULL;
    g_assert(g_file_get_contents(trace, &text, NULL, NULL));
    unsigned n = 0;
    for (const char *p = text; (p = strstr(p, ": ext4_sync_file_enter:")); p++) {
        const char *t = p;
        while (t > text && t[-1] != ' ') {
            t--;        /* the timestamp is the word before ": ext4_sync_file_enter:" */
        }
        double ts = g_ascii_strtod(t, NULL);
        n += ts > after && ts <= upto;
    }
    return n;
}

/* True if the image's block device says it has native FUA (then O_DIRECT overwrites may skip the sync). */
static bool device_has_fua(const struct stat *st)
{
    g_autofree char *p1 = g_strdup_printf("/sys/dev/block/%u:%u/queue/fua", major(st->st_dev), minor(st->st_dev));
    g_autofree char *p2 = g_strdup_printf("/sys/dev/block/%u:%u/../queue/fua", major(st->st_dev), minor(st->st_dev));
    g_autofree char *text = NULL;
    return (g_file_get_contents(p1, &text, NULL, NULL) || g_file_get_contents(p2, &text, NULL, NULL)) &&
           text[0] == '1';
}

/* Abort the run with a message if a backend call fails. */
static void ok(int ret, const char *what)
{
    if (ret < 0) {
        fprintf(stderr, "%s: %s\n", what, g_strerror(-ret));
        exit(1);
    }
}

/* The concurrent writes: how many are left, when they were issued, and completions no sync event preceded. */
typedef struct Concurrent {
    unsigned left, uncovered;
    double issued;
} Concurrent;

/* Seconds on CLOCK_MONOTONIC, the trace instance's clock. */
static double mono_now(void)
{
    return g_get_monotonic_time() / 1e6;
}

/*
 * Completion of one concurrent write: it is durable now, so a sync of the
 * file must have started since the writes were issued (one that started
 * before cannot cover it).  A write acknowledged before any sync, as group
 * commit would if it skipped its shared flush, is counted.
 */
static void count_done(void *opaque, int ret)
{
    Concurrent *c = opaque;
    ok(ret, "concurrent write-through write");
    c->uncovered += count_events_between(c->issued, mono_now()) == 0;
    c->left--;
}

/*
 * 8 write-cache-off writes in flight at once: group commit may share syncs,
 * at least one; returns how many completed before any sync had started.
 */
static unsigned run_concurrent(VdBlockBackend *blk)
{
    static struct iovec iov[8];
    Concurrent c = { .left = G_N_ELEMENTS(iov), .issued = mono_now() };
    for (unsigned i = 0; i < G_N_ELEMENTS(iov); i++) {
        iov[i] = (struct iovec){ .iov_base = buf, .iov_len = 4096 };
        vd_blk_pwritev(blk, 65536 + i * 4096, &iov[i], 1, 0, count_done, &c);
    }
    while (c.left) {
        g_main_context_iteration(NULL, TRUE);
    }
    return c.uncovered;
}

/*
 * One scenario; returns the sync events it implies.  With the write cache
 * on: two cached writes and a flush (1), three FUA writes (3), a flush with
 * nothing to cover (0).  Then one cached write, the cache turned off (its
 * flush: 1), four writes that must be durable (4), a flush (0).
 */
static unsigned run_scenario(VdBlockBackend *blk)
{
    ok(vd_blk_set_write_cache_sync(blk, true), "write cache on");
    ok(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), "write");
    ok(vd_blk_pwrite_sync(blk, 4096, buf, 4096, 0), "write");
    ok(vd_blk_flush_sync(blk), "flush");
    for (int i = 0; i < 3; i++) {
        ok(vd_blk_pwrite_sync(blk, 8192 + i * 4096, buf, 4096, VD_REQ_FUA), "FUA write");
    }
    ok(vd_blk_flush_sync(blk), "flush");
    ok(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), "write");
    ok(vd_blk_set_write_cache_sync(blk, false), "write cache off");
    for (int i = 0; i < 4; i++) {
        ok(vd_blk_pwrite_sync(blk, 32768 + i * 4096, buf, 4096, 0), "write-through write");
    }
    ok(vd_blk_flush_sync(blk), "flush");
    return vd_blk_cache_mode(blk) == VD_CACHE_UNSAFE ? 0 : 1 + 3 + 1 + 4;
}

int main(int argc, char **argv)
{
    image_dir = g_dir_make_tmp("vdisk-obs-XXXXXX", NULL);
    g_assert(image_dir);
    image = g_build_filename(image_dir, "disk.img", NULL);
    atexit(cleanup);
    struct statfs sfs;
    if (statfs(image_dir, &sfs) != 0 || sfs.f_type != EXT4_MAGIC) {
        g_autofree char *why = g_strdup_printf("%s is not on ext4, whose tracepoint this check reads", image_dir);
        skip(why);
    }
    int fd = open(image, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    g_assert(fd >= 0);
    /* Allocated blocks: every scenario writes over data, as a guest mostly does. */
    g_assert(posix_fallocate(fd, 0, 1 << 20) == 0);
    struct stat st;
    g_assert(fstat(fd, &st) == 0);
    close(fd);
    make_instance();
    watch_file(&st);
    bool fua_dev = device_has_fua(&st);

    static const char *const engines[] = { "", ",inline=on", ",inline=off", ",aio=threads", ",aio=threads,inline=on" };
    static const char *const caches[] = { "writeback", "writethrough", "none", "directsync", "unsafe" };
    static const char *const policies[] = { "fua", "dsync" };
    unsigned failures = 0, runs = 0;
    for (size_t e = 0; e < G_N_ELEMENTS(engines); e++) {
        for (size_t c = 0; c < G_N_ELEMENTS(caches); c++) {
            bool direct = !strcmp(caches[c], "none") || !strcmp(caches[c], "directsync");
            if (direct && fua_dev) {
                printf("SKIP cache=%s: the device has native FUA, so O_DIRECT overwrites may bypass the "
                       "tracepoint\n", caches[c]);
                continue;
            }
            for (size_t p = 0; p < G_N_ELEMENTS(policies); p++) {
                g_autofree char *opts = g_strdup_printf("file=%s,cache=%s,wt-policy=%s%s", image, caches[c],
                                                        policies[p], engines[e]);
                GError *err = NULL;
                VdBlockBackend *blk = vd_blk_open(opts, NULL, &err);
                if (!blk) {
                    fprintf(stderr, "%s\n", err->message);
                    return 1;
                }
                clear_events();
                unsigned implied = run_scenario(blk);
                unsigned uncovered = run_concurrent(blk);
                unsigned implied_max = implied ? implied + 8 : 0;
                implied += implied ? 1 : 0;
                unsigned seen = count_events();
                VdBlockStats s;
                vd_blk_get_stats(blk, &s);
                uint64_t counted = s.host_fdatasync + s.host_rwf_dsync_writes + s.host_dsync_writes;
                const char *engine = vd_aio_name(vd_blk_aio(blk));
                bool unsafe = vd_blk_cache_mode(blk) == VD_CACHE_UNSAFE;
                bool good = seen >= implied && seen <= implied_max && counted == seen && (unsafe || !uncovered);
                printf("%s %-56s engine=%-8s uncovered=%u tracepoint=%u implied=%u-%u counters=%" G_GUINT64_FORMAT
                       " (fdatasync=%" G_GUINT64_FORMAT " rwf_dsync=%" G_GUINT64_FORMAT " dsync=%" G_GUINT64_FORMAT
                       " uring_ops=%" G_GUINT64_FORMAT ")\n",
                       good ? "ok  " : "FAIL", opts + strlen(image) + 6, engine, uncovered, seen, implied, implied_max, counted,
                       s.host_fdatasync, s.host_rwf_dsync_writes, s.host_dsync_writes, s.uring_ops);
                failures += !good;
                runs++;
                vd_blk_close(blk);
            }
        }
    }
    printf("%u of %u scenarios disagree with the kernel\n", failures, runs);
    return failures ? 1 : 0;
}
