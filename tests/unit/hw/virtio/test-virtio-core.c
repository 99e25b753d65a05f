/*
 * test-virtio-core.c - the virtio core and virtio-mmio transport, driven by
 * the in-test guest against an "echo" device that copies each request's
 * readable bytes into its writable buffers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "vguest.h"

#define RAM   (1u << 20)
#define BASE  0xfeb00000ull
#define IRQ   16
#define QMAX  16

#define ECHO_F_EXTRA 0   /* a device-specific feature bit */

typedef struct Echo {
    VdVirtioDevice *vdev;
    uint32_t rw;              /* config: read-write u32 at 4 */
    bool defer;               /* hold requests instead of answering */
    GPtrArray *held;
    unsigned resets, driver_oks;
    uint64_t negotiated;
    bool refuse_features;
} Echo;

typedef struct Fix {
    VdBus *bus;
    Echo echo;
    VdVirtioMmio *mmio;
    VGuest g;
    uint8_t shadow[64 * 1024];   /* a vhost-user-like private memory for the translate test */
} Fix;

/* The echo device offers the core features and one of its own. */
static uint64_t echo_features(VdVirtioDevice *vdev)
{
    return VD_VIRTIO_CORE_FEATURES | VD_VIRTIO_BIT(ECHO_F_EXTRA);
}

/* Record the negotiated set; refuse it on request. */
static bool echo_set_features(VdVirtioDevice *vdev, uint64_t f)
{
    Echo *e = vd_virtio_device_opaque(vdev);
    e->negotiated = f;
    return !e->refuse_features;
}

/* Config: u32 magic (read-only) at 0, u32 read-write at 4. */
static void echo_get_config(VdVirtioDevice *vdev, uint8_t *cfg)
{
    Echo *e = vd_virtio_device_opaque(vdev);
    uint32_t magic = GUINT32_TO_LE(0xec40ec40), rw = GUINT32_TO_LE(e->rw);
    memcpy(cfg, &magic, 4);
    memcpy(cfg + 4, &rw, 4);
}

/* Only the u32 at 4 is writable. */
static void echo_config_write(VdVirtioDevice *vdev, uint32_t off, const uint8_t *buf, uint32_t len)
{
    Echo *e = vd_virtio_device_opaque(vdev);
    if (off == 4 && len == 4) {
        memcpy(&e->rw, buf, 4);
        e->rw = GUINT32_FROM_LE(e->rw);
    }
}

/* Answer one element: copy readable bytes into the writable ones. */
static void echo_answer(VdVirtqElem *elem)
{
    uint8_t buf[4096];
    size_t n = vd_iov_to_buf(elem->out_sg, elem->out_num, 0, buf, MIN(sizeof(buf), elem->in_len));
    size_t w = vd_iov_from_buf(elem->in_sg, elem->in_num, 0, buf, n);
    vd_virtq_push(elem, w);
}

/* Answer (or hold) every available request, then notify once. */
static void echo_notify(VdVirtioDevice *vdev, VdVirtQueue *vq)
{
    Echo *e = vd_virtio_device_opaque(vdev);
    VdVirtqElem *elem;
    while ((elem = vd_virtq_pop(vq, sizeof(VdVirtqElem)))) {
        if (e->defer) {
            g_ptr_array_add(e->held, elem);
            continue;
        }
        echo_answer(elem);
        vd_virtq_elem_free(elem);
    }
    vd_virtq_notify(vq);
}

/* Count DRIVER_OK transitions. */
static void echo_driver_ok(VdVirtioDevice *vdev)
{
    ((Echo *)vd_virtio_device_opaque(vdev))->driver_oks++;
}

/* Count resets; nothing is ever in flight, so the reset finishes at once. */
static void echo_reset(VdVirtioDevice *vdev)
{
    ((Echo *)vd_virtio_device_opaque(vdev))->resets++;
    vd_virtio_reset_done(vdev);
}

static const VdVirtioDeviceOps echo_ops = {
    .name = "echo", .device_id = 42, .config_size = 8,
    .get_features = echo_features, .set_features = echo_set_features,
    .get_config = echo_get_config, .config_write = echo_config_write,
    .driver_ok = echo_driver_ok, .queue_notify = echo_notify, .reset = echo_reset,
};

