/*
 * fuzz-vhost-user.c - libFuzzer target: vhost-user message streams with
 * file descriptors against the back end (hw/virtio/vhost-user*.c) serving
 * virtio-blk or virtio-scsi, with the drain functions of vdisk-vhost
 * (tools/vdisk-vhost-devices.c, tools/vdisk-vhost-scsi.c).  The front end
 * is this process: a unix socket, one memfd as guest memory, eventfds for
 * kicks and calls.  Operations mix raw messages (any request, size, flags,
 * payload and fds) with well-formed ones (memory table, ring setup, a
 * request in guest memory, GET_VRING_BASE), so inputs get deep.
 * Oracles: no crash; after GET_VRING_BASE the stopped ring has every
 * request answered; at every "all answered" point the backends are idle.
 */
#include "fuzz-common.h"
#ifdef VD_FUZZ_ASYNC_DRAIN
#include "hw/vhost-user-server.h"   /* the drain API of hw/drain.h: a callback, never a loop */
#else
#include "hw/vhost-user.h"
#endif
#include "hw/virtio-blk.h"
#include "hw/virtio-scsi.h"
#include "util/unix-fds.h"
#include "vdisk-vhost.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MEM_SIZE  (256u << 10)
#define GPA_BASE  0x100000ull
#define UVA_BASE  0x7f0000000000ull
#define QSZ       16
#define NQ        4
#define RING(q)   (0x1000u * (q))          /* desc +0, avail +0x400, used +0x800 */
#define DATA      0x8000u

typedef struct Fe {
    VdVhostApp app;
    const VdVhostDeviceKind *kind;
    VdVhostUserServer *srv;
    bool scsi;
    int c;                      /* our socket */
    int kick[NQ], call[NQ];
    bool started[NQ];
    uint16_t avail_idx[NQ];
    unsigned next_desc[NQ];
    uint32_t data_next;
    bool unchecked;             /* raw messages may have reconfigured rings behind our back */
    bool have_mem, have_features;   /* a good memory table / SET_FEATURES was sent on this connection */
} Fe;

static char *sock_path;
static int memfd = -1;
static uint8_t *mem;

enum { OP_RAW, OP_MEM_TABLE, OP_FEATURES, OP_RING, OP_REQ, OP_KICK, OP_VRING_BASE, OP_ENABLE, OP_PUMP, OP_SETTLE,
       OP_RECONNECT, OP__MAX };

/* Process-wide resources: a socket path in a private directory and the guest memory memfd. */
static void once(void)
{
    if (mem) {
        return;
    }
    char *dir = g_dir_make_tmp("vd-fuzz-vhost-XXXXXX", NULL);
    sock_path = g_build_filename(dir, "s", NULL);
    g_free(dir);
    memfd = memfd_create("fuzz-guest", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, MEM_SIZE) < 0) {
        fz_fail("memfd: %s", g_strerror(errno));
    }
    mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (mem == MAP_FAILED) {
        fz_fail("mmap: %s", g_strerror(errno));
    }
}

