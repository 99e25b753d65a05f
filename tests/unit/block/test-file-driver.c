/*
 * test-file-driver.c - the five cache modes on a real file, checked through
 * the host counters and, independently, through the kernel's view of the
 * descriptors (/proc/self/fdinfo flags) and of the page cache (mincore).
 */
#include "block-test-util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>

static TempImage scratch;
static uint8_t buf[65536] __attribute__((aligned(4096)));

/* A fresh 4 MiB image for each test. */
static int setup(void **state)
{
    temp_image_create(&scratch, "disk.img", 4 << 20);
    return 0;
}

static int teardown(void **state)
{
    temp_image_remove(&scratch);
    return 0;
}

static VdBlockBackend *open_image(const char *extra)
{
    g_autofree char *opts = g_strdup_printf("file=%s%s%s", scratch.path, *extra ? "," : "", extra);
    return open_ok(opts);
}

/* The /proc/self/fdinfo text of every descriptor of this process whose link reads target (g_free each). */
static GPtrArray *fdinfo_of_fds_on(const char *target)
{
    GPtrArray *infos = g_ptr_array_new_with_free_func(g_free);
    GDir *d = g_dir_open("/proc/self/fd", 0, NULL);
    const char *name;
    while ((name = g_dir_read_name(d))) {
        g_autofree char *link = g_build_filename("/proc/self/fd", name, NULL);
        g_autofree char *link_target = g_file_read_link(link, NULL);
        if (!link_target || strcmp(link_target, target) != 0) {
            continue;
        }
        g_autofree char *info_path = g_strdup_printf("/proc/self/fdinfo/%s", name);
        char *info = NULL;
        assert_true(g_file_get_contents(info_path, &info, NULL, NULL));
        g_ptr_array_add(infos, info);
    }
    g_dir_close(d);
    return infos;
}

/* Open-file flags of every descriptor this process holds on the image, OR-ed per kind. */
static void image_fd_flags(unsigned *count, int *any_direct, int *any_dsync, int *all_direct)
{
    *count = 0;
    *any_direct = *any_dsync = 0;
    *all_direct = 1;
    g_autoptr(GPtrArray) infos = fdinfo_of_fds_on(scratch.path);
    for (guint i = 0; i < infos->len; i++) {
        const char *f = strstr(infos->pdata[i], "flags:");
        assert_non_null(f);
        unsigned long flags = strtoul(f + 6, NULL, 8);
        (*count)++;
        *any_direct |= !!(flags & O_DIRECT);
        *all_direct &= !!(flags & O_DIRECT);
        *any_dsync |= !!(flags & O_DSYNC);
    }
}

typedef struct ModeRow {
    const char *cache;
    bool direct, wce, flush_syncs;
} ModeRow;

/* The mode table of docs/cache-modes.md, row by row. */
static const ModeRow mode_rows[] = {
    { "writeback", false, true, true },
    { "none", true, true, true },
    { "writethrough", false, false, true },
    { "directsync", true, false, true },
    { "unsafe", false, true, false },
};

/*
 * Each mode, with each I/O engine and inline=on or off: open flags, initial
 * WCE, and what a flush and a FUA write do on the host.
 */
static void check_mode_rows(const char *aio, const char *inl)
{
    for (size_t i = 0; i < G_N_ELEMENTS(mode_rows); i++) {
        const ModeRow *row = &mode_rows[i];
        g_autofree char *opt = aio ? g_strdup_printf("cache=%s,aio=%s,inline=%s", row->cache, aio, inl)
                                   : g_strdup_printf("cache=%s,inline=%s", row->cache, inl);
        VdBlockBackend *blk = open_image(opt);
        unsigned n;
        int any_direct, any_dsync, all_direct;
        image_fd_flags(&n, &any_direct, &any_dsync, &all_direct);
        assert_int_equal(n, 1);
        assert_int_equal(all_direct, row->direct);
        assert_int_equal(any_dsync, 0);
        assert_int_equal(vd_blk_write_cache(blk), row->wce);
        assert_int_equal(vd_blk_default_write_cache(blk), row->wce);

        /* Turn the cache on so a plain write is a cached write in every mode. */
        assert_int_equal(vd_blk_set_write_cache_sync(blk, true), 0);
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
        assert_int_equal(vd_blk_flush_sync(blk), 0);
        VdBlockStats s = stats_of(blk);
        assert_int_equal(s.host_fdatasync, row->flush_syncs ? 1 : 0);
        assert_int_equal(s.host_rwf_dsync_writes, 0);

        assert_int_equal(vd_blk_pwrite_sync(blk, 4096, buf, 4096, VD_REQ_FUA), 0);
        s = stats_of(blk);
        assert_int_equal(s.host_rwf_dsync_writes, row->flush_syncs ? 1 : 0);
        assert_int_equal(s.host_fdatasync, row->flush_syncs ? 1 : 0);

        /* WCE off: every write is durable (except unsafe), and 1->0 flushed first. */
        assert_int_equal(vd_blk_pwrite_sync(blk, 8192, buf, 4096, 0), 0);
        assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
        s = stats_of(blk);
        assert_int_equal(s.host_fdatasync, row->flush_syncs ? 2 : 0);
        assert_int_equal(vd_blk_pwrite_sync(blk, 12288, buf, 4096, 0), 0);
        s = stats_of(blk);
        assert_int_equal(s.host_rwf_dsync_writes, row->flush_syncs ? 2 : 0);
        assert_int_equal(s.host_writes, 4);
        /* The non-durable page-cache writes run inline (cache=unsafe: all four); durable ones and O_DIRECT never. */
        bool on = strcmp(inl, "on") == 0;
        assert_int_equal(s.inline_ops, !on || row->direct ? 0 : row->flush_syncs ? 2 : 4);
        /* With io_uring, the other single-step ops went through the ring. */
        if (vd_blk_aio(blk) == VD_AIO_IO_URING) {
            assert_true(s.uring_ops + s.inline_ops >= 4);
        } else {
            assert_int_equal(s.uring_ops, 0);
        }
        vd_blk_close(blk);
    }
}

