/*
 * nbd-conn.c - the NBD connection in the owner's loop.
 *
 * One GSource per open watches libnbd's socket in the direction libnbd
 * wants (nbd_aio_get_direction, asked again before every poll), moves the
 * state machine with nbd_aio_notify_read/write, and then delivers every
 * finished request (VdNbdReq in s->done) to the generic layer.  A request
 * that finished while being submitted is delivered the same way, so no
 * callback runs inside aio_submit.
 *
 * A drop (the server died, the socket closed): libnbd fails every command
 * in flight (ENOTCONN, reported as EIO), including a flush, which is thus
 * never reported successful.  Requests submitted while disconnected fail
 * with EIO too; the generic layer's error policy decides (werror=stop holds
 * them until cont).  The driver reconnects in the background, with a
 * backoff from 100 ms doubling to 5 s, through the same source; a server
 * that comes back with another size or capabilities is refused and tried
 * again later.
 *
 * Lock rules: nbd-internal.h (owner thread only).
 */
#include "nbd-internal.h"

#include <errno.h>

#define VD_NBD_BACKOFF_MIN_MS 100
#define VD_NBD_BACKOFF_MAX_MS 5000

typedef struct VdNbdSource {
    GSource base;
    VdNbdState *s;
} VdNbdSource;

int vd_nbd_errno(int err)
{
    switch (err) {
    case 0:
        return EIO; /* libnbd failed without saying why */
    case ENOTCONN:
    case ESHUTDOWN:
    case ECONNRESET:
    case ECONNREFUSED:
    case EPIPE:
        return EIO;
    default:
        return err;
    }
}

void vd_nbd_conn_finish(VdNbdState *s, VdNbdReq *r)
{
    g_queue_push_tail(&s->done, r);
}

/*
 * Watch the socket in the direction libnbd wants next; deliver at once if
 * requests are done.  Only a change is passed on: g_source_modify_unix_fd
 * wakes the context, so calling it on every prepare would spin the loop.
 */
static gboolean source_prepare(GSource *src, gint *timeout)
{
    VdNbdState *s = ((VdNbdSource *)src)->s;
    *timeout = -1;
    if (s->fd_tag) {
        unsigned dir = nbd_aio_get_direction(s->h);
        GIOCondition want = ((dir & LIBNBD_AIO_DIRECTION_READ) ? G_IO_IN : 0) |
                            ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? G_IO_OUT : 0);
        if (want != s->fd_events) {
            g_source_modify_unix_fd(src, s->fd_tag, want);
            s->fd_events = want;
        }
    }
    return !g_queue_is_empty(&s->done);
}

/* Ready if the socket is, or requests are done. */
static gboolean source_check(GSource *src)
{
    VdNbdState *s = ((VdNbdSource *)src)->s;
    return (s->fd_tag && g_source_query_unix_fd(src, s->fd_tag)) || !g_queue_is_empty(&s->done);
}

/* Stop watching the socket and close the handle (libnbd fails what was still in flight). */
static void close_handle(VdNbdState *s)
{
    if (s->fd_tag) {
        g_source_remove_unix_fd(s->source, s->fd_tag);
        s->fd_tag = NULL;
    }
    if (s->h) {
        nbd_close(s->h);
        s->h = NULL;
    }
    s->ready = false;
}

static gboolean reconnect_tick(gpointer opaque);

/* Try again after the backoff, doubling it. */
static void schedule_reconnect(VdNbdState *s)
{
    s->backoff_ms = s->backoff_ms ? MIN(s->backoff_ms * 2, VD_NBD_BACKOFF_MAX_MS) : VD_NBD_BACKOFF_MIN_MS;
    s->retry = g_timeout_source_new(s->backoff_ms);
    g_source_set_callback(s->retry, reconnect_tick, s, NULL);
    g_source_attach(s->retry, s->ctx);
}

/* Watch a (new) handle's socket. */
static void watch_handle(VdNbdState *s)
{
    int fd = nbd_aio_get_fd(s->h);
    g_assert(fd >= 0);
    s->fd_events = G_IO_IN;
    s->fd_tag = g_source_add_unix_fd(s->source, fd, s->fd_events);
}

