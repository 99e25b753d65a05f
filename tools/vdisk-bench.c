/*
 * vdisk-bench - measure the block backend against the raw syscall loop.
 *
 * In one run, on one image file:
 *  1. 4 KiB random writes: a raw pwrite loop (the limit) vs the backend at
 *     queue depth 1 and 32; on the page cache and with O_DIRECT.
 *  2. The three ways to make a write durable, as raw syscalls: an O_DSYNC
 *     descriptor, pwritev2(RWF_DSYNC), and pwrite + fdatasync; and the
 *     backend's two writethrough policies (wt-policy=fua and =dsync).
 *  3. With --compare-qemu: the same writes through `qemu-img bench` (QEMU's
 *     block layer, same image, same cache mode, same queue depth).  qemu-img
 *     bench only writes sequentially, so --compare-qemu implies --sequential.
 *  4. 4 KiB reads: raw pread loop and a raw io_uring QD32 loop vs the backend.
 *  5. A flush-bound device (delay.flush=2ms, the fault of block/fault.c): the
 *     backend's durable writes at QD1 and QD32 (group commit).
 * Results are printed as IOPS and as a ratio to the matching raw loop (the
 * median of the per-round ratios: each round runs both seconds apart), with
 * CPU time per I/O and, for the backend, host syncs per durable write (group
 * commit); --json prints every case with its per-round values and the load.
 * The command line follows system/cmdline.h; usage_text is its manual.
 */
#include "block/block-backend.h"
#include "system/cmdline.h"
#include "util/options.h"

#include <gio/gio.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#define BLOCK 4096

typedef struct BenchConfig {
    const char *image;
    uint64_t size;
    double seconds;
    bool sequential;
    bool compare_qemu;             /* --compare-qemu */
    const char *qemu_img;          /* with --compare-qemu: the qemu-img found on PATH */
    unsigned rounds;
    bool json;                     /* --json */
    const char *section;           /* --section: only sections whose title contains it */
} BenchConfig;

/* What one timed run measured besides IOPS. */
typedef struct RunExtra {
    double cpu_us_per_io;          /* user+system CPU of this process per I/O */
    double syncs_per_durable;      /* backend: host syncs (fdatasync + dsync writes) per durable write; -1 n/a */
    double inline_share;           /* backend: share of the I/Os run on the inline path; -1 n/a */
    double syncs_per_flush;        /* backend with flushes: host fdatasyncs per guest FLUSH; -1 n/a */
} RunExtra;

static RunExtra last_extra;

/* What a run measured besides IOPS when only the CPU time is known (cpu_us_per_io -1: not even that). */
static RunExtra cpu_only(double cpu_us_per_io)
{
    return (RunExtra){ .cpu_us_per_io = cpu_us_per_io, .syncs_per_durable = -1, .inline_share = -1,
                       .syncs_per_flush = -1 };
}

/* User+system CPU time of the process so far, in microseconds. */
static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
}

static uint8_t *block_buf;

/* Offset of the i-th I/O: random 4 KiB-aligned (xorshift), or sequential. */
static uint64_t next_offset(const BenchConfig *cfg, uint64_t *state, uint64_t i)
{
    uint64_t blocks = cfg->size / BLOCK;
    if (cfg->sequential) {
        return (i % blocks) * BLOCK;
    }
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (*state % blocks) * BLOCK;
}

typedef enum RawMode { RAW_PLAIN, RAW_O_DSYNC, RAW_RWF_DSYNC, RAW_FDATASYNC, RAW_READ, RAW_URING_WRITE, RAW_URING_READ,
               RAW_URING_DSYNC } RawMode;

static double bench_raw_uring(const BenchConfig *cfg, bool direct, RawMode mode, unsigned qd);

/* IOPS of a raw single-threaded write (or read) loop. */
static double bench_raw(const BenchConfig *cfg, bool direct, RawMode mode)
{
    if (mode == RAW_URING_WRITE || mode == RAW_URING_READ || mode == RAW_URING_DSYNC) {
        return bench_raw_uring(cfg, direct, mode, 32);
    }
    double cpu0 = cpu_us();
    int flags = O_RDWR | (direct ? O_DIRECT : 0) | (mode == RAW_O_DSYNC ? O_DSYNC : 0);
    int fd = open(cfg->image, flags);
    if (fd < 0) {
        fprintf(stderr, "open %s: %s\n", cfg->image, strerror(errno));
        exit(1);
    }
    uint64_t state = 0x9e3779b97f4a7c15ull, n = 0;
    gint64 start = g_get_monotonic_time(), end = start + cfg->seconds * G_USEC_PER_SEC, now;
    struct iovec iov = { block_buf, BLOCK };
    do {
        for (int k = 0; k < 16; k++, n++) {
            uint64_t off = next_offset(cfg, &state, n);
            ssize_t r = mode == RAW_READ ? preadv(fd, &iov, 1, off)
                        : mode == RAW_RWF_DSYNC ? pwritev2(fd, &iov, 1, off, RWF_DSYNC) : pwritev(fd, &iov, 1, off);
            if (r != BLOCK || (mode == RAW_FDATASYNC && fdatasync(fd) < 0)) {
                fprintf(stderr, "raw write: %s\n", strerror(errno));
                exit(1);
            }
        }
        now = g_get_monotonic_time();
    } while (now < end);
    close(fd);
    last_extra = cpu_only((cpu_us() - cpu0) / n);
    return n / ((now - start) / 1e6);
}

