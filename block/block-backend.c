/*
 * block-backend.c - the generic block layer: every rule of docs/cache-modes.md.
 *
 * This file runs on the owner thread only (see block-internal.h for the lock
 * rules and the layers).  A request is validated and planned here, handed
 * down to the engine chosen at open (blk->engine: io_uring or the thread
 * pool), and comes back here through req->done, on the owner thread, to
 * update the flush generations, the sticky error, the stats and the trace
 * before its callback runs.
 *
 * Ordering: every modifying request (write, write-zeroes, discard) is
 * registered in blk->serialising while it runs; a newer one that overlaps
 * a running or queued older one (in the driver's alignment) waits in
 * blk->serial_waiters, so no write overtakes an older write to the same
 * sector, whatever the device.
 *
 * Sticky errors: vd_blk_sync_failed is the one place that sets
 * blk->sticky_error, for every failed sync step (a flush's fdatasync, the
 * flush of an emulated FUA, a durable RWF_DSYNC/O_DSYNC write), whatever
 * the errno and the engine.
 *
 * Error policy (werror=/rerror=): every request that failed after reaching
 * the engine passes through apply_policy in its done step.  Under stop it is
 * held in blk->held (still counted in flight; a modifying request stays in
 * blk->serialising so nothing overlapping overtakes it) and the backend stops:
 * start_request queues every new request in blk->stop_queue.  vd_blk_resume
 * retries the held ones in seq order, each re-planned from scratch, then
 * starts the queued ones in order.
 *
 * Group commit: while another durable write is in flight, a WCE=0 or FUA
 * write may be run as a plain write and then wait, like a flush, in
 * blk->flush_waiters for a host flush that covers it (one started after it
 * completed); one fdatasync then serves every write that completed before
 * it started.  Chosen per write from the measured latency of each method
 * (plan_group_commit).  A failed shared flush fails every write it covered
 * and is sticky, like any failed sync step.
 *
 * Flush bookkeeping: write_gen counts completed writes that are not durable
 * by themselves; flushed_gen is the write_gen that the last successful host
 * flush covered.  A flush records write_gen when submitted; it is skipped if
 * flushed_gen already covers it, and shares the running host flush if that
 * one covers it.
 */
#include "block-internal.h"
#include "util/iov.h"
#include "crashsim-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define VD_FREE_REQS_MAX 256    /* finished requests kept for reuse */

/* Allocate a request and count it in flight. */
VD_HOT static VdRequest *req_new(VdBlockBackend *blk, VdReqType type, uint64_t offset, uint64_t bytes,
                                 const struct iovec *iov, int niov, unsigned flags,
                                 VdBlockCompletionFunc *cb, void *opaque)
{
    VdRequest *req = blk->free_reqs;
    if (req) {
        blk->free_reqs = req->next_ready;
        blk->n_free_reqs--;
    } else {
        req = g_new(VdRequest, 1);
    }
    *req = (VdRequest){ .blk = blk, .type = type, .offset = offset, .bytes = bytes, .iov = iov, .niov = niov,
                        .flags = flags, .cb = cb, .opaque = opaque, .ser_index = -1,
                        .start_us = blk->latency_off ? 0 : vd_stats_now() };
    if (blk->trace_fn) {
        req->trace = g_string_new(NULL);
    }
    if (blk->crash) {
        req->crash = vd_crash_note_submit(blk->crash, req);
    }
    req->seq = blk->next_seq++;
    blk->in_flight++;
    return req;
}

/* Completion callbacks running on this thread (a drain must never start inside one). */
static __thread unsigned completion_depth;

/* Mark the start of a completion callback; see block-backend.h. */
void vd_blk_completion_enter(void)
{
    completion_depth++;
}

/* Mark the end of a completion callback. */
void vd_blk_completion_exit(void)
{
    g_assert(completion_depth > 0);
    completion_depth--;
}

/* True while a completion callback runs on this thread. */
bool vd_blk_in_completion(void)
{
    return completion_depth > 0;
}

/* Last step of every request: stats, trace, then exactly one callback. */
VD_HOT static void req_finish(VdRequest *req)
{
    VdBlockBackend *blk = req->blk;
    g_assert(req->ret <= 0);
    if (req->ret < 0) {
        blk->stats.errors++;
    }
    vd_stats_record_latency(blk, req);
    if (req->trace) {
        /* Tracing may have been switched off (or on) since the request was made. */
        if (blk->trace_fn) {
            vd_stats_emit_trace(blk, req, req->note);
        }
        g_string_free(req->trace, TRUE);
    }
    if (req->crash) {
        vd_crash_note_done(blk->crash, req);
    }
    g_assert(blk->in_flight > 0);
    blk->in_flight--;
    if (req->durable_write) {
        blk->durable_writes_in_flight--;
    }
    if (req->cb) {
        vd_blk_completion_enter();
        req->cb(req->opaque, req->ret);
        vd_blk_completion_exit();
    }
    if (blk->n_free_reqs < VD_FREE_REQS_MAX) {
        req->next_ready = blk->free_reqs;
        blk->free_reqs = req;
        blk->n_free_reqs++;
    } else {
        g_free(req);
    }
}

/* Complete a request later, from the loop, without any host operation. */
static void req_complete_later(VdRequest *req, int ret, const char *note)
{
    req->ret = ret;
    req->note = note;
    req->skip_exec = true;
    req->done = req_finish;
    vd_engine_complete_later(req->blk, req);
}

/* Keep a failed request for vd_blk_resume, in submission order, and stop the backend. */
static void hold(VdBlockBackend *blk, VdRequest *req)
{
    GList *l = blk->held.head;
    while (l && ((VdRequest *)l->data)->seq < req->seq) {
        l = l->next;
    }
    if (l) {
        g_queue_insert_before(&blk->held, l, req);
    } else {
        g_queue_push_tail(&blk->held, req);
    }
    if (!blk->stopped) {
        blk->stopped = true;
        vd_error_notify_stop(blk, req->type == VD_OP_READ, req->ret);
    }
}

/*
 * Apply werror=/rerror= to a request at its done step: true if it was held
 * (its caller stops there); on ignore its error becomes success.  A request
 * that failed without a host op (skip_exec: range, read-only, sticky) is
 * reported, so a re-planned retry that fails again never loops.
 */
static bool apply_policy(VdRequest *req)
{
    VdBlockBackend *blk = req->blk;
    if (req->ret >= 0 || req->skip_exec || req->report_only) {
        return false;
    }
    bool is_read = req->type == VD_OP_READ;
    /* A group-commit write is a durable write whose sync step is the shared flush. */
    bool ignorable = is_read || (req->type != VD_OP_FLUSH && !req->durable && !req->group_commit);
    switch (vd_error_action(is_read ? blk->rerror : blk->werror, req->ret, ignorable)) {
    case VD_ERR_STOP:
        hold(blk, req);
        return true;
    case VD_ERR_IGNORE:
        req->note = is_read ? "error ignored (rerror=ignore)" : "error ignored (werror=ignore)";
        req->ret = 0;
        return false;
    default:
        return false;
    }
}

