/*
 * guest-hosted.h - the tiny guest's CPU when it runs inside tiny-vmm's
 * process (no KVM): each instruction that would exit to the VMM under KVM
 * is a call into the VMM instead, which routes it to its VdBus the same way.
 *
 * Threading: the VMM's main-loop thread (the guest runs on it).
 */
#ifndef TINY_GUEST_HOSTED_H
#define TINY_GUEST_HOSTED_H

#include "guest-cpu.h"

/* The exits a guest can cause; the VMM routes each one to the VdBus. */
typedef struct GuestExits {
    uint64_t (*pio_in)(void *vmm, uint16_t port, unsigned size);              /* KVM_EXIT_IO, in */
    void (*pio_out)(void *vmm, uint16_t port, uint64_t value, unsigned size); /* KVM_EXIT_IO, out */
    uint64_t (*mmio_read)(void *vmm, uint64_t gpa, unsigned size);            /* KVM_EXIT_MMIO, read */
    void (*mmio_write)(void *vmm, uint64_t gpa, uint64_t value, unsigned size);
    /* HLT: sleep until interrupt line irq is raised; false if it never was. */
    bool (*hlt)(void *vmm, unsigned irq);
    /* PAUSE in a polling loop: lets the host make progress. */
    void (*pause)(void *vmm);
} GuestExits;

/* The hosted CPU: the VMM's exits and the guest's RAM (borrowed from the VMM's bus). */
struct GuestCpu {
    const GuestExits *exits;
    void *vmm;
    uint8_t *ram;
    uint64_t ram_size;
};

#endif
