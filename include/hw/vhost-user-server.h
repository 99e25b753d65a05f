/*
 * vhost-user.h - serve one virtio device (virtio-blk, virtio-scsi) to another
 * VMM over the vhost-user protocol (QEMU docs/interop/vhost-user.rst), as
 * the back end.  The front end (QEMU, Cloud Hypervisor) connects to a unix
 * socket we listen on, hands us its guest memory as file descriptors and
 * the rings' kick/call eventfds, and forwards the guest's config writes.
 *
 * Guarantees:
 *  - Every message from the socket is validated before use: request code,
 *    flags version, payload size (exact for fixed-size payloads, bounded
 *    for the rest), number of file descriptors, ring indices, ring sizes,
 *    config offsets/sizes, memory regions (sizes, overflows, overlaps).  A
 *    malformed message ends the connection (never the process); a
 *    well-formed but unsupported request is refused (REPLY_ACK failure).
 *  - Guest memory is reached only through the memory table: a guest
 *    physical range is translated only if it lies wholly inside one mapped
 *    region, and ring addresses (front-end virtual addresses) are converted
 *    the same way.  This is the virtio core's translate hook.
 *  - Drain first: SET_MEM_TABLE, GET_VRING_BASE, SET_VRING_ENABLE,
 *    SET_FEATURES and RESET_OWNER run only once the device has nothing in
 *    flight, i.e. every request it took has its answer written to guest
 *    memory (the device's drain API counts answers still queued for
 *    delivery).  Until then the server reads no further message and no
 *    reply is sent; kicks are remembered and run afterwards.  No handler
 *    iterates the loop.  So SET_MEM_TABLE never unmaps a region an answer
 *    is still to be written through, and GET_VRING_BASE returns an avail
 *    index whose every request is in the used ring; it then stops the ring,
 *    drops its kick fd (only a new SET_VRING_KICK restarts it).
 *  - When the front end disconnects, every request in flight completes
 *    (its data reaches the backend), the device is reset as at power-on
 *    (virtio-blk: the cache mode's default write cache returns), the
 *    memory is unmapped, every descriptor is closed, and the server accepts
 *    the next front end.  One front end at a time; a second connection
 *    attempt is closed at once.
 *  - Feature negotiation: bits a front end sets that we never offered are
 *    dropped (QEMU's vhost-user-scsi forwards VIRTIO_SCSI_F_CHANGE on its
 *    own); the device sees only the intersection.
 *  - Feature offer: the device's own feature bits plus
 *    VHOST_USER_F_PROTOCOL_FEATURES and VHOST_F_LOG_ALL; protocol features
 *    MQ, LOG_SHMFD, REPLY_ACK, BACKEND_REQ and CONFIG.  SET_CONFIG goes to
 *    the device's config_write op (so the virtio-blk writeback byte reaches
 *    vd_blk_set_write_cache).
 *  - Config changes (the device's config interrupt: a host-side write-cache
 *    change, NEEDS_RESET) go to the front end as
 *    VHOST_USER_BACKEND_CONFIG_CHANGE_MSG on the back-end channel
 *    (SET_BACKEND_REQ_FD, once BACKEND_REQ was negotiated), without
 *    NEED_REPLY: the front end answers with GET_CONFIG.  A front end
 *    without the channel is not told.
 *
 *  - Live migration (docs/vhost-user.md, "Live migration"): the dirty log
 *    (VHOST_F_LOG_ALL, LOG_SHMFD, SET_LOG_BASE, SET_LOG_FD): while LOG_ALL
 *    is acked every device-writable buffer of an answered request is
 *    logged, and while a ring's VHOST_VRING_F_LOG is set every used ring
 *    write (entry, used idx, avail_event) is logged at its log_guest_addr;
 *    4 KiB pages of guest physical memory, atomic OR, after the bytes are
 *    written.  SET_LOG_BASE is checked against its fd (size, offset,
 *    overflow) and a refusal keeps the previous log.  The image hand-over
 *    follows the vring life cycle (vd_vhost_user_server_add_image).
 *
 * Not supported (not offered, so a conforming front end never uses them):
 * INFLIGHT_SHMFD, CONFIGURE_MEM_SLOTS, packed rings, in-band notifications.
 *
 * Threading: everything runs in the GMainContext given at creation.
 */
