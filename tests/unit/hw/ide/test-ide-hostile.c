/*
 * test-ide-hostile.c - a guest that does everything wrong: reset and
 * controller teardown with I/O in flight, data-port accesses at the wrong
 * time and width, and a seeded random walk over every IDE and bus-master
 * register with random PRD tables.  Runs under ASan/UBSan: the assertions
 * are that requests complete safely and the disk still works afterwards.
 */
#include "ide-test.h"
#include "mock-driver.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const MockConfig mock_native = { .fua = VD_FUA_NATIVE, .dsync = true, .zero = true };

#define PRD 0x2000

/*
 * SRST during a DMA read: the drive stays BSY until the abandoned read has
 * finished; its late completion neither interrupts nor writes guest RAM.
 */
static void test_reset_during_dma_read(void **state)
{
    mock_reset(&mock_native);
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "driver=mock,size=8M");
    memset(mock_data(), 0x77, 8192);
    uint8_t *ram = vd_bus_ram(r->bus);
    memset(ram + 0x10000, 0, 4096);
    const uint32_t a[1] = { 0x10000 }, c[1] = { 4096 };
    prd_write(r, PRD, a, c, 1, true);
    bm_setup(r, 0, PRD, true);
    mock_hold(MOCK_READ);
    ata_tf48(r, 0, 0, 0, 8);
    ata_command(r, 0, 0x25);
    bm_start(r, 0, true);
    mock_wait_held(MOCK_READ, 1);
    outb(r, ctl_port(0), 0x04);
    outb(r, ctl_port(0), 0x00);
    bm_stop(r, 0);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_BSY);
    assert_int_equal(vd_ide_in_flight(r->ide), 1);
    unsigned before = r->raises[14];
    mock_release(MOCK_READ);
    vd_blk_drain(blk);
    rig_settle(r);
    assert_int_equal(r->raises[14], before);
    assert_int_equal(ram[0x10000], 0);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    /* The disk works again. */
    assert_int_equal(ata_dma(r, 0, 0, 0x25, 0, 8, 0x10000), ST_DRDY | ST_DSC);
    assert_int_equal(ram[0x10000], 0x77);
    rig_free(r);
}

/*
 * EXECUTE DEVICE DIAGNOSTIC written with the absent device 1 selected goes to
 * device 0, but not while SRST holds device 0 in reset (BSY).  The fuzzer
 * found it: device 1 stayed selected through SRST, the diagnostic made
 * device 0 ready inside the reset, a READ SECTORS started, and SRST going 0
 * then showed the drive idle with that read still on the host.
 */
static void test_diagnostic_during_reset(void **state)
{
    mock_reset(&mock_native);
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "driver=mock,size=8M");
    ata_select(r, 0, 1);
    outb(r, ctl_port(0), 0x04);                 /* SRST with device 1 selected */
    ata_command(r, 0, 0x90);
    ata_select(r, 0, 0);
    ata_tf28(r, 0, 0, 0, 8, 0);
    ata_command(r, 0, 0x20);
    assert_int_equal(vd_ide_in_flight(r->ide), 0);
    outb(r, ctl_port(0), 0x00);
    vd_blk_drain(blk);
    rig_settle(r);
    assert_int_equal(inb(r, ctl_port(0)), ST_DRDY | ST_DSC);
    assert_int_equal(vd_ide_in_flight(r->ide), 0);
    rig_free(r);
}

