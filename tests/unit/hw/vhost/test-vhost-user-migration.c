/*
 * test-vhost-user-migration.c - what the vhost-user back end does for live
 * migration, at the message level: the dirty log (VHOST_F_LOG_ALL,
 * LOG_SHMFD, SET_LOG_BASE, the used ring logged at log_guest_addr) and the
 * image hand-over with the vring life cycle (GET_VRING_BASE of the last
 * ring releases the image, the first ring start takes it; a destination
 * cannot start while the source holds the write lock).
 */
#include "vhost-fe.h"

#define LOG_BYTES   4096
#define LOG_OFFSET  100                   /* not page aligned: the back end maps from 0 */
#define G_LOG_USED  0x40ffcull            /* log_guest_addr: used idx on page 0x40, the entries from page 0x41 */
#define PAGE(gpa)   ((gpa) / 4096)

/* A log memfd of bytes (plus LOG_OFFSET), mapped here too. */
typedef struct Log {
    int fd;
    uint8_t *map;
    size_t len;
} Log;

/* Make a zeroed log file of LOG_OFFSET + bytes + one guard page. */
static Log log_new(size_t bytes)
{
    Log l = { .len = LOG_OFFSET + bytes + 4096 };
    l.fd = memfd_create("log", MFD_CLOEXEC);
    assert_int_equal(ftruncate(l.fd, l.len), 0);
    l.map = mmap(NULL, l.len, PROT_READ | PROT_WRITE, MAP_SHARED, l.fd, 0);
    assert_true(l.map != MAP_FAILED);
    return l;
}

/* Unmap and close a log. */
static void log_free(Log *l)
{
    munmap(l->map, l->len);
    close(l->fd);
}

/* True if the log has page's bit set. */
static bool logged(const Log *l, uint64_t page)
{
    return l->map[LOG_OFFSET + page / 8] & (1u << (page % 8));
}

/* Number of bits set in the whole file (the guard included). */
static unsigned bits_set(const Log *l)
{
    unsigned n = 0;
    for (size_t i = 0; i < l->len; i++) {
        n += __builtin_popcount(l->map[i]);
    }
    return n;
}

/* SET_LOG_BASE (size, offset, fd or none); returns the back end's reply (0 mapped), or -1 for an ack failure. */
static int64_t set_log_base(Fx *f, uint64_t size, uint64_t offset, int fd)
{
    uint64_t p[2] = { size, offset };
    uint64_t v = 99;
    send_msg(f, VD_VHOST_USER_SET_LOG_BASE, VD_VHOST_USER_VERSION | VD_VHOST_USER_NEED_REPLY, p, 16,
             fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
    assert_int_equal(recv_reply(f, VD_VHOST_USER_SET_LOG_BASE, &v, sizeof(v)), 8);
    return fd >= 0 ? (int64_t)v : (v ? -1 : 0);
}

/* What QEMU does when migration starts: protocol LOG_SHMFD, SET_LOG_BASE, LOG_ALL, the ring's log flag. */
static void start_logging(Fx *f, const Log *l, uint64_t log_used)
{
    assert_int_equal(set_log_base(f, LOG_BYTES, LOG_OFFSET, l->fd), 0);
    uint64_t feat = ACK_FEATURES | (1ull << VD_VHOST_F_LOG_ALL);
    assert_int_equal(acked(f, VD_VHOST_USER_SET_FEATURES, &feat, 8, NULL, 0), 0);
    uint8_t addr[40] = { 0 };
    uint32_t flags = 1u << VD_VHOST_VRING_F_LOG;
    uint64_t a[4] = { UVA_BASE + (G_DESC - GPA_BASE), UVA_BASE + (G_USED - GPA_BASE),
                      UVA_BASE + (G_AVAIL - GPA_BASE), log_used };
    memcpy(addr + 4, &flags, 4);
    memcpy(addr + 8, a, 32);
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_ADDR, addr, 40, NULL, 0), 0);
}

/* Put a virtio-blk IN of 4 KiB from sector into G_DATA, status at G_STATUS + n, as avail entry n. */
static void post_read(Fx *f, unsigned n, uint64_t sector)
{
    post_request(f, n, VD_VIRTIO_BLK_T_IN, sector, G_DATA);
}