/*
 * A sync step failed with err (negative).  The kernel reports a writeback
 * error once, so later syncs may succeed without the data: remember the
 * first failure and fail every later flush and durable write with it.
 */
static void vd_blk_sync_failed(VdBlockBackend *blk, int err)
{
    g_assert(err < 0);
    if (!blk->sticky_error) {
        blk->sticky_error = err;
    }
}

/* 0 if [offset, offset+bytes) lies in the image, else -ERANGE (overflow-safe). */
VD_HOT static int check_range(VdBlockBackend *blk, uint64_t offset, uint64_t bytes)
{
    uint64_t len = blk->length;
    return (offset > len || bytes > len - offset) ? -ERANGE : 0;
}

/* The request's range widened to the driver's alignment. */
static void set_aligned_range(VdBlockBackend *blk, VdRequest *req)
{
    uint32_t ra = blk->req_align;
    req->align_off = vd_align_down(req->offset, ra);
    req->align_end = vd_align_up(req->offset + req->bytes, ra);
}

/* Checks shared by every modifying request; 0 or the errno to fail with. */
VD_HOT static int check_writable(VdBlockBackend *blk, VdRequest *req)
{
    if (blk->read_only) {
        req->note = "read-only image";
        return -EROFS;
    }
    if (blk->inactive) {
        req->note = "image inactive (migrated away)";
        return -EPERM;
    }
    if (check_range(blk, req->offset, req->bytes) < 0) {
        req->note = "out of range";
        return -ERANGE;
    }
    return 0;
}

#define VD_COMMIT_PROBE_EVERY 32        /* without a clock (histograms off): every Nth choice tries the loser */
#define VD_COMMIT_PROBE_US (100 * 1000) /* with one: the losing method is tried once per 100 ms */

/* Fold one measured latency into a method's cost (EWMA, weight 1/8); durable writes only. */
static void commit_cost_add(uint64_t *cost, gint64 start_us)
{
    if (!start_us) {
        return;     /* histograms off: no start time; the choice stays as measured so far */
    }
    gint64 elapsed = vd_stats_now() - start_us;   /* once: MAX evaluates its arguments twice */
    uint64_t us = MAX(elapsed, 1);
    *cost = *cost ? *cost - *cost / 8 + us / 8 : us;
}

/* True if this choice should try the losing method: once per VD_COMMIT_PROBE_US of now_us (0: no clock). */
static bool commit_probe_due(VdBlockBackend *blk, gint64 now_us)
{
    if (!now_us) {
        return ++blk->commit_decisions % VD_COMMIT_PROBE_EVERY == 0;
    }
    if (now_us - blk->commit_probe_us < VD_COMMIT_PROBE_US) {
        return false;
    }
    blk->commit_probe_us = now_us;
    return true;
}

/*
 * True if a durable write should be run plain and covered by a shared flush:
 * only while another durable write is in flight (a flush can then serve
 * several), and while that method's measured latency is not worse; an
 * unmeasured method is tried, and now and then the losing one is, so the
 * choice follows the device.  Probes go by time, not by count: on a server
 * that runs one sync at a time, each single durable write holds it for a
 * whole flush that many others could have shared, and a probe every 32nd
 * write (more when the probe won) kept 8 to 27 % of the writes single.
 */
static bool plan_group_commit(VdBlockBackend *blk, gint64 now_us)
{
    if (blk->durable_writes_in_flight == 0) {
        return false;
    }
    uint64_t single = blk->commit_cost_single_us, group = blk->commit_cost_group_us;
    if (!group || !single) {
        return !group;
    }
    bool group_wins = group <= single;
    return commit_probe_due(blk, now_us) ? !group_wins : group_wins;
}

/*
 * Decide how a modifying request becomes durable, if it must: a FUA request
 * or any write while the write cache is off.  Returns 0 or the sticky error.
 */
static int plan_durability(VdBlockBackend *blk, VdRequest *req)
{
    bool need = (req->flags & VD_REQ_FUA) || !blk->wce;
    if (!need || blk->cache_mode == VD_CACHE_UNSAFE) {
        req->was_cached_write = true;
        blk->cached_writes_in_flight++;
        if (need) {
            req->note = "cache=unsafe: not made durable";
        }
        return 0;
    }
    if (blk->sticky_error) {
        req->note = "an earlier sync step failed (sticky)";
        return blk->sticky_error;
    }
    if (req->type == VD_OP_WRITE) {
        blk->stats.durable_writes++;
        req->durable_write = true;
        /* A plain write now, made durable by flush_waiters (start_us is the clock read, 0 without one). */
        req->group_commit = plan_group_commit(blk, req->start_us);
        blk->durable_writes_in_flight++;
        if (req->group_commit) {
            return 0;
        }
    }
    req->durable = true;
    if (req->type != VD_OP_WRITE) {
        req->fua_emulate = true;
    } else if (!blk->wce && blk->wt_policy == VD_WT_DSYNC && blk->cap_dsync) {
        req->drv_flags = VD_DRV_DSYNC;
    } else if (blk->cap_fua == VD_FUA_NATIVE) {
        req->drv_flags = VD_DRV_FUA;
    } else {
        req->fua_emulate = true;
    }
    return 0;
}

/* True if a's aligned range and [off, end) touch a common block of the driver's alignment. */
static bool overlaps(const VdRequest *a, uint64_t off, uint64_t end)
{
    return a->align_off < end && off < a->align_end;
}

/* The regions [off, end) touches, first to last; true if they cover every bucket of the overlap index. */
VD_HOT static bool ser_regions(uint64_t off, uint64_t end, uint64_t *first, uint64_t *last)
{
    g_assert(off < end);
    *first = off >> VD_SER_REGION_SHIFT;
    *last = (end - 1) >> VD_SER_REGION_SHIFT;
    return *last - *first >= VD_SER_BUCKETS - 1;
}

/* Add delta to the overlap index for [off, end): once per bucket it touches, or to ser_wide if it touches all. */
VD_HOT static void ser_index_add(VdBlockBackend *blk, uint64_t off, uint64_t end, int delta)
{
    uint64_t first, last;
    if (ser_regions(off, end, &first, &last)) {
        blk->ser_wide += delta;
        return;
    }
    for (uint64_t r = first; r <= last; r++) {
        blk->ser_bucket[r % VD_SER_BUCKETS] += delta;
    }
}

