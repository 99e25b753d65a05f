/*
 * test-vhost-user-server.c - the vhost-user back end against an in-process front
 * end: negotiation, config (the writeback toggle reaching the backend), a
 * real virtio-blk request through a memfd memory table and eventfds,
 * GET_VRING_BASE, a disconnect with a request in flight, reconnection, and
 * a hostile front end (every malformed message drops only its connection).
 * With I/O in flight, for virtio-blk and virtio-scsi: SET_MEM_TABLE (the
 * old mapping stays until every answer is written) and GET_VRING_BASE
 * (every request taken is in the used ring).  The kick sources dispatch
 * without GLib blocking them.
 */
#include "vhost-fe.h"
#include "vhost-user-server-internal.h"

/* Features, queue count, config, and the writeback toggle reaching the backend. */
static void test_negotiation_and_config(void **state)
{
    Fx *f = *state;
    uint64_t feat = get_u64(f, VD_VHOST_USER_GET_FEATURES);
    assert_true(feat & F_PROTOCOL);
    assert_true(feat & (1ull << VD_VIRTIO_BLK_F_CONFIG_WCE));
    assert_true(feat & (1ull << VD_VIRTIO_BLK_F_FLUSH));
    negotiate(f);
    assert_int_equal(get_u64(f, VD_VHOST_USER_GET_QUEUE_NUM), 2);
    uint8_t cfg[VD_VIRTIO_BLK_CONFIG_SIZE];
    get_config(f, cfg);
    uint64_t cap;
    memcpy(&cap, cfg, 8);
    assert_int_equal(cap, IMG_SIZE / 512);
    assert_int_equal(cfg[VD_VIRTIO_BLK_CFG_WRITEBACK], 1);
    assert_true(vd_blk_write_cache(f->blk));
    /* The guest writes 0 to the writeback byte: SET_CONFIG offset 32 size 1. */
    uint8_t set[13] = { 0 };
    uint32_t hdr[3] = { VD_VIRTIO_BLK_CFG_WRITEBACK, 1, 0 };
    memcpy(set, hdr, 12);
    set[12] = 0;
    assert_int_equal(acked(f, VD_VHOST_USER_SET_CONFIG, set, sizeof(set), NULL, 0), 0);
    vd_blk_drain(f->blk);
    assert_false(vd_blk_write_cache(f->blk));
    get_config(f, cfg);
    assert_int_equal(cfg[VD_VIRTIO_BLK_CFG_WRITEBACK], 0);
    /* A value other than 0/1 is ignored by the device. */
    set[12] = 7;
    assert_int_equal(acked(f, VD_VHOST_USER_SET_CONFIG, set, sizeof(set), NULL, 0), 0);
    get_config(f, cfg);
    assert_int_equal(cfg[VD_VIRTIO_BLK_CFG_WRITEBACK], 0);
    /* After a disconnect the device is back at power-on: writeback again. */
    close(f->c);
    f->c = -1;
    pump();
    assert_false(vd_vhost_user_connected(f->srv));
    assert_true(vd_blk_write_cache(f->blk));
}

