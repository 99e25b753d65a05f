/*
 * test-options.c - option-string splitting (',,' escapes, empty items and
 * keys, trailing commas) and the size and number parsers (suffixes, signs,
 * spaces, overflow), with the error line each bad input gets.
 */
#include "util/options.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

/* "k=v|k=v|..." rendering of a split, or the error message. */
static char *split_str(const char *in)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) opts = vd_opts_split(in, &err);
    if (!opts) {
        assert_non_null(err);
        return g_strdup_printf("ERROR %s", err->message);
    }
    assert_null(err);
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < opts->len; i++) {
        const VdOpt *o = g_ptr_array_index(opts, i);
        g_string_append_printf(s, "%s%s=%s", i ? "|" : "", o->key, o->value);
    }
    return g_string_free(s, FALSE);
}

/* Well-formed strings and what they split into. */
static void test_split(void **state)
{
    static const struct { const char *in, *out; } cases[] = {
        { "", "" },
        { "a=1", "a=1" },
        { "a=1,b=2", "a=1|b=2" },
        { "file=a,,b.img,cache=none", "file=a,b.img|cache=none" },
        { "a=,b=", "a=|b=" },                    /* empty values are the caller's to judge */
        { "a=b=c", "a=b=c" },                    /* the first '=' ends the key */
        { "a=x,,", "a=x," },                     /* an escape at the very end */
        { "a=,,,,", "a=,," },
        { "a=x,,,b=y", "a=x,|b=y" },             /* escape, then separator */
        { "k,,ey=v", "k,ey=v" },                 /* escapes work in keys too */
        { "a=1,a=2", "a=1|a=2" },                /* duplicates pass: callers decide */
        { ",,=x", ",=x" },                       /* a leading escape is part of the key */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *got = split_str(cases[i].in);
        if (strcmp(got, cases[i].out) != 0) {
            fail_msg("split '%s': expected '%s', got '%s'", cases[i].in, cases[i].out, got);
        }
    }
}

/* Malformed strings: one error line naming the string or the item. */
static void test_split_errors(void **state)
{
    static const struct { const char *in, *msg; } cases[] = {
        { ",", "empty option in ','" },
        { "a=1,", "empty option in 'a=1,'" },                /* trailing comma */
        { ",a=1", "empty option in ',a=1'" },                /* leading comma */
        { "a=x,,,", "empty option in 'a=x,,,'" },            /* escape, then a trailing comma */
        { "a", "option 'a' is not of the form key=value" },
        { "a=1,b", "option 'b' is not of the form key=value" },
        { "=x", "option '=x' is not of the form key=value (the key is empty)" },
        { "a=1,=", "option '=' is not of the form key=value (the key is empty)" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *got = split_str(cases[i].in);
        g_autofree char *want = g_strdup_printf("ERROR %s", cases[i].msg);
        if (!g_str_has_prefix(got, want)) {
            fail_msg("split '%s': expected '%s', got '%s'", cases[i].in, want, got);
        }
    }
}

/* Appending escapes commas so a split gives the value back unchanged. */
static void test_append_round_trip(void **state)
{
    static const char *const values[] = { "", "plain", ",", ",,", "a,b", "a,,b,", "=,=" };
    g_autoptr(GString) s = g_string_new(NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(values); i++) {
        vd_opts_append(s, "k", values[i]);
    }
    assert_string_equal(s->str, "k=,k=plain,k=,,,k=,,,,,k=a,,b,k=a,,,,b,,,k==,,=");
    g_autoptr(GPtrArray) opts = vd_opts_split(s->str, NULL);
    assert_non_null(opts);
    assert_int_equal(opts->len, G_N_ELEMENTS(values));
    for (size_t i = 0; i < G_N_ELEMENTS(values); i++) {
        const VdOpt *o = g_ptr_array_index(opts, i);
        assert_string_equal(o->key, "k");
        assert_string_equal(o->value, values[i]);
    }
}

/* Sizes: suffixes in either case, the default unit, the limits. */
static void test_size(void **state)
{
    static const struct { const char *str; unsigned shift; uint64_t bytes; } good[] = {
        { "256M", 0, 256ull << 20 }, { "1G", 0, 1ull << 30 }, { "4k", 0, 4096 }, { "512", 0, 512 },
        { "256", 20, 256ull << 20 }, { "7b", 20, 7 }, { "2T", 0, 2ull << 40 }, { "0", 20, 0 },
        { "18446744073709551615", 0, UINT64_MAX }, { "16777215T", 0, 16777215ull << 40 },
        { "0000000000000000000000001k", 0, 1024 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        uint64_t v = 1;
        if (!vd_parse_size("size", good[i].str, good[i].shift, &v, NULL) || v != good[i].bytes) {
            fail_msg("size '%s' (shift %u): expected %" G_GUINT64_FORMAT, good[i].str, good[i].shift, good[i].bytes);
        }
    }
}

/* Bad sizes: nothing is stored, and the error names the key and the value. */
static void test_size_errors(void **state)
{
    static const struct { const char *str; unsigned shift; const char *msg; } bad[] = {
        { "", 0, "size=: not a size" }, { "M", 0, "size=M: not a size" }, { "0x10", 0, "size=0x10: not a size" },
        { "-1", 0, "size=-1: not a size" }, { "+1", 0, "size=+1: not a size" },
        { "1.5G", 0, "size=1.5G: not a size" }, { "12Q", 0, "size=12Q: not a size" },
        { "1MB", 0, "size=1MB: not a size" }, { " 1M", 0, "size= 1M: not a size" },
        { "1M ", 0, "size=1M : not a size" }, { "1 M", 0, "size=1 M: not a size" },
        { "18446744073709551616", 0, "size=18446744073709551616: too large" },
        { "99999999999999999999999", 0, "size=99999999999999999999999: too large" },
        { "16777216T", 0, "size=16777216T: too large" },
        { "17592186044416", 20, "size=17592186044416: too large" },    /* 2^44 MiB = 2^64 bytes */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        uint64_t v = 42;
        if (vd_parse_size("size", bad[i].str, bad[i].shift, &v, &err) || !g_str_has_prefix(err->message, bad[i].msg)) {
            fail_msg("size '%s': expected '%s', got '%s'", bad[i].str, bad[i].msg, err ? err->message : "(success)");
        }
        assert_int_equal(v, 42);
    }
}

/* Numbers in a range: bounds in, one past out, no sign or space. */
static void test_uint(void **state)
{
    unsigned v = 0;
    assert_true(vd_parse_uint("n", "1", 1, 64, &v, NULL));
    assert_int_equal(v, 1);
    assert_true(vd_parse_uint("n", "64", 1, 64, &v, NULL));
    assert_int_equal(v, 64);
    assert_true(vd_parse_uint("n", "4294967295", 0, UINT32_MAX, &v, NULL));
    assert_int_equal(v, UINT32_MAX);
    static const char *const bad[] = { "0", "65", "", "+5", "-1", " 5", "5 ", "5x", "0x5", "99999999999999999999" };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        v = 42;
        assert_false(vd_parse_uint("num-queues", bad[i], 1, 64, &v, &err));
        g_autofree char *want = g_strdup_printf("num-queues=%s: expected a number from 1 to 64", bad[i]);
        assert_string_equal(err->message, want);
        assert_int_equal(v, 42);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),       cmocka_unit_test(test_split_errors),
        cmocka_unit_test(test_append_round_trip),
        cmocka_unit_test(test_size),        cmocka_unit_test(test_size_errors),
        cmocka_unit_test(test_uint),
    };
    return cmocka_run_group_tests_name("util-options", tests, NULL, NULL);
}