/* Bus, echo device, virtio-mmio transport and guest. */
static int setup(void **state)
{
    Fix *f = g_new0(Fix, 1);
    f->bus = vd_bus_new(RAM, NULL, NULL);
    f->echo.held = g_ptr_array_new_with_free_func(vd_virtq_elem_free);
    f->echo.vdev = vd_virtio_device_new(&echo_ops, &f->echo, 2, QMAX, f->bus, NULL);
    assert_non_null(f->echo.vdev);
    f->mmio = vd_virtio_mmio_new(f->bus, BASE, 0x200, IRQ, f->echo.vdev, NULL);
    assert_non_null(f->mmio);
    vg_init(&f->g, f->bus, BASE, IRQ);
    *state = f;
    return 0;
}

/* Free everything setup made. */
static int teardown(void **state)
{
    Fix *f = *state;
    g_ptr_array_free(f->echo.held, TRUE);
    vd_virtio_mmio_free(f->mmio);
    vd_virtio_device_free(f->echo.vdev);
    vd_bus_free(f->bus);
    g_free(f);
    return 0;
}

/* Negotiate the core features and bring queue 0 (and 1) up. */
static void start(Fix *f, uint64_t features)
{
    assert_true(vg_negotiate(&f->g, features));
    assert_true(vg_setup_queue(&f->g, 0, QMAX));
    assert_true(vg_setup_queue(&f->g, 1, QMAX));
    vg_driver_ok(&f->g);
    assert_true(vg_rd(&f->g, VD_VMMIO_STATUS) & VD_VIRTIO_STATUS_DRIVER_OK);
}

/* Send "hello" with a 16-byte writable buffer; return the used entry's len. */
static uint32_t echo_roundtrip(Fix *f, unsigned q, bool indirect, uint64_t *out_addr)
{
    uint64_t src = vg_alloc(&f->g, 16), dst = vg_alloc(&f->g, 16);
    memcpy(vg_ptr(&f->g, src), "hello", 5);
    VgBuf b[] = { { src, 5, false }, { dst, 16, true } };
    unsigned head = indirect ? vg_chain_indirect(&f->g, q, b, 2) : vg_chain(&f->g, q, b, 2);
    vg_publish(&f->g, q, head);
    vg_kick(&f->g, q);
    uint32_t id = ~0u, len = ~0u;
    assert_true(vg_pop_used(&f->g, q, &id, &len));
    assert_int_equal(id, head);
    *out_addr = dst;
    return len;
}

/* The identification registers and the feature words. */
static void test_mmio_identity(void **state)
{
    Fix *f = *state;
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_MAGIC), 0x74726976);
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_VERSION), 2);
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_DEVICE_ID), 42);
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_VENDOR_ID), VD_VIRTIO_MMIO_VENDOR);
    uint64_t feat = vg_device_features(&f->g);
    assert_true(feat & VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1));
    assert_true(feat & VD_VIRTIO_BIT(VD_VIRTIO_F_RING_INDIRECT_DESC));
    assert_true(feat & VD_VIRTIO_BIT(VD_VIRTIO_F_RING_EVENT_IDX));
    assert_true(feat & VD_VIRTIO_BIT(ECHO_F_EXTRA));
    assert_false(feat & VD_VIRTIO_BIT(VD_VIRTIO_F_RING_PACKED));
    vg_wr(&f->g, VD_VMMIO_QUEUE_SEL, 1);
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_QUEUE_NUM_MAX), QMAX);
    vg_wr(&f->g, VD_VMMIO_QUEUE_SEL, 2);   /* no such queue */
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_QUEUE_NUM_MAX), 0);
    /* registers are 32-bit only: a byte read gives 0 */
    uint64_t v = 1;
    vd_bus_read(f->bus, VD_SPACE_MMIO, BASE, 1, &v);
    assert_int_equal(v, 0);
}

