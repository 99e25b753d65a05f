/*
 * nbd-bench.c - IOPS of the block backend on any drive option string (an NBD
 * export for bench/nbd-bench.sh): 4 KiB writes at consecutive offsets (as
 * qemu-img bench -S 4k), wrapping at 64 MiB, QD requests in flight, for SECONDS.  Prints
 * "iops=N".  With cache=writethrough every write is durable at completion.
 *
 *   nbd-bench OPTIONS QD SECONDS
 *
 * Single-threaded: everything runs in the default GMainContext.
 */
#include "block/block-backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 4096
#define SPAN (64u << 20)

typedef struct Slot {
    struct Bench *b;
    struct iovec iov;
    uint8_t *buf;
} Slot;

typedef struct Bench {
    VdBlockBackend *blk;
    gint64 deadline;
    uint64_t done, span, next;
    unsigned running;
    int error;
} Bench;

static void submit(Slot *s);

/* One write finished: count it and start the next until the deadline. */
static void write_done(void *opaque, int ret)
{
    Slot *s = opaque;
    Bench *b = s->b;
    if (ret < 0 && !b->error) {
        b->error = ret;
    }
    b->done++;
    if (ret == 0 && g_get_monotonic_time() < b->deadline) {
        submit(s);
    } else {
        b->running--;
    }
}

/* Start one 4 KiB write at the next offset. */
static void submit(Slot *s)
{
    Bench *b = s->b;
    uint64_t off = b->next;
    b->next = (b->next + BLOCK) % b->span;
    vd_blk_pwritev(b->blk, off, &s->iov, 1, 0, write_done, s);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: nbd-bench OPTIONS QD SECONDS\n");
        return 2;
    }
    unsigned qd = (unsigned)atoi(argv[2]), secs = (unsigned)atoi(argv[3]);
    GError *err = NULL;
    Bench b = { .blk = vd_blk_open(argv[1], NULL, &err) };
    if (!b.blk || qd == 0 || secs == 0) {
        fprintf(stderr, "nbd-bench: %s\n", b.blk ? "QD and SECONDS must be at least 1" : err->message);
        return 1;
    }
    b.span = MIN(SPAN, (uint64_t)vd_blk_length(b.blk)) / BLOCK * BLOCK;
    Slot *slots = g_new0(Slot, qd);
    gint64 t0 = g_get_monotonic_time();
    b.deadline = t0 + (gint64)secs * G_USEC_PER_SEC;
    for (unsigned i = 0; i < qd; i++) {
        slots[i] = (Slot){ .b = &b, .buf = g_malloc(BLOCK) };
        memset(slots[i].buf, i, BLOCK);
        slots[i].iov = (struct iovec){ slots[i].buf, BLOCK };
        b.running++;
        submit(&slots[i]);
    }
    while (b.running) {
        g_main_context_iteration(NULL, TRUE);
    }
    double elapsed = (g_get_monotonic_time() - t0) / 1e6;
    VdBlockStats st;
    vd_blk_get_stats(b.blk, &st);
    printf("iops=%.0f writes=%" G_GUINT64_FORMAT " host_flushes=%" G_GUINT64_FORMAT " fua_writes=%" G_GUINT64_FORMAT
           " group_commits=%" G_GUINT64_FORMAT " host_writes=%" G_GUINT64_FORMAT " error=%d\n",
           b.done / elapsed, b.done, (guint64)st.host_fdatasync, (guint64)st.host_rwf_dsync_writes,
           (guint64)st.group_commits, (guint64)st.host_writes, b.error);
    vd_blk_close(b.blk);
    for (unsigned i = 0; i < qd; i++) {
        g_free(slots[i].buf);
    }
    g_free(slots);
    return b.error ? 1 : 0;
}