/* Read and drop whatever the back end has sent. */
static void discard_replies(Fe *f)
{
    uint8_t buf[4096];
    while (f->c >= 0 && recv(f->c, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
}

/* Send one message with fds and run the loop; a broken connection is fine (a bad front end gets dropped). */
static void send_raw(Fe *f, uint32_t req, uint32_t flags, const void *payload, uint32_t size, const int *fds,
                     unsigned nfds)
{
    if (f->c < 0) {
        return;
    }
    uint8_t buf[VD_VHOST_USER_HDR_SIZE + 512];
    uint32_t h[3] = { req, flags, size };
    size_t body = MIN(size, sizeof(buf) - VD_VHOST_USER_HDR_SIZE);
    memcpy(buf, h, sizeof(h));
    if (body) {
        memcpy(buf + VD_VHOST_USER_HDR_SIZE, payload, body);
    }
    struct iovec iov = { buf, VD_VHOST_USER_HDR_SIZE + body };
    if (vd_send_with_fds(f->c, &iov, 1, fds, nfds, MSG_DONTWAIT) < 0) {
        close(f->c);
        f->c = -1;
    }
    fz_pump(64);
}

/* Send one message and drop any reply. */
static void send_msg(Fe *f, uint32_t req, uint32_t flags, const void *payload, uint32_t size, const int *fds,
                     unsigned nfds)
{
    send_raw(f, req, flags, payload, size, fds, nfds);
    discard_replies(f);
}

/* fz_wait condition: the back end sent something, or closed the connection. */
static bool reply_ready(void *opaque)
{
    Fe *f = opaque;
    struct pollfd p = { .fd = f->c, .events = POLLIN };
    return f->c < 0 || poll(&p, 1, 0) != 0;
}

/*
 * Send a message whose reply we need and wait (5 s at most) for it, as a front end does: a
 * drain-first message or a new connection is answered only once the device drained.  Returns
 * the payload size read into out, or -1 (no reply: the connection broke or the server is stuck).
 */
static int request(Fe *f, uint32_t req, const void *payload, uint32_t size, void *out, size_t out_len)
{
    discard_replies(f);
    send_raw(f, req, VD_VHOST_USER_VERSION, payload, size, NULL, 0);
    uint8_t buf[4096];
    while (f->c >= 0 && fz_wait_for(reply_ready, f)) {
        ssize_t n = recv(f->c, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0) {
            return -1;
        }
        /* skip the late replies of earlier (raw) messages */
        for (size_t off = 0; off + VD_VHOST_USER_HDR_SIZE <= (size_t)n;) {
            uint32_t h[3];
            memcpy(h, buf + off, sizeof(h));
            size_t body = MIN((size_t)h[2], (size_t)n - off - VD_VHOST_USER_HDR_SIZE);
            if (h[0] == req) {
                memcpy(out, buf + off + VD_VHOST_USER_HDR_SIZE, MIN(body, out_len));
                return MIN(body, out_len);
            }
            off += VD_VHOST_USER_HDR_SIZE + body;
        }
    }
    return -1;
}

/* The well-formed memory table: the memfd as one region, sometimes a second view of its upper half. */
static void op_mem_table(Fe *f, FzIn *in)
{
    uint8_t p[8 + 2 * 32] = { 0 };
    uint8_t v = fz_u8(in);
    uint32_t n = (v & 1) ? 2 : 1;
    uint64_t r0[4] = { GPA_BASE, MEM_SIZE, UVA_BASE, 0 };
    uint64_t r1[4] = { GPA_BASE + 0x10000000ull, MEM_SIZE / 2, UVA_BASE + 0x10000000ull, MEM_SIZE / 2 };
    if (v & 2) {
        r0[1] = (v & 4) ? MEM_SIZE + 4096 : MEM_SIZE / 4;   /* past the file / a smaller region */
    }
    memcpy(p, &n, 4);
    memcpy(p + 8, r0, 32);
    memcpy(p + 40, r1, 32);
    int fds[2] = { memfd, memfd };
    f->have_mem = !(v & 2);
    f->unchecked |= !f->have_mem;
    send_msg(f, VD_VHOST_USER_SET_MEM_TABLE, VD_VHOST_USER_VERSION | VD_VHOST_USER_NEED_REPLY, p, 8 + 32 * n, fds, n);
}

/* Features: what the back end offers, masked by the input, plus the protocol features. */
static void op_features(Fe *f, FzIn *in)
{
    uint64_t offered = 0, mask = fz_u64(in) | VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1);
    request(f, VD_VHOST_USER_GET_FEATURES, NULL, 0, &offered, 8);
    uint64_t want = offered & (mask | (1ull << VD_VHOST_USER_F_PROTOCOL_FEATURES));
    send_msg(f, VD_VHOST_USER_SET_FEATURES, VD_VHOST_USER_VERSION, &want, 8, NULL, 0);
    f->have_features = want & VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1);
    uint64_t pf = 0;
    request(f, VD_VHOST_USER_GET_PROTOCOL_FEATURES, NULL, 0, &pf, 8);
    pf &= fz_u8(in) | (1ull << VD_VHOST_USER_PROTOCOL_F_REPLY_ACK);
    send_msg(f, VD_VHOST_USER_SET_PROTOCOL_FEATURES, VD_VHOST_USER_VERSION, &pf, 8, NULL, 0);
}

