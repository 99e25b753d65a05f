/*
 * test-bus.c - the machine bus: region claims and overlaps, dispatch of
 * guest accesses (sizes, edges, unclaimed addresses), the DMA bounds every
 * device relies on, and level-triggered IRQ lines.
 */
#include "hw/bus.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#define RAM (1u << 20)

/* A register block that records the last access and reads back addr * 0x11. */
typedef struct Dev {
    uint64_t addr, value;
    unsigned size, reads, writes;
} Dev;

/* VdIoOps.read: count and answer a pattern of the offset. */
static uint64_t dev_read(void *opaque, uint64_t addr, unsigned size)
{
    Dev *d = opaque;
    d->reads++;
    d->addr = addr;
    d->size = size;
    return 0x1111111111111111ull * (addr + 1);
}

/* VdIoOps.write: count and record. */
static void dev_write(void *opaque, uint64_t addr, uint64_t value, unsigned size)
{
    Dev *d = opaque;
    d->writes++;
    d->addr = addr;
    d->value = value;
    d->size = size;
}

static const VdIoOps dev_ops = { dev_read, dev_write };
static const VdIoOps write_only_ops = { NULL, dev_write };

/* A bus with RAM bytes of RAM; fails the test if it cannot be made. */
static VdBus *bus_ok(void)
{
    g_autoptr(GError) err = NULL;
    VdBus *bus = vd_bus_new(RAM, NULL, &err);
    assert_non_null(bus);
    return bus;
}

/* Map a region and expect it to fail with a message containing msg. */
static void map_fails(VdBus *bus, VdSpace space, uint64_t base, uint64_t len, const char *msg)
{
    g_autoptr(GError) err = NULL;
    Dev d = { 0 };
    VdRegion *r = vd_bus_map(bus, space, base, len, &dev_ops, &d, "bad", &err);
    if (r || !strstr(err->message, msg)) {
        fail_msg("map [0x%" G_GINT64_MODIFIER "x,+0x%" G_GINT64_MODIFIER "x): expected '%s', got '%s'", base, len,
                 msg, r ? "(success)" : err->message);
    }
}

/* RAM sizes out of range are refused. */
static void test_new_limits(void **state)
{
    g_autoptr(GError) err = NULL;
    assert_null(vd_bus_new(0, NULL, &err));
    assert_non_null(strstr(err->message, "out of range"));
    g_clear_error(&err);
    assert_null(vd_bus_new((64ull << 30) + 1, NULL, &err));
    assert_non_null(err);
}

/* Claims: sizes, address-space limits, overlaps with regions and with RAM. */
static void test_regions(void **state)
{
    VdBus *bus = bus_ok();
    Dev a = { 0 }, b = { 0 };
    VdRegion *ra = vd_bus_map(bus, VD_SPACE_PIO, 0x1f0, 8, &dev_ops, &a, "ide", NULL);
    assert_non_null(ra);
    assert_int_equal(vd_region_base(ra), 0x1f0);
    assert_string_equal(vd_region_name(ra), "ide");
    map_fails(bus, VD_SPACE_PIO, 0x1f7, 1, "overlaps region ide");      /* last byte */
    map_fails(bus, VD_SPACE_PIO, 0x1e0, 0x11, "overlaps region ide");   /* first byte */
    map_fails(bus, VD_SPACE_PIO, 0x100, 0x1000, "overlaps region ide"); /* covers it */
    map_fails(bus, VD_SPACE_PIO, 0x1f2, 2, "overlaps region ide");      /* inside it */
    /* Touching is not overlapping; the same address in the other space is free. */
    assert_non_null(vd_bus_map(bus, VD_SPACE_PIO, 0x1f8, 8, &dev_ops, &b, "next", NULL));
    assert_non_null(vd_bus_map(bus, VD_SPACE_PIO, 0x1e8, 8, &dev_ops, &b, "prev", NULL));
    map_fails(bus, VD_SPACE_PIO, 0x3000, 0, "does not fit");
    map_fails(bus, VD_SPACE_PIO, 0xfff0, 0x11, "does not fit");         /* past 64 KiB */
    map_fails(bus, VD_SPACE_PIO, 0x10001, 1, "does not fit");
    assert_non_null(vd_bus_map(bus, VD_SPACE_PIO, 0xfff0, 0x10, &dev_ops, &b, "top", NULL));
    map_fails(bus, VD_SPACE_MMIO, RAM - 1, 2, "overlaps guest RAM");
    map_fails(bus, VD_SPACE_MMIO, 0, 1, "overlaps guest RAM");
    map_fails(bus, VD_SPACE_MMIO, UINT64_MAX - 0xf, 0x20, "does not fit");   /* base + len wraps */
    assert_non_null(vd_bus_map(bus, VD_SPACE_MMIO, RAM, 0x1000, &dev_ops, &b, "after-ram", NULL));
    assert_non_null(vd_bus_map(bus, VD_SPACE_MMIO, UINT64_MAX - 0x10, 0x10, &dev_ops, &b, "last", NULL));
    map_fails(bus, VD_SPACE_MMIO, UINT64_MAX - 0x10, 1, "overlaps region last");
    /* Unmapping frees the range for another claim. */
    vd_bus_unmap(bus, ra);
    vd_bus_unmap(bus, NULL);
    assert_non_null(vd_bus_map(bus, VD_SPACE_PIO, 0x1f0, 8, &dev_ops, &a, "ide-again", NULL));
    vd_bus_free(bus);   /* frees the regions still mapped */
}