/* FEATURES_OK only sticks for an offered set that includes VERSION_1 and the device accepts. */
static void test_feature_negotiation(void **state)
{
    Fix *f = *state;
    assert_false(vg_negotiate(&f->g, VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1) | VD_VIRTIO_BIT(50)));
    assert_false(vg_negotiate(&f->g, VD_VIRTIO_BIT(ECHO_F_EXTRA)));              /* legacy: refused */
    f->echo.refuse_features = true;
    assert_false(vg_negotiate(&f->g, VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1)));
    f->echo.refuse_features = false;
    uint64_t want = VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1) | VD_VIRTIO_BIT(ECHO_F_EXTRA);
    assert_true(vg_negotiate(&f->g, want));
    assert_int_equal(f->echo.negotiated, want);
    /* features are frozen after FEATURES_OK */
    vg_wr(&f->g, VD_VMMIO_DRIVER_FEATURES_SEL, 0);
    vg_wr(&f->g, VD_VMMIO_DRIVER_FEATURES, 0);
    assert_int_equal(vd_virtio_guest_features(f->echo.vdev), want);
    assert_true(vd_virtio_has_feature(f->echo.vdev, ECHO_F_EXTRA));
    /* DRIVER_OK without FEATURES_OK is refused */
    vg_wr(&f->g, VD_VMMIO_STATUS, 0);
    vg_wr(&f->g, VD_VMMIO_STATUS, VD_VIRTIO_STATUS_ACKNOWLEDGE | VD_VIRTIO_STATUS_DRIVER |
                                  VD_VIRTIO_STATUS_DRIVER_OK);
    assert_false(vg_rd(&f->g, VD_VMMIO_STATUS) & VD_VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(f->echo.driver_oks, 0);
    /* the driver cannot clear bits; only 0 resets */
    assert_true(vg_negotiate(&f->g, want));
    vg_wr(&f->g, VD_VMMIO_STATUS, VD_VIRTIO_STATUS_ACKNOWLEDGE);
    assert_true(vg_rd(&f->g, VD_VMMIO_STATUS) & VD_VIRTIO_STATUS_FEATURES_OK);
    unsigned resets = f->echo.resets;
    vg_wr(&f->g, VD_VMMIO_STATUS, 0);
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_STATUS), 0);
    assert_int_equal(f->echo.resets, resets + 1);
    assert_int_equal(vd_virtio_guest_features(f->echo.vdev), 0);
}

/* A direct chain and an indirect chain both reach the device and answer with an interrupt. */
static void test_roundtrip_direct_and_indirect(void **state)
{
    Fix *f = *state;
    start(f, VD_VIRTIO_CORE_FEATURES);
    assert_false(vd_irq_level(f->bus, IRQ));
    uint64_t dst;
    assert_int_equal(echo_roundtrip(f, 0, false, &dst), 5);
    assert_memory_equal(vg_ptr(&f->g, dst), "hello", 5);
    assert_true(vd_irq_level(f->bus, IRQ));
    assert_int_equal(vg_ack(&f->g), VD_VIRTIO_ISR_QUEUE);
    assert_false(vd_irq_level(f->bus, IRQ));
    assert_int_equal(echo_roundtrip(f, 1, true, &dst), 5);
    assert_memory_equal(vg_ptr(&f->g, dst), "hello", 5);
    /* EVENT_IDX: the device told the driver to kick at the next avail index */
    uint16_t avail_event = *(uint16_t *)vg_ptr(&f->g, f->g.q[1].used + 4 + 8 * QMAX);
    assert_int_equal(avail_event, f->g.q[1].avail_idx);
    assert_false(vd_virtio_broken(f->echo.vdev));
}

