/* vhost-user-server-msg.c - one handler per vhost-user request, chosen from a table that also fixes its payload size. */
#include "vhost-user-server-internal.h"
#include "util/bswap.h"

#include <string.h>

#define PROTOCOL_FEATURES_OFFERED ((1ull << VD_VHOST_USER_PROTOCOL_F_MQ) | \
                                   (1ull << VD_VHOST_USER_PROTOCOL_F_REPLY_ACK) | \
                                   (1ull << VD_VHOST_USER_PROTOCOL_F_BACKEND_REQ) | \
                                   (1ull << VD_VHOST_USER_PROTOCOL_F_CONFIG) | \
                                   (1ull << VD_VHOST_USER_PROTOCOL_F_LOG_SHMFD))
#define F_PROTOCOL (1ull << VD_VHOST_USER_F_PROTOCOL_FEATURES)
#define F_LOG_ALL  (1ull << VD_VHOST_F_LOG_ALL)
/* Feature bits of the vhost-user layer, not of the device. */
#define F_VHOST    (F_PROTOCOL | F_LOG_ALL)

typedef VdVhostResult VhostHandler(VdVhostUserServer *s, VdVhostMsg *m);

/* One row of the dispatch table. */
typedef struct VhostRequest {
    const char *name;
    VhostHandler *handler;
    uint32_t size_min, size_max;   /* accepted payload sizes */
    unsigned fds_max;              /* file descriptors it may carry */
    bool drain_first;              /* runs only once the device has nothing in flight */
} VhostRequest;

/* Payload readers: little-endian fields at byte offsets. */
static uint32_t get32(const VdVhostMsg *m, size_t off)
{
    return vd_ld_le32(m->payload + off);
}

/* A little-endian u64 of the payload. */
static uint64_t get64(const VdVhostMsg *m, size_t off)
{
    return vd_ld_le64(m->payload + off);
}

/* Reply with one u64. */
static VdVhostResult reply_u64(VdVhostUserServer *s, const VdVhostMsg *m, uint64_t v)
{
    v = GUINT64_TO_LE(v);
    return vd_vhost_reply(s, m, &v, sizeof(v)) ? VD_VHOST_REPLIED : VD_VHOST_FATAL;
}

/* The ring a vring-state / vring-fd message names, or NULL (protocol violation). */
static VdVhostRing *ring_of(VdVhostUserServer *s, uint32_t index)
{
    if (index >= s->nrings) {
        g_warning("vhost-user: ring %u does not exist (%u rings)", index, s->nrings);
        return NULL;
    }
    return &s->rings[index];
}

/* True if the core is processing the ring (its configuration is then frozen). */
static bool ring_live(VdVhostUserServer *s, VdVhostRing *r)
{
    return vd_virtq_ready(vd_virtio_queue(s->vdev, r->index));
}

/* GET_FEATURES: the device's offer plus PROTOCOL_FEATURES and LOG_ALL. */
static VdVhostResult h_get_features(VdVhostUserServer *s, VdVhostMsg *m)
{
    return reply_u64(s, m, vd_virtio_host_features(s->vdev) | F_VHOST);
}

/* SET_FEATURES: negotiate the device features (the driver's choice) through the core's FEATURES_OK. */
static VdVhostResult h_set_features(VdVhostUserServer *s, VdVhostMsg *m)
{
    uint64_t f = get64(m, 0);
    uint64_t offer = vd_virtio_host_features(s->vdev) | F_VHOST;
    if (f & ~offer) {
        /*
         * QEMU's vhost-user-scsi passes through bits it offered the guest on
         * its own (VIRTIO_SCSI_F_CHANGE) without asking us.  The device
         * never acts on a bit it did not offer, so negotiate the intersection.
         */
        g_message("vhost-user: SET_FEATURES: ignoring bits 0x%" G_GINT64_MODIFIER "x we never offered", f & ~offer);
        s->stats.ignored_feature_bits |= f & ~offer;
        f &= offer;
    }
    uint64_t dev = f & ~F_VHOST;
    bool protocol = f & F_PROTOCOL;
    uint8_t st = vd_virtio_get_status(s->vdev);
    if (s->features_set && (st & VD_VIRTIO_STATUS_FEATURES_OK) && vd_virtio_guest_features(s->vdev) == dev) {
        /* The usual restart, or LOG_ALL turned on or off (migration): same device features, state kept. */
        s->protocol_features_acked = protocol;
        s->acked_features = f;
        return VD_VHOST_OK;
    }
    if (vd_vhost_rings_live(s)) {
        g_warning("vhost-user: SET_FEATURES changes features while rings run");
        return VD_VHOST_FAIL;
    }
    if (st != 0) {
        vd_vhost_device_reset(s);   /* a different driver: start from power-on */
    }
    vd_virtio_set_guest_features(s->vdev, dev);
    vd_virtio_set_status(s->vdev, VD_VIRTIO_STATUS_ACKNOWLEDGE | VD_VIRTIO_STATUS_DRIVER |
                                  VD_VIRTIO_STATUS_FEATURES_OK);
    if (!(vd_virtio_get_status(s->vdev) & VD_VIRTIO_STATUS_FEATURES_OK)) {
        g_warning("vhost-user: the device refused features 0x%" G_GINT64_MODIFIER "x", dev);
        vd_virtio_reset(s->vdev);
        return VD_VHOST_FAIL;
    }
    s->features_set = true;
    s->acked_features = f;
    s->protocol_features_acked = protocol;
    for (unsigned i = 0; i < s->nrings; i++) {
        if (!protocol) {
            s->rings[i].enabled = true;   /* without PROTOCOL_FEATURES rings start enabled */
        }
        vd_vhost_ring_update(s, &s->rings[i]);
    }
    return VD_VHOST_OK;
}

