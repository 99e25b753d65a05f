/*
 * test-virtio-blk-nbd.c - a virtio-blk guest (the reference driver, through
 * vdisk-vmm's qtest-like protocol) on an NBD export served by nbdkit.  The
 * log filter shows what the server received for each guest action: a
 * writeback-0 write is a FUA write, a guest FLUSH is NBD_CMD_FLUSH, a FLUSH
 * with nothing written is skipped; a server without flush is a
 * write-through-only disk the guest cannot turn writeback on for; the
 * server dying under werror=stop holds the guest's write until cont.
 * Skips (77) without nbdkit.
 */
#include "virtio-blk-driver.h"
#include "nbd-server.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#define QSIZE 64
#define RAM_ALLOC_START 0x100000ull
#define RAM_ALLOC_END   0x4000000ull

typedef struct H {
    NbdServer srv;
    VdQtest *q;
    VdGuestAlloc alloc;
    VdVblk b;
} H;

/* Start vdisk-vmm with one virtio drive on the server's export and initialise the guest driver. */
static void h_start(H *h, const char *opts)
{
    g_autofree char *args = g_strdup_printf("--drive driver=nbd,uri=%s,if=virtio,id=drive0%s%s", h->srv.uri,
                                            opts ? "," : "", opts ? opts : "");
    h->q = vd_qtest_start(args);
    vd_guest_alloc_init(&h->alloc, RAM_ALLOC_START, RAM_ALLOC_END);
    VdVmmio dev;
    assert_true(vd_vmmio_find(h->q, 2, "drive0", &dev));
    assert_true(vd_vblk_init(&h->b, &dev, vd_vblk_all_features(), false, 1, QSIZE, &h->alloc));
}

/* The VMM exits cleanly, the server goes. */
static void h_stop(H *h)
{
    assert_int_equal(vd_qtest_quit(h->q), 0);
    nbd_server_stop(&h->srv);
}

/* Requests the server logged with these words, once the VMM has nothing in flight. */
static unsigned logged(H *h, const char *words)
{
    vd_qtest_drain(h->q);
    return nbd_log_count(&h->srv, words);
}

/* The guest's write cache decides what reaches the server: FUA writes, flushes, or neither. */
static void test_guest_write_cache(void **state)
{
    H h = { 0 };
    nbd_server_memory(&h.srv, NULL);
    h_start(&h, NULL);
    uint8_t buf[4096], back[4096];
    memset(buf, 0x3c, sizeof(buf));
    assert_int_equal(vd_vblk_writeback(&h.b), 1);
    assert_int_equal(vd_vblk_flush(&h.b), VBLK_S_OK);                /* nothing written: skipped */
    assert_int_equal(logged(&h, "Flush"), 0);
    assert_int_equal(vd_vblk_write(&h.b, 0, buf, sizeof(buf)), VBLK_S_OK);
    assert_int_equal(logged(&h, "Write offset=0x0 count=0x1000 fua=0"), 1);
    assert_int_equal(vd_vblk_flush(&h.b), VBLK_S_OK);
    assert_int_equal(logged(&h, "Flush"), 1);

    assert_int_equal(vd_vblk_set_writeback(&h.b, 0), 0);              /* nothing unflushed: no flush */
    assert_int_equal(logged(&h, "Flush"), 1);
    assert_int_equal(vd_vblk_write(&h.b, 8, buf, sizeof(buf)), VBLK_S_OK);
    assert_int_equal(logged(&h, "Write offset=0x1000 count=0x1000 fua=1"), 1);
    assert_int_equal(vd_vblk_flush(&h.b), VBLK_S_OK);                /* every write durable: skipped */
    assert_int_equal(logged(&h, "Flush"), 1);

    assert_int_equal(vd_vblk_set_writeback(&h.b, 1), 1);
    assert_int_equal(vd_vblk_write(&h.b, 16, buf, sizeof(buf)), VBLK_S_OK);
    assert_int_equal(vd_vblk_set_writeback(&h.b, 0), 0);              /* 1 -> 0 flushes the cached write */
    assert_int_equal(logged(&h, "Write offset=0x2000 count=0x1000 fua=0"), 1);
    assert_int_equal(logged(&h, "Flush"), 2);
    assert_int_equal(vd_vblk_read(&h.b, 16, back, sizeof(back)), VBLK_S_OK);
    assert_memory_equal(back, buf, sizeof(buf));
    h_stop(&h);
}