/* A real request end to end, GET_VRING_BASE, then a disconnect with a request in flight. */
static void test_io_and_reconnect(void **state)
{
    Fx *f = *state;
    negotiate(f);
    setup_ring(f, 0);
    post_write(f, 0, 8, 0xa5, G_DATA);
    assert_true(wait_used(f, 1));
    assert_int_equal(f->mem[G_STATUS - GPA_BASE], VD_VIRTIO_BLK_S_OK);
    eventfd_t calls = 0;
    assert_int_equal(eventfd_read(f->call, &calls), 0);
    assert_true(calls >= 1);
    uint8_t buf[4096];
    assert_int_equal(vd_blk_pread_sync(f->blk, 8 * 512, buf, 4096), 0);
    assert_int_equal(buf[0], 0xa5);
    assert_int_equal(buf[4095], 0xa5);

    /* GET_VRING_BASE stops the ring and says where: 1. */
    uint32_t st[2] = { 0, 0 };
    send_msg(f, VD_VHOST_USER_GET_VRING_BASE, 1, st, 8, NULL, 0);
    assert_int_equal(recv_reply(f, VD_VHOST_USER_GET_VRING_BASE, st, 8), 8);
    assert_int_equal(st[1], 1);
    /* A stopped ring ignores the guest: nothing is taken until the front end restarts it. */
    post_write(f, 1, 16, 0x5a, G_DATA);
    for (int i = 0; i < 20; i++) {
        pump();
        g_usleep(1000);
    }
    assert_int_equal(used_idx(f), 1);
    /* Restart from 1: the queued request runs now. */
    setup_ring(f, 1);
    assert_true(wait_used(f, 2));
    assert_int_equal(f->mem[G_STATUS + 1 - GPA_BASE], VD_VIRTIO_BLK_S_OK);
    /* Another write, and the front end vanishes before it completes. */
    post_write(f, 2, 24, 0x77, G_DATA);
    g_main_context_iteration(NULL, FALSE);   /* the kick: the request goes to the backend */
    close(f->c);   /* the front end dies with the request in flight */
    f->c = -1;
    for (int i = 0; i < 200 && vd_vhost_user_connected(f->srv); i++) {
        pump();
        g_usleep(1000);
    }
    assert_false(vd_vhost_user_connected(f->srv));
    assert_int_equal(vd_blk_in_flight(f->blk), 0);
    VdVhostUserStats s;
    vd_vhost_user_get_stats(f->srv, &s);
    assert_int_equal(s.disconnects, 1);
    assert_int_equal(s.bad_messages, 0);
    /* Nothing lost: the request completed into the used ring and its data is on disk. */
    assert_int_equal(used_idx(f), 3);
    assert_int_equal(f->mem[G_STATUS + 2 - GPA_BASE], VD_VIRTIO_BLK_S_OK);
    assert_int_equal(vd_blk_pread_sync(f->blk, 16 * 512, buf, 4096), 0);
    assert_int_equal(buf[0], 0x5a);
    assert_int_equal(vd_blk_pread_sync(f->blk, 24 * 512, buf, 4096), 0);
    assert_int_equal(buf[0], 0x77);
    assert_int_equal(buf[4095], 0x77);

    /* A new front end is accepted and served. */
    f->c = connect_front_end(f);
    assert_true(vd_vhost_user_connected(f->srv));
    assert_true(get_u64(f, VD_VHOST_USER_GET_FEATURES) & F_PROTOCOL);
}

/*
 * A ring's kick source may dispatch again inside its own dispatch: GLib
 * blocking it would take its fd out of the poll set and put it back, two
 * wake-up writes and a read per kick.  That is safe because vd_virtq_run
 * never nests: a nested kick only marks the ring to run again.
 */
static void test_kick_source_no_block(void **state)
{
    Fx *f = *state;
    negotiate(f);
    setup_ring(f, 0);
    post_write(f, 0, 8, 0xa5, G_DATA);
    assert_true(wait_used(f, 1));   /* the ring is started and its source has dispatched */
    GSource *src = f->srv->rings[0].kick_src;
    assert_non_null(src);
    assert_true(g_source_get_can_recurse(src));
}

/* A descriptor pointing outside the memory table breaks the device, not the process. */
static void test_hostile_descriptor(void **state)
{
    Fx *f = *state;
    negotiate(f);
    setup_ring(f, 0);
    post_write(f, 0, 0, 0x11, GPA_BASE + MEM_SIZE - 100);   /* runs past the end of guest memory */
    assert_true(wait_used(f, 1));
    assert_true(vd_virtio_broken(vd_virtio_blk_device(f->dev)));
    uint8_t buf[512];
    assert_int_equal(vd_blk_pread_sync(f->blk, 0, buf, 512), 0);
    assert_int_equal(buf[0], 0);   /* nothing was written */
}

/* One malformed message per connection: each must drop that connection and nothing else. */
typedef struct Hostile {
    const char *what;
    uint32_t req, flags, size;
    uint8_t payload[64];
    bool with_fd;
} Hostile;