/* EVENT_IDX used_event and NO_INTERRUPT suppress interrupts the driver did not ask for. */
static void test_interrupt_suppression(void **state)
{
    Fix *f = *state;
    start(f, VD_VIRTIO_CORE_FEATURES);
    uint64_t dst;
    echo_roundtrip(f, 0, false, &dst);          /* first one always interrupts */
    assert_int_equal(vg_ack(&f->g), VD_VIRTIO_ISR_QUEUE);
    /* used_event = 5: no interrupt for used idx 2 */
    *(uint16_t *)vg_ptr(&f->g, f->g.q[0].avail + 4 + 2 * QMAX) = 5;
    echo_roundtrip(f, 0, false, &dst);
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_INTERRUPT_STATUS), 0);
    /* used_event = 2: crossing it (idx 2 -> 3) interrupts */
    *(uint16_t *)vg_ptr(&f->g, f->g.q[0].avail + 4 + 2 * QMAX) = 2;
    echo_roundtrip(f, 0, false, &dst);
    assert_int_equal(vg_ack(&f->g), VD_VIRTIO_ISR_QUEUE);
    VdVirtioStats st;
    vd_virtio_get_stats(f->echo.vdev, &st);
    assert_int_equal(st.interrupts_suppressed, 1);

    /* without EVENT_IDX the avail flag NO_INTERRUPT rules */
    start(f, VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1));
    *(uint16_t *)vg_ptr(&f->g, f->g.q[0].avail) = VD_VRING_AVAIL_F_NO_INTERRUPT;
    assert_int_equal(echo_roundtrip(f, 0, false, &dst), 5);
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_INTERRUPT_STATUS), 0);
    *(uint16_t *)vg_ptr(&f->g, f->g.q[0].avail) = 0;
    echo_roundtrip(f, 0, false, &dst);
    assert_int_equal(vg_ack(&f->g), VD_VIRTIO_ISR_QUEUE);
}

/* Config space: fields, out-of-range bytes, writes, generation on device changes. */
static void test_config_space(void **state)
{
    Fix *f = *state;
    assert_int_equal(vg_config_read(&f->g, 0, 4), 0xec40ec40);
    assert_int_equal(vg_config_read(&f->g, 1, 1), 0xec);
    assert_int_equal(vg_config_read(&f->g, 0, 8), 0xec40ec40ull);
    assert_int_equal(vg_config_read(&f->g, 8, 4), 0);       /* past the end */
    vg_config_write(&f->g, 4, 0x12345678, 4);
    assert_int_equal(vg_config_read(&f->g, 4, 4), 0x12345678);
    vg_config_write(&f->g, 6, 0xffffffff, 4);                /* crosses the end: dropped */
    assert_int_equal(vg_config_read(&f->g, 4, 4), 0x12345678);
    start(f, VD_VIRTIO_CORE_FEATURES);
    uint32_t gen = vg_rd(&f->g, VD_VMMIO_CONFIG_GENERATION);
    vd_virtio_config_changed(f->echo.vdev);
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_CONFIG_GENERATION), gen + 1);
    assert_int_equal(vg_ack(&f->g), VD_VIRTIO_ISR_CONFIG);
}

/* QueueReady refuses a bad size, misaligned rings and rings outside RAM. */
static void test_queue_ready_validation(void **state)
{
    Fix *f = *state;
    assert_true(vg_negotiate(&f->g, VD_VIRTIO_CORE_FEATURES));
    vg_wr(&f->g, VD_VMMIO_QUEUE_SEL, 0);
    static const struct { unsigned num; uint64_t desc, avail, used; } bad[] = {
        { 3, 0x1000, 0x2000, 0x3000 },            /* not a power of two */
        { 2 * QMAX, 0x1000, 0x2000, 0x3000 },     /* above QueueNumMax */
        { 0, 0x1000, 0x2000, 0x3000 },
        { 8, 0x1008, 0x2000, 0x3000 },            /* descriptor table misaligned */
        { 8, 0x1000, 0x2001, 0x3000 },
        { 8, 0x1000, 0x2000, 0x3002 },
        { 8, RAM - 64, 0x2000, 0x3000 },          /* table runs out of RAM */
        { 8, 0x1000, 0x2000, 0xfff0000000ull },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        vg_wr(&f->g, VD_VMMIO_QUEUE_NUM, bad[i].num);
        vg_wr(&f->g, VD_VMMIO_QUEUE_DESC_LOW, bad[i].desc);
        vg_wr(&f->g, VD_VMMIO_QUEUE_DESC_HIGH, bad[i].desc >> 32);
        vg_wr(&f->g, VD_VMMIO_QUEUE_DRIVER_LOW, bad[i].avail);
        vg_wr(&f->g, VD_VMMIO_QUEUE_DRIVER_HIGH, 0);
        vg_wr(&f->g, VD_VMMIO_QUEUE_DEVICE_LOW, bad[i].used);
        vg_wr(&f->g, VD_VMMIO_QUEUE_DEVICE_HIGH, bad[i].used >> 32);
        vg_wr(&f->g, VD_VMMIO_QUEUE_READY, 1);
        assert_int_equal(vg_rd(&f->g, VD_VMMIO_QUEUE_READY), 0);
    }
    /* a good layout works, and then its registers are frozen */
    assert_true(vg_setup_queue(&f->g, 0, 8));
    vg_wr(&f->g, VD_VMMIO_QUEUE_NUM, 4);
    assert_int_equal(vg_rd(&f->g, VD_VMMIO_QUEUE_NUM), 8);
}

