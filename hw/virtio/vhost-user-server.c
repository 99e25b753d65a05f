/*
 * vhost-user-server.c - the vhost-user back-end server: socket, message framing,
 * rings' eventfds, disconnects.
 *
 * Drain rule: a message that must not run while requests are in flight
 * (vd_vhost_drains_first: SET_MEM_TABLE, GET_VRING_BASE, SET_VRING_ENABLE,
 * SET_FEATURES, RESET_OWNER) and a disconnect never wait inside a handler.
 * The server stops reading the socket and taking kicks (they are
 * remembered), asks the device to call back once every request's answer is
 * in guest memory (VdVhostUserDeviceOps.drain), and runs the message (or
 * the teardown) from an idle source after that callback.  Then it replays
 * remembered kicks and reads the socket again.  Nothing iterates the loop,
 * except vd_vhost_user_server_free (teardown, from the top level).
 *
 * Threading: everything runs in the server's GMainContext.
 */
#include "vhost-user-server-internal.h"
#include "util/counters.h"
#include "util/loop-source.h"

#include "block/block-backend.h"

#include <gio/gio.h>
#include <glib-unix.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void conn_close(VdVhostUserServer *s);
static void listen_attach(VdVhostUserServer *s);
static void conn_attach(VdVhostUserServer *s);

/* Close an fd if open and mark it closed. */
static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Detach and drop a GSource if set. */
static void drop_source(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

/* Tell the front end the config changed (CONFIG_CHANGE_MSG, no reply asked); a failed send is logged. */
static void send_config_change(VdVhostUserServer *s)
{
    uint32_t hdr[3] = { VD_VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, VD_VHOST_USER_VERSION, 0 };
    ssize_t n = send(s->backend_fd, hdr, sizeof(hdr), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != (ssize_t)sizeof(hdr)) {
        g_warning("vhost-user: CONFIG_CHANGE_MSG on the back-end channel: %s",
                  n < 0 ? g_strerror(errno) : "short send");
        return;
    }
    s->stats.config_changes++;
}

/* Core -> transport: signal the ring's call eventfd (queue >= 0); a config change (-1) goes to the back-end
 * channel, and when broken the err eventfds are signalled too. */
static void vhost_notify(void *opaque, int queue)
{
    VdVhostUserServer *s = opaque;
    if (queue >= 0 && (unsigned)queue < s->nrings && s->rings[queue].call_fd >= 0) {
        s->stats.calls++;
        eventfd_write(s->rings[queue].call_fd, 1);
        return;
    }
    if (queue < 0 && s->backend_fd >= 0) {
        send_config_change(s);
    }
    if (queue < 0 && vd_virtio_broken(s->vdev)) {
        for (unsigned i = 0; i < s->nrings; i++) {
            if (s->rings[i].err_fd >= 0) {
                eventfd_write(s->rings[i].err_fd, 1);
            }
        }
    }
}

/* Core -> transport: the core wrote part of a used ring; log it at the ring's log address if asked (F_LOG). */
static void vhost_used_written(void *opaque, unsigned queue, uint64_t offset, uint64_t len)
{
    VdVhostUserServer *s = opaque;
    if (queue < s->nrings && s->rings[queue].log) {
        vd_vhost_log_mark(&s->log, s->rings[queue].log_addr + offset, len);
    }
}

/* Core -> transport: an answered element's writable buffers; log them while VHOST_F_LOG_ALL is acked. */
static void vhost_buffer_written(void *opaque, const struct iovec *iov, unsigned n)
{
    VdVhostUserServer *s = opaque;
    if (!(s->acked_features & (1ull << VD_VHOST_F_LOG_ALL)) || !s->log.bits) {
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t gpa;
        /* The core maps a buffer piece per region, so each iovec lies in one (SET_MEM_TABLE drains first). */
        if (vd_vhost_mem_host_to_gpa(&s->mem, iov[i].iov_base, iov[i].iov_len, &gpa)) {
            vd_vhost_log_mark(&s->log, gpa, iov[i].iov_len);
        }
    }
}

static const VdVirtioTransportOps vhost_transport = {
    .notify = vhost_notify,
    .used_written = vhost_used_written,
    .buffer_written = vhost_buffer_written,
};

/* Kicks taken while draining: run each live ring that was kicked. */
static void rings_resume(VdVhostUserServer *s)
{
    for (unsigned i = 0; i < s->nrings; i++) {
        VdVhostRing *r = &s->rings[i];
        bool kicked = r->kick_pending;
        r->stopping = false;
        r->kick_pending = false;
        if (kicked && r->started && vd_virtq_ready(vd_virtio_queue(s->vdev, i))) {
            vd_virtio_queue_kick(s->vdev, i);
        }
    }
}

/* Idle source after the device drained: run the waiting step, then take kicks again. */
static gboolean drained_ready(gpointer opaque)
{
    VdVhostUserServer *s = opaque;
    VdVhostAfterDrain *fn = s->after_drain;
    g_source_unref(s->drained_src);
    s->drained_src = NULL;
    s->after_drain = NULL;
    fn(s);
    if (!s->after_drain) {   /* fn may have started another drain (a disconnect) */
        rings_resume(s);
    }
    return G_SOURCE_REMOVE;
}

/* The device's drain callback (possibly inside a completion): continue from the loop. */
static void device_drained(void *opaque)
{
    VdVhostUserServer *s = opaque;
    s->drained_src = g_idle_source_new();
    g_source_set_callback(s->drained_src, drained_ready, s, NULL);
    g_source_attach(s->drained_src, s->ctx);
}

/* Stop taking kicks and run fn from the loop once no request of the device is in flight. */
static void drain_then(VdVhostUserServer *s, VdVhostAfterDrain *fn)
{
    g_assert(!s->after_drain);
    s->after_drain = fn;
    for (unsigned i = 0; i < s->nrings; i++) {
        s->rings[i].stopping = true;
    }
    s->ops->drain(s->opaque, device_drained, s);
}

/* The ring's kick eventfd became readable: consume it and run the queue. */
static gboolean kick_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    VdVhostRing *r = opaque;
    VdVhostUserServer *s = r->s;
    eventfd_t v;
    if (eventfd_read(fd, &v) < 0 && errno != EAGAIN) {
        g_debug("vhost-user: ring %u: kick fd unreadable: %s", r->index, g_strerror(errno));
        drop_source(&r->kick_src);   /* safe while it dispatches */
        return FALSE;
    }
    s->stats.kicks++;
    r->kicks++;
    if (r->stopping) {
        r->kick_pending = true;   /* replayed once the drain is over */
        return TRUE;
    }
    if (!r->started) {
        r->started = true;   /* the spec: a kick starts a stopped ring */
        vd_vhost_ring_update(s, r);
        return TRUE;
    }
    if (vd_virtq_ready(vd_virtio_queue(s->vdev, r->index))) {
        vd_virtio_queue_kick(s->vdev, r->index);
    }
    return TRUE;
}