/* SET_OWNER: the session begins; nothing to do. */
static VdVhostResult h_set_owner(VdVhostUserServer *s, VdVhostMsg *m)
{
    return VD_VHOST_OK;
}

/* RESET_OWNER: stop everything and go back to power-on state, keeping the connection. */
static VdVhostResult h_reset_owner(VdVhostUserServer *s, VdVhostMsg *m)
{
    vd_vhost_device_reset(s);
    for (unsigned i = 0; i < s->nrings; i++) {
        vd_vhost_ring_set_kick(s, &s->rings[i], -1);
        s->rings[i].enabled = false;
    }
    return VD_VHOST_OK;
}

/* SET_MEM_TABLE: map the regions (drain first: every answer went through the old mapping). */
static VdVhostResult h_set_mem_table(VdVhostUserServer *s, VdVhostMsg *m)
{
    uint32_t n = get32(m, 0);
    if (n > VD_VHOST_USER_MAX_REGIONS || m->size != 8 + n * sizeof(VdVhostMemRegionMsg) || m->nfds != n) {
        g_warning("vhost-user: SET_MEM_TABLE: %u regions, %u bytes, %u fds do not agree", n, m->size, m->nfds);
        return VD_VHOST_FATAL;
    }
    VdVhostMemRegionMsg regions[VD_VHOST_USER_MAX_REGIONS];
    int fds[VD_VHOST_USER_MAX_REGIONS];
    for (unsigned i = 0; i < n; i++) {
        size_t off = 8 + i * sizeof(VdVhostMemRegionMsg);
        regions[i] = (VdVhostMemRegionMsg){ get64(m, off), get64(m, off + 8), get64(m, off + 16),
                                            get64(m, off + 24) };
        fds[i] = m->fds[i];
        m->fds[i] = -1;   /* vd_vhost_mem_set closes them */
    }
    g_autoptr(GError) err = NULL;
    if (!vd_vhost_mem_set(&s->mem, regions, fds, n, &err)) {
        g_warning("vhost-user: SET_MEM_TABLE: %s", err->message);
        return VD_VHOST_FAIL;
    }
    s->stats.mem_tables++;
    return VD_VHOST_OK;
}

/* Why a ring size is refused for r, or NULL: any power of two from the device's queue size up to the largest. */
static const char *ring_size_problem(VdVhostUserServer *s, VdVhostRing *r, uint32_t num)
{
    if (num == 0 || (num & (num - 1))) {
        return "not a power of two";
    }
    if (num > vd_virtq_size_max(vd_virtio_queue(s->vdev, r->index))) {
        return "larger than the largest ring (" G_STRINGIFY(VD_VHOST_USER_MAX_RING) ")";
    }
    if (num < r->min_num) {
        return "smaller than the device's queue size, which its seg_max assumes";
    }
    return ring_live(s, r) ? "the ring is running" : NULL;
}

