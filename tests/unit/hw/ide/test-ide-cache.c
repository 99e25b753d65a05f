/*
 * test-ide-cache.c - the write cache as the guest controls it: power-on
 * state from the cache mode, SET FEATURES 02h/82h, FLUSH CACHE (EXT) with BSY
 * held until the backend answers, flush errors with the LBA, FUA writes, and
 * what SRST does to the setting.  Host counters prove the host behaviour.
 */
#include "ide-test.h"
#include "mock-driver.h"

#include <errno.h>
#include <string.h>

static const MockConfig mock_native = { .fua = VD_FUA_NATIVE, .dsync = true, .zero = true };

/* IDENTIFY word 85 bit 5. */
static bool identify_wce(Rig *r, unsigned unit)
{
    uint16_t id[256];
    assert_int_equal(ata_identify_dev(r, 0, unit, id) & (ST_ERR | ST_BSY), 0);
    return id[85] & (1 << 5);
}

/* Write n sectors at lba with WRITE SECTORS (PIO). */
static uint8_t pio_write(Rig *r, uint32_t lba, uint32_t n, uint32_t seed)
{
    g_autofree uint8_t *buf = g_malloc(n * 512);
    fill_pattern(buf, n * 512, seed);
    ata_tf28(r, 0, 0, lba, n, 0);
    ata_command(r, 0, 0x30);
    return ata_pio_out(r, 0, buf, n, 1);
}

/* SET FEATURES with a subcommand; returns the final status. */
static uint8_t set_features(Rig *r, unsigned unit, uint8_t sub)
{
    ata_tf28(r, 0, unit, 0, 0, sub);
    return ata_nodata(r, 0, 0xef);
}

/* The power-on write cache follows the cache mode. */
static void test_power_on_wce(void **state)
{
    static const struct { const char *mode; bool wce; } modes[] = {
        { "writeback", true }, { "none", true }, { "unsafe", true },
        { "writethrough", false }, { "directsync", false },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
        Rig *r = rig_new();
        g_autofree char *opts = g_strdup_printf("file=%%F,cache=%s", modes[i].mode);
        VdBlockBackend *blk = rig_attach(r, 0, opts);
        assert_int_equal(identify_wce(r, 0), modes[i].wce);
        assert_int_equal(vd_blk_write_cache(blk), modes[i].wce);
        rig_free(r);
    }
}

/*
 * 82h flushes what the cache holds before it completes, then writes are
 * durable at completion; 02h makes writes cached again.  IDENTIFY follows.
 */
static void test_wce_toggle_host_ops(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F,cache=writeback");
    r->snap_blk = blk;
    assert_true(identify_wce(r, 0));

    VdBlockStats s0 = rig_stats(blk);
    assert_int_equal(pio_write(r, 10, 8, 1), ST_DRDY | ST_DSC);
    assert_int_equal(durable_ops(&r->snap), durable_ops(&s0));   /* cached: nothing durable yet */

    VdBlockStats s1 = rig_stats(blk);
    ata_tf28(r, 0, 0, 0, 0, 0x82);
    ata_command(r, 0, 0xef);
    assert_true(inb(r, ctl_port(0)) & ST_BSY);      /* busy until the backend's flush answers */
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    assert_true(r->snap.host_fdatasync > s1.host_fdatasync);   /* flushed before the interrupt */
    assert_int_equal(r->snap.wce_toggles, s1.wce_toggles + 1);
    assert_false(vd_blk_write_cache(blk));
    assert_false(identify_wce(r, 0));

    VdBlockStats s2 = rig_stats(blk);
    assert_int_equal(pio_write(r, 30, 1, 2), ST_DRDY | ST_DSC);
    assert_true(durable_ops(&r->snap) > durable_ops(&s2));       /* durable when it completed */

    assert_int_equal(set_features(r, 0, 0x02), ST_DRDY | ST_DSC);
    assert_true(vd_blk_write_cache(blk));
    assert_true(identify_wce(r, 0));
    VdBlockStats s3 = rig_stats(blk);
    assert_int_equal(pio_write(r, 40, 1, 3), ST_DRDY | ST_DSC);
    assert_int_equal(durable_ops(&r->snap), durable_ops(&s3));
    assert_int_equal(r->snap.wce_toggles, s1.wce_toggles + 2);

    /* 82h with the cache already off completes at once and toggles nothing. */
    assert_int_equal(set_features(r, 0, 0x82), ST_DRDY | ST_DSC);
    VdBlockStats s4 = rig_stats(blk);
    assert_int_equal(set_features(r, 0, 0x82), ST_DRDY | ST_DSC);
    assert_int_equal(rig_stats(blk).wce_toggles, s4.wce_toggles);
    rig_free(r);
}

