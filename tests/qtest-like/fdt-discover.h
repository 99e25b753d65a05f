/*
 * fdt-discover.h - find devices in the vdisk machine's flattened device tree,
 * as a guest driver does at boot.  The tree comes from the `dtb` command.
 *
 * Layout (docs/vdisk-vmm.md): MMIO devices are children of / with
 * reg = <addr-hi addr-lo size-hi size-lo>; port I/O devices are children of
 * /isa with reg = <1 port length> per window.  "interrupts" is one cell,
 * the machine IRQ line.  "vdisk,drives" lists the drive ids a node serves.
 *
 * Guarantees: malformed or truncated trees yield "not found", never a crash.
 */
#ifndef VD_FDT_DISCOVER_H
#define VD_FDT_DISCOVER_H

#include "qtest-client.h"

typedef struct VdFdtDevice {
    char path[256];
    bool pio;                 /* registers are I/O ports */
    unsigned nwindows;        /* register windows found (up to 2) */
    uint64_t base, size;      /* first window */
    uint64_t base2, size2;    /* second window (IDE control block), if nwindows == 2 */
    int irq;                  /* -1 if the node has no interrupts property */
} VdFdtDevice;

/* Devices compatible with `compatible`, in tree order; the number found (up to max stored). */
unsigned vd_fdt_find_compatible(const void *fdt, const char *compatible, VdFdtDevice *out, unsigned max);
/* The device whose vdisk,drives lists drive_id. */
bool vd_fdt_find_drive(const void *fdt, const char *drive_id, VdFdtDevice *out);
/* RAM size from /memory@0, 0 if absent. */
uint64_t vd_fdt_ram_size(const void *fdt);
/* Fetch the tree from the VMM and find the device serving drive_id; false if none. */
bool vd_qtest_find_drive(VdQtest *q, const char *drive_id, VdFdtDevice *out);

#endif
