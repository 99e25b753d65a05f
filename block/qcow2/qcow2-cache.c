/*
 * qcow2-cache.c - a write-back cache of cluster-sized metadata tables (one
 * for L2 tables, one for refcount blocks), least recently used out.  A dirty
 * table is written back when it is evicted or at stage 1 of a flush, always
 * through qcow2_meta_write, which first makes the lower levels durable
 * (qcow2.h: the dependency order).  Callers hold s->lock (qcow2.h) and pin a
 * table between get and put.
 */
#include "qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void qcow2_cache_init(Qcow2Cache *c, Qcow2Level level, unsigned n, BDRVQcow2State *s)
{
    *c = (Qcow2Cache){ .level = level, .n = n, .e = g_new0(Qcow2CacheEntry, n),
                       .map = g_hash_table_new(g_int64_hash, g_int64_equal) };
    for (unsigned i = 0; i < n; i++) {
        if (posix_memalign(&c->e[i].table, s->mem_align, s->cluster_size) != 0) {
            g_error("qcow2: out of memory for the metadata cache");
        }
    }
}

void qcow2_cache_destroy(Qcow2Cache *c)
{
    for (unsigned i = 0; c->e && i < c->n; i++) {
        free(c->e[i].table);
    }
    g_clear_pointer(&c->e, g_free);
    g_clear_pointer(&c->map, g_hash_table_destroy);
}

/* The present entry for the table at offset, which the caller got from qcow2_cache_get. */
static Qcow2CacheEntry *entry_of(Qcow2Cache *c, uint64_t offset)
{
    Qcow2CacheEntry *e = g_hash_table_lookup(c->map, &offset);
    g_assert(e);
    return e;
}

/* Write one dirty entry back. */
static int write_entry(BDRVQcow2State *s, Qcow2Cache *c, Qcow2CacheEntry *e)
{
    int ret = qcow2_meta_write(s, c->level, e->offset, e->table, s->cluster_size);
    if (ret < 0) {
        return ret;
    }
    e->dirty = false;
    c->writes++;
    return 0;
}

/* A slot for a new table: a free one, else the least recently used unpinned one, written back if dirty. */
static int find_victim(BDRVQcow2State *s, Qcow2Cache *c, Qcow2CacheEntry **out)
{
    Qcow2CacheEntry *v = NULL;
    for (unsigned i = 0; i < c->n; i++) {
        Qcow2CacheEntry *e = &c->e[i];
        if (!e->pins && (!v || !e->offset || (v->offset && e->lru < v->lru))) {
            v = e;
        }
    }
    if (!v) {
        return -ENOMEM; /* every slot pinned: the cache is smaller than one request needs */
    }
    if (v->offset && v->dirty) {
        int ret = write_entry(s, c, v);
        if (ret < 0) {
            return ret;
        }
    }
    if (v->offset) {
        g_hash_table_remove(c->map, &v->offset);
    }
    v->offset = 0;
    *out = v;
    return 0;
}

int qcow2_cache_get(BDRVQcow2State *s, Qcow2Cache *c, uint64_t offset, bool fresh, void **table)
{
    Qcow2CacheEntry *e = g_hash_table_lookup(c->map, &offset);
    if (e) {
        c->hits++;
        if (fresh) {
            memset(e->table, 0, s->cluster_size);
        }
    } else {
        int ret = find_victim(s, c, &e);
        if (ret < 0) {
            return ret;
        }
        c->misses++;
        if (fresh) {
            memset(e->table, 0, s->cluster_size);
        } else if ((ret = qcow2_meta_read(s, offset, e->table, s->cluster_size)) < 0) {
            return ret;
        }
        e->offset = offset;
        e->dirty = false;
        g_hash_table_insert(c->map, &e->offset, e);
    }
    e->lru = ++c->lru_clock;
    e->pins++;
    *table = e->table;
    return 0;
}

void qcow2_cache_put(Qcow2Cache *c, uint64_t offset)
{
    Qcow2CacheEntry *e = entry_of(c, offset);
    g_assert(e->pins > 0);
    e->pins--;
}

void qcow2_cache_mark_dirty(Qcow2Cache *c, uint64_t offset)
{
    entry_of(c, offset)->dirty = true;
}

int qcow2_cache_write_dirty(BDRVQcow2State *s, Qcow2Cache *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        if (c->e[i].offset && c->e[i].dirty) {
            int ret = write_entry(s, c, &c->e[i]);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}