/* Set up ring q from scratch: size, addresses, base, call, kick, enable. */
static void op_ring(Fe *f, FzIn *in)
{
    unsigned q = fz_u8(in) % NQ;
    uint8_t v = fz_u8(in);
    /*
     * Setting up a ring that was never stopped (GET_VRING_BASE) breaks the protocol: the server
     * refuses SET_VRING_NUM/BASE on a running ring and keeps its indices, while we zero the ring
     * and count from 0, so the two sides no longer agree on what was answered.
     */
    f->unchecked |= vd_virtq_ready(vd_virtio_queue(f->app.vdev, q));
    memset(mem + RING(q), 0, 0x1000);
    uint32_t num[2] = { q, (v & 1) ? fz_u16(in) : QSZ };
    send_msg(f, VD_VHOST_USER_SET_VRING_NUM, VD_VHOST_USER_VERSION, num, 8, NULL, 0);
    uint64_t addr[5] = { q, UVA_BASE + RING(q), UVA_BASE + RING(q) + 0x800, UVA_BASE + RING(q) + 0x400, 0 };
    if (v & 2) {
        addr[1 + fz_u8(in) % 3] = fz_u64(in);
    }
    send_msg(f, VD_VHOST_USER_SET_VRING_ADDR, VD_VHOST_USER_VERSION, addr, 40, NULL, 0);
    uint32_t base[2] = { q, 0 };
    send_msg(f, VD_VHOST_USER_SET_VRING_BASE, VD_VHOST_USER_VERSION, base, 8, NULL, 0);
    uint64_t idx = q;
    send_msg(f, VD_VHOST_USER_SET_VRING_CALL, VD_VHOST_USER_VERSION, &idx, 8, &f->call[q], 1);
    send_msg(f, VD_VHOST_USER_SET_VRING_KICK, VD_VHOST_USER_VERSION, &idx, 8, &f->kick[q], 1);
    uint32_t en[2] = { q, 1 };
    send_msg(f, VD_VHOST_USER_SET_VRING_ENABLE, VD_VHOST_USER_VERSION, en, 8, NULL, 0);
    f->started[q] = !(v & 3) && f->have_mem && f->have_features;
    f->avail_idx[q] = 0;
    f->next_desc[q] = 0;
}

/* Guest memory for a buffer (rolling). */
static uint32_t data_alloc(Fe *f, uint32_t len)
{
    len = MIN(len, MEM_SIZE - DATA);
    if (f->data_next + len > MEM_SIZE || f->data_next < DATA) {
        f->data_next = DATA;
    }
    uint32_t a = f->data_next;
    f->data_next = (f->data_next + len + 15) & ~15u;
    return a;
}

/* Chain n buffers (offsets into mem, len, device-writable) on ring q, publish, kick. */
static void publish(Fe *f, unsigned q, const uint32_t *off, const uint32_t *len, const bool *wr, unsigned n)
{
    uint8_t *desc = mem + RING(q);
    unsigned head = f->next_desc[q] % QSZ;
    for (unsigned i = 0; i < n; i++) {
        unsigned idx = (head + i) % QSZ;
        uint64_t a = GPA_BASE + off[i];
        uint32_t l = len[i];
        uint16_t fl = (wr[i] ? VD_VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VD_VRING_DESC_F_NEXT : 0);
        uint16_t nx = (head + i + 1) % QSZ;
        memcpy(desc + 16 * idx, &a, 8);
        memcpy(desc + 16 * idx + 8, &l, 4);
        memcpy(desc + 16 * idx + 12, &fl, 2);
        memcpy(desc + 16 * idx + 14, &nx, 2);
    }
    f->next_desc[q] = (head + n) % QSZ;
    uint16_t *avail = (uint16_t *)(mem + RING(q) + 0x400);
    avail[2 + f->avail_idx[q] % QSZ] = head;
    f->avail_idx[q]++;
    __atomic_store_n(&avail[1], f->avail_idx[q], __ATOMIC_RELEASE);
    uint64_t one = 1;
    if (write(f->kick[q], &one, 8) < 0) {
        fz_fail("kick eventfd: %s", g_strerror(errno));
    }
}