/* SET_VRING_NUM: the ring size; a refusal is counted and logged with its reason. */
static VdVhostResult h_set_vring_num(VdVhostUserServer *s, VdVhostMsg *m)
{
    VdVhostRing *r = ring_of(s, get32(m, 0));
    uint32_t num = get32(m, 4);
    if (!r) {
        return VD_VHOST_FATAL;
    }
    const char *problem = ring_size_problem(s, r, num);
    if (problem) {
        s->stats.refused_rings++;
        g_warning("vhost-user: ring %u: size %u refused: %s (device queue size %u)", r->index, num, problem,
                  r->min_num);
        return VD_VHOST_FAIL;
    }
    vd_virtq_set_size(vd_virtio_queue(s->vdev, r->index), num);
    return VD_VHOST_OK;
}

/* SET_VRING_ADDR: ring parts in front-end virtual addresses, converted to guest physical. */
static VdVhostResult h_set_vring_addr(VdVhostUserServer *s, VdVhostMsg *m)
{
    VdVhostRing *r = ring_of(s, get32(m, 0));
    if (!r) {
        return VD_VHOST_FATAL;
    }
    bool log = get32(m, 4) & (1u << VD_VHOST_VRING_F_LOG);
    if (ring_live(s, r)) {
        /* Only the log flag may change on a live ring (migration starts or ends); the addresses may not. */
        r->log = log;
        r->log_addr = get64(m, 32);
        return VD_VHOST_OK;
    }
    uint64_t uva[3] = { get64(m, 8), get64(m, 24), get64(m, 16) };   /* desc, avail, used */
    uint64_t gpa[3];
    for (unsigned i = 0; i < 3; i++) {
        if (!vd_vhost_mem_uva_to_gpa(&s->mem, uva[i], 1, &gpa[i])) {
            g_warning("vhost-user: ring %u: address 0x%" G_GINT64_MODIFIER "x is not in the memory table",
                      r->index, uva[i]);
            return VD_VHOST_FAIL;
        }
    }
    vd_virtq_set_addr(vd_virtio_queue(s->vdev, r->index), gpa[0], gpa[1], gpa[2]);
    r->log = log;
    r->log_addr = get64(m, 32);
    return VD_VHOST_OK;
}

/* SET_VRING_BASE: the next avail index to read (split rings: 16 bits). */
static VdVhostResult h_set_vring_base(VdVhostUserServer *s, VdVhostMsg *m)
{
    VdVhostRing *r = ring_of(s, get32(m, 0));
    uint32_t base = get32(m, 4);
    if (!r) {
        return VD_VHOST_FATAL;
    }
    if (base > 0xffff || ring_live(s, r)) {
        return VD_VHOST_FAIL;
    }
    vd_virtq_set_last_avail(vd_virtio_queue(s->vdev, r->index), base);
    return VD_VHOST_OK;
}

/* GET_VRING_BASE (drain first: every request taken is in the used ring): stop the ring, say where. */
static VdVhostResult h_get_vring_base(VdVhostUserServer *s, VdVhostMsg *m)
{
    VdVhostRing *r = ring_of(s, get32(m, 0));
    if (!r) {
        return VD_VHOST_FATAL;
    }
    r->started = false;
    vd_vhost_ring_update(s, r);   /* stops */
    /*
     * Forget the kick fd: the front end takes the notifier back (QEMU polls
     * it itself while the back end is stopped), so only a new SET_VRING_KICK
     * may start the ring again.
     */
    vd_vhost_ring_set_kick(s, r, -1);
    if (vd_virtq_ready(vd_virtio_queue(s->vdev, r->index))) {
        vd_virtq_set_ready(vd_virtio_queue(s->vdev, r->index), false);
    }
    if (!vd_vhost_rings_live(s)) {
        vd_vhost_images_release(s);   /* the last ring stopped, drained: hand the images over */
    }
    uint32_t st[2] = { GUINT32_TO_LE(r->index),
                       GUINT32_TO_LE(vd_virtq_last_avail(vd_virtio_queue(s->vdev, r->index))) };
    return vd_vhost_reply(s, m, st, sizeof(st)) ? VD_VHOST_REPLIED : VD_VHOST_FATAL;
}

/* The ring and fd of a SET_VRING_KICK/CALL/ERR message; fd -1 with the NOFD flag. */
static VdVhostRing *vring_fd(VdVhostUserServer *s, VdVhostMsg *m, int *fd)
{
    uint64_t v = get64(m, 0);
    bool nofd = v & VD_VHOST_USER_VRING_NOFD;
    if (v & ~(uint64_t)(VD_VHOST_USER_VRING_IDX_MASK | VD_VHOST_USER_VRING_NOFD) ||
        m->nfds != (nofd ? 0u : 1u)) {
        g_warning("vhost-user: %s: payload 0x%" G_GINT64_MODIFIER "x with %u fds", vd_vhost_user_request_name(m->req),
                  v, m->nfds);
        return NULL;
    }
    *fd = nofd ? -1 : m->fds[0];
    if (!nofd) {
        m->fds[0] = -1;
    }
    VdVhostRing *r = ring_of(s, v & VD_VHOST_USER_VRING_IDX_MASK);
    if (!r && *fd >= 0) {
        close(*fd);
    }
    return r;
}

