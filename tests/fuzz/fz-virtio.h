/*
 * fz-virtio.h - the virtio-mmio guest both virtio fuzz targets share: it
 * negotiates, sets up split rings with the unit tests' vguest, and runs the
 * generic operations (raw descriptors, publish, kick, guest RAM, registers,
 * config, reset).  A device target adds request templates of its own.
 *
 * Oracles (docs/fuzzing.md): after each settle the guest either sees every
 * published head answered in the used ring, or the device is in its
 * documented error state (NEEDS_RESET); a completed reset (status reads 0)
 * and every "all answered" point are quiescent (fz_quiescent).
 */
#ifndef VD_FZ_VIRTIO_H
#define VD_FZ_VIRTIO_H

#include "fuzz-common.h"
#include "vguest.h"

#define FZV_RAM       (1u << 20)
#define FZV_BASE      0xfeb00000ull
#define FZV_IRQ       16
#define FZV_QSIZE     16
#define FZV_DATA      0x20000u        /* request buffers live in [FZV_DATA, FZV_RAM) */

typedef struct FzVirtio {
    VdBus *bus;
    VGuest g;
    uint64_t features;
    unsigned nq;                /* queues set up */
    unsigned skip_q;            /* a queue the guest fills that is not answered on demand (event), or nq */
    uint64_t heap0;             /* vguest heap after vg_init, reused by every setup */
    uint32_t data_next;         /* rolling allocator in the data area */
    bool unchecked;             /* the input wrote registers behind the guest's back: no answered oracle */
    unsigned resets;
} FzVirtio;

/* Generic operations; a target numbers its own from FZV_OP__MAX. */
enum { FZV_OP_DESC, FZV_OP_PUBLISH, FZV_OP_KICK, FZV_OP_RAM, FZV_OP_MMIO, FZV_OP_CONFIG, FZV_OP_PUMP,
       FZV_OP_SETTLE, FZV_OP_RESET, FZV_OP__MAX };

/* Bring up the guest: negotiate features, set up nq queues of FZV_QSIZE, DRIVER_OK. */
void fzv_start(FzVirtio *v, VdBus *bus, uint64_t features, unsigned nq, unsigned skip_q);
/* Space for len bytes in the data area (wraps around; old requests may be overwritten). */
uint64_t fzv_alloc(FzVirtio *v, uint32_t len);
/* Build a chain of bufs (direct, or indirect if indirect) on queue q, publish it and kick. */
void fzv_submit(FzVirtio *v, unsigned q, const VgBuf *bufs, unsigned n, bool indirect);
/* Run one generic operation. */
void fzv_op(FzVirtio *v, FzIn *in, unsigned op);
/* Wait until every published head is answered or the device is broken; check the oracles. */
void fzv_settle(FzVirtio *v);

#endif