static void test_hostile_messages(void **state)
{
    Fx *f = *state;
    static const Hostile cases[] = {
        { "bad version", VD_VHOST_USER_GET_FEATURES, 0x2, 0, { 0 }, false },
        { "reply flag in a request", VD_VHOST_USER_GET_FEATURES, 0x5, 0, { 0 }, false },
        { "payload too big", VD_VHOST_USER_SET_FEATURES, 1, 5000, { 0 }, false },
        { "SET_FEATURES short", VD_VHOST_USER_SET_FEATURES, 1, 4, { 0 }, false },
        { "ring index out of range", VD_VHOST_USER_SET_VRING_NUM, 1, 8, { 99 }, false },
        { "kick ring out of range", VD_VHOST_USER_SET_VRING_KICK, 1, 8, { 200 }, true },
        { "kick without fd", VD_VHOST_USER_SET_VRING_KICK, 1, 8, { 0 }, false },
        { "mem table 9 regions", VD_VHOST_USER_SET_MEM_TABLE, 1, 8, { 9 }, false },
        { "mem table fd count", VD_VHOST_USER_SET_MEM_TABLE, 1, 40, { 1 }, false },
        { "config past the end", VD_VHOST_USER_GET_CONFIG, 1, 12 + 60, { 250, 0, 0, 0, 60 }, false },
        { "config size mismatch", VD_VHOST_USER_SET_CONFIG, 1, 13, { 32, 0, 0, 0, 8 }, false },
        { "enable value 2", VD_VHOST_USER_SET_VRING_ENABLE, 1, 8, { 0, 0, 0, 0, 2 }, false },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        const Hostile *h = &cases[i];
        if (f->c < 0) {
            f->c = connect_front_end(f);
        }
        uint8_t payload[5000] = { 0 };
        memcpy(payload, h->payload, sizeof(h->payload));
        if (h->size > 512) {
            uint32_t hdr[3] = { h->req, h->flags, h->size };
            assert_int_equal(send(f->c, hdr, 12, MSG_NOSIGNAL), 12);
        } else {
            send_msg(f, h->req, h->flags, payload, h->size, &f->kick, h->with_fd ? 1 : 0);
        }
        print_message("hostile: %s\n", h->what);
        assert_true(dropped(f));
        close(f->c);
        f->c = -1;
    }
    VdVhostUserStats s;
    vd_vhost_user_get_stats(f->srv, &s);
    assert_int_equal(s.bad_messages, G_N_ELEMENTS(cases));
    assert_int_equal(s.disconnects, G_N_ELEMENTS(cases));
    /* The server still serves. */
    f->c = connect_front_end(f);
    assert_true(get_u64(f, VD_VHOST_USER_GET_FEATURES) & F_PROTOCOL);
}

/* Well-formed but unacceptable requests are refused with a REPLY_ACK failure; the connection stays. */
static void test_refusals(void **state)
{
    Fx *f = *state;
    negotiate(f);
    assert_int_not_equal(set_mem_table(f, MEM_SIZE * 2), 0);   /* region beyond the memfd */
    int memfd = f->memfd;
    f->memfd = f->kick;   /* an eventfd is no memory */
    assert_int_not_equal(set_mem_table(f, MEM_SIZE), 0);
    f->memfd = memfd;
    uint32_t num[2] = { 0, 3 };
    assert_int_not_equal(acked(f, VD_VHOST_USER_SET_VRING_NUM, num, 8, NULL, 0), 0);   /* not a power of 2 */
    num[1] = 2048;
    assert_int_not_equal(acked(f, VD_VHOST_USER_SET_VRING_NUM, num, 8, NULL, 0), 0);   /* above 1024 */
    num[1] = QSZ / 2;
    assert_int_not_equal(acked(f, VD_VHOST_USER_SET_VRING_NUM, num, 8, NULL, 0), 0);   /* below seg_max + 2 */
    uint8_t addr[40] = { 0 };
    uint64_t a[4] = { 0x1000, 0x2000, 0x3000, 0 };   /* not in the memory table */
    memcpy(addr + 8, a, 32);
    assert_int_not_equal(acked(f, VD_VHOST_USER_SET_VRING_ADDR, addr, 40, NULL, 0), 0);
    assert_int_not_equal(acked(f, 99, NULL, 0, NULL, 0), 0);   /* unknown request */
    uint64_t log[2] = { 4096, 0 };
    assert_int_not_equal(acked(f, VD_VHOST_USER_SET_LOG_BASE, log, 16, NULL, 0), 0);   /* no log fd */
    uint64_t pf = 1ull << 20;
    assert_int_not_equal(acked(f, VD_VHOST_USER_SET_PROTOCOL_FEATURES, &pf, 8, NULL, 0), 0);
    assert_true(vd_vhost_user_connected(f->srv));
    VdVhostUserStats s;
    vd_vhost_user_get_stats(f->srv, &s);
    assert_int_equal(s.bad_messages, 0);
    assert_int_equal(s.refused_rings, 3);
    g_autoptr(GString) text = g_string_new(NULL);
    vd_vhost_user_format_stats(f->srv, text);
    assert_non_null(strstr(text->str, " refused_rings=3"));
}

/* Every power of two from the device's queue size (QSZ here) up to 1024 is taken, on any ring. */
static void test_ring_sizes(void **state)
{
    Fx *f = *state;
    negotiate(f);
    for (uint32_t n = QSZ; n <= VD_VHOST_USER_MAX_RING; n *= 2) {
        uint32_t num[2] = { n == 1024 ? 1 : 0, n };
        assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_NUM, num, 8, NULL, 0), 0);
        assert_int_equal(vd_virtq_size(vd_virtio_queue(vd_virtio_blk_device(f->dev), num[0])), n);
    }
    /* The seg_max the guest reads still fits the smallest ring taken. */
    uint8_t cfg[VD_VIRTIO_BLK_CONFIG_SIZE];
    get_config(f, cfg);
    uint32_t seg_max;
    memcpy(&seg_max, cfg + VD_VIRTIO_BLK_CFG_SEG_MAX, 4);
    assert_int_equal(seg_max, QSZ - 2);
    VdVhostUserStats s;
    vd_vhost_user_get_stats(f->srv, &s);
    assert_int_equal(s.refused_rings, 0);
}