/* Replace a ring's kick eventfd and its source. */
void vd_vhost_ring_set_kick(VdVhostUserServer *s, VdVhostRing *r, int fd)
{
    drop_source(&r->kick_src);
    close_fd(&r->kick_fd);
    r->kick_fd = fd;
    if (fd < 0) {
        return;
    }
    g_unix_set_fd_nonblocking(fd, TRUE, NULL);
    r->kick_src = g_unix_fd_source_new(fd, G_IO_IN);
    g_source_set_callback(r->kick_src, G_SOURCE_FUNC(kick_ready), r, NULL);
    /* No blocking: 3 syscalls less per kick.  A kick nested in a wait only marks the ring (vd_virtq_run). */
    vd_source_no_block(r->kick_src);
    g_source_attach(r->kick_src, s->ctx);
}

/* True if any ring is being processed. */
bool vd_vhost_rings_live(VdVhostUserServer *s)
{
    for (unsigned i = 0; i < s->nrings; i++) {
        if (vd_virtq_ready(vd_virtio_queue(s->vdev, i))) {
            return true;
        }
    }
    return false;
}

/* Make the core queue's readiness match started && enabled; false if the images could not be taken for it. */
bool vd_vhost_ring_update(VdVhostUserServer *s, VdVhostRing *r)
{
    VdVirtioDevice *vdev = s->vdev;
    VdVirtQueue *vq = vd_virtio_queue(vdev, r->index);
    bool want = r->started && r->enabled;
    if (want == vd_virtq_ready(vq)) {
        return true;
    }
    if (!want) {
        /* Only from a drain-first message: every completion already reached the live used ring. */
        vd_virtq_set_ready(vq, false);
        s->stats.rings_stopped++;
        return true;
    }
    uint8_t st = vd_virtio_get_status(vdev);
    if (!(st & VD_VIRTIO_STATUS_FEATURES_OK)) {
        g_debug("vhost-user: ring %u started before SET_FEATURES; held", r->index);
        return true;
    }
    g_autoptr(GError) err = NULL;
    if (!vd_vhost_rings_live(s) && !vd_vhost_images_take(s, &err)) {
        g_warning("vhost-user: ring %u not started: the image cannot be taken: %s", r->index, err->message);
        return false;
    }
    if (!vd_virtq_set_ready(vq, true)) {
        g_warning("vhost-user: ring %u: size or ring addresses invalid; not started", r->index);
        return true;
    }
    if (!(st & VD_VIRTIO_STATUS_DRIVER_OK)) {
        vd_virtio_set_status(vdev, st | VD_VIRTIO_STATUS_DRIVER_OK);
    }
    s->stats.rings_started++;
    vd_virtio_queue_kick(vdev, r->index);   /* requests queued before we listened */
    return true;
}

