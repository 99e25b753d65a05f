/*
 * host-checks.c - what the host checks while the guest runs.  The guest
 * prints one "guest: step NAME: ...: ok" line per step on its UART; when a
 * step line is complete, the step is over, and the host compares the
 * backend's counters (vd_blk_get_stats) with those at the previous step
 * line: the write cache state, how many writes and flushes the device
 * submitted, and which host operations made them durable.  A step passes
 * when the guest says ok and the counters agree.
 *
 * Threading: the main-loop thread; host_checks_byte is the UART's output
 * sink, called from inside the guest's THR write.
 */
#include "tiny-vmm.h"

#include <stdio.h>
#include <string.h>

/* Host operations that made data durable. */
static uint64_t durable_ops(const VdBlockStats *s)
{
    return s->host_fdatasync + s->host_dsync_writes + s->host_rwf_dsync_writes;
}

/* Print one host check and return its verdict. */
static bool report(bool ok, const char *what, const VdBlockStats *b, const VdBlockStats *a)
{
    printf("host: %s (host writes +%" G_GUINT64_FORMAT ", pwritev2(RWF_DSYNC) +%" G_GUINT64_FORMAT
           ", O_DSYNC writes +%" G_GUINT64_FORMAT ", fdatasync +%" G_GUINT64_FORMAT "): %s\n",
           what, a->host_writes - b->host_writes, a->host_rwf_dsync_writes - b->host_rwf_dsync_writes,
           a->host_dsync_writes - b->host_dsync_writes, a->host_fdatasync - b->host_fdatasync,
           ok ? "ok" : "FAILED");
    return ok;
}

/* After SET FEATURES 82h: the backend's write cache is off. */
static bool check_cache_off(VdBlockBackend *blk, const VdBlockStats *b, const VdBlockStats *a)
{
    return report(!vd_blk_write_cache(blk) && a->wce_toggles > b->wce_toggles,
                  "ide backend write cache is off", b, a);
}

/* After SET FEATURES 02h / virtio init: the backend's write cache is on. */
static bool check_cache_on(VdBlockBackend *blk, const VdBlockStats *b, const VdBlockStats *a)
{
    return report(vd_blk_write_cache(blk), "backend write cache is on", b, a);
}

/* A write made while the write cache was off reached the host as a durable write. */
static bool check_durable_write(VdBlockBackend *blk, const VdBlockStats *b, const VdBlockStats *a)
{
    return report(a->writes == b->writes + 1 && durable_ops(a) > durable_ops(b),
                  "write with the write cache off was durable on the host", b, a);
}

/* A write made with the write cache on reached the host, and nothing made it durable yet. */
static bool check_cached_write(VdBlockBackend *blk, const VdBlockStats *b, const VdBlockStats *a)
{
    return report(a->writes == b->writes + 1 && a->host_writes > b->host_writes && durable_ops(a) == durable_ops(b),
                  "write with the write cache on was a plain host write, not yet durable", b, a);
}

/* The guest's FLUSH reached fdatasync. */
static bool check_flush(VdBlockBackend *blk, const VdBlockStats *b, const VdBlockStats *a)
{
    return report(a->flushes == b->flushes + 1 && a->host_fdatasync == b->host_fdatasync + 1,
                  "FLUSH reached fdatasync", b, a);
}

/* One guest step (by the NAME of its line) and the host check of it, on one backend. */
typedef struct StepCheck {
    const char *name;
    bool ide;                   /* which backend: IDE's or virtio-blk's */
    bool (*check)(VdBlockBackend *blk, const VdBlockStats *before, const VdBlockStats *after);
} StepCheck;

/* In the order the guest runs them (guest-main.c). */
static const StepCheck step_checks[] = {
    { "ide-cache-off", true, check_cache_off },
    { "ide-write-dma", true, check_durable_write },
    { "ide-cache-on", true, check_cache_on },
    { "virtio-init", false, check_cache_on },
    { "virtio-write", false, check_cached_write },
    { "virtio-flush", false, check_flush },
};

#define STEP_PREFIX "guest: step "

/* Snapshot both backends' counters: the "before" of the next step. */
static void snapshot(TinyVmm *v)
{
    vd_blk_get_stats(v->ide_blk, &v->checks.ide_before);
    vd_blk_get_stats(v->virtio_blk, &v->checks.virtio_before);
}

/* Start: nothing seen, counters as they are now. */
void host_checks_init(TinyVmm *v)
{
    v->checks = (HostChecks){ .line = g_string_new(NULL) };
    snapshot(v);
}

/* A step line: it must be the next step; the guest's verdict and the host check must both say ok. */
static void step_line(TinyVmm *v, const char *line)
{
    HostChecks *c = &v->checks;
    const char *name = line + strlen(STEP_PREFIX);
    const StepCheck *s = c->next < G_N_ELEMENTS(step_checks) ? &step_checks[c->next] : NULL;
    size_t n = s ? strlen(s->name) : 0;
    if (!s || strncmp(name, s->name, n) != 0 || name[n] != ':') {
        printf("host: step line out of order (expected %s): FAILED\n", s ? s->name : "no more steps");
        c->bad = true;
        return;
    }
    c->next++;
    VdBlockStats after;
    VdBlockBackend *blk = s->ide ? v->ide_blk : v->virtio_blk;
    vd_blk_get_stats(blk, &after);
    bool host_ok = s->check(blk, s->ide ? &c->ide_before : &c->virtio_before, &after);
    bool guest_ok = g_str_has_suffix(line, ": ok");
    c->agreed += host_ok && guest_ok;
    c->bad |= !host_ok || !guest_ok;
    snapshot(v);
}

/* One complete UART line: echo it, and check it if it ends a step. */
static void guest_line(TinyVmm *v, const char *line)
{
    printf("%s\n", line);
    if (g_str_has_prefix(line, STEP_PREFIX)) {
        step_line(v, line);
    } else if (g_str_has_prefix(line, "guest: done:")) {
        v->checks.done = true;
    }
}

/* The UART's output sink: collect bytes into lines. */
void host_checks_byte(void *opaque, uint8_t byte)
{
    TinyVmm *v = opaque;
    if (byte == '\n') {
        guest_line(v, v->checks.line->str);
        g_string_truncate(v->checks.line, 0);
    } else if (byte != '\r') {
        g_string_append_c(v->checks.line, (char)byte);
    }
}

/* Every step line came, in order, the guest said ok and the counters agreed, and the guest finished. */
bool host_checks_passed(TinyVmm *v)
{
    const HostChecks *c = &v->checks;
    bool ok = c->done && !c->bad && c->agreed == G_N_ELEMENTS(step_checks);
    printf("host: %u of %u guest steps ok and confirmed by the block counters%s: %s\n", c->agreed,
           (unsigned)G_N_ELEMENTS(step_checks), c->done ? "" : " (the guest never said done)", ok ? "ok" : "FAILED");
    return ok;
}

/* Free the line buffer. */
void host_checks_free(TinyVmm *v)
{
    if (v->checks.line) {
        g_string_free(v->checks.line, TRUE);
        v->checks.line = NULL;
    }
}