/* A request in guest memory: a virtio-blk read/write/flush, or a virtio-scsi READ(10)/WRITE(10)/TMF. */
static void op_req(Fe *f, FzIn *in)
{
    uint8_t v = fz_u8(in);
    uint32_t off[4], len[4];
    bool wr[4];
    unsigned n = 0, q;
    uint32_t blocks = 1 + fz_u8(in) % 128, lba = fz_u16(in);
    if (!f->scsi) {
        q = v % NQ;
        uint32_t type = (v >> 2) % 3 == 2 ? VD_VIRTIO_BLK_T_FLUSH : (v >> 2) % 3;
        uint64_t sector = lba;
        off[n] = data_alloc(f, 16);
        memcpy(mem + off[n], &type, 4);
        memset(mem + off[n] + 4, 0, 4);
        memcpy(mem + off[n] + 8, &sector, 8);
        len[n] = 16, wr[n++] = false;
        if (type != VD_VIRTIO_BLK_T_FLUSH) {
            off[n] = data_alloc(f, 512 * blocks), len[n] = 512 * blocks, wr[n++] = type == VD_VIRTIO_BLK_T_IN;
        }
        off[n] = data_alloc(f, 1), len[n] = 1, wr[n++] = true;
    } else if (v & 0x80) {
        q = 0;                                      /* control queue: a TMF */
        uint8_t tmf[24] = { 0 };
        tmf[4] = v % 8;                             /* subtype */
        tmf[8] = 1, tmf[10] = 0x40;
        tmf[16] = fz_u8(in);                        /* tag */
        off[n] = data_alloc(f, 24), memcpy(mem + off[n], tmf, 24), len[n] = 24, wr[n++] = false;
        off[n] = data_alloc(f, 8), len[n] = 8, wr[n++] = true;
    } else {
        q = 2;
        bool write10 = v & 1;
        uint8_t h[VD_VIRTIO_SCSI_REQ_HDR + 32] = { 1, 0, 0x40, 0 };
        h[8] = fz_u8(in);                           /* tag */
        uint8_t *cdb = h + VD_VIRTIO_SCSI_REQ_HDR;
        cdb[0] = write10 ? 0x2a : 0x28;
        cdb[2] = lba >> 24, cdb[3] = lba >> 16, cdb[4] = lba >> 8, cdb[5] = lba;
        cdb[7] = blocks >> 8, cdb[8] = blocks;
        off[n] = data_alloc(f, sizeof(h)), memcpy(mem + off[n], h, sizeof(h)), len[n] = sizeof(h), wr[n++] = false;
        if (write10) {
            off[n] = data_alloc(f, 512 * blocks), len[n] = 512 * blocks, wr[n++] = false;
        }
        off[n] = data_alloc(f, 108), len[n] = 108, wr[n++] = true;
        if (!write10) {
            off[n] = data_alloc(f, 512 * blocks), len[n] = 512 * blocks, wr[n++] = true;
        }
    }
    if (f->started[q]) {
        publish(f, q, off, len, wr, n);
    }
}

/* The used idx of ring q in guest memory. */
static uint16_t used_idx(unsigned q)
{
    return __atomic_load_n((uint16_t *)(mem + RING(q) + 0x800 + 2), __ATOMIC_ACQUIRE);
}

/* True if the device declared itself broken (a bad chain): its documented error state. */
static bool broken(Fe *f)
{
    return vd_virtio_get_status(f->app.vdev) & VD_VIRTIO_STATUS_NEEDS_RESET;
}

/* GET_VRING_BASE stops the ring; every request of it must then be answered (or lost connection). */
static void op_vring_base(Fe *f, FzIn *in)
{
    unsigned q = fz_u8(in) % NQ;
    uint32_t st[2] = { q, 0 };
    int n = request(f, VD_VHOST_USER_GET_VRING_BASE, st, 8, st, 8);
    if (n == 8 && f->started[q] && !f->unchecked && !broken(f) && st[1] == f->avail_idx[q] && used_idx(q) != f->avail_idx[q]) {
        fz_fail("vhost-user: GET_VRING_BASE of ring %u says last_avail=%u, but the used idx is %u", q, st[1],
                used_idx(q));
    }
    f->unchecked |= n != 8;   /* no reply: we do not know what the ring did */
    f->started[q] = false;
}