/* 82h holds BSY while the backend's flush is held in the driver. */
static void test_wce_off_waits_for_flush(void **state)
{
    mock_reset(&mock_native);
    Rig *r = rig_new();
    rig_attach(r, 0, "driver=mock,size=8M");
    assert_int_equal(pio_write(r, 0, 1, 4), ST_DRDY | ST_DSC);
    mock_hold(MOCK_FLUSH_DISK);
    unsigned before = r->raises[14];
    ata_tf28(r, 0, 0, 0, 0, 0x82);
    ata_command(r, 0, 0xef);
    mock_wait_held(MOCK_FLUSH_DISK, 1);
    rig_settle(r);
    assert_int_equal(inb(r, ctl_port(0)), ST_BSY | ST_DRDY);
    assert_int_equal(r->raises[14], before);
    mock_release(MOCK_FLUSH_DISK);
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    assert_false(identify_wce(r, 0));
    rig_free(r);
}

/*
 * Issue 1/8 finding 1 for ATA: the guest turns the cache off, the HOST turns
 * the backend's cache on; the next IDENTIFY shows word 85 bit 5 set, and a
 * later 82h really flushes (the drive has no copy that could say "already off").
 */
static void test_host_wce_change_in_identify(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F,cache=writeback");
    assert_int_equal(set_features(r, 0, 0x82), ST_DRDY | ST_DSC);
    assert_false(identify_wce(r, 0));
    assert_int_equal(vd_blk_set_write_cache_sync(blk, true), 0);
    assert_true(identify_wce(r, 0));
    assert_int_equal(pio_write(r, 3, 1, 7), ST_DRDY | ST_DSC);
    VdBlockStats s0 = rig_stats(blk);
    assert_int_equal(set_features(r, 0, 0x82), ST_DRDY | ST_DSC);
    assert_int_equal(rig_stats(blk).host_fdatasync, s0.host_fdatasync + 1);
    assert_false(vd_blk_write_cache(blk));
    assert_false(identify_wce(r, 0));
    /* and a host change to off shows too */
    assert_int_equal(set_features(r, 0, 0x02), ST_DRDY | ST_DSC);
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    assert_false(identify_wce(r, 0));
    rig_free(r);
}

/* SET FEATURES 82h whose flush fails: ERR + ABRT, the cache is off, later flushes fail (sticky). */
static void test_wce_off_flush_error_aborts(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F,cache=writeback");
    assert_int_equal(pio_write(r, 5, 2, 9), ST_DRDY | ST_DSC);
    vd_blk_inject_error(blk, VD_FAULT_FLUSH, EIO, 1);
    assert_int_equal(set_features(r, 0, 0x82), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    assert_false(identify_wce(r, 0));
    ata_tf28(r, 0, 0, 0, 0, 0);
    assert_true(ata_nodata(r, 0, 0xe7) & ST_ERR);
    rig_free(r);
}

/* FLUSH CACHE and FLUSH CACHE EXT hold BSY (and ignore the command block) until the flush completes. */
static void test_flush_holds_bsy(void **state)
{
    static const uint8_t cmds[] = { 0xe7, 0xea };
    for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++) {
        mock_reset(&mock_native);
        Rig *r = rig_new();
        rig_attach(r, 0, "driver=mock,size=8M");
        assert_int_equal(pio_write(r, 5, 2, 5), ST_DRDY | ST_DSC);
        mock_hold(MOCK_FLUSH_DISK);
        ata_select(r, 0, 0);
        ata_command(r, 0, cmds[i]);
        mock_wait_held(MOCK_FLUSH_DISK, 1);
        rig_settle(r);
        assert_true(inb(r, ctl_port(0)) & ST_BSY);
        assert_false(vd_irq_level(r->bus, 14));
        /* While BSY: command-block writes are ignored, register reads give the status. */
        ata_command(r, 0, 0xec);
        outb(r, cmd_port(0) + 2, 0x33);
        assert_true(inb(r, cmd_port(0) + 2) & ST_BSY);
        mock_release(MOCK_FLUSH_DISK);
        assert_true(rig_wait_irq(r, 0));
        assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
        assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 1);
        assert_int_equal(inb(r, cmd_port(0) + 2), 2);   /* still the WRITE count: the 33h was ignored */
        rig_free(r);
    }
}

