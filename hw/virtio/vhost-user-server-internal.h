/*
 * vhost-user-server-internal.h - the memory table shared by the vhost-user server's
 * files (vhost-user-server.c: protocol; vhost-user-server-mem.c: mappings and translation).
 */
#ifndef VD_HW_VHOST_USER_INTERNAL_H
#define VD_HW_VHOST_USER_INTERNAL_H

#include "hw/vhost-user-server.h"

#include <stddef.h>

/* One region as it travels in SET_MEM_TABLE (little-endian on the wire). */
typedef struct VdVhostMemRegionMsg {
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    uint64_t mmap_offset;
} VdVhostMemRegionMsg;

/* One mapped region. */
typedef struct VdVhostMemRegion {
    uint64_t gpa, size, uva;   /* guest physical start, length, front-end virtual start */
    void *map;                 /* mmap() result, map_len bytes */
    size_t map_len;
    uint8_t *host;             /* host address of gpa (map + mmap_offset) */
} VdVhostMemRegion;

typedef struct VdVhostMem {
    unsigned n;
    VdVhostMemRegion r[VD_VHOST_USER_MAX_REGIONS];
} VdVhostMem;

/*
 * Replace the table with n regions backed by fds (consumed: closed here in
 * every case).  Validates every region: nonzero size, no overflow, offset +
 * size within the fd's file size, no two regions overlapping in guest
 * physical or front-end virtual space.  On failure the old table is kept.
 */
bool vd_vhost_mem_set(VdVhostMem *m, const VdVhostMemRegionMsg *regions, const int *fds, unsigned n,
                      GError **errp);
/* Unmap every region. */
void vd_vhost_mem_clear(VdVhostMem *m);
/* The virtio core's translate hook (opaque is the VdVhostMem). */
void *vd_vhost_mem_translate(void *opaque, uint64_t gpa, uint64_t *len, bool write);
/* Front-end virtual [uva, uva+len) to guest physical, if it lies in one region. */
bool vd_vhost_mem_uva_to_gpa(const VdVhostMem *m, uint64_t uva, uint64_t len, uint64_t *gpa);

/* The dirty log (vhost-user-server-log.c): one bit per page of guest physical memory. */
#define VD_VHOST_LOG_PAGE 4096
typedef struct VdVhostLog {
    void *map;                 /* mmap() of the fd from 0, map_len bytes */
    size_t map_len;
    uint8_t *bits;             /* map + the front end's offset; NULL: no log */
    uint64_t size;             /* bytes of bitmap */
    uint64_t overflows;        /* writes to pages beyond the bitmap (not logged) */
} VdVhostLog;

/* Map size bytes at offset of fd (consumed) as the log; checks both against the file.  The old log stays on failure. */
bool vd_vhost_log_set(VdVhostLog *l, int fd, uint64_t size, uint64_t offset, GError **errp);
/* Unmap the log. */
void vd_vhost_log_clear(VdVhostLog *l);
/* Mark every page [gpa, gpa+len) touches (atomic OR), if a log is mapped. */
void vd_vhost_log_mark(VdVhostLog *l, uint64_t gpa, uint64_t len);
/* Host address -> guest physical, if [host, host+len) lies in one region. */
bool vd_vhost_mem_host_to_gpa(const VdVhostMem *m, const void *host, uint64_t len, uint64_t *gpa);

/* One vring as the front end configured it. */
typedef struct VdVhostRing {
    VdVhostUserServer *s;
    unsigned index;
    int kick_fd, call_fd, err_fd;
    GSource *kick_src;
    bool started;    /* a kick fd arrived (or a kick), until GET_VRING_BASE */
    bool enabled;    /* SET_VRING_ENABLE (always, without PROTOCOL_FEATURES) */
    bool stopping;   /* the device drains: kicks are remembered, not run */
    bool kick_pending; /* kicked while stopping: run the queue when the drain ends */
    uint64_t kicks;  /* kicks seen on this ring (shows which queues a guest uses) */
    unsigned min_num; /* the device's queue size (its seg_max fits it): the smallest ring taken */
    bool log;        /* SET_VRING_ADDR's VHOST_VRING_F_LOG: log used ring writes at log_addr */
    uint64_t log_addr; /* the used ring's guest physical address for the log */
} VdVhostRing;