/* Put every ring back to its initial state (fds closed). */
static void rings_clear(VdVhostUserServer *s)
{
    for (unsigned i = 0; i < s->nrings; i++) {
        VdVhostRing *r = &s->rings[i];
        vd_vhost_ring_set_kick(s, r, -1);
        close_fd(&r->call_fd);
        close_fd(&r->err_fd);
        r->started = r->enabled = r->stopping = r->kick_pending = r->log = false;
    }
}

/* Reset the device as at power-on; the caller drained it, so the reset completes at once. */
void vd_vhost_device_reset(VdVhostUserServer *s)
{
    for (unsigned i = 0; i < s->nrings; i++) {
        s->rings[i].started = false;
        vd_virtq_set_ready(vd_virtio_queue(s->vdev, i), false);
    }
    vd_virtio_reset(s->vdev);
    g_assert(!vd_virtio_resetting(s->vdev));
    s->features_set = false;
    s->acked_features = 0;
}

/* Write a whole buffer to the (non-blocking) socket; replies are tiny, so EAGAIN is a dead peer. */
static bool send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

/* Send a reply header + payload for request m. */
bool vd_vhost_reply(VdVhostUserServer *s, const VdVhostMsg *m, const void *payload, uint32_t size)
{
    uint8_t buf[VD_VHOST_USER_HDR_SIZE + VD_VHOST_USER_MAX_PAYLOAD];
    uint32_t h[3] = { GUINT32_TO_LE(m->req), GUINT32_TO_LE(VD_VHOST_USER_VERSION | VD_VHOST_USER_REPLY),
                      GUINT32_TO_LE(size) };
    g_assert(size <= VD_VHOST_USER_MAX_PAYLOAD);
    memcpy(buf, h, sizeof(h));
    memcpy(buf + sizeof(h), payload, size);
    return s->conn_fd >= 0 && send_all(s->conn_fd, buf, sizeof(h) + size);
}

/* Keep the fds of an SCM_RIGHTS message; false if there were too many (all closed then). */
static bool take_fds(VdVhostUserServer *s, struct msghdr *mh)
{
    bool ok = !(mh->msg_flags & MSG_CTRUNC);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        unsigned n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int *fds = (int *)CMSG_DATA(c);
        for (unsigned i = 0; i < n; i++) {
            if (s->msg.nfds < VD_VHOST_USER_MAX_REGIONS) {
                s->msg.fds[s->msg.nfds++] = fds[i];
            } else {
                close(fds[i]);
                ok = false;
            }
        }
    }
    return ok;
}

/* Close the fds a handler did not consume and forget the message. */
static void msg_done(VdVhostUserServer *s)
{
    for (unsigned i = 0; i < s->msg.nfds; i++) {
        close_fd(&s->msg.fds[i]);
    }
    s->msg.nfds = 0;
    s->got = 0;
    s->in_payload = false;
}

