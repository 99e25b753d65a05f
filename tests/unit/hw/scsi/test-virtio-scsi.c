/*
 * test-virtio-scsi.c - the virtio-scsi adapter driven in-process by the test
 * guest (tests/unit/hw/virtio/vguest.h) over virtio-mmio: what needs control
 * of the event loop or of the machine's LUNs, so the harness cannot do it:
 * ABORT TASK / LOGICAL UNIT RESET of commands really in flight, LUN hotplug
 * events and lost events, the driver-written cdb_size/sense_size, several
 * request queues, and a device reset with I/O in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "hw/virtio-mmio.h"
#include "hw/virtio-scsi.h"
#include "scsi-test-util.h"
#include "vguest.h"

#define RAM     (8u << 20)
#define BASE    0xfeb00000ull
#define IRQ     16
#define QSIZE   64
#define DISK    (4u << 20)
#define F(b) VD_VIRTIO_BIT(b)

typedef struct Fix {
    char path[64];
    VdBus *bus;
    VdBlockBackend *blk, *blk1;
    VdBlockBackend *extra[20];
    unsigned nextra;
    VdVirtioScsi *dev;
    VdVirtioMmio *mmio;
    VGuest g;
    uint32_t cdb_size, sense_size;
} Fix;

/* An image-backed LUN 0 and a null LUN 1 on an adapter with nq request queues. */
static Fix *fix_new(unsigned nq)
{
    Fix *f = g_new0(Fix, 1);
    g_strlcpy(f->path, "/tmp/vd-vscsi-XXXXXX", sizeof(f->path));
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, DISK), 0);
    close(fd);
    g_autofree char *o = g_strdup_printf("file=%s", f->path);
    f->blk = vd_blk_open(o, NULL, NULL);
    f->blk1 = vd_blk_open("driver=null,size=1048576", NULL, NULL);
    assert_non_null(f->blk);
    assert_non_null(f->blk1);
    f->bus = vd_bus_new(RAM, NULL, NULL);
    VdVirtioScsiConf conf = { .num_queues = nq, .queue_size = QSIZE };
    f->dev = vd_virtio_scsi_new(&conf, f->bus, NULL);
    assert_non_null(f->dev);
    assert_true(vd_virtio_scsi_add_lun(f->dev, f->blk, 0, "lun0", NULL));
    assert_true(vd_virtio_scsi_add_lun(f->dev, f->blk1, 1, NULL, NULL));
    f->mmio = vd_virtio_mmio_new(f->bus, BASE, 0x200, IRQ, vd_virtio_scsi_device(f->dev), NULL);
    assert_non_null(f->mmio);
    vg_init(&f->g, f->bus, BASE, IRQ);
    f->cdb_size = 32;
    f->sense_size = 96;
    return f;
}

static void fix_free(Fix *f)
{
    vd_virtio_mmio_free(f->mmio);
    vd_virtio_scsi_free(f->dev);
    vd_blk_close(f->blk);
    vd_blk_close(f->blk1);
    for (unsigned i = 0; i < f->nextra; i++) {
        vd_blk_close(f->extra[i]);
    }
    vd_bus_free(f->bus);
    unlink(f->path);
    g_free(f);
}

/* Negotiate, set up 2 + nq queues, DRIVER_OK. */
static void start(Fix *f, uint64_t features, unsigned nq)
{
    assert_true(vg_negotiate(&f->g, VD_VIRTIO_CORE_FEATURES | features));
    for (unsigned q = 0; q < 2 + nq; q++) {
        assert_true(vg_setup_queue(&f->g, q, QSIZE));
    }
    vg_driver_ok(&f->g);
}

/* A command in guest memory. */
typedef struct Cmd {
    unsigned q, head;
    uint64_t resp, data;
} Cmd;