/* SRST during a FLUSH and during a PIO write chunk: BSY until each finished; no interrupt from them. */
static void test_reset_during_flush_and_write(void **state)
{
    mock_reset(&mock_native);
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "driver=mock,size=8M");
    uint8_t buf[512];
    fill_pattern(buf, 512, 1);
    ata_tf28(r, 0, 0, 0, 1, 0);
    ata_command(r, 0, 0x30);
    assert_int_equal(ata_pio_out(r, 0, buf, 1, 1), ST_DRDY | ST_DSC);
    mock_hold(MOCK_FLUSH_DISK);
    ata_command(r, 0, 0xe7);
    mock_wait_held(MOCK_FLUSH_DISK, 1);
    outb(r, ctl_port(0), 0x04);
    outb(r, ctl_port(0), 0x00);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_BSY);   /* the abandoned flush still runs */
    unsigned before = r->raises[14];
    mock_release(MOCK_FLUSH_DISK);
    vd_blk_drain(blk);
    rig_settle(r);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);

    /* A PIO write chunk held at the host, then SRST. */
    mock_hold(MOCK_WRITE);
    ata_tf28(r, 0, 0, 9, 1, 0);
    ata_command(r, 0, 0x30);
    assert_true(inb(r, ctl_port(0)) & ST_DRQ);
    for (int i = 0; i < 256; i++) {
        outw(r, cmd_port(0), i);
    }
    mock_wait_held(MOCK_WRITE, 1);
    outb(r, ctl_port(0), 0x04);
    outb(r, ctl_port(0), 0x00);
    assert_int_equal(inb(r, ctl_port(0)), ST_BSY);
    mock_release(MOCK_WRITE);
    vd_blk_drain(blk);
    rig_settle(r);
    assert_int_equal(r->raises[14], before);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    assert_int_equal(ata_nodata(r, 0, 0xe7), ST_DRDY | ST_DSC);
    rig_free(r);
}

/*
 * SRST while a DMA write is in flight must not let it overtake a newer write
 * to the same sector: the drive stays BSY (a command written meanwhile is
 * ignored) until the old write has landed, then the new write lands last.
 */
static void test_reset_write_not_overtaken(void **state)
{
    mock_reset(&mock_native);
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "driver=mock,size=8M");
    uint8_t *ram = vd_bus_ram(r->bus);
    memset(ram + 0x10000, 0xaa, 4096);   /* the old data */
    memset(ram + 0x20000, 0xbb, 4096);   /* the new data */
    const uint32_t a[1] = { 0x10000 }, c[1] = { 4096 };
    prd_write(r, PRD, a, c, 1, true);
    bm_setup(r, 0, PRD, false);
    mock_hold(MOCK_WRITE);
    ata_tf48(r, 0, 0, 0, 8);
    ata_command(r, 0, 0x35);
    bm_start(r, 0, false);
    mock_wait_held(MOCK_WRITE, 1);
    outb(r, ctl_port(0), 0x04);
    outb(r, ctl_port(0), 0x00);
    bm_stop(r, 0);
    assert_int_equal(inb(r, ctl_port(0)), ST_BSY);
    ata_command(r, 0, 0xe7);                          /* ignored while BSY */
    rig_settle(r);
    assert_int_equal(inb(r, ctl_port(0)), ST_BSY);
    assert_int_equal(mock_calls(MOCK_FLUSH_DISK), 0);
    mock_release(MOCK_WRITE);
    vd_blk_drain(blk);
    rig_settle(r);
    assert_int_equal(inb(r, cmd_port(0) + 7), ST_DRDY | ST_DSC);
    assert_int_equal(vd_ide_in_flight(r->ide), 0);
    assert_int_equal(ata_dma(r, 0, 0, 0x35, 0, 8, 0x20000), ST_DRDY | ST_DSC);
    assert_int_equal(mock_data()[0], 0xbb);
    assert_int_equal(mock_data()[4095], 0xbb);
    rig_free(r);
}

/* Freeing the controller with a request in flight: the request completes later, safely. */
static void test_free_during_io(void **state)
{
    mock_reset(&mock_native);
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "driver=mock,size=8M");
    const uint32_t a[1] = { 0x10000 }, c[1] = { 4096 };
    prd_write(r, PRD, a, c, 1, true);
    bm_setup(r, 0, PRD, false);
    mock_hold(MOCK_WRITE);
    ata_tf48(r, 0, 0, 0, 8);
    ata_command(r, 0, 0x35);
    bm_start(r, 0, false);
    mock_wait_held(MOCK_WRITE, 1);
    assert_int_equal(vd_blk_in_flight(blk), 1);
    vd_ide_free(r->ide);
    r->ide = NULL;
    mock_release(MOCK_WRITE);
    vd_blk_drain(blk);
    assert_int_equal(vd_blk_in_flight(blk), 0);
    assert_int_equal(mock_calls(MOCK_WRITE), 1);
    rig_free(r);
}