/*
 * IOPS of a raw io_uring loop keeping qd 4 KiB random reads or writes (or
 * RWF_DSYNC writes: the raw durable limit at depth, what `fio --sync=1
 * --ioengine=io_uring` measures) in flight, one submit per reap.
 */
static double bench_raw_uring(const BenchConfig *cfg, bool direct, RawMode mode, unsigned qd)
{
    int fd = open(cfg->image, O_RDWR | (direct ? O_DIRECT : 0));
    struct io_uring ring;
    if (fd < 0 || io_uring_queue_init(qd * 2, &ring, 0) < 0) {
        fprintf(stderr, "raw io_uring: cannot set up\n");
        exit(1);
    }
    double cpu0 = cpu_us();
    uint64_t state = 0x9e3779b97f4a7c15ull, n = 0, submitted = 0;
    struct iovec iov = { block_buf, BLOCK };
    gint64 start = g_get_monotonic_time(), end = start + cfg->seconds * G_USEC_PER_SEC, now = start;
    unsigned inflight = 0;
    for (;;) {
        while (now < end && inflight < qd) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            uint64_t off = next_offset(cfg, &state, submitted++);
            if (mode != RAW_URING_READ) {
                io_uring_prep_writev(sqe, fd, &iov, 1, off);
                sqe->rw_flags = mode == RAW_URING_DSYNC ? RWF_DSYNC : 0;
            } else {
                io_uring_prep_readv(sqe, fd, &iov, 1, off);
            }
            inflight++;
        }
        if (inflight == 0) {
            break;
        }
        struct io_uring_cqe *cqe;
        if (io_uring_submit_and_wait(&ring, 1) < 0 || io_uring_peek_cqe(&ring, &cqe) < 0) {
            exit(1);
        }
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            if (cqe->res != BLOCK) {
                fprintf(stderr, "raw io_uring: %s\n", strerror(-cqe->res));
                exit(1);
            }
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
        inflight -= seen;
        n += seen;
        now = g_get_monotonic_time();
    }
    io_uring_queue_exit(&ring);
    close(fd);
    last_extra = cpu_only((cpu_us() - cpu0) / n);
    return n / ((now - start) / 1e6);
}

typedef struct BackendRun {
    VdBlockBackend *blk;
    const BenchConfig *cfg;
    uint64_t state, submitted, completed;
    gint64 end;
    bool stop;
    int error;
    bool read;
    bool flushes;               /* every other request is a FLUSH */
    bool flush_next;
    uint64_t flushes_sent;
    struct iovec iov;
} BackendRun;

static void submit_one(BackendRun *run);

/* Completion: count it and keep the queue full until time is up (the clock read every 16, as the raw loops do). */
static void write_done(void *opaque, int ret)
{
    BackendRun *run = opaque;
    run->completed++;
    if (ret < 0) {
        run->error = ret;
        run->stop = true;
    }
    if (!run->stop && run->completed % 16 == 0 && g_get_monotonic_time() >= run->end) {
        run->stop = true;
    }
    if (!run->stop) {
        submit_one(run);
    }
}

static void submit_one(BackendRun *run)
{
    if (run->flushes && (run->flush_next = !run->flush_next)) {
        run->flushes_sent++;
        vd_blk_flush(run->blk, write_done, run);
        return;
    }
    uint64_t off = next_offset(run->cfg, &run->state, run->submitted++);
    if (run->read) {
        vd_blk_preadv(run->blk, off, &run->iov, 1, write_done, run);
    } else {
        vd_blk_pwritev(run->blk, off, &run->iov, 1, 0, write_done, run);
    }
}