/* Build and publish (no kick) a command to lun with tag on queue q. */
static Cmd cmd_build(Fix *f, unsigned q, unsigned lun, uint64_t tag, const uint8_t *cdb, size_t cdb_len,
                     uint32_t out_len, uint32_t in_len)
{
    Cmd c = { .q = q };
    uint32_t req_len = 19 + f->cdb_size;
    uint64_t req = vg_alloc(&f->g, req_len);
    uint8_t *p = vg_ptr(&f->g, req);
    p[0] = 1;
    p[2] = 0x40 | (lun >> 8);
    p[3] = lun & 0xff;
    uint64_t t = GUINT64_TO_LE(tag);
    memcpy(p + 8, &t, 8);
    memcpy(p + 19, cdb, MIN(cdb_len, (size_t)f->cdb_size));
    c.resp = vg_alloc(&f->g, 12 + f->sense_size);
    memset(vg_ptr(&f->g, c.resp), 0xee, 12 + f->sense_size);
    VgBuf b[4] = { { req, req_len, false } };
    unsigned n = 1;
    if (out_len) {
        c.data = vg_alloc(&f->g, out_len);
        b[n++] = (VgBuf){ c.data, out_len, false };
    }
    b[n++] = (VgBuf){ c.resp, 12 + f->sense_size, true };
    if (in_len) {
        c.data = vg_alloc(&f->g, in_len);
        b[n++] = (VgBuf){ c.data, in_len, true };
    }
    c.head = vg_chain(&f->g, q, b, n);
    vg_publish(&f->g, q, c.head);
    return c;
}

/* Wait until every head in heads[0..n) is used on queue q (any order). */
static void wait_heads(Fix *f, unsigned q, const unsigned *heads, unsigned n)
{
    unsigned got = 0;
    while (got < n) {
        uint32_t id, len;
        if (!vg_pop_used(&f->g, q, &id, &len)) {
            assert_true(vg_wait_used(&f->g, q, 10000));
            continue;
        }
        for (unsigned i = 0; i < n; i++) {
            got += heads[i] == id;
        }
    }
}

static uint8_t response_of(Fix *f, const Cmd *c)
{
    return ((uint8_t *)vg_ptr(&f->g, c->resp))[11];
}

static uint8_t status_of(Fix *f, const Cmd *c)
{
    return ((uint8_t *)vg_ptr(&f->g, c->resp))[10];
}

/* Run one command to completion on queue 2. */
static Cmd run(Fix *f, unsigned lun, const uint8_t *cdb, size_t len, uint32_t out_len, uint32_t in_len)
{
    Cmd c = cmd_build(f, 2, lun, 1, cdb, len, out_len, in_len);
    vg_kick(&f->g, 2);
    wait_heads(f, 2, &c.head, 1);
    return c;
}

/* Clear a LUN's power-on unit attention. */
static void clear_ua(Fix *f, unsigned lun)
{
    static const uint8_t tur[6] = { 0 };
    Cmd c = run(f, lun, tur, 6, 0, 0);
    assert_int_equal(response_of(f, &c), 0);
    assert_int_equal(status_of(f, &c), 2);
    c = run(f, lun, tur, 6, 0, 0);
    assert_int_equal(status_of(f, &c), 0);
}

/* Publish a TMF on the control queue (no kick); returns the response address. */
static uint64_t tmf_build(Fix *f, uint32_t subtype, unsigned lun, uint64_t tag, unsigned *head)
{
    uint64_t req = vg_alloc(&f->g, 24), resp = vg_alloc(&f->g, 1);
    uint8_t *p = vg_ptr(&f->g, req);
    uint32_t st = GUINT32_TO_LE(subtype);
    memcpy(p + 4, &st, 4);
    p[8] = 1;
    p[10] = 0x40 | (lun >> 8);
    p[11] = lun & 0xff;
    uint64_t t = GUINT64_TO_LE(tag);
    memcpy(p + 16, &t, 8);
    *(uint8_t *)vg_ptr(&f->g, resp) = 0xee;
    VgBuf b[2] = { { req, 24, false }, { resp, 1, true } };
    *head = vg_chain(&f->g, 0, b, 2);
    vg_publish(&f->g, 0, *head);
    return resp;
}

