/*
 * loop-syscalls.c - a queue-depth-1 chain of requests through the io_uring
 * engine, for loop-syscalls-check.sh to count the owner loop's syscalls
 * under strace.  The measured phase sits between two getppid() calls, which
 * nothing else in the process makes.
 *
 *   loop-syscalls IMAGE cached-read    page-cache reads, inline=off: they complete at submit
 *   loop-syscalls IMAGE direct-write   O_DIRECT writes: each completes later, from the disk
 *
 * Exit status 77 (skip) when the ring cannot be set up, or O_DIRECT is not
 * supported where IMAGE lives.
 */
#include "block-test-util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHAIN 1000

static uint8_t buf[4096] __attribute__((aligned(4096)));

typedef struct Chain {
    VdBlockBackend *blk;
    struct iovec iov;
    bool read;
    unsigned submitted, completed;
    int ret;
} Chain;

static void chain_next(Chain *c);

/* Completion: note the result and send the next request (queue depth 1). */
static void chain_done(void *opaque, int ret)
{
    Chain *c = opaque;
    c->completed++;
    c->ret = c->ret ? c->ret : ret;
    if (c->submitted < CHAIN) {
        chain_next(c);
    }
}

/* Submit the chain's next 4 KiB request, within the first 64 KiB. */
static void chain_next(Chain *c)
{
    uint64_t off = (uint64_t)(c->submitted++ % 16) * 4096;
    if (c->read) {
        vd_blk_preadv(c->blk, off, &c->iov, 1, chain_done, c);
    } else {
        vd_blk_pwritev(c->blk, off, &c->iov, 1, 0, chain_done, c);
    }
}

int main(int argc, char **argv)
{
    static const struct { const char *name; const char *opts; bool read; } modes[] = {
        { "cached-read", "cache=writeback,aio=io_uring,inline=off", true },
        { "direct-write", "cache=none,aio=io_uring", false },
    };
    size_t m = 0;
    while (argc == 3 && m < G_N_ELEMENTS(modes) && strcmp(argv[2], modes[m].name) != 0) {
        m++;
    }
    if (argc != 3 || m == G_N_ELEMENTS(modes)) {
        fprintf(stderr, "usage: %s IMAGE cached-read|direct-write\n", argv[0]);
        return 2;
    }
    GError *err = NULL;
    g_autofree char *opts = g_strdup_printf("file=%s,%s", argv[1], modes[m].opts);
    VdBlockBackend *blk = vd_blk_open(opts, NULL, &err);
    if (!blk) {
        printf("SKIP: %s\n", err->message);
        return 77;
    }
    memset(buf, 0x6b, sizeof(buf));
    for (int i = 0; i < 16; i++) {     /* allocated, and in the page cache for the reads */
        if (vd_blk_pwrite_sync(blk, i * 4096, buf, sizeof(buf), 0) < 0) {
            fprintf(stderr, "loop-syscalls: the set-up write failed\n");
            return 1;
        }
    }
    VdBlockStats s;
    vd_blk_get_stats(blk, &s);
    if (s.uring_submits == 0) {
        printf("SKIP: io_uring is not available here (the backend fell back to the thread pool)\n");
        vd_blk_close(blk);
        return 77;
    }
    if (modes[m].read) {   /* io_uring reads at submit only where the file answers RWF_NOWAIT (not tmpfs) */
        printf("reads-at-submit=%d\n", path_answers_nowait(argv[1]));
    }
    Chain c = { .blk = blk, .iov = { buf, sizeof(buf) }, .read = modes[m].read };
    getppid();                          /* start marker */
    chain_next(&c);
    vd_blk_drain(blk);
    getppid();                          /* end marker */
    vd_blk_close(blk);
    if (c.completed != CHAIN || c.ret < 0) {
        fprintf(stderr, "loop-syscalls: %u of %u requests completed, status %d\n", c.completed, CHAIN, c.ret);
        return 1;
    }
    printf("requests=%u\n", CHAIN);
    return 0;
}
