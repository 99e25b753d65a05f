/* test-cycle-clock.c - the TSC clock keeps time with CLOCK_MONOTONIC and never runs backwards. */
#include "util/cycle-clock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

/* Over 50 ms of sleep it advances as the monotonic clock does, within 2 % and 0.3 ms. */
static void test_keeps_time(void **state)
{
    printf("# the clock reads %s\n", vd_cycle_clock_is_tsc() ? "the TSC" : "g_get_monotonic_time()");
    for (int round = 0; round < 3; round++) {
        gint64 c0 = vd_cycle_clock_us(), m0 = g_get_monotonic_time();
        g_usleep(50000);
        gint64 c1 = vd_cycle_clock_us(), m1 = g_get_monotonic_time();
        gint64 dc = c1 - c0, dm = m1 - m0;
        printf("# round %d: %" G_GINT64_FORMAT " us against %" G_GINT64_FORMAT " us\n", round, dc, dm);
        assert_true(dm >= 50000);
        assert_true(dc >= dm - dm / 50 - 300 && dc <= dm + dm / 50 + 300);
    }
}

/* A million readings in a row never go backwards, and its epoch is near the monotonic clock's. */
static void test_monotonic(void **state)
{
    gint64 last = vd_cycle_clock_us();
    for (int i = 0; i < 1000000; i++) {
        gint64 now = vd_cycle_clock_us();
        assert_true(now >= last);
        last = now;
    }
    gint64 diff = vd_cycle_clock_us() - g_get_monotonic_time();
    assert_true(diff > -G_USEC_PER_SEC && diff < G_USEC_PER_SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeps_time),
        cmocka_unit_test(test_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