/* Dispatch: offsets relative to the base, widths, edges, unclaimed and bad accesses. */
static void test_dispatch(void **state)
{
    VdBus *bus = bus_ok();
    Dev d = { 0 }, w = { 0 };
    assert_non_null(vd_bus_map(bus, VD_SPACE_MMIO, 0xfeb00000, 0x200, &dev_ops, &d, "dev", NULL));
    assert_non_null(vd_bus_map(bus, VD_SPACE_PIO, 0x80, 4, &write_only_ops, &w, "wo", NULL));
    uint64_t v = 0;
    assert_true(vd_bus_read(bus, VD_SPACE_MMIO, 0xfeb00010, 4, &v));
    assert_int_equal(d.addr, 0x10);
    assert_int_equal(d.size, 4);
    assert_int_equal(v, 0x11111111u * 0x11 & 0xffffffffu);   /* masked to the access width */
    assert_true(vd_bus_read(bus, VD_SPACE_MMIO, 0xfeb001f8, 8, &v));   /* the last 8 bytes */
    assert_true(vd_bus_write(bus, VD_SPACE_MMIO, 0xfeb00004, 0xabcd, 2));
    assert_int_equal(d.addr, 4);
    assert_int_equal(d.value, 0xabcd);
    assert_int_equal(d.size, 2);
    unsigned reads = d.reads, writes = d.writes;
    /* An access that straddles the region's end is no region's. */
    assert_false(vd_bus_read(bus, VD_SPACE_MMIO, 0xfeb001fc, 8, &v));
    assert_true(v == UINT64_MAX);
    assert_false(vd_bus_write(bus, VD_SPACE_MMIO, 0xfeb001ff, 1, 2));
    /* Unclaimed addresses read all ones at the access width and drop writes. */
    assert_false(vd_bus_read(bus, VD_SPACE_MMIO, 0xfeb00200, 1, &v));
    assert_int_equal(v, 0xff);
    assert_false(vd_bus_read(bus, VD_SPACE_PIO, 0x1234, 2, &v));
    assert_int_equal(v, 0xffff);
    assert_false(vd_bus_write(bus, VD_SPACE_PIO, 0x1234, 0, 4));
    /* Only widths 1, 2, 4 and 8 are accesses. */
    assert_false(vd_bus_read(bus, VD_SPACE_MMIO, 0xfeb00000, 3, &v));
    assert_false(vd_bus_read(bus, VD_SPACE_MMIO, 0xfeb00000, 0, &v));
    assert_false(vd_bus_write(bus, VD_SPACE_MMIO, 0xfeb00000, 0, 16));
    assert_int_equal(d.reads, reads);
    assert_int_equal(d.writes, writes);
    /* A region without a read op reads as unclaimed but takes writes. */
    assert_false(vd_bus_read(bus, VD_SPACE_PIO, 0x80, 1, &v));
    assert_int_equal(v, 0xff);
    assert_true(vd_bus_write(bus, VD_SPACE_PIO, 0x83, 7, 1));
    assert_int_equal(w.addr, 3);
    vd_bus_free(bus);
}

/* MMIO space below ram_size is guest RAM, little-endian, up to its last byte. */
static void test_ram_access(void **state)
{
    VdBus *bus = bus_ok();
    uint8_t *ram = vd_bus_ram(bus);
    assert_int_equal(vd_bus_ram_size(bus), RAM);
    assert_true(vd_bus_write(bus, VD_SPACE_MMIO, 0x101, 0x0807060504030201ull, 8));
    assert_memory_equal(ram + 0x101, ((uint8_t[]){ 1, 2, 3, 4, 5, 6, 7, 8 }), 8);
    uint64_t v = 0;
    assert_true(vd_bus_read(bus, VD_SPACE_MMIO, 0x103, 2, &v));
    assert_int_equal(v, 0x0403);
    assert_true(vd_bus_write(bus, VD_SPACE_MMIO, RAM - 4, 0xdeadbeef, 4));
    assert_true(vd_bus_read(bus, VD_SPACE_MMIO, RAM - 4, 4, &v));
    assert_int_equal(v, 0xdeadbeef);
    assert_false(vd_bus_read(bus, VD_SPACE_MMIO, RAM - 4, 8, &v));   /* leaves RAM, no region */
    assert_false(vd_bus_write(bus, VD_SPACE_MMIO, RAM - 1, 0, 2));
    vd_bus_free(bus);
}