/* The next back-end request on our end of the back-end channel (its header), or req 0 if none comes. */
static uint32_t backend_request(int fd, uint32_t *flags)
{
    uint32_t h[3] = { 0, 0, 0 };
    for (int i = 0; i < 500; i++) {
        pump();
        if (recv(fd, h, sizeof(h), MSG_DONTWAIT) == (ssize_t)sizeof(h)) {
            break;
        }
        g_usleep(1000);
    }
    *flags = h[1];
    return h[0];
}

/* A host-side write-cache change reaches the front end: CONFIG_CHANGE_MSG on the back-end channel, then
 * GET_CONFIG shows the new writeback byte. */
static void test_backend_config_change(void **state)
{
    Fx *f = *state;
    negotiate(f);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(acked(f, VD_VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1), 0);
    close(sv[1]);
    setup_ring(f, 0);   /* the driver is up (DRIVER_OK): config interrupts are raised from now on */
    uint8_t cfg[VD_VIRTIO_BLK_CONFIG_SIZE];
    get_config(f, cfg);
    assert_int_equal(cfg[VD_VIRTIO_BLK_CFG_WRITEBACK], 1);
    assert_int_equal(vd_blk_set_write_cache_sync(f->blk, false), 0);   /* the host, not the guest */
    uint32_t flags;
    assert_int_equal(backend_request(sv[0], &flags), VD_VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
    assert_int_equal(flags, VD_VHOST_USER_VERSION);   /* no NEED_REPLY: nobody waits for the front end */
    get_config(f, cfg);
    assert_int_equal(cfg[VD_VIRTIO_BLK_CFG_WRITEBACK], 0);
    VdVhostUserStats s;
    vd_vhost_user_get_stats(f->srv, &s);
    assert_int_equal(s.config_changes, 1);
    /* Back on: told again. */
    assert_int_equal(vd_blk_set_write_cache_sync(f->blk, true), 0);
    assert_int_equal(backend_request(sv[0], &flags), VD_VHOST_USER_BACKEND_CONFIG_CHANGE_MSG);
    get_config(f, cfg);
    assert_int_equal(cfg[VD_VIRTIO_BLK_CFG_WRITEBACK], 1);
    close(sv[0]);
}

/* SET_BACKEND_REQ_FD before BACKEND_REQ was negotiated, or without a socket, is refused. */
static void test_backend_channel_refused(void **state)
{
    Fx *f = *state;
    uint64_t pf = (1u << VD_VHOST_USER_PROTOCOL_F_REPLY_ACK);
    send_msg(f, VD_VHOST_USER_SET_PROTOCOL_FEATURES, 1, &pf, 8, NULL, 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_not_equal(acked(f, VD_VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1), 0);
    pf |= 1u << VD_VHOST_USER_PROTOCOL_F_BACKEND_REQ;
    send_msg(f, VD_VHOST_USER_SET_PROTOCOL_FEATURES, 1, &pf, 8, NULL, 0);
    assert_int_not_equal(acked(f, VD_VHOST_USER_SET_BACKEND_REQ_FD, NULL, 0, NULL, 0), 0);
    assert_true(vd_vhost_user_connected(f->srv));
    close(sv[0]);
    close(sv[1]);
}

/* Random messages (deterministic seed), 20 per connection: the server survives all and still serves. */
static void test_random_messages(void **state)
{
    Fx *f = *state;
    GRand *rnd = g_rand_new_with_seed(20261121);
    static const uint32_t flag_choices[] = { 1, 1, 1, 1 | VD_VHOST_USER_NEED_REPLY, 1 | VD_VHOST_USER_NEED_REPLY,
                                             0, 2, 5 };
    for (int i = 0; i < 400; i++) {
        /* Read away replies; reconnect if the server hung up on the previous message. */
        char sink[4096];
        ssize_t got;
        while ((got = recv(f->c, sink, sizeof(sink), MSG_DONTWAIT)) > 0) {
        }
        if (got == 0 || i % 50 == 0) {
            close(f->c);
            f->c = connect_front_end(f);
        }
        uint8_t payload[300];
        for (size_t k = 0; k < sizeof(payload); k++) {
            payload[k] = g_rand_int(rnd);
        }
        uint32_t req = g_rand_int_range(rnd, 0, 40);
        uint32_t flags = flag_choices[g_rand_int_range(rnd, 0, G_N_ELEMENTS(flag_choices))];
        uint32_t size = g_rand_boolean(rnd) ? g_rand_int_range(rnd, 0, 300) : 8 * g_rand_int_range(rnd, 0, 6);
        int fds[2] = { f->memfd, f->call };
        unsigned nfds = g_rand_int_range(rnd, 0, 3);
        uint32_t h[3] = { req, flags, size };
        struct iovec iov[2] = { { h, 12 }, { payload, size } };
        vd_send_with_fds(f->c, iov, 2, fds, nfds, MSG_DONTWAIT);   /* may fail once the server hung up */
        pump();
    }
    g_rand_free(rnd);
    close(f->c);
    f->c = connect_front_end(f);
    assert_true(get_u64(f, VD_VHOST_USER_GET_FEATURES) & F_PROTOCOL);
    assert_int_equal(vd_blk_in_flight(f->blk), 0);
    VdVhostUserStats st;
    vd_vhost_user_get_stats(f->srv, &st);
    print_message("random: %" G_GUINT64_FORMAT " messages handled, %" G_GUINT64_FORMAT " malformed, %"
                  G_GUINT64_FORMAT " refused\n", st.messages, st.bad_messages, st.unsupported);
    assert_true(st.messages > 150 && st.bad_messages > 20);   /* both paths were exercised */
}

/* ---- drain with I/O in flight (issue 17 #1 and #2), for virtio-blk and virtio-scsi ---- */
#define BIG_MEM     (34u << 20)                     /* rings and headers, then the data buffer */
#define BIG_IMG     (64u << 20)
#define BIG_QSZ     128
#define B_RING(i)   (GPA_BASE + 0x4000ull * (i))    /* desc +0, avail +0x800, used +0x1000 */
#define B_HDR(n)    (GPA_BASE + 0x10000 + 0x100ull * (n))
#define B_RESP(n)   (GPA_BASE + 0x20000 + 0x100ull * (n))
#define B_DATA      (GPA_BASE + (1u << 20))
#define SCSI_REQ    (VD_VIRTIO_SCSI_REQ_HDR + VD_VIRTIO_SCSI_CDB_DEFAULT)
#define SCSI_RESP   (VD_VIRTIO_SCSI_RESP_HDR + VD_VIRTIO_SCSI_SENSE_DEFAULT)
#define SCSI_READ_BLOCKS 65535u                     /* READ(10) of 65535 blocks, as the fuzzer sent */
#define BLK_READ_BYTES   (1u << 20)                 /* virtio-blk: one segment of SIZE_MAX */

/* The virtio-scsi server's drain op. */
static void drain_scsi(void *opaque, VdDrainFunc *cb, void *cb_opaque)
{
    vd_virtio_scsi_drain(opaque, cb, cb_opaque);
}

static const VdVhostUserDeviceOps scsi_ops = { .drain = drain_scsi };

/* A 64 MiB image behind virtio-blk or virtio-scsi (one request queue), BIG_MEM of guest memory, connected. */
static void big_new(void **state, bool scsi)
{
    Fx *f = fx_new(BIG_IMG);
    /* virtio-blk answers straight from the backend callback: hold its reads in the mock driver */
    static const MockConfig mock = { .fua = VD_FUA_NATIVE, .dsync = true, .zero = true };
    mock_reset(&mock);
    g_autofree char *o = scsi ? g_strdup_printf("file=%s,cache=writeback", f->img)
                              : g_strdup_printf("driver=mock,size=%u", BIG_IMG);
    f->blk = vd_blk_open(o, NULL, NULL);
    assert_non_null(f->blk);
    if (scsi) {
        VdVirtioScsiConf conf = { .num_queues = 1, .queue_size = BIG_QSZ };
        f->scsi = vd_virtio_scsi_new(&conf, NULL, NULL);
        assert_non_null(f->scsi);
        assert_true(vd_virtio_scsi_add_lun(f->scsi, f->blk, 0, NULL, NULL));
        f->srv = vd_vhost_user_server_new(f->sock, vd_virtio_scsi_device(f->scsi), &scsi_ops, f->scsi, NULL, NULL);
    } else {
        VdVirtioBlkConf conf = { .num_queues = 1, .queue_size = BIG_QSZ };
        f->dev = vd_virtio_blk_new(f->blk, &conf, NULL, NULL);
        assert_non_null(f->dev);
        f->srv = vd_vhost_user_server_new(f->sock, vd_virtio_blk_device(f->dev), &dev_ops, f->dev, NULL, NULL);
    }
    assert_non_null(f->srv);
    guest_memory_new(f, BIG_MEM);
    *state = f;
    f->c = connect_front_end(f);
}

/* cmocka setup: virtio-blk on the mock driver. */
static int setup_big_blk(void **state) { big_new(state, false); return 0; }
/* cmocka setup: virtio-scsi on an image file. */
static int setup_big_scsi(void **state) { big_new(state, true); return 0; }

/* Requests the device took whose answer is not yet in guest memory. */
static unsigned in_flight(Fx *f)
{
    return f->scsi ? vd_virtio_scsi_in_flight(f->scsi) : vd_virtio_blk_in_flight(f->dev);
}

/* The ring that carries reads: virtio-scsi's first request queue, virtio-blk's queue 0. */
static unsigned io_ring(Fx *f)
{
    return f->scsi ? 2 : 0;
}

/* Used index of ring i in guest memory. */
static uint16_t ring_used(Fx *f, unsigned i)
{
    uint16_t v;
    memcpy(&v, f->mem + B_RING(i) + 0x1000 + 2 - GPA_BASE, 2);
    return v;
}

/* Configure, start and enable ring i at the B_RING layout. */
static void big_ring(Fx *f, unsigned i)
{
    uint32_t num[2] = { i, BIG_QSZ };
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_NUM, num, 8, NULL, 0), 0);
    uint8_t addr[40] = { 0 };
    uint64_t base = UVA_BASE + (B_RING(i) - GPA_BASE);
    uint64_t a[4] = { base, base + 0x1000, base + 0x800, 0 };   /* desc, used, avail, log */
    memcpy(addr, &i, 4);
    memcpy(addr + 8, a, 32);
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_ADDR, addr, 40, NULL, 0), 0);
    uint32_t b[2] = { i, 0 };
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_BASE, b, 8, NULL, 0), 0);
    uint64_t idx = i;
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_CALL, &idx, 8, &f->call, 1), 0);
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_KICK, &idx, 8, &f->kicks[i], 1), 0);
    uint32_t en[2] = { i, 1 };
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_ENABLE, en, 8, NULL, 0), 0);
}

