/* stats.c - counters, the latency histogram and the per-request trace line. */
#include "block-internal.h"
#include "util/counters.h"

#include <stddef.h>
#include <string.h>

/* Every counter of VdBlockStats by name, in the order `blockstats` prints them. */
static const VdCounter counters[] = {
#define C(f) VD_COUNTER(VdBlockStats, f)
    C(reads), C(writes), C(fua_writes), C(flushes), C(discards), C(write_zeroes),
    C(bytes_read), C(bytes_written), C(wce_toggles),
    C(host_reads), C(host_writes), C(host_fdatasync), C(host_dsync_writes), C(host_rwf_dsync_writes),
    C(host_discards), C(host_zero_ranges), C(host_bytes_read), C(host_bytes_written), C(bounce_rmw),
    C(flushes_skipped), C(flushes_coalesced), C(flushes_stage1_only), C(errors), C(uring_ops),
    C(inline_ops), C(uring_submits), C(durable_writes), C(group_commits),
    C(inline_backoffs),
#undef C
};

void vd_blk_get_stats(VdBlockBackend *blk, VdBlockStats *out)
{
    for (size_t i = 0; i < G_N_ELEMENTS(counters); i++) {
        uint64_t *src = vd_counter_ptr(&counters[i], &blk->stats);
        *vd_counter_ptr(&counters[i], out) = __atomic_load_n(src, __ATOMIC_RELAXED);
    }
}

void vd_blk_format_stats(VdBlockBackend *blk, GString *out)
{
    VdBlockStats s;
    vd_blk_get_stats(blk, &s);
    g_string_append_printf(out, "write_cache=%d cache=%s wt_policy=%s aio=%s read_only=%d in_flight=%u sticky_error=%d"
                           " werror=%s rerror=%s stopped=%d parked=%u",
                           blk->wce, vd_cache_mode_name(blk->cache_mode), vd_wt_policy_name(blk->wt_policy), vd_aio_name(blk->engine->kind),
                           blk->read_only, blk->in_flight, -blk->sticky_error, vd_error_policy_name(blk->werror),
                           vd_error_policy_name(blk->rerror), blk->stopped, vd_blk_parked(blk));
    vd_counters_format(out, counters, G_N_ELEMENTS(counters), &s);
}

void vd_blk_get_latency(VdBlockBackend *blk, VdLatencyClass cls, uint64_t out[VD_LAT_BUCKETS])
{
    g_return_if_fail(cls < VD_LAT__MAX);
    memcpy(out, blk->latency[cls], sizeof(blk->latency[cls]));
}

/* The dispatching source's cached time while one of the backend's sources dispatches, else 0. */
static __thread gint64 dispatch_time;

VD_HOT gint64 vd_stats_now(void)
{
    if (dispatch_time) {
        return dispatch_time;
    }
    GSource *src = g_main_current_source();
    return src ? g_source_get_time(src) : g_get_monotonic_time();
}

VD_HOT gint64 vd_stats_dispatch_begin(GSource *source)
{
    gint64 outer = dispatch_time;
    dispatch_time = g_source_get_time(source);
    return outer;
}

VD_HOT void vd_stats_dispatch_end(gint64 outer)
{
    dispatch_time = outer;
}

void vd_blk_set_latency_histograms(VdBlockBackend *blk, bool enable)
{
    blk->latency_off = !enable;
}

VD_HOT unsigned vd_stats_latency_bucket(gint64 us)
{
    /* floor(log2(us)) with a bit scan; g_bit_nth_msf steps down from bit 63 one bit at a time. */
    return us <= 1 ? 0 : MIN(63 - __builtin_clzll(us), VD_LAT_BUCKETS - 1);
}

/* Add a finished request to the histogram of its class (log2 of microseconds). */
VD_HOT void vd_stats_record_latency(VdBlockBackend *blk, VdRequest *req)
{
    if (blk->latency_off) {
        return;
    }
    static const VdLatencyClass class_of[] = {
        [VD_OP_READ] = VD_LAT_READ, [VD_OP_WRITE] = VD_LAT_WRITE, [VD_OP_FLUSH] = VD_LAT_FLUSH,
        [VD_OP_DISCARD] = VD_LAT_OTHER, [VD_OP_ZEROES] = VD_LAT_OTHER,
    };
    blk->latency[class_of[req->type]][vd_stats_latency_bucket(vd_stats_now() - req->start_us)]++;
}

/* Emit "<guest op> -> <host syscalls>" for one finished request. */
void vd_stats_emit_trace(VdBlockBackend *blk, VdRequest *req, const char *note)
{
    static const char *const op_names[] = {
        [VD_OP_READ] = "read", [VD_OP_WRITE] = "write", [VD_OP_FLUSH] = "flush",
        [VD_OP_DISCARD] = "discard", [VD_OP_ZEROES] = "write-zeroes",
    };
    g_autoptr(GString) line = g_string_new(op_names[req->type]);
    if (req->internal) {
        g_string_printf(line, "set write cache=%d", req->wce_target);
    }
    if (req->type != VD_OP_FLUSH) {
        g_string_append_printf(line, " off=%" G_GUINT64_FORMAT " len=%" G_GUINT64_FORMAT, req->offset, req->bytes);
    }
    if (req->flags & VD_REQ_FUA) {
        g_string_append(line, " fua");
    }
    g_string_append_printf(line, " -> %s", req->trace->len ? req->trace->str : "no host I/O");
    if (note) {
        g_string_append_printf(line, " [%s]", note);
    }
    if (req->ret < 0) {
        g_string_append_printf(line, " => error %s", g_strerror(-req->ret));
    }
    blk->trace_fn(blk->trace_opaque, line->str);
}
