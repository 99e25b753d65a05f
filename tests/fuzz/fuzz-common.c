/* fuzz-common.c - input reader, loop helpers and failure reporting for the fuzz targets. */
#include "fuzz-common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_WAIT_US (5 * G_USEC_PER_SEC)

/* Take up to len bytes of input. */
size_t fz_bytes(FzIn *in, void *buf, size_t len)
{
    size_t n = MIN(len, in->n);
    memcpy(buf, in->p, n);
    in->p += n;
    in->n -= n;
    return n;
}

/* Take one byte (0 past the end). */
uint8_t fz_u8(FzIn *in)
{
    uint8_t v = 0;
    fz_bytes(in, &v, 1);
    return v;
}

/* Take a little-endian u16. */
uint16_t fz_u16(FzIn *in)
{
    uint8_t b[2] = { 0 };
    fz_bytes(in, b, 2);
    return b[0] | b[1] << 8;
}

/* Take a little-endian u32. */
uint32_t fz_u32(FzIn *in)
{
    uint8_t b[4] = { 0 };
    fz_bytes(in, b, 4);
    return b[0] | b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Take a little-endian u64. */
uint64_t fz_u64(FzIn *in)
{
    uint64_t lo = fz_u32(in);
    return lo | (uint64_t)fz_u32(in) << 32;
}

/* Print the violated oracle and abort: libFuzzer keeps the input. */
void fz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FUZZ ORACLE: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* Keeps a blocking iteration from sleeping longer than 20 ms. */
static gboolean tick(gpointer opaque)
{
    return G_SOURCE_CONTINUE;
}

/* Drop GLib messages: devices log guest errors, which fuzzing provokes by the million. */
static void quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer opaque)
{
}

/* Silence device logs (unless VD_FUZZ_VERBOSE) and add the loop tick, once. */
void fz_init(void)
{
    static bool done;
    if (done) {
        return;
    }
    done = true;
    if (!getenv("VD_FUZZ_VERBOSE")) {
        g_log_set_default_handler(quiet_log, NULL);
    }
    g_timeout_add(20, tick, NULL);
}

/* Dispatch what is ready, without blocking. */
void fz_pump(unsigned n)
{
    for (unsigned i = 0; i < n && g_main_context_iteration(NULL, FALSE); i++) {
    }
}

/* Iterate until done, or false after 5 s. */
bool fz_wait_for(bool (*done)(void *opaque), void *opaque)
{
    gint64 deadline = g_get_monotonic_time() + FZ_WAIT_US;
    while (!done(opaque)) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_main_context_iteration(NULL, TRUE);
    }
    return true;
}

void fz_wait(bool (*done)(void *opaque), void *opaque, const char *what)
{
    if (!fz_wait_for(done, opaque)) {
        fz_fail("%s: still waiting after 5 s", what);
    }
}

/* fz_wait condition: the backend has nothing in flight. */
static bool blk_idle(void *opaque)
{
    return vd_blk_in_flight(opaque) == 0;
}

/* Wait for the backend to go idle. */
void fz_drain_blk(VdBlockBackend *blk)
{
    fz_wait(blk_idle, blk, "backend request never completed");
}

/* The process-wide backend for opts, idle and at its power-on write cache. */
VdBlockBackend *fz_backend(const char *opts)
{
    static GHashTable *open_backends;
    if (!open_backends) {
        open_backends = g_hash_table_new(g_str_hash, g_str_equal);
    }
    VdBlockBackend *blk = g_hash_table_lookup(open_backends, opts);
    if (!blk) {
        GError *err = NULL;
        blk = vd_blk_open(opts, NULL, &err);
        if (!blk) {
            fz_fail("cannot open backend %s: %s", opts, err->message);
        }
        g_hash_table_insert(open_backends, (gpointer)opts, blk);
    }
    fz_drain_blk(blk);
    bool wce = vd_blk_default_write_cache(blk);
    if (vd_blk_write_cache(blk) != wce && vd_blk_set_write_cache_sync(blk, wce) < 0) {
        fz_fail("cannot reset the write cache of %s", opts);
    }
    return blk;
}

/* The process-wide bus, its RAM zeroed. */
VdBus *fz_bus(uint64_t ram)
{
    static VdBus *bus;
    if (!bus) {
        bus = vd_bus_new(ram, NULL, NULL);
        if (!bus) {
            fz_fail("cannot create a bus with %" G_GUINT64_FORMAT " bytes of RAM", ram);
        }
    }
    memset(vd_bus_ram(bus), 0, vd_bus_ram_size(bus));
    return bus;
}