/* Negotiate, map BIG_MEM, start the rings the device uses. */
static void big_start(Fx *f)
{
    negotiate_features(f, (1ull << VD_VIRTIO_F_VERSION_1) | F_PROTOCOL);
    assert_int_equal(set_mem_table(f, BIG_MEM), 0);
    big_ring(f, 0);
    if (f->scsi) {
        big_ring(f, 2);
    }
}

/* Publish a chain of three descriptors (readable first) as avail entry n of ring i. */
static void post_chain(Fx *f, unsigned i, unsigned n, const uint64_t desc[3][2], unsigned nout)
{
    unsigned d = 3 * n;
    for (unsigned k = 0; k < 3; k++) {
        uint64_t at = B_RING(i) + 16 * (d + k);
        g64(f, at, desc[k][0]);
        g32(f, at + 8, desc[k][1]);
        g16(f, at + 12, (k < 2 ? VD_VRING_DESC_F_NEXT : 0) | (k >= nout ? VD_VRING_DESC_F_WRITE : 0));
        g16(f, at + 14, d + k + 1);
    }
    g16(f, B_RING(i) + 0x800 + 4 + 2 * (n % BIG_QSZ), d);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    g16(f, B_RING(i) + 0x800 + 2, n + 1);
}

/* A long read as avail entry n of the I/O ring (virtio-blk IN of 1 MiB; READ(10) of 65535 blocks). */
static void post_read(Fx *f, unsigned n)
{
    memset(f->mem + B_RESP(n) - GPA_BASE, 0xff, SCSI_RESP);
    if (f->scsi) {
        uint8_t *h = f->mem + B_HDR(n) - GPA_BASE;
        static const uint8_t lun[8] = { 1, 0, 0x40, 0 };
        memset(h, 0, SCSI_REQ);
        memcpy(h, lun, 8);
        g64(f, B_HDR(n) + 8, n);                                  /* tag */
        uint8_t cdb[10] = { 0x28, 0, 0, 0, 0, 0, 0, SCSI_READ_BLOCKS >> 8, SCSI_READ_BLOCKS & 0xff, 0 };
        memcpy(h + VD_VIRTIO_SCSI_REQ_HDR, cdb, sizeof(cdb));
        const uint64_t desc[3][2] = { { B_HDR(n), SCSI_REQ }, { B_RESP(n), SCSI_RESP },
                                      { B_DATA, SCSI_READ_BLOCKS * 512ull } };
        post_chain(f, io_ring(f), n, desc, 1);
        return;
    }
    g32(f, B_HDR(n), VD_VIRTIO_BLK_T_IN);
    g32(f, B_HDR(n) + 4, 0);
    g64(f, B_HDR(n) + 8, 0);
    const uint64_t desc[3][2] = { { B_HDR(n), 16 }, { B_DATA, BLK_READ_BYTES }, { B_RESP(n), 1 } };
    post_chain(f, io_ring(f), n, desc, 1);
}