/* The mode table with inline=on (exact inline counts) and inline=off (none inline). */
static void check_mode_table(const char *aio)
{
    check_mode_rows(aio, "on");
    check_mode_rows(aio, "off");
}

typedef struct CbProbe {
    bool submitting;        /* true while the submitting call runs */
    bool done, early;
    int ret;
} CbProbe;

/* Completion callback that notes whether it ran inside the submitting call. */
static void probe_cb(void *opaque, int ret)
{
    CbProbe *p = opaque;
    p->early |= p->submitting;
    p->done = true;
    p->ret = ret;
}

/* Iterate the default context until the probe's request completed. */
static void probe_wait(CbProbe *p)
{
    while (!p->done) {
        g_main_context_iteration(NULL, TRUE);
    }
}

/*
 * The inline path runs page-cache I/O on the submitting thread, but the
 * callback still comes from the loop, never from inside the submitting call;
 * an injected fault is taken there like on any engine.
 */
static void test_inline_completion_deferred(void **state)
{
    static const char *const engines[] = { "cache=writeback,aio=threads", "cache=writeback,aio=io_uring" };
    for (size_t e = 0; e < G_N_ELEMENTS(engines); e++) {
        VdBlockBackend *blk = open_image(engines[e]);
        memset(buf, 0x5a, 4096);
        struct iovec iov = { .iov_base = buf, .iov_len = 4096 };
        CbProbe p = { .submitting = true };
        vd_blk_pwritev(blk, 8192, &iov, 1, 0, probe_cb, &p);
        p.submitting = false;
        assert_false(p.done);
        probe_wait(&p);
        assert_false(p.early);
        assert_int_equal(p.ret, 0);

        struct iovec riov = { .iov_base = buf + 4096, .iov_len = 4096 };
        p = (CbProbe){ .submitting = true };
        vd_blk_preadv(blk, 8192, &riov, 1, probe_cb, &p);
        p.submitting = false;
        assert_false(p.done);
        probe_wait(&p);
        assert_int_equal(p.ret, 0);
        assert_memory_equal(buf, buf + 4096, 4096);
        assert_true(stats_of(blk).inline_ops >= 1);    /* the read (a cached read is never timed out) */

        vd_blk_inject_error(blk, VD_FAULT_WRITE, EIO, 1);
        p = (CbProbe){ .submitting = true };
        vd_blk_pwritev(blk, 8192, &iov, 1, 0, probe_cb, &p);
        p.submitting = false;
        assert_false(p.done);
        probe_wait(&p);
        assert_int_equal(p.ret, -EIO);
        vd_blk_close(blk);
    }
}

typedef struct Chain {
    VdBlockBackend *blk;
    struct iovec iov;
    unsigned submitted, completed, total;
    bool submitting, early;
    bool read;                  /* reads instead of writes */
    int ret;
} Chain;

static void chain_submit(Chain *c);

/* Completion of a chained write: note it and submit the next one, as a QD1 guest does. */
static void chain_cb(void *opaque, int ret)
{
    Chain *c = opaque;
    c->early |= c->submitting;
    c->completed++;
    c->ret = c->ret ? c->ret : ret;
    if (c->submitted < c->total) {
        chain_submit(c);
    }
}

/* Submit the chain's next 4 KiB write. */
static void chain_submit(Chain *c)
{
    c->submitting = true;
    uint64_t off = (uint64_t)(c->submitted++ % 64) * 4096;
    if (c->read) {
        vd_blk_preadv(c->blk, off, &c->iov, 1, chain_cb, c);
    } else {
        vd_blk_pwritev(c->blk, off, &c->iov, 1, 0, chain_cb, c);
    }
    c->submitting = false;
}

/*
 * The ready list also runs the completions its callbacks queue, so a QD1
 * chain of inline writes needs one loop iteration (one poll) per budget of
 * completions, not one per write; the budget leaves the loop to its other
 * sources after at most 256.  No callback runs inside its submitting call.
 */
static void test_inline_chain_budget(void **state)
{
    VdBlockBackend *blk = open_image("cache=writeback,inline=on");
    Chain c = { .blk = blk, .iov = { buf, 4096 }, .total = 600 };
    chain_submit(&c);
    assert_int_equal(c.completed, 0);
    g_main_context_iteration(NULL, FALSE);
    assert_in_range(c.completed, 2, 256);
    while (c.completed < c.total) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_false(c.early);
    assert_int_equal(c.ret, 0);
    assert_int_equal(stats_of(blk).inline_ops, c.total);
    vd_blk_close(blk);
}

/*
 * io_uring: the dispatch sends what its callbacks submitted and reaps what
 * completed at submit (cached reads), so a queue of 8 needs far fewer loop
 * iterations than rounds; after at most 256 completions (and the rest of a
 * round) the loop gets back to its other sources.
 */