/* The header is complete: check version and size. */
static bool header_valid(VdVhostUserServer *s)
{
    uint32_t h[3];
    memcpy(h, s->hdr, sizeof(h));
    s->msg.req = GUINT32_FROM_LE(h[0]);
    s->msg.flags = GUINT32_FROM_LE(h[1]);
    s->msg.size = GUINT32_FROM_LE(h[2]);
    if ((s->msg.flags & VD_VHOST_USER_VERSION_MASK) != VD_VHOST_USER_VERSION ||
        (s->msg.flags & VD_VHOST_USER_REPLY)) {
        g_warning("vhost-user: bad header flags 0x%x (request %u)", s->msg.flags, s->msg.req);
        return false;
    }
    if (s->msg.size > VD_VHOST_USER_MAX_PAYLOAD) {
        g_warning("vhost-user: payload of %u bytes (request %u) is too big", s->msg.size, s->msg.req);
        return false;
    }
    return true;
}

/* Dispatch the received message and send the REPLY_ACK if asked; false to drop the connection. */
static bool message_run(VdVhostUserServer *s)
{
    VdVhostMsg *m = &s->msg;
    g_debug("vhost-user: <- %s (%u bytes, %u fds)", vd_vhost_user_request_name(m->req), m->size, m->nfds);
    VdVhostResult res = vd_vhost_dispatch(s, m);
    if (res == VD_VHOST_FATAL) {
        s->stats.bad_messages++;
        return false;
    }
    bool ack = (m->flags & VD_VHOST_USER_NEED_REPLY) &&
               (s->protocol_features & (1ull << VD_VHOST_USER_PROTOCOL_F_REPLY_ACK));
    if (ack && res != VD_VHOST_REPLIED) {
        uint64_t v = GUINT64_TO_LE(res == VD_VHOST_OK ? 0 : 1);
        if (!vd_vhost_reply(s, m, &v, sizeof(v))) {
            return false;
        }
    }
    return s->conn_fd >= 0;
}

/* The device drained for the held message: run it, then read the socket again. */
static void run_held_message(VdVhostUserServer *s)
{
    bool keep = message_run(s);
    msg_done(s);
    if (!keep) {
        conn_close(s);
        return;
    }
    conn_attach(s);
}

/* Read what the socket has, one message part at a time (so fds stay with their message). */
static gboolean conn_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    VdVhostUserServer *s = opaque;
    for (;;) {
        size_t want = s->in_payload ? s->msg.size : VD_VHOST_USER_HDR_SIZE;
        uint8_t *dst = s->in_payload ? s->msg.payload : s->hdr;
        if (s->got < want) {
            char control[CMSG_SPACE(VD_VHOST_USER_MAX_REGIONS * sizeof(int))];
            struct iovec iov = { dst + s->got, want - s->got };
            struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                                 .msg_controllen = sizeof(control) };
            ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                return TRUE;
            }
            if (n <= 0) {
                break;   /* EOF or error: the front end is gone */
            }
            if (!take_fds(s, &mh)) {
                g_warning("vhost-user: too many file descriptors in one message");
                s->stats.bad_messages++;
                break;
            }
            s->got += n;
            if (s->got < want) {
                continue;
            }
        }
        if (!s->in_payload) {
            if (!header_valid(s)) {
                s->stats.bad_messages++;
                break;
            }
            s->in_payload = true;
            s->got = 0;
            if (s->msg.size > 0) {
                continue;
            }
        }
        s->stats.messages++;
        if (vd_vhost_drains_first(s->msg.req)) {
            /* Hold the message (and its fds), stop reading, run it once the device drained. */
            drop_source(&s->conn_src);   /* safe while it dispatches */
            drain_then(s, run_held_message);
            return FALSE;
        }
        bool keep = message_run(s);
        msg_done(s);
        if (!keep) {
            break;
        }
    }
    conn_close(s);   /* destroys this source too (safe while it dispatches) */
    return FALSE;
}