/* The answer of read n as written to guest memory: the virtio-scsi response byte, the virtio-blk status. */
static uint8_t read_answer(Fx *f, unsigned n)
{
    return f->mem[B_RESP(n) + (f->scsi ? 11 : 0) - GPA_BASE];
}

/* Release the held mock reads after a pause, from another thread. */
static gpointer release_later(gpointer unused)
{
    g_usleep(100 * 1000);
    mock_release(MOCK_READ);
    return NULL;
}

/*
 * Queue and kick count reads, and let the server take them (one loop
 * iteration: nothing can complete yet).  virtio-blk's reads are held in the
 * mock driver and released 100 ms later; the returned thread is joined by
 * reads_join.
 */
static GThread *reads_in_flight(Fx *f, unsigned count)
{
    GThread *t = NULL;
    if (!f->scsi) {
        mock_hold(MOCK_READ);
    }
    for (unsigned n = 0; n < count; n++) {
        post_read(f, n);
    }
    eventfd_write(f->kicks[io_ring(f)], 1);
    g_main_context_iteration(NULL, FALSE);
    assert_int_equal(in_flight(f), count);
    if (!f->scsi) {
        mock_wait_held(MOCK_READ, 1);
        t = g_thread_new("release", release_later, NULL);
    }
    return t;
}

