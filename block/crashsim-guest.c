/*
 * crashsim-guest.c - the guest-level log: what the backend completed, and
 * which writes it PROMISED durable, judged from the device contract alone
 * (never from the backend's own durability plan, so a broken plan is caught):
 *  - a write that completes with VD_REQ_FUA;
 *  - a write that completes while the write cache is off, if it was
 *    submitted while it was off or the 1->0 switch's drain-and-flush has
 *    completed (a write in flight at the switch is promised by that flush);
 *  - every write that completed before a guest FLUSH was submitted, once
 *    that FLUSH completes successfully.
 * cache=unsafe promises nothing; the cut reports what would be lost instead.
 * Owner thread only (crashsim-internal.h).
 */
#include "crashsim-internal.h"

#include <string.h>

VdCrashGuestOp *vd_crash_note_submit(VdCrashSim *cs, VdRequest *req)
{
    VdCrashGuestOp *op = g_new0(VdCrashGuestOp, 1);
    op->submit_seq = ++cs->gseq;
    if (req->type == VD_OP_WRITE || req->type == VD_OP_ZEROES || req->type == VD_OP_DISCARD) {
        VdCrashGuestWrite *w = g_new0(VdCrashGuestWrite, 1);
        w->submit_seq = op->submit_seq;
        w->fua = req->flags & VD_REQ_FUA;
        w->sector = req->offset / VD_CRASH_SECTOR;
        w->nsect = req->bytes ? (req->offset + req->bytes + VD_CRASH_SECTOR - 1) / VD_CRASH_SECTOR - w->sector : 0;
        g_ptr_array_add(cs->gwrites, w);
        op->w = w;
    }
    return op;
}

void vd_crash_note_wce(VdCrashSim *cs, bool enabled)
{
    if (!enabled) {
        /* The switch's own request was the last one submitted. */
        cs->off_seq = cs->gseq;
        cs->off_done = false;
    }
}

/* Promise every completed write that matches: done before `before` (flush) or submitted before it (switch). */
static void promise_older(VdCrashSim *cs, uint64_t before, bool by_submit)
{
    for (guint i = 0; i < cs->gwrites->len; i++) {
        VdCrashGuestWrite *w = g_ptr_array_index(cs->gwrites, i);
        uint64_t when = by_submit ? w->submit_seq : w->done_seq;
        if (w->done_seq && w->hash && when < before) {
            w->promised = true;
        }
    }
}

/* A modifying request completed: its content tokens, and whether it is promised now. */
static void write_done(VdCrashSim *cs, VdRequest *req, VdCrashGuestWrite *w)
{
    VdBlockBackend *blk = req->blk;
    w->done_seq = ++cs->gseq;
    uint64_t sector, nsect;
    if (req->ret < 0 || req->type == VD_OP_DISCARD) {
        return; /* hash NULL: anything may be there now */
    }
    if (req->type == VD_OP_WRITE) {
        w->hash = vd_crash_hash_iov(cs, req->offset, req->bytes, req->iov, req->niov, &sector, &nsect);
    } else {
        w->hash = g_new(uint64_t, MAX(w->nsect, 1));
        for (uint64_t i = 0; i < w->nsect; i++) {
            w->hash[i] = cs->zero_hash;
        }
        if (w->nsect && req->offset % VD_CRASH_SECTOR) {
            w->hash[0] = VD_CRASH_ANY;
        }
        if (w->nsect && (req->offset + req->bytes) % VD_CRASH_SECTOR) {
            w->hash[w->nsect - 1] = VD_CRASH_ANY;
        }
    }
    bool off_covers = w->submit_seq > cs->off_seq || cs->off_done;
    w->promised = w->fua || (!blk->wce && off_covers);
}

void vd_crash_note_done(VdCrashSim *cs, VdRequest *req)
{
    VdCrashGuestOp *op = req->crash;
    req->crash = NULL;
    if (op->w) {
        write_done(cs, req, op->w);
    } else if (req->type == VD_OP_FLUSH && req->ret == 0 && !req->internal) {
        promise_older(cs, op->submit_seq, false);
    } else if (req->type == VD_OP_FLUSH && req->ret == 0 && !req->wce_target && op->submit_seq == cs->off_seq) {
        cs->off_done = true;
        promise_older(cs, op->submit_seq, true);
    }
    g_free(op);
}

void vd_crash_guest_free(VdCrashSim *cs)
{
    for (guint i = 0; i < cs->gwrites->len; i++) {
        VdCrashGuestWrite *w = g_ptr_array_index(cs->gwrites, i);
        g_free(w->hash);
        g_free(w);
    }
    g_ptr_array_free(cs->gwrites, TRUE);
}