/* ABORT TASK and LOGICAL UNIT RESET while the command is really in flight in the thread pool. */
static void test_tmf_with_command_in_flight(void **state)
{
    Fix *f = fix_new(1);
    start(f, 0, 1);
    clear_ua(f, 0);
    uint8_t wr[10] = { 0x2a, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0 };     /* 2048 blocks = 1 MiB */
    Cmd c = cmd_build(f, 2, 0, 77, wr, 10, 1u << 20, 0);
    vg_kick(&f->g, 2);                                 /* the write is now in the backend */
    assert_true(vd_scsi_disk_in_flight(vd_virtio_scsi_disk(f->dev, 0)) > 0);
    unsigned th;
    uint64_t tresp = tmf_build(f, VD_VIRTIO_SCSI_T_TMF_ABORT_TASK, 0, 77, &th);
    vg_kick(&f->g, 0);
    /* The TMF is not answered before the command it aborts. */
    assert_int_equal(*(uint8_t *)vg_ptr(&f->g, tresp), 0xee);
    wait_heads(f, 2, &c.head, 1);
    assert_int_equal(response_of(f, &c), VD_VIRTIO_SCSI_S_ABORTED);
    wait_heads(f, 0, &th, 1);
    assert_int_equal(*(uint8_t *)vg_ptr(&f->g, tresp), VD_VIRTIO_SCSI_S_FUNCTION_COMPLETE);

    /* QUERY TASK sees an in-flight command; LOGICAL UNIT RESET ends it with RESET. */
    c = cmd_build(f, 2, 0, 78, wr, 10, 1u << 20, 0);
    vg_kick(&f->g, 2);
    unsigned qh;
    uint64_t qresp = tmf_build(f, VD_VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, 78, &qh);
    vg_kick(&f->g, 0);
    wait_heads(f, 0, &qh, 1);
    assert_int_equal(*(uint8_t *)vg_ptr(&f->g, qresp), VD_VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
    tresp = tmf_build(f, VD_VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, 0, 0, &th);
    vg_kick(&f->g, 0);
    wait_heads(f, 2, &c.head, 1);
    assert_int_equal(response_of(f, &c), VD_VIRTIO_SCSI_S_RESET);
    wait_heads(f, 0, &th, 1);
    assert_int_equal(*(uint8_t *)vg_ptr(&f->g, tresp), VD_VIRTIO_SCSI_S_FUNCTION_COMPLETE);
    fix_free(f);
}

/* Post n event buffers; returns the first buffer's address (they are consecutive 16-byte blocks). */
static uint64_t post_events(Fix *f, unsigned n, unsigned *heads)
{
    uint64_t base = vg_alloc(&f->g, 16 * n);
    for (unsigned i = 0; i < n; i++) {
        VgBuf b = { base + 16 * i, 16, true };
        heads[i] = vg_chain(&f->g, 1, &b, 1);
        vg_publish(&f->g, 1, heads[i]);
    }
    vg_kick(&f->g, 1);
    return base;
}

static uint32_t le32_at(Fix *f, uint64_t a)
{
    return vd_ld_le32(vg_ptr(&f->g, a));
}

/* A LUN added while the driver runs: a RESCAN event (with HOTPLUG), REPORT LUNS and 3F/0E. */
static void test_hotplug(void **state)
{
    Fix *f = fix_new(1);
    start(f, F(VD_VIRTIO_SCSI_F_HOTPLUG), 1);
    clear_ua(f, 0);
    unsigned heads[2];
    uint64_t ev = post_events(f, 2, heads);
    f->extra[f->nextra] = vd_blk_open("driver=null,size=1048576", NULL, NULL);
    assert_true(vd_virtio_scsi_add_lun(f->dev, f->extra[f->nextra++], 5, NULL, NULL));
    uint32_t id, len;
    assert_true(vg_pop_used(&f->g, 1, &id, &len));
    assert_int_equal(id, heads[0]);
    assert_int_equal(len, 16);
    assert_int_equal(le32_at(f, ev), VD_VIRTIO_SCSI_T_TRANSPORT_RESET);
    static const uint8_t lun5[8] = { 1, 0, 0x40, 5, 0, 0, 0, 0 };
    assert_memory_equal(vg_ptr(&f->g, ev + 4), lun5, 8);
    assert_int_equal(le32_at(f, ev + 12), VD_VIRTIO_SCSI_EVT_RESET_RESCAN);
    /* A LUN that is already there is refused. */
    assert_false(vd_virtio_scsi_add_lun(f->dev, f->blk1, 5, NULL, NULL));
    assert_int_equal(vd_virtio_scsi_lun_count(f->dev), 3);

    /* LUN 0 learns through 3F/0E; REPORT LUNS lists 0, 1, 5. */
    static const uint8_t tur[6] = { 0 };
    Cmd c = run(f, 0, tur, 6, 0, 0);
    assert_int_equal(status_of(f, &c), 2);
    uint8_t *sense = vg_ptr(&f->g, c.resp + 12);
    assert_int_equal(sense[12], 0x3f);
    assert_int_equal(sense[13], 0x0e);
    uint8_t rl[12] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0 };
    c = run(f, 0, rl, 12, 0, 64);
    assert_int_equal(status_of(f, &c), 0);
    uint8_t *d = vg_ptr(&f->g, c.data);
    assert_int_equal(d[3], 24);
    assert_int_equal(d[8 + 1], 0);
    assert_int_equal(d[16 + 1], 1);
    assert_int_equal(d[24 + 1], 5);
    fix_free(f);
}

