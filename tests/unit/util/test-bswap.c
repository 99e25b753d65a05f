/* test-bswap.c - byte-order loads and stores, at unaligned addresses (UBSan watches). */
#include "util/bswap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* The bytes 01..08 at an odd address. */
static const uint8_t seq[9] = { 0xee, 1, 2, 3, 4, 5, 6, 7, 8 };

/* Loads of each width and order read the right bytes from an odd address. */
static void test_loads(void **state)
{
    const uint8_t *p = seq + 1;
    assert_int_equal(vd_ld_le16(p), 0x0201);
    assert_int_equal(vd_ld_le32(p), 0x04030201);
    assert_true(vd_ld_le64(p) == 0x0807060504030201ull);
    assert_int_equal(vd_ld_be16(p), 0x0102);
    assert_int_equal(vd_ld_be24(p), 0x010203);
    assert_int_equal(vd_ld_be32(p), 0x01020304);
    assert_true(vd_ld_be64(p) == 0x0102030405060708ull);
    static const uint8_t high[8] = { 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8 };
    assert_int_equal(vd_ld_be24(high), 0xfffefd);          /* no sign extension */
    assert_true(vd_ld_be64(high) == 0xfffefdfcfbfaf9f8ull);
}

/* Stores write exactly their width, in their order, and nothing beside it. */
static void test_stores(void **state)
{
    uint8_t b[10];
    memset(b, 0xaa, sizeof(b));
    vd_st_le16(b + 1, 0x0102);
    assert_memory_equal(b, ((uint8_t[]){ 0xaa, 2, 1, 0xaa }), 4);
    vd_st_be16(b + 1, 0x0102);
    assert_memory_equal(b, ((uint8_t[]){ 0xaa, 1, 2, 0xaa }), 4);
    memset(b, 0xaa, sizeof(b));
    vd_st_be24(b + 1, 0xff010203);                          /* the top byte is dropped */
    assert_memory_equal(b, ((uint8_t[]){ 0xaa, 1, 2, 3, 0xaa }), 5);
    vd_st_le32(b + 1, 0x01020304);
    assert_memory_equal(b, ((uint8_t[]){ 0xaa, 4, 3, 2, 1, 0xaa }), 6);
    vd_st_be32(b + 1, 0x01020304);
    assert_memory_equal(b, ((uint8_t[]){ 0xaa, 1, 2, 3, 4, 0xaa }), 6);
    vd_st_le64(b + 1, 0x0102030405060708ull);
    assert_memory_equal(b, ((uint8_t[]){ 0xaa, 8, 7, 6, 5, 4, 3, 2, 1, 0xaa }), 10);
    vd_st_be64(b + 1, 0x0102030405060708ull);
    assert_memory_equal(b, ((uint8_t[]){ 0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 0xaa }), 10);
}

/* Width-n forms: 1..8 bytes, the rest of the value ignored, nothing written past n. */
static void test_sized(void **state)
{
    const uint8_t *p = seq + 1;
    uint64_t want = 0;
    for (unsigned n = 1; n <= 8; n++) {
        want |= (uint64_t)p[n - 1] << (8 * (n - 1));
        assert_true(vd_ld_le_n(p, n) == want);
        uint8_t b[10];
        memset(b, 0xaa, sizeof(b));
        vd_st_le_n(b + 1, 0x0807060504030201ull, n);
        assert_memory_equal(b + 1, p, n);
        assert_int_equal(b[0], 0xaa);
        assert_int_equal(b[n + 1], 0xaa);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads), cmocka_unit_test(test_stores), cmocka_unit_test(test_sized),
    };
    return cmocka_run_group_tests_name("util-bswap", tests, NULL, NULL);
}