/* After a broken chain: NEEDS_RESET, a config interrupt, and the device works after reset. */
static void expect_broken_then_recover(Fix *f, int head)
{
    assert_true(vd_virtio_broken(f->echo.vdev));
    assert_true(vg_rd(&f->g, VD_VMMIO_STATUS) & VD_VIRTIO_STATUS_NEEDS_RESET);
    uint32_t isr = vg_ack(&f->g);
    assert_true(isr & VD_VIRTIO_ISR_CONFIG);
    if (head >= 0) {
        uint32_t id, len;
        assert_true(vg_pop_used(&f->g, 0, &id, &len));  /* answered, not left hanging */
        assert_int_equal(id, head);
        assert_int_equal(len, 0);
    }
    /* a kick on a broken device does nothing */
    uint16_t used = vg_used_idx(&f->g, 0);
    vg_kick(&f->g, 0);
    assert_int_equal(vg_used_idx(&f->g, 0), used);
    start(f, VD_VIRTIO_CORE_FEATURES);
    assert_false(vd_virtio_broken(f->echo.vdev));
    uint64_t dst;
    assert_int_equal(echo_roundtrip(f, 0, false, &dst), 5);
}

/* Submit a hand-built head on queue 0 and kick. */
static void submit(Fix *f, unsigned head)
{
    vg_publish(&f->g, 0, head);
    vg_kick(&f->g, 0);
}

/* A descriptor loop. */
static void test_bad_loop(void **state)
{
    Fix *f = *state;
    start(f, VD_VIRTIO_CORE_FEATURES);
    uint64_t buf = vg_alloc(&f->g, 64);
    vg_set_desc(&f->g, 0, 0, buf, 8, VD_VRING_DESC_F_NEXT, 1);
    vg_set_desc(&f->g, 0, 1, buf, 8, VD_VRING_DESC_F_NEXT, 0);   /* 0 -> 1 -> 0 ... */
    submit(f, 0);
    expect_broken_then_recover(f, 0);
}

/* Buffers that leave guest RAM or wrap around. */
static void test_bad_address_outside_ram(void **state)
{
    Fix *f = *state;
    start(f, VD_VIRTIO_CORE_FEATURES);
    vg_set_desc(&f->g, 0, 3, RAM - 4, 8, VD_VRING_DESC_F_WRITE, 0);   /* straddles the end */
    submit(f, 3);
    expect_broken_then_recover(f, 3);
    vg_set_desc(&f->g, 0, 2, UINT64_MAX - 3, 8, 0, 0);                /* wraps */
    submit(f, 2);
    expect_broken_then_recover(f, 2);
}