/* False only if no in-flight modifying range can overlap [off, end) (the index says so). */
VD_HOT static bool ser_index_may_overlap(VdBlockBackend *blk, uint64_t off, uint64_t end)
{
    uint64_t first, last;
    if (blk->n_serialising == 0) {
        return false;
    }
    if (blk->ser_wide || ser_regions(off, end, &first, &last)) {
        return true;
    }
    for (uint64_t r = first; r <= last; r++) {
        if (blk->ser_bucket[r % VD_SER_BUCKETS]) {
            return true;
        }
    }
    return false;
}

/* True if req must wait for an in-flight or earlier-queued modifying request. */
VD_HOT static bool serial_conflict(VdBlockBackend *blk, VdRequest *req, GList *until_waiter)
{
    const VdSerialRange *r = blk->serialising;
    unsigned n = ser_index_may_overlap(blk, req->align_off, req->align_end) ? blk->n_serialising : 0;
    for (unsigned i = 0; i < n; i++) {
        if (overlaps(req, r[i].off, r[i].end)) {
            return true;
        }
    }
    for (GList *l = blk->serial_waiters.head; l && l != until_waiter; l = l->next) {
        VdRequest *w = l->data;
        if (overlaps(req, w->align_off, w->align_end)) {
            return true;
        }
    }
    return false;
}

static void modify_done(VdRequest *req);

/* Register req as an in-flight modifying request, for ordering. */
VD_HOT static void serial_enter(VdBlockBackend *blk, VdRequest *req)
{
    g_assert(req->ser_index < 0);
    if (blk->n_serialising == blk->serialising_cap) {
        blk->serialising_cap = MAX(2 * blk->serialising_cap, 64);
        blk->serialising = g_renew(VdSerialRange, blk->serialising, blk->serialising_cap);
    }
    req->ser_index = blk->n_serialising++;
    blk->serialising[req->ser_index] = (VdSerialRange){ .off = req->align_off, .end = req->align_end, .req = req };
    ser_index_add(blk, req->align_off, req->align_end, 1);
}

/* Unregister req: overlapping newer requests may now start. */
VD_HOT static void serial_leave(VdBlockBackend *blk, VdRequest *req)
{
    int i = req->ser_index;
    g_assert(i >= 0 && (unsigned)i < blk->n_serialising && blk->serialising[i].req == req);
    ser_index_add(blk, blk->serialising[i].off, blk->serialising[i].end, -1);
    blk->serialising[i] = blk->serialising[--blk->n_serialising];     /* the last entry moves to i */
    blk->serialising[i].req->ser_index = i;
    req->ser_index = -1;
}

/*
 * Hand a validated modifying request to the engine, then register it as in
 * flight for ordering (no completion runs inside the submitting call, so
 * no later request can look before it is registered).  One written at
 * submit (inline) is not registered at all: its data is in the page cache,
 * so every later write runs after it, and at depth later writes would
 * otherwise scan every write still waiting for its callback.  A failed one
 * is: the error policy may hold it for a retry that must not overtake them.
 */
VD_HOT static void dispatch(VdBlockBackend *blk, VdRequest *req)
{
    if (req->group_commit) {
        blk->group_writing++;
    }
    if (!vd_engine_submit(blk, req) || req->ret < 0) {
        serial_enter(blk, req);
    }
}

/* Start queued modifying requests whose overlapping older ones have finished. */
VD_HOT static void wake_serial_waiters(VdBlockBackend *blk)
{
    GList *l = blk->serial_waiters.head;
    while (l) {
        GList *next = l->next;
        VdRequest *w = l->data;
        if (!serial_conflict(blk, w, l)) {
            g_queue_delete_link(&blk->serial_waiters, l);
            dispatch(blk, w);
        }
        l = next;
    }
}

/* Submit a modifying request once no older overlapping one is in flight or queued. */
static void submit_modify(VdBlockBackend *blk, VdRequest *req)
{
    set_aligned_range(blk, req);
    req->done = modify_done;
    if (serial_conflict(blk, req, NULL)) {
        g_queue_push_tail(&blk->serial_waiters, req);
        return;
    }
    dispatch(blk, req);
}

static void flush_submit(VdBlockBackend *blk, VdRequest *req);
static void group_commit_wait(VdBlockBackend *blk, VdRequest *req);
static void group_writer_done(VdBlockBackend *blk);

/* Start the write-cache-off flushes once no write submitted under WCE=1 is left. */
VD_HOT static void run_wce_off_waiters(VdBlockBackend *blk)
{
    while (blk->cached_writes_in_flight == 0 && !g_queue_is_empty(&blk->wce_off_waiters)) {
        flush_submit(blk, g_queue_pop_head(&blk->wce_off_waiters));
    }
}

/* Owner-thread step after a write, write-zeroes or discard. */
VD_HOT static void modify_done(VdRequest *req)
{
    VdBlockBackend *blk = req->blk;
    if (!req->durable || req->ret < 0) {
        /* Not durable by itself (or maybe partly written): a flush must cover it. */
        blk->write_gen++;
    }
    if (req->group_commit) {
        group_writer_done(blk);
    }
    if (req->sync_failed) {
        /* The durable write or the emulated-FUA flush may have consumed the one-shot error. */
        vd_blk_sync_failed(blk, req->ret);
    }
    if (apply_policy(req)) {
        return; /* held: stays in serialising (and counted as a cached write) until retried */
    }
    if (req->ser_index >= 0) {   /* else it was written at submit (dispatch) */
        serial_leave(blk, req);
    }
    if (req->was_cached_write) {
        blk->cached_writes_in_flight--;
    }
    if (req->ret == 0 && req->type == VD_OP_WRITE) {
        blk->stats.bytes_written += req->bytes;
    }
    if (req->durable && req->ret == 0) {
        commit_cost_add(&blk->commit_cost_single_us, req->start_us);
    }
    if (req->group_commit && req->ret == 0) {
        group_commit_wait(blk, req);
    } else {
        req_finish(req);
    }
    wake_serial_waiters(blk);
    run_wce_off_waiters(blk);
}

/* Owner-thread step after a read. */
VD_HOT static void read_done(VdRequest *req)
{
    if (apply_policy(req)) {
        return;
    }
    if (req->ret == 0) {
        req->blk->stats.bytes_read += req->bytes;
    }
    req_finish(req);
}

/* Validate and issue a read. */
VD_HOT static void read_submit(VdBlockBackend *blk, VdRequest *req)
{
    if (check_range(blk, req->offset, req->bytes) < 0) {
        req_complete_later(req, -ERANGE, "out of range");
        return;
    }
    if (req->bytes == 0) {
        req_complete_later(req, 0, "empty request");
        return;
    }
    set_aligned_range(blk, req);
    req->done = read_done;
    vd_engine_submit(blk, req);
}

static void modifying_submit(VdBlockBackend *blk, VdRequest *req);
static void flush_submit(VdBlockBackend *blk, VdRequest *req);

typedef void VdSubmitFunc(VdBlockBackend *blk, VdRequest *req);