static void test_uring_chain_budget(void **state)
{
    VdBlockBackend *blk = open_image("cache=writeback,aio=io_uring,inline=off");
    memset(buf, 0x5a, sizeof(buf));
    for (uint64_t off = 0; off < 64 * 4096; off += sizeof(buf)) {
        assert_int_equal(vd_blk_pwrite_sync(blk, off, buf, sizeof(buf), 0), 0);    /* now in the page cache */
    }
    VdBlockStats before = stats_of(blk);
    if (before.uring_submits == 0) {
        vd_blk_close(blk);
        skip();     /* the ring could not be set up here: the pool ran the write */
    }
    uint8_t *dst = buf + sizeof(buf) - 4096;
    memset(dst, 0, 4096);
    Chain c = { .blk = blk, .iov = { dst, 4096 }, .total = 800, .read = true };
    for (int i = 0; i < 8; i++) {
        chain_submit(&c);
    }
    assert_int_equal(c.completed, 0);
    g_main_context_iteration(NULL, FALSE);
    /* A file system that refuses RWF_NOWAIT (tmpfs) has io_uring read from its workers: nothing at submit. */
    assert_in_range(c.completed, path_answers_nowait(scratch.path) ? 9 : 0, 256 + 7);
    while (c.completed < c.total) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_false(c.early);
    assert_int_equal(c.ret, 0);
    assert_memory_equal(dst, buf, 4096);
    VdBlockStats after = stats_of(blk);
    assert_int_equal(after.host_reads - before.host_reads, c.total);
    assert_int_equal(after.inline_ops, before.inline_ops);
    assert_true(after.uring_submits - before.uring_submits < c.total / 4);
    vd_blk_close(blk);
}

/* True if the scratch image's file system has FALLOC_FL_ZERO_RANGE (tmpfs has not); zeroes its last 4 KiB. */
static bool scratch_has_zero_range(void)
{
    int fd = open(scratch.path, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    bool ok = fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, st.st_size - 4096, 4096) == 0;
    close(fd);
    return ok;
}

/*
 * Depth (inline=auto): a cached read submitted while another request is in
 * flight goes to io_uring, which batches; alone it runs inline.  inline=on
 * and the thread pool (which does not batch) run both inline.
 */
static void test_inline_read_depth(void **state)
{
    if (!path_answers_nowait(scratch.path)) {
        print_message("skipped: the scratch image's file system refuses RWF_NOWAIT (tmpfs?): no read runs inline\n");
        skip();
    }
    static const struct { const char *opts; unsigned inline_reads; } rows[] = {
        { "cache=writeback,aio=io_uring", 1 },
        { "cache=writeback,aio=io_uring,inline=auto", 1 },
        { "cache=writeback,aio=io_uring,inline=on", 2 },
        { "cache=writeback,aio=threads", 2 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        VdBlockBackend *blk = open_image(rows[i].opts);
        memset(buf, 0x3c, 8192);
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 8192, 0), 0);    /* now in the page cache */
        VdBlockStats before = stats_of(blk);
        struct iovec iov[2] = { { buf + 8192, 4096 }, { buf + 12288, 4096 } };
        CbProbe p[2] = { { .submitting = false }, { .submitting = false } };
        vd_blk_preadv(blk, 0, &iov[0], 1, probe_cb, &p[0]);
        vd_blk_preadv(blk, 4096, &iov[1], 1, probe_cb, &p[1]);
        probe_wait(&p[0]);
        probe_wait(&p[1]);
        assert_int_equal(p[0].ret, 0);
        assert_int_equal(p[1].ret, 0);
        assert_memory_equal(buf + 8192, buf, 8192);
        VdBlockStats after = stats_of(blk);
        assert_int_equal(after.inline_ops - before.inline_ops, rows[i].inline_reads);
        assert_int_equal(after.host_reads - before.host_reads, 2);
        vd_blk_close(blk);
    }
}

/*
 * Drop the clean page at off from the page cache and check that it went:
 * POSIX_FADV_DONTNEED is advice, and under load a page can survive it (it
 * was seen once in a parallel test run), so ask again a few times.
 */
static bool drop_from_page_cache(off_t off)
{
    int fd = open(scratch.path, O_RDONLY);
    assert_true(fd >= 0);
    long page = sysconf(_SC_PAGESIZE);
    void *map = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, off);
    assert_true(map != MAP_FAILED);
    unsigned char resident = 1;
    for (int i = 0; i < 100 && (resident & 1); i++) {
        assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
        assert_int_equal(mincore(map, page, &resident), 0);
        if (resident & 1) {
            g_usleep(1000);
        }
    }
    munmap(map, page);
    close(fd);
    return !(resident & 1);
}