/* Every way an indirect table can be wrong. */
static void test_bad_indirect_tables(void **state)
{
    Fix *f = *state;
    start(f, VD_VIRTIO_CORE_FEATURES);
    uint64_t buf = vg_alloc(&f->g, 64), table = vg_alloc(&f->g, 16 * (QMAX + 1));
    /* length not a multiple of 16 */
    vg_set_desc(&f->g, 0, 0, table, 24, VD_VRING_DESC_F_INDIRECT, 0);
    submit(f, 0);
    expect_broken_then_recover(f, 0);
    /* more entries than the queue size (too long) */
    for (unsigned i = 0; i <= QMAX; i++) {
        vg_write_desc_at(&f->g, table, i, buf, 4, i < QMAX ? VD_VRING_DESC_F_NEXT : 0, i + 1);
    }
    vg_set_desc(&f->g, 0, 0, table, 16 * (QMAX + 1), VD_VRING_DESC_F_INDIRECT, 0);
    submit(f, 0);
    expect_broken_then_recover(f, 0);
    /* nested INDIRECT */
    vg_write_desc_at(&f->g, table, 0, buf, 4, VD_VRING_DESC_F_NEXT, 1);
    vg_write_desc_at(&f->g, table, 1, table, 32, VD_VRING_DESC_F_INDIRECT, 0);
    vg_set_desc(&f->g, 0, 0, table, 32, VD_VRING_DESC_F_INDIRECT, 0);
    submit(f, 0);
    expect_broken_then_recover(f, 0);
    /* NEXT leaving the indirect table */
    vg_write_desc_at(&f->g, table, 0, buf, 4, VD_VRING_DESC_F_NEXT, 2);
    vg_set_desc(&f->g, 0, 0, table, 32, VD_VRING_DESC_F_INDIRECT, 0);
    submit(f, 0);
    expect_broken_then_recover(f, 0);
    /* a loop inside the indirect table */
    vg_write_desc_at(&f->g, table, 0, buf, 4, VD_VRING_DESC_F_NEXT, 1);
    vg_write_desc_at(&f->g, table, 1, buf, 4, VD_VRING_DESC_F_NEXT, 0);
    vg_set_desc(&f->g, 0, 0, table, 32, VD_VRING_DESC_F_INDIRECT, 0);
    submit(f, 0);
    expect_broken_then_recover(f, 0);
    /* INDIRECT when the driver did not negotiate it */
    assert_true(vg_negotiate(&f->g, VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1)));
    assert_true(vg_setup_queue(&f->g, 0, QMAX));
    vg_driver_ok(&f->g);
    vg_write_desc_at(&f->g, table, 0, buf, 4, 0, 0);
    vg_set_desc(&f->g, 0, 0, table, 16, VD_VRING_DESC_F_INDIRECT, 0);
    submit(f, 0);
    expect_broken_then_recover(f, 0);
}

/* Bad head, avail idx too far ahead, order and next violations. */
static void test_bad_ring_indices(void **state)
{
    Fix *f = *state;
    start(f, VD_VIRTIO_CORE_FEATURES);
    /* head index beyond the table */
    submit(f, QMAX + 3);
    expect_broken_then_recover(f, -1);
    /* avail idx more than a queue ahead */
    *(uint16_t *)vg_ptr(&f->g, f->g.q[0].avail + 2) = f->g.q[0].avail_idx + QMAX + 1;
    vg_kick(&f->g, 0);
    expect_broken_then_recover(f, -1);
    /* readable after writable */
    uint64_t buf = vg_alloc(&f->g, 64);
    vg_set_desc(&f->g, 0, 5, buf, 4, VD_VRING_DESC_F_WRITE | VD_VRING_DESC_F_NEXT, 6);
    vg_set_desc(&f->g, 0, 6, buf, 4, 0, 0);
    submit(f, 5);
    expect_broken_then_recover(f, 5);
    /* next beyond the queue */
    vg_set_desc(&f->g, 0, 7, buf, 4, VD_VRING_DESC_F_NEXT, QMAX);
    submit(f, 7);
    expect_broken_then_recover(f, 7);
}

/* Requests held across a reset are dead: their late completion touches nothing. */
static void test_stale_after_reset(void **state)
{
    Fix *f = *state;
    start(f, VD_VIRTIO_CORE_FEATURES);
    f->echo.defer = true;
    uint64_t src = vg_alloc(&f->g, 8), dst = vg_alloc(&f->g, 8);
    VgBuf b[] = { { src, 4, false }, { dst, 4, true } };
    submit(f, vg_chain(&f->g, 0, b, 2));
    assert_int_equal(f->echo.held->len, 1);
    VdVirtqElem *elem = g_ptr_array_index(f->echo.held, 0);
    assert_false(vd_virtq_elem_stale(elem));
    start(f, VD_VIRTIO_CORE_FEATURES);          /* reset + new rings */
    assert_true(vd_virtq_elem_stale(elem));
    assert_false(vd_virtq_push(elem, 4));
    assert_int_equal(vg_used_idx(&f->g, 0), 0);
}