/* One raw message: any request, flags and payload, with memfd/eventfd/garbage descriptors. */
static void op_raw(Fe *f, FzIn *in)
{
    uint8_t p[512] = { 0 };
    uint32_t req = fz_u8(in) % 40, flags = fz_u8(in);
    uint32_t size = fz_u8(in);
    if (flags & 0x80) {
        size = fz_u32(in);
    }
    fz_bytes(in, p, MIN(size, sizeof(p)));
    uint8_t fdmask = fz_u8(in);
    int fds[8];
    unsigned nfds = 0;
    for (unsigned i = 0; i < 3; i++) {
        if (fdmask & (1u << i)) {
            fds[nfds++] = (fdmask & 0x80) ? f->call[i % NQ] : memfd;
        }
    }
    if (req == VD_VHOST_USER_SET_MEM_TABLE) {
        }
    f->unchecked = true;
    send_msg(f, req, (flags & 0x0c) | VD_VHOST_USER_VERSION, p, size, fds, nfds);
}

/* fz_wait condition: every started ring has answered all it was given (or the device is broken). */
static bool all_answered(void *opaque)
{
    Fe *f = opaque;
    if (broken(f)) {
        return fz_order_outstanding() == 0;
    }
    for (unsigned q = 0; q < NQ; q++) {
        if (f->started[q] && used_idx(q) != f->avail_idx[q]) {
            return false;
        }
    }
    return true;
}

/* Wait for the answers, if the rings are as we set them up; then the backends must be idle. */
static void settle(Fe *f)
{
    if (f->unchecked || f->c < 0 || !vd_vhost_user_connected(f->srv)) {
        fz_pump(256);
        return;
    }
    fz_wait(all_answered, f, "vhost-user: a request on a running ring was never answered");
    if (broken(f)) {
        return;
    }
    fz_quiescent("vhost-user: every request of every running ring is in the used ring");
}

#ifdef VD_FUZZ_ASYNC_DRAIN
/* The server's drain op: the tool's drain for the device kind. */
static void app_drain(void *opaque, VdDrainFunc *cb, void *cb_opaque)
{
    Fe *f = opaque;
    f->kind->drain(&f->app, cb, cb_opaque);
}

/* Drain callback: the device has nothing in flight. */
static void drained(void *opaque)
{
    *(bool *)opaque = true;
}

/* fz_wait condition: the drain called back. */
static bool flag_set(void *opaque)
{
    return *(bool *)opaque;
}

/* Wait for the device kind's drain, as vdisk-vhost does before freeing it. */
static void kind_drain(Fe *f)
{
    bool done = false;
    f->kind->drain(&f->app, drained, &done);
    fz_wait(flag_set, &done, "vhost-user: the device's drain never called back");
}
#else
/* The server's drain op: the tool's drain for the device kind. */
static void app_drain(void *opaque)
{
    Fe *f = opaque;
    f->kind->drain(&f->app);
}

/* The device kind's drain, as vdisk-vhost runs it before freeing the device. */
static void kind_drain(Fe *f)
{
    f->kind->drain(&f->app);
}
#endif

static const VdVhostUserDeviceOps dev_ops = { .drain = app_drain };

/* Open a connection to the server's socket. */
static void fe_dial(Fe *f)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    g_strlcpy(sa.sun_path, sock_path, sizeof(sa.sun_path));
    f->c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->c < 0 || connect(f->c, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fz_fail("connect %s: %s", sock_path, g_strerror(errno));
    }
}

/*
 * Connect (again) and wait to be served, as QEMU does with its first GET_FEATURES and its
 * reconnect option.  The server refuses a second front end while it still serves (or drains)
 * the old one, so a refused connection is retried for 5 s.  Once served, nothing of the old
 * connection may be in flight when this one has everything answered (settle's quiescence check).
 */
