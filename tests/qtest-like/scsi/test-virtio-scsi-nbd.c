/*
 * test-virtio-scsi-nbd.c - the SCSI disk behind virtio-scsi (the reference
 * guest driver, through vdisk-vmm's qtest-like protocol) on an NBD export
 * without flush support: a write-through-only disk.  The caching mode page
 * says so the SPC way: WCE is 0 in the current and default values and not
 * changeable, and a MODE SELECT that sets it is refused with ILLEGAL
 * REQUEST, INVALID FIELD IN PARAMETER LIST pointing at the bit.
 * Skips (77) without nbdkit.
 */
#include "virtio-scsi-driver.h"
#include "nbd-server.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#define QSIZE 64
#define RAM_ALLOC_START 0x100000ull
#define RAM_ALLOC_END   0x4000000ull
#define F(b) (1ull << (b))

typedef struct H {
    NbdServer srv;
    VdQtest *q;
    VdGuestAlloc alloc;
    VdVscsi s;
} H;

/* Start vdisk-vmm with one SCSI drive (LUN 0) on the server's export and initialise the guest driver. */
static void h_start(H *h, const char *opts)
{
    g_autofree char *args = g_strdup_printf("--drive driver=nbd,uri=%s,if=scsi,id=drive0,%s", h->srv.uri, opts);
    h->q = vd_qtest_start(args);
    vd_guest_alloc_init(&h->alloc, RAM_ALLOC_START, RAM_ALLOC_END);
    VdVmmio dev;
    assert_true(vd_vmmio_find(h->q, 8, "drive0", &dev));
    assert_true(vd_vscsi_init(&h->s, &dev, F(VF_VERSION_1), QSIZE, &h->alloc));
    assert_true(vd_vscsi_wait_ready(&h->s, 0));
}

/* The VMM exits cleanly, the server goes. */
static void h_stop(H *h)
{
    assert_int_equal(vd_qtest_quit(h->q), 0);
    nbd_server_stop(&h->srv);
}

/* MODE SENSE(6 or 10) of the caching page with page control pc (DBD); returns byte 2 of the page. */
static uint8_t caching_byte2(H *h, bool ten, unsigned pc)
{
    uint8_t cdb[10] = { ten ? 0x5a : 0x1a, 0x08, (uint8_t)(pc << 6 | 0x08) };
    cdb[ten ? 8 : 4] = 64;
    uint8_t data[64];
    VdVscsiResult r;
    assert_int_equal(vd_vscsi_cmd(&h->s, 0, cdb, ten ? 10 : 6, NULL, 0, data, sizeof(data), &r), 0);
    size_t hdr = ten ? 8 : 4;
    assert_int_equal(data[hdr] & 0x3f, 0x08);
    assert_int_equal(data[hdr + 1], 0x12);
    return data[hdr + 2];
}

/* No flush at the server: WCE is 0 and fixed on every page control, and setting it is refused. */
static void test_write_through_only_mode_page(void **state)
{
    H h = { 0 };
    nbd_server_eval(&h.srv, false);
    h_start(&h, "cache=writeback");
    for (int ten = 0; ten <= 1; ten++) {
        assert_int_equal(caching_byte2(&h, ten, 0) & 0x04, 0);   /* current */
        assert_int_equal(caching_byte2(&h, ten, 1) & 0x04, 0);   /* changeable: no */
        assert_int_equal(caching_byte2(&h, ten, 2) & 0x04, 0);   /* default */
    }
    bool wce, dpofua;
    assert_true(vd_vscsi_read_cache_type(&h.s, 0, &wce, &dpofua));
    assert_false(wce);

    /* Linux's cache_type "write back": the list carries WCE=1 at byte 6 bit 2 -> 05/26/00 there. */
    uint8_t sent[80];
    size_t n;
    VdVscsiResult r;
    assert_int_equal(vd_vscsi_set_cache_type(&h.s, 0, true, sent, &n, &r), 2);
    assert_int_equal(r.response, VSCSI_S_OK);
    assert_int_equal(vd_vscsi_sense_key(&r), 0x5);
    assert_int_equal(vd_vscsi_asc(&r), 0x2600);
    assert_int_equal(sent[6] & 0x04, 0x04);
    assert_int_equal(r.sense[15], 0x80 | 0x08 | 2);             /* SKSV, parameter list, BPV, bit 2 */
    assert_int_equal(r.sense[16] << 8 | r.sense[17], 6);
    assert_true(vd_vscsi_read_cache_type(&h.s, 0, &wce, &dpofua));
    assert_false(wce);
    assert_int_equal(vd_qtest_blockstat(h.q, "drive0", "write_cache"), 0);

    /* Writing the current value (WCE=0) back is no change: GOOD. */
    assert_int_equal(vd_vscsi_set_cache_type(&h.s, 0, false, sent, &n, &r), 0);
    /* Every write is durable at the server, so SYNCHRONIZE CACHE sends nothing. */
    uint8_t buf[512];
    memset(buf, 0x5a, sizeof(buf));
    assert_int_equal(vd_vscsi_write10(&h.s, 0, 0, buf, 1, false), 0);
    assert_int_equal(vd_vscsi_sync_cache(&h.s, 0), 0);
    vd_qtest_drain(h.q);
    assert_int_equal(nbd_log_count(&h.srv, "Flush"), 0);
    h_stop(&h);
}

/* The control: a server with flush keeps WCE changeable, so the refusal above is the disk's, not the page's. */
static void test_flush_server_mode_page(void **state)
{
    H h = { 0 };
    nbd_server_eval(&h.srv, true);
    h_start(&h, "cache=writeback");
    assert_int_equal(caching_byte2(&h, false, 0) & 0x04, 0x04);
    assert_int_equal(caching_byte2(&h, false, 1) & 0x04, 0x04);
    uint8_t sent[80];
    size_t n;
    VdVscsiResult r;
    assert_int_equal(vd_vscsi_set_cache_type(&h.s, 0, false, sent, &n, &r), 0);
    assert_int_equal(caching_byte2(&h, false, 0) & 0x04, 0);
    h_stop(&h);
}

int main(void)
{
    nbd_server_require("nbdkit");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_through_only_mode_page),
        cmocka_unit_test(test_flush_server_mode_page),
    };
    return cmocka_run_group_tests_name("harness-virtio-scsi-nbd", tests, NULL, NULL);
}