/* IOPS of the backend at queue depth qd with the given extra options (reads, or writes and maybe FLUSHes). */
static double bench_backend(const BenchConfig *cfg, const char *extra, unsigned qd, bool wce, bool read, bool flushes)
{
    GError *err = NULL;
    g_autofree char *opts = g_strdup_printf("file=%s,%s", cfg->image, extra);
    VdBlockBackend *blk = vd_blk_open(opts, NULL, &err);
    if (!blk) {
        fprintf(stderr, "%s\n", err->message);
        exit(1);
    }
    if (vd_blk_set_write_cache_sync(blk, wce) < 0) {
        exit(1);
    }
    BackendRun run = { .blk = blk, .cfg = cfg, .state = 0x9e3779b97f4a7c15ull, .read = read, .flushes = flushes,
                       .iov = { block_buf, BLOCK } };
    VdBlockStats s0;
    vd_blk_get_stats(blk, &s0);
    double cpu0 = cpu_us();
    gint64 start = g_get_monotonic_time();
    run.end = start + cfg->seconds * G_USEC_PER_SEC;
    for (unsigned i = 0; i < qd; i++) {
        submit_one(&run);
    }
    vd_blk_drain(blk);
    gint64 now = g_get_monotonic_time();
    if (run.error) {
        fprintf(stderr, "backend write: %s\n", strerror(-run.error));
        exit(1);
    }
    VdBlockStats s1;
    vd_blk_get_stats(blk, &s1);
    uint64_t durable = s1.durable_writes - s0.durable_writes;
    uint64_t syncs = (s1.host_fdatasync - s0.host_fdatasync) + (s1.host_dsync_writes - s0.host_dsync_writes) +
                     (s1.host_rwf_dsync_writes - s0.host_rwf_dsync_writes);
    last_extra = (RunExtra){ .cpu_us_per_io = (cpu_us() - cpu0) / MAX(run.completed, 1),
                             .syncs_per_durable = durable ? (double)syncs / durable : -1,
                             .inline_share = (double)(s1.inline_ops - s0.inline_ops) / MAX(run.completed, 1),
                             .syncs_per_flush = run.flushes_sent ? (double)(s1.host_fdatasync - s0.host_fdatasync) /
                                                                       run.flushes_sent : -1 };
    vd_blk_close(blk);
    return run.completed / ((now - start) / 1e6);
}

/*
 * IOPS of `qemu-img bench` writing `count` sequential 4 KiB blocks at depth qd
 * with QEMU's cache mode; -1 if it did not run.
 */
static double bench_qemu_img(const BenchConfig *cfg, const char *cache, unsigned qd, double expect_iops)
{
    uint64_t count = MAX((uint64_t)(expect_iops * cfg->seconds), 1000);
    g_autofree char *c = g_strdup_printf("%" G_GUINT64_FORMAT, count);
    g_autofree char *d = g_strdup_printf("%u", qd);
    const char *argv[] = { cfg->qemu_img, "bench", "-w", "-f", "raw", "-t", cache, "-i", "threads", "-c", c,
                           "-d", d, "-s", "4096", cfg->image, NULL };
    g_autofree char *out = NULL;
    int status;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL)) {
        return -1;
    }
    const char *p = strstr(out, "Run completed in ");
    double secs = p ? g_ascii_strtod(p + strlen("Run completed in "), NULL) : 0;
    return secs > 0 ? count / secs : -1;
}

typedef enum CaseKind { CASE_RAW, CASE_BACKEND, CASE_QEMU } CaseKind;

#define MAX_ROUNDS 25          /* this machine's noise needs 15 or more for a stable median (docs/benchmarks.md) */

/* One measured configuration, held against a raw case of its section (its limit; by default the first). */
typedef struct BenchCase {
    const char *label;
    CaseKind kind;
    bool direct;                /* raw: O_DIRECT */
    RawMode raw;
    const char *opts;           /* backend options, or qemu-img cache mode */
    unsigned qd;
    bool wce;
    int estimate_from;          /* qemu: index of the case whose IOPS sizes the run */
    int limit;                  /* index of the case its ratio is to: the best raw method at its depth */
    bool read;                  /* backend: reads instead of writes */
    bool flushes;               /* backend: every other request a FLUSH */
    double iops[MAX_ROUNDS];
    double cpu[MAX_ROUNDS];     /* CPU us per I/O */
    double syncs[MAX_ROUNDS];   /* host syncs per durable write, -1: none */
    double inl[MAX_ROUNDS];     /* share of the I/Os run inline, -1: not a backend case */
    double fsyncs[MAX_ROUNDS];  /* host fdatasyncs per guest FLUSH, -1: no flushes */
} BenchCase;

typedef struct BenchSection {
    const char *title;
    BenchCase cases[16];        /* ended by the first case without a label */
} BenchSection;