/* FLUSH reaches the host as fdatasync before the interrupt; with nothing written it is skipped. */
static void test_flush_host_ops(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F,cache=writeback");
    r->snap_blk = blk;
    assert_int_equal(pio_write(r, 0, 4, 6), ST_DRDY | ST_DSC);
    VdBlockStats s0 = rig_stats(blk);
    ata_select(r, 0, 0);
    assert_int_equal(ata_nodata(r, 0, 0xe7), ST_DRDY | ST_DSC);
    assert_int_equal(r->snap.host_fdatasync, s0.host_fdatasync + 1);
    assert_int_equal(r->snap.flushes, s0.flushes + 1);
    VdBlockStats s1 = rig_stats(blk);
    assert_int_equal(ata_nodata(r, 0, 0xea), ST_DRDY | ST_DSC);
    assert_int_equal(r->snap.host_fdatasync, s1.host_fdatasync);
    assert_int_equal(r->snap.flushes_skipped, s1.flushes_skipped + 1);
    rig_free(r);

    /* cache=unsafe: the flush is accepted but the host sync is elided. */
    r = rig_new();
    blk = rig_attach(r, 0, "file=%F,cache=unsafe");
    r->snap_blk = blk;
    assert_int_equal(pio_write(r, 0, 4, 6), ST_DRDY | ST_DSC);
    s0 = rig_stats(blk);
    ata_select(r, 0, 0);
    assert_int_equal(ata_nodata(r, 0, 0xea), ST_DRDY | ST_DSC);
    assert_int_equal(r->snap.host_fdatasync, s0.host_fdatasync);
    rig_free(r);
}

