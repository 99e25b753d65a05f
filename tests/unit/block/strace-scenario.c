/*
 * strace-scenario.c - a fixed sequence of guest-level operations on IMAGE,
 * printing the backend's host counters so that strace-check.sh can compare
 * them with the syscalls strace saw.  aio=threads: with io_uring, strace would
 * see io_uring_enter instead of one syscall per host operation.
 */
#include "block/block-backend.h"

#include <stdio.h>
#include <stdlib.h>

static uint8_t buf[4096];

/* Exit with a message if a step fails. */
static void check(int ret, const char *what)
{
    if (ret < 0) {
        fprintf(stderr, "%s: %s\n", what, g_strerror(-ret));
        exit(1);
    }
}

/* Add one backend's host counters to the totals. */
static void add(VdBlockBackend *blk, VdBlockStats *sum)
{
    VdBlockStats s;
    vd_blk_get_stats(blk, &s);
    sum->host_writes += s.host_writes;
    sum->host_fdatasync += s.host_fdatasync;
    sum->host_rwf_dsync_writes += s.host_rwf_dsync_writes;
    sum->host_dsync_writes += s.host_dsync_writes;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
        return 2;
    }
    VdBlockStats sum = { 0 };
    GError *err = NULL;
    g_autofree char *wb = g_strdup_printf("file=%s,cache=writeback,aio=threads", argv[1]);
    VdBlockBackend *blk = vd_blk_open(wb, NULL, &err);
    if (!blk) {
        fprintf(stderr, "%s\n", err->message);
        return 1;
    }
    /* Cached writes, a flush, a skipped flush, a FUA write, then WCE off (flush) and a durable write. */
    for (int i = 0; i < 3; i++) {
        check(vd_blk_pwrite_sync(blk, i * 4096, buf, 4096, 0), "write");
    }
    check(vd_blk_flush_sync(blk), "flush");
    check(vd_blk_flush_sync(blk), "flush");
    check(vd_blk_pwrite_sync(blk, 0, buf, 4096, VD_REQ_FUA), "fua write");
    check(vd_blk_pwrite_sync(blk, 8192, buf, 4096, 0), "write");
    check(vd_blk_set_write_cache_sync(blk, false), "wce off");
    check(vd_blk_pwrite_sync(blk, 4096, buf, 4096, 0), "wt write");
    add(blk, &sum);
    vd_blk_close(blk);

    g_autofree char *ds = g_strdup_printf("file=%s,cache=writethrough,wt-policy=dsync,aio=threads", argv[1]);
    blk = vd_blk_open(ds, NULL, &err);
    if (!blk) {
        fprintf(stderr, "%s\n", err->message);
        return 1;
    }
    check(vd_blk_pwrite_sync(blk, 0, buf, 4096, 0), "dsync write");
    check(vd_blk_pwrite_sync(blk, 4096, buf, 4096, 0), "dsync write");
    check(vd_blk_flush_sync(blk), "flush");
    add(blk, &sum);
    vd_blk_close(blk);
    printf("host_writes=%" G_GUINT64_FORMAT " host_fdatasync=%" G_GUINT64_FORMAT
           " host_rwf_dsync_writes=%" G_GUINT64_FORMAT " host_dsync_writes=%" G_GUINT64_FORMAT "\n",
           sum.host_writes, sum.host_fdatasync, sum.host_rwf_dsync_writes, sum.host_dsync_writes);
    return 0;
}
