/*
 * crashsim-cut.c - a power cut and the device-contract oracle.
 *
 * A crash state keeps every durable host op, plus any subset of the pending
 * ones (in flight or completed-but-volatile), split into units of 512 B or
 * 4 KiB when tearing is on; per sector, the kept writer that is last in host
 * order wins.  The oracle: every promised sector holds the promised write's
 * data, or the data of a guest write not ordered before it (one that
 * completed after the promised write was submitted, or is still in flight).
 *
 * Up to VD_CRASH_EXHAUSTIVE_UNITS units, state k keeps the units whose bit
 * is set in k (all 2^n states).  Beyond that, `samples` states are drawn:
 * state k keeps unit u iff bit 0 of mix(seed, k, u) is set, so (seed, k)
 * names one state for good.  A state is never materialised as an image:
 * only the promised sectors that some state could get wrong ("at risk") are
 * evaluated, from the durable map plus the units that cover them.
 * Runs on the owner thread with cs->lock held (crashsim-internal.h).
 */
#include "crashsim-internal.h"

#include <string.h>

#define DEFAULT_SAMPLES 256

/* What may be read back at one promised sector. */
typedef struct Promise {
    uint64_t done_seq, submit_seq;   /* the last promised write covering it */
    GArray *allowed;                 /* uint64 tokens */
    bool any;                        /* a discard, failed or partial write: anything goes */
} Promise;

/* A promised sector that some state could get wrong. */
typedef struct Risk {
    uint64_t sector;
    bool durable_ok;
    GArray *cands;                   /* Cand, last writer first */
} Risk;

typedef struct Cand {
    guint unit;
    uint64_t order;
    bool ok;
} Cand;

/* Free a Promise (hash table value). */
static void promise_free(gpointer p)
{
    Promise *pr = p;
    g_array_unref(pr->allowed);
    g_free(pr);
}

/* Guest writes -> the promised sectors and what each may read back as. */
static GHashTable *collect_promises(VdCrashGuest *cs)
{
    GHashTable *t = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, promise_free);
    for (guint i = 0; i < cs->gwrites->len; i++) {
        VdCrashGuestWrite *w = g_ptr_array_index(cs->gwrites, i);
        for (uint64_t s = 0; w->promised && s < w->nsect; s++) {
            gpointer key = GSIZE_TO_POINTER(w->sector + s + 1);
            Promise *pr = g_hash_table_lookup(t, key);
            if (!pr) {
                pr = g_new0(Promise, 1);
                pr->allowed = g_array_new(FALSE, FALSE, sizeof(uint64_t));
                g_hash_table_insert(t, key, pr);
            }
            if (w->done_seq > pr->done_seq) {
                pr->done_seq = w->done_seq;
                pr->submit_seq = w->submit_seq;
            }
        }
    }
    for (guint i = 0; i < cs->gwrites->len; i++) {
        VdCrashGuestWrite *w = g_ptr_array_index(cs->gwrites, i);
        for (uint64_t s = 0; s < w->nsect; s++) {
            Promise *pr = g_hash_table_lookup(t, GSIZE_TO_POINTER(w->sector + s + 1));
            if (!pr || (w->done_seq && w->done_seq < pr->submit_seq)) {
                continue; /* not promised, or ordered before the promised write */
            }
            uint64_t tok = w->hash ? w->hash[s] : VD_CRASH_ANY;
            if (!w->done_seq || tok == VD_CRASH_ANY) {
                pr->any = true; /* still in flight (data not hashed yet), or anything goes */
            } else {
                g_array_append_val(pr->allowed, tok);
            }
        }
    }
    return t;
}

/* True if token may be read back at a promised sector. */
static bool token_ok(const Promise *pr, uint64_t tok)
{
    if (pr->any || tok == VD_CRASH_ANY) {
        return true;
    }
    for (guint i = 0; i < pr->allowed->len; i++) {
        if (g_array_index(pr->allowed, uint64_t, i) == tok) {
            return true;
        }
    }
    return false;
}