/* After a read completes, exactly the pages of its buffer, its status byte and the used ring (at log_guest_addr). */
static void test_dirty_log_of_a_read(void **state)
{
    Fx *f = *state;
    uint64_t feat = get_u64(f, VD_VHOST_USER_GET_FEATURES);
    assert_true(feat & (1ull << VD_VHOST_F_LOG_ALL));
    negotiate(f);
    setup_ring(f, 0);
    Log l = log_new(LOG_BYTES);
    /* Before logging starts, answers set nothing. */
    post_read(f, 0, 8);
    assert_true(wait_used(f, 1));
    start_logging(f, &l, G_LOG_USED);
    assert_int_equal(bits_set(&l), 0);
    post_read(f, 1, 16);
    assert_true(wait_used(f, 2));
    assert_int_equal(f->mem[G_STATUS + 1 - GPA_BASE], VD_VIRTIO_BLK_S_OK);
    assert_true(logged(&l, PAGE(G_DATA)));
    assert_true(logged(&l, PAGE(G_STATUS)));
    assert_true(logged(&l, PAGE(G_LOG_USED + 2)));   /* used idx, at log_guest_addr */
    assert_true(logged(&l, PAGE(G_LOG_USED + 4)));   /* the used entry */
    assert_false(logged(&l, PAGE(G_USED)));          /* not at the ring's own address */
    assert_int_equal(bits_set(&l), 4);               /* the header, descriptors and avail ring were only read */
    VdVhostUserStats st;
    vd_vhost_user_get_stats(f->srv, &st);
    assert_int_equal(st.log_bases, 1);
    log_free(&l);
}

/* The used ring is logged only while the ring's F_LOG flag is set; buffers only while LOG_ALL is acked. */
static void test_dirty_log_follows_the_flags(void **state)
{
    Fx *f = *state;
    negotiate(f);
    setup_ring(f, 0);
    Log l = log_new(LOG_BYTES);
    start_logging(f, &l, G_USED);
    /* Migration cancelled: LOG_ALL off, the ring's flag off (the log stays mapped). */
    uint64_t feat = ACK_FEATURES;
    assert_int_equal(acked(f, VD_VHOST_USER_SET_FEATURES, &feat, 8, NULL, 0), 0);
    uint8_t addr[40] = { 0 };
    uint64_t a[4] = { UVA_BASE + (G_DESC - GPA_BASE), UVA_BASE + (G_USED - GPA_BASE),
                      UVA_BASE + (G_AVAIL - GPA_BASE), G_USED };
    memcpy(addr + 8, a, 32);
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_ADDR, addr, 40, NULL, 0), 0);
    post_read(f, 0, 8);
    assert_true(wait_used(f, 1));
    assert_int_equal(bits_set(&l), 0);
    log_free(&l);
}

/* Hostile SET_LOG_BASE: each is refused with a reply, the connection and the previous log stay. */
static void test_bad_log_base(void **state)
{
    Fx *f = *state;
    negotiate(f);
    setup_ring(f, 0);
    Log l = log_new(LOG_BYTES);
    assert_int_equal(set_log_base(f, UINT64_MAX - 10, LOG_OFFSET, l.fd), 1);        /* size + offset overflow */
    assert_int_equal(set_log_base(f, LOG_BYTES, 1ull << 20, l.fd), 1);             /* offset beyond the fd */
    assert_int_equal(set_log_base(f, l.len + 1, 0, l.fd), 1);                      /* size beyond the fd */
    assert_int_equal(set_log_base(f, 0, 0, l.fd), 1);                              /* empty */
    assert_int_equal(set_log_base(f, LOG_BYTES, 0, f->kick), 1);                   /* no memory file */
    assert_int_equal(set_log_base(f, LOG_BYTES, 0, -1), -1);                       /* no fd at all */
    assert_true(vd_vhost_user_connected(f->srv));
    VdVhostUserStats st;
    vd_vhost_user_get_stats(f->srv, &st);
    assert_int_equal(st.log_bases, 0);
    assert_int_equal(st.bad_messages, 0);
    /* A good log, then a bad one: marks keep going to the good one. */
    start_logging(f, &l, G_USED);
    Log other = log_new(LOG_BYTES);
    assert_int_equal(set_log_base(f, UINT64_MAX, 4096, other.fd), 1);
    post_read(f, 0, 8);
    assert_true(wait_used(f, 1));
    assert_true(logged(&l, PAGE(G_DATA)));
    assert_int_equal(bits_set(&other), 0);
    log_free(&other);
    log_free(&l);
}

