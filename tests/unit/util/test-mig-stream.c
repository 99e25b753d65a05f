/* test-mig-stream.c - the migration stream container: round trip, and every malformed input named. */
#include "util/mig-stream.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

/* A two-section stream: "a" v1 {u8 1, u16 2, u32 3, u64 4, bytes "xy"} and "b" v7 {bool 1}. */
static GBytes *sample(void)
{
    VdMigWriter *w = vd_mig_writer_new();
    vd_mig_section_begin(w, "a", 1);
    vd_mig_put_u8(w, 1);
    vd_mig_put_u16(w, 2);
    vd_mig_put_u32(w, 3);
    vd_mig_put_u64(w, 4);
    vd_mig_put_bytes(w, "xy", 2);
    vd_mig_section_end(w);
    vd_mig_section_begin(w, "b", 7);
    vd_mig_put_u8(w, 1);
    vd_mig_section_end(w);
    return vd_mig_writer_finish(w);
}

/* Parse a copy of bytes; returns the error message (or NULL and the sections in *out). */
static char *parse_error(const uint8_t *data, size_t len)
{
    g_autoptr(GError) err = NULL;
    GPtrArray *secs = vd_mig_stream_parse(data, len, &err);
    if (secs) {
        g_ptr_array_free(secs, TRUE);
        return NULL;
    }
    return g_strdup(err->message);
}

/* What is written reads back, field by field, and the section ends where its fields end. */
static void test_round_trip(void **state)
{
    g_autoptr(GBytes) b = sample();
    gsize len;
    const uint8_t *data = g_bytes_get_data(b, &len);
    assert_memory_equal(data, VD_MIG_MAGIC, VD_MIG_MAGIC_LEN);
    g_autoptr(GError) err = NULL;
    GPtrArray *secs = vd_mig_stream_parse(data, len, &err);
    assert_non_null(secs);
    assert_int_equal(secs->len, 2);
    VdMigSection *a = secs->pdata[0], *s2 = secs->pdata[1];
    assert_string_equal(a->id, "a");
    assert_int_equal(a->version, 1);
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    char xy[2];
    bool flag;
    assert_true(vd_mig_get_u8(a, "u8", &u8, &err) && u8 == 1);
    assert_true(vd_mig_get_u16(a, "u16", &u16, &err) && u16 == 2);
    assert_true(vd_mig_get_u32(a, "u32", &u32, &err) && u32 == 3);
    assert_true(vd_mig_get_u64(a, "u64", &u64, &err) && u64 == 4);
    assert_true(vd_mig_get_bytes(a, "xy", xy, 2, &err));
    assert_memory_equal(xy, "xy", 2);
    assert_true(vd_mig_section_done(a, &err));
    assert_false(vd_mig_get_u8(a, "past the end", &u8, &err));
    assert_non_null(strstr(err->message, "section 'a' (version 1): past the end: the section ends first"));
    g_clear_error(&err);
    assert_string_equal(s2->id, "b");
    assert_int_equal(s2->version, 7);
    assert_true(vd_mig_get_bool(s2, "flag", &flag, &err) && flag);
    g_ptr_array_free(secs, TRUE);
}

/* Every malformed container is refused with a line naming what was wrong. */
static void test_bad_streams(void **state)
{
    g_autoptr(GBytes) b = sample();
    gsize len;
    const uint8_t *orig = g_bytes_get_data(b, &len);
    g_autofree uint8_t *d = g_memdup2(orig, len);
    g_autofree char *e = NULL;

    /* every truncation fails */
    for (size_t cut = 0; cut < len; cut++) {
        g_autofree char *msg = parse_error(d, cut);
        assert_non_null(msg);
        assert_non_null(strstr(msg, "migration stream: "));
    }
    e = parse_error(d, 35);   /* header (12) + section "a" header (19) + 4 payload bytes */
    assert_non_null(strstr(e, "section 'a' is truncated"));
    g_clear_pointer(&e, g_free);

    /* wrong magic, wrong version */
    d[0] = 'X';
    e = parse_error(d, len);
    assert_non_null(strstr(e, "not a vdisk migration stream"));
    g_clear_pointer(&e, g_free);
    d[0] = orig[0];
    d[VD_MIG_MAGIC_LEN] = 2;
    e = parse_error(d, len);
    assert_non_null(strstr(e, "stream version 2 is not supported (this vdisk reads version 1)"));
    g_clear_pointer(&e, g_free);
    d[VD_MIG_MAGIC_LEN] = orig[VD_MIG_MAGIC_LEN];

    /* one flipped payload bit: the CRC names the section */
    d[len - 4] ^= 0x10;
    e = parse_error(d, len);
    assert_non_null(strstr(e, "section 'b' is corrupt: its CRC-32 does not match"));
    g_clear_pointer(&e, g_free);
    d[len - 4] = orig[len - 4];

    /* bytes after the end marker */
    g_autofree uint8_t *longer = g_malloc0(len + 3);
    memcpy(longer, orig, len);
    e = parse_error(longer, len + 3);
    assert_non_null(strstr(e, "3 bytes after the end marker"));
    g_clear_pointer(&e, g_free);

    assert_null(parse_error(d, len));
}

/* A boolean field holding 2, and left-over bytes, are errors naming the field and the section. */
static void test_bad_fields(void **state)
{
    VdMigWriter *w = vd_mig_writer_new();
    vd_mig_section_begin(w, "dev/x", 3);
    vd_mig_put_u8(w, 2);
    vd_mig_put_u8(w, 0);
    vd_mig_section_end(w);
    g_autoptr(GBytes) b = vd_mig_writer_finish(w);
    gsize len;
    const uint8_t *data = g_bytes_get_data(b, &len);
    g_autoptr(GError) err = NULL;
    GPtrArray *secs = vd_mig_stream_parse(data, len, &err);
    assert_non_null(secs);
    VdMigSection *s = secs->pdata[0];
    bool v;
    assert_false(vd_mig_get_bool(s, "ready", &v, &err));
    assert_string_equal(err->message, "migration stream: section 'dev/x' (version 3): ready: 2 is not a boolean (0 or 1)");
    g_clear_error(&err);
    assert_false(vd_mig_section_done(s, &err));
    assert_non_null(strstr(err->message, "1 bytes left over"));
    g_ptr_array_free(secs, TRUE);
}

/* The CRC is zlib's: the standard check value of "123456789". */
static void test_crc(void **state)
{
    assert_int_equal(vd_crc32("123456789", 9), 0xcbf43926u);
    assert_int_equal(vd_crc32("", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_streams),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_crc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