/* With CHANGE, a "parameters changed" unit attention on our nexus is also a PARAM_CHANGE event. */
static void test_param_change_event(void **state)
{
    Fix *f = fix_new(1);
    start(f, F(VD_VIRTIO_SCSI_F_CHANGE), 1);
    clear_ua(f, 1);
    unsigned heads[2];
    uint64_t ev = post_events(f, 2, heads);
    VdScsiDisk *d1 = vd_virtio_scsi_disk(f->dev, 1);
    /* Another initiator (nexus 3, e.g. a second front end) turns LUN 1's write cache off. */
    TCmd t;
    uint8_t ms[6] = { 0x15, 0x10, 0, 0, 24, 0 };
    uint8_t list[24] = { 0, 0, 0, 0, 0x08, 0x12, 0x00 };
    run_nx(d1, &t, 3, (const uint8_t[6]){ 0 }, 6, NULL, 0, NULL, 0);     /* nexus 3's power-on UA */
    run_nx(d1, &t, 3, ms, 6, list, sizeof(list), NULL, 0);
    assert_int_equal(t.req.status, 0);
    uint32_t id, len;
    assert_true(vg_pop_used(&f->g, 1, &id, &len));
    assert_int_equal(id, heads[0]);
    assert_int_equal(le32_at(f, ev), VD_VIRTIO_SCSI_T_PARAM_CHANGE);
    assert_int_equal(((uint8_t *)vg_ptr(&f->g, ev))[7], 1);             /* LUN 1 */
    assert_int_equal(le32_at(f, ev + 12), 0x2a | 0x01 << 8);
    /* The unit attention is still there for the guest's next command. */
    static const uint8_t tur[6] = { 0 };
    Cmd c = run(f, 1, tur, 6, 0, 0);
    assert_int_equal(status_of(f, &c), 2);
    assert_int_equal(((uint8_t *)vg_ptr(&f->g, c.resp + 12))[12], 0x2a);
    /* Other unit attentions (a LUN reset) send no PARAM_CHANGE. */
    vd_scsi_disk_set_unit_attention(d1, 0, VD_SENSE_LUN_RESET);
    assert_false(vg_pop_used(&f->g, 1, &id, &len));
    fix_free(f);
}

