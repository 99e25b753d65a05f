/*
 * crashsim-log.c - the host op log in dm-log-writes format.
 *
 * Order as in Linux's drivers/md/dm-log-writes.c: a write is logged when it
 * becomes durable, so the writes a flush covered come just before its FLUSH
 * entry; a FUA write is logged at completion with the FUA flag; a discard
 * takes the DISCARD flag; each `crash` cut adds a MARK "cut-N".  Writes still
 * volatile when the log is written follow at the end, after the last FLUSH.
 * Layout (xfstests src/log-writes): sector 0 holds the super block (magic,
 * version 1, entry count, sector size 512); each entry is one 512-byte
 * header sector (sector, nr_sectors, flags, data_len, then a mark's text),
 * followed by nr_sectors of data for writes.  Write-zeroes is logged as a
 * write of zeroes.  Little-endian.  Lock rules: crashsim-internal.h.
 * The log a drive writes at close (log=PATH) also has a MARK "t=N" after
 * each FLUSH: when it was logged, in CLOCK_MONOTONIC microseconds, so a
 * host-side event (a guest's console line) can be placed in the log.
 */
#include "crashsim-internal.h"

#include <errno.h>
#include <string.h>

#define LOG_FLUSH_FLAG   (1u << 0)
#define LOG_FUA_FLAG     (1u << 1)
#define LOG_DISCARD_FLAG (1u << 2)
#define LOG_MARK_FLAG    (1u << 3)
#define WRITE_LOG_VERSION 1
#define WRITE_LOG_MAGIC 0x6a736677736872ull

void vd_crash_log_add(VdCrashSim *cs, VdCrashLogKind kind, VdCrashHostWrite *op, const char *mark)
{
    VdCrashLogEntry *e = g_new0(VdCrashLogEntry, 1);
    e->kind = kind;
    e->op = op;
    e->mark = g_strdup(mark);
    e->when = kind == VD_CRASH_LOG_FLUSH ? g_get_monotonic_time() : 0;
    g_ptr_array_add(cs->log, e);
}

void vd_crash_note_handover(VdCrashSim *cs, const char *what)
{
    g_autofree char *mark = g_strdup_printf("%s t=%" G_GINT64_FORMAT, what, g_get_monotonic_time());
    g_mutex_lock(&cs->lock);
    vd_crash_log_add(cs, VD_CRASH_LOG_MARK, NULL, mark);
    g_mutex_unlock(&cs->lock);
}

void vd_crash_log_entry_free(gpointer p)
{
    VdCrashLogEntry *e = p;
    if (e->op) {
        vd_crash_host_write_free(e->op);
    }
    g_free(e->mark);
    g_free(e);
}

/* Append one entry: a header sector, then the data of a write. */
static void put_entry(GByteArray *out, uint64_t sector, uint64_t nsect, uint64_t flags, const char *mark,
                      const uint8_t *data)
{
    uint8_t hdr[VD_CRASH_SECTOR] = { 0 };
    size_t mlen = mark ? MIN(strlen(mark), VD_CRASH_SECTOR - 32) : 0;
    uint64_t f[4] = { GUINT64_TO_LE(sector), GUINT64_TO_LE(nsect), GUINT64_TO_LE(flags), GUINT64_TO_LE(mlen) };
    memcpy(hdr, f, sizeof(f));
    if (mlen) {
        memcpy(hdr + 32, mark, mlen);
    }
    g_byte_array_append(out, hdr, sizeof(hdr));
    if (data) {
        g_byte_array_append(out, data, nsect * VD_CRASH_SECTOR);
    }
}

/* Append one host op; write-zeroes carries its zeroes as data. */
static void put_op(GByteArray *out, const VdCrashHostWrite *w)
{
    uint64_t flags = (w->fua ? LOG_FUA_FLAG : 0) | (w->kind == VD_CRASH_OP_DISCARD ? LOG_DISCARD_FLAG : 0);
    g_autofree uint8_t *zeroes = w->kind == VD_CRASH_OP_ZEROES ? g_malloc0(w->nsect * VD_CRASH_SECTOR) : NULL;
    put_entry(out, w->sector, w->nsect, flags, NULL, w->kind == VD_CRASH_OP_WRITE ? w->data : zeroes);
}

/* Append a FLUSH entry, and its time stamp MARK if asked; returns the number of entries. */
static uint64_t put_flush(GByteArray *out, const VdCrashLogEntry *e, bool stamps)
{
    put_entry(out, 0, 0, LOG_FLUSH_FLAG, NULL, NULL);
    if (!stamps) {
        return 1;
    }
    g_autofree char *stamp = g_strdup_printf("t=%" G_GINT64_FORMAT, e->when);
    put_entry(out, 0, 0, LOG_MARK_FLAG, stamp, NULL);
    return 2;
}

/* Serialise the log (lock held); returns the number of entries. */
static uint64_t serialise(VdCrashSim *cs, GByteArray *out, bool stamps)
{
    uint64_t n = 0;
    for (guint i = 0; i < cs->log->len; i++, n++) {
        const VdCrashLogEntry *e = g_ptr_array_index(cs->log, i);
        if (e->kind == VD_CRASH_LOG_OP) {
            put_op(out, e->op);
        } else if (e->kind == VD_CRASH_LOG_FLUSH) {
            n += put_flush(out, e, stamps) - 1;
        } else {
            put_entry(out, 0, 0, LOG_MARK_FLAG, e->mark, NULL);
        }
    }
    for (guint i = 0; i < cs->pending->len; i++) {
        const VdCrashHostWrite *w = g_ptr_array_index(cs->pending, i);
        if (w->done_seq) {
            put_op(out, w);
            n++;
        }
    }
    return n;
}

bool vd_crash_log_write(VdCrashSim *cs, const char *path, bool stamps, GError **errp)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    uint8_t super[VD_CRASH_SECTOR] = { 0 };
    g_byte_array_append(out, super, sizeof(super));
    uint64_t n = 0;
    if (cs) {
        g_mutex_lock(&cs->lock);
        n = serialise(cs, out, stamps);
        g_mutex_unlock(&cs->lock);
    }
    uint64_t s[3] = { GUINT64_TO_LE(WRITE_LOG_MAGIC), GUINT64_TO_LE(WRITE_LOG_VERSION), GUINT64_TO_LE(n) };
    uint32_t sectorsize = GUINT32_TO_LE(VD_CRASH_SECTOR);
    memcpy(out->data, s, sizeof(s));
    memcpy(out->data + sizeof(s), &sectorsize, sizeof(sectorsize));
    return g_file_set_contents(path, (const char *)out->data, out->len, errp);
}

bool vd_blk_crash_write_log(VdBlockBackend *blk, const char *path, GError **errp)
{
    if (!blk->crash) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "drive has no crashsim filter (open it with driver=crashsim,child=...)");
        return false;
    }
    return vd_crash_log_write(blk->crash, path, false, errp);
}