GArray *vd_crash_collect_units(VdCrashSim *cs)
{
    GArray *units = g_array_new(FALSE, FALSE, sizeof(VdCrashUnit));
    uint64_t step = cs->tear ? cs->tear / VD_CRASH_SECTOR : UINT64_MAX;
    for (guint i = 0; i < cs->pending->len; i++) {
        VdCrashHostWrite *w = g_ptr_array_index(cs->pending, i);
        uint64_t order = w->done_seq ? w->done_seq : cs->host_seq + w->start_seq;
        for (uint64_t first = 0; first < w->nsect;) {
            /* Tear at absolute tear-size boundaries, as a device's atomic unit would. */
            uint64_t abs = w->sector + first;
            uint64_t end = step == UINT64_MAX ? w->nsect : MIN(w->nsect, (abs / step + 1) * step - w->sector);
            VdCrashUnit u = { .w = w, .first = first, .end = end, .order = order };
            g_array_append_val(units, u);
            first = end;
        }
    }
    return units;
}

/* Order candidates last writer first. */
static gint cand_cmp(gconstpointer a, gconstpointer b)
{
    const Cand *x = a, *y = b;
    return x->order > y->order ? -1 : x->order < y->order;
}

/* Order risks by sector, so that a state's first lost sector is its lowest. */
static gint risk_cmp(gconstpointer a, gconstpointer b)
{
    const Risk *x = a, *y = b;
    return x->sector < y->sector ? -1 : x->sector > y->sector;
}

/* The promised sectors that some state could get wrong, with their candidate writers. */
static GArray *collect_risks(VdCrashSim *cs, GHashTable *promises, GArray *units)
{
    GArray *risks = g_array_new(FALSE, FALSE, sizeof(Risk));
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init(&it, promises);
    while (g_hash_table_iter_next(&it, &key, &val)) {
        uint64_t sector = GPOINTER_TO_SIZE(key) - 1;
        const Promise *pr = val;
        VdCrashDurable *d = g_hash_table_lookup(cs->durable, key);
        uint64_t dseq = d ? d->seq : 0;
        Risk r = { .sector = sector, .durable_ok = token_ok(pr, d ? d->hash : VD_CRASH_BASE) };
        bool all_ok = r.durable_ok;
        r.cands = g_array_new(FALSE, FALSE, sizeof(Cand));
        for (guint u = 0; u < units->len; u++) {
            const VdCrashUnit *un = &g_array_index(units, VdCrashUnit, u);
            if (sector < un->w->sector + un->first || sector >= un->w->sector + un->end || un->order < dseq) {
                continue;
            }
            Cand c = { .unit = u, .order = un->order, .ok = token_ok(pr, un->w->hash[sector - un->w->sector]) };
            all_ok &= c.ok;
            g_array_append_val(r.cands, c);
        }
        if (all_ok) {
            g_array_unref(r.cands);
            continue;
        }
        g_array_sort(r.cands, cand_cmp);
        g_array_append_val(risks, r);
    }
    g_array_sort(risks, risk_cmp);
    return risks;
}

/* splitmix64: the stateless mixer behind sampled states. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

bool vd_crash_keeps(bool exhaustive, uint64_t seed, uint64_t k, guint u)
{
    if (exhaustive) {
        return (k >> u) & 1;
    }
    return mix(mix(seed ^ mix(k)) + u) & 1;
}

uint64_t vd_crash_state_count(const VdCrashSim *cs, guint units)
{
    return units <= VD_CRASH_EXHAUSTIVE_UNITS ? (1ull << units) : (cs->samples ? cs->samples : DEFAULT_SAMPLES);
}

/* Check one state; returns the first lost sector + 1, or 0 if it keeps every promise. */
static uint64_t check_state(const GArray *risks, bool exhaustive, uint64_t seed, uint64_t k)
{
    for (guint i = 0; i < risks->len; i++) {
        const Risk *r = &g_array_index(risks, Risk, i);
        bool ok = r->durable_ok;
        for (guint c = 0; c < r->cands->len; c++) {
            const Cand *cand = &g_array_index(r->cands, Cand, c);
            if (vd_crash_keeps(exhaustive, seed, k, cand->unit)) {
                ok = cand->ok;
                break;
            }
        }
        if (!ok) {
            return r->sector + 1;
        }
    }
    return 0;
}