/* A read of a page not in the page cache asks RWF_NOWAIT, gets EAGAIN, and is run by the engine instead. */
static void test_inline_read_miss_goes_to_engine(void **state)
{
    VdBlockBackend *blk = open_image("cache=writeback");
    memset(buf, 0xa5, 4096);
    assert_int_equal(vd_blk_pwrite_sync(blk, 1 << 20, buf, 4096, 0), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    if (!drop_from_page_cache(1 << 20)) {
        vd_blk_close(blk);
        skip();     /* the kernel kept the page (another process maps or reads it): no miss to test */
    }
    VdBlockStats before = stats_of(blk);
    memset(buf + 4096, 0, 4096);
    assert_int_equal(vd_blk_pread_sync(blk, 1 << 20, buf + 4096, 4096), 0);
    assert_memory_equal(buf, buf + 4096, 4096);
    VdBlockStats after = stats_of(blk);
    assert_int_equal(after.inline_ops, before.inline_ops);     /* not completed inline */
    assert_int_equal(after.host_reads, before.host_reads + 2); /* the EAGAIN probe and the engine's read */
    /* Now it is cached: the next read completes inline. */
    assert_int_equal(vd_blk_pread_sync(blk, 1 << 20, buf + 4096, 4096), 0);
    assert_int_equal(stats_of(blk).inline_ops, after.inline_ops + 1);
    vd_blk_close(blk);
}

/* A tmpfs file of size bytes (a memfd), for the backend to open as /proc/self/fd/N. */
static int memfd_image(off_t size)
{
    int mfd = memfd_create("vdisk-test", MFD_CLOEXEC);
    assert_true(mfd >= 0);
    assert_int_equal(ftruncate(mfd, size), 0);
    return mfd;
}

/*
 * tmpfs (a memfd here), FUSE and NFS answer preadv2(RWF_NOWAIT) with
 * EOPNOTSUPP whatever the page cache holds.  The read that finds out goes
 * to the engine and succeeds; later reads go there at once, and writes
 * stay inline (they never ask RWF_NOWAIT).
 */
static void test_inline_read_without_nowait(void **state)
{
    int mfd = memfd_image(1 << 20);
    if (fd_answers_nowait(mfd)) {
        close(mfd);
        print_message("skipped: this kernel's tmpfs answers RWF_NOWAIT: nothing to fall back from\n");
        skip();
    }
    g_autofree char *opts = g_strdup_printf("file=/proc/self/fd/%d,cache=writeback,inline=on", mfd);
    VdBlockBackend *blk = open_ok(opts);
    for (int i = 0; i < 3; i++) {
        memset(buf, 0x30 + i, 4096);
        VdBlockStats before = stats_of(blk);
        assert_int_equal(vd_blk_pwrite_sync(blk, i * 4096, buf, 4096, 0), 0);
        assert_int_equal(stats_of(blk).inline_ops, before.inline_ops + 1);
        memset(buf + 4096, 0, 4096);
        before = stats_of(blk);
        assert_int_equal(vd_blk_pread_sync(blk, i * 4096, buf + 4096, 4096), 0);
        assert_memory_equal(buf, buf + 4096, 4096);
        VdBlockStats after = stats_of(blk);
        assert_int_equal(after.inline_ops, before.inline_ops);
        /* The first read also made the refused probe; later ones go to the engine at once. */
        assert_int_equal(after.host_reads, before.host_reads + (i == 0 ? 2 : 1));
    }
    vd_blk_close(blk);
    close(mfd);
}

/* A clock for the inline path's timing: each read returns now, then moves it by step. */
typedef struct FakeClock {
    gint64 now, step;
} FakeClock;

/* VdClockFunc over a FakeClock. */
static gint64 fake_clock(void *opaque)
{
    FakeClock *c = opaque;
    gint64 t = c->now;
    c->now += c->step;
    return t;
}

/* Write 4 KiB at off; true if it ran inline. */
static bool write_ran_inline(VdBlockBackend *blk, uint64_t off)
{
    uint64_t before = stats_of(blk).inline_ops;
    assert_int_equal(vd_blk_pwrite_sync(blk, off, buf, 4096, 0), 0);
    return stats_of(blk).inline_ops == before + 1;
}

/*
 * inline=auto (the default): two inline writes in a row that each took
 * longer than 200 us (by the inline path's clock, here a fake one) send the
 * writes to the engine for 1 s after the second ended; 200 us exactly is no
 * stall, and one fast write between two slow ones (a preemption) clears it.
 */
static void test_inline_write_backoff(void **state)
{
    static const char *const opts[] = { "cache=writeback", "cache=writeback,inline=auto" };
    for (size_t i = 0; i < G_N_ELEMENTS(opts); i++) {
        VdBlockBackend *blk = open_image(opts[i]);
        FakeClock c = { .now = 1000000, .step = 0 };
        vd_blk_set_inline_clock(blk, fake_clock, &c);
        assert_true(write_ran_inline(blk, 0));
        c.step = 200;                               /* t1 - t0 = 200 us: not a stall */
        assert_true(write_ran_inline(blk, 0));
        assert_true(write_ran_inline(blk, 0));
        c.step = 201;                               /* slow, fast, slow: preemptions, no back-off */
        assert_true(write_ran_inline(blk, 0));
        c.step = 0;
        assert_true(write_ran_inline(blk, 0));
        c.step = 201;
        assert_true(write_ran_inline(blk, 0));
        gint64 t1 = c.now + c.step;                 /* a second slow one in a row: inline, then back off */
        assert_true(write_ran_inline(blk, 0));
        c.step = 0;
        c.now = t1 + 1000000 - 1;
        assert_false(write_ran_inline(blk, 4096));  /* to the engine until t1 + 1 s */
        assert_int_equal(stats_of(blk).inline_backoffs, 1);
        c.now = t1 + 1000000;
        c.step = 201;                               /* inline again; a slow write starts a new pair */
        assert_true(write_ran_inline(blk, 4096));
        c.step = 0;
        assert_true(write_ran_inline(blk, 4096));
        assert_true(write_ran_inline(blk, 4096));
        vd_blk_set_inline_clock(blk, NULL, NULL);
        vd_blk_close(blk);
    }
}

/* inline=on never backs off; inline=off runs nothing inline, reads or writes. */
static void test_inline_modes(void **state)
{
    VdBlockBackend *blk = open_image("cache=writeback,inline=on");
    FakeClock c = { .now = 1000000, .step = 1000 };     /* every write "takes" 1 ms */
    vd_blk_set_inline_clock(blk, fake_clock, &c);
    for (int i = 0; i < 3; i++) {
        assert_true(write_ran_inline(blk, i * 4096));
    }
    vd_blk_close(blk);

    blk = open_image("cache=writeback,inline=off");
    assert_false(write_ran_inline(blk, 0));
    assert_int_equal(vd_blk_pread_sync(blk, 0, buf, 4096), 0);     /* cached: it would qualify */
    assert_int_equal(stats_of(blk).inline_ops, 0);
    vd_blk_close(blk);

    g_autoptr(GError) err = NULL;
    assert_false(vd_blk_check_options("driver=null,size=1M,inline=maybe", &err));
    assert_string_equal(err->message, "invalid inline 'maybe'; accepted values: auto, on, off");
}

/*
 * A fault rule counts each op once: while one applies to reads, a read goes
 * to the engine, not inline first (a page-cache miss would then pass the
 * checkpoint twice, and fault.read=EIO@2 would fail the first read).
 */
static void test_inline_fault_counts_once(void **state)
{
    VdBlockBackend *blk = open_image("cache=writeback,fault.read=EIO@2");
    assert_int_equal(vd_blk_pwrite_sync(blk, 1 << 20, buf, 4096, 0), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    if (!drop_from_page_cache(1 << 20)) {    /* a miss: RWF_NOWAIT would say EAGAIN */
        vd_blk_close(blk);
        skip();     /* the kernel kept the page: an inline read would not show */
    }
    uint64_t reads0 = stats_of(blk).host_reads;
    assert_int_equal(vd_blk_pread_sync(blk, 1 << 20, buf, 4096), 0);
    assert_int_equal(stats_of(blk).host_reads, reads0 + 1);             /* no inline probe first */
    assert_int_equal(vd_blk_pread_sync(blk, 1 << 20, buf, 4096), -EIO);
    assert_int_equal(vd_blk_pread_sync(blk, 1 << 20, buf, 4096), 0);
    vd_blk_close(blk);
}

/* Count completions of a batch. */
static void count_cb(void *opaque, int ret)
{
    int *left = opaque;
    assert_int_equal(ret, 0);
    (*left)--;
}

/* io_uring: every SQE queued in one loop iteration goes to the kernel in one io_uring_submit. */
static void test_io_uring_batched_submit(void **state)
{
    VdBlockBackend *blk = open_image("cache=none,aio=io_uring");
    struct iovec iov[8];
    int left = G_N_ELEMENTS(iov);
    for (size_t i = 0; i < G_N_ELEMENTS(iov); i++) {
        iov[i] = (struct iovec){ .iov_base = buf + i * 4096, .iov_len = 4096 };
        vd_blk_preadv(blk, i * 4096, &iov[i], 1, count_cb, &left);
    }
    while (left) {
        g_main_context_iteration(NULL, TRUE);
    }
    VdBlockStats s = stats_of(blk);
    assert_int_equal(s.uring_ops, 8);
    assert_int_equal(s.uring_submits, 1);
    vd_blk_close(blk);
}

/* How many entries of this process's io_uring file tables name the image; -1 if it holds no ring. */
static int ring_files_naming_image(void)
{
    g_autoptr(GPtrArray) rings = fdinfo_of_fds_on("anon_inode:[io_uring]");
    int found = rings->len ? 0 : -1;
    for (guint r = 0; r < rings->len; r++) {
        const char *table = strstr(rings->pdata[r], "UserFiles:");
        g_auto(GStrv) lines = g_strsplit(table ? table : "", "\n", -1);
        for (size_t i = 1; lines[i] && g_str_has_prefix(lines[i], "    "); i++) {
            const char *colon = strstr(lines[i], ": ");
            found += colon && strcmp(colon + 2, scratch.path) == 0;
        }
    }
    return found;
}

/* True on a kernel that takes a sparse io_uring file table (5.19 and later). */
static bool kernel_has_sparse_files(void)
{
    struct utsname u;
    unsigned major = 0, minor = 0;
    return uname(&u) == 0 && sscanf(u.release, "%u.%u", &major, &minor) == 2 && (major > 5 || (major == 5 && minor >= 19));
}

/*
 * The ring names the image's descriptors by registered slot (no file
 * reference per op), both of them with wt-policy=dsync, and each write lands
 * in the file its descriptor stands for.  Closing the backend lets go of
 * them at once: the image can be opened again, lock and all, straight away
 * (the kernel frees a closed ring later, from a work queue).
 */
static void test_io_uring_registered_files(void **state)
{
    if (!kernel_has_sparse_files()) {
        skip();     /* before 5.19 ops name their descriptors */
    }
    for (int round = 0; round < 4; round++) {
        VdBlockBackend *blk = open_image("cache=none,aio=io_uring,wt-policy=dsync");
        if (vd_blk_aio(blk) != VD_AIO_IO_URING) {
            vd_blk_close(blk);
            skip();     /* the ring could not be set up here */
        }
        memset(buf, 0x40 + round, 4096);
        assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
        assert_int_equal(ring_files_naming_image(), 1);
        assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
        memset(buf, 0x50 + round, 4096);
        assert_int_equal(vd_blk_pwrite_sync(blk, 4096, buf, 4096, 0), 0);
        assert_int_equal(ring_files_naming_image(), 2);
        VdBlockStats s = stats_of(blk);
        assert_int_equal(s.uring_ops, 3);   /* the plain write, the 1->0 fdatasync, the O_DSYNC write */
        assert_int_equal(s.host_dsync_writes, 1);
        vd_blk_close(blk);
        assert_int_equal(ring_files_naming_image(), -1);
        int fd = open(scratch.path, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, buf, 8192, 0), 8192);
        close(fd);
        assert_int_equal(buf[0], 0x40 + round);
        assert_int_equal(buf[4096], 0x50 + round);
    }
}

typedef struct OtherThread {
    VdBlockBackend *blk;
    Completion write, flush;
} OtherThread;

/* Thread body: one write and one flush, iterating the backend's context for at most 5 s. */
static gpointer other_thread_io(gpointer opaque)
{
    OtherThread *t = opaque;
    static uint8_t data[4096] __attribute__((aligned(4096)));
    struct iovec iov = { data, sizeof(data) };
    memset(data, 0x6b, sizeof(data));
    vd_blk_pwritev(t->blk, 8192, &iov, 1, 0, completion_cb, &t->write);
    vd_blk_flush(t->blk, completion_cb, &t->flush);
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    while ((!t->write.calls || !t->flush.calls) && g_get_monotonic_time() < deadline) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(100);
    }
    return NULL;
}