/* A failed flush: ERR + ABRT, and the LBA registers name the first cached sector. */
static void test_flush_error_lba(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F,cache=writeback");
    assert_int_equal(pio_write(r, 5000, 1, 7), ST_DRDY | ST_DSC);
    assert_int_equal(pio_write(r, 1234, 2, 8), ST_DRDY | ST_DSC);
    vd_blk_inject_error(blk, VD_FAULT_FLUSH, EIO, 1);
    ata_tf48(r, 0, 0, 0, 0);
    assert_int_equal(ata_nodata(r, 0, 0xea), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    assert_int_equal(ata_read_lba48(r, 0), 1234);
    /* The host error is sticky: the 28-bit form fails too and reports in 28-bit registers. */
    ata_tf28(r, 0, 0, 0, 0, 0);
    assert_int_equal(ata_nodata(r, 0, 0xe7), ST_DRDY | ST_DSC | ST_ERR);
    assert_int_equal(inb(r, cmd_port(0) + 1), ER_ABRT);
    assert_int_equal(ata_read_lba28(r, 0), 1234);
    assert_true(rig_stats(blk).errors >= 2);
    rig_free(r);
}

/* WRITE MULTIPLE FUA EXT with the cache on: durable before the interrupt, unlike WRITE MULTIPLE EXT. */
static void test_fua_pio(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F,cache=writeback");
    r->snap_blk = blk;
    uint8_t buf[8 * 512], disk[8 * 512];
    fill_pattern(buf, sizeof(buf), 9);
    ata_tf28(r, 0, 0, 0, 8, 0);
    assert_int_equal(ata_nodata(r, 0, 0xc6), ST_DRDY | ST_DSC);

    VdBlockStats s0 = rig_stats(blk);
    ata_tf48(r, 0, 0, 64, 8);
    ata_command(r, 0, 0x39);
    assert_int_equal(ata_pio_out(r, 0, buf, 8, 8), ST_DRDY | ST_DSC);
    assert_int_equal(durable_ops(&r->snap), durable_ops(&s0));
    assert_int_equal(r->snap.fua_writes, s0.fua_writes);

    VdBlockStats s1 = rig_stats(blk);
    ata_tf48(r, 0, 0, 128, 8);
    ata_command(r, 0, 0xce);
    assert_int_equal(ata_pio_out(r, 0, buf, 8, 8), ST_DRDY | ST_DSC);
    assert_true(durable_ops(&r->snap) > durable_ops(&s1));
    assert_int_equal(r->snap.fua_writes, s1.fua_writes + 1);
    assert_int_equal(vd_blk_pread_sync(blk, 128 * 512, disk, sizeof(disk)), 0);
    assert_memory_equal(disk, buf, sizeof(buf));
    /* Without SET MULTIPLE it aborts like every MULTIPLE command. */
    ata_tf28(r, 0, 0, 0, 0, 0);
    assert_int_equal(ata_nodata(r, 0, 0xc6), ST_DRDY | ST_DSC);
    ata_tf48(r, 0, 0, 128, 8);
    assert_int_equal(ata_nodata(r, 0, 0xce), ST_DRDY | ST_DSC | ST_ERR);
    rig_free(r);
}

/* WRITE DMA FUA EXT with the cache on: durable before the interrupt, unlike WRITE DMA EXT. */
static void test_fua_dma(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F,cache=writeback");
    r->snap_blk = blk;
    uint8_t *ram = vd_bus_ram(r->bus);
    fill_pattern(ram + 0x100000, 16 * 512, 10);
    VdBlockStats s0 = rig_stats(blk);
    assert_int_equal(ata_dma(r, 0, 0, 0x35, 256, 16, 0x100000), ST_DRDY | ST_DSC);
    assert_int_equal(durable_ops(&r->snap), durable_ops(&s0));
    VdBlockStats s1 = rig_stats(blk);
    assert_int_equal(ata_dma(r, 0, 0, 0x3d, 512, 16, 0x100000), ST_DRDY | ST_DSC);
    assert_true(durable_ops(&r->snap) > durable_ops(&s1));
    assert_int_equal(r->snap.fua_writes, s1.fua_writes + 1);
    uint8_t disk[16 * 512];
    assert_int_equal(vd_blk_pread_sync(blk, 512 * 512, disk, sizeof(disk)), 0);
    assert_memory_equal(disk, ram + 0x100000, sizeof(disk));
    rig_free(r);
}

/* SRST keeps the write-cache setting (revert to defaults is off at power-on, as after 66h). */
static void test_srst_keeps_wce(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F,cache=writeback");
    assert_int_equal(set_features(r, 0, 0x82), ST_DRDY | ST_DSC);
    outb(r, ctl_port(0), 0x04);
    outb(r, ctl_port(0), 0x00);
    assert_int_equal(rig_wait_not_busy(r, 0), ST_DRDY | ST_DSC);
    assert_false(identify_wce(r, 0));
    assert_false(vd_blk_write_cache(blk));
    /* 66h (keep settings) explicitly: same result. */
    assert_int_equal(set_features(r, 0, 0x66), ST_DRDY | ST_DSC);
    outb(r, ctl_port(0), 0x04);
    outb(r, ctl_port(0), 0x00);
    assert_false(identify_wce(r, 0));
    rig_free(r);
}

/* After CCh, SRST reverts the write cache to the cache mode's default. */
static void test_srst_reverts_after_cc(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F,cache=writeback");
    assert_int_equal(set_features(r, 0, 0xcc), ST_DRDY | ST_DSC);
    assert_int_equal(set_features(r, 0, 0x82), ST_DRDY | ST_DSC);
    assert_false(identify_wce(r, 0));
    outb(r, ctl_port(0), 0x04);
    outb(r, ctl_port(0), 0x00);
    assert_int_equal(rig_wait_not_busy(r, 0), ST_DRDY | ST_DSC);
    assert_true(identify_wce(r, 0));
    assert_true(vd_blk_write_cache(blk));
    rig_free(r);

    /* writethrough default: reverting turns the cache off, and the reset stays busy until flushed. */
    mock_reset(&mock_native);
    r = rig_new();
    blk = rig_attach(r, 0, "driver=mock,size=8M,cache=writethrough");
    assert_false(identify_wce(r, 0));
    assert_int_equal(set_features(r, 0, 0xcc), ST_DRDY | ST_DSC);
    assert_int_equal(set_features(r, 0, 0x02), ST_DRDY | ST_DSC);
    assert_int_equal(pio_write(r, 3, 1, 11), ST_DRDY | ST_DSC);
    mock_hold(MOCK_FLUSH_DISK);
    outb(r, ctl_port(0), 0x04);
    outb(r, ctl_port(0), 0x00);
    mock_wait_held(MOCK_FLUSH_DISK, 1);
    rig_settle(r);
    assert_true(inb(r, ctl_port(0)) & ST_BSY);
    mock_release(MOCK_FLUSH_DISK);
    assert_int_equal(rig_wait_not_busy(r, 0), ST_DRDY | ST_DSC);
    assert_false(vd_blk_write_cache(blk));
    assert_false(identify_wce(r, 0));
    rig_free(r);
}

/* Two drives on one channel keep separate write-cache settings. */
static void test_wce_per_drive(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *a = rig_attach(r, 0, "file=%F,cache=writeback");
    VdBlockBackend *b = rig_attach(r, 1, "file=%F,cache=writeback");
    assert_int_equal(set_features(r, 1, 0x82), ST_DRDY | ST_DSC);
    assert_true(vd_blk_write_cache(a));
    assert_false(vd_blk_write_cache(b));
    assert_true(identify_wce(r, 0));
    assert_false(identify_wce(r, 1));
    rig_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_on_wce),
        cmocka_unit_test(test_wce_toggle_host_ops),
        cmocka_unit_test(test_wce_off_waits_for_flush),
        cmocka_unit_test(test_host_wce_change_in_identify),
        cmocka_unit_test(test_wce_off_flush_error_aborts),
        cmocka_unit_test(test_flush_holds_bsy),
        cmocka_unit_test(test_flush_host_ops),
        cmocka_unit_test(test_flush_error_lba),
        cmocka_unit_test(test_fua_pio),
        cmocka_unit_test(test_fua_dma),
        cmocka_unit_test(test_srst_keeps_wce),
        cmocka_unit_test(test_srst_reverts_after_cc),
        cmocka_unit_test(test_wce_per_drive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