/* Enumerate or sample the states of this cut and run the oracle on each, for the promises of g. */
static void run_cut(VdCrashSim *cs, VdCrashGuest *g, VdCrashReport *out)
{
    g_autoptr(GHashTable) promises = collect_promises(g);
    g_autoptr(GArray) units = vd_crash_collect_units(cs);
    g_autoptr(GArray) risks = collect_risks(cs, promises, units);
    out->promised = g_hash_table_size(promises);
    out->pending = units->len;
    bool exhaustive = units->len <= VD_CRASH_EXHAUSTIVE_UNITS;
    out->sampled = !exhaustive;
    out->cuts = vd_crash_state_count(cs, units->len);
    for (uint64_t k = 0; k < out->cuts; k++) {
        uint64_t lost = check_state(risks, exhaustive, out->seed, k);
        if (lost && !out->failures++) {
            out->first_cut = k;
            out->first_lba = lost - 1;
        }
    }
    for (guint i = 0; i < risks->len; i++) {
        g_array_unref(g_array_index(risks, Risk, i).cands);
    }
}

bool vd_blk_has_crashsim(VdBlockBackend *blk)
{
    return blk->crash != NULL;
}

bool vd_blk_crash_check(VdBlockBackend *blk, uint64_t seed, VdCrashReport *out, GError **errp)
{
    return vd_blk_crash_check_guest(blk, blk->crash ? blk->crash->seen : NULL, seed, out, errp);
}

bool vd_blk_crash_check_guest(VdBlockBackend *blk, VdCrashGuest *g, uint64_t seed, VdCrashReport *out, GError **errp)
{
    VdCrashSim *cs = blk->crash;
    if (!cs) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "drive has no crashsim filter (open it with driver=crashsim,child=...)");
        return false;
    }
    if (vd_bdrv_find(&blk->bs, &vd_driver_qcow2)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "crashsim sits below driver 'qcow2': guest sectors are not its sectors (check the crash states "
                    "of the image instead, docs/qcow2.md)");
        return false;
    }
    *out = (VdCrashReport){ .seed = seed, .unsafe = blk->cache_mode == VD_CACHE_UNSAFE };
    g_mutex_lock(&cs->lock);
    run_cut(cs, g, out);
    g_autofree char *mark = g_strdup_printf("cut-%u", ++cs->cuts);
    vd_crash_log_add(cs, VD_CRASH_LOG_MARK, NULL, mark);
    g_mutex_unlock(&cs->lock);
    return true;
}

void vd_crash_report_format(const VdCrashReport *r, GString *out)
{
    if (r->unsafe) {
        g_string_append_printf(out, "cuts=%" G_GUINT64_FORMAT " promised=0 failures=0 unsafe: nothing is promised;"
                               " %" G_GUINT64_FORMAT " states lose data a safe cache mode would keep",
                               r->cuts, r->failures);
        return;
    }
    g_string_append_printf(out, "cuts=%" G_GUINT64_FORMAT " promised=%" G_GUINT64_FORMAT " failures=%" G_GUINT64_FORMAT,
                           r->cuts, r->promised, r->failures);
    if (r->failures) {
        g_string_append_printf(out, " first failure: seed=%" G_GUINT64_FORMAT " cut=%" G_GUINT64_FORMAT
                               " lba=%" G_GUINT64_FORMAT, r->seed, r->first_cut, r->first_lba);
    }
}