/* Without HOTPLUG no event is sent; with no buffers events wait, and overflow sets EVENTS_MISSED. */
static void test_events_waiting_and_missed(void **state)
{
    Fix *f = fix_new(1);
    start(f, 0, 1);
    unsigned heads[VD_VIRTIO_SCSI_EVENTS_PENDING + 2];
    post_events(f, 1, heads);
    f->extra[f->nextra] = vd_blk_open("driver=null,size=1048576", NULL, NULL);
    assert_true(vd_virtio_scsi_add_lun(f->dev, f->extra[f->nextra++], 2, NULL, NULL));
    uint32_t id, len;
    assert_false(vg_pop_used(&f->g, 1, &id, &len));
    fix_free(f);

    f = fix_new(1);
    start(f, F(VD_VIRTIO_SCSI_F_HOTPLUG), 1);
    for (unsigned i = 0; i < VD_VIRTIO_SCSI_EVENTS_PENDING + 1; i++) {
        f->extra[f->nextra] = vd_blk_open("driver=null,size=1048576", NULL, NULL);
        assert_true(vd_virtio_scsi_add_lun(f->dev, f->extra[f->nextra++], 10 + i, NULL, NULL));
    }
    VdVirtioScsiStats st;
    vd_virtio_scsi_get_stats(f->dev, &st);
    assert_int_equal(st.events_missed, 1);
    uint64_t ev = post_events(f, VD_VIRTIO_SCSI_EVENTS_PENDING + 2, heads);
    for (unsigned i = 0; i < VD_VIRTIO_SCSI_EVENTS_PENDING; i++) {
        assert_true(vg_pop_used(&f->g, 1, &id, &len));
        assert_int_equal(id, heads[i]);
        uint32_t e = le32_at(f, ev + 16 * i);
        assert_int_equal(e & ~VD_VIRTIO_SCSI_T_EVENTS_MISSED, VD_VIRTIO_SCSI_T_TRANSPORT_RESET);
        assert_int_equal(!!(e & VD_VIRTIO_SCSI_T_EVENTS_MISSED), i == 0);
        assert_int_equal(((uint8_t *)vg_ptr(&f->g, ev + 16 * i))[7], 10 + i);
    }
    assert_false(vg_pop_used(&f->g, 1, &id, &len));
    fix_free(f);
}

/* The driver may set cdb_size and sense_size: the layout follows; a reset restores 32/96. */
static void test_config_sizes(void **state)
{
    Fix *f = fix_new(1);
    assert_true(vg_negotiate(&f->g, VD_VIRTIO_CORE_FEATURES));
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_SCSI_CFG_CDB_SIZE, 4), 32);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_SCSI_CFG_SENSE_SIZE, 4), 96);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_SCSI_CFG_SEG_MAX, 4), QSIZE - 2);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_SCSI_CFG_CMD_PER_LUN, 4), QSIZE);
    vg_config_write(&f->g, VD_VIRTIO_SCSI_CFG_CDB_SIZE, 16, 4);
    vg_config_write(&f->g, VD_VIRTIO_SCSI_CFG_SENSE_SIZE, 8, 4);
    vg_config_write(&f->g, VD_VIRTIO_SCSI_CFG_MAX_LUN, 3, 4);            /* read-only: ignored */
    vg_config_write(&f->g, VD_VIRTIO_SCSI_CFG_CDB_SIZE, 1000, 4);        /* too big: ignored */
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_SCSI_CFG_CDB_SIZE, 4), 16);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_SCSI_CFG_SENSE_SIZE, 4), 8);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_SCSI_CFG_MAX_LUN, 4), 16383);
    f->cdb_size = 16;
    f->sense_size = 8;
    for (unsigned q = 0; q < 3; q++) {
        assert_true(vg_setup_queue(&f->g, q, QSIZE));
    }
    vg_driver_ok(&f->g);
    /* A 16-byte CDB fits; the 18-byte sense is cut to 8. */
    uint8_t rd16[16] = { 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    Cmd c = run(f, 0, rd16, 16, 0, 512);
    assert_int_equal(status_of(f, &c), 2);                      /* power-on UA */
    assert_int_equal(le32_at(f, c.resp), 8);
    assert_int_equal(((uint8_t *)vg_ptr(&f->g, c.resp + 12))[2], 0x6);
    /* Sense byte 12 (ASC 29h) would be data-in byte 4 if the device wrote past sense_size. */
    assert_int_equal(((uint8_t *)vg_ptr(&f->g, c.data))[4], 0);
    c = run(f, 0, rd16, 16, 0, 512);
    assert_int_equal(status_of(f, &c), 0);
    vg_wr(&f->g, 0x070, 0);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_SCSI_CFG_CDB_SIZE, 4), 32);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_SCSI_CFG_SENSE_SIZE, 4), 96);
    fix_free(f);
}