/* Data-port accesses at the wrong time or width change nothing. */
static void test_data_port_abuse(void **state)
{
    Rig *r = rig_new();
    VdBlockBackend *blk = rig_attach(r, 0, "file=%F");
    uint16_t p = cmd_port(0);
    VdBlockStats s0 = rig_stats(blk);
    for (int i = 0; i < 1000; i++) {
        outw(r, p, i);
        outl(r, p, i);
        outb(r, p, i);
        assert_int_equal(inw(r, p), 0xffff);
        assert_int_equal(inl(r, p), 0xffffffff);
        inb(r, p);
    }
    assert_int_equal(inb(r, p + 7), ST_DRDY | ST_DSC);
    /* During a non-data command's completion and after a read's last word. */
    assert_int_equal(ata_nodata(r, 0, 0xe5), ST_DRDY | ST_DSC);
    outw(r, p, 0x1234);
    uint8_t buf[512];
    ata_tf28(r, 0, 0, 0, 1, 0);
    ata_command(r, 0, 0x20);
    ata_pio_in(r, 0, buf, 1, 1);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(inw(r, p), 0xffff);
    }
    /* Writing the data port during a PIO read does not disturb it; reading during a write returns ones. */
    ata_tf28(r, 0, 0, 0, 1, 0);
    ata_command(r, 0, 0x20);
    assert_true(rig_wait_irq(r, 0));
    inb(r, p + 7);
    outw(r, p, 0xdead);
    for (int i = 0; i < 256; i++) {
        inw(r, p);
    }
    assert_int_equal(inb(r, p + 7), ST_DRDY | ST_DSC);
    ata_tf28(r, 0, 0, 0, 1, 0);
    ata_command(r, 0, 0x30);
    assert_int_equal(inw(r, p), 0xffff);
    /* Odd-width access: 1-byte writes move a whole word each. */
    for (int i = 0; i < 256; i++) {
        outb(r, p, 0xab);
    }
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(inb(r, p + 7), ST_DRDY | ST_DSC);
    uint8_t disk[512];
    assert_int_equal(vd_blk_pread_sync(blk, 0, disk, 512), 0);
    assert_int_equal(disk[0], 0xab);
    assert_int_equal(disk[1], 0x00);
    /* A new command in the middle of a PIO write abandons the partial block. */
    ata_tf28(r, 0, 0, 1, 2, 0);
    ata_command(r, 0, 0x30);
    outw(r, p, 0x5555);
    ata_command(r, 0, 0xe5);
    assert_true(rig_wait_irq(r, 0));
    assert_int_equal(inb(r, p + 7), ST_DRDY | ST_DSC);
    VdBlockStats s1 = rig_stats(blk);
    assert_int_equal(s1.writes - s0.writes, 1);
    rig_free(r);
}