#ifndef VD_HW_VHOST_USER_H
#define VD_HW_VHOST_USER_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/block-backend.h"
#include "hw/drain.h"
#include "hw/virtio.h"

/* Request codes (front end -> back end). */
enum {
    VD_VHOST_USER_GET_FEATURES = 1,
    VD_VHOST_USER_SET_FEATURES = 2,
    VD_VHOST_USER_SET_OWNER = 3,
    VD_VHOST_USER_RESET_OWNER = 4,
    VD_VHOST_USER_SET_MEM_TABLE = 5,
    VD_VHOST_USER_SET_LOG_BASE = 6,
    VD_VHOST_USER_SET_LOG_FD = 7,
    VD_VHOST_USER_SET_VRING_NUM = 8,
    VD_VHOST_USER_SET_VRING_ADDR = 9,
    VD_VHOST_USER_SET_VRING_BASE = 10,
    VD_VHOST_USER_GET_VRING_BASE = 11,
    VD_VHOST_USER_SET_VRING_KICK = 12,
    VD_VHOST_USER_SET_VRING_CALL = 13,
    VD_VHOST_USER_SET_VRING_ERR = 14,
    VD_VHOST_USER_GET_PROTOCOL_FEATURES = 15,
    VD_VHOST_USER_SET_PROTOCOL_FEATURES = 16,
    VD_VHOST_USER_GET_QUEUE_NUM = 17,
    VD_VHOST_USER_SET_VRING_ENABLE = 18,
    VD_VHOST_USER_SET_BACKEND_REQ_FD = 21,
    VD_VHOST_USER_GET_CONFIG = 24,
    VD_VHOST_USER_SET_CONFIG = 25,
    VD_VHOST_USER_REQ_MAX = 64,
};

/* Header flags. */
#define VD_VHOST_USER_VERSION    0x1
#define VD_VHOST_USER_VERSION_MASK 0x3
#define VD_VHOST_USER_REPLY      0x4
#define VD_VHOST_USER_NEED_REPLY 0x8

/* Feature bit 30 and the protocol feature bits we use. */
#define VD_VHOST_USER_F_PROTOCOL_FEATURES 30
#define VD_VHOST_USER_PROTOCOL_F_MQ        0
#define VD_VHOST_USER_PROTOCOL_F_LOG_SHMFD 1
#define VD_VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VD_VHOST_USER_PROTOCOL_F_BACKEND_REQ 5
#define VD_VHOST_USER_PROTOCOL_F_CONFIG    9
/* Dirty logging: the feature bit (SET_FEATURES) and the SET_VRING_ADDR flag. */
#define VD_VHOST_F_LOG_ALL 26
#define VD_VHOST_VRING_F_LOG 0
/* Back-end requests (back end -> front end, on the SET_BACKEND_REQ_FD socket). */
#define VD_VHOST_USER_BACKEND_CONFIG_CHANGE_MSG 2

#define VD_VHOST_USER_HDR_SIZE     12
#define VD_VHOST_USER_MAX_REGIONS  8    /* SET_MEM_TABLE without CONFIGURE_MEM_SLOTS */
#define VD_VHOST_USER_MAX_PAYLOAD  4096
#define VD_VHOST_USER_MAX_RING     1024 /* the largest ring taken (QEMU's VIRTQUEUE_MAX_SIZE) */
#define VD_VHOST_USER_CONFIG_HDR   12   /* offset, size, flags before the config bytes */
#define VD_VHOST_USER_VRING_IDX_MASK 0xff
#define VD_VHOST_USER_VRING_NOFD     (1u << 8)