/* Thread body: close the backend (its context now runs here). */
static gpointer close_on_thread(gpointer blk)
{
    vd_blk_close(blk);
    return NULL;
}

/*
 * The thread that runs the owner's context may change (a VMM that opens and
 * probes a disk on its main thread, then hands the context to an I/O
 * thread): requests from the new thread complete, and the backend closes
 * from it, letting go of the image.
 */
static void test_io_uring_owner_thread_changes(void **state)
{
    static OtherThread t;   /* static: a request that never completed must not outlive a stack frame */
    t = (OtherThread){ .blk = open_image("cache=none,aio=io_uring") };
    memset(buf, 0x6a, 4096);
    assert_int_equal(vd_blk_pwrite_sync(t.blk, 0, buf, 4096, 0), 0);   /* this thread submits first */
    GThread *th = g_thread_new("vdisk-test-io", other_thread_io, &t);
    g_thread_join(th);
    assert_int_equal(t.write.calls, 1);
    assert_int_equal(t.write.ret, 0);
    assert_int_equal(t.flush.calls, 1);
    assert_int_equal(t.flush.ret, 0);
    th = g_thread_new("vdisk-test-close", close_on_thread, t.blk);
    g_thread_join(th);
    VdBlockBackend *again = open_image("cache=none,aio=io_uring");     /* the lock was let go */
    assert_int_equal(vd_blk_pread_sync(again, 0, buf, 12288), 0);
    assert_int_equal(buf[0], 0x6a);
    assert_int_equal(buf[8192], 0x6b);
    vd_blk_close(again);
}

