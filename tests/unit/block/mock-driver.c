/* mock-driver.c - see mock-driver.h.  Lock rule: every field of `m` is under m.lock. */
#include "mock-driver.h"
#include "util/iov.h"

#include <errno.h>
#include <string.h>

static struct {
    GMutex lock;
    GCond cond;
    MockConfig cfg;
    unsigned calls[MOCK__MAX];
    bool hold[MOCK__MAX];
    unsigned held[MOCK__MAX];
    int fail_next[MOCK__MAX];
    GString *log;
    unsigned last_write_flags;
    uint8_t *data;
    uint64_t size;
} m;

/* Record a call, wait while its kind is held, and return an injected failure if any. */
static int enter(MockOp op, const char *fmt, uint64_t a, uint64_t b)
{
    static const char *const names[] = { "R", "W", "F1", "F2", "D", "Z" };
    g_mutex_lock(&m.lock);
    m.calls[op]++;
    g_string_append(m.log, names[op]);
    if (fmt) {
        g_string_append_printf(m.log, fmt, a, b);
    }
    g_string_append_c(m.log, ' ');
    m.held[op]++;
    g_cond_broadcast(&m.cond);
    while (m.hold[op]) {
        g_cond_wait(&m.cond, &m.lock);
    }
    m.held[op]--;
    int err = m.fail_next[op];
    m.fail_next[op] = 0;
    g_mutex_unlock(&m.lock);
    return err;
}

static bool mock_open(VdBlockDriverState *bs, const VdDriverOpenOptions *o, GError **errp)
{
    g_mutex_lock(&m.lock);
    g_free(m.data);
    m.data = g_malloc0(o->size);
    m.size = o->size;
    g_mutex_unlock(&m.lock);
    return true;
}

static void mock_close(VdBlockDriverState *bs) {}
static int64_t mock_length(VdBlockDriverState *bs) { return m.size; }
static VdFuaSupport mock_can_fua(VdBlockDriverState *bs) { return m.cfg.fua; }
static bool mock_can_dsync(VdBlockDriverState *bs) { return m.cfg.dsync; }
static bool mock_can_zero(VdBlockDriverState *bs) { return m.cfg.zero; }
static bool mock_true(VdBlockDriverState *bs) { return true; }
static bool mock_write_through(VdBlockDriverState *bs) { return m.cfg.write_through; }
static uint32_t mock_align(VdBlockDriverState *bs) { return m.cfg.req_align ? m.cfg.req_align : 1; }

static int mock_preadv(VdBlockDriverState *bs, VdDriverReq *req)
{
    int err = enter(MOCK_READ, "%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT, req->offset, req->bytes);
    vd_iov_from_buf(req->iov, req->niov, 0, m.data + req->offset, vd_iov_size(req->iov, req->niov));
    return err;
}

static int mock_pwritev(VdBlockDriverState *bs, VdDriverReq *req)
{
    int err = enter(MOCK_WRITE, "%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT, req->offset, req->bytes);
    if (err) {
        return err;
    }
    g_mutex_lock(&m.lock);
    m.last_write_flags = req->flags;
    vd_iov_to_buf(req->iov, req->niov, 0, m.data + req->offset, vd_iov_size(req->iov, req->niov));
    g_mutex_unlock(&m.lock);
    return 0;
}

static int mock_flush_os(VdBlockDriverState *bs, VdDriverReq *req) { return enter(MOCK_FLUSH_OS, NULL, 0, 0); }
static int mock_flush_disk(VdBlockDriverState *bs, VdDriverReq *req) { return enter(MOCK_FLUSH_DISK, NULL, 0, 0); }
static int mock_discard(VdBlockDriverState *bs, VdDriverReq *req)
{
    return enter(MOCK_DISCARD, "%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT, req->offset, req->bytes);
}

static int mock_zero(VdBlockDriverState *bs, VdDriverReq *req)
{
    int err = enter(MOCK_ZERO, "%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT, req->offset, req->bytes);
    if (!err) {
        g_mutex_lock(&m.lock);
        memset(m.data + req->offset, 0, req->bytes);
        g_mutex_unlock(&m.lock);
    }
    return err;
}

static VdBlockDriver mock_driver = {
    .name = "mock",
    .needs_filename = false,
    .open = mock_open,
    .close = mock_close,
    .get_length = mock_length,
    .can_fua = mock_can_fua,
    .can_dsync = mock_can_dsync,
    .can_discard = mock_true,
    .can_zero = mock_can_zero,
    .request_alignment = mock_align,
    .write_through_only = mock_write_through,
    .preadv = mock_preadv,
    .pwritev = mock_pwritev,
    .flush_to_disk = mock_flush_disk,
    .discard = mock_discard,
    .write_zeroes = mock_zero,
};

void mock_reset(const MockConfig *cfg)
{
    static bool registered;
    if (!registered) {
        vd_block_register_driver(&mock_driver);
        registered = true;
    }
    g_mutex_lock(&m.lock);
    m.cfg = *cfg;
    memset(m.calls, 0, sizeof(m.calls));
    memset(m.hold, 0, sizeof(m.hold));
    memset(m.fail_next, 0, sizeof(m.fail_next));
    if (!m.log) {
        m.log = g_string_new(NULL);
    }
    g_string_truncate(m.log, 0);
    m.last_write_flags = 0;
    g_mutex_unlock(&m.lock);
    mock_driver.flush_to_os = cfg->stage1 ? mock_flush_os : NULL;
}

unsigned mock_calls(MockOp op)
{
    g_mutex_lock(&m.lock);
    unsigned n = m.calls[op];
    g_mutex_unlock(&m.lock);
    return n;
}

const char *mock_log(void) { return m.log->str; }
unsigned mock_last_write_flags(void) { return m.last_write_flags; }
uint8_t *mock_data(void) { return m.data; }

void mock_hold(MockOp op)
{
    g_mutex_lock(&m.lock);
    m.hold[op] = true;
    g_mutex_unlock(&m.lock);
}

void mock_wait_held(MockOp op, unsigned n)
{
    g_mutex_lock(&m.lock);
    while (m.held[op] < n) {
        g_cond_wait(&m.cond, &m.lock);
    }
    g_mutex_unlock(&m.lock);
}

void mock_release(MockOp op)
{
    g_mutex_lock(&m.lock);
    m.hold[op] = false;
    g_cond_broadcast(&m.cond);
    g_mutex_unlock(&m.lock);
}

void mock_fail_next(MockOp op, int err)
{
    g_mutex_lock(&m.lock);
    m.fail_next[op] = err;
    g_mutex_unlock(&m.lock);
}
