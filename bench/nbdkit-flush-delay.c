/*
 * nbdkit-flush-delay.c - an nbdkit filter that makes an export flush-bound in
 * a known, repeatable way (bench/nbd-bench.sh EXPORT=delay): every flush, and
 * every write, write-zeroes or trim that carries FUA, sleeps flush-delay=MS
 * milliseconds (default 2) before it completes.  A FUA request is the request
 * without FUA, then a flush of the plugin below (if it can flush), then the
 * delay: what a device with a volatile write cache does for a forced unit
 * access.  FUA is advertised as native, so every client may send it.
 *
 * Reads and plain writes are passed through undelayed.  The filter keeps no
 * per-connection state and allows any thread model: put nbdkit's noparallel
 * filter in front of it for a device that runs one request (so one flush) at
 * a time.  flush-delay-counts=FILE writes "flushes=N fua=N" (delays paid for
 * flush requests and for FUA requests) to FILE when nbdkit exits.
 *
 *   nbdkit --filter=BUILD/bench/nbdkit-flush-delay-filter.so memory 256M flush-delay=2
 *
 * Threads: the counters are atomics; everything else is set before serving.
 */
#define NBDKIT_API_VERSION 2
#include <nbdkit-filter.h>

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

static unsigned flush_delay_ms = 2;
static const char *counts_file;         /* flush-delay-counts=FILE, or NULL */
static unsigned long n_flushes, n_fua;  /* delays paid: flush requests, FUA requests (atomic) */

/* Parse flush-delay=MS and flush-delay-counts=FILE; pass every other key to the plugin. */
static int flush_delay_config(nbdkit_next_config *next, nbdkit_backend *nxdata, const char *key,
                              const char *value)
{
    if (strcmp(key, "flush-delay") == 0) {
        return nbdkit_parse_unsigned("flush-delay", value, &flush_delay_ms);
    }
    if (strcmp(key, "flush-delay-counts") == 0) {
        counts_file = value;
        return 0;
    }
    return next(nxdata, key, value);
}

/* nbdkit exits: write the counts to flush-delay-counts=FILE, if given. */
static void flush_delay_unload(void)
{
    FILE *f = counts_file ? fopen(counts_file, "w") : NULL;
    if (f) {
        fprintf(f, "flushes=%lu fua=%lu\n", __atomic_load_n(&n_flushes, __ATOMIC_RELAXED),
                __atomic_load_n(&n_fua, __ATOMIC_RELAXED));
        fclose(f);
    }
}

/* Wait one flush's delay: 0 or -1 with *err set if nbdkit is shutting down. */
static int flush_delay_wait(int *err)
{
    if (nbdkit_nanosleep(flush_delay_ms / 1000, (flush_delay_ms % 1000) * 1000000u) < 0) {
        *err = errno ? errno : ESHUTDOWN;
        return -1;
    }
    return 0;
}

/* Flush the plugin below (if it can) and wait the delay: the tail of a flush or a FUA request. */
static int flush_delay_sync(nbdkit_next *next, unsigned long *counter, int *err)
{
    __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
    int can = next->can_flush(next);
    if (can < 0 || (can > 0 && next->flush(next, 0, err) < 0)) {
        if (can < 0) {
            *err = EIO;
        }
        return -1;
    }
    return flush_delay_wait(err);
}

/* Flushes always work (and always cost the delay), whatever the plugin below says. */
static int flush_delay_can_flush(nbdkit_next *next, void *handle)
{
    return 1;
}

/* FUA is native here: the filter does it itself (request, then flush_delay_sync). */
static int flush_delay_can_fua(nbdkit_next *next, void *handle)
{
    return NBDKIT_FUA_NATIVE;
}

/* A write: plain below, then the flush delay if it carried FUA. */
static int flush_delay_pwrite(nbdkit_next *next, void *handle, const void *buf, uint32_t count,
                              uint64_t offset, uint32_t flags, int *err)
{
    if (next->pwrite(next, buf, count, offset, flags & ~NBDKIT_FLAG_FUA, err) < 0) {
        return -1;
    }
    return (flags & NBDKIT_FLAG_FUA) ? flush_delay_sync(next, &n_fua, err) : 0;
}

/* A write-zeroes: plain below, then the flush delay if it carried FUA. */
static int flush_delay_zero(nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
                            uint32_t flags, int *err)
{
    if (next->zero(next, count, offset, flags & ~NBDKIT_FLAG_FUA, err) < 0) {
        return -1;
    }
    return (flags & NBDKIT_FLAG_FUA) ? flush_delay_sync(next, &n_fua, err) : 0;
}

/* A trim: plain below, then the flush delay if it carried FUA. */
static int flush_delay_trim(nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
                            uint32_t flags, int *err)
{
    if (next->trim(next, count, offset, flags & ~NBDKIT_FLAG_FUA, err) < 0) {
        return -1;
    }
    return (flags & NBDKIT_FLAG_FUA) ? flush_delay_sync(next, &n_fua, err) : 0;
}

/* A flush: the plugin's (if any), then the delay. */
static int flush_delay_flush(nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
    return flush_delay_sync(next, &n_flushes, err);
}

static struct nbdkit_filter filter = {
    .name = "flush-delay",
    .longname = "vdisk flush delay filter",
    .unload = flush_delay_unload,
    .config = flush_delay_config,
    .config_help = "flush-delay=MS  milliseconds every flush and FUA request waits (default 2)\n"
                   "flush-delay-counts=FILE  write the flushes and FUA requests delayed to FILE at exit",
    .can_flush = flush_delay_can_flush,
    .can_fua = flush_delay_can_fua,
    .pwrite = flush_delay_pwrite,
    .zero = flush_delay_zero,
    .trim = flush_delay_trim,
    .flush = flush_delay_flush,
};

NBDKIT_REGISTER_FILTER(filter)
