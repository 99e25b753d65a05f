/*
 * fz-order.c - the ordering and quiescence oracles.  The fuzz binaries link
 * with -Wl,--wrap for vd_blk_preadv, vd_blk_pwritev, vd_blk_write_zeroes and
 * vd_blk_discard, so every request a device submits passes through here.
 *
 * Each request gets a sequence number and the guest epoch it was issued in.
 * The epoch advances at fz_quiescent, i.e. whenever the target has seen the
 * guest with no request outstanding.  A modifying request may complete
 * before an older overlapping one only if both belong to the same epoch (the
 * guest had them in flight together, so their order is not defined); a
 * completion that overtakes an older epoch's overlapping write is a
 * violation of "no write overtakes an older write to the same sector".
 *
 * Threading: submit and completion both run on the owner thread (the block
 * layer calls back from the GMainContext), so the list needs no lock.
 */
#include "fuzz-common.h"

#include <sys/uio.h>

typedef struct FzReq {
    VdBlockBackend *blk;
    uint64_t offset, bytes;
    uint64_t seq, epoch;
    bool modifies;
    VdBlockCompletionFunc *cb;
    void *opaque;
} FzReq;

static GList *outstanding;   /* FzReq *, oldest first */
static uint64_t next_seq, epoch;

/* The linker's names for the real functions and for these wrappers (-Wl,--wrap). */
void __real_vd_blk_preadv(VdBlockBackend *blk, uint64_t offset, const struct iovec *iov, int niov,
                          VdBlockCompletionFunc *cb, void *opaque);
void __real_vd_blk_pwritev(VdBlockBackend *blk, uint64_t offset, const struct iovec *iov, int niov,
                           unsigned flags, VdBlockCompletionFunc *cb, void *opaque);
void __real_vd_blk_write_zeroes(VdBlockBackend *blk, uint64_t offset, uint64_t bytes, unsigned flags,
                                VdBlockCompletionFunc *cb, void *opaque);
void __real_vd_blk_discard(VdBlockBackend *blk, uint64_t offset, uint64_t bytes,
                           VdBlockCompletionFunc *cb, void *opaque);
void __wrap_vd_blk_preadv(VdBlockBackend *blk, uint64_t offset, const struct iovec *iov, int niov,
                          VdBlockCompletionFunc *cb, void *opaque);
void __wrap_vd_blk_pwritev(VdBlockBackend *blk, uint64_t offset, const struct iovec *iov, int niov,
                           unsigned flags, VdBlockCompletionFunc *cb, void *opaque);
void __wrap_vd_blk_write_zeroes(VdBlockBackend *blk, uint64_t offset, uint64_t bytes, unsigned flags,
                                VdBlockCompletionFunc *cb, void *opaque);
void __wrap_vd_blk_discard(VdBlockBackend *blk, uint64_t offset, uint64_t bytes,
                           VdBlockCompletionFunc *cb, void *opaque);

/* True if two byte ranges share a byte. */
static bool overlap(const FzReq *a, const FzReq *b)
{
    return a->blk == b->blk && a->offset < b->offset + b->bytes && b->offset < a->offset + a->bytes;
}

/* Completion of a tracked request: check it overtakes no older epoch's overlapping write. */
static void tracked_done(void *opaque, int ret)
{
    FzReq *r = opaque;
    outstanding = g_list_remove(outstanding, r);
    for (GList *l = outstanding; r->modifies && l; l = l->next) {
        const FzReq *o = l->data;
        if (o->modifies && o->seq < r->seq && o->epoch < r->epoch && overlap(o, r)) {
            fz_fail("write #%" G_GUINT64_FORMAT " [%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT
                    "] of epoch %" G_GUINT64_FORMAT " completed before older overlapping write #%"
                    G_GUINT64_FORMAT " of epoch %" G_GUINT64_FORMAT,
                    r->seq, r->offset, r->bytes, r->epoch, o->seq, o->epoch);
        }
    }
    VdBlockCompletionFunc *cb = r->cb;
    void *cb_opaque = r->opaque;
    g_free(r);
    cb(cb_opaque, ret);
}

