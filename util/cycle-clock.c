/*
 * cycle-clock.c - the TSC as a monotonic microsecond clock (see
 * include/util/cycle-clock.h).
 *
 * Calibration: two (TSC, CLOCK_MONOTONIC) pairs 2 ms apart give the ticks
 * per microsecond; a pair whose two TSC reads straddle a preemption is read
 * again.  The conversion is base_us + (tsc - base_tsc) * mult >> 32 in 128
 * bits, so it does not overflow in the process's lifetime.
 *
 * Lock rules: the calibration result is written once inside g_once and only
 * read after it.
 */
#include "util/cycle-clock.h"
#include "util/hot.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

#define CALIBRATE_US 2000           /* the calibration window */
#define PAIR_MAX_TICKS 20000        /* a (TSC, clock) pair whose TSC reads are further apart was preempted */

typedef struct CycleClock {
    bool tsc;                       /* false: g_get_monotonic_time() */
    guint64 base_tsc, mult;         /* us = base_us + ((tsc - base_tsc) * mult >> 32) */
    gint64 base_us;
} CycleClock;

static CycleClock clk;

#if defined(__x86_64__)
/* True if the CPU says its TSC runs at a constant rate in every power state. */
static bool tsc_invariant(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8));
}

/* A TSC reading and the monotonic clock read at the same moment (the middle of two TSC reads). */
static bool read_pair(guint64 *tsc, gint64 *us)
{
    for (int tries = 0; tries < 5; tries++) {
        guint64 a = __rdtsc();
        *us = g_get_monotonic_time();
        guint64 b = __rdtsc();
        if (b >= a && b - a < PAIR_MAX_TICKS) {
            *tsc = a + (b - a) / 2;
            return true;
        }
    }
    return false;
}

/* Measure the TSC against CLOCK_MONOTONIC; leaves clk.tsc false if it cannot be trusted. */
static gpointer calibrate(gpointer unused)
{
    guint64 t0, t1;
    gint64 u0, u1;
    if (!tsc_invariant() || !read_pair(&t0, &u0)) {
        return NULL;
    }
    while (g_get_monotonic_time() - u0 < CALIBRATE_US) {
        /* spin: a sleep would be as good, but the window is short */
    }
    if (!read_pair(&t1, &u1) || t1 <= t0 || u1 <= u0) {
        return NULL;
    }
    double ticks_per_us = (double)(t1 - t0) / (double)(u1 - u0);
    if (ticks_per_us < 100 || ticks_per_us > 100000) {
        return NULL;                /* not a 100 MHz to 100 GHz counter: do not trust it */
    }
    clk.mult = (guint64)((double)(1ull << 32) / ticks_per_us);
    clk.base_tsc = t1;
    clk.base_us = u1;
    clk.tsc = true;
    return NULL;
}
#else
/* No TSC here: the monotonic clock it is. */
static gpointer calibrate(gpointer unused)
{
    return NULL;
}
#endif

bool vd_cycle_clock_is_tsc(void)
{
    static GOnce once = G_ONCE_INIT;
    g_once(&once, calibrate, NULL);
    return clk.tsc;
}

VD_HOT gint64 vd_cycle_clock_us(void)
{
#if defined(__x86_64__)
    if (vd_cycle_clock_is_tsc()) {
        guint64 d = __rdtsc() - clk.base_tsc;    /* wraps to a huge value if read before base_tsc on another CPU */
        return (gint64)d < 0 ? clk.base_us : clk.base_us + (gint64)(((unsigned __int128)d * clk.mult) >> 32);
    }
#endif
    return g_get_monotonic_time();
}
