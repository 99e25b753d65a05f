/*
 * nbd-internal.h - shared between the files of the nbd driver.
 *
 *   nbd.c          the driver: open (a synchronous handshake), capabilities,
 *                  aio_submit (one request as one or more libnbd commands)
 *   nbd-conn.c     the connection in the owner's loop: the GSource on
 *                  libnbd's socket, delivery of finished requests, the drop
 *                  and the reconnection with backoff
 *   nbd-target.c   where the server is: uri= or QEMU's server.* / export=
 *
 * Lock rules: none needed.  Everything here runs on the owner thread: open,
 * aio_submit, the GSource and the timers (all attached to the owner's
 * GMainContext).  libnbd calls the completion callbacks from inside
 * nbd_aio_notify_*, nbd_aio_* and nbd_close, always on this thread; they
 * only record the result and queue the request for delivery.
 */
#ifndef VD_NBD_INTERNAL_H
#define VD_NBD_INTERNAL_H

#include "block/block-driver.h"

#include <libnbd.h>

/* How to reach the export: a libnbd URI, or QEMU's split spelling. */
typedef enum VdNbdTransport { VD_NBD_URI, VD_NBD_UNIX, VD_NBD_INET } VdNbdTransport;

typedef struct VdNbdTarget {
    VdNbdTransport transport;
    char *uri;              /* VD_NBD_URI */
    char *path;             /* VD_NBD_UNIX: server.path */
    char *host, *port;      /* VD_NBD_INET: server.host, server.port */
    char *export_name;      /* VD_NBD_UNIX / VD_NBD_INET: export= ("" by default) */
    bool tls;               /* nbds:// or nbds+unix:// */
    char *desc;             /* for messages: the URI, or "unix:PATH export 'E'" */
} VdNbdTarget;

/* One request of the generic layer: one or more libnbd commands. */
typedef struct VdNbdReq {
    struct VdNbdState *s;
    VdDrvAioOp op;
    VdDriverReq *req;
    VdDrvAioCb *cb;
    void *opaque;
    uint8_t *bounce;        /* several iovecs: gathered for a write, scattered after a read */
    unsigned left;          /* commands (plus one guard while issuing) owed a completion */
    int ret;                /* the first failure, or 0 */
    uint64_t flush_gen;     /* FLUSH: write_gen when it was submitted */
} VdNbdReq;

typedef struct VdNbdState {
    VdNbdTarget target;
    GMainContext *ctx;
    struct nbd_handle *h;   /* the connection, or NULL while waiting to reconnect */
    bool ready;             /* h has finished its handshake and takes commands */
    GSource *source;        /* nbd-conn.c: watches h's socket, delivers done */
    gpointer fd_tag;        /* h's socket in source, or NULL */
    GIOCondition fd_events; /* what fd_tag watches now */
    GQueue done;            /* VdNbdReq whose every command finished, in order */
    GSource *retry;         /* the next reconnection attempt */
    unsigned backoff_ms;

    /* What the first handshake offered; a reconnection must offer the same. */
    int64_t size;
    bool read_only, can_flush, can_fua, can_trim, can_zero;
    uint32_t min_block, max_block;

    /*
     * Writes the server acknowledged without FUA count in write_gen; a
     * successful flush covers the write_gen of its submission.  A drop
     * while write_gen > flushed_gen may have lost them with the server's
     * cache: cache_lost fails the next flush once (the generic layer makes
     * that failure sticky).
     */
    uint64_t write_gen, flushed_gen;
    bool cache_lost;
} VdNbdState;

/* nbd-target.c: fill t from the driver's options, or fail with one line. */
bool vd_nbd_target_parse(const VdDriverOpenOptions *opts, VdNbdTarget *t, GError **errp);
void vd_nbd_target_clear(VdNbdTarget *t);
/* A new handle set up for t (export name, TLS), or NULL with errp set. */
struct nbd_handle *vd_nbd_target_handle(const VdNbdTarget *t, GError **errp);
/* Start connecting h to t: synchronously (the whole handshake) or not; -1 with libnbd's error. */
int vd_nbd_target_connect(struct nbd_handle *h, const VdNbdTarget *t, bool async);

/* nbd-conn.c */
/* Attach the source for s->h (connected) to s->ctx. */
void vd_nbd_conn_start(VdNbdState *s);
/* Detach everything from the loop and close the connection (nothing may be in flight). */
void vd_nbd_conn_stop(VdNbdState *s);
/* Queue r for delivery of its result from the loop. */
void vd_nbd_conn_finish(VdNbdState *s, VdNbdReq *r);
/* The errno a libnbd failure reports to the generic layer (a dropped connection: EIO). */
int vd_nbd_errno(int err);

/* nbd.c: the capabilities of a connected handle into s; false with one line naming what differs or failed. */
bool vd_nbd_read_caps(VdNbdState *s, struct nbd_handle *h, bool first, GError **errp);
/* A request's result is known: scatter a bounced read, call the generic layer back. */
void vd_nbd_req_deliver(VdNbdReq *r);

#endif
