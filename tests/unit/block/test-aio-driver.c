/*
 * test-aio-driver.c - the aio-driver engine (block/aio-driver.c) against a
 * tiny fake asynchronous driver ("driver=fakeaio,size=N", with options of its
 * own: fua=native|emulate, align=N, zero=on|off|enotsup, sync-us=N).  The fake keeps
 * every op in a queue and completes it from an idle source in the owner's
 * context, so tests can hold ops, see many in flight and check that no
 * completion runs inside the call that submitted it.
 */
#include "block-test-util.h"
#include "block/block-driver.h"
#include "util/iov.h"

#include <errno.h>
#include <string.h>

#define DISK (1u << 20)

/* One op the fake driver owes a callback for. */
typedef struct FakeOp {
    VdDrvAioOp op;
    VdDriverReq *req;
    VdDrvAioCb *cb;
    void *opaque;
} FakeOp;

static struct {
    uint8_t *data;
    GString *log;
    GQueue ready, held;
    unsigned hold_mask;          /* 1 << VdDrvAioOp: keep such ops until fake_release */
    int fail_next[VD_DRV_AIO__MAX];
    unsigned max_in_flight, in_flight;
    GMainContext *ctx;
    GSource *idle;
    VdFuaSupport fua;
    uint32_t align;
    char zero[16];              /* zero=: on, off, enotsup */
    unsigned sync_us;           /* sync-us=: each flush and FUA write holds the one-at-a-time server so long */
} fake;

/* True while a test is inside a vd_blk_* call: a completion then would break the contract. */
static bool in_call;

static const char *const fake_option_names[] = { "fua", "align", "zero", "sync-us", NULL };

/* Run one op against the bytes and call its callback. */
static void fake_complete(FakeOp *f)
{
    int ret = fake.fail_next[f->op];
    fake.fail_next[f->op] = 0;
    VdDriverReq *r = f->req;
    if (ret == 0 && f->op == VD_DRV_AIO_READ) {
        vd_iov_from_buf(r->iov, r->niov, 0, fake.data + r->offset, r->bytes);
    } else if (ret == 0 && f->op == VD_DRV_AIO_WRITE) {
        vd_iov_to_buf(r->iov, r->niov, 0, fake.data + r->offset, r->bytes);
    } else if (f->op == VD_DRV_AIO_WRITE_ZEROES && strcmp(fake.zero, "enotsup") == 0) {
        ret = -ENOTSUP;
    } else if (ret == 0 && (f->op == VD_DRV_AIO_WRITE_ZEROES || f->op == VD_DRV_AIO_DISCARD)) {
        memset(fake.data + r->offset, 0, r->bytes);
    }
    fake.in_flight--;
    f->cb(f->opaque, ret);
    g_free(f);
}

/* Idle source: complete one ready op per dispatch, in order (a sync op first takes sync_us). */
static gboolean fake_ready(gpointer opaque)
{
    FakeOp *f = g_queue_pop_head(&fake.ready);
    if (f->op == VD_DRV_AIO_FLUSH || (f->op == VD_DRV_AIO_WRITE && (f->req->flags & VD_DRV_FUA))) {
        g_usleep(fake.sync_us);     /* the server is busy syncing: nothing behind it moves */
    }
    fake_complete(f);
    if (!g_queue_is_empty(&fake.ready)) {
        return G_SOURCE_CONTINUE;
    }
    g_source_unref(fake.idle);
    fake.idle = NULL;
    return G_SOURCE_REMOVE;
}

/* Queue an op for completion from the loop. */
static void fake_push_ready(FakeOp *f)
{
    g_queue_push_tail(&fake.ready, f);
    if (!fake.idle) {
        fake.idle = g_idle_source_new();
        g_source_set_callback(fake.idle, fake_ready, NULL, NULL);
        g_source_attach(fake.idle, fake.ctx);
    }
}

