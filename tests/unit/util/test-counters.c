/* test-counters.c - table-driven "name=value" rendering and its separators. */
#include "util/counters.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

typedef struct Demo {
    uint64_t reads, writes;
    uint64_t refused_connections;
} Demo;

static const VdCounter demo_rows[] = {
    VD_COUNTER(Demo, reads), VD_COUNTER(Demo, writes), VD_COUNTER_AS(Demo, refused_connections, "refused"),
};

/* Every row, in table order, under its printed name, with full 64-bit values. */
static void test_format(void **state)
{
    Demo d = { .reads = 1, .writes = UINT64_MAX, .refused_connections = 0 };
    g_autoptr(GString) s = g_string_new(NULL);
    vd_counters_format(s, demo_rows, G_N_ELEMENTS(demo_rows), &d);
    assert_string_equal(s->str, "reads=1 writes=18446744073709551615 refused=0");
    assert_ptr_equal(vd_counter_ptr(&demo_rows[2], &d), &d.refused_connections);
}

/* One space between pairs; none at the start of the string or of a line, none doubled. */
static void test_separators(void **state)
{
    Demo d = { 1, 2, 3 };
    g_autoptr(GString) s = g_string_new("device ");
    vd_counters_format(s, demo_rows, 1, &d);
    vd_counters_append(s, "luns", 4);
    g_string_append_c(s, '\n');
    vd_counters_format(s, demo_rows, 2, &d);
    g_string_append(s, "\nOK");
    vd_counters_append(s, "x", 0);
    assert_string_equal(s->str, "device reads=1 luns=4\nreads=1 writes=2\nOK x=0");
    g_string_truncate(s, 0);
    vd_counters_format(s, demo_rows, 0, &d);
    assert_string_equal(s->str, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_format), cmocka_unit_test(test_separators) };
    return cmocka_run_group_tests_name("util-counters", tests, NULL, NULL);
}