/* SET_VRING_KICK: the kick eventfd; receiving it starts the ring.  No fd (polling) is refused. */
static VdVhostResult h_set_vring_kick(VdVhostUserServer *s, VdVhostMsg *m)
{
    int fd;
    VdVhostRing *r = vring_fd(s, m, &fd);
    if (!r) {
        return VD_VHOST_FATAL;
    }
    if (fd < 0) {
        return VD_VHOST_FAIL;   /* polling mode is not supported */
    }
    vd_vhost_ring_set_kick(s, r, fd);
    r->started = true;
    return vd_vhost_ring_update(s, r) ? VD_VHOST_OK : VD_VHOST_FAIL;
}

/* SET_VRING_CALL: the eventfd to signal used buffers (none: no interrupts). */
static VdVhostResult h_set_vring_call(VdVhostUserServer *s, VdVhostMsg *m)
{
    int fd;
    VdVhostRing *r = vring_fd(s, m, &fd);
    if (!r) {
        return VD_VHOST_FATAL;
    }
    if (r->call_fd >= 0) {
        close(r->call_fd);
    }
    r->call_fd = fd;
    return VD_VHOST_OK;
}

/* SET_VRING_ERR: the eventfd to signal a broken device. */
static VdVhostResult h_set_vring_err(VdVhostUserServer *s, VdVhostMsg *m)
{
    int fd;
    VdVhostRing *r = vring_fd(s, m, &fd);
    if (!r) {
        return VD_VHOST_FATAL;
    }
    if (r->err_fd >= 0) {
        close(r->err_fd);
    }
    r->err_fd = fd;
    return VD_VHOST_OK;
}

/*
 * SET_LOG_BASE (LOG_SHMFD): map the dirty log the fd carries.  The front end
 * waits for a reply (a u64: 0 mapped, 1 refused; QEMU reads only its
 * header).  A refused log leaves the previous one (or none) in place.
 */
static VdVhostResult h_set_log_base(VdVhostUserServer *s, VdVhostMsg *m)
{
    if (!(s->protocol_features & (1ull << VD_VHOST_USER_PROTOCOL_F_LOG_SHMFD)) || m->nfds != 1) {
        g_warning("vhost-user: SET_LOG_BASE refused: %s",
                  m->nfds != 1 ? "it carries no log fd" : "LOG_SHMFD was not negotiated");
        return VD_VHOST_FAIL;
    }
    int fd = m->fds[0];
    m->fds[0] = -1;   /* vd_vhost_log_set closes it */
    g_autoptr(GError) err = NULL;
    bool ok = vd_vhost_log_set(&s->log, fd, get64(m, 0), get64(m, 8), &err);
    if (ok) {
        s->stats.log_bases++;
    } else {
        g_warning("vhost-user: SET_LOG_BASE refused: %s", err->message);
    }
    return reply_u64(s, m, ok ? 0 : 1);
}

/* SET_LOG_FD: the eventfd to signal log updates; kept (we never signal it: QEMU polls the log). */
static VdVhostResult h_set_log_fd(VdVhostUserServer *s, VdVhostMsg *m)
{
    if (m->nfds != 1) {
        g_warning("vhost-user: SET_LOG_FD refused: it carries no fd");
        return VD_VHOST_FAIL;
    }
    if (s->log_fd >= 0) {
        close(s->log_fd);
    }
    s->log_fd = m->fds[0];
    m->fds[0] = -1;
    return VD_VHOST_OK;
}

/* GET_PROTOCOL_FEATURES: MQ, LOG_SHMFD, REPLY_ACK, BACKEND_REQ, CONFIG. */
static VdVhostResult h_get_protocol_features(VdVhostUserServer *s, VdVhostMsg *m)
{
    return reply_u64(s, m, PROTOCOL_FEATURES_OFFERED);
}

