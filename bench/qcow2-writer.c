/*
 * qcow2-writer.c - the vdisk side of bench/qcow2-bench.sh: COUNT 4 KiB
 * writes through the block backend (format=qcow2), QD at a time, at the
 * offsets `qemu-img bench -w -o OFFSET -S STEP` uses (OFFSET, OFFSET+STEP,
 * ... wrapping at the image size), so that both tools do the same work.
 *   qcow2-writer IMAGE CACHE QD COUNT OFFSET STEP
 * Prints "IOPS N".  Exit 0, or 1 with one line on failure.
 */
#include "block/block-backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BS 4096u

typedef struct Bench {
    VdBlockBackend *blk;
    uint64_t size, next, step, left, inflight;
    uint8_t *buf;
    struct iovec iov;
    int err;
} Bench;

static void submit_one(Bench *b);

/* A write finished: start the next one while any are left. */
static void write_done(void *opaque, int ret)
{
    Bench *b = opaque;
    b->inflight--;
    if (ret < 0 && !b->err) {
        b->err = ret;
    }
    if (b->left && !b->err) {
        submit_one(b);
    }
}

/* Submit the write at the next offset. */
static void submit_one(Bench *b)
{
    uint64_t off = b->next;
    b->next = (b->next + b->step) % b->size / BS * BS;
    b->left--;
    b->inflight++;
    vd_blk_pwritev(b->blk, off, &b->iov, 1, 0, write_done, b);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: qcow2-writer IMAGE CACHE QD COUNT OFFSET STEP\n");
        return 1;
    }
    g_autofree char *opts = g_strdup_printf("file=%s,format=qcow2,cache=%s", argv[1], argv[2]);
    g_autoptr(GError) err = NULL;
    Bench b = { 0 };
    b.blk = vd_blk_open(opts, NULL, &err);
    if (!b.blk) {
        fprintf(stderr, "qcow2-writer: %s\n", err->message);
        return 1;
    }
    unsigned qd = (unsigned)atoi(argv[3]);
    b.left = g_ascii_strtoull(argv[4], NULL, 10);
    b.next = g_ascii_strtoull(argv[5], NULL, 10);
    b.step = g_ascii_strtoull(argv[6], NULL, 10);
    b.size = (uint64_t)vd_blk_length(b.blk);
    b.buf = aligned_alloc(4096, BS);
    memset(b.buf, 0xa5, BS);
    b.iov = (struct iovec){ b.buf, BS };
    uint64_t count = b.left;
    gint64 t0 = g_get_monotonic_time();
    for (unsigned i = 0; i < qd && b.left; i++) {
        submit_one(&b);
    }
    while (b.inflight) {
        g_main_context_iteration(NULL, TRUE);
    }
    double secs = (g_get_monotonic_time() - t0) / 1e6;
    vd_blk_close(b.blk);
    free(b.buf);
    if (b.err) {
        fprintf(stderr, "qcow2-writer: a write failed: %s\n", g_strerror(-b.err));
        return 1;
    }
    printf("IOPS %.0f\n", count / secs);
    return 0;
}