typedef struct VdVhostUserServer VdVhostUserServer;

/* What the owner of the device supplies. */
typedef struct VdVhostUserDeviceOps {
    /*
     * Call cb(cb_opaque) once no request of the device is in flight (its
     * answer is in guest memory): vd_virtio_blk_drain / vd_virtio_scsi_drain.
     * At once if none is; never by iterating the loop.
     */
    void (*drain)(void *opaque, VdDrainFunc *cb, void *cb_opaque);
    /* Observable state changed (a front end came or went).  Optional. */
    void (*changed)(void *opaque);
} VdVhostUserDeviceOps;

/* Protocol counters. */
typedef struct VdVhostUserStats {
    uint64_t connections, disconnects, refused_connections;
    uint64_t refused_rings;          /* SET_VRING_NUM refusals (each logged with its reason) */
    uint64_t messages, bad_messages, unsupported;
    uint64_t kicks, calls, mem_tables, config_reads, config_writes;
    uint64_t config_changes;         /* CONFIG_CHANGE_MSG sent on the back-end channel */
    uint64_t rings_started, rings_stopped;
    uint64_t log_bases;              /* SET_LOG_BASE accepted (a dirty log mapped) */
    uint64_t images_taken, images_released;   /* the hand-over (vd_vhost_user_server_add_image) */
    uint64_t ignored_feature_bits;   /* bits a front end set that we never offered (mask) */
} VdVhostUserStats;

/*
 * Listen on the unix socket path (a stale socket file is replaced; one a
 * live server listens on is an error: G_IO_ERROR_ADDRESS_IN_USE) and
 * serve vdev (not owned) to one front end at a time.  The server installs
 * its translate hook and transport on vdev.  Ring sizes: the device's
 * queue size (from which it derived seg_max) is the smallest ring taken;
 * every power of two from there up to VD_VHOST_USER_MAX_RING is accepted
 * (the queues' limit is raised while the server exists).
 */
VdVhostUserServer *vd_vhost_user_server_new(const char *path, VdVirtioDevice *vdev,
                                            const VdVhostUserDeviceOps *ops, void *opaque,
                                            GMainContext *ctx, GError **errp);
/*
 * The same on a listening unix stream socket the caller inherited (--fd,
 * systemd socket activation); fd is owned by the server from success on
 * (made non-blocking and close-on-exec) and no socket file is removed at
 * the end.  An fd that is no listening unix stream socket: NULL, errp set.
 */
VdVhostUserServer *vd_vhost_user_server_new_fd(int fd, VdVirtioDevice *vdev, const VdVhostUserDeviceOps *ops,
                                               void *opaque, GMainContext *ctx, GError **errp);
/*
 * Add an image (borrowed: it must outlive the server) that the live
 * migration hand-over moves with the rings: when the first ring starts it
 * is taken (vd_blk_invalidate_cache, if inactive: the write lock, the page
 * cache dropped), and if it cannot be (another process holds the write
 * lock) the ring does not start; once the last ring stopped (its
 * GET_VRING_BASE, after the drain) or the front end left, it is released
 * (vd_blk_inactivate: fdatasync, the write lock given up).  See
 * docs/vhost-user.md, "Live migration".
 */
void vd_vhost_user_server_add_image(VdVhostUserServer *s, VdBlockBackend *blk);
/* Disconnect any front end (cleanly, as above), stop listening, remove the socket file (if we made it). */
void vd_vhost_user_server_free(VdVhostUserServer *s);
bool vd_vhost_user_connected(VdVhostUserServer *s);
void vd_vhost_user_get_stats(VdVhostUserServer *s, VdVhostUserStats *out);
/* "key=value" pairs, space separated. */
void vd_vhost_user_format_stats(VdVhostUserServer *s, GString *out);

/* Human-readable name of a request code, "?" if unknown. */
const char *vd_vhost_user_request_name(uint32_t req);

#endif