/* Watch the connection's socket for the next message. */
static void conn_attach(VdVhostUserServer *s)
{
    s->conn_src = g_unix_fd_source_new(s->conn_fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(s->conn_src, G_SOURCE_FUNC(conn_ready), s, NULL);
    g_source_attach(s->conn_src, s->ctx);
}

/* The device drained after a disconnect: reset it, unmap, close, accept the next front end. */
static void conn_close_drained(VdVhostUserServer *s)
{
    vd_vhost_device_reset(s);
    vd_vhost_images_release(s);   /* no ring runs any more: the hand-over's "last ring stopped" */
    rings_clear(s);
    vd_vhost_mem_clear(&s->mem);
    vd_vhost_log_clear(&s->log);
    msg_done(s);
    close_fd(&s->backend_fd);
    close_fd(&s->log_fd);
    close_fd(&s->conn_fd);
    s->protocol_features = 0;
    s->protocol_features_acked = false;
    s->stats.disconnects++;
    s->closing = false;
    listen_attach(s);
    g_message("vhost-user: front end disconnected; waiting for the next one on %s", s->path);
    if (s->ops->changed) {
        s->ops->changed(s->opaque);
    }
}

/*
 * Tear down the connection: stop reading and accepting, let every request
 * in flight complete into guest memory (nothing is lost), then finish in
 * conn_close_drained.
 */
static void conn_close(VdVhostUserServer *s)
{
    if (s->conn_fd < 0 || s->closing) {
        return;
    }
    s->closing = true;
    drop_source(&s->conn_src);
    drop_source(&s->listen_src);   /* a new front end waits in the backlog until we are done */
    msg_done(s);
    drain_then(s, conn_close_drained);
}

/* A front end connects: take it if we have none, refuse it otherwise. */
static gboolean listen_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    VdVhostUserServer *s = opaque;
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
        return TRUE;
    }
    if (s->conn_fd >= 0) {
        s->stats.refused_connections++;
        close(c);
        return TRUE;
    }
    s->conn_fd = c;
    s->stats.connections++;
    conn_attach(s);
    g_message("vhost-user: front end connected on %s", s->path);
    if (s->ops->changed) {
        s->ops->changed(s->opaque);
    }
    return TRUE;
}

/* Watch the listening socket for front ends. */
static void listen_attach(VdVhostUserServer *s)
{
    s->listen_src = g_unix_fd_source_new(s->listen_fd, G_IO_IN);
    g_source_set_callback(s->listen_src, G_SOURCE_FUNC(listen_ready), s, NULL);
    g_source_attach(s->listen_src, s->ctx);
}

/* Bind and listen on path, replacing a stale socket file. */
static int listen_on(const char *path, GError **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        /* Replace a stale socket, but never steal the path of a live server. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (probe >= 0) {
            close(probe);
        }
        if (live) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE, "%s: another server is listening there", path);
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
        int e = errno;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(e), "listen on %s: %s", path, g_strerror(e));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

/* Serve vdev on the listening socket fd (owned); path: the socket file to remove at the end, or NULL. */
static VdVhostUserServer *server_create(int fd, const char *path, VdVirtioDevice *vdev,
                                        const VdVhostUserDeviceOps *ops, void *opaque, GMainContext *ctx)
{
    VdVhostUserServer *s = g_new0(VdVhostUserServer, 1);
    s->path = path ? g_strdup(path) : g_strdup_printf("inherited fd %d", fd);
    s->owns_path = path != NULL;
    s->ctx = ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
    s->vdev = vdev;
    s->ops = ops;
    s->opaque = opaque;
    s->listen_fd = fd;
    s->conn_fd = -1;
    s->backend_fd = -1;
    s->log_fd = -1;
    s->nrings = vd_virtio_num_queues(vdev);
    s->rings = g_new0(VdVhostRing, s->nrings);
    s->images = g_ptr_array_new();
    for (unsigned i = 0; i < s->nrings; i++) {
        VdVirtQueue *vq = vd_virtio_queue(vdev, i);
        unsigned min_num = vd_virtq_size_max(vq);
        s->rings[i] = (VdVhostRing){ .s = s, .index = i, .kick_fd = -1, .call_fd = -1, .err_fd = -1,
                                     .min_num = min_num };
        vd_virtq_set_size_max(vq, MAX(min_num, VD_VHOST_USER_MAX_RING));
    }
    vd_virtio_set_translate(vdev, vd_vhost_mem_translate, &s->mem);
    vd_virtio_set_transport(vdev, &vhost_transport, s);
    listen_attach(s);
    return s;
}

/* Create the server on a socket file; see vhost-user.h. */
VdVhostUserServer *vd_vhost_user_server_new(const char *path, VdVirtioDevice *vdev,
                                            const VdVhostUserDeviceOps *ops, void *opaque,
                                            GMainContext *ctx, GError **errp)
{
    int fd = listen_on(path, errp);
    return fd < 0 ? NULL : server_create(fd, path, vdev, ops, opaque, ctx);
}

/* Create the server on an inherited listening socket; see vhost-user.h. */
VdVhostUserServer *vd_vhost_user_server_new_fd(int fd, VdVirtioDevice *vdev, const VdVhostUserDeviceOps *ops,
                                               void *opaque, GMainContext *ctx, GError **errp)
{
    int type = 0, listening = 0;
    socklen_t len = sizeof(type);
    struct sockaddr_un sa;
    socklen_t salen = sizeof(sa);
    const char *problem = NULL;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        problem = errno == ENOTSOCK ? "not a unix stream socket" : g_strerror(errno);
    } else if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0 || sa.sun_family != AF_UNIX ||
               type != SOCK_STREAM) {
        problem = "not a unix stream socket";
    } else if (len = sizeof(listening), getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
               !listening) {
        problem = "not listening";
    } else if (!g_unix_set_fd_nonblocking(fd, TRUE, NULL) || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        problem = g_strerror(errno);
    }
    if (problem) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "fd %d: %s", fd, problem);
        return NULL;
    }
    return server_create(fd, NULL, vdev, ops, opaque, ctx);
}