/* A driver that keeps publishing without waiting cannot make the device hold more than num requests. */
static void test_inuse_limit(void **state)
{
    Fix *f = *state;
    start(f, VD_VIRTIO_CORE_FEATURES);
    f->echo.defer = true;
    uint64_t src = vg_alloc(&f->g, 8), dst = vg_alloc(&f->g, 8);
    VgBuf b[] = { { src, 4, false }, { dst, 4, true } };
    unsigned head = vg_chain(&f->g, 0, b, 2);
    VdVirtQueue *vq = vd_virtio_queue(f->echo.vdev, 0);
    for (unsigned i = 0; i < QMAX; i++) {      /* the same head over and over: a driver bug */
        vg_publish(&f->g, 0, head);
    }
    vg_kick(&f->g, 0);
    assert_int_equal(f->echo.held->len, QMAX);
    vg_publish(&f->g, 0, head);
    vg_kick(&f->g, 0);
    assert_int_equal(f->echo.held->len, QMAX);  /* refused, not queued */
    assert_int_equal(vd_virtq_inuse(vq), QMAX);
    /* one answered and notified: the core takes the refused request without another kick */
    VdVirtioStats before, after;
    vd_virtio_get_stats(f->echo.vdev, &before);
    VdVirtqElem *e = g_ptr_array_steal_index(f->echo.held, 0);
    echo_answer(e);
    vd_virtq_elem_free(e);
    vd_virtq_notify(vq);
    vd_virtio_get_stats(f->echo.vdev, &after);
    assert_int_equal(after.kicks, before.kicks);
    assert_int_equal(f->echo.held->len, QMAX);
    assert_int_equal(vd_virtq_inuse(vq), QMAX);
    assert_false(vd_virtio_broken(f->echo.vdev));
}

/* Random descriptor tables and rings: every kick ends in answers or NEEDS_RESET, never a crash. */
static void test_random_chains(void **state)
{
    Fix *f = *state;
    GRand *rnd = g_rand_new_with_seed(20261121);
    uint64_t scratch = 0;
    unsigned broken = 0, answered = 0;
    for (int iter = 0; iter < 400; iter++) {
        start(f, g_rand_boolean(rnd) ? VD_VIRTIO_CORE_FEATURES : VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1));
        if (!scratch) {
            scratch = vg_alloc(&f->g, 4096);
        }
        for (unsigned i = 0; i < QMAX; i++) {
            /* addresses mostly near the scratch page, sometimes anywhere */
            uint64_t addr = g_rand_int_range(rnd, 0, 4) ? scratch + g_rand_int_range(rnd, 0, 4096)
                                                        : ((uint64_t)g_rand_int(rnd) << 32 | g_rand_int(rnd));
            uint32_t len = g_rand_int_range(rnd, 0, 4) ? (uint32_t)g_rand_int_range(rnd, 0, 64) : g_rand_int(rnd);
            uint16_t flags = g_rand_int_range(rnd, 0, 8), next = g_rand_int_range(rnd, 0, QMAX + 2);
            if (flags & VD_VRING_DESC_F_INDIRECT && g_rand_boolean(rnd)) {
                addr = scratch;   /* an indirect table made of whatever the scratch page holds */
                len = 16 * g_rand_int_range(rnd, 0, QMAX + 2);
            }
            vg_set_desc(&f->g, 0, i, addr, len, flags, next);
        }
        uint8_t *junk = vg_ptr(&f->g, scratch);
        for (int i = 0; i < 4096; i++) {
            junk[i] = g_rand_int(rnd);
        }
        unsigned n = g_rand_int_range(rnd, 1, QMAX + 3);
        for (unsigned i = 0; i < n; i++) {
            vg_publish(&f->g, 0, g_rand_int_range(rnd, 0, QMAX + 1));
        }
        vg_kick(&f->g, 0);
        if (vd_virtio_broken(f->echo.vdev)) {
            assert_true(vg_rd(&f->g, VD_VMMIO_STATUS) & VD_VIRTIO_STATUS_NEEDS_RESET);
            broken++;
        } else {
            assert_int_equal(vg_used_idx(&f->g, 0), n);   /* every request answered */
            answered++;
        }
    }
    /* both outcomes happened, so the generator reached the device's checks and its happy path */
    assert_true(broken > 0);
    assert_true(answered > 0);
    g_rand_free(rnd);
}

