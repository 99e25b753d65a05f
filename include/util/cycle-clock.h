/*
 * cycle-clock.h - microseconds from the CPU's time-stamp counter, for timing
 * short intervals on the request path.
 *
 * g_get_monotonic_time() reads the vDSO clock: about 25 ns when its pages
 * are cached, and after a syscall has evicted them (every inline write is
 * one) two reads per write cost 0.1 us, 4 % of a page-cache write here.
 * rdtsc costs about 10 ns and touches nothing but two variables.  Where the
 * TSC is invariant (x86 with CPUID 0x80000007 EDX bit 8, "nonstop_tsc" in
 * /proc/cpuinfo), vd_cycle_clock_us() converts it with a factor calibrated
 * once against CLOCK_MONOTONIC; elsewhere it is g_get_monotonic_time().
 * Its epoch is close to the monotonic clock's, but only differences between
 * two of its own readings mean anything.
 *
 * Threading: any thread; the calibration runs once per process (g_once).
 */
#ifndef VD_UTIL_CYCLE_CLOCK_H
#define VD_UTIL_CYCLE_CLOCK_H

#include <glib.h>
#include <stdbool.h>

/* Monotonic microseconds, from the TSC where it is invariant (calibrating it on the first call). */
gint64 vd_cycle_clock_us(void);
/* True if vd_cycle_clock_us() reads the TSC; false if it is g_get_monotonic_time(). */
bool vd_cycle_clock_is_tsc(void);

#endif