/* Log an op ("W0+4096F") and keep it until it completes from the loop. */
static void fake_aio_submit(VdBlockDriverState *bs, VdDrvAioOp op, VdDriverReq *req, VdDrvAioCb *cb, void *opaque)
{
    static const char *const names[] = { "R", "W", "F", "D", "Z" };
    g_string_append(fake.log, names[op]);
    if (op != VD_DRV_AIO_FLUSH) {
        g_string_append_printf(fake.log, "%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT, req->offset, req->bytes);
    }
    g_string_append_printf(fake.log, "%s%s ", (req->flags & VD_DRV_FUA) ? "F" : "", (req->flags & VD_DRV_MAY_UNMAP) ? "U" : "");
    FakeOp *f = g_new(FakeOp, 1);
    *f = (FakeOp){ .op = op, .req = req, .cb = cb, .opaque = opaque };
    fake.in_flight++;
    fake.max_in_flight = MAX(fake.max_in_flight, fake.in_flight);
    if (fake.hold_mask & (1u << op)) {
        g_queue_push_tail(&fake.held, f);
    } else {
        fake_push_ready(f);
    }
}

/* Let every held op complete. */
static void fake_release(void)
{
    fake.hold_mask = 0;
    FakeOp *f;
    while ((f = g_queue_pop_head(&fake.held))) {
        fake_push_ready(f);
    }
}

/* Let the oldest held op complete; later ones stay held. */
static void fake_release_one(void)
{
    fake_push_ready(g_queue_pop_head(&fake.held));
}

/* Open: take the fake's own options. */
static bool fake_open(VdBlockDriverState *bs, const VdDriverOpenOptions *o, GError **errp)
{
    const char *fua = vd_drv_opt(o, "fua"), *align = vd_drv_opt(o, "align"), *zero = vd_drv_opt(o, "zero");
    fake.fua = fua && strcmp(fua, "native") == 0 ? VD_FUA_NATIVE : VD_FUA_EMULATE;
    fake.align = align ? (uint32_t)atoi(align) : 1;
    g_strlcpy(fake.zero, zero ? zero : "on", sizeof(fake.zero));
    fake.sync_us = vd_drv_opt(o, "sync-us") ? (unsigned)atoi(vd_drv_opt(o, "sync-us")) : 0;
    fake.ctx = o->ctx;
    g_assert(o->ctx);
    return true;
}

/* The fake's capabilities, from its options. */
static void fake_close(VdBlockDriverState *bs) {}
static int64_t fake_length(VdBlockDriverState *bs) { return DISK; }
static VdFuaSupport fake_can_fua(VdBlockDriverState *bs) { return fake.fua; }
static bool fake_true(VdBlockDriverState *bs) { return true; }
static bool fake_can_zero(VdBlockDriverState *bs) { return strcmp(fake.zero, "off") != 0; }
static uint32_t fake_align(VdBlockDriverState *bs) { return fake.align; }

static const VdBlockDriver fake_driver = {
    .name = "fakeaio",
    .option_names = fake_option_names,
    .open = fake_open,
    .close = fake_close,
    .get_length = fake_length,
    .can_fua = fake_can_fua,
    .can_discard = fake_true,
    .can_zero = fake_can_zero,
    .request_alignment = fake_align,
    .aio_submit = fake_aio_submit,
};

/* A completion that also checks it did not run inside the submitting call. */
static void checked_cb(void *opaque, int ret)
{
    assert_false(in_call);
    completion_cb(opaque, ret);
}

static int setup(void **state)
{
    static bool registered;
    if (!registered) {
        vd_block_register_driver(&fake_driver);
        registered = true;
    }
    g_free(fake.data);
    if (fake.log) {
        g_string_free(fake.log, TRUE);
    }
    memset(&fake, 0, sizeof(fake));
    fake.data = g_malloc0(DISK);
    fake.log = g_string_new(NULL);
    return 0;
}

static VdBlockBackend *open_fake(const char *extra)
{
    g_autofree char *opts = g_strdup_printf("driver=fakeaio,size=%u%s", DISK, extra);
    VdBlockBackend *blk = open_ok(opts);
    assert_int_equal(vd_blk_aio(blk), VD_AIO_DRIVER);
    return blk;
}

/* Write buf (len bytes) at off with flags; wait for it. */
static int do_write(VdBlockBackend *blk, uint64_t off, void *buf, size_t len, unsigned flags)
{
    Completion c = { 0 };
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    in_call = true;
    vd_blk_pwritev(blk, off, &iov, 1, flags, checked_cb, &c);
    in_call = false;
    wait_completion(&c);
    return c.ret;
}

/* Read len bytes at off into buf; wait for it. */
static int do_read(VdBlockBackend *blk, uint64_t off, void *buf, size_t len)
{
    Completion c = { 0 };
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    in_call = true;
    vd_blk_preadv(blk, off, &iov, 1, checked_cb, &c);
    in_call = false;
    wait_completion(&c);
    return c.ret;
}

/* Flush; wait for it. */
static int do_flush(VdBlockBackend *blk)
{
    Completion c = { 0 };
    in_call = true;
    vd_blk_flush(blk, checked_cb, &c);
    in_call = false;
    wait_completion(&c);
    return c.ret;
}

/* Native FUA: a FUA write is one write with the FUA flag; no flush; counted. */
static void test_fua_native(void **state)
{
    VdBlockBackend *blk = open_fake(",fua=native");
    uint8_t buf[4096];
    memset(buf, 0xab, sizeof(buf));
    assert_int_equal(do_write(blk, 0, buf, sizeof(buf), VD_REQ_FUA), 0);
    assert_string_equal(fake.log->str, "W0+4096F ");
    assert_int_equal(fake.data[4095], 0xab);
    VdBlockStats s = stats_of(blk);
    assert_int_equal(s.host_writes, 1);
    assert_int_equal(s.host_rwf_dsync_writes, 1);
    assert_int_equal(s.host_fdatasync, 0);
    assert_int_equal(s.host_bytes_written, 4096);
    vd_blk_close(blk);
}

/* Emulated FUA: write, then the protocol's flush; with the cache off every write is made durable so. */
static void test_fua_emulated(void **state)
{
    VdBlockBackend *blk = open_fake(",fua=emulate");
    uint8_t buf[512] = { 1 };
    assert_int_equal(do_write(blk, 0, buf, sizeof(buf), VD_REQ_FUA), 0);
    assert_string_equal(fake.log->str, "W0+512 F ");
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    g_string_truncate(fake.log, 0);
    assert_int_equal(do_write(blk, 512, buf, sizeof(buf), 0), 0);
    assert_string_equal(fake.log->str, "W512+512 F ");
    assert_int_equal(stats_of(blk).host_fdatasync, 2);
    vd_blk_close(blk);
}

/* A flush with nothing written is skipped; flushes that arrive during a host flush share it. */
static void test_flush_skip_and_coalesce(void **state)
{
    VdBlockBackend *blk = open_fake("");
    uint8_t buf[512] = { 2 };
    assert_int_equal(do_flush(blk), 0);
    assert_string_equal(fake.log->str, "");
    assert_int_equal(stats_of(blk).flushes_skipped, 1);

    assert_int_equal(do_write(blk, 0, buf, sizeof(buf), 0), 0);
    fake.hold_mask = 1u << VD_DRV_AIO_FLUSH;
    Completion c[3] = { 0 };
    for (int i = 0; i < 3; i++) {
        vd_blk_flush(blk, checked_cb, &c[i]);
    }
    settle();
    assert_int_equal(g_queue_get_length(&fake.held), 1);
    fake_release();
    for (int i = 0; i < 3; i++) {
        wait_completion(&c[i]);
        assert_int_equal(c[i].ret, 0);
    }
    assert_string_equal(fake.log->str, "W0+512 F ");
    assert_int_equal(stats_of(blk).flushes_coalesced, 2);
    vd_blk_close(blk);
}

/* Many requests are in flight in the driver at once. */
static void test_many_in_flight(void **state)
{
    VdBlockBackend *blk = open_fake("");
    static uint8_t buf[8][4096];
    struct iovec iov[8];
    Completion c[8] = { 0 };
    fake.hold_mask = 1u << VD_DRV_AIO_WRITE;
    for (int i = 0; i < 8; i++) {
        iov[i] = (struct iovec){ .iov_base = buf[i], .iov_len = sizeof(buf[i]) };
        vd_blk_pwritev(blk, i * 4096, &iov[i], 1, 0, checked_cb, &c[i]);
    }
    settle();
    assert_int_equal(g_queue_get_length(&fake.held), 8);
    fake_release();
    for (int i = 0; i < 8; i++) {
        wait_completion(&c[i]);
        assert_int_equal(c[i].ret, 0);
    }
    assert_int_equal(fake.max_in_flight, 8);
    vd_blk_close(blk);
}

/* null-aio: reads give zeroes, writes and flushes succeed, in order, never inside the submitting call. */
static void test_null_aio(void **state)
{
    VdBlockBackend *blk = open_ok("driver=null-aio,size=1M,cache=writethrough");
    static uint8_t buf[8][4096];
    struct iovec iov[8];
    Completion c[8] = { 0 };
    for (int i = 0; i < 8; i++) {
        memset(buf[i], 0xa5, sizeof(buf[i]));
        iov[i] = (struct iovec){ .iov_base = buf[i], .iov_len = sizeof(buf[i]) };
        if (i % 2) {
            vd_blk_preadv(blk, i * 4096, &iov[i], 1, completion_cb, &c[i]);
        } else {
            vd_blk_pwritev(blk, i * 4096, &iov[i], 1, 0, completion_cb, &c[i]);
        }
        assert_int_equal(c[i].calls, 0);
    }
    for (int i = 0; i < 8; i++) {
        wait_completion(&c[i]);
        assert_int_equal(c[i].calls, 1);
        assert_int_equal(c[i].ret, 0);
        assert_int_equal(buf[i][4095], i % 2 ? 0 : 0xa5);
    }
    Completion f = { 0 };
    vd_blk_flush(blk, completion_cb, &f);
    assert_int_equal(f.calls, 0);
    wait_completion(&f);
    assert_int_equal(f.ret, 0);
    assert_int_equal(vd_blk_aio(blk), VD_AIO_DRIVER);
    vd_blk_close(blk);
}

/* QD32 durable writes: each slot writes again when its write completes, until total were issued. */
typedef struct QdLoop {
    VdBlockBackend *blk;
    struct iovec iov;
    unsigned issued, total, running;
    int ret;
} QdLoop;

static void qd_write_done(void *opaque, int ret);

/* Issue the next write of the loop (4 KiB, at the next of 256 blocks). */
static void qd_issue(QdLoop *q)
{
    vd_blk_pwritev(q->blk, (q->issued++ % 256) * 4096, &q->iov, 1, 0, qd_write_done, q);
}

/* One durable write finished: start the next one, or retire the slot. */
static void qd_write_done(void *opaque, int ret)
{
    QdLoop *q = opaque;
    q->ret = q->ret ? q->ret : ret;
    if (q->issued < q->total) {
        qd_issue(q);
    } else {
        q->running--;
    }
}

/*
 * A server that runs one request at a time and makes every sync (a flush or
 * a FUA write) cost 300 us: at QD32 with the write cache off, group commit
 * must carry most durable writes (one shared flush for many), not one FUA
 * write each.  Comparing per-write latency alone, a group-commit write tried
 * among FUA writes waits behind all of them and loses, so the choice stayed
 * with FUA writes (issue 16's benchmark).
 */
static void test_group_commit_serial_server(void **state)
{
    VdBlockBackend *blk = open_fake(",fua=native,sync-us=1000,cache=writethrough");
    static uint8_t buf[4096];
    QdLoop q = { .blk = blk, .iov = { buf, sizeof(buf) }, .total = 4000 };
    for (q.running = 0; q.running < 32; q.running++) {
        qd_issue(&q);
    }
    while (q.running) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(q.ret, 0);
    VdBlockStats s = stats_of(blk);
    uint64_t syncs = s.host_fdatasync + s.host_rwf_dsync_writes;
    print_message("durable writes %" G_GUINT64_FORMAT ": %" G_GUINT64_FORMAT " FUA writes, %" G_GUINT64_FORMAT
                  " flushes (%" G_GUINT64_FORMAT " group commits)\n", (guint64)s.durable_writes,
                  (guint64)s.host_rwf_dsync_writes, (guint64)s.host_fdatasync, (guint64)s.group_commits);
    assert_int_equal(s.durable_writes, q.total);
    assert_true(syncs * 10 <= s.durable_writes);    /* at most 0.1 syncs per durable write */
    vd_blk_close(blk);
}

static uint8_t group_buf[4096];
static struct iovec group_iov = { group_buf, sizeof(group_buf) };

/*
 * With writes held, submit n 4 KiB writes at 0, 4096, ...: the first, alone
 * in flight, is a FUA write, the others group-commit writes.  Release the
 * first and wait for it, then release the second; the rest stay held.
 */
static VdBlockBackend *start_group_writes(const char *opts, Completion *c, int n)
{
    VdBlockBackend *blk = open_fake(opts);
    fake.hold_mask = 1u << VD_DRV_AIO_WRITE;
    for (int i = 0; i < n; i++) {
        vd_blk_pwritev(blk, i * 4096, &group_iov, 1, 0, checked_cb, &c[i]);
    }
    settle();
    fake_release_one();
    wait_completion(&c[0]);
    fake_release_one();
    settle();
    return blk;
}

/*
 * Group commit's shared flush waits for the group-commit writes being written
 * when the first of them finished, so that it covers them all, but not for
 * writes issued after that.  Sent at once, it covered only the first write,
 * the others finished while it ran and needed a second flush: at QD32 two
 * cohorts of 16 per flush (bench/nbd-bench.sh EXPORT=delay).
 */
static void test_group_commit_waits_for_writers(void **state)
{
    Completion c[5] = { 0 };
    VdBlockBackend *blk = start_group_writes(",fua=native,cache=writethrough", c, 4);
    /* the first group-commit write is written... */
    assert_string_equal(fake.log->str, "W0+4096F W4096+4096 W8192+4096 W12288+4096 "); /* ...no flush yet */
    vd_blk_pwritev(blk, 4 * 4096, &group_iov, 1, 0, checked_cb, &c[4]);   /* issued after: not waited for */
    fake_release_one();
    fake_release_one();
    for (int i = 1; i < 4; i++) {
        wait_completion(&c[i]);
        assert_int_equal(c[i].ret, 0);
    }
    assert_int_equal(c[4].calls, 0);
    assert_string_equal(fake.log->str, "W0+4096F W4096+4096 W8192+4096 W12288+4096 W16384+4096 F ");
    assert_int_equal(stats_of(blk).group_commits, 1);
    fake_release_one();
    wait_completion(&c[4]);
    assert_int_equal(c[4].ret, 0);
    assert_string_equal(fake.log->str, "W0+4096F W4096+4096 W8192+4096 W12288+4096 W16384+4096 F F ");
    vd_blk_close(blk);
}

/*
 * A held group-commit flush waits for the writers being written; when the
 * last of them fails and werror=stop holds it, the flush must still go out
 * for the writes that did succeed, stopped or not: nothing else would send
 * it, and a drain would wait for them for ever.
 */
static void test_group_commit_writer_held(void **state)
{
    Completion c[3] = { 0 };
    VdBlockBackend *blk = start_group_writes(",fua=native,cache=writethrough,werror=stop", c, 3);
    assert_int_equal(c[1].calls, 0);    /* written: its flush waits for the other writer */
    fake.fail_next[VD_DRV_AIO_WRITE] = -EIO;
    fake_release_one();             /* the other writer fails and is held (the backend stops) */
    settle();
    assert_int_equal(c[2].calls, 0);
    assert_int_equal(c[1].calls, 1);   /* covered by the flush its writer's failure released */
    assert_int_equal(c[1].ret, 0);
    assert_string_equal(fake.log->str, "W0+4096F W4096+4096 W8192+4096 F ");
    fake.hold_mask = 0;
    vd_blk_resume(blk);
    wait_completion(&c[2]);
    assert_int_equal(c[2].ret, 0);
    vd_blk_close(blk);
}

/* Below the driver's alignment: a read bounces, a write reads its edge blocks first. */
static void test_unaligned_rmw(void **state)
{
    VdBlockBackend *blk = open_fake(",align=4096");
    memset(fake.data, 0x11, 8192);
    uint8_t buf[1024];
    memset(buf, 0x22, sizeof(buf));
    assert_int_equal(do_write(blk, 3584, buf, sizeof(buf), 0), 0);
    assert_string_equal(fake.log->str, "R0+4096 R4096+4096 W0+8192 ");
    assert_int_equal(fake.data[3583], 0x11);
    assert_int_equal(fake.data[3584], 0x22);
    assert_int_equal(fake.data[4607], 0x22);
    assert_int_equal(fake.data[4608], 0x11);
    g_string_truncate(fake.log, 0);
    uint8_t back[512];
    assert_int_equal(do_read(blk, 4096, back, sizeof(back)), 0);
    assert_string_equal(fake.log->str, "R4096+4096 ");
    assert_int_equal(back[0], 0x22);
    assert_int_equal(back[511], 0x22);
    assert_int_equal(stats_of(blk).bounce_rmw, 2);
    vd_blk_close(blk);
}

/* Write-zeroes: the driver's op (with MAY_UNMAP), writes of zeroes where it declines, RMW at the edges. */
static void test_write_zeroes(void **state)
{
    static const struct {
        const char *opts;
        uint64_t off;
        unsigned flags;
        const char *log;
    } rows[] = {
        { ",zero=on", 0, VD_REQ_MAY_UNMAP, "Z0+8192U " },
        { ",zero=enotsup", 0, 0, "Z0+8192 W0+8192 " },
        { ",zero=off,align=4096", 512, 0, "R0+4096 W0+4096 R8192+4096 W8192+4096 W4096+4096 " },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        setup(state);
        VdBlockBackend *blk = open_fake(rows[i].opts);
        memset(fake.data, 0x33, DISK);
        assert_int_equal(vd_blk_write_zeroes_sync(blk, rows[i].off, 8192, rows[i].flags), 0);
        assert_string_equal(fake.log->str, rows[i].log);
        assert_int_equal(fake.data[rows[i].off + 8191], 0);
        assert_int_equal(fake.data[rows[i].off + 8192], 0x33);
        assert_true(rows[i].off == 0 || fake.data[rows[i].off - 1] == 0x33);
        vd_blk_close(blk);
    }
}

/*
 * Discard reaches the driver; a driver that declines it (ENOTSUP) still
 * succeeds.  Unaligned, only the whole driver blocks inside the range are
 * sent (a partial block would lose a neighbour's bytes); none inside, none sent.
 */
static void test_discard(void **state)
{
    VdBlockBackend *blk = open_fake("");
    assert_int_equal(vd_blk_discard_sync(blk, 0, 4096), 0);
    assert_string_equal(fake.log->str, "D0+4096 ");
    fake.fail_next[VD_DRV_AIO_DISCARD] = -ENOTSUP;
    assert_int_equal(vd_blk_discard_sync(blk, 4096, 4096), 0);
    vd_blk_close(blk);

    setup(state);
    blk = open_fake(",align=4096");
    assert_int_equal(vd_blk_discard_sync(blk, 512, 8192), 0);     /* [512, 8704): the block at 4096 only */
    assert_string_equal(fake.log->str, "D4096+4096 ");
    g_string_truncate(fake.log, 0);
    assert_int_equal(vd_blk_discard_sync(blk, 8704, 1024), 0);    /* no whole block inside */
    assert_string_equal(fake.log->str, "");
    vd_blk_close(blk);
}

/* fault.OP= fails an op at the checkpoint (nothing reaches the driver); a failed flush is sticky. */
static void test_faults_and_sticky(void **state)
{
    VdBlockBackend *blk = open_fake(",fault.write=EIO@1,fault.flush=EIO@1");
    uint8_t buf[512] = { 4 };
    assert_int_equal(do_write(blk, 0, buf, sizeof(buf), 0), -EIO);
    assert_string_equal(fake.log->str, "");
    assert_int_equal(do_write(blk, 0, buf, sizeof(buf), 0), 0);
    assert_int_equal(do_flush(blk), -EIO);
    assert_int_equal(do_write(blk, 0, buf, sizeof(buf), VD_REQ_FUA), -EIO);
    assert_string_equal(fake.log->str, "W0+512 ");
    vd_blk_close(blk);
}

/* delay.flush= is a timer before the op, not a sleep of the owner thread. */
static void test_delay(void **state)
{
    VdBlockBackend *blk = open_fake(",delay.flush=30ms");
    uint8_t buf[512] = { 5 };
    assert_int_equal(do_write(blk, 0, buf, sizeof(buf), 0), 0);
    gint64 t0 = g_get_monotonic_time();
    Completion c = { 0 };
    vd_blk_flush(blk, checked_cb, &c);
    assert_true(g_get_monotonic_time() - t0 < 20000);
    wait_completion(&c);
    assert_int_equal(c.ret, 0);
    assert_true(g_get_monotonic_time() - t0 >= 30000);
    vd_blk_close(blk);
}

/* A driver's flush failure (a dropped connection) is sticky and, under werror=stop, held then reported. */
static void test_driver_error_stop(void **state)
{
    VdBlockBackend *blk = open_fake(",werror=stop");
    uint8_t buf[512] = { 6 };
    assert_int_equal(do_write(blk, 0, buf, sizeof(buf), 0), 0);
    fake.fail_next[VD_DRV_AIO_FLUSH] = -EIO;
    Completion c = { 0 };
    vd_blk_flush(blk, checked_cb, &c);
    settle();
    assert_int_equal(c.calls, 0); /* held */
    vd_blk_resume(blk);
    wait_completion(&c);
    assert_int_equal(c.ret, -EIO); /* never a success */
    assert_string_equal(fake.log->str, "W0+512 F ");
    vd_blk_close(blk);
}

/* A failed write under werror=stop is retried by resume and then succeeds. */
static void test_stop_resume_retry(void **state)
{
    VdBlockBackend *blk = open_fake(",werror=stop");
    uint8_t buf[512] = { 7 };
    fake.fail_next[VD_DRV_AIO_WRITE] = -EIO;
    Completion c = { 0 };
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
    vd_blk_pwritev(blk, 0, &iov, 1, 0, checked_cb, &c);
    settle();
    assert_int_equal(c.calls, 0);
    vd_blk_resume(blk);
    wait_completion(&c);
    assert_int_equal(c.ret, 0);
    assert_string_equal(fake.log->str, "W0+512 W0+512 ");
    assert_int_equal(fake.data[0], 7);
    vd_blk_close(blk);
}

static GString *trace_lines;

/* Trace sink. */
static void collect_trace(void *opaque, const char *line)
{
    g_string_append_printf(trace_lines, "%s\n", line);
}

/* The trace names the driver op and its result. */
static void test_trace(void **state)
{
    VdBlockBackend *blk = open_fake(",fua=native");
    trace_lines = g_string_new(NULL);
    vd_blk_set_trace(blk, collect_trace, NULL);
    uint8_t buf[512] = { 8 };
    assert_int_equal(do_write(blk, 0, buf, sizeof(buf), VD_REQ_FUA), 0);
    assert_non_null(strstr(trace_lines->str, "fakeaio write(off=0,len=512,FUA)=0"));
    vd_blk_close(blk);
    g_string_free(trace_lines, TRUE);
}

/* Bad options: a key of no driver, aio= other than driver, aio=driver for a synchronous driver. */
static void test_options(void **state)
{
    static const struct {
        const char *opts, *error;
    } rows[] = {
        { "driver=fakeaio,size=1M,bogus=1", "unknown option 'bogus'; accepted options: file, " },
        { "driver=fakeaio,size=1M,aio=threads", "aio=threads does not apply to driver=fakeaio" },
        { "driver=null,size=1M,aio=driver", "aio=driver needs a driver with its own asynchronous I/O" },
        { "driver=null,size=1M,fua=native", "unknown option 'fua'" },
        { "driver=crashsim,child=fakeaio,size=1M", "invalid child 'fakeaio'" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        GError *err = NULL;
        assert_null(vd_blk_open(rows[i].opts, NULL, &err));
        if (!strstr(err->message, rows[i].error)) {
            fail_msg("'%s': got '%s'", rows[i].opts, err->message);
        }
        g_error_free(err);
    }
    GError *err = NULL;
    assert_null(vd_blk_open("driver=fakeaio,size=1M,bogus=1", NULL, &err));
    assert_non_null(strstr(err->message, ", fua, align, zero"));
    g_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_fua_native, setup),
        cmocka_unit_test_setup(test_fua_emulated, setup),
        cmocka_unit_test_setup(test_flush_skip_and_coalesce, setup),
        cmocka_unit_test_setup(test_many_in_flight, setup),
        cmocka_unit_test_setup(test_group_commit_serial_server, setup),
        cmocka_unit_test_setup(test_group_commit_waits_for_writers, setup),
        cmocka_unit_test_setup(test_group_commit_writer_held, setup),
        cmocka_unit_test_setup(test_unaligned_rmw, setup),
        cmocka_unit_test_setup(test_write_zeroes, setup),
        cmocka_unit_test_setup(test_discard, setup),
        cmocka_unit_test_setup(test_faults_and_sticky, setup),
        cmocka_unit_test_setup(test_delay, setup),
        cmocka_unit_test_setup(test_driver_error_stop, setup),
        cmocka_unit_test_setup(test_stop_resume_retry, setup),
        cmocka_unit_test_setup(test_trace, setup),
        cmocka_unit_test_setup(test_options, setup),
        cmocka_unit_test(test_null_aio),
    };
    return cmocka_run_group_tests_name("block-aio-driver", tests, NULL, NULL);
}