/* xorshift32 for the random walk (deterministic per seed). */
static uint32_t next_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Random accesses to every IDE and bus-master port, random RAM and PRD tables, then recovery. */
static void test_random_walk(void **state)
{
    static const uint16_t ports[] = {
        0x1f0, 0x1f1, 0x1f2, 0x1f3, 0x1f4, 0x1f5, 0x1f6, 0x1f7, 0x3f6,
        0x170, 0x171, 0x172, 0x173, 0x174, 0x175, 0x176, 0x177, 0x376,
        0xc000, 0xc002, 0xc004, 0xc005, 0xc006, 0xc007, 0xc008, 0xc00a, 0xc00c,
    };
    static const unsigned sizes[] = { 1, 2, 4 };
    for (uint32_t seed = 1; seed <= 12; seed++) {
        Rig *r = rig_new();
        VdBlockBackend *blk[3] = {
            rig_attach(r, 0, "file=%F"),
            rig_attach(r, 1, "driver=null,size=300G"),
            rig_attach(r, 2, "driver=null,size=1M"),
        };
        uint32_t s = seed * 0x9e3779b9u;
        uint8_t *ram = vd_bus_ram(r->bus);
        for (unsigned i = 0; i < 65536; i += 4) {
            uint32_t v = next_rand(&s);
            memcpy(ram + i, &v, 4);
        }
        for (int step = 0; step < 60000; step++) {
            uint32_t x = next_rand(&s);
            uint16_t port = ports[x % G_N_ELEMENTS(ports)];
            unsigned size = sizes[(x >> 8) % 3];
            uint32_t v = next_rand(&s);
            unsigned reg = port & 7;
            bool bias = (x >> 12) % 4 != 0;       /* mostly plausible values, sometimes anything */
            if (port >= 0xc000) {
                if (port >= 0xc004 && port <= 0xc007 && bias) {
                    v &= 0xfff8;                  /* PRD tables mostly inside the first 64 KiB */
                }
            } else if (bias && port < 0x300 && (reg == 4 || reg == 5)) {
                v = 0;                            /* small LBAs, so commands reach the backend */
            } else if (bias && port < 0x300 && reg == 2) {
                v &= 0x0f;
            } else if (bias && port < 0x300 && reg == 6) {
                v = 0xe0 | (v & 0x10);
            } else if (bias && port < 0x300 && reg == 7) {
                static const uint8_t ops[] = { 0x20, 0x24, 0x25, 0x30, 0x34, 0x35, 0x3d, 0xc4, 0xc5, 0xc6, 0xc8,
                                               0xca, 0xce, 0xe7, 0xea, 0xec, 0xef, 0x40, 0x90, 0x29, 0x39 };
                v = ops[v % sizeof(ops)];
            } else if (bias && port > 0x300) {
                v &= (x >> 20) % 16 ? 0x80 : 0x86; /* device control: SRST and nIEN now and then */
            }
            if (reg == 0 && port < 0x300 && (x >> 28) % 4 == 0) {
                /* A burst of data-port traffic, so PIO transfers get somewhere. */
                for (int i = 0; i < 256; i++) {
                    uint64_t out;
                    if ((x >> 24) & 1) {
                        vd_bus_write(r->bus, VD_SPACE_PIO, port, next_rand(&s), 2);
                    } else {
                        vd_bus_read(r->bus, VD_SPACE_PIO, port, 2, &out);
                    }
                }
                continue;
            }
            if ((x >> 24) & 1) {
                vd_bus_write(r->bus, VD_SPACE_PIO, port, v, size);
            } else {
                uint64_t out;
                vd_bus_read(r->bus, VD_SPACE_PIO, port, size, &out);
            }
            if (step % 64 == 0) {
                while (g_main_context_iteration(NULL, FALSE)) {
                }
            }
        }
        /* The walk must have reached the devices: interrupts and backend I/O happened. */
        VdBlockStats st = { 0 };
        for (int i = 0; i < 3; i++) {
            VdBlockStats one = rig_stats(blk[i]);
            st.reads += one.reads;
            st.writes += one.writes;
            st.flushes += one.flushes;
        }
        printf("seed %u: irq14=%u irq15=%u reads=%" PRIu64 " writes=%" PRIu64 " flushes=%" PRIu64 "\n", seed,
               r->raises[14], r->raises[15], st.reads, st.writes, st.flushes);
        assert_true(r->raises[14] > 10 && r->raises[15] > 10);
        assert_true(st.reads + st.writes >= 5 && st.flushes > 0);
        /* Recovery: stop both engines, reset both channels, let everything land. */
        for (unsigned ch = 0; ch < 2; ch++) {
            outb(r, bm_port(ch), 0);
            outb(r, ctl_port(ch), 0x04);
            outb(r, ctl_port(ch), 0x00);
        }
        for (int i = 0; i < 3; i++) {
            vd_blk_drain(blk[i]);
        }
        rig_settle(r);
        for (unsigned ch = 0; ch < 2; ch++) {
            outb(r, ctl_port(ch), 0x04);
            outb(r, ctl_port(ch), 0x00);
            inb(r, cmd_port(ch) + 7);
        }
        uint16_t id[256];
        assert_int_equal(ata_identify_dev(r, 0, 0, id), ST_DRDY | ST_DSC);
        assert_int_equal(id[255] & 0xff, 0xa5);
        assert_int_equal(ata_dma(r, 0, 0, 0x25, 0, 8, 0x10000), ST_DRDY | ST_DSC);
        assert_int_equal(ata_identify_dev(r, 1, 0, id), ST_DRDY | ST_DSC);
        rig_free(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reset_during_dma_read),
        cmocka_unit_test(test_diagnostic_during_reset),
        cmocka_unit_test(test_reset_during_flush_and_write),
        cmocka_unit_test(test_reset_write_not_overtaken),
        cmocka_unit_test(test_free_during_io),
        cmocka_unit_test(test_data_port_abuse),
        cmocka_unit_test(test_random_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