/* Timer: start an asynchronous connection; the source sees it finish. */
static gboolean reconnect_tick(gpointer opaque)
{
    VdNbdState *s = opaque;
    g_source_unref(s->retry);
    s->retry = NULL;
    g_autoptr(GError) err = NULL;
    s->h = vd_nbd_target_handle(&s->target, &err);
    if (s->h && vd_nbd_target_connect(s->h, &s->target, true) == 0) {
        watch_handle(s);
        return G_SOURCE_REMOVE;
    }
    close_handle(s);
    schedule_reconnect(s);
    return G_SOURCE_REMOVE;
}

/* The connection is gone: fail what was in flight (libnbd does), remember a lost cache, reconnect. */
static void connection_lost(VdNbdState *s)
{
    g_warning("driver=nbd: %s: connection lost (%s); requests fail with EIO until it is back",
              s->target.desc, nbd_get_error() ? nbd_get_error() : "closed");
    if (s->write_gen > s->flushed_gen && s->can_flush) {
        s->cache_lost = true;
    }
    close_handle(s);
    s->backoff_ms = 0;
    schedule_reconnect(s);
}

/* A reconnection finished its handshake: take commands again if the server is the same. */
static void reconnected(VdNbdState *s)
{
    g_autoptr(GError) err = NULL;
    if (!vd_nbd_read_caps(s, s->h, false, &err)) {
        g_warning("%s; trying again", err->message);
        close_handle(s);
        schedule_reconnect(s);
        return;
    }
    s->ready = true;
    s->backoff_ms = 0;
    g_message("driver=nbd: %s: reconnected", s->target.desc);
}

/* Look at the handle's state after libnbd ran: connected, still connecting, or dead. */
static void check_handle(VdNbdState *s)
{
    if (nbd_aio_is_dead(s->h) || nbd_aio_is_closed(s->h)) {
        if (s->ready) {
            connection_lost(s);
        } else {
            close_handle(s); /* a reconnection attempt failed */
            schedule_reconnect(s);
        }
    } else if (!s->ready && nbd_aio_is_ready(s->h)) {
        reconnected(s);
    }
}

/* Move libnbd along on socket events, then deliver every finished request. */
static gboolean source_dispatch(GSource *src, GSourceFunc unused, gpointer data)
{
    VdNbdState *s = ((VdNbdSource *)src)->s;
    if (s->fd_tag) {
        GIOCondition ev = g_source_query_unix_fd(src, s->fd_tag);
        unsigned dir = nbd_aio_get_direction(s->h);
        if ((ev & (G_IO_IN | G_IO_HUP | G_IO_ERR)) && (dir & LIBNBD_AIO_DIRECTION_READ)) {
            nbd_aio_notify_read(s->h);
        } else if ((ev & (G_IO_OUT | G_IO_HUP | G_IO_ERR)) && (dir & LIBNBD_AIO_DIRECTION_WRITE)) {
            nbd_aio_notify_write(s->h);
        }
        check_handle(s);
    }
    VdNbdReq *r;
    while ((r = g_queue_pop_head(&s->done))) {
        vd_nbd_req_deliver(r);
    }
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs source_funcs = {
    .prepare = source_prepare,
    .check = source_check,
    .dispatch = source_dispatch,
};

void vd_nbd_conn_start(VdNbdState *s)
{
    s->source = g_source_new(&source_funcs, sizeof(VdNbdSource));
    ((VdNbdSource *)s->source)->s = s;
    g_source_attach(s->source, s->ctx);
    s->ready = true;
    watch_handle(s);
}

void vd_nbd_conn_stop(VdNbdState *s)
{
    if (s->retry) {
        g_source_destroy(s->retry);
        g_source_unref(s->retry);
        s->retry = NULL;
    }
    if (s->ready) {
        nbd_aio_disconnect(s->h, 0); /* polite, best effort: close does not wait for it */
    }
    close_handle(s);
    g_assert(g_queue_is_empty(&s->done));
    if (s->source) {
        g_source_destroy(s->source);
        g_source_unref(s->source);
        s->source = NULL;
    }
}