/* The first step of each request type: validate, plan and issue. */
static VdSubmitFunc *const submit_fn[] = {
    [VD_OP_READ] = read_submit, [VD_OP_WRITE] = modifying_submit, [VD_OP_FLUSH] = flush_submit,
    [VD_OP_DISCARD] = modifying_submit, [VD_OP_ZEROES] = modifying_submit,
};

/* Start a new guest request, or queue it while the backend is stopped. */
static void start_request(VdBlockBackend *blk, VdRequest *req)
{
    if (blk->stopped) {
        req->note = "queued while stopped";
        g_queue_push_tail(&blk->stop_queue, req);
        return;
    }
    submit_fn[req->type](blk, req);
}

VD_HOT void vd_blk_preadv(VdBlockBackend *blk, uint64_t offset, const struct iovec *iov, int niov,
                          VdBlockCompletionFunc *cb, void *opaque)
{
    uint64_t bytes = vd_iov_size(iov, niov); /* saturates: an absurd iovec fails the range check */
    VdRequest *req = req_new(blk, VD_OP_READ, offset, bytes, iov, niov, 0, cb, opaque);
    blk->stats.reads++;
    start_request(blk, req);
}

/* Check a modifying request and plan its durability: 0, or the errno to fail with (nothing left counted). */
static int modifying_plan(VdBlockBackend *blk, VdRequest *req)
{
    int ret = check_writable(blk, req);
    if (ret == 0) {
        ret = plan_durability(blk, req);
    }
    if (ret < 0 && req->was_cached_write) {
        blk->cached_writes_in_flight--;
        req->was_cached_write = false;
    }
    return ret;
}

/* Common path of write, write-zeroes and discard. */
VD_HOT static void modifying_submit(VdBlockBackend *blk, VdRequest *req)
{
    if (req->type == VD_OP_DISCARD && !blk->discard_enabled && check_writable(blk, req) == 0) {
        req_complete_later(req, 0, "discard=ignore");
        return;
    }
    int ret = modifying_plan(blk, req);
    if (ret < 0) {
        req_complete_later(req, ret, req->note);
        return;
    }
    if (req->bytes == 0) {
        if (req->was_cached_write) {
            blk->cached_writes_in_flight--;
        }
        req_complete_later(req, 0, "empty request");
        return;
    }
    submit_modify(blk, req);
}

VD_HOT void vd_blk_pwritev(VdBlockBackend *blk, uint64_t offset, const struct iovec *iov, int niov,
                           unsigned flags, VdBlockCompletionFunc *cb, void *opaque)
{
    VdRequest *req = req_new(blk, VD_OP_WRITE, offset, vd_iov_size(iov, niov), iov, niov, flags & VD_REQ_FUA, cb, opaque);
    blk->stats.writes++;
    if (flags & VD_REQ_FUA) {
        blk->stats.fua_writes++;
    }
    start_request(blk, req);
}

void vd_blk_discard(VdBlockBackend *blk, uint64_t offset, uint64_t bytes, VdBlockCompletionFunc *cb, void *opaque)
{
    VdRequest *req = req_new(blk, VD_OP_DISCARD, offset, bytes, NULL, 0, 0, cb, opaque);
    blk->stats.discards++;
    start_request(blk, req);
}

void vd_blk_write_zeroes(VdBlockBackend *blk, uint64_t offset, uint64_t bytes, unsigned flags,
                         VdBlockCompletionFunc *cb, void *opaque)
{
    unsigned f = flags & (VD_REQ_FUA | (blk->discard_enabled ? VD_REQ_MAY_UNMAP : 0));
    VdRequest *req = req_new(blk, VD_OP_ZEROES, offset, bytes, NULL, 0, f, cb, opaque);
    blk->stats.write_zeroes++;
    start_request(blk, req);
}

/* ---- flush ---- */

static void flush_done(VdRequest *req);

/* Run one host flush on behalf of req (and of every flush it will cover). */
static void start_host_flush(VdBlockBackend *blk, VdRequest *req)
{
    req->stage2 = blk->cache_mode != VD_CACHE_UNSAFE;
    if (!req->stage2) {
        blk->stats.flushes_stage1_only++;
    }
    req->flush_gen = blk->write_gen;
    req->done = flush_done;
    blk->active_flush = req;
    vd_engine_submit(blk, req);
}

/* Ready-list step: start one host flush for the group-commit writes waiting, unless one runs. */
static void group_flush_start(VdRequest *req)
{
    VdBlockBackend *blk = req->blk;
    blk->group_flush_queued = false;
    if (blk->active_flush || g_queue_is_empty(&blk->flush_waiters)) {
        /* A running flush will start the next one for them when it finishes. */
        req->note = "group commit: joined a running flush";
        req_finish(req);
        return;
    }
    blk->stats.group_commits++;
    start_host_flush(blk, req);
}

/*
 * Queue one internal flush for group commit.  It starts from the ready list,
 * after every completion of this loop iteration has joined flush_waiters, so
 * one fdatasync covers them all.
 */
static void group_flush_queue(VdBlockBackend *blk)
{
    if (blk->group_flush_queued) {
        return;
    }
    blk->group_flush_queued = true;
    VdRequest *f = req_new(blk, VD_OP_FLUSH, 0, 0, NULL, 0, 0, NULL, NULL);
    /* Not a guest flush: the crash simulator must not count it as one (its writes promise themselves). */
    g_clear_pointer(&f->crash, g_free);
    f->note = "group commit";
    f->done = group_flush_start;
    vd_engine_complete_later(blk, f);
}

/* Queue the group-commit flush once the writers it waits for have finished (group_flush_hold). */
static void group_flush_kick(VdBlockBackend *blk)
{
    if (blk->group_flush_held && blk->group_flush_holdoff == 0) {
        blk->group_flush_held = false;
        group_flush_queue(blk);
    }
}

/*
 * Written group-commit writes need a flush: let it wait for the group-commit
 * writes being written now (at most that many more completions, so newer
 * writes cannot postpone it for ever), so that it covers them too.  A flush
 * sent at once covers only the writes already complete; the others complete
 * while it runs and need the next one, and a closed loop of QD writes settles
 * into two cohorts of QD/2 per flush.  On a server that runs one request at
 * a time the writes sent before the flush run before it anyway, so waiting
 * for them costs nothing there and doubles the writes per flush.
 */
static void group_flush_hold(VdBlockBackend *blk)
{
    if (blk->group_flush_queued || blk->group_flush_held) {
        return;
    }
    blk->group_flush_held = true;
    blk->group_flush_holdoff = blk->group_writing;
    group_flush_kick(blk);
}

/*
 * A group-commit write's data step finished (any result): one writer fewer
 * for a held flush to wait for.  The flush goes out from here even if this
 * write is then held by werror=stop: the writes it covers succeeded.
 */
