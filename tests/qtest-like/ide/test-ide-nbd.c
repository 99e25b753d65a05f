/*
 * test-ide-nbd.c - the ATA disk (the reference guest driver, through
 * vdisk-vmm's qtest-like protocol) on an NBD export without flush support:
 * a write-through-only disk.  IDENTIFY says so the ACS way: word 82 bit 5
 * (volatile write cache supported) and word 85 bit 5 (enabled) are clear,
 * and SET FEATURES 02h/82h, subcommands of a feature set the disk does not
 * have, end with ABRT.  Skips (77) without nbdkit.
 */
#include "ata-guest.h"
#include "nbd-server.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

typedef struct H {
    NbdServer srv;
    VdQtest *q;
    AtaChannel ch[2];
    AtaDisk d;
} H;

/* Start vdisk-vmm with one IDE drive (primary master) on the server's export and probe it. */
static void h_start(H *h)
{
    g_autofree char *args = g_strdup_printf("--drive driver=nbd,uri=%s,if=ide,index=0,id=drive0,cache=writeback",
                                            h->srv.uri);
    h->q = vd_qtest_start(args);
    assert_int_equal(ata_discover(h->q, h->ch), 1);
    assert_true(ata_probe(&h->d, h->q, &h->ch[0], 0));
}

/* The VMM exits cleanly, the server goes. */
static void h_stop(H *h)
{
    assert_int_equal(vd_qtest_quit(h->q), 0);
    nbd_server_stop(&h->srv);
}

/* A command failed with exactly ABRT. */
static void assert_abrt(AtaResult r)
{
    assert_false(r.timeout);
    assert_true(r.status & ATA_SR_ERR);
    assert_int_equal(r.error, ATA_ER_ABRT);
}

/* A command completed without error or timeout. */
static void assert_ok(AtaResult r)
{
    assert_false(r.timeout);
    assert_int_equal(r.status & (ATA_SR_BSY | ATA_SR_ERR | ATA_SR_DRQ | ATA_SR_DF), 0);
}

/* No flush at the server: no write cache in IDENTIFY, SET FEATURES 02h/82h abort, FLUSH CACHE is fine. */
static void test_write_through_only_identify(void **state)
{
    H h = { 0 };
    nbd_server_eval(&h.srv, false);
    h_start(&h);
    assert_int_equal(h.d.id[82] & 0x0020, 0);       /* no volatile write cache */
    assert_int_equal(h.d.id[85] & 0x0020, 0);
    assert_false(h.d.wce);
    assert_int_equal(h.d.id[83] & 0x3000, 0x3000);  /* FLUSH CACHE (EXT) stay: mandatory commands */

    assert_abrt(ata_nodata(&h.d, 0xef, 0x02, 0, 0, false));
    assert_ok(ata_identify(&h.d));
    assert_int_equal(h.d.id[85] & 0x0020, 0);
    assert_int_equal(vd_qtest_blockstat(h.q, "drive0", "write_cache"), 0);
    assert_abrt(ata_nodata(&h.d, 0xef, 0x82, 0, 0, false));
    assert_ok(ata_nodata(&h.d, 0xef, 0xaa, 0, 0, false));  /* other subcommands still work */

    uint8_t buf[512];
    memset(buf, 0x42, sizeof(buf));
    assert_ok(ata_dma_write(&h.d, 0, 1, buf, false, false));
    assert_ok(ata_flush(&h.d, false));
    vd_qtest_drain(h.q);
    assert_int_equal(nbd_log_count(&h.srv, "Flush"), 0);    /* every write durable: nothing to flush */
    h_stop(&h);
}

/* The control: a server with flush has a write cache the guest switches. */
static void test_flush_server_identify(void **state)
{
    H h = { 0 };
    nbd_server_eval(&h.srv, true);
    h_start(&h);
    assert_int_equal(h.d.id[82] & 0x0020, 0x0020);
    assert_int_equal(h.d.id[85] & 0x0020, 0x0020);
    assert_ok(ata_set_write_cache(&h.d, false));
    assert_int_equal(h.d.id[85] & 0x0020, 0);
    assert_ok(ata_set_write_cache(&h.d, true));
    assert_int_equal(h.d.id[85] & 0x0020, 0x0020);
    h_stop(&h);
}

int main(void)
{
    nbd_server_require("nbdkit");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_through_only_identify),
        cmocka_unit_test(test_flush_server_identify),
    };
    return cmocka_run_group_tests_name("harness-ide-nbd", tests, NULL, NULL);
}