/* Record a request about to be submitted; returns the completion context. */
static FzReq *track(VdBlockBackend *blk, uint64_t offset, uint64_t bytes, bool modifies,
                    VdBlockCompletionFunc *cb, void *opaque)
{
    FzReq *r = g_new(FzReq, 1);
    *r = (FzReq){ blk, offset, bytes, next_seq++, epoch, modifies, cb, opaque };
    outstanding = g_list_append(outstanding, r);
    return r;
}

/* Total length of an iovec array. */
static uint64_t iov_bytes(const struct iovec *iov, int niov)
{
    uint64_t n = 0;
    for (int i = 0; i < niov; i++) {
        n += iov[i].iov_len;
    }
    return n;
}

/* Track a read, then submit it. */
void __wrap_vd_blk_preadv(VdBlockBackend *blk, uint64_t offset, const struct iovec *iov, int niov,
                          VdBlockCompletionFunc *cb, void *opaque)
{
    FzReq *r = track(blk, offset, iov_bytes(iov, niov), false, cb, opaque);
    __real_vd_blk_preadv(blk, offset, iov, niov, tracked_done, r);
}

/* Track a write, then submit it. */
void __wrap_vd_blk_pwritev(VdBlockBackend *blk, uint64_t offset, const struct iovec *iov, int niov,
                           unsigned flags, VdBlockCompletionFunc *cb, void *opaque)
{
    FzReq *r = track(blk, offset, iov_bytes(iov, niov), true, cb, opaque);
    __real_vd_blk_pwritev(blk, offset, iov, niov, flags, tracked_done, r);
}

/* Track a write-zeroes, then submit it. */
void __wrap_vd_blk_write_zeroes(VdBlockBackend *blk, uint64_t offset, uint64_t bytes, unsigned flags,
                                VdBlockCompletionFunc *cb, void *opaque)
{
    FzReq *r = track(blk, offset, bytes, true, cb, opaque);
    __real_vd_blk_write_zeroes(blk, offset, bytes, flags, tracked_done, r);
}

/* Track a discard, then submit it. */
void __wrap_vd_blk_discard(VdBlockBackend *blk, uint64_t offset, uint64_t bytes,
                           VdBlockCompletionFunc *cb, void *opaque)
{
    FzReq *r = track(blk, offset, bytes, true, cb, opaque);
    __real_vd_blk_discard(blk, offset, bytes, tracked_done, r);
}

/* The quiescence oracle; then a new guest epoch. */
void fz_quiescent(const char *where)
{
    if (outstanding) {
        const FzReq *o = outstanding->data;
        fz_fail("%s: the guest has every request answered, but backend %s #%" G_GUINT64_FORMAT
                " [%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT "] is still in flight",
                where, o->modifies ? "write" : "read", o->seq, o->offset, o->bytes);
    }
    epoch++;
}

/* True if name is listed in VD_FUZZ_KNOWN. */
bool fz_known(const char *name)
{
    static char **known;
    if (!known) {
        const char *env = g_getenv("VD_FUZZ_KNOWN");
        known = g_strsplit(env ? env : "", ",", -1);
    }
    return g_strv_contains((const gchar *const *)known, name);
}

/* The quiescence oracle, waived (epoch only) for a listed known finding. */
void fz_quiescent_unless_known(const char *where, const char *known)
{
    if (outstanding && fz_known(known)) {
        epoch++;
        return;
    }
    fz_quiescent(where);
}

/* Tracked requests not yet completed. */
unsigned fz_order_outstanding(void)
{
    return g_list_length(outstanding);
}

/* Drop all tracking. */
void fz_order_reset(void)
{
    g_list_free_full(outstanding, g_free);
    outstanding = NULL;
}