static void group_writer_done(VdBlockBackend *blk)
{
    blk->group_writing--;
    if (blk->group_flush_held && blk->group_flush_holdoff) {
        blk->group_flush_holdoff--;
    }
    group_flush_kick(blk);
}

/* A group-commit write is written (not synced): complete it after a flush that covers it. */
static void group_commit_wait(VdBlockBackend *blk, VdRequest *req)
{
    if (blk->sticky_error) {
        req->ret = blk->sticky_error;
        req->note = "an earlier sync step failed (sticky)";
        req_finish(req);
        return;
    }
    req->flush_gen = blk->write_gen;
    g_queue_push_tail(&blk->flush_waiters, req);
    if (!blk->active_flush) {
        group_flush_hold(blk);
    }
}

/* Validate a flush and skip it, join the running one, or start a host flush. */
static void flush_submit(VdBlockBackend *blk, VdRequest *req)
{
    if (blk->read_only) {
        blk->stats.flushes_skipped++;
        req_complete_later(req, 0, "read-only: nothing to flush");
        return;
    }
    if (blk->sticky_error) {
        req_complete_later(req, blk->sticky_error, "an earlier sync step failed (sticky)");
        return;
    }
    req->flush_gen = blk->write_gen;
    if (blk->active_flush) {
        g_queue_push_tail(&blk->flush_waiters, req);
        return;
    }
    if (blk->flushed_gen == blk->write_gen) {
        blk->stats.flushes_skipped++;
        req_complete_later(req, 0, "skipped: nothing written since the last flush");
        return;
    }
    start_host_flush(blk, req);
}

/* A host flush finished: settle every waiting flush it covers, start one for the rest. */
static void flush_done(VdRequest *req)
{
    VdBlockBackend *blk = req->blk;
    blk->active_flush = NULL;
    if (req->sync_failed) {
        vd_blk_sync_failed(blk, req->ret);
    } else if (req->ret < 0) {
        /* Stage 1 failed before any sync: the next flush may retry. */
    } else if (req->flush_gen > blk->flushed_gen) {
        blk->flushed_gen = req->flush_gen;
    }

    GQueue settled = G_QUEUE_INIT, pending = G_QUEUE_INIT;
    VdRequest *w;
    while ((w = g_queue_pop_head(&blk->flush_waiters))) {
        if (blk->sticky_error || req->ret < 0) {
            w->ret = req->ret < 0 ? req->ret : blk->sticky_error;
            w->note = "the shared host flush failed";
            g_queue_push_tail(&settled, w);
        } else if (w->flush_gen <= blk->flushed_gen) {
            if (w->group_commit) {
                w->note = "group commit: made durable by a shared host flush";
                commit_cost_add(&blk->commit_cost_group_us, w->start_us);
            } else {
                blk->stats.flushes_coalesced++;
                w->note = "coalesced: covered by a concurrent host flush";
            }
            g_queue_push_tail(&settled, w);
        } else {
            g_queue_push_tail(&pending, w);
        }
    }
    blk->flush_waiters = pending;
    VdRequest *next = g_queue_peek_head(&pending);
    if (next && next->type == VD_OP_FLUSH) {
        start_host_flush(blk, g_queue_pop_head(&blk->flush_waiters));
    } else if (next) {
        group_flush_hold(blk);
    }
    g_queue_push_head(&settled, req);
    while ((w = g_queue_pop_head(&settled))) {
        if (!apply_policy(w)) {
            req_finish(w);
        }
    }
}

void vd_blk_flush(VdBlockBackend *blk, VdBlockCompletionFunc *cb, void *opaque)
{
    VdRequest *req = req_new(blk, VD_OP_FLUSH, 0, 0, NULL, 0, 0, cb, opaque);
    blk->stats.flushes++;
    start_request(blk, req);
}

/* ---- error policy: stop and resume ---- */

/* Forget a request's execution results and plan, so that it is planned again from scratch. */
static void reset_plan(VdRequest *req)
{
    VdBlockBackend *blk = req->blk;
    if (req->was_cached_write) {
        blk->cached_writes_in_flight--;
    }
    if (req->durable_write) {
        blk->durable_writes_in_flight--;
    }
    req->ret = 0;
    req->note = NULL;
    req->skip_exec = req->durable = req->fua_emulate = req->stage2 = false;
    req->group_commit = req->durable_write = false;
    req->sync_failed = req->was_cached_write = false;
    req->drv_flags = 0;
}

/*
 * Retry a held request.  A modifying one leaves blk->serialising and is
 * planned again (the sticky error, the write cache now), then issued
 * directly: it is older than every request waiting for its range.
 */
static void retry_held(VdBlockBackend *blk, VdRequest *req)
{
    reset_plan(req);
    if (req->type == VD_OP_READ) {
        blk->engine->submit(blk, req);
        return;
    }
    if (req->type == VD_OP_FLUSH) {
        flush_submit(blk, req);
        return;
    }
    serial_leave(blk, req);
    int ret = modifying_plan(blk, req);
    if (ret < 0) {
        req_complete_later(req, ret, req->note);
        wake_serial_waiters(blk);
        run_wce_off_waiters(blk);
        return;
    }
    dispatch(blk, req);
}

void vd_blk_stop(VdBlockBackend *blk)
{
    if (!blk->stopped) {
        blk->stopped = true;
        vd_error_notify_stop(blk, false, 0);
    }
}

void vd_blk_resume(VdBlockBackend *blk)
{
    if (!blk->stopped) {
        return;
    }
    blk->stopped = false;
    GQueue held = blk->held, queued = blk->stop_queue;
    g_queue_init(&blk->held);
    g_queue_init(&blk->stop_queue);
    VdRequest *req;
    while ((req = g_queue_pop_head(&held))) {
        retry_held(blk, req);
    }
    while ((req = g_queue_pop_head(&queued))) {
        submit_fn[req->type](blk, req);
    }
}

bool vd_blk_cont(VdBlockBackend *blk, GError **errp)
{
    if (blk->stopped && !vd_blk_is_active(blk) && !vd_blk_invalidate_cache(blk, errp)) {
        return false;
    }
    vd_blk_resume(blk);
    return true;
}

/*
 * A drain (device teardown, close) ends the stop: the held requests are
 * reported (they complete with their error) and the queued ones issued, in
 * order, so that the drain can wait for every request.
 */
static void end_stop_for_drain(VdBlockBackend *blk)
{
    GQueue held = blk->held, queued = blk->stop_queue;
    g_queue_init(&blk->held);
    g_queue_init(&blk->stop_queue);
    blk->stopped = false;
    VdRequest *req;
    while ((req = g_queue_pop_head(&held))) {
        bool modifying = req->type != VD_OP_READ && req->type != VD_OP_FLUSH;
        if (modifying) {
            serial_leave(blk, req);
        }
        if (req->was_cached_write) {
            blk->cached_writes_in_flight--;
        }
        req->note = "held, then drained: reported";
        req_finish(req);
        if (modifying) {
            wake_serial_waiters(blk);
            run_wce_off_waiters(blk);
        }
    }
    while ((req = g_queue_pop_head(&queued))) {
        submit_fn[req->type](blk, req);
    }
}

