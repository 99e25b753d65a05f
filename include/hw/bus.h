/*
 * bus.h - guest RAM, port-I/O and MMIO regions, DMA and IRQ lines.
 *
 * A VdBus is the machine's address spaces as a device sees them.  Devices
 * register regions; the VMM (qtest server or KVM runner) dispatches guest
 * accesses through vd_bus_read / vd_bus_write.
 *
 * Ownership:
 *  - The VMM owns the VdBus (vd_bus_new / vd_bus_free) and, through it,
 *    guest RAM: one zeroed, page-aligned anonymous mapping of ram_size
 *    bytes at vd_bus_ram(), unmapped by vd_bus_free.  A KVM VMM hands
 *    exactly that mapping to KVM_SET_USER_MEMORY_REGION.
 *  - A VdRegion belongs to the device that mapped it, which unmaps it in its
 *    own free function.  ops (and opaque) are borrowed and must stay valid
 *    while the region is mapped (use a static const VdIoOps); name is copied.
 *  - The IRQ listener and its opaque are the VMM's; one per bus.
 *  - Free every device on the bus, then vd_bus_free.  vd_bus_free unmaps
 *    regions left behind, but their devices would still point at the bus.
 *
 * Guarantees:
 *  - vd_dma_map returns a pointer only when [gpa, gpa+len) lies wholly
 *    inside guest RAM (overflow-safe); devices must never touch guest memory
 *    any other way.
 *  - An access to an address no region claims reads as all ones and
 *    ignores writes; vd_bus_read/write report it by returning false.
 *  - Regions never overlap: vd_bus_map refuses an overlapping region.
 *  - IRQ lines are level-triggered; the listener hears only real changes.
 *
 * Threading: the bus belongs to the thread that runs its GMainContext (the
 * ctx given to vd_bus_new; NULL: the thread-default one).  Every function,
 * vd_bus_read/write included, runs on that thread, and so do the region
 * callbacks and the IRQ listener: the listener is called synchronously from
 * vd_irq_set, i.e. from inside a register access or a backend completion.
 * A VMM whose vCPUs run on other threads hands each I/O exit to that thread
 * and waits for the answer (docs/embedding.md).
 */
#ifndef VD_HW_BUS_H
#define VD_HW_BUS_H

#include <gio/gio.h> /* GError domains: G_IO_ERROR */
#include <stdbool.h>
#include <stdint.h>

typedef struct VdBus VdBus;
typedef struct VdRegion VdRegion;

typedef enum VdSpace { VD_SPACE_PIO, VD_SPACE_MMIO } VdSpace;

/* Register callbacks; addr is relative to the region base, size is 1, 2, 4 or 8. */
typedef struct VdIoOps {
    uint64_t (*read)(void *opaque, uint64_t addr, unsigned size);
    void (*write)(void *opaque, uint64_t addr, uint64_t value, unsigned size);
} VdIoOps;

#define VD_IRQ_LINES 64

VdBus *vd_bus_new(uint64_t ram_size, GMainContext *ctx, GError **errp);
void vd_bus_free(VdBus *bus);
GMainContext *vd_bus_context(VdBus *bus);

/* Claim [base, base+len) in a space; fails if it overlaps a region (or RAM, for MMIO). */
VdRegion *vd_bus_map(VdBus *bus, VdSpace space, uint64_t base, uint64_t len,
                     const VdIoOps *ops, void *opaque, const char *name, GError **errp);
void vd_bus_unmap(VdBus *bus, VdRegion *region);
uint64_t vd_region_base(const VdRegion *region);
const char *vd_region_name(const VdRegion *region);

/* Dispatch a guest access; false if no region claims the address. */
bool vd_bus_read(VdBus *bus, VdSpace space, uint64_t addr, unsigned size, uint64_t *value);
bool vd_bus_write(VdBus *bus, VdSpace space, uint64_t addr, uint64_t value, unsigned size);

/* Guest RAM, at guest physical 0 .. ram_size. */
uint8_t *vd_bus_ram(VdBus *bus);
uint64_t vd_bus_ram_size(VdBus *bus);
/* Host pointer for [gpa, gpa+len) if it lies wholly in RAM, else NULL. */
void *vd_dma_map(VdBus *bus, uint64_t gpa, uint64_t len);
bool vd_dma_read(VdBus *bus, uint64_t gpa, void *buf, uint64_t len);
bool vd_dma_write(VdBus *bus, uint64_t gpa, const void *buf, uint64_t len);

/* Level-triggered interrupt lines 0 .. VD_IRQ_LINES-1. */
typedef void VdIrqListener(void *opaque, unsigned line, bool level);
void vd_irq_set(VdBus *bus, unsigned line, bool level);
bool vd_irq_level(VdBus *bus, unsigned line);
void vd_bus_set_irq_listener(VdBus *bus, VdIrqListener *fn, void *opaque);

#endif
