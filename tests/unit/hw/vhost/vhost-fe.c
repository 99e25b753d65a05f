/* vhost-fe.c - the in-process vhost-user front end of the back end's unit tests (vhost-fe.h). */
#include "vhost-fe.h"


/* Run everything the context has ready. */
void pump(void)
{
    for (int i = 0; i < 1000 && g_main_context_iteration(NULL, FALSE); i++) {
    }
}

/* Connect a new front end. */
int connect_front_end(Fx *f)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, f->sock);
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
    pump();
    return c;
}

/* The server's drain op: the device's drain API. */
void drain_blk(void *opaque, VdDrainFunc *cb, void *cb_opaque)
{
    vd_virtio_blk_drain(opaque, cb, cb_opaque);
}

const VdVhostUserDeviceOps dev_ops = { .drain = drain_blk };

/* Guest memory (a memfd of size bytes) and the eventfds. */
void guest_memory_new(Fx *f, size_t size)
{
    f->mem_size = size;
    f->memfd = memfd_create("guest", MFD_CLOEXEC);
    assert_int_equal(ftruncate(f->memfd, size), 0);
    f->mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
    assert_true(f->mem != MAP_FAILED);
    f->kick = eventfd(0, EFD_CLOEXEC);
    f->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    for (unsigned i = 0; i < 3; i++) {
        f->kicks[i] = eventfd(0, EFD_CLOEXEC);
    }
}

/* Serve f->img (opened with the backend options opts) as virtio-blk on f->sock, with guest memory and a front end. */
void fx_serve(Fx *f, const char *opts)
{
    g_autofree char *o = g_strdup_printf("file=%s,%s", f->img, opts);
    f->blk = vd_blk_open(o, NULL, NULL);
    assert_non_null(f->blk);
    VdVirtioBlkConf conf = { .num_queues = 2, .queue_size = QSZ };
    f->dev = vd_virtio_blk_new(f->blk, &conf, NULL, NULL);
    assert_non_null(f->dev);
    f->srv = vd_vhost_user_server_new(f->sock, vd_virtio_blk_device(f->dev), &dev_ops, f->dev, NULL, NULL);
    assert_non_null(f->srv);
    guest_memory_new(f, MEM_SIZE);
    f->c = connect_front_end(f);
}

/* A fixture in a fresh directory: the socket path and a zeroed image of img_size bytes (nothing served yet). */
Fx *fx_new(size_t img_size)
{
    Fx *f = g_new0(Fx, 1);
    f->dir = g_dir_make_tmp("vhost-XXXXXX", NULL);
    f->sock = g_build_filename(f->dir, "s.sock", NULL);
    f->img = g_build_filename(f->dir, "d.img", NULL);
    FILE *fp = fopen(f->img, "w");
    assert_non_null(fp);
    assert_int_equal(ftruncate(fileno(fp), img_size), 0);
    fclose(fp);
    return f;
}

/* A 1 MiB image behind virtio-blk, served on a fresh socket, with one front end connected. */
int setup_server(void **state)
{
    Fx *f = fx_new(IMG_SIZE);
    fx_serve(f, "cache=writeback");
    *state = f;
    return 0;
}

/* Disconnect (if connected), free the server, the device, the backend, guest memory and the eventfds. */
void fx_release(Fx *f)
{
    if (f->c >= 0) {
        close(f->c);
    }
    pump();
    vd_vhost_user_server_free(f->srv);
    vd_virtio_blk_free(f->dev);
    vd_virtio_scsi_free(f->scsi);
    vd_blk_close(f->blk);
    munmap(f->mem, f->mem_size);
    close(f->memfd);
    close(f->kick);
    close(f->call);
    for (unsigned i = 0; i < 3; i++) {
        close(f->kicks[i]);
    }
}

int teardown(void **state)
{
    Fx *f = *state;
    fx_release(f);
    g_unlink(f->img);
    g_rmdir(f->dir);
    g_free(f->img);
    g_free(f->sock);
    g_free(f->dir);
    g_free(f);
    return 0;
}

/* Send one message (header + payload, fds as SCM_RIGHTS). */
void send_msg(Fx *f, uint32_t req, uint32_t flags, const void *payload, uint32_t size, const int *fds,
              unsigned nfds)
{
    uint8_t buf[12 + 512];
    uint32_t h[3] = { req, flags, size };
    memcpy(buf, h, 12);
    if (payload && size) {
        memcpy(buf + 12, payload, MIN(size, 512u));
    }
    struct iovec iov = { buf, 12 + MIN(size, 512u) };
    assert_int_equal(vd_send_with_fds(f->c, &iov, 1, fds, nfds, 0), (ssize_t)iov.iov_len);
    pump();
}

