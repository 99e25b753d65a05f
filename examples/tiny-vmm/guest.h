/*
 * guest.h - the tiny guest that tiny-vmm runs: the register sequences a
 * guest driver would run on the PIIX3 IDE disk and on virtio-blk over
 * virtio-mmio.  It is written against a GuestCpu only: the instructions
 * that cause VM exits (IN/OUT, MMIO loads and stores, HLT, PAUSE) and the
 * guest's physical memory.  Under KVM the same sequences would be guest
 * code and every GuestExits call a VM exit; here they are plain calls.
 *
 * Each step prints one "guest: ..." line with what the device answered and
 * returns false if the device's answer was an error.
 *
 * Threading: the guest runs on the VMM's main-loop thread (see tiny-vmm.c).
 */
#ifndef TINY_VMM_GUEST_H
#define TINY_VMM_GUEST_H

#include <stdbool.h>
#include <stdint.h>

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

/* Where the devices are (a real guest reads this from its FDT or ACPI tables). */
typedef struct GuestBoard {
    uint16_t ide_cmd, ide_ctl, ide_bmdma;   /* primary channel and its bus-master registers */
    unsigned ide_irq;
    uint64_t virtio_base;                   /* virtio-mmio window */
    unsigned virtio_irq;
} GuestBoard;

/* The guest: its CPU (exits), its RAM, its board, and its virtqueue state. */
typedef struct Guest {
    const GuestExits *exits;
    void *vmm;
    uint8_t *ram;                           /* guest physical 0 .. ram_size */
    uint64_t ram_size;
    GuestBoard board;
    uint16_t avail_idx, used_seen;          /* virtqueue 0 */
} Guest;

/* What the guest writes: GUEST_SECTORS sectors at sector 0 of each disk. */
#define GUEST_SECTORS     8
#define GUEST_IDE_FILL    0xa5
#define GUEST_VIRTIO_FILL 0x5a
/* Guest RAM the guest uses (it needs GUEST_RAM_MIN bytes). */
#define GUEST_RAM_MIN     (1u << 20)

/* IDE: SET FEATURES 82h (write cache off), then IDENTIFY to confirm word 85. */
bool guest_ide_cache_off(Guest *g);
/* IDE: WRITE DMA of GUEST_SECTORS sectors at LBA 0 through one PRD entry. */
bool guest_ide_write_dma(Guest *g);
/* IDE: SET FEATURES 02h (write cache on), then IDENTIFY to confirm word 85. */
bool guest_ide_cache_on(Guest *g);
/* virtio-blk: reset, negotiate VERSION_1 + FLUSH + CONFIG_WCE, set up queue 0, DRIVER_OK. */
bool guest_virtio_init(Guest *g);
/* virtio-blk: an OUT request of GUEST_SECTORS sectors at sector 0. */
bool guest_virtio_write(Guest *g);
/* virtio-blk: a FLUSH request. */
bool guest_virtio_flush(Guest *g);

#endif