/* DMA: a pointer only for ranges wholly inside RAM, whatever the arithmetic would wrap to. */
static void test_dma_bounds(void **state)
{
    VdBus *bus = bus_ok();
    uint8_t *ram = vd_bus_ram(bus);
    assert_ptr_equal(vd_dma_map(bus, 0, RAM), ram);
    assert_ptr_equal(vd_dma_map(bus, RAM - 1, 1), ram + RAM - 1);
    assert_ptr_equal(vd_dma_map(bus, RAM, 0), ram + RAM);          /* empty range at the end */
    assert_null(vd_dma_map(bus, RAM - 1, 2));
    assert_null(vd_dma_map(bus, 0, RAM + 1));
    assert_null(vd_dma_map(bus, RAM, 1));
    assert_null(vd_dma_map(bus, RAM + 1, 0));
    assert_null(vd_dma_map(bus, 1, UINT64_MAX));                   /* gpa + len wraps to 0 */
    assert_null(vd_dma_map(bus, UINT64_MAX, 2));                   /* wraps to 1 */
    assert_null(vd_dma_map(bus, 0x1000, UINT64_MAX - 0xfff));      /* wraps to 0 exactly */
    uint8_t buf[16] = "0123456789abcdef", back[16] = { 0 };
    assert_true(vd_dma_write(bus, RAM - 16, buf, 16));
    assert_true(vd_dma_read(bus, RAM - 16, back, 16));
    assert_memory_equal(back, buf, 16);
    /* A range that leaves RAM copies nothing at all. */
    memset(back, 'x', sizeof(back));
    assert_false(vd_dma_read(bus, RAM - 8, back, 16));
    assert_int_equal(back[0], 'x');
    assert_false(vd_dma_write(bus, RAM - 8, "zzzzzzzzzzzzzzzz", 16));
    assert_memory_equal(ram + RAM - 8, "89abcdef", 8);
    vd_bus_free(bus);
}

/* The changes an IRQ listener heard, in order: bit 7 is the level, the rest the line. */
typedef GArray IrqLog;

/* VdIrqListener: append the change to the log. */
static void irq_listener(void *opaque, unsigned line, bool level)
{
    uint8_t event = (uint8_t)(line | (level ? 0x80 : 0));
    g_array_append_val((IrqLog *)opaque, event);
}

/* The log as a string of hex bytes, for one comparison. */
static char *irq_log_str(IrqLog *log)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < log->len; i++) {
        g_string_append_printf(s, "%s%02x", i ? " " : "", g_array_index(log, uint8_t, i));
    }
    return g_string_free(s, FALSE);
}

/* Lines are level-triggered: the listener hears changes only; bad lines are ignored. */
static void test_irq(void **state)
{
    VdBus *bus = bus_ok();
    g_autoptr(GArray) log = g_array_new(FALSE, FALSE, 1);
    vd_irq_set(bus, 5, true);   /* no listener yet: the level still changes */
    assert_true(vd_irq_level(bus, 5));
    vd_bus_set_irq_listener(bus, irq_listener, log);
    vd_irq_set(bus, 5, true);   /* no change, nothing heard */
    vd_irq_set(bus, 5, false);
    vd_irq_set(bus, 5, false);
    vd_irq_set(bus, VD_IRQ_LINES - 1, true);
    vd_irq_set(bus, 0, true);
    vd_irq_set(bus, 0, false);
    g_autofree char *heard = irq_log_str(log);
    assert_string_equal(heard, "05 bf 80 00");
    assert_true(vd_irq_level(bus, VD_IRQ_LINES - 1));
    assert_false(vd_irq_level(bus, 5));
    assert_false(vd_irq_level(bus, 0));
    assert_false(vd_irq_level(bus, VD_IRQ_LINES));       /* out of range reads low */
    assert_false(vd_irq_level(bus, UINT32_MAX));
    g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*line < VD_IRQ_LINES*");
    vd_irq_set(bus, VD_IRQ_LINES, true);
    g_test_assert_expected_messages();
    assert_int_equal(log->len, 4);
    vd_bus_free(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_limits), cmocka_unit_test(test_regions),    cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_ram_access), cmocka_unit_test(test_dma_bounds), cmocka_unit_test(test_irq),
    };
    return cmocka_run_group_tests_name("hw-bus", tests, NULL, NULL);
}