/* A translate hook that maps guest addresses into private memory in 4 KiB pieces. */
static void *split_translate(void *opaque, uint64_t gpa, uint64_t *len, bool write)
{
    Fix *f = opaque;
    if (gpa >= sizeof(f->shadow) || *len > sizeof(f->shadow) - gpa) {
        return NULL;
    }
    uint64_t to_boundary = 4096 - (gpa & 4095);
    *len = MIN(*len, to_boundary);
    return f->shadow + gpa;
}

/* The core only uses the hook: a buffer split by it arrives as several iovecs. */
static void test_translate_hook(void **state)
{
    Fix *f = *state;
    VdVirtioDevice *vdev = vd_virtio_device_new(&echo_ops, &f->echo, 1, 8, NULL, NULL);
    vd_virtio_set_translate(vdev, split_translate, f);
    vd_virtio_set_guest_features(vdev, VD_VIRTIO_CORE_FEATURES);
    vd_virtio_set_status(vdev, 1 | 2 | 8);
    VdVirtQueue *vq = vd_virtio_queue(vdev, 0);
    vd_virtq_set_size(vq, 8);
    vd_virtq_set_addr(vq, 0x0, 0x100, 0x200);
    assert_true(vd_virtq_set_ready(vq, true));
    vd_virtio_set_status(vdev, 1 | 2 | 4 | 8);
    /* desc 0: 100 readable bytes across the 8 KiB boundary; desc 1: 100 writable across 12 KiB */
    uint64_t d0[2] = { GUINT64_TO_LE(8192 - 50), GUINT64_TO_LE(100ull | (1ull << 32) | (1ull << 48)) };
    uint64_t d1[2] = { GUINT64_TO_LE(12288 - 30), GUINT64_TO_LE(100ull | (2ull << 32)) };
    memcpy(f->shadow, d0, 16);
    memcpy(f->shadow + 16, d1, 16);
    for (int i = 0; i < 100; i++) {
        f->shadow[8192 - 50 + i] = i;
    }
    uint16_t avail[3] = { 0, GUINT16_TO_LE(1), 0 };
    memcpy(f->shadow + 0x100, avail, sizeof(avail));
    VdVirtqElem *elem = vd_virtq_pop(vq, sizeof(VdVirtqElem));
    assert_non_null(elem);
    assert_int_equal(elem->out_num, 2);
    assert_int_equal(elem->in_num, 2);
    assert_int_equal(elem->out_len, 100);
    assert_int_equal(elem->in_len, 100);
    echo_answer(elem);
    vd_virtq_elem_free(elem);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(f->shadow[12288 - 30 + i], i);
    }
    assert_int_equal(f->shadow[0x200 + 2], 1);     /* used idx */
    assert_int_equal(f->shadow[0x200 + 8], 100);   /* used len */
    /* a reconnecting back end resumes from the indices in memory */
    vd_virtq_set_ready(vq, false);
    f->shadow[0x200 + 2] = 7;
    vd_virtq_set_last_avail(vq, 7);
    assert_true(vd_virtq_sync_used_idx(vq));
    assert_true(vd_virtq_set_ready(vq, true));
    avail[1] = GUINT16_TO_LE(8);
    avail[2] = 0;                                   /* ring[7 % 8] is at offset 4 + 14 */
    memcpy(f->shadow + 0x100, avail, 4);
    memset(f->shadow + 0x100 + 4 + 14, 0, 2);
    elem = vd_virtq_pop(vq, sizeof(VdVirtqElem));
    assert_non_null(elem);
    echo_answer(elem);
    vd_virtq_elem_free(elem);
    assert_int_equal(f->shadow[0x200 + 2], 8);
    assert_int_equal(f->shadow[0x200 + 4 + 8 * 7], 0);     /* used ring slot 7: id 0 */
    assert_int_equal(f->shadow[0x200 + 4 + 8 * 7 + 4], 100);
    vd_virtio_device_free(vdev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mmio_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature_negotiation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_direct_and_indirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_suppression, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_space, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_ready_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_address_outside_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_indirect_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ring_indices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_after_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inuse_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_chains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_translate_hook, setup, teardown),
    };
    return cmocka_run_group_tests_name("virtio-core", tests, NULL, NULL);
}
