/*
 * vhost-fe.h - an in-process vhost-user front end for the back end's unit
 * tests: a 1 MiB image behind virtio-blk served on a fresh socket, memfd
 * guest memory with one ring at a fixed layout, and message helpers.
 */
#ifndef VD_TEST_VHOST_FE_H
#define VD_TEST_VHOST_FE_H

#include "block/block-backend.h"
#include "hw/vhost-user-server.h"
#include "hw/virtio-blk.h"
#include "hw/virtio-scsi.h"
#include "mock-driver.h"
#include "util/unix-fds.h"

#include <glib/gstdio.h>

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#define IMG_SIZE  (1 << 20)
#define MEM_SIZE  (64 * 1024)
#define GPA_BASE  0x10000ull
#define UVA_BASE  0x7f0000000000ull
#define QSZ       16
/* Guest-physical layout of the test ring and request. */
#define G_DESC    (GPA_BASE + 0x0000)
#define G_AVAIL   (GPA_BASE + 0x1000)
#define G_USED    (GPA_BASE + 0x2000)
#define G_HDR     (GPA_BASE + 0x3000)
#define G_DATA    (GPA_BASE + 0x4000)
#define G_STATUS  (GPA_BASE + 0x6000)
#define F_PROTOCOL (1ull << VD_VHOST_USER_F_PROTOCOL_FEATURES)
#define ACK_FEATURES ((1ull << VD_VIRTIO_F_VERSION_1) | (1ull << VD_VIRTIO_BLK_F_FLUSH) | \
                      (1ull << VD_VIRTIO_BLK_F_CONFIG_WCE) | F_PROTOCOL)

typedef struct Fx {
    char *dir, *sock, *img;
    VdBlockBackend *blk;
    VdVirtioBlk *dev;
    VdVirtioScsi *scsi;    /* the drain tests' virtio-scsi (dev is NULL then) */
    VdVhostUserServer *srv;
    int c;                 /* the front end's socket */
    int memfd;
    uint8_t *mem;          /* our view of "guest memory" (GPA_BASE..) */
    size_t mem_size;
    int kick, call;
    int kicks[3];          /* the drain tests: one kick eventfd per ring */
} Fx;

/* Run everything the context has ready. */
void pump(void);
/* Connect a new front end. */
int connect_front_end(Fx *f);
/* The server's drain op (the device's drain API), and the ops that use it. */
void drain_blk(void *opaque, VdDrainFunc *cb, void *cb_opaque);
extern const VdVhostUserDeviceOps dev_ops;
/* Guest memory (a memfd of size bytes) and the eventfds. */
void guest_memory_new(Fx *f, size_t size);
/* A fixture in a fresh directory: the socket path and a zeroed image of img_size bytes (nothing served yet). */
Fx *fx_new(size_t img_size);
/* Serve f->img (backend options opts, e.g. "cache=writeback") on f->sock: device, server, guest memory, front end. */
void fx_serve(Fx *f, const char *opts);
/* Undo fx_serve (the front end disconnects first if still connected). */
void fx_release(Fx *f);
/* cmocka setup: a 1 MiB image behind virtio-blk, served on a fresh socket, one front end connected. */
int setup_server(void **state);
int teardown(void **state);
/* Send one message (header + payload, fds as SCM_RIGHTS). */
void send_msg(Fx *f, uint32_t req, uint32_t flags, const void *payload, uint32_t size, const int *fds,
              unsigned nfds);
/* Wait (pumping the server) until the socket is readable or at EOF; false on timeout. */
bool wait_readable(Fx *f);
/* Read a reply to req; returns its payload size, -1 if the server hung up. */
int recv_reply(Fx *f, uint32_t req, void *payload, uint32_t max);
/* Request a u64 (GET_FEATURES etc.). */
uint64_t get_u64(Fx *f, uint32_t req);
/* Send a message with NEED_REPLY and return the REPLY_ACK value (0 success). */
uint64_t acked(Fx *f, uint32_t req, const void *payload, uint32_t size, const int *fds, unsigned nfds);
/* True once the server has closed our connection. */
bool dropped(Fx *f);
/* Protocol features with REPLY_ACK, then the given device features; negotiate: the virtio-blk ones. */
void negotiate_features(Fx *f, uint64_t feat);
void negotiate(Fx *f);
/* GET_CONFIG of the whole virtio-blk config space. */
void get_config(Fx *f, uint8_t *cfg);
/* Store little-endian values in guest memory; the used ring's idx. */
void g16(Fx *f, uint64_t gpa, uint16_t v);
void g32(Fx *f, uint64_t gpa, uint32_t v);
void g64(Fx *f, uint64_t gpa, uint64_t v);
uint16_t used_idx(Fx *f);
/* Memory table: one memfd region. */
uint64_t set_mem_table(Fx *f, uint64_t size);
/* Ring 0 at the fixed layout, resuming at avail index start, started and enabled. */
void setup_ring(Fx *f, uint32_t start);
/* The same, returning SET_VRING_ENABLE's REPLY_ACK (0: the ring started). */
uint64_t start_ring(Fx *f, uint32_t start);
/* Put a virtio-blk request of type (OUT or IN) for one 4 KiB block at sector as avail entry n. */
void post_request(Fx *f, unsigned n, uint32_t type, uint64_t sector, uint64_t data_gpa);
/* Put a virtio-blk OUT of one 4 KiB block at sector, filled with byte fill, as avail entry n. */
void post_write(Fx *f, unsigned n, uint64_t sector, uint8_t fill, uint64_t data_gpa);
/* Pump until the used index reaches want (the backend completes on its thread pool). */
bool wait_used(Fx *f, uint16_t want);

#endif
