/*
 * tiny-vmm.h - the VMM side of tiny-vmm, shared by its three files:
 *  - tiny-vmm.c: the machine (drives, bus, PCI + IDE, virtio-mmio, UART,
 *    FDT), the exits, the in-process guest, main;
 *  - host-checks.c: reads the guest's UART lines and checks each step
 *    against the block backends' counters;
 *  - tiny-kvm.c: `--kvm`, the same machine under a KVM vCPU.
 *
 * Threading: single-threaded.  Everything, the vCPU included (KVM_RUN runs
 * on the main-loop thread), runs on the thread that owns v->ctx.
 */
#ifndef TINY_VMM_H
#define TINY_VMM_H

#include <glib.h>

#include "block/block-backend.h"
#include "hw/bus.h"
#include "hw/ide.h"
#include "hw/pci.h"
#include "hw/serial.h"
#include "hw/virtio-blk.h"
#include "hw/virtio-mmio.h"

/* The board: guest RAM at 0, the PIIX3 IDE at its PC addresses, COM1, one virtio-mmio slot. */
#define TINY_RAM_SIZE    (2u << 20)
#define TINY_VIRTIO_BASE 0xd0000000ull
#define TINY_VIRTIO_IRQ  5
#define TINY_DISK_SIZE   (1u << 20)
#define TINY_HLT_TIMEOUT 10     /* seconds a HLT may wait for its interrupt */

/* The host's view of the guest's steps: which step is next, the counters at the last step line. */
typedef struct HostChecks {
    GString *line;              /* the UART line being received */
    unsigned next;              /* index of the step line expected next */
    unsigned agreed;            /* steps the guest called ok and the host check confirmed */
    bool done;                  /* "guest: done" was seen */
    bool bad;                   /* a line out of order, a disagreement or a FAILED */
    VdBlockStats ide_before, virtio_before;
} HostChecks;

/* Everything the VMM owns. */
typedef struct TinyVmm {
    GMainContext *ctx;          /* the one context; this thread runs it */
    char *dir;                  /* temporary directory of the two images */
    char *ide_path, *virtio_path;
    VdBlockBackend *ide_blk, *virtio_blk;
    VdBus *bus;
    VdPciHost *pci;
    VdIdeController *ide;
    VdVirtioBlk *vblk;
    VdVirtioMmio *mmio;
    VdSerial *uart;
    HostChecks checks;
    uint64_t irq_levels;        /* bit n: line n is high (what KVM_IRQ_LINE would be told) */
    unsigned unclaimed;         /* exits no device claimed */
    bool hlt_timed_out;
} TinyVmm;

/* The exits, as KVM_EXIT_IO / KVM_EXIT_MMIO deliver them: one bus access each. */
uint64_t tiny_pio_in(TinyVmm *v, uint16_t port, unsigned size);
void tiny_pio_out(TinyVmm *v, uint16_t port, uint64_t value, unsigned size);
uint64_t tiny_mmio_read(TinyVmm *v, uint64_t gpa, unsigned size);
void tiny_mmio_write(TinyVmm *v, uint64_t gpa, uint64_t value, unsigned size);
/* HLT: run the main loop until one of the lines in mask is high; false after TINY_HLT_TIMEOUT seconds. */
bool tiny_wait_irq(TinyVmm *v, uint64_t mask);

/* Copy the guest program (a flat image, guest.ld) to GUEST_LOAD_GPA in guest RAM. */
bool tiny_load_guest(TinyVmm *v, const char *path, GError **errp);

/* host-checks.c: start (counters now), one UART byte, and the verdict once the guest has finished. */
void host_checks_init(TinyVmm *v);
void host_checks_byte(void *opaque, uint8_t byte);
bool host_checks_passed(TinyVmm *v);
void host_checks_free(TinyVmm *v);

/* tiny-kvm.c: load the guest program at path and run it under KVM to its exit port; its exit value.
 * -1 with errp set on failure; *unavailable is set when KVM itself cannot run here.
 * (tests/embed/tiny-emu.c implements it with a CPU emulator instead, to test guest.bin without KVM.) */
int tiny_kvm_run(TinyVmm *v, const char *path, bool *unavailable, GError **errp);

#endif