static void test_mode_table(void **state)
{
    check_mode_table("threads");
}

static void test_mode_table_io_uring(void **state)
{
    check_mode_table("io_uring");
}

/* The default engine (io_uring here) keeps every row too: counted from what was submitted. */
static void test_mode_table_default_engine(void **state)
{
    check_mode_table(NULL);
}

/* The O_DSYNC descriptor carries WCE=0 writes on every engine; its writes are counted from the fd really used. */
static void test_dsync_policy_engines(void **state)
{
    static const char *const engines[] = { ",aio=threads", ",aio=io_uring", "" };
    for (size_t e = 0; e < G_N_ELEMENTS(engines); e++) {
        for (int direct = 0; direct < 2; direct++) {
            g_autofree char *opt = g_strdup_printf("cache=%s,wt-policy=dsync%s", direct ? "directsync" : "writethrough",
                                                   engines[e]);
            VdBlockBackend *blk = open_image(opt);
            assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
            assert_int_equal(vd_blk_pwrite_sync(blk, 4096, buf, 4096, 0), 0);
            VdBlockStats s = stats_of(blk);
            assert_int_equal(s.host_writes, 2);
            assert_int_equal(s.host_dsync_writes, 2);
            assert_int_equal(s.host_rwf_dsync_writes, 0);
            assert_int_equal(s.host_fdatasync, 0);
            bool ring = vd_blk_aio(blk) == VD_AIO_IO_URING && direct;
            assert_int_equal(s.uring_ops, ring ? 2 : 0);
            vd_blk_close(blk);
        }
    }
}

/*
 * A failed durable write sticks for every errno on every engine (with the
 * default engine and O_DIRECT the write is an io_uring op): every later
 * flush and durable write fails with no host call.
 */
static void test_sticky_durable_write_engines(void **state)
{
    static const char *const engines[] = { ",aio=threads", "" };
    static const char *const setups[] = { "cache=directsync", "cache=writethrough", "cache=directsync,wt-policy=dsync" };
    static const int errs[] = { ENOSPC, EDQUOT };
    for (size_t e = 0; e < G_N_ELEMENTS(engines); e++) {
        for (size_t m = 0; m < G_N_ELEMENTS(setups); m++) {
            for (size_t i = 0; i < G_N_ELEMENTS(errs); i++) {
                g_autofree char *opt = g_strdup_printf("%s,werror=report%s", setups[m], engines[e]);
                VdBlockBackend *blk = open_image(opt);
                vd_blk_inject_error(blk, VD_FAULT_WRITE, errs[i], 1);
                assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), -errs[i]);
                VdBlockStats before = stats_of(blk);
                assert_int_equal(vd_blk_flush_sync(blk), -errs[i]);
                assert_int_equal(vd_blk_pwrite_sync(blk, 4096, buf, 4096, 0), -errs[i]);
                assert_int_equal(vd_blk_pwrite_sync(blk, 4096, buf, 4096, VD_REQ_FUA), -errs[i]);
                VdBlockStats after = stats_of(blk);
                assert_int_equal(after.host_writes, before.host_writes);
                assert_int_equal(after.host_fdatasync, before.host_fdatasync);
                vd_blk_close(blk);
            }
        }
    }
}

/* aio=io_uring: data round-trips, unaligned requests fall back to the pool, faults still apply. */
static void test_io_uring_paths(void **state)
{
    VdBlockBackend *blk = open_image("cache=none,aio=io_uring,wt-policy=dsync");
    memset(buf, 0x3c, 8192);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 8192, 0), 0);
    uint8_t odd[100];
    memset(odd, 0x77, sizeof(odd));
    assert_int_equal(vd_blk_pwrite_sync(blk, 10, odd, sizeof(odd), 0), 0); /* RMW via the pool */
    assert_int_equal(vd_blk_pread_sync(blk, 0, buf + 8192, 4096), 0);
    assert_int_equal(buf[8192 + 9], 0x3c);
    assert_int_equal(buf[8192 + 10], 0x77);
    assert_int_equal(buf[8192 + 110], 0x3c);
    VdBlockStats s = stats_of(blk);
    assert_true(s.bounce_rmw >= 1);
    assert_int_equal(s.uring_ops, 2); /* the aligned write and the aligned read */
    /* WCE off with the dsync policy: the O_DSYNC descriptor, through the ring. */
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
    s = stats_of(blk);
    assert_int_equal(s.host_dsync_writes, 1);
    assert_int_equal(s.host_fdatasync, 1); /* the 1->0 flush */
    /* An injected fault is honoured (it fails the op where the ring would have run it). */
    vd_blk_inject_error(blk, VD_FAULT_WRITE, EIO, 1);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), -EIO);
    vd_blk_close(blk);
}