/* Wait (pumping the server) until the socket is readable or at EOF; false on timeout. */
bool wait_readable(Fx *f)
{
    for (int i = 0; i < 5000; i++) {
        pump();
        struct pollfd p = { f->c, POLLIN, 0 };
        if (poll(&p, 1, 1) == 1) {
            return true;
        }
    }
    return false;
}

/* Read a reply to req; returns its payload size, -1 if the server hung up. */
int recv_reply(Fx *f, uint32_t req, void *payload, uint32_t max)
{
    assert_true(wait_readable(f));
    uint32_t h[3];
    ssize_t n = recv(f->c, h, 12, MSG_WAITALL);
    if (n == 0) {
        return -1;
    }
    assert_int_equal(n, 12);
    assert_int_equal(h[0], req);
    assert_int_equal(h[1], VD_VHOST_USER_VERSION | VD_VHOST_USER_REPLY);
    assert_true(h[2] <= max);
    assert_int_equal(recv(f->c, payload, h[2], MSG_WAITALL), (ssize_t)h[2]);
    return h[2];
}

/* Request a u64 (GET_FEATURES etc.). */
uint64_t get_u64(Fx *f, uint32_t req)
{
    uint64_t v = 0;
    send_msg(f, req, VD_VHOST_USER_VERSION, NULL, 0, NULL, 0);
    assert_int_equal(recv_reply(f, req, &v, sizeof(v)), 8);
    return v;
}

/* Send a message with NEED_REPLY and return the REPLY_ACK value (0 success). */
uint64_t acked(Fx *f, uint32_t req, const void *payload, uint32_t size, const int *fds, unsigned nfds)
{
    uint64_t v = 99;
    send_msg(f, req, VD_VHOST_USER_VERSION | VD_VHOST_USER_NEED_REPLY, payload, size, fds, nfds);
    assert_int_equal(recv_reply(f, req, &v, sizeof(v)), 8);
    return v;
}

/* True once the server has closed our connection. */
bool dropped(Fx *f)
{
    if (!wait_readable(f)) {
        return false;
    }
    char b;
    return recv(f->c, &b, 1, MSG_DONTWAIT) == 0;
}

/* Protocol features with REPLY_ACK, then the given device features. */
void negotiate_features(Fx *f, uint64_t feat)
{
    uint64_t pf = get_u64(f, VD_VHOST_USER_GET_PROTOCOL_FEATURES);
    assert_int_equal(pf, (1u << VD_VHOST_USER_PROTOCOL_F_MQ) | (1u << VD_VHOST_USER_PROTOCOL_F_REPLY_ACK) |
                             (1u << VD_VHOST_USER_PROTOCOL_F_BACKEND_REQ) | (1u << VD_VHOST_USER_PROTOCOL_F_CONFIG) |
                             (1u << VD_VHOST_USER_PROTOCOL_F_LOG_SHMFD));
    send_msg(f, VD_VHOST_USER_SET_PROTOCOL_FEATURES, 1, &pf, 8, NULL, 0);
    assert_int_equal(acked(f, VD_VHOST_USER_SET_FEATURES, &feat, 8, NULL, 0), 0);
}

/* Protocol features with REPLY_ACK, then the virtio-blk features. */
void negotiate(Fx *f)
{
    negotiate_features(f, ACK_FEATURES);
}

/* GET_CONFIG of the whole virtio-blk config space. */
void get_config(Fx *f, uint8_t *cfg)
{
    uint8_t msg[12 + VD_VIRTIO_BLK_CONFIG_SIZE] = { 0 };
    uint32_t hdr[3] = { 0, VD_VIRTIO_BLK_CONFIG_SIZE, 0 };
    memcpy(msg, hdr, 12);
    send_msg(f, VD_VHOST_USER_GET_CONFIG, 1, msg, sizeof(msg), NULL, 0);
    assert_int_equal(recv_reply(f, VD_VHOST_USER_GET_CONFIG, msg, sizeof(msg)), sizeof(msg));
    memcpy(cfg, msg + 12, VD_VIRTIO_BLK_CONFIG_SIZE);
}