/* SET_PROTOCOL_FEATURES: keep what we offered; anything else is refused. */
static VdVhostResult h_set_protocol_features(VdVhostUserServer *s, VdVhostMsg *m)
{
    uint64_t f = get64(m, 0);
    if (f & ~PROTOCOL_FEATURES_OFFERED) {
        g_warning("vhost-user: protocol features 0x%" G_GINT64_MODIFIER "x were not offered", f);
        return VD_VHOST_FAIL;
    }
    s->protocol_features = f;
    return VD_VHOST_OK;
}

/* GET_QUEUE_NUM: how many rings the device has. */
static VdVhostResult h_get_queue_num(VdVhostUserServer *s, VdVhostMsg *m)
{
    return reply_u64(s, m, s->nrings);
}

/* SET_VRING_ENABLE: enable (1) or disable (0) a ring. */
static VdVhostResult h_set_vring_enable(VdVhostUserServer *s, VdVhostMsg *m)
{
    VdVhostRing *r = ring_of(s, get32(m, 0));
    uint32_t on = get32(m, 4);
    if (!r || on > 1) {
        return VD_VHOST_FATAL;
    }
    r->enabled = on;
    return vd_vhost_ring_update(s, r) ? VD_VHOST_OK : VD_VHOST_FAIL;
}

/* SET_BACKEND_REQ_FD: the socket for our requests (config changes); only after BACKEND_REQ was negotiated. */
static VdVhostResult h_set_backend_req_fd(VdVhostUserServer *s, VdVhostMsg *m)
{
    if (m->nfds != 1 || !(s->protocol_features & (1ull << VD_VHOST_USER_PROTOCOL_F_BACKEND_REQ))) {
        g_warning("vhost-user: SET_BACKEND_REQ_FD refused: %s",
                  m->nfds != 1 ? "it carries no socket" : "BACKEND_REQ was not negotiated");
        return VD_VHOST_FAIL;
    }
    if (s->backend_fd >= 0) {
        close(s->backend_fd);
    }
    s->backend_fd = m->fds[0];
    m->fds[0] = -1;
    return VD_VHOST_OK;
}

/* The offset/size of a GET_CONFIG/SET_CONFIG message, checked against its payload. */
static bool config_range(const VdVhostMsg *m, uint32_t *off, uint32_t *len)
{
    *off = get32(m, 0);
    *len = get32(m, 4);
    if (*len > VD_VIRTIO_CONFIG_MAX || *off > VD_VIRTIO_CONFIG_MAX - *len ||
        m->size != VD_VHOST_USER_CONFIG_HDR + *len) {
        g_warning("vhost-user: config access offset %u size %u in a %u-byte message", *off, *len, m->size);
        return false;
    }
    return true;
}

/* GET_CONFIG: the device config space (bytes past its end read 0). */
static VdVhostResult h_get_config(VdVhostUserServer *s, VdVhostMsg *m)
{
    uint32_t off, len;
    if (!config_range(m, &off, &len)) {
        return VD_VHOST_FATAL;
    }
    uint8_t reply[VD_VHOST_USER_CONFIG_HDR + VD_VIRTIO_CONFIG_MAX];
    memcpy(reply, m->payload, VD_VHOST_USER_CONFIG_HDR);
    vd_virtio_config_read(s->vdev, off, reply + VD_VHOST_USER_CONFIG_HDR, len);
    s->stats.config_reads++;
    return vd_vhost_reply(s, m, reply, VD_VHOST_USER_CONFIG_HDR + len) ? VD_VHOST_REPLIED : VD_VHOST_FATAL;
}

/* SET_CONFIG: the driver's config write (virtio-blk: the writeback byte) through the device's op. */
static VdVhostResult h_set_config(VdVhostUserServer *s, VdVhostMsg *m)
{
    uint32_t off, len;
    if (!config_range(m, &off, &len)) {
        return VD_VHOST_FATAL;
    }
    s->stats.config_writes++;
    vd_virtio_config_write(s->vdev, off, m->payload + VD_VHOST_USER_CONFIG_HDR, len);
    if (s->ops->changed) {
        s->ops->changed(s->opaque);
    }
    return VD_VHOST_OK;
}

#define VRING_STATE 8      /* u32 index, u32 num */
#define VRING_ADDR  40     /* u32 index, u32 flags, u64 desc, used, avail, log */
#define CONFIG_MAX  (VD_VHOST_USER_CONFIG_HDR + VD_VIRTIO_CONFIG_MAX)
#define MEM_MAX     (8 + VD_VHOST_USER_MAX_REGIONS * 32)