/* Join the releasing thread, if any. */
static void reads_join(GThread *t)
{
    if (t) {
        g_thread_join(t);
    }
}

/* Send SET_MEM_TABLE (NEED_REPLY) with the same memfd plus one new region; the ack is read later. */
static void mem_table_plus_one_send(Fx *f)
{
    int extra = memfd_create("hotplug", MFD_CLOEXEC);
    assert_int_equal(ftruncate(extra, 1 << 20), 0);
    uint8_t p[8 + 64] = { 0 };
    uint32_t n = 2;
    uint64_t r[8] = { GPA_BASE, BIG_MEM, UVA_BASE, 0, 0x40000000, 1 << 20, UVA_BASE + 0x40000000, 0 };
    memcpy(p, &n, 4);
    memcpy(p + 8, r, 64);
    int fds[2] = { f->memfd, extra };
    send_msg(f, VD_VHOST_USER_SET_MEM_TABLE, VD_VHOST_USER_VERSION | VD_VHOST_USER_NEED_REPLY, p, sizeof(p), fds, 2);
    close(extra);
}

/* Read the REPLY_ACK of SET_MEM_TABLE (0: success). */
static uint64_t mem_table_ack(Fx *f)
{
    uint64_t v = 99;
    assert_int_equal(recv_reply(f, VD_VHOST_USER_SET_MEM_TABLE, &v, sizeof(v)), 8);
    return v;
}

/* SET_MEM_TABLE with the same memfd plus one new region, acked. */
static void mem_table_plus_one(Fx *f)
{
    mem_table_plus_one_send(f);
    assert_int_equal(mem_table_ack(f), 0);
}

/*
 * SET_MEM_TABLE with 40 long reads in flight: every answer lands before the
 * old mapping goes.  A read queued and kicked while the message waits is
 * remembered and served through the new table.
 */
static void test_mem_table_with_io_in_flight(void **state)
{
    Fx *f = *state;
    big_start(f);
    GThread *t = reads_in_flight(f, 40);
    mem_table_plus_one_send(f);
    post_read(f, 40);
    eventfd_write(f->kicks[io_ring(f)], 1);
    pump();
    assert_int_equal(mem_table_ack(f), 0);
    reads_join(t);
    assert_true(ring_used(f, io_ring(f)) >= 40);
    for (unsigned n = 0; n < 40; n++) {
        assert_int_equal(read_answer(f, n), 0);   /* VIRTIO_SCSI_S_OK / VIRTIO_BLK_S_OK */
    }
    for (int i = 0; i < 5000 && ring_used(f, io_ring(f)) != 41; i++) {
        pump();
        g_usleep(1000);
    }
    assert_int_equal(ring_used(f, io_ring(f)), 41);
    assert_int_equal(read_answer(f, 40), 0);
}