/* Median of n values (n small). */
static double median(double *v, unsigned n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, n * sizeof(double));
    for (unsigned i = 1; i < n; i++) {
        for (unsigned j = i; j > 0 && s[j - 1] > s[j]; j--) {
            double t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    }
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Write back whatever earlier cases left dirty, untimed, so no case pays for another's data. */
static void settle_image(const BenchConfig *cfg)
{
    int fd = open(cfg->image, O_RDWR);
    if (fd >= 0) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

/* Read the whole image once, untimed, so a read case measures the page cache. */
static void warm_image(const BenchConfig *cfg)
{
    int fd = open(cfg->image, O_RDONLY);
    uint8_t *chunk = g_malloc(1 << 20);
    for (uint64_t off = 0; fd >= 0 && off < cfg->size; off += 1 << 20) {
        if (pread(fd, chunk, 1 << 20, off) <= 0) {
            break;
        }
    }
    g_free(chunk);
    if (fd >= 0) {
        close(fd);
    }
}

/* Run every case of a section once, in order (one round). */
static void run_round(const BenchConfig *cfg, BenchSection *sec, int round)
{
    for (BenchCase *c = sec->cases; c->label; c++) {
        if (c->kind == CASE_QEMU && !cfg->qemu_img) {
            continue;
        }
        settle_image(cfg);
        if (c->read || c->raw == RAW_READ || c->raw == RAW_URING_READ) {
            warm_image(cfg);
        }
        switch (c->kind) {
        case CASE_RAW:
            c->iops[round] = bench_raw(cfg, c->direct, c->raw);
            break;
        case CASE_BACKEND:
            c->iops[round] = bench_backend(cfg, c->opts, c->qd, c->wce, c->read, c->flushes);
            break;
        case CASE_QEMU:
            last_extra = cpu_only(-1);
            c->iops[round] = bench_qemu_img(cfg, c->opts, c->qd, sec->cases[c->estimate_from].iops[round]);
            break;
        }
        c->cpu[round] = last_extra.cpu_us_per_io;
        c->syncs[round] = last_extra.syncs_per_durable;
        c->inl[round] = last_extra.inline_share;
        c->fsyncs[round] = last_extra.syncs_per_flush;
    }
}

/*
 * c's ratio to its limit: the median of the per-round ratios, so that a
 * round where the machine ran slower for both does not count (the two ran
 * seconds apart in the same round); 0 if either did not run.
 */
static double limit_ratio(const BenchSection *sec, const BenchCase *c, unsigned rounds)
{
    const BenchCase *lim = &sec->cases[c->limit];
    double r[MAX_ROUNDS];
    for (unsigned i = 0; i < rounds; i++) {
        if (c->iops[i] < 0 || lim->iops[i] <= 0) {
            return 0;
        }
        r[i] = c->iops[i] / lim->iops[i];
    }
    return median(r, rounds);
}

/* Print a section: median IOPS per case and its ratio to its limit (paired by round). */
static void print_section(const BenchConfig *cfg, BenchSection *sec, unsigned rounds)
{
    printf("\n%s\n", sec->title);
    for (BenchCase *c = sec->cases; c->label; c++) {
        if (c->kind == CASE_QEMU && !cfg->qemu_img) {
            continue;
        }
        double m = median(c->iops, rounds);
        if (m < 0) {
            printf("  %-52s %10s\n", c->label, "did not run");
            continue;
        }
        printf("  %-52s %10.0f IOPS  %6.2fx", c->label, m, limit_ratio(sec, c, rounds));
        if (c->limit) {
            printf(" (of case %d)", c->limit + 1);
        }
        double cpu = median(c->cpu, rounds), syncs = median(c->syncs, rounds);
        if (cpu >= 0) {
            printf("  cpu %6.2f us/io", cpu);
        }
        if (syncs >= 0) {
            printf("  %.3f syncs/durable write", syncs);
        }
        double inl = median(c->inl, rounds);
        if (inl > 0) {
            printf("  %3.0f%% inline", inl * 100);
        }
        double fsyncs = median(c->fsyncs, rounds);
        if (fsyncs >= 0) {
            printf("  %.3f fdatasync/guest FLUSH", fsyncs);
        }
        printf("\n");
    }
}

/* The load average now, as /proc/loadavg's first three fields. */
static void load_now(char *out, size_t len)
{
    g_autofree char *text = NULL;
    g_strlcpy(out, "?", len);
    if (g_file_get_contents("/proc/loadavg", &text, NULL, NULL)) {
        g_auto(GStrv) f = g_strsplit(text, " ", 4);
        if (g_strv_length(f) >= 3) {
            g_snprintf(out, len, "%s %s %s", f[0], f[1], f[2]);
        }
    }
}

/* Print a JSON array of per-round values. */
static void json_rounds(const double *v, unsigned rounds)
{
    printf("[");
    for (unsigned r = 0; r < rounds; r++) {
        printf("%s%.3f", r ? ", " : "", v[r]);
    }
    printf("]");
}

/* Print one section as a JSON object (one element of the "sections" array). */
static void json_section(const BenchConfig *cfg, BenchSection *sec, unsigned rounds, bool first, const char *load_before)
{
    char load[64];
    load_now(load, sizeof(load));
    printf("%s\n  {\"title\": \"%s\", \"load_before\": \"%s\", \"load_after\": \"%s\", \"cases\": [", first ? "" : ",",
           sec->title, load_before, load);
    bool first_case = true;
    for (BenchCase *c = sec->cases; c->label; c++) {
        if (c->kind == CASE_QEMU && !cfg->qemu_img) {
            continue;
        }
        double m = median(c->iops, rounds);
        printf("%s\n    {\"label\": \"%s\", \"iops\": %.1f, \"limit\": \"%s\", \"ratio\": %.3f, \"cpu_us_per_io\": %.3f, "
               "\"syncs_per_durable_write\": %.3f, \"inline_share\": %.3f, \"fdatasync_per_guest_flush\": %.3f, "
               "\"iops_rounds\": ",
               first_case ? "" : ",", c->label, m, sec->cases[c->limit].label, limit_ratio(sec, c, rounds),
               median(c->cpu, rounds), median(c->syncs, rounds),
               median(c->inl, rounds), median(c->fsyncs, rounds));
        json_rounds(c->iops, rounds);
        printf(", \"cpu_rounds\": ");
        json_rounds(c->cpu, rounds);
        printf("}");
        first_case = false;
    }
    printf("]}");
}

/* Create (or extend) the image and fill it so writes overwrite allocated blocks. */
static void prepare_image(const BenchConfig *cfg)
{
    int fd = open(cfg->image, O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ftruncate(fd, cfg->size) < 0) {
        fprintf(stderr, "vdisk-bench: --image %s: %s\n", cfg->image, strerror(errno));
        exit(VD_EXIT_FAILURE);
    }
    uint8_t *zero = g_malloc0(1 << 20);
    for (uint64_t off = 0; off < cfg->size; off += 1 << 20) {
        if (pwrite(fd, zero, MIN(1u << 20, cfg->size - off), off) < 0) {
            fprintf(stderr, "vdisk-bench: --image %s: %s\n", cfg->image, strerror(errno));
            exit(VD_EXIT_FAILURE);
        }
    }
    g_free(zero);
    fdatasync(fd);
    close(fd);
}

/*
 * The default image lives in a directory of its own under $TMPDIR.  It goes at
 * every exit (atexit) and when SIGINT, SIGTERM or SIGHUP ends the run; the
 * process then still dies of that signal, so its status says so.
 */
static char *temp_dir, *temp_image;

/* Remove the temporary image and its directory (async-signal-safe). */
static void remove_temp_image(void)
{
    if (temp_image) {
        unlink(temp_image);
        rmdir(temp_dir);
    }
}

/* A terminating signal: remove the temporary image, then die of the signal. */
static void die_of_signal(int sig)
{
    remove_temp_image();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Make the temporary image's directory and arrange for it to go at exit or on a signal. */
static bool make_temp_image(BenchConfig *cfg)
{
    static const int signals[] = { SIGINT, SIGTERM, SIGHUP };
    GError *err = NULL;
    temp_dir = g_dir_make_tmp("vdisk-bench-XXXXXX", &err);
    if (!temp_dir) {
        fprintf(stderr, "vdisk-bench: no --image, and no temporary one: %s\n", err->message);
        g_error_free(err);
        return false;
    }
    temp_image = g_build_filename(temp_dir, "bench.img", NULL);
    cfg->image = temp_image;
    atexit(remove_temp_image);
    struct sigaction sa = { .sa_handler = die_of_signal };
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < G_N_ELEMENTS(signals); i++) {
        sigaction(signals[i], &sa, NULL);
    }
    return true;
}

static const char usage_text[] =
    "Usage: vdisk-bench [OPTION]...\n"
    "Measure the block backend against the raw syscall loops: 4 KiB writes and reads\n"
    "on the page cache and with O_DIRECT, and the ways to make a write durable\n"
    "(O_DSYNC, RWF_DSYNC, fdatasync, the backend's wt-policy=fua and =dsync), also on\n"
    "a flush-bound device (delay.flush=2ms), and how guest FLUSHes coalesce.\n"
    "Results are IOPS, the ratio to the matching raw loop, CPU time per I/O and host\n"
    "syncs per durable write or per guest FLUSH (docs/benchmarks.md).\n"
    "\n"
    "  --image FILE           the image to write (created or extended; default: a\n"
    "                         temporary image in $TMPDIR, removed at exit and when\n"
    "                         SIGINT, SIGTERM or SIGHUP ends the run)\n"
    "  --size SIZE            image size (default 256M; suffix K, M, G; a multiple of\n"
    "                         4096, at least 1M)\n"
    "  --seconds S            seconds per case per round (default 1; more than 0, at\n"
    "                         most 600)\n"
    "  --rounds N             interleaved rounds, the median is shown (default 3; 1 to 25)\n"
    "  --sequential           sequential instead of random offsets\n"
    "  --compare-qemu         also run `qemu-img bench` (QEMU's block layer) on the same\n"
    "                         image and cache mode; implies --sequential\n"
    "  --json                 print every case, its per-round values and the load\n"
    "                         average as one JSON object instead of tables\n"
    "  --section TEXT         run only the sections whose title contains TEXT (e.g.\n"
    "                         \"page cache reads\"); an error if none does\n"
    "  -h, --help             show this help and exit\n"
    "  --version              show the version and exit\n"
    "\n"
    "Every option is given at most once.  Exit status: 0 on success, --help and\n"
    "--version; 1 when something fails at run time (the image cannot be created,\n"
    "qemu-img is missing, a write fails); 2 for a bad command line.\n";

#define CLI_ERROR(errp, ...) g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, __VA_ARGS__)

/* --image FILE */
static bool opt_image(void *opts, const char *value, GError **errp)
{
    ((BenchConfig *)opts)->image = value;
    return true;
}

/* --size SIZE: whole 4 KiB blocks, at least 1 MiB. */
static bool opt_size(void *opts, const char *value, GError **errp)
{
    BenchConfig *cfg = opts;
    if (!vd_parse_size("--size", value, 0, &cfg->size, errp)) {
        return false;
    }
    if (cfg->size < 1 << 20 || cfg->size % BLOCK) {
        CLI_ERROR(errp, "--size %s: must be a multiple of 4096, at least 1M", value);
        return false;
    }
    return true;
}

/* --seconds S: (0, 600]. */
static bool opt_seconds(void *opts, const char *value, GError **errp)
{
    BenchConfig *cfg = opts;
    char *end;
    cfg->seconds = g_ascii_strtod(value, &end);
    if (!*value || *end || !(cfg->seconds > 0 && cfg->seconds <= 600)) {
        CLI_ERROR(errp, "--seconds %s: expected a number of seconds, more than 0 and at most 600", value);
        return false;
    }
    return true;
}

/* --rounds N */
static bool opt_rounds(void *opts, const char *value, GError **errp)
{
    return vd_cli_parse_uint("--rounds", value, 1, MAX_ROUNDS, &((BenchConfig *)opts)->rounds, errp);
}

/* --sequential */
static bool opt_sequential(void *opts, const char *value, GError **errp)
{
    ((BenchConfig *)opts)->sequential = true;
    return true;
}

/* --json */
static bool opt_json(void *opts, const char *value, GError **errp)
{
    ((BenchConfig *)opts)->json = true;
    return true;
}

/* --compare-qemu (qemu-img is looked for once the command line is accepted). */
static bool opt_compare_qemu(void *opts, const char *value, GError **errp)
{
    BenchConfig *cfg = opts;
    cfg->compare_qemu = true;
    cfg->sequential = true;
    return true;
}

/* --section TEXT (checked against the titles once they are known). */
static bool opt_section(void *opts, const char *value, GError **errp)
{
    ((BenchConfig *)opts)->section = value;
    return true;
}

static const VdCliOption bench_options[] = {
    { "image", NULL, true, false, opt_image },
    { "size", NULL, true, false, opt_size },
    { "seconds", NULL, true, false, opt_seconds },
    { "rounds", NULL, true, false, opt_rounds },
    { "sequential", NULL, false, false, opt_sequential },
    { "compare-qemu", NULL, false, false, opt_compare_qemu },
    { "json", NULL, false, false, opt_json },
    { "section", NULL, true, false, opt_section },
};

static const VdCliTool bench_cli = {
    .name = "vdisk-bench",
    .usage = usage_text,
    .options = bench_options,
    .n_options = G_N_ELEMENTS(bench_options),
};

int main(int argc, char **argv)
{
    BenchConfig cfg = { .size = 256ull << 20, .seconds = 1.0, .rounds = 3 };
    int status;
    if (!vd_cli_start(&bench_cli, &cfg, argc, argv, &status)) {
        return status;
    }
    g_autofree char *qemu_img = cfg.compare_qemu ? g_find_program_in_path("qemu-img") : NULL;
    if (cfg.compare_qemu && !qemu_img) {
        fprintf(stderr, "vdisk-bench: --compare-qemu needs qemu-img on PATH (apt-get install qemu-utils)\n");
        return VD_EXIT_FAILURE;
    }
    cfg.qemu_img = qemu_img;
    BenchSection sections[] = {
        { "page cache, cache=writeback (ratio to the raw pwrite loop)", {
            { "raw pwrite loop, QD1", CASE_RAW, .direct = false, .raw = RAW_PLAIN },
            { "raw io_uring write loop, QD32", CASE_RAW, .direct = false, .raw = RAW_URING_WRITE },
            { "backend aio=threads, QD1", CASE_BACKEND, .opts = "cache=writeback,aio=threads", .qd = 1, .wce = true },
            { "backend aio=threads, QD32", CASE_BACKEND, .opts = "cache=writeback,aio=threads", .qd = 32, .wce = true },
            { "backend aio=io_uring, QD1", CASE_BACKEND, .opts = "cache=writeback,aio=io_uring", .qd = 1, .wce = true },
            { "backend aio=io_uring, QD32", CASE_BACKEND, .opts = "cache=writeback,aio=io_uring", .qd = 32, .wce = true },
            { "backend aio=io_uring inline=on (no back-off), QD1", CASE_BACKEND, .opts = "cache=writeback,inline=on", .qd = 1, .wce = true },
            { "qemu-img bench -t writeback, QD1", CASE_QEMU, .opts = "writeback", .qd = 1, .estimate_from = 1 },
            { "qemu-img bench -t writeback, QD32", CASE_QEMU, .opts = "writeback", .qd = 32, .estimate_from = 2 },
        } },
        { "O_DIRECT, cache=none (ratio to the raw O_DIRECT pwrite loop; QD32 backend cases: to the raw io_uring loop)", {
            { "raw pwrite loop, QD1", CASE_RAW, .direct = true, .raw = RAW_PLAIN },
            { "raw io_uring write loop, QD32", CASE_RAW, .direct = true, .raw = RAW_URING_WRITE },
            { "backend aio=threads, QD1", CASE_BACKEND, .opts = "cache=none,aio=threads", .qd = 1, .wce = true },
            { "backend aio=threads, QD32", CASE_BACKEND, .opts = "cache=none,aio=threads", .qd = 32, .wce = true, .limit = 1 },
            { "backend aio=io_uring, QD1", CASE_BACKEND, .opts = "cache=none,aio=io_uring", .qd = 1, .wce = true },
            { "backend aio=io_uring, QD32", CASE_BACKEND, .opts = "cache=none,aio=io_uring", .qd = 32, .wce = true, .limit = 1 },
            { "qemu-img bench -t none, QD1", CASE_QEMU, .opts = "none", .qd = 1, .estimate_from = 1 },
            { "qemu-img bench -t none, QD32", CASE_QEMU, .opts = "none", .qd = 32, .estimate_from = 2 },
        } },
        { "page cache reads, cache=writeback (ratio to the raw pread loop; read QD32: to the raw io_uring loop)", {
            { "raw pread loop, QD1", CASE_RAW, .direct = false, .raw = RAW_READ },
            { "raw io_uring read loop, QD32", CASE_RAW, .direct = false, .raw = RAW_URING_READ },
            { "backend aio=io_uring, read QD1", CASE_BACKEND, .opts = "cache=writeback,aio=io_uring", .qd = 1, .wce = true, .read = true },
            { "backend aio=io_uring, read QD32", CASE_BACKEND, .opts = "cache=writeback,aio=io_uring", .qd = 32, .wce = true, .read = true, .limit = 1 },
        } },
        { "durable writes, page cache (ratio to raw pwrite + fdatasync)", {
            { "raw pwrite + fdatasync", CASE_RAW, .direct = false, .raw = RAW_FDATASYNC },
            { "raw O_DSYNC descriptor", CASE_RAW, .direct = false, .raw = RAW_O_DSYNC },
            { "raw pwritev2(RWF_DSYNC)", CASE_RAW, .direct = false, .raw = RAW_RWF_DSYNC },
            { "raw io_uring RWF_DSYNC loop, QD32", CASE_RAW, .direct = false, .raw = RAW_URING_DSYNC },
            { "backend WCE=0 wt-policy=fua aio=threads, QD1", CASE_BACKEND, .opts = "cache=writeback,wt-policy=fua,aio=threads", .qd = 1 },
            { "backend WCE=0 wt-policy=dsync aio=threads, QD1", CASE_BACKEND, .opts = "cache=writeback,wt-policy=dsync,aio=threads", .qd = 1 },
            { "backend WCE=0 wt-policy=fua aio=threads, QD32", CASE_BACKEND, .opts = "cache=writeback,wt-policy=fua,aio=threads", .qd = 32 },
            { "backend WCE=0 wt-policy=dsync aio=threads, QD32", CASE_BACKEND, .opts = "cache=writeback,wt-policy=dsync,aio=threads", .qd = 32 },
            { "backend WCE=0 wt-policy=fua aio=io_uring, QD1", CASE_BACKEND, .opts = "cache=writeback,aio=io_uring", .qd = 1 },
            { "backend WCE=0 wt-policy=fua aio=io_uring, QD32", CASE_BACKEND, .opts = "cache=writeback,aio=io_uring", .qd = 32 },
            { "qemu-img bench -t writethrough, QD1", CASE_QEMU, .opts = "writethrough", .qd = 1, .estimate_from = 2 },
            { "qemu-img bench -t writethrough, QD32", CASE_QEMU, .opts = "writethrough", .qd = 32, .estimate_from = 3 },
        } },
        { "durable writes, O_DIRECT (ratio to raw pwrite + fdatasync)", {
            { "raw pwrite + fdatasync", CASE_RAW, .direct = true, .raw = RAW_FDATASYNC },
            { "raw O_DSYNC descriptor", CASE_RAW, .direct = true, .raw = RAW_O_DSYNC },
            { "raw pwritev2(RWF_DSYNC)", CASE_RAW, .direct = true, .raw = RAW_RWF_DSYNC },
            { "backend WCE=0 wt-policy=fua aio=threads, QD1", CASE_BACKEND, .opts = "cache=none,wt-policy=fua,aio=threads", .qd = 1 },
            { "backend WCE=0 wt-policy=dsync aio=threads, QD1", CASE_BACKEND, .opts = "cache=none,wt-policy=dsync,aio=threads", .qd = 1 },
            { "backend WCE=0 wt-policy=fua aio=io_uring, QD1", CASE_BACKEND, .opts = "cache=none,aio=io_uring", .qd = 1 },
            { "qemu-img bench -t directsync, QD1", CASE_QEMU, .opts = "directsync", .qd = 1, .estimate_from = 3 },
        } },
        { "flush coalescing: 4 KiB writes and FLUSHes alternating, write cache on (ratio to QD1)", {
            { "backend page cache, QD1", CASE_BACKEND, .opts = "cache=writeback", .qd = 1, .wce = true, .flushes = true },
            { "backend page cache, QD32", CASE_BACKEND, .opts = "cache=writeback", .qd = 32, .wce = true, .flushes = true },
            { "backend O_DIRECT, QD32", CASE_BACKEND, .opts = "cache=none", .qd = 32, .wce = true, .flushes = true },
        } },
        { "flush-bound device, delay.flush=2ms: every host flush and durable write waits 2 ms (ratio to QD1)", {
            { "backend WCE=0 aio=io_uring, QD1", CASE_BACKEND, .opts = "cache=writeback,delay.flush=2ms", .qd = 1 },
            { "backend WCE=0 aio=io_uring, QD32", CASE_BACKEND, .opts = "cache=writeback,delay.flush=2ms", .qd = 32 },
            { "backend WCE=0 aio=threads, QD32", CASE_BACKEND, .opts = "cache=writeback,aio=threads,delay.flush=2ms", .qd = 32 },
        } },
    };
    bool run[G_N_ELEMENTS(sections)], any = false;
    for (size_t i = 0; i < G_N_ELEMENTS(sections); i++) {
        run[i] = !cfg.section || strstr(sections[i].title, cfg.section);
        any |= run[i];
    }
    if (!any) {
        fprintf(stderr, "vdisk-bench: --section '%s' matches no section title\n", cfg.section);
        return VD_EXIT_FAILURE;
    }
    if (!cfg.image && !make_temp_image(&cfg)) {
        return VD_EXIT_FAILURE;
    }
    if (posix_memalign((void **)&block_buf, 4096, BLOCK) != 0) {
        return 1;
    }
    memset(block_buf, 0xa5, BLOCK);
    prepare_image(&cfg);
    const char *pattern = cfg.sequential ? "sequential" : "random";
    if (!cfg.json) printf("vdisk-bench: 4 KiB %s writes, %.1f s per case per round, median of %u interleaved rounds, image %s (%" G_GUINT64_FORMAT
           " MiB)\n", pattern, cfg.seconds, cfg.rounds, cfg.image, cfg.size >> 20);

    /* Rounds interleave the cases so a noisy disk affects all of them alike. */
    if (cfg.json) {
        printf("{\"pattern\": \"%s\", \"seconds\": %.2f, \"rounds\": %d, \"size_mib\": %" G_GUINT64_FORMAT
               ", \"sections\": [", pattern, cfg.seconds, cfg.rounds, cfg.size >> 20);
    }
    bool first = true;
    for (size_t i = 0; i < G_N_ELEMENTS(sections); i++) {
        if (!run[i]) {
            continue;
        }
        char load[64];
        load_now(load, sizeof(load));
        for (unsigned r = 0; r < cfg.rounds; r++) {
            run_round(&cfg, &sections[i], r);
        }
        if (cfg.json) {
            json_section(&cfg, &sections[i], cfg.rounds, first, load);
            first = false;
        } else {
            print_section(&cfg, &sections[i], cfg.rounds);
            printf("  (load average before: %s)\n", load);
        }
    }
    if (cfg.json) {
        printf("\n]}\n");
    }

    free(block_buf);
    return 0;
}