/* Store little-endian values in guest memory. */
void g16(Fx *f, uint64_t gpa, uint16_t v) { memcpy(f->mem + gpa - GPA_BASE, &v, 2); }
void g32(Fx *f, uint64_t gpa, uint32_t v) { memcpy(f->mem + gpa - GPA_BASE, &v, 4); }
void g64(Fx *f, uint64_t gpa, uint64_t v) { memcpy(f->mem + gpa - GPA_BASE, &v, 8); }
uint16_t used_idx(Fx *f)
{
    uint16_t v;
    memcpy(&v, f->mem + G_USED + 2 - GPA_BASE, 2);
    return __atomic_load_n(&v, __ATOMIC_ACQUIRE);
}

/* Memory table: one memfd region. */
uint64_t set_mem_table(Fx *f, uint64_t size)
{
    uint8_t p[8 + 32] = { 0 };
    uint32_t n = 1;
    uint64_t r[4] = { GPA_BASE, size, UVA_BASE, 0 };
    memcpy(p, &n, 4);
    memcpy(p + 8, r, 32);
    return acked(f, VD_VHOST_USER_SET_MEM_TABLE, p, sizeof(p), &f->memfd, 1);
}

/* setup_ring, returning SET_VRING_ENABLE's REPLY_ACK (the ring starts only if it is 0). */
uint64_t start_ring(Fx *f, uint32_t start)
{
    assert_int_equal(set_mem_table(f, MEM_SIZE), 0);
    uint32_t num[2] = { 0, QSZ };
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_NUM, num, 8, NULL, 0), 0);
    uint8_t addr[40] = { 0 };
    uint64_t a[4] = { UVA_BASE + (G_DESC - GPA_BASE), UVA_BASE + (G_USED - GPA_BASE),
                      UVA_BASE + (G_AVAIL - GPA_BASE), 0 };
    memcpy(addr + 8, a, 32);
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_ADDR, addr, 40, NULL, 0), 0);
    uint32_t base[2] = { 0, start };
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_BASE, base, 8, NULL, 0), 0);
    uint64_t idx = 0;
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_CALL, &idx, 8, &f->call, 1), 0);
    assert_int_equal(acked(f, VD_VHOST_USER_SET_VRING_KICK, &idx, 8, &f->kick, 1), 0);
    uint32_t en[2] = { 0, 1 };
    return acked(f, VD_VHOST_USER_SET_VRING_ENABLE, en, 8, NULL, 0);
}

/* Ring 0 at the fixed layout, resuming at avail index start, started and enabled. */
void setup_ring(Fx *f, uint32_t start)
{
    assert_int_equal(start_ring(f, start), 0);
}

/* Put a virtio-blk request of type (OUT or IN) for one 4 KiB block at sector as avail entry n: header, data, status. */
void post_request(Fx *f, unsigned n, uint32_t type, uint64_t sector, uint64_t data_gpa)
{
    unsigned d = 3 * (n % 5);
    uint64_t hdr = G_HDR + 16 * n;
    g32(f, hdr, type);
    g32(f, hdr + 4, 0);
    g64(f, hdr + 8, sector);
    f->mem[G_STATUS + n - GPA_BASE] = 0xff;
    uint64_t desc[3][2] = { { hdr, 16 }, { data_gpa, 4096 }, { G_STATUS + n, 1 } };
    uint16_t data_flags = type == VD_VIRTIO_BLK_T_IN ? VD_VRING_DESC_F_WRITE : 0;
    uint16_t flags[3] = { VD_VRING_DESC_F_NEXT, VD_VRING_DESC_F_NEXT | data_flags, VD_VRING_DESC_F_WRITE };
    for (unsigned i = 0; i < 3; i++) {
        uint64_t at = G_DESC + 16 * (d + i);
        g64(f, at, desc[i][0]);
        g32(f, at + 8, desc[i][1]);
        g16(f, at + 12, flags[i]);
        g16(f, at + 14, d + i + 1);
    }
    g16(f, G_AVAIL + 4 + 2 * (n % QSZ), d);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    g16(f, G_AVAIL + 2, n + 1);
    eventfd_write(f->kick, 1);
}

/* Put a virtio-blk OUT of one 4 KiB block at sector, filled with byte fill, as avail entry n. */
void post_write(Fx *f, unsigned n, uint64_t sector, uint8_t fill, uint64_t data_gpa)
{
    if (data_gpa == G_DATA) {
        memset(f->mem + G_DATA - GPA_BASE, fill, 4096);
    }
    post_request(f, n, VD_VIRTIO_BLK_T_OUT, sector, data_gpa);
}

/* Pump until the used index reaches want (the backend completes on its thread pool). */
bool wait_used(Fx *f, uint16_t want)
{
    for (int i = 0; i < 5000 && used_idx(f) != want; i++) {
        pump();
        g_usleep(1000);
    }
    return used_idx(f) == want;
}