/* wt-policy=dsync: a second, O_DSYNC descriptor carries WCE=0 writes; no fdatasync. */
static void test_dsync_policy(void **state)
{
    VdBlockBackend *blk = open_image("cache=writethrough,wt-policy=dsync");
    unsigned n;
    int any_direct, any_dsync, all_direct;
    image_fd_flags(&n, &any_direct, &any_dsync, &all_direct);
    assert_int_equal(n, 2);
    assert_true(any_dsync);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
    assert_int_equal(vd_blk_pwrite_sync(blk, 4096, buf, 4096, 0), 0);
    VdBlockStats s = stats_of(blk);
    assert_int_equal(s.host_dsync_writes, 2);
    assert_int_equal(s.host_fdatasync, 0);
    assert_int_equal(s.host_rwf_dsync_writes, 0);
    /* Nothing is left to flush. */
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_int_equal(stats_of(blk).host_fdatasync, 0);
    vd_blk_close(blk);
    /* directsync + dsync: both descriptors are O_DIRECT. */
    blk = open_image("cache=directsync,wt-policy=dsync");
    image_fd_flags(&n, &any_direct, &any_dsync, &all_direct);
    assert_int_equal(n, 2);
    assert_true(all_direct);
    assert_true(any_dsync);
    vd_blk_close(blk);
}

/* cache=none: unaligned guest requests are bounced and read-modify-written correctly. */
static void test_direct_unaligned(void **state)
{
    VdBlockBackend *blk = open_image("cache=none");
    uint8_t pattern[3000];
    for (size_t i = 0; i < sizeof(pattern); i++) {
        pattern[i] = i * 7 + 3;
    }
    memset(buf, 0x5a, 16384);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 16384, 0), 0);
    assert_int_equal(vd_blk_pwrite_sync(blk, 1001, pattern, sizeof(pattern), VD_REQ_FUA), 0);
    assert_true(stats_of(blk).bounce_rmw >= 1);
    /* Independent check through a separate descriptor. */
    int fd = open(scratch.path, O_RDONLY);
    uint8_t back[16384];
    assert_int_equal(pread(fd, back, sizeof(back), 0), sizeof(back));
    close(fd);
    assert_int_equal(back[1000], 0x5a);
    assert_memory_equal(back + 1001, pattern, sizeof(pattern));
    assert_int_equal(back[4001], 0x5a);
    uint8_t rd[3000];
    assert_int_equal(vd_blk_pread_sync(blk, 1001, rd, sizeof(rd)), 0);
    assert_memory_equal(rd, pattern, sizeof(pattern));
    vd_blk_close(blk);
}

/* Discard punches a hole; write-zeroes uses ZERO_RANGE; both read back as zeroes. */
static void test_discard_and_zeroes(void **state)
{
    bool zero_range = scratch_has_zero_range();
    VdBlockBackend *blk = open_image("cache=writeback");
    memset(buf, 0xee, sizeof(buf));
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 65536, 0), 0);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    struct stat st0, st1;
    assert_int_equal(stat(scratch.path, &st0), 0);
    assert_int_equal(vd_blk_discard_sync(blk, 0, 32768), 0);
    assert_int_equal(stat(scratch.path, &st1), 0);
    assert_true(st1.st_blocks < st0.st_blocks);
    assert_int_equal(vd_blk_write_zeroes_sync(blk, 32768, 16384, 0), 0);
    uint8_t rd[65536];
    assert_int_equal(vd_blk_pread_sync(blk, 0, rd, sizeof(rd)), 0);
    for (int i = 0; i < 49152; i++) {
        assert_int_equal(rd[i], 0);
    }
    assert_int_equal(rd[49152], 0xee);
    VdBlockStats s = stats_of(blk);
    assert_int_equal(s.host_discards, 1);
    /* Without ZERO_RANGE (and no MAY_UNMAP) the generic layer writes the zeroes. */
    assert_int_equal(s.host_zero_ranges, zero_range ? 1 : 0);
    /* With WCE off, write-zeroes is durable at completion. */
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    uint64_t syncs = stats_of(blk).host_fdatasync;
    assert_int_equal(vd_blk_write_zeroes_sync(blk, 0, 4096, 0), 0);
    assert_int_equal(stats_of(blk).host_fdatasync, syncs + 1);
    vd_blk_close(blk);
    /* discard=ignore: no host call. */
    blk = open_image("discard=ignore");
    assert_int_equal(vd_blk_discard_sync(blk, 0, 4096), 0);
    assert_int_equal(stats_of(blk).host_discards, 0);
    vd_blk_close(blk);
}

/* Pages of the image resident in this host's page cache. */
static size_t resident_pages(void)
{
    int fd = open(scratch.path, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    void *p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(p != MAP_FAILED);
    size_t pages = st.st_size / 4096, n = 0;
    unsigned char *vec = g_malloc(pages);
    assert_int_equal(mincore(p, st.st_size, vec), 0);
    for (size_t i = 0; i < pages; i++) {
        n += vec[i] & 1;
    }
    g_free(vec);
    munmap(p, st.st_size);
    close(fd);
    return n;
}

/*
 * Migration: the source flushes and stops writing; the destination drops its
 * page cache (checked with mincore) and makes no host flush of its own, as
 * block-backend.h promises.
 */
static void test_migration_handover(void **state)
{
    struct statfs sfs;
    assert_int_equal(statfs(scratch.path, &sfs), 0);
    if (sfs.f_type == TMPFS_MAGIC) {
        print_message("skipped: the scratch image is on tmpfs, whose pages stay (test_migration_handover_tmpfs)\n");
        skip();
    }
    VdBlockBackend *blk = open_image("cache=writeback");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 65536, 0), 0);
    assert_true(vd_blk_inactivate(blk, NULL));
    assert_int_equal(stats_of(blk).host_fdatasync, 1);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), -EPERM);
    assert_int_equal(vd_blk_pread_sync(blk, 0, buf, 4096), 0);
    assert_true(resident_pages() > 0);
    assert_true(vd_blk_invalidate_cache(blk, NULL));
    assert_int_equal(resident_pages(), 0);
    assert_int_equal(stats_of(blk).host_fdatasync, 1);
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
    vd_blk_close(blk);
}