/* SET_MEM_TABLE while an ABORT TASK of an unknown tag waits for the idle source to answer it. */
static void test_mem_table_with_tmf_pending(void **state)
{
    Fx *f = *state;
    big_start(f);
    uint8_t *h = f->mem + B_HDR(0) - GPA_BASE;
    static const uint8_t lun[8] = { 1, 0, 0x40, 0 };
    memset(h, 0, VD_VIRTIO_SCSI_TMF_REQ);
    g32(f, B_HDR(0), VD_VIRTIO_SCSI_T_TMF);
    g32(f, B_HDR(0) + 4, VD_VIRTIO_SCSI_T_TMF_ABORT_TASK);
    memcpy(h + 8, lun, 8);
    g64(f, B_HDR(0) + 16, 0xdead);
    f->mem[B_RESP(0) - GPA_BASE] = 0xff;
    f->mem[B_RESP(1) - GPA_BASE] = 0xff;
    const uint64_t desc[3][2] = { { B_HDR(0), VD_VIRTIO_SCSI_TMF_REQ }, { B_RESP(0), 1 }, { B_RESP(1), 1 } };
    post_chain(f, 0, 0, desc, 1);
    eventfd_write(f->kicks[0], 1);
    g_main_context_iteration(NULL, FALSE);
    assert_int_equal(in_flight(f), 1);
    mem_table_plus_one(f);
    assert_int_equal(in_flight(f), 0);
    assert_int_equal(ring_used(f, 0), 1);
    assert_int_equal(f->mem[B_RESP(0) - GPA_BASE], VD_VIRTIO_SCSI_S_FUNCTION_COMPLETE);
}

/* GET_VRING_BASE with 21 reads in flight: last_avail 21, and all 21 are in the used ring. */
static void test_get_vring_base_with_io_in_flight(void **state)
{
    Fx *f = *state;
    big_start(f);
    GThread *t = reads_in_flight(f, 21);
    uint32_t st[2] = { io_ring(f), 0 };
    send_msg(f, VD_VHOST_USER_GET_VRING_BASE, 1, st, 8, NULL, 0);
    assert_int_equal(recv_reply(f, VD_VHOST_USER_GET_VRING_BASE, st, 8), 8);
    reads_join(t);
    assert_int_equal(st[0], io_ring(f));
    assert_int_equal(st[1], 21);
    assert_int_equal(ring_used(f, io_ring(f)), 21);
    assert_int_equal(in_flight(f), 0);
    for (unsigned n = 0; n < 21; n++) {
        assert_int_equal(read_answer(f, n), 0);
    }
}

/* SET_VRING_ENABLE 0 with 21 reads in flight: the ack comes once all 21 are in the used ring. */
static void test_vring_disable_with_io_in_flight(void **state)
{
    Fx *f = *state;
    big_start(f);
    GThread *t = reads_in_flight(f, 21);
    uint32_t en[2] = { io_ring(f), 0 };
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_ENABLE, en, 8, NULL, 0), 0);
    reads_join(t);
    assert_int_equal(ring_used(f, io_ring(f)), 21);
    assert_int_equal(in_flight(f), 0);
    for (unsigned n = 0; n < 21; n++) {
        assert_int_equal(read_answer(f, n), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_negotiation_and_config, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_io_and_reconnect, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_kick_source_no_block, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_descriptor, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_messages, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_ring_sizes, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_backend_config_change, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_backend_channel_refused, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_random_messages, setup_server, teardown),
        { "mem_table_with_io_in_flight/blk", test_mem_table_with_io_in_flight, setup_big_blk, teardown, NULL },
        { "mem_table_with_io_in_flight/scsi", test_mem_table_with_io_in_flight, setup_big_scsi, teardown, NULL },
        { "mem_table_with_tmf_pending/scsi", test_mem_table_with_tmf_pending, setup_big_scsi, teardown, NULL },
        { "get_vring_base_with_io_in_flight/blk", test_get_vring_base_with_io_in_flight, setup_big_blk, teardown,
          NULL },
        { "get_vring_base_with_io_in_flight/scsi", test_get_vring_base_with_io_in_flight, setup_big_scsi, teardown,
          NULL },
        { "vring_disable_with_io_in_flight/blk", test_vring_disable_with_io_in_flight, setup_big_blk, teardown,
          NULL },
        { "vring_disable_with_io_in_flight/scsi", test_vring_disable_with_io_in_flight, setup_big_scsi, teardown,
          NULL },
    };
    if (g_getenv("VD_TEST_FILTER")) {
        cmocka_set_test_filter(g_getenv("VD_TEST_FILTER"));   /* run one test (e.g. to check a mutation) */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
