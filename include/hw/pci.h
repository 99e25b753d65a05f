/*
 * pci.h - a PCI host bridge (configuration mechanism #1 at 0xcf8/0xcfc) and
 * type-0 function config space with BARs.
 *
 * Ownership: the VMM owns the VdPciHost (vd_pci_host_new /
 * vd_pci_host_free) and frees it after the functions plugged into it
 * (vd_ide_free first) and before vd_bus_free.  A VdPciDevice is owned by
 * the device model that embeds it (the IDE controller); the host only keeps
 * a pointer while it is registered, and vd_pci_host_free unregisters what
 * is left.
 *
 * Threading: the thread of the bus's GMainContext, like the bus.
 *
 * Guarantees:
 *  - Config reads of an absent function return all ones.
 *  - Only writable bits change: command, BARs (size-aligned), interrupt line,
 *    and what a device's config_write hook accepts.
 *  - A BAR's region is mapped on the bus exactly while its decode bit
 *    (command bit 0 for I/O, bit 1 for memory) is set and its address is
 *    non-zero; reprogramming a BAR moves the region.  A BAR that would
 *    overlap another region stays unmapped.
 */
#ifndef VD_HW_PCI_H
#define VD_HW_PCI_H

#include "hw/bus.h"

#define VD_PCI_VENDOR_ID      0x00
#define VD_PCI_DEVICE_ID      0x02
#define VD_PCI_COMMAND        0x04
#define VD_PCI_STATUS         0x06
#define VD_PCI_REVISION       0x08
#define VD_PCI_PROG_IF        0x09
#define VD_PCI_SUBCLASS       0x0a
#define VD_PCI_CLASS          0x0b
#define VD_PCI_HEADER_TYPE    0x0e
#define VD_PCI_BAR0           0x10
#define VD_PCI_INTERRUPT_LINE 0x3c
#define VD_PCI_INTERRUPT_PIN  0x3d

#define VD_PCI_COMMAND_IO     0x1
#define VD_PCI_COMMAND_MEMORY 0x2
#define VD_PCI_COMMAND_MASTER 0x4

typedef struct VdPciHost VdPciHost;
typedef struct VdPciDevice VdPciDevice;

typedef struct VdPciBar {
    uint32_t size;              /* power of two; 0 = BAR not implemented */
    bool io;
    const VdIoOps *ops;
    void *opaque;
    VdRegion *region;           /* mapped region, or NULL */
} VdPciBar;

struct VdPciDevice {
    uint8_t config[256];
    VdPciBar bars[6];
    const char *name;
    /* Optional hook for device-specific config registers beyond the header. */
    void (*config_write)(VdPciDevice *dev, unsigned offset, uint32_t value, unsigned size);
    VdPciHost *host;
    unsigned devfn;
};

/* Create the host bridge (00:00.0, 8086:1237) and claim ports 0xcf8-0xcff. */
VdPciHost *vd_pci_host_new(VdBus *bus, GError **errp);
void vd_pci_host_free(VdPciHost *host);
VdBus *vd_pci_host_bus(VdPciHost *host);

/* Fill the fixed header fields of a function. */
void vd_pci_device_init(VdPciDevice *dev, const char *name, uint16_t vendor, uint16_t device,
                        uint8_t class_code, uint8_t subclass, uint8_t prog_if);
/* Declare a BAR before registration; addr != 0 preassigns it. */
void vd_pci_device_set_bar(VdPciDevice *dev, unsigned bar, uint32_t size, bool io,
                           const VdIoOps *ops, void *opaque, uint32_t addr);
/* Plug a function in at devfn (device << 3 | function). */
bool vd_pci_register(VdPciHost *host, VdPciDevice *dev, unsigned devfn, GError **errp);
/* Unplug and unmap its BARs. */
void vd_pci_unregister(VdPciDevice *dev);

/* Config space access as the host bridge performs it (also for tests). */
uint32_t vd_pci_config_read(VdPciDevice *dev, unsigned offset, unsigned size);
void vd_pci_config_write(VdPciDevice *dev, unsigned offset, uint32_t value, unsigned size);

#endif