/* A server without flush: the guest sees writethrough, cannot turn writeback on, and no flush is sent. */
static void test_guest_write_through_only(void **state)
{
    H h = { 0 };
    nbd_server_eval(&h.srv, false);
    h_start(&h, "cache=writeback");
    assert_int_equal(vd_vblk_writeback(&h.b), 0);
    assert_int_equal(vd_vblk_set_writeback(&h.b, 1), 0);
    assert_int_equal(vd_qtest_blockstat(h.q, "drive0", "write_cache"), 0);
    uint8_t buf[4096];
    memset(buf, 0x11, sizeof(buf));
    assert_int_equal(vd_vblk_write(&h.b, 0, buf, sizeof(buf)), VBLK_S_OK);
    assert_int_equal(vd_vblk_flush(&h.b), VBLK_S_OK);
    assert_int_equal(logged(&h, "Write offset=0x0 count=0x1000 fua=0"), 1);
    assert_int_equal(logged(&h, "Flush"), 0);
    h_stop(&h);
}

/* The server dies under a guest write: werror=stop holds it; after the restart, cont completes it. */
static void test_guest_server_killed_cont(void **state)
{
    H h = { 0 };
    nbd_server_memory(&h.srv, (const char *const[]){ "--filter=pause", "pause-control=@DIR@/ctl", NULL });
    h_start(&h, "werror=stop");
    uint8_t buf[4096], back[4096];
    memset(buf, 0x6d, sizeof(buf));
    nbd_server_pause(&h.srv, 'p');
    VdVblkReq w = vd_vblk_submit(&h.b, 0, VBLK_T_OUT, 8, buf, sizeof(buf));
    vd_vq_kick(&h.b.vq[0]);
    for (int i = 0; i < 100 && nbd_log_count(&h.srv, "Write") == 0; i++) {
        vd_qtest_poll(h.q, 50); /* until the write is held at the paused server */
    }
    nbd_server_kill(&h.srv);
    for (int i = 0; i < 100 && vd_qtest_blockstat(h.q, "drive0", "stopped") == 0; i++) {
        vd_qtest_poll(h.q, 50);
    }
    assert_int_equal(vd_qtest_blockstat(h.q, "drive0", "stopped"), 1);
    assert_int_equal(vd_qtest_readw(h.q, h.b.vq[0].used + 2), h.b.vq[0].last_used); /* nothing completed */
    nbd_server_restart(&h.srv);
    for (int tries = 0; tries < 50 && vd_qtest_readw(h.q, h.b.vq[0].used + 2) == h.b.vq[0].last_used; tries++) {
        vd_qtest_poll(h.q, 200);
        g_free(vd_qtest_ok(h.q, "cont drive0")); /* held again until the driver is back */
        vd_qtest_poll(h.q, 100);
    }
    assert_int_equal(vd_vblk_complete(&h.b, &w, NULL), VBLK_S_OK);
    assert_int_equal(vd_vblk_read(&h.b, 8, back, sizeof(back)), VBLK_S_OK);
    assert_memory_equal(back, buf, sizeof(buf));
    h_stop(&h);
}

int main(void)
{
    nbd_server_require("nbdkit");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guest_write_cache),
        cmocka_unit_test(test_guest_write_through_only),
        cmocka_unit_test(test_guest_server_killed_cont),
    };
    return cmocka_run_group_tests_name("harness-virtio-blk-nbd", tests, NULL, NULL);
}