/* ---- the guest write cache ---- */

/* Change the write-cache state and tell every subscriber. */
static void set_wce_state(VdBlockBackend *blk, bool enable)
{
    if (blk->wce == enable) {
        return;
    }
    blk->wce = enable;
    blk->stats.wce_toggles++;
    if (blk->crash) {
        vd_crash_note_wce(blk->crash, enable);
    }
    for (guint i = 0; i < blk->wce_notifiers->len; i++) {
        VdWceNotifier *n = &g_array_index(blk->wce_notifiers, VdWceNotifier, i);
        n->fn(n->opaque, enable);
    }
}

void vd_blk_set_write_cache(VdBlockBackend *blk, bool enable, VdBlockCompletionFunc *cb, void *opaque)
{
    VdRequest *req = req_new(blk, VD_OP_FLUSH, 0, 0, NULL, 0, 0, cb, opaque);
    req->internal = true;
    req->wce_target = enable;
    if (enable && blk->cap_write_through) {
        req_complete_later(req, 0, "write-through only: the disk has no cache to turn on");
        return;
    }
    if (enable || !blk->wce) {
        set_wce_state(blk, enable);
        req_complete_later(req, 0, enable ? "turning the cache on needs no flush" : "the cache was already off");
        return;
    }
    /* 1->0: new writes are durable from now on; older ones need a flush. */
    set_wce_state(blk, false);
    g_queue_push_tail(&blk->wce_off_waiters, req);
    run_wce_off_waiters(blk);
}

void vd_blk_add_write_cache_notifier(VdBlockBackend *blk, VdWriteCacheNotifyFunc *fn, void *opaque)
{
    VdWceNotifier n = { .fn = fn, .opaque = opaque };
    g_array_append_val(blk->wce_notifiers, n);
}

void vd_blk_remove_write_cache_notifier(VdBlockBackend *blk, VdWriteCacheNotifyFunc *fn, void *opaque)
{
    for (guint i = 0; i < blk->wce_notifiers->len; i++) {
        VdWceNotifier *n = &g_array_index(blk->wce_notifiers, VdWceNotifier, i);
        if (n->fn == fn && n->opaque == opaque) {
            g_array_remove_index(blk->wce_notifiers, i);
            return;
        }
    }
    g_warn_if_reached();
}

bool vd_blk_write_cache(VdBlockBackend *blk) { return blk->wce; }

bool vd_blk_write_through_only(VdBlockBackend *blk) { return blk->cap_write_through; }

bool vd_blk_default_write_cache(VdBlockBackend *blk)
{
    return blk->cache_mode != VD_CACHE_WRITETHROUGH && blk->cache_mode != VD_CACHE_DIRECTSYNC &&
           !blk->cap_write_through;
}

/* ---- open / close ---- */

/*
 * The one size rule for every device and tool: a whole number of sectors,
 * at least one.  A tail shorter than a sector could never be read or
 * written, and an empty image is no disk at all.
 */
static bool check_image_size(VdBlockBackend *blk, GError **errp)
{
    int64_t len = blk->length, up = (len + VD_BLK_SECTOR - 1) / VD_BLK_SECTOR * VD_BLK_SECTOR;
    bool has_file = blk->bs.drv->needs_filename;
    if (len == 0 && has_file) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "file=%s is empty (0 bytes); a disk needs at least one %d-byte sector: give it a size, "
                    "e.g. truncate -s 1G %s", blk->filename, VD_BLK_SECTOR, blk->filename);
    } else if (len == 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "size=0 is empty; driver=%s needs at least one %d-byte sector", blk->bs.drv->name, VD_BLK_SECTOR);
    } else if (len % VD_BLK_SECTOR && has_file) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "file=%s: size %" G_GINT64_FORMAT " bytes is not a multiple of %d; its last %" G_GINT64_FORMAT
                    " bytes could never be read or written: resize it, e.g. truncate -s %" G_GINT64_FORMAT " %s",
                    blk->filename, len, VD_BLK_SECTOR, len % VD_BLK_SECTOR, up, blk->filename);
    } else if (len % VD_BLK_SECTOR) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "size=%" G_GINT64_FORMAT " is not a multiple of %d bytes; use e.g. size=%" G_GINT64_FORMAT, len,
                    VD_BLK_SECTOR, up);
    } else {
        return true;
    }
    return false;
}

/* Fail an open whose driver reports an alignment that is not a power of two (util/align.h relies on it). */
static bool check_alignment(VdBlockBackend *blk, GError **errp)
{
    if (!vd_is_pow2(blk->req_align) || !vd_is_pow2(blk->mem_align)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "file=%s: the %s driver reports request alignment %u and memory alignment %u; "
                    "both must be powers of two", blk->filename, blk->bs.drv->name, blk->req_align,
                    blk->mem_align);
        return false;
    }
    return true;
}

/* Fail an open whose file size does not suit O_DIRECT. */
static bool check_direct_size(VdBlockBackend *blk, bool direct, GError **errp)
{
    if (direct && !vd_is_aligned(blk->length, blk->req_align)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "file=%s: size %" G_GINT64_FORMAT " is not a multiple of the O_DIRECT alignment %u "
                    "required by cache=%s; resize the image or use cache=writeback",
                    blk->filename, blk->length, blk->req_align, vd_cache_mode_name(blk->cache_mode));
        return false;
    }
    return true;
}

/*
 * Name the image once, for devices without serial=: a hash of the file's
 * st_dev and st_ino (the same file opened twice gets the same name), or
 * random bits when there is no file (driver=null) or it cannot be stat'ed.
 */
static void set_unique_id(VdBlockBackend *blk, bool has_file)
{
    struct stat st;
    uint64_t h = 0xcbf29ce484222325ull;                 /* FNV-1a 64 */
    if (has_file && stat(blk->filename, &st) == 0) {
        uint64_t key[2] = { (uint64_t)st.st_dev, (uint64_t)st.st_ino };
        const uint8_t *b = (const uint8_t *)key;
        for (size_t i = 0; i < sizeof(key); i++) {
            h = (h ^ b[i]) * 0x100000001b3ull;
        }
    } else {
        h = (uint64_t)g_random_int() << 32 | g_random_int();
    }
    g_snprintf(blk->unique_id, sizeof(blk->unique_id), "VD%016" G_GINT64_MODIFIER "X", h);
}

