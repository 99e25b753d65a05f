/*
 * crashsim-image.c - crash states as bytes, for a crashsim below a format
 * driver (include/block/crashsim.h).  A capture takes cs->lock once: it lays
 * every durable op over the base in completion order (the last writer wins,
 * as in the durable map) and copies the pending units; then each state is
 * the durable image plus the units it keeps, in host order, a unit never
 * overwriting a sector made durable by a later op.  Switching states undoes
 * the previous one's units instead of copying the image.  Owner thread.
 */
#include "crashsim-internal.h"

#include <string.h>

/* A pending unit, copied: its sectors and bytes (NULL: zeroes), and which sectors it may land on. */
typedef struct StateUnit {
    uint64_t sector, nsect;
    guint idx;                  /* its number in the cut (vd_crash_keeps) */
    uint64_t order;             /* host order: a later kept unit wins a sector */
    uint8_t *data;
    bool *lands;                /* false: a later durable op owns that sector */
} StateUnit;

/* Bytes a state's units overwrote, to undo them. */
typedef struct Undo {
    uint64_t offset;
    uint8_t old[VD_CRASH_SECTOR];
} Undo;

struct VdCrashStates {
    GByteArray *img;            /* the durable image, plus the current state's units */
    guint durable_len;
    GArray *units;              /* StateUnit, in host order */
    GArray *undo;               /* Undo of the current state */
    bool exhaustive;
    uint64_t seed, count;
};

/* Order durable ops by completion. */
static gint by_done(gconstpointer a, gconstpointer b)
{
    const VdCrashHostWrite *x = *(VdCrashHostWrite *const *)a, *y = *(VdCrashHostWrite *const *)b;
    return x->done_seq < y->done_seq ? -1 : x->done_seq > y->done_seq;
}

/* Put nsect sectors (data, or zeroes if NULL) at sector into img, growing it. */
static void put_sectors(GByteArray *img, uint64_t sector, uint64_t nsect, const uint8_t *data)
{
    uint64_t off = sector * VD_CRASH_SECTOR, len = nsect * VD_CRASH_SECTOR;
    if (img->len < off + len) {
        guint old = img->len;
        g_byte_array_set_size(img, off + len);
        memset(img->data + old, 0, img->len - old);
    }
    if (data) {
        memcpy(img->data + off, data, len);
    } else {
        memset(img->data + off, 0, len);
    }
}

/* The durable image: base, then every durable op in completion order (lock held). */
static void build_durable(VdCrashSim *cs, VdCrashStates *st)
{
    g_autoptr(GPtrArray) ops = g_ptr_array_new();
    for (guint i = 0; i < cs->log->len; i++) {
        VdCrashLogEntry *e = g_ptr_array_index(cs->log, i);
        if (e->kind == VD_CRASH_LOG_OP) {
            g_ptr_array_add(ops, e->op);
        }
    }
    g_ptr_array_sort(ops, by_done);
    for (guint i = 0; i < ops->len; i++) {
        VdCrashHostWrite *w = g_ptr_array_index(ops, i);
        put_sectors(st->img, w->sector, w->nsect, w->kind == VD_CRASH_OP_WRITE ? w->data : NULL);
    }
    st->durable_len = st->img->len;
}

/* Order units by host order. */
static gint by_order(gconstpointer a, gconstpointer b)
{
    const StateUnit *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Copy the pending units, and where each may land (lock held). */
static void copy_units(VdCrashSim *cs, VdCrashStates *st)
{
    g_autoptr(GArray) units = vd_crash_collect_units(cs);
    st->exhaustive = units->len <= VD_CRASH_EXHAUSTIVE_UNITS;
    st->count = vd_crash_state_count(cs, units->len);
    st->units = g_array_new(FALSE, FALSE, sizeof(StateUnit));
    for (guint u = 0; u < units->len; u++) {
        const VdCrashUnit *un = &g_array_index(units, VdCrashUnit, u);
        StateUnit su = { .sector = un->w->sector + un->first, .nsect = un->end - un->first, .idx = u,
                         .order = un->order };
        if (un->w->kind == VD_CRASH_OP_WRITE) {
            su.data = g_memdup2(un->w->data + un->first * VD_CRASH_SECTOR, su.nsect * VD_CRASH_SECTOR);
        }
        su.lands = g_new(bool, su.nsect);
        for (uint64_t i = 0; i < su.nsect; i++) {
            VdCrashDurable *d = g_hash_table_lookup(cs->durable, GSIZE_TO_POINTER(su.sector + i + 1));
            su.lands[i] = !d || d->seq < un->order;
        }
        g_array_append_val(st->units, su);
    }
    g_array_sort(st->units, by_order);
}

VdCrashStates *vd_blk_crash_states(VdBlockBackend *blk, const uint8_t *base, size_t base_len, uint64_t seed,
                                   GError **errp)
{
    VdCrashSim *cs = blk->crash;
    if (!cs) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "drive has no crashsim filter (open it with driver=crashsim,child=...)");
        return NULL;
    }
    VdCrashStates *st = g_new0(VdCrashStates, 1);
    st->seed = seed;
    st->img = g_byte_array_sized_new(base_len);
    g_byte_array_append(st->img, base, base_len);
    st->undo = g_array_new(FALSE, FALSE, sizeof(Undo));
    g_mutex_lock(&cs->lock);
    build_durable(cs, st);
    copy_units(cs, st);
    g_mutex_unlock(&cs->lock);
    return st;
}

uint64_t vd_crash_states_count(const VdCrashStates *st)
{
    return st->count;
}

/* Undo the current state's units: back to the durable image. */
static void undo_state(VdCrashStates *st)
{
    for (guint i = st->undo->len; i-- > 0;) {
        const Undo *u = &g_array_index(st->undo, Undo, i);
        if (u->offset + VD_CRASH_SECTOR <= st->durable_len) {
            memcpy(st->img->data + u->offset, u->old, VD_CRASH_SECTOR);
        }
    }
    g_array_set_size(st->undo, 0);
    g_byte_array_set_size(st->img, st->durable_len);
}

const GByteArray *vd_crash_states_image(VdCrashStates *st, uint64_t k)
{
    undo_state(st);
    for (guint u = 0; u < st->units->len; u++) {
        const StateUnit *su = &g_array_index(st->units, StateUnit, u);
        if (!vd_crash_keeps(st->exhaustive, st->seed, k, su->idx)) {
            continue;
        }
        for (uint64_t i = 0; i < su->nsect; i++) {
            if (!su->lands[i]) {
                continue;
            }
            Undo un = { .offset = (su->sector + i) * VD_CRASH_SECTOR };
            if (un.offset + VD_CRASH_SECTOR <= st->img->len) {
                memcpy(un.old, st->img->data + un.offset, VD_CRASH_SECTOR);
            }
            g_array_append_val(st->undo, un);
            put_sectors(st->img, su->sector + i, 1, su->data ? su->data + i * VD_CRASH_SECTOR : NULL);
        }
    }
    return st->img;
}

void vd_crash_states_free(VdCrashStates *st)
{
    if (!st) {
        return;
    }
    for (guint u = 0; u < st->units->len; u++) {
        StateUnit *su = &g_array_index(st->units, StateUnit, u);
        g_free(su->data);
        g_free(su->lands);
    }
    g_array_free(st->units, TRUE);
    g_array_free(st->undo, TRUE);
    g_byte_array_free(st->img, TRUE);
    g_free(st);
}
