/*
 * vguest.h - a tiny in-process virtio-mmio guest for unit tests: it pokes
 * the transport through vd_bus_read/vd_bus_write and builds split rings
 * directly in guest RAM, exactly as a driver would.
 */
#ifndef VD_TEST_VGUEST_H
#define VD_TEST_VGUEST_H

#include "hw/bus.h"
#include "hw/virtio.h"
#include "hw/virtio-mmio.h"

#define VG_MAX_QUEUES 8

typedef struct VgQueue {
    unsigned num;
    uint64_t desc, avail, used;
    uint16_t avail_idx;     /* next avail slot the guest fills */
    uint16_t used_seen;     /* used entries consumed so far */
    unsigned next_desc;     /* rolling descriptor allocator */
} VgQueue;

typedef struct VGuest {
    VdBus *bus;
    uint64_t base;
    unsigned irq;
    uint64_t heap, heap_end;  /* bump allocator in guest RAM */
    VgQueue q[VG_MAX_QUEUES];
} VGuest;

/* One buffer of a chain: guest address, length, device-writable or not. */
typedef struct VgBuf {
    uint64_t addr;
    uint32_t len;
    bool write;
} VgBuf;

void vg_init(VGuest *g, VdBus *bus, uint64_t base, unsigned irq);
uint32_t vg_rd(VGuest *g, uint64_t off);
void vg_wr(VGuest *g, uint64_t off, uint32_t v);
uint64_t vg_config_read(VGuest *g, uint32_t off, unsigned size);
void vg_config_write(VGuest *g, uint32_t off, uint64_t v, unsigned size);
/* Guest RAM pointer (the guest's own view). */
void *vg_ptr(VGuest *g, uint64_t gpa);
/* Allocate zeroed guest RAM, 16-byte aligned. */
uint64_t vg_alloc(VGuest *g, uint64_t len);
/* Reset, ACKNOWLEDGE, DRIVER, write features, FEATURES_OK; true if FEATURES_OK stuck. */
/* Reset the device and wait until status reads 0 (running the default context); false on timeout. */
bool vg_reset(VGuest *g);
bool vg_negotiate(VGuest *g, uint64_t features);
uint64_t vg_device_features(VGuest *g);
/* Set up queue q with num entries; true if QueueReady reads back 1. */
bool vg_setup_queue(VGuest *g, unsigned q, unsigned num);
void vg_driver_ok(VGuest *g);
/* Write descriptor idx of queue q's table. */
void vg_set_desc(VGuest *g, unsigned q, unsigned idx, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
/* Write a descriptor into an arbitrary (indirect) table. */
void vg_write_desc_at(VGuest *g, uint64_t table, unsigned idx, uint64_t addr, uint32_t len, uint16_t flags,
                      uint16_t next);
/* Build a direct chain from bufs with fresh descriptors; returns the head. */
unsigned vg_chain(VGuest *g, unsigned q, const VgBuf *bufs, unsigned n);
/* Build an indirect chain (one direct descriptor pointing at a table); returns the head. */
unsigned vg_chain_indirect(VGuest *g, unsigned q, const VgBuf *bufs, unsigned n);
/* Put head in the avail ring (no kick). */
void vg_publish(VGuest *g, unsigned q, uint16_t head);
void vg_kick(VGuest *g, unsigned q);
/* Next unseen used entry; false if none. */
bool vg_pop_used(VGuest *g, unsigned q, uint32_t *id, uint32_t *len);
uint16_t vg_used_idx(VGuest *g, unsigned q);
/* Read and acknowledge InterruptStatus. */
uint32_t vg_ack(VGuest *g);
/* Iterate the bus context until the used ring of q has a new entry or timeout (ms). */
bool vg_wait_used(VGuest *g, unsigned q, unsigned timeout_ms);

#endif