/* The image claim of an active backend: write unless read-only. */
static VdImagePerm own_perm(VdBlockBackend *blk)
{
    return blk->read_only ? VD_PERM_READ : VD_PERM_WRITE;
}

/* Ask the driver (if it locks) to claim perm. */
static bool set_perm(VdBlockBackend *blk, VdImagePerm perm, GError **errp)
{
    return !blk->bs.drv->set_perm || blk->bs.drv->set_perm(&blk->bs, perm, errp);
}

/* Check an option string as vd_blk_open would, without opening anything. */
bool vd_blk_check_options(const char *options, GError **errp)
{
    VdBlockOptions opts;
    if (!vd_block_options_parse(options, &opts, errp)) {
        return false;
    }
    vd_block_options_clear(&opts);
    return true;
}

VdBlockBackend *vd_blk_open(const char *options, GMainContext *ctx, GError **errp)
{
    VdBlockOptions opts;
    if (!vd_block_options_parse(options, &opts, errp)) {
        return NULL;
    }
    VdBlockBackend *blk = g_new0(VdBlockBackend, 1);
    blk->ctx = ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
    blk->filename = g_strdup(opts.file ? opts.file : "(null)");
    blk->cache_mode = opts.cache;
    blk->wt_policy = opts.wt_policy;
    blk->read_only = opts.read_only;
    blk->discard_enabled = opts.discard;
    VdAioEngine aio = opts.aio;
    bool aio_explicit = opts.aio_explicit;
    blk->inactive = !opts.active;
    blk->locking = opts.locking;
    blk->inline_mode = opts.inline_mode;
    g_mutex_init(&blk->fault_lock);
    g_mutex_init(&blk->bs.fd_lock);
    blk->wce_notifiers = g_array_new(FALSE, FALSE, sizeof(VdWceNotifier));
    blk->stop_notifiers = g_array_new(FALSE, FALSE, sizeof(VdStopNotifier));
    blk->werror = opts.werror;
    blk->rerror = opts.rerror;
    for (int op = 0; op < VD_FAULT__MAX; op++) {
        vd_blk_set_fault(blk, op, &opts.faults[op]);
        vd_blk_set_delay(blk, op, opts.delay_us[op]);
    }

    bool direct = opts.cache == VD_CACHE_NONE || opts.cache == VD_CACHE_DIRECTSYNC;
    g_autofree char *crash_log = g_steal_pointer(&opts.crash_log);
    g_autoptr(GPtrArray) driver_opts = g_steal_pointer(&opts.driver_opts);
    const VdBlockDriver *below[2] = { opts.child_child, NULL };
    VdDriverOpenOptions dopts = {
        .filename = opts.file ? blk->filename : NULL, .read_only = opts.read_only, .direct = direct, .size = opts.size,
        .open_dsync_fd = opts.wt_policy == VD_WT_DSYNC && !opts.read_only && opts.cache != VD_CACHE_UNSAFE,
        .locking = opts.locking,
        .child = opts.child, .below_child = below, .crash_tear = opts.crash_tear, .crash_samples = opts.crash_samples,
        .no_flush = opts.cache == VD_CACHE_UNSAFE,
        .l2_cache_size = opts.l2_cache_size, .refcount_cache_size = opts.refcount_cache_size,
        .qcow2_repair = opts.qcow2_repair,
        .crash_log = crash_log, .ctx = blk->ctx, .driver_opts = driver_opts,
    };
    const VdBlockDriver *drv = opts.driver;
    blk->bs.drv = drv;
    blk->bs.opaque = g_malloc0(MAX(drv->instance_size, 1));
    blk->bs.stats = &blk->stats;
    vd_block_options_clear(&opts);
    if (!drv->open(&blk->bs, &dopts, errp)) {
        g_free(blk->bs.opaque);
        blk->bs.drv = NULL;
        vd_blk_close(blk);
        return NULL;
    }
    set_unique_id(blk, dopts.filename != NULL);
    VdBlockDriverState *crash_bs = vd_bdrv_find(&blk->bs, &vd_driver_crashsim);
    blk->crash = crash_bs ? crash_bs->opaque : NULL;
    blk->length = drv->get_length(&blk->bs);
    blk->cap_fua = drv->can_fua ? drv->can_fua(&blk->bs) : VD_FUA_EMULATE;
    blk->cap_dsync = drv->can_dsync && drv->can_dsync(&blk->bs);
    bool async = drv->aio_submit != NULL; /* runs every op through aio_submit */
    blk->cap_discard = (drv->discard || async) && drv->can_discard && drv->can_discard(&blk->bs);
    blk->cap_zero = (drv->write_zeroes || async) && drv->can_zero && drv->can_zero(&blk->bs);
    blk->req_align = vd_bdrv_request_alignment(&blk->bs);
    blk->mem_align = vd_bdrv_mem_alignment(&blk->bs);
    blk->cap_write_through = drv->write_through_only && drv->write_through_only(&blk->bs);
    blk->wce = vd_blk_default_write_cache(blk);
    if (blk->length < 0) {
        int err = blk->length < -4095 ? EOVERFLOW : (int)-blk->length;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(err), "file=%s: cannot get its size: %s",
                    blk->filename, g_strerror(err));
        vd_blk_close(blk);
        return NULL;
    }
    if (!check_image_size(blk, errp) || !check_alignment(blk, errp) || !check_direct_size(blk, direct, errp) ||
        !set_perm(blk, blk->inactive ? VD_PERM_INACTIVE : own_perm(blk), errp)) {
        vd_blk_close(blk);
        return NULL;
    }
    if (posix_memalign(&blk->zero_buf, MAX(blk->mem_align, sizeof(void *)), VD_ZERO_BUF_SIZE) != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "out of memory");
        vd_blk_close(blk);
        return NULL;
    }
    memset(blk->zero_buf, 0, VD_ZERO_BUF_SIZE);
    if (!vd_engine_open(blk, aio, aio_explicit, errp)) {
        vd_blk_close(blk);
        return NULL;
    }
    return blk;
}

void vd_blk_close(VdBlockBackend *blk)
{
    if (!blk) {
        return;
    }
    if (blk->engine) {
        vd_blk_drain(blk);
        vd_engine_close(blk);
    }
    if (blk->bs.drv) {
        blk->bs.drv->close(&blk->bs);
        g_free(blk->bs.opaque);
    }
    free(blk->zero_buf);
    while (blk->free_reqs) {
        VdRequest *req = blk->free_reqs;
        blk->free_reqs = req->next_ready;
        g_free(req);
    }
    g_mutex_clear(&blk->fault_lock);
    g_mutex_clear(&blk->bs.fd_lock);
    g_array_unref(blk->wce_notifiers);
    g_array_unref(blk->stop_notifiers);
    if (blk->n_serialising == 0) {
        /* The overlap index left nothing behind. */
        g_assert(blk->ser_wide == 0);
        for (unsigned i = 0; i < VD_SER_BUCKETS; i++) {
            g_assert(blk->ser_bucket[i] == 0);
        }
    }
    g_free(blk->serialising);
    g_main_context_unref(blk->ctx);
    g_free(blk->filename);
    g_free(blk);
}