/*
 * On tmpfs the page cache is the file, shared by source and destination on
 * this one host: the destination has nothing stale to drop, and mincore
 * must not turn the pages that stay into a refused hand-over (EBUSY).
 */
static void test_migration_handover_tmpfs(void **state)
{
    int mfd = memfd_image(1 << 20);
    g_autofree char *opts = g_strdup_printf("file=/proc/self/fd/%d,cache=writeback", mfd);
    VdBlockBackend *src = open_ok(opts);
    memset(buf, 0x6b, 65536);
    assert_int_equal(vd_blk_pwrite_sync(src, 0, buf, 65536, 0), 0);
    assert_true(vd_blk_inactivate(src, NULL));
    vd_blk_close(src);
    g_autofree char *incoming = g_strdup_printf("%s,active=off", opts);
    VdBlockBackend *dst = open_ok(incoming);
    GError *err = NULL;
    assert_true(vd_blk_invalidate_cache(dst, &err));
    assert_null(err);
    memset(buf + 65536 - 4096, 0, 4096);
    assert_int_equal(vd_blk_pread_sync(dst, 4096, buf + 65536 - 4096, 4096), 0);
    assert_memory_equal(buf, buf + 65536 - 4096, 4096);        /* what the source wrote */
    assert_int_equal(vd_blk_pwrite_sync(dst, 0, buf, 4096, 0), 0);
    vd_blk_close(dst);
    close(mfd);
}

/* A failed flush at inactivate keeps the source active and says why. */
static void test_inactivate_flush_error(void **state)
{
    VdBlockBackend *blk = open_image("cache=writeback");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), 0);
    vd_blk_inject_error(blk, VD_FAULT_FLUSH, ENOSPC, 1);
    GError *err = NULL;
    assert_false(vd_blk_inactivate(blk, &err));
    g_autofree char *want = g_strdup_printf("file=%s: cannot hand the image over: the flush failed: %s", scratch.path,
                                            g_strerror(ENOSPC));
    assert_string_equal(err->message, want);
    g_error_free(err);
    assert_int_not_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), -EPERM);
    vd_blk_close(blk);
}

/* Empty images and images with a partial last sector are refused, naming the file, its size and the fix. */
static void test_size_rule(void **state)
{
    static const struct {
        off_t size;
        const char *fmt; /* %1$s: the path */
    } rows[] = {
        { 0, "file=%1$s is empty (0 bytes); a disk needs at least one 512-byte sector: give it a size, "
             "e.g. truncate -s 1G %1$s" },
        { 1, "file=%1$s: size 1 bytes is not a multiple of 512; its last 1 bytes could never be read or written: "
             "resize it, e.g. truncate -s 512 %1$s" },
        { 1000, "file=%1$s: size 1000 bytes is not a multiple of 512; its last 488 bytes could never be read or "
                "written: resize it, e.g. truncate -s 1024 %1$s" },
        { (4 << 20) + 100, "file=%1$s: size 4194404 bytes is not a multiple of 512; its last 100 bytes could never be "
                           "read or written: resize it, e.g. truncate -s 4194816 %1$s" },
    };
    static const char *const modes[] = { "cache=writeback", "cache=writethrough,aio=threads", "read-only=on",
                                         "cache=none" };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        assert_int_equal(truncate(scratch.path, rows[i].size), 0);
        for (size_t m = 0; m < G_N_ELEMENTS(modes); m++) {
            g_autofree char *opts = g_strdup_printf("file=%s,%s", scratch.path, modes[m]);
            GError *err = NULL;
            VdBlockBackend *blk = vd_blk_open(opts, NULL, &err);
            if (blk) {
                vd_blk_close(blk);
                fail_msg("a %lld-byte image was accepted with %s", (long long)rows[i].size, modes[m]);
            }
            g_autofree char *want = g_strdup_printf(rows[i].fmt, scratch.path);
            assert_string_equal(err->message, want);
            g_error_free(err);
        }
    }
    /* One sector is the smallest disk. */
    assert_int_equal(truncate(scratch.path, 512), 0);
    VdBlockBackend *blk = open_image("cache=writeback");
    assert_int_equal(vd_blk_length(blk), 512);
    vd_blk_close(blk);
}

/* A read-only open of a read-only file: writes fail with EROFS, flush succeeds with no host call. */
static void test_read_only_file(void **state)
{
    assert_int_equal(chmod(scratch.path, 0444), 0);
    VdBlockBackend *blk = open_image("read-only=on");
    assert_int_equal(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), -EROFS);
    assert_int_equal(vd_blk_flush_sync(blk), 0);
    assert_int_equal(vd_blk_pread_sync(blk, 0, buf, 4096), 0);
    VdBlockStats s = stats_of(blk);
    assert_int_equal(s.host_writes + s.host_fdatasync, 0);
    vd_blk_close(blk);
    chmod(scratch.path, 0644);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mode_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_table_io_uring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_table_default_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dsync_policy_engines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sticky_durable_write_engines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_uring_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_uring_registered_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_uring_owner_thread_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dsync_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_unaligned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard_and_zeroes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_handover_tmpfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inactivate_flush_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_completion_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_chain_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uring_chain_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_read_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_uring_batched_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_write_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_fault_counts_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_read_miss_goes_to_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_read_without_nowait, setup, teardown),
    };
    return cmocka_run_group_tests_name("block-file", tests, NULL, NULL);
}