/* Several request queues all reach the disks. */
static void test_multiqueue(void **state)
{
    Fix *f = fix_new(3);
    assert_int_equal(vd_virtio_scsi_new(&(VdVirtioScsiConf){ .num_queues = 17 }, f->bus, NULL), NULL);
    start(f, 0, 3);
    assert_int_equal(vg_config_read(&f->g, VD_VIRTIO_SCSI_CFG_NUM_QUEUES, 4), 3);
    static const uint8_t tur[6] = { 0 };
    for (unsigned q = 2; q < 5; q++) {
        Cmd c = cmd_build(f, q, 1, q, tur, 6, 0, 0);
        vg_kick(&f->g, q);
        wait_heads(f, q, &c.head, 1);
        assert_int_equal(response_of(f, &c), 0);
    }
    VdVirtioScsiStats st;
    vd_virtio_scsi_get_stats(f->dev, &st);
    assert_int_equal(st.commands, 3);
    GString *s = g_string_new("");
    vd_virtio_scsi_format_stats(f->dev, s);
    assert_non_null(strstr(s->str, "commands=3 "));
    assert_non_null(strstr(s->str, "luns=2"));
    g_string_free(s, TRUE);
    fix_free(f);
}

/*
 * A device reset with I/O in flight finishes from the drain callback: status
 * reads non-zero until the old READ has ended (no loop runs inside the
 * register write), and the old request never reaches the ring.
 */