/* A received message: header fields, payload and the fds that came with it. */
typedef struct VdVhostMsg {
    uint32_t req, flags, size;
    uint8_t payload[VD_VHOST_USER_MAX_PAYLOAD];
    int fds[VD_VHOST_USER_MAX_REGIONS];
    unsigned nfds;
} VdVhostMsg;

/* A step that runs from the loop once the device has nothing in flight. */
typedef void VdVhostAfterDrain(VdVhostUserServer *s);

struct VdVhostUserServer {
    char *path;                      /* the socket file, or a name for an inherited socket */
    bool owns_path;                  /* we created the file: remove it at the end */
    GMainContext *ctx;
    VdVirtioDevice *vdev;
    const VdVhostUserDeviceOps *ops;
    void *opaque;
    int listen_fd, conn_fd;
    GSource *listen_src, *conn_src;
    /* receive state: header first, then payload */
    uint8_t hdr[VD_VHOST_USER_HDR_SIZE];
    size_t got;
    bool in_payload;
    VdVhostMsg msg;                  /* held (not read past) while after_drain is set */
    VdVhostAfterDrain *after_drain;  /* waiting for the device's drain callback */
    GSource *drained_src;            /* the idle source that runs after_drain */
    bool closing;                    /* a disconnect waits for the drain */
    /* negotiated state of the current connection */
    uint64_t acked_features;
    bool features_set, protocol_features_acked;
    uint64_t protocol_features;
    int backend_fd;                  /* the back-end channel (SET_BACKEND_REQ_FD), -1: none */
    VdVhostMem mem;
    VdVhostLog log;                  /* SET_LOG_BASE; buffers are logged while VHOST_F_LOG_ALL is acked */
    int log_fd;                      /* SET_LOG_FD (kept, never signalled), -1: none */
    GPtrArray *images;               /* VdBlockBackend * (borrowed) the hand-over moves */
    unsigned nrings;
    VdVhostRing *rings;
    VdVhostUserStats stats;
};

/* What a message handler tells the dispatcher. */
typedef enum VdVhostResult {
    VD_VHOST_OK,       /* done; ack success if NEED_REPLY */
    VD_VHOST_FAIL,     /* refused; ack failure if NEED_REPLY */
    VD_VHOST_REPLIED,  /* the handler sent its own reply */
    VD_VHOST_FATAL,    /* protocol violation: drop the connection */
} VdVhostResult;

/* Handle one validated message (vhost-user-server-msg.c). */
VdVhostResult vd_vhost_dispatch(VdVhostUserServer *s, VdVhostMsg *m);
/* Send a reply to m with the given payload; false if the socket failed. */
bool vd_vhost_reply(VdVhostUserServer *s, const VdVhostMsg *m, const void *payload, uint32_t size);
/* Start or stop a ring's processing to match started/enabled; stop only once drained (vhost-user-server.c).
 * false: the ring should start but does not (the images could not be taken, or its setup is invalid). */
bool vd_vhost_ring_update(VdVhostUserServer *s, VdVhostRing *r);
/* True for requests that run only once no request of the device is in flight (vhost-user-server-msg.c). */
bool vd_vhost_drains_first(uint32_t req);
/* Replace a ring's kick fd (-1: none) and its GSource. */
void vd_vhost_ring_set_kick(VdVhostUserServer *s, VdVhostRing *r, int fd);
/* True if any ring is being processed. */
bool vd_vhost_rings_live(VdVhostUserServer *s);
/* The hand-over (vhost-user-server-handover.c): take the images at the first ring start, release after the last. */
bool vd_vhost_images_take(VdVhostUserServer *s, GError **errp);
void vd_vhost_images_release(VdVhostUserServer *s);
/* Stop every ring and reset the device as at power-on (the caller drained it). */
void vd_vhost_device_reset(VdVhostUserServer *s);

#endif