static const VhostRequest requests[VD_VHOST_USER_REQ_MAX] = {
    [VD_VHOST_USER_GET_FEATURES] = { "GET_FEATURES", h_get_features, 0, 0, 0 },
    [VD_VHOST_USER_SET_FEATURES] = { "SET_FEATURES", h_set_features, 8, 8, 0, true },
    [VD_VHOST_USER_SET_OWNER] = { "SET_OWNER", h_set_owner, 0, 0, 0 },
    [VD_VHOST_USER_RESET_OWNER] = { "RESET_OWNER", h_reset_owner, 0, 8, 0, true },
    [VD_VHOST_USER_SET_MEM_TABLE] = { "SET_MEM_TABLE", h_set_mem_table, 8, MEM_MAX, VD_VHOST_USER_MAX_REGIONS, true },
    [VD_VHOST_USER_SET_LOG_BASE] = { "SET_LOG_BASE", h_set_log_base, 16, 16, 1 },
    [VD_VHOST_USER_SET_LOG_FD] = { "SET_LOG_FD", h_set_log_fd, 0, 8, 1 },
    [VD_VHOST_USER_SET_VRING_NUM] = { "SET_VRING_NUM", h_set_vring_num, VRING_STATE, VRING_STATE, 0 },
    [VD_VHOST_USER_SET_VRING_ADDR] = { "SET_VRING_ADDR", h_set_vring_addr, VRING_ADDR, VRING_ADDR, 0 },
    [VD_VHOST_USER_SET_VRING_BASE] = { "SET_VRING_BASE", h_set_vring_base, VRING_STATE, VRING_STATE, 0 },
    [VD_VHOST_USER_GET_VRING_BASE] = { "GET_VRING_BASE", h_get_vring_base, VRING_STATE, VRING_STATE, 0, true },
    [VD_VHOST_USER_SET_VRING_KICK] = { "SET_VRING_KICK", h_set_vring_kick, 8, 8, 1 },
    [VD_VHOST_USER_SET_VRING_CALL] = { "SET_VRING_CALL", h_set_vring_call, 8, 8, 1 },
    [VD_VHOST_USER_SET_VRING_ERR] = { "SET_VRING_ERR", h_set_vring_err, 8, 8, 1 },
    [VD_VHOST_USER_GET_PROTOCOL_FEATURES] = { "GET_PROTOCOL_FEATURES", h_get_protocol_features, 0, 0, 0 },
    [VD_VHOST_USER_SET_PROTOCOL_FEATURES] = { "SET_PROTOCOL_FEATURES", h_set_protocol_features, 8, 8, 0 },
    [VD_VHOST_USER_GET_QUEUE_NUM] = { "GET_QUEUE_NUM", h_get_queue_num, 0, 0, 0 },
    [VD_VHOST_USER_SET_VRING_ENABLE] = { "SET_VRING_ENABLE", h_set_vring_enable, VRING_STATE, VRING_STATE, 0, true },
    [VD_VHOST_USER_SET_BACKEND_REQ_FD] = { "SET_BACKEND_REQ_FD", h_set_backend_req_fd, 0, 0, 1 },
    [VD_VHOST_USER_GET_CONFIG] = { "GET_CONFIG", h_get_config, VD_VHOST_USER_CONFIG_HDR, CONFIG_MAX, 0 },
    [VD_VHOST_USER_SET_CONFIG] = { "SET_CONFIG", h_set_config, VD_VHOST_USER_CONFIG_HDR, CONFIG_MAX, 0 },
};

/* Name of a request code. */
const char *vd_vhost_user_request_name(uint32_t req)
{
    return req < VD_VHOST_USER_REQ_MAX && requests[req].name ? requests[req].name : "?";
}

/* True if req must wait until the device has nothing in flight. */
bool vd_vhost_drains_first(uint32_t req)
{
    return req < VD_VHOST_USER_REQ_MAX && requests[req].drain_first;
}

/* Check a message against its table row, then run its handler. */
VdVhostResult vd_vhost_dispatch(VdVhostUserServer *s, VdVhostMsg *m)
{
    const VhostRequest *rq = m->req < VD_VHOST_USER_REQ_MAX ? &requests[m->req] : NULL;
    if (!rq || !rq->handler) {
        s->stats.unsupported++;
        g_debug("vhost-user: unknown request %u refused", m->req);
        return VD_VHOST_FAIL;
    }
    if (m->size < rq->size_min || m->size > rq->size_max || m->nfds > rq->fds_max) {
        g_warning("vhost-user: %s with %u payload bytes and %u fds", rq->name, m->size, m->nfds);
        return VD_VHOST_FATAL;
    }
    return rq->handler(s, m);
}