static void fe_connect(Fe *f)
{
    memset(f->started, 0, sizeof(f->started));
    f->unchecked = f->have_mem = f->have_features = false;
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    uint64_t features;
    for (;;) {
        fe_dial(f);
        if (request(f, VD_VHOST_USER_GET_FEATURES, NULL, 0, &features, 8) == 8) {
            return;
        }
        if (g_get_monotonic_time() > deadline) {
            fz_fail("vhost-user: the server did not serve a new front end within 5 s");
        }
        if (f->c >= 0) {
            close(f->c);
        }
        fz_pump(64);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: a fresh device and server, one front end, the operations, then teardown. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FzIn in = { data, size };
    fz_init();
    once();
    memset(mem, 0, MEM_SIZE);
    Fe f = { .c = -1 };
    uint8_t setup = fz_u8(&in);
    f.scsi = setup & 1;
    f.kind = vd_vhost_device_kind(f.scsi ? "virtio-scsi" : "virtio-blk");
    f.app.backends = g_ptr_array_new();
    g_ptr_array_add(f.app.backends, fz_backend("driver=null,size=4M,aio=threads"));
    if (f.scsi) {
        g_ptr_array_add(f.app.backends, fz_backend("driver=null,size=1M,aio=threads"));
        VdVirtioScsiConf conf = { .num_queues = 2, .queue_size = 64 };
        VdVirtioScsi *s = vd_virtio_scsi_new(&conf, NULL, NULL);
        for (guint i = 0; s && i < f.app.backends->len; i++) {
            if (!vd_virtio_scsi_add_lun(s, f.app.backends->pdata[i], i, NULL, NULL)) {
                fz_fail("cannot add LUN %u", i);
            }
        }
        f.app.dev = s;
        f.app.vdev = s ? vd_virtio_scsi_device(s) : NULL;
    } else {
        VdVirtioBlkConf conf = { .num_queues = NQ, .queue_size = 64 };
        VdVirtioBlk *b = vd_virtio_blk_new(f.app.backends->pdata[0], &conf, NULL, NULL);
        f.app.dev = b;
        f.app.vdev = b ? vd_virtio_blk_device(b) : NULL;
    }
    if (!f.kind || !f.app.vdev) {
        fz_fail("cannot build the %s device", f.scsi ? "virtio-scsi" : "virtio-blk");
    }
    f.srv = vd_vhost_user_server_new(sock_path, f.app.vdev, &dev_ops, &f, NULL, NULL);
    if (!f.srv) {
        fz_fail("cannot serve on %s", sock_path);
    }
    for (unsigned q = 0; q < NQ; q++) {
        f.kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        f.call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    }
    fe_connect(&f);
    unsigned ops = 0;
    while (fz_more(&in) && ops++ < 128) {
        switch (fz_u8(&in) % OP__MAX) {
        case OP_RAW:
            op_raw(&f, &in);
            break;
        case OP_MEM_TABLE:
            op_mem_table(&f, &in);
            break;
        case OP_FEATURES:
            op_features(&f, &in);
            break;
        case OP_RING:
            op_ring(&f, &in);
            break;
        case OP_REQ:
            op_req(&f, &in);
            break;
        case OP_KICK: {
            uint64_t one = 1;
            if (write(f.kick[fz_u8(&in) % NQ], &one, 8) < 0) {
                fz_fail("kick: %s", g_strerror(errno));
            }
            fz_pump(32);
            break;
        }
        case OP_VRING_BASE:
            op_vring_base(&f, &in);
            break;
        case OP_ENABLE: {
            uint32_t en[2] = { fz_u8(&in) % NQ, fz_u8(&in) & 1 };
            send_msg(&f, VD_VHOST_USER_SET_VRING_ENABLE, VD_VHOST_USER_VERSION, en, 8, NULL, 0);
            f.unchecked |= !en[1];
            break;
        }
        case OP_PUMP:
            fz_pump(fz_u8(&in) % 64);
            break;
        case OP_SETTLE:
            settle(&f);
            break;
        default:
            if (f.c >= 0) {
                close(f.c);
            }
            fz_pump(64);
            fe_connect(&f);
            break;
        }
    }
    settle(&f);
    if (f.c >= 0) {
        close(f.c);
    }
    fz_pump(64);
    vd_vhost_user_server_free(f.srv);
    kind_drain(&f);
    if (f.scsi) {
        vd_virtio_scsi_free(f.app.dev);
    } else {
        vd_virtio_blk_free(f.app.dev);
    }
    for (guint i = 0; i < f.app.backends->len; i++) {
        fz_drain_blk(f.app.backends->pdata[i]);
    }
    g_ptr_array_unref(f.app.backends);
    for (unsigned q = 0; q < NQ; q++) {
        close(f.kick[q]);
        close(f.call[q]);
    }
    fz_order_reset();
    return 0;
}
