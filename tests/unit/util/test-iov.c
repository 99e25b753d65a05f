/*
 * test-iov.c - the iovec helpers: sums that overflow, offsets and lengths
 * past the end, empty pieces, advancing and slicing.
 */
#include "util/iov.h"

#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

/* Three pieces of "abcdefghij" (3 + 0 + 7 bytes), the middle one empty. */
typedef struct Pieces {
    char a[3], c[7];
    struct iovec iov[3];
} Pieces;

/* Lay "abcdefghij" over p's pieces. */
static void pieces_init(Pieces *p)
{
    memcpy(p->a, "abc", 3);
    memcpy(p->c, "defghij", 7);
    p->iov[0] = (struct iovec){ p->a, 3 };
    p->iov[1] = (struct iovec){ p->c, 0 };
    p->iov[2] = (struct iovec){ p->c, 7 };
}

/* Sums: plain, empty, and saturating at SIZE_MAX instead of wrapping. */
static void test_size(void **state)
{
    Pieces p;
    pieces_init(&p);
    assert_int_equal(vd_iov_size(p.iov, 3), 10);
    assert_int_equal(vd_iov_size(p.iov, 0), 0);
    assert_int_equal(vd_iov_size(NULL, 0), 0);
    /* Lengths only: the sum is computed, nothing is touched. */
    struct iovec huge[3] = { { NULL, SIZE_MAX - 1 }, { NULL, 1 }, { NULL, 2 } };
    assert_int_equal(vd_iov_size(huge, 2), SIZE_MAX);
    assert_int_equal(vd_iov_size(huge, 3), SIZE_MAX);   /* would wrap to 1 */
    struct iovec two_halves[2] = { { NULL, SIZE_MAX / 2 + 1 }, { NULL, SIZE_MAX / 2 + 1 } };
    assert_int_equal(vd_iov_size(two_halves, 2), SIZE_MAX);   /* would wrap to 0 */
}

/* Copies out at every offset: across the empty piece, clipped at the end. */
static void test_to_buf(void **state)
{
    Pieces p;
    pieces_init(&p);
    char out[16];
    for (size_t off = 0; off <= 10; off++) {
        memset(out, '.', sizeof(out));
        size_t n = vd_iov_to_buf(p.iov, 3, off, out, sizeof(out));
        assert_int_equal(n, 10 - off);
        assert_memory_equal(out, "abcdefghij" + off, n);
        assert_int_equal(out[n], '.');
    }
    memset(out, '.', sizeof(out));
    assert_int_equal(vd_iov_to_buf(p.iov, 3, 2, out, 3), 3);
    assert_memory_equal(out, "cde.", 4);
    assert_int_equal(vd_iov_to_buf(p.iov, 3, 11, out, 4), 0);
    assert_int_equal(vd_iov_to_buf(p.iov, 3, SIZE_MAX, out, SIZE_MAX), 0);
    assert_int_equal(vd_iov_to_buf(p.iov, 3, 0, out, 0), 0);
    assert_int_equal(vd_iov_to_buf(p.iov, 1, 0, out, 16), 3);   /* niov bounds the walk */
}

/* Copies in: only the bytes inside the array change. */
static void test_from_buf(void **state)
{
    Pieces p;
    pieces_init(&p);
    assert_int_equal(vd_iov_from_buf(p.iov, 3, 1, "XYZ", 3), 3);
    char out[10];
    vd_iov_to_buf(p.iov, 3, 0, out, 10);
    assert_memory_equal(out, "aXYZefghij", 10);
    assert_int_equal(vd_iov_from_buf(p.iov, 3, 8, "0123", 4), 2);   /* clipped */
    vd_iov_to_buf(p.iov, 3, 0, out, 10);
    assert_memory_equal(out, "aXYZefgh01", 10);
    assert_int_equal(vd_iov_from_buf(p.iov, 3, 10, "!", 1), 0);
    assert_int_equal(vd_iov_from_buf(p.iov, 3, SIZE_MAX - 1, "!", 1), 0);
}

/* Fills: a range inside, a range clipped at the end, everything. */
static void test_memset(void **state)
{
    Pieces p;
    pieces_init(&p);
    char out[10];
    assert_int_equal(vd_iov_memset(p.iov, 3, 2, '-', 3), 3);
    vd_iov_to_buf(p.iov, 3, 0, out, 10);
    assert_memory_equal(out, "ab---fghij", 10);
    assert_int_equal(vd_iov_memset(p.iov, 3, 9, 0, SIZE_MAX), 1);
    vd_iov_to_buf(p.iov, 3, 0, out, 10);
    assert_memory_equal(out, "ab---fghi\0", 10);
    assert_int_equal(vd_iov_memset(p.iov, 3, 0, 'z', SIZE_MAX), 10);
    vd_iov_to_buf(p.iov, 3, 0, out, 10);
    assert_memory_equal(out, "zzzzzzzzzz", 10);
}

/* Advancing a private copy: partial pieces, the empty one, and running out. */
static void test_advance(void **state)
{
    Pieces p;
    pieces_init(&p);
    struct iovec *iov = p.iov;
    unsigned niov = 3;
    assert_int_equal(vd_iov_advance(&iov, &niov, 0), 0);
    assert_ptr_equal(iov, &p.iov[0]);
    assert_int_equal(vd_iov_advance(&iov, &niov, 2), 2);
    assert_int_equal(niov, 3);
    assert_int_equal(iov->iov_len, 1);
    assert_int_equal(*(char *)iov->iov_base, 'c');
    /* Finishing the first piece also steps over the empty second one. */
    assert_int_equal(vd_iov_advance(&iov, &niov, 2), 2);
    assert_int_equal(niov, 1);
    assert_ptr_equal(iov, &p.iov[2]);
    assert_int_equal(*(char *)iov->iov_base, 'e');
    assert_int_equal(vd_iov_advance(&iov, &niov, 100), 6);
    assert_int_equal(niov, 0);
    assert_int_equal(vd_iov_advance(&iov, &niov, 1), 0);
}

/* Slices: a middle range, to the end, empty, and wholly past the end. */
static void test_slice(void **state)
{
    Pieces p;
    pieces_init(&p);
    struct iovec *s;
    unsigned n = vd_iov_slice(p.iov, 3, 1, 4, &s);
    assert_int_equal(n, 2);
    assert_ptr_equal(s[0].iov_base, p.a + 1);
    assert_int_equal(s[0].iov_len, 2);
    assert_ptr_equal(s[1].iov_base, p.c);
    assert_int_equal(s[1].iov_len, 2);
    g_free(s);
    n = vd_iov_slice(p.iov, 3, 3, SIZE_MAX, &s);   /* no empty piece in the result */
    assert_int_equal(n, 1);
    assert_ptr_equal(s[0].iov_base, p.c);
    assert_int_equal(s[0].iov_len, 7);
    g_free(s);
    n = vd_iov_slice(p.iov, 3, 0, 0, &s);
    assert_int_equal(n, 0);
    assert_non_null(s);
    g_free(s);
    n = vd_iov_slice(p.iov, 3, SIZE_MAX, SIZE_MAX, &s);
    assert_int_equal(n, 0);
    g_free(s);
    n = vd_iov_slice(NULL, 0, 0, 10, &s);
    assert_int_equal(n, 0);
    assert_non_null(s);
    g_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size),    cmocka_unit_test(test_to_buf),  cmocka_unit_test(test_from_buf),
        cmocka_unit_test(test_memset),  cmocka_unit_test(test_advance), cmocka_unit_test(test_slice),
    };
    return cmocka_run_group_tests_name("util-iov", tests, NULL, NULL);
}