/* ---- accessors ---- */

int64_t vd_blk_length(VdBlockBackend *blk) { return blk->length; }
bool vd_blk_is_read_only(VdBlockBackend *blk) { return blk->read_only; }
VdCacheMode vd_blk_cache_mode(VdBlockBackend *blk) { return blk->cache_mode; }
VdWritethroughPolicy vd_blk_wt_policy(VdBlockBackend *blk) { return blk->wt_policy; }
VdAioEngine vd_blk_aio(VdBlockBackend *blk) { return blk->engine->kind; }
const char *vd_blk_driver_name(VdBlockBackend *blk) { return blk->bs.drv->name; }
const char *vd_blk_filename(VdBlockBackend *blk) { return blk->filename; }
const char *vd_blk_unique_id(VdBlockBackend *blk) { return blk->unique_id; }
bool vd_blk_fua_native(VdBlockBackend *blk) { return blk->cap_fua == VD_FUA_NATIVE; }
bool vd_blk_is_direct(VdBlockBackend *blk) { return blk->cache_mode == VD_CACHE_NONE || blk->cache_mode == VD_CACHE_DIRECTSYNC; }
bool vd_blk_can_discard(VdBlockBackend *blk) { return blk->discard_enabled && !blk->read_only; }
unsigned vd_blk_in_flight(VdBlockBackend *blk) { return blk->in_flight; }
bool vd_blk_is_active(VdBlockBackend *blk) { return !blk->inactive; }
const char *vd_blk_locking_name(VdBlockBackend *blk) { return vd_locking_name(blk->locking); }

void vd_blk_drain(VdBlockBackend *blk)
{
    if (blk->stopped) {
        end_stop_for_drain(blk);
    }
    while (blk->in_flight) {
        g_main_context_iteration(blk->ctx, TRUE);
    }
}

void vd_blk_set_trace(VdBlockBackend *blk, VdTraceFunc *fn, void *opaque)
{
    blk->trace_fn = fn;
    blk->trace_opaque = opaque;
}

typedef struct SyncWait {
    bool done;
    int ret;
} SyncWait;
static void sync_cb(void *opaque, int ret);
static int sync_wait(VdBlockBackend *blk, SyncWait *w);

/* ---- migration ---- */

/*
 * Wait for every request that reached the host; parked ones (held by the
 * error policy or queued while stopped) stay parked, so that a migration
 * can carry them to the destination, or `cont` retry them here.
 */
static void drain_issued(VdBlockBackend *blk)
{
    while (blk->in_flight > vd_blk_parked(blk)) {
        g_main_context_iteration(blk->ctx, TRUE);
    }
}

bool vd_blk_inactivate(VdBlockBackend *blk, GError **errp)
{
    drain_issued(blk);
    SyncWait w = { 0 };
    VdRequest *req = req_new(blk, VD_OP_FLUSH, 0, 0, NULL, 0, 0, sync_cb, &w);
    req->report_only = true; /* the caller gets the error; a held flush would wait here forever */
    blk->stats.flushes++;
    flush_submit(blk, req);
    int ret = sync_wait(blk, &w);
    if (ret < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-ret),
                    "file=%s: cannot hand the image over: the flush failed: %s", blk->filename, g_strerror(-ret));
        return false;
    }
    if (!set_perm(blk, VD_PERM_INACTIVE, errp)) {
        return false;
    }
    blk->inactive = true;
    if (blk->crash) {
        vd_crash_note_handover(blk->crash, "inactivated");
    }
    return true;
}

bool vd_blk_invalidate_cache(VdBlockBackend *blk, GError **errp)
{
    drain_issued(blk);
    if (!set_perm(blk, own_perm(blk), errp)) {
        return false;
    }
    int ret = 0;
    if (blk->bs.drv->drop_page_cache) {
        VdDriverReq dr = { 0 };
        ret = blk->bs.drv->drop_page_cache(&blk->bs, &dr);
    }
    if (ret < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-ret), "file=%s: cannot drop the host page cache: %s",
                    blk->filename, g_strerror(-ret));
        /* Giving back a claim never conflicts. */
        set_perm(blk, blk->inactive ? VD_PERM_INACTIVE : own_perm(blk), NULL);
        return false;
    }
    blk->inactive = false;
    if (blk->crash) {
        vd_crash_note_handover(blk->crash, "activated");
    }
    return true;
}

/* ---- synchronous wrappers (tests and tools) ---- */

/* Completion callback of the synchronous wrappers. */
static void sync_cb(void *opaque, int ret)
{
    SyncWait *w = opaque;
    w->done = true;
    w->ret = ret;
}

/* Iterate the owner's context until the request completes. */
static int sync_wait(VdBlockBackend *blk, SyncWait *w)
{
    while (!w->done) {
        g_main_context_iteration(blk->ctx, TRUE);
    }
    return w->ret;
}

int vd_blk_pread_sync(VdBlockBackend *blk, uint64_t offset, void *buf, size_t bytes)
{
    SyncWait w = { 0 };
    struct iovec iov = { .iov_base = buf, .iov_len = bytes };
    vd_blk_preadv(blk, offset, &iov, 1, sync_cb, &w);
    return sync_wait(blk, &w);
}

int vd_blk_pwrite_sync(VdBlockBackend *blk, uint64_t offset, const void *buf, size_t bytes, unsigned flags)
{
    SyncWait w = { 0 };
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = bytes };
    vd_blk_pwritev(blk, offset, &iov, 1, flags, sync_cb, &w);
    return sync_wait(blk, &w);
}

int vd_blk_flush_sync(VdBlockBackend *blk)
{
    SyncWait w = { 0 };
    vd_blk_flush(blk, sync_cb, &w);
    return sync_wait(blk, &w);
}

int vd_blk_discard_sync(VdBlockBackend *blk, uint64_t offset, uint64_t bytes)
{
    SyncWait w = { 0 };
    vd_blk_discard(blk, offset, bytes, sync_cb, &w);
    return sync_wait(blk, &w);
}

int vd_blk_write_zeroes_sync(VdBlockBackend *blk, uint64_t offset, uint64_t bytes, unsigned flags)
{
    SyncWait w = { 0 };
    vd_blk_write_zeroes(blk, offset, bytes, flags, sync_cb, &w);
    return sync_wait(blk, &w);
}

int vd_blk_set_write_cache_sync(VdBlockBackend *blk, bool enable)
{
    SyncWait w = { 0 };
    vd_blk_set_write_cache(blk, enable, sync_cb, &w);
    return sync_wait(blk, &w);
}
