/*
 * crashsim-guest.c - the guest-level log: which writes were PROMISED durable,
 * judged from the device contract alone (never from the backend's own
 * durability plan, so a broken plan is caught):
 *  - a write that completes with FUA;
 *  - a write that completes while the write cache is off, if it was
 *    submitted while it was off or the 1->0 switch's drain-and-flush has
 *    completed (a write in flight at the switch is promised by that flush);
 *  - every write that completed before a FLUSH was submitted, once that
 *    FLUSH completes successfully.
 * One VdCrashGuest holds it.  crashsim keeps one fed from the backend's
 * submission and completion paths (the backend's view); a guest may keep
 * its own (vd_crash_guest_*, the guest's view), which also catches a device
 * that loses a FUA bit or a FLUSH before the backend.  cache=unsafe promises
 * nothing; the cut reports what would be lost instead.  Owner thread only
 * (crashsim-internal.h).
 */
#include "crashsim-internal.h"

#include <string.h>

VdCrashGuest *vd_crash_guest_new(void)
{
    VdCrashGuest *g = g_new0(VdCrashGuest, 1);
    g->gwrites = g_ptr_array_new();
    return g;
}

void vd_crash_guest_free(VdCrashGuest *g)
{
    if (!g) {
        return;
    }
    for (guint i = 0; i < g->gwrites->len; i++) {
        VdCrashGuestWrite *w = g_ptr_array_index(g->gwrites, i);
        g_free(w->hash);
        g_free(w);
    }
    g_ptr_array_free(g->gwrites, TRUE);
    g_free(g);
}

/* Record a modifying request as submitted; its tokens come at completion (or now, from a guest). */
static VdCrashGuestWrite *write_begin(VdCrashGuest *g, uint64_t offset, uint64_t bytes, bool fua)
{
    VdCrashGuestWrite *w = g_new0(VdCrashGuestWrite, 1);
    w->submit_seq = ++g->gseq;
    w->fua = fua;
    w->sector = offset / VD_CRASH_SECTOR;
    w->nsect = bytes ? (offset + bytes + VD_CRASH_SECTOR - 1) / VD_CRASH_SECTOR - w->sector : 0;
    g_ptr_array_add(g->gwrites, w);
    return w;
}

/* A write completed: is it promised now?  A failed one holds anything (hash NULL). */
static void write_end(VdCrashGuest *g, VdCrashGuestWrite *w, bool ok, bool cache_off)
{
    w->done_seq = ++g->gseq;
    if (!ok) {
        g_clear_pointer(&w->hash, g_free);
        return;
    }
    bool off_covers = w->submit_seq > g->off_seq || g->off_done;
    w->promised = w->hash && (w->fua || (cache_off && off_covers));
}

/* Promise every completed write done before `before` (flush) or submitted before it (switch). */
static void promise_older(VdCrashGuest *g, uint64_t before, bool by_submit)
{
    for (guint i = 0; i < g->gwrites->len; i++) {
        VdCrashGuestWrite *w = g_ptr_array_index(g->gwrites, i);
        uint64_t when = by_submit ? w->submit_seq : w->done_seq;
        if (w->done_seq && w->hash && when < before) {
            w->promised = true;
        }
    }
}

/* A 1->0 switch of the write cache was asked for: returns its seq. */
static uint64_t cache_off_begin(VdCrashGuest *g)
{
    g->off_seq = ++g->gseq;
    g->off_done = false;
    return g->off_seq;
}

/* The switch's drain-and-flush completed: everything submitted before it is promised. */
static void cache_off_end(VdCrashGuest *g, uint64_t sw, bool ok)
{
    if (ok && sw == g->off_seq) {
        g->off_done = true;
        promise_older(g, sw, true);
    }
}

/* ---- the backend's view: hooks called from block-backend.c ---- */

VdCrashGuestOp *vd_crash_note_submit(VdCrashSim *cs, VdRequest *req)
{
    VdCrashGuestOp *op = g_new0(VdCrashGuestOp, 1);
    if (req->type == VD_OP_WRITE || req->type == VD_OP_ZEROES || req->type == VD_OP_DISCARD) {
        op->w = write_begin(cs->seen, req->offset, req->bytes, req->flags & VD_REQ_FUA);
        op->submit_seq = op->w->submit_seq;
    } else {
        op->submit_seq = ++cs->seen->gseq;
    }
    return op;
}

void vd_crash_note_wce(VdCrashSim *cs, bool enabled)
{
    if (!enabled) {
        /* The switch's request was the last one submitted: it takes over that seq. */
        cs->seen->off_seq = cs->seen->gseq;
        cs->seen->off_done = false;
    }
}

/* Content tokens of a completed backend request; NULL for a discard. */
static uint64_t *request_tokens(VdCrashSim *cs, VdRequest *req)
{
    uint64_t sector, nsect;
    if (req->type == VD_OP_WRITE) {
        return vd_crash_hash_iov(req->offset, req->bytes, req->iov, req->niov, &sector, &nsect);
    }
    if (req->type == VD_OP_ZEROES) {
        return vd_crash_fill_tokens(req->offset, req->bytes, cs->zero_hash, &sector, &nsect);
    }
    return NULL;
}

void vd_crash_note_done(VdCrashSim *cs, VdRequest *req)
{
    VdCrashGuestOp *op = req->crash;
    req->crash = NULL;
    bool ok = req->ret == 0;
    if (op->w) {
        op->w->hash = ok ? request_tokens(cs, req) : NULL;
        write_end(cs->seen, op->w, ok, !req->blk->wce);
    } else if (req->type == VD_OP_FLUSH && ok && !req->internal) {
        promise_older(cs->seen, op->submit_seq, false);
    } else if (req->type == VD_OP_FLUSH && req->internal && !req->wce_target) {
        cache_off_end(cs->seen, op->submit_seq, ok);
    }
    g_free(op);
}

/* ---- a guest's own view ---- */

VdCrashGuestWrite *vd_crash_guest_write(VdCrashGuest *g, uint64_t offset, const void *data, uint64_t bytes, bool fua)
{
    VdCrashGuestWrite *w = write_begin(g, offset, bytes, fua);
    struct iovec iov = { .iov_base = (void *)data, .iov_len = bytes };
    uint64_t sector, nsect;
    w->hash = vd_crash_hash_iov(offset, bytes, &iov, 1, &sector, &nsect);
    return w;
}

void vd_crash_guest_write_done(VdCrashGuest *g, VdCrashGuestWrite *w, bool ok, bool cache_off)
{
    write_end(g, w, ok, cache_off);
}

uint64_t vd_crash_guest_flush(VdCrashGuest *g)
{
    return ++g->gseq;
}

void vd_crash_guest_flush_done(VdCrashGuest *g, uint64_t flush, bool ok)
{
    if (ok) {
        promise_older(g, flush, false);
    }
}

uint64_t vd_crash_guest_cache_off(VdCrashGuest *g)
{
    return cache_off_begin(g);
}

void vd_crash_guest_cache_off_done(VdCrashGuest *g, uint64_t sw, bool ok)
{
    cache_off_end(g, sw, ok);
}