/* Teardown (top level only): let a held message and the disconnect finish. */
static void wait_idle(VdVhostUserServer *s)
{
    g_assert(!vd_blk_in_completion());
    while (s->after_drain || s->drained_src) {
        g_main_context_iteration(s->ctx, TRUE);
    }
}

/* Disconnect, stop listening, remove the socket file. */
void vd_vhost_user_server_free(VdVhostUserServer *s)
{
    if (!s) {
        return;
    }
    wait_idle(s);
    conn_close(s);
    wait_idle(s);
    drop_source(&s->listen_src);
    close_fd(&s->listen_fd);
    if (s->owns_path) {
        unlink(s->path);
    }
    for (unsigned i = 0; i < s->nrings; i++) {
        vd_virtq_set_size_max(vd_virtio_queue(s->vdev, i), s->rings[i].min_num);
    }
    vd_virtio_set_transport(s->vdev, NULL, NULL);
    vd_virtio_set_translate(s->vdev, NULL, NULL);
    g_main_context_unref(s->ctx);
    g_free(s->rings);
    g_ptr_array_unref(s->images);
    g_free(s->path);
    g_free(s);
}

/* True while a front end is attached. */
bool vd_vhost_user_connected(VdVhostUserServer *s)
{
    return s->conn_fd >= 0;
}

/* Snapshot of the protocol counters. */
void vd_vhost_user_get_stats(VdVhostUserServer *s, VdVhostUserStats *out)
{
    *out = s->stats;
}

/* "key=value" rendering of the protocol counters. */
void vd_vhost_user_format_stats(VdVhostUserServer *s, GString *out)
{
#define C(f) VD_COUNTER(VdVhostUserStats, f)
    static const VdCounter counters[] = {
        C(connections), C(disconnects), VD_COUNTER_AS(VdVhostUserStats, refused_connections, "refused"),
        C(refused_rings),
        C(messages), C(bad_messages), C(unsupported), C(kicks), C(calls), C(mem_tables), C(config_reads),
        C(config_writes), C(config_changes), C(rings_started), C(rings_stopped), C(log_bases), C(images_taken),
        C(images_released),
    };
#undef C
    vd_counters_format(out, counters, G_N_ELEMENTS(counters), &s->stats);
    vd_counters_append(out, "connected", s->conn_fd >= 0);
    g_string_append_printf(out, " ignored_feature_bits=0x%" G_GINT64_MODIFIER "x", s->stats.ignored_feature_bits);
    g_string_append(out, " ring_kicks=");
    for (unsigned i = 0; i < s->nrings; i++) {
        g_string_append_printf(out, "%s%" G_GUINT64_FORMAT, i ? "," : "", s->rings[i].kicks);
    }
}