static void test_reset_with_io_in_flight(void **state)
{
    Fix *f = fix_new(1);
    start(f, 0, 1);
    clear_ua(f, 0);
    uint8_t rd[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0 };
    cmd_build(f, 2, 0, 5, rd, 10, 0, 1u << 20);
    vg_kick(&f->g, 2);
    uint16_t used_before = vg_used_idx(&f->g, 2);
    vg_wr(&f->g, 0x070, 0);
    /* completions come only from the loop, which has not run: the read is still in flight */
    assert_int_not_equal(vg_rd(&f->g, 0x070), 0);
    assert_int_equal(vd_virtio_scsi_in_flight(f->dev), 1);
    assert_true(vg_reset(&f->g));
    assert_int_equal(vd_virtio_scsi_in_flight(f->dev), 0);
    assert_int_equal(vd_blk_in_flight(f->blk), 0);
    for (int i = 0; i < 20; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
    assert_int_equal(vg_used_idx(&f->g, 2), used_before);
    /* Start over: power-on unit attention again. */
    start(f, 0, 1);
    clear_ua(f, 0);
    fix_free(f);
}

/*
 * A driver that reuses heads still in flight publishes more than the queue size: the
 * requests past the in-use limit wait, and are answered once a command completes and
 * frees a slot (the virtio core runs the queue again; virtio-scsi does not have to).
 */
static void test_over_filled_queue(void **state)
{
    Fix *f = fix_new(1);
    start(f, 0, 1);
    static const uint8_t tur[6] = { 0 };
    Cmd c = cmd_build(f, 2, 1, 1, tur, 6, 0, 0);
    for (unsigned i = 1; i < QSIZE; i++) {
        vg_publish(&f->g, 2, c.head);
    }
    vg_kick(&f->g, 2);                                 /* QSIZE commands in flight: the limit */
    assert_int_equal(vd_virtio_scsi_in_flight(f->dev), QSIZE);
    for (unsigned i = 0; i < 4; i++) {
        vg_publish(&f->g, 2, c.head);
    }
    vg_kick(&f->g, 2);                                 /* refused for now */
    assert_int_equal(vd_virtio_scsi_in_flight(f->dev), QSIZE);
    for (int i = 0; i < 1000 && vg_used_idx(&f->g, 2) != QSIZE + 4; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
    assert_int_equal(vg_used_idx(&f->g, 2), QSIZE + 4);
    assert_int_equal(vd_virtio_scsi_in_flight(f->dev), 0);
    assert_int_equal(vg_rd(&f->g, 0x070) & VD_VIRTIO_STATUS_NEEDS_RESET, 0);
    fix_free(f);
}

/* Random request and control chains (sizes, LUN fields, CDBs): every one is answered or breaks the device cleanly. */
static void test_random_chains(void **state)
{
    Fix *f = fix_new(1);
    GRand *rng = g_rand_new_with_seed(4242);
    unsigned answered = 0, resets = 0;
    start(f, 0, 1);
    for (unsigned it = 0; it < 3000; it++) {
        unsigned q = g_rand_int_range(rng, 0, 4) == 0 ? 0 : 2;
        uint32_t out_len = g_rand_int_range(rng, 0, 4) ? (uint32_t)g_rand_int_range(rng, 0, 80) : 51;
        uint32_t in_len = g_rand_int_range(rng, 0, 4) ? (uint32_t)g_rand_int_range(rng, 0, 1200) : 108 + 512;
        uint64_t out = vg_alloc(&f->g, out_len + 1), in = vg_alloc(&f->g, in_len + 1);
        uint8_t *p = vg_ptr(&f->g, out);
        for (uint32_t i = 0; i < out_len; i++) {
            p[i] = g_rand_int_range(rng, 0, 256);
        }
        if (out_len >= 8 && g_rand_boolean(rng)) {
            static const uint8_t good_lun[8] = { 1, 0, 0x40, 0, 0, 0, 0, 0 };
            memcpy(q == 0 ? p + (out_len >= 16 ? 8 : 0) : p, good_lun, 8);
            p[3] = g_rand_int_range(rng, 0, 3);
        }
        if (q == 0 && out_len >= 4) {
            p[0] = g_rand_int_range(rng, 0, 4);
            p[1] = p[2] = p[3] = 0;
        }
        VgBuf b[2] = { { out, out_len, false }, { in, in_len, true } };
        unsigned n = 0;
        VgBuf use[2];
        if (out_len) {
            use[n++] = b[0];
        }
        if (in_len) {
            use[n++] = b[1];
        }
        if (!n) {
            continue;
        }
        unsigned head = vg_chain(&f->g, q, use, n);
        vg_publish(&f->g, q, head);
        vg_kick(&f->g, q);
        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        uint32_t id, len;
        bool got = false;
        while (!(got = vg_pop_used(&f->g, q, &id, &len))) {
            if (vg_rd(&f->g, 0x070) & VD_VIRTIO_STATUS_NEEDS_RESET) {
                break;
            }
            assert_true(g_get_monotonic_time() < deadline);
            g_main_context_iteration(NULL, TRUE);
        }
        if (got) {
            assert_int_equal(id, head);
            assert_true(len <= in_len);
            answered++;
        }
        if (vg_rd(&f->g, 0x070) & VD_VIRTIO_STATUS_NEEDS_RESET) {
            resets++;
            vg_init(&f->g, f->bus, BASE, IRQ);
            start(f, 0, 1);
        }
        if (f->g.heap_end - f->g.heap < (64u << 10)) {
            vg_init(&f->g, f->bus, BASE, IRQ);
            start(f, 0, 1);
        }
    }
    print_message("%u answered, %u device resets\n", answered, resets);
    assert_true(answered > 1000);
    assert_true(resets > 10);
    /* Still working. */
    vg_init(&f->g, f->bus, BASE, IRQ);
    start(f, 0, 1);
    static const uint8_t inq[6] = { 0x12, 0, 0, 0, 36, 0 };
    Cmd c = run(f, 0, inq, 6, 0, 36);
    assert_int_equal(response_of(f, &c), 0);
    assert_int_equal(status_of(f, &c), 0);
    g_rand_free(rng);
    fix_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tmf_with_command_in_flight),
        cmocka_unit_test(test_hotplug),
        cmocka_unit_test(test_param_change_event),
        cmocka_unit_test(test_events_waiting_and_missed),
        cmocka_unit_test(test_config_sizes),
        cmocka_unit_test(test_multiqueue),
        cmocka_unit_test(test_reset_with_io_in_flight),
        cmocka_unit_test(test_over_filled_queue),
        cmocka_unit_test(test_random_chains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
