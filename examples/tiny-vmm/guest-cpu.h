/*
 * guest-cpu.h - the only things the tiny guest's drivers need from a CPU:
 * port I/O, MMIO loads and stores, guest-physical memory, HLT until a
 * device interrupts, and PAUSE in a polling loop.
 *
 * Two implementations, chosen at link time, run the same driver code:
 *  - guest-hosted.c: inside tiny-vmm's process (no KVM); every call is a
 *    GuestExits callback that the VMM routes to its VdBus exactly as it
 *    routes KVM_EXIT_IO / KVM_EXIT_MMIO.
 *  - guest-bare.c: the freestanding program (guest.bin) that `tiny-vmm
 *    --kvm` runs in a KVM VM; every call is the x86 instruction itself.
 *
 * This header and every guest-*.c file use only the compiler's freestanding
 * headers (no libc), so that both builds take them unchanged.
 *
 * Threading: one vCPU; the guest is single-threaded.
 */
#ifndef TINY_GUEST_CPU_H
#define TINY_GUEST_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct GuestCpu GuestCpu;

/* Port input/output of size 1, 2 or 4 bytes. */
uint32_t gcpu_in(GuestCpu *c, uint16_t port, unsigned size);
void gcpu_out(GuestCpu *c, uint16_t port, uint32_t value, unsigned size);
/* MMIO load/store of size 1, 2 or 4 bytes at a guest-physical address outside RAM. */
uint32_t gcpu_mmio_read(GuestCpu *c, uint64_t gpa, unsigned size);
void gcpu_mmio_write(GuestCpu *c, uint64_t gpa, uint32_t value, unsigned size);
/* A pointer to guest RAM at gpa (the guest's own view of its memory). */
uint8_t *gcpu_ram(GuestCpu *c, uint64_t gpa);
/* HLT: sleep until a device raises interrupt line irq; false if none came (hosted only). */
bool gcpu_wait_irq(GuestCpu *c, unsigned irq);
/* PAUSE inside a polling loop. */
void gcpu_pause(GuestCpu *c);

/* Little-endian stores and loads in guest RAM (virtio and PRD tables are little-endian). */
static inline void gst16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static inline void gst32(uint8_t *p, uint32_t v) { gst16(p, v); gst16(p + 2, v >> 16); }
static inline void gst64(uint8_t *p, uint64_t v) { gst32(p, v); gst32(p + 4, v >> 32); }
static inline uint16_t gld16(const volatile uint8_t *p) { return p[0] | p[1] << 8; }

/* Barriers between ring contents and ring indexes (the device runs concurrently). */
#define GUEST_WMB() __atomic_thread_fence(__ATOMIC_RELEASE)
#define GUEST_MB()  __atomic_thread_fence(__ATOMIC_SEQ_CST)

#endif