/* A log too small for guest memory: the pages beyond it are not logged, and nothing past it is written. */
static void test_log_too_small(void **state)
{
    Fx *f = *state;
    negotiate(f);
    setup_ring(f, 0);
    Log l = log_new(LOG_BYTES);
    assert_int_equal(set_log_base(f, 2, LOG_OFFSET, l.fd), 0);   /* 16 pages: below GPA_BASE (page 16) */
    uint64_t feat = ACK_FEATURES | (1ull << VD_VHOST_F_LOG_ALL);
    assert_int_equal(acked(f, VD_VHOST_USER_SET_FEATURES, &feat, 8, NULL, 0), 0);
    post_read(f, 0, 8);
    assert_true(wait_used(f, 1));
    assert_int_equal(bits_set(&l), 0);
    log_free(&l);
}

/* Open the destination on f's image (inactive, as after active=off) with its own server and front end. */
static void dest_new(Fx *f, Fx *d)
{
    d->img = f->img;
    d->sock = g_build_filename(f->dir, "dest.sock", NULL);
    fx_serve(d, "cache=writeback,active=off");
    assert_false(vd_blk_is_active(d->blk));
    vd_vhost_user_server_add_image(d->srv, d->blk);
}

/* GET_VRING_BASE of the last ring releases the image; only then can the destination's first ring start. */
static void test_image_hand_over(void **state)
{
    Fx *f = *state;
    vd_vhost_user_server_add_image(f->srv, f->blk);
    negotiate(f);
    setup_ring(f, 0);
    post_write(f, 0, 8, 0xa5, G_DATA);
    assert_true(wait_used(f, 1));

    Fx d = { 0 };
    dest_new(f, &d);
    negotiate(&d);
    /* The source holds the write lock: the destination's ring does not start. */
    assert_int_not_equal(start_ring(&d, 0), 0);
    assert_false(vd_blk_is_active(d.blk));
    assert_false(vd_virtq_ready(vd_virtio_queue(vd_virtio_blk_device(d.dev), 0)));

    /* The source stops its ring (drained): the image is flushed and released. */
    uint32_t st[2] = { 0, 0 };
    send_msg(f, VD_VHOST_USER_GET_VRING_BASE, 1, st, 8, NULL, 0);
    assert_int_equal(recv_reply(f, VD_VHOST_USER_GET_VRING_BASE, st, 8), 8);
    assert_int_equal(st[1], 1);
    assert_false(vd_blk_is_active(f->blk));
    VdVhostUserStats s;
    vd_vhost_user_get_stats(f->srv, &s);
    assert_int_equal(s.images_released, 1);

    /* Now the destination starts, takes the image and sees the source's data. */
    assert_int_equal(start_ring(&d, 0), 0);
    assert_true(vd_blk_is_active(d.blk));
    vd_vhost_user_get_stats(d.srv, &s);
    assert_int_equal(s.images_taken, 1);
    uint8_t buf[512];
    assert_int_equal(vd_blk_pread_sync(d.blk, 8 * 512, buf, sizeof(buf)), 0);
    assert_int_equal(buf[0], 0xa5);
    post_write(&d, 0, 16, 0x5a, G_DATA);
    assert_true(wait_used(&d, 1));
    assert_int_equal(d.mem[G_STATUS - GPA_BASE], VD_VIRTIO_BLK_S_OK);

    /* The destination's front end leaves: its image is released too, and the source could take it back. */
    close(d.c);
    d.c = -1;
    for (int i = 0; i < 200 && vd_vhost_user_connected(d.srv); i++) {
        pump();
        g_usleep(1000);
    }
    assert_false(vd_blk_is_active(d.blk));
    assert_true(vd_blk_invalidate_cache(f->blk, NULL));
    assert_int_equal(vd_blk_pread_sync(f->blk, 16 * 512, buf, sizeof(buf)), 0);
    assert_int_equal(buf[0], 0x5a);
    fx_release(&d);
    g_free(d.sock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dirty_log_of_a_read, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_log_follows_the_flags, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_bad_log_base, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_log_too_small, setup_server, teardown),
        cmocka_unit_test_setup_teardown(test_image_hand_over, setup_server, teardown),
    };
    if (g_getenv("VD_TEST_FILTER")) {
        cmocka_set_test_filter(g_getenv("VD_TEST_FILTER"));   /* run one test (e.g. to check a mutation) */
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
