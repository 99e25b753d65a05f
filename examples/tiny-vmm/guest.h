/*
 * guest.h - the tiny guest that tiny-vmm runs: it finds its devices in the
 * flattened device tree the VMM put in its RAM, then runs the register
 * sequences a guest driver runs on the PIIX3 IDE disk and on virtio-blk
 * over virtio-mmio, and prints one line per step on the 16550A UART.
 *
 * The same code runs in two ways (guest-cpu.h): called in tiny-vmm's
 * process, or built freestanding (guest.bin) and run under KVM.
 *
 * Output (the VMM reads it from the UART and checks each step line against
 * the block counters):
 *   guest: found ...                        discovery, one line per device
 *   guest: step NAME: what happened: ok     or ": FAILED", one per step
 *   guest: done: N of M steps ok
 *
 * Threading: one vCPU; the guest is single-threaded.
 */
#ifndef TINY_GUEST_H
#define TINY_GUEST_H

#include "guest-cpu.h"

/* What the guest writes: GUEST_SECTORS sectors at sector 0 of each disk. */
#define GUEST_SECTORS     8
#define GUEST_IDE_FILL    0xa5
#define GUEST_VIRTIO_FILL 0x5a
/* Guest RAM the guest's buffers use (it needs GUEST_RAM_MIN bytes). */
#define GUEST_RAM_MIN     (1u << 20)
/* Where the VMM puts the FDT (at most GUEST_FDT_MAX bytes); the guest is told its address. */
#define GUEST_FDT_GPA     0x30000u
#define GUEST_FDT_MAX     0x4000u
/* Where the VMM loads guest.bin (guest.ld) and where its image must end. */
#define GUEST_LOAD_GPA    0x100000u
#define GUEST_LOAD_MAX    0x80000u
/* A write of the guest's result to this port ends a bare-metal run (QEMU's isa-debug-exit port). */
#define GUEST_EXIT_PORT   0x501

/* A device found in the FDT: up to two register windows and one interrupt line. */
typedef struct GuestDev {
    bool found, pio;                /* pio: the windows are I/O ports (children of an ISA node) */
    uint64_t base[2], size[2];
    unsigned nwin;
    unsigned irq;
} GuestDev;

/* The guest: its CPU, the devices it found, its virtqueue state. */
typedef struct Guest {
    GuestCpu *cpu;
    GuestDev uart, ide, virtio;
    uint16_t bmdma;                 /* IDE bus-master registers (PIIX3 BAR4) */
    uint16_t avail_idx, used_seen;  /* virtqueue 0 */
} Guest;

/* The whole program: discovery from the FDT at fdt_gpa, then every step; the number of failures. */
unsigned guest_main(Guest *g, uint32_t fdt_gpa);

/* printf to the UART: %s %c %d %u %x with an optional zero-padded width (%02x). */
void guest_printf(Guest *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The first node compatible with `compatible` in the FDT at fdt (big-endian blob); out->found says. */
void guest_fdt_find(const uint8_t *fdt, const char *compatible, GuestDev *out);

/* PCI configuration mechanism #1: the PIIX3 IDE's BAR4 with I/O and bus mastering enabled; 0 if absent. */
uint16_t guest_ide_bmdma_base(Guest *g);

/* The steps, in order; each prints its "guest: step NAME: ..." line and returns its verdict. */
bool guest_ide_cache_off(Guest *g);     /* SET FEATURES 82h, IDENTIFY word 85 confirms */
bool guest_ide_write_dma(Guest *g);     /* WRITE DMA of GUEST_SECTORS at LBA 0, one PRD entry */
bool guest_ide_cache_on(Guest *g);      /* SET FEATURES 02h, IDENTIFY word 85 confirms */
bool guest_virtio_init(Guest *g);       /* reset, VERSION_1 + FLUSH + CONFIG_WCE, queue 0, DRIVER_OK */
bool guest_virtio_write(Guest *g);      /* OUT of GUEST_SECTORS at sector 0 */
bool guest_virtio_flush(Guest *g);      /* FLUSH */

#endif
