/* pci-host.c - PCI configuration mechanism #1 and type-0 config space with BARs. */
#include "hw/pci.h"
#include "util/bswap.h"

#include <string.h>

#define PCI_SLOTS 256 /* devfn on bus 0 */

struct VdPciHost {
    VdBus *bus;
    VdRegion *region;
    uint32_t address;           /* the 0xcf8 register */
    VdPciDevice *devices[PCI_SLOTS];
    VdPciDevice bridge;
};

/* Read a little-endian field of config space. */
static uint32_t cfg_get(const VdPciDevice *dev, unsigned off, unsigned size)
{
    return (uint32_t)vd_ld_le_n(dev->config + off, size);
}

/* Write a little-endian field of config space. */
static void cfg_set(VdPciDevice *dev, unsigned off, uint32_t v, unsigned size)
{
    vd_st_le_n(dev->config + off, v, size);
}

void vd_pci_device_init(VdPciDevice *dev, const char *name, uint16_t vendor, uint16_t device,
                        uint8_t class_code, uint8_t subclass, uint8_t prog_if)
{
    memset(dev->config, 0, sizeof(dev->config));
    dev->name = name;
    cfg_set(dev, VD_PCI_VENDOR_ID, vendor, 2);
    cfg_set(dev, VD_PCI_DEVICE_ID, device, 2);
    dev->config[VD_PCI_CLASS] = class_code;
    dev->config[VD_PCI_SUBCLASS] = subclass;
    dev->config[VD_PCI_PROG_IF] = prog_if;
}

void vd_pci_device_set_bar(VdPciDevice *dev, unsigned bar, uint32_t size, bool io,
                           const VdIoOps *ops, void *opaque, uint32_t addr)
{
    g_return_if_fail(bar < 6 && (size & (size - 1)) == 0 && size >= (io ? 4u : 16u));
    dev->bars[bar] = (VdPciBar){ .size = size, .io = io, .ops = ops, .opaque = opaque };
    cfg_set(dev, VD_PCI_BAR0 + 4 * bar, (addr & ~(size - 1)) | (io ? 1 : 0), 4);
}

/* Map or unmap every BAR so the bus matches the command register and BAR values. */
static void update_bars(VdPciDevice *dev)
{
    uint16_t cmd = cfg_get(dev, VD_PCI_COMMAND, 2);
    for (unsigned i = 0; i < 6; i++) {
        VdPciBar *bar = &dev->bars[i];
        if (!bar->size) {
            continue;
        }
        uint32_t raw = cfg_get(dev, VD_PCI_BAR0 + 4 * i, 4);
        uint64_t addr = raw & (bar->io ? ~3u : ~15u);
        bool enabled = (cmd & (bar->io ? VD_PCI_COMMAND_IO : VD_PCI_COMMAND_MEMORY)) && addr != 0;
        if (bar->region && (!enabled || vd_region_base(bar->region) != addr)) {
            vd_bus_unmap(dev->host->bus, bar->region);
            bar->region = NULL;
        }
        if (enabled && !bar->region) {
            g_autofree char *name = g_strdup_printf("%s-bar%u", dev->name, i);
            /* An overlapping BAR stays unmapped, as on a real bus with a conflict. */
            bar->region = vd_bus_map(dev->host->bus, bar->io ? VD_SPACE_PIO : VD_SPACE_MMIO, addr, bar->size,
                                     bar->ops, bar->opaque, name, NULL);
        }
    }
}

uint32_t vd_pci_config_read(VdPciDevice *dev, unsigned offset, unsigned size)
{
    if (offset >= 256 || size > 256 - offset) {
        return UINT32_MAX;
    }
    return cfg_get(dev, offset, size);
}

/* Apply a guest config write, honouring which bits are writable. */
void vd_pci_config_write(VdPciDevice *dev, unsigned offset, uint32_t value, unsigned size)
{
    if (offset >= 256 || size > 256 - offset) {
        return;
    }
    for (unsigned i = 0; i < size; i++) {
        unsigned off = offset + i;
        uint8_t byte = value >> (8 * i);
        if (off == VD_PCI_COMMAND) {
            dev->config[off] = byte & (VD_PCI_COMMAND_IO | VD_PCI_COMMAND_MEMORY | VD_PCI_COMMAND_MASTER);
        } else if (off >= VD_PCI_BAR0 && off < VD_PCI_BAR0 + 24) {
            VdPciBar *bar = &dev->bars[(off - VD_PCI_BAR0) / 4];
            unsigned shift = 8 * ((off - VD_PCI_BAR0) % 4);
            uint32_t mask = bar->size ? ~(bar->size - 1) & (bar->io ? ~3u : ~15u) : 0;
            dev->config[off] = (dev->config[off] & ~(mask >> shift)) | (byte & (mask >> shift));
        } else if (off == VD_PCI_INTERRUPT_LINE) {
            dev->config[off] = byte;
        }
    }
    if (dev->config_write && offset >= 0x40) {
        dev->config_write(dev, offset, value, size);
    }
    if (offset < VD_PCI_BAR0 + 24 && offset + size > VD_PCI_COMMAND) {
        update_bars(dev);
    }
}

/* The function addressed by CONFIG_ADDRESS, or NULL (bus != 0, absent, disabled). */
static VdPciDevice *addressed_device(VdPciHost *h)
{
    if (!(h->address & 0x80000000u) || ((h->address >> 16) & 0xff) != 0) {
        return NULL;
    }
    return h->devices[(h->address >> 8) & 0xff];
}

/* Port read: 0xcf8 (address, 32-bit) or 0xcfc-0xcff (data window). */
static uint64_t host_io_read(void *opaque, uint64_t addr, unsigned size)
{
    VdPciHost *h = opaque;
    if (addr == 0 && size == 4) {
        return h->address;
    }
    if (addr < 4) {
        return UINT32_MAX;
    }
    VdPciDevice *dev = addressed_device(h);
    unsigned off = (h->address & 0xfc) + (addr - 4);
    if (!dev || off + size > 256) {
        return UINT32_MAX;
    }
    return vd_pci_config_read(dev, off, size);
}

/* Port write: latch CONFIG_ADDRESS or forward to the addressed function. */
static void host_io_write(void *opaque, uint64_t addr, uint64_t value, unsigned size)
{
    VdPciHost *h = opaque;
    if (addr == 0 && size == 4) {
        h->address = value & 0x80fffffcu;
        return;
    }
    if (addr < 4) {
        return;
    }
    VdPciDevice *dev = addressed_device(h);
    unsigned off = (h->address & 0xfc) + (addr - 4);
    if (dev && off + size <= 256) {
        vd_pci_config_write(dev, off, value, size);
    }
}

static const VdIoOps host_io_ops = { .read = host_io_read, .write = host_io_write };

VdPciHost *vd_pci_host_new(VdBus *bus, GError **errp)
{
    VdPciHost *h = g_new0(VdPciHost, 1);
    h->bus = bus;
    h->region = vd_bus_map(bus, VD_SPACE_PIO, 0xcf8, 8, &host_io_ops, h, "pci-host", errp);
    if (!h->region) {
        g_free(h);
        return NULL;
    }
    vd_pci_device_init(&h->bridge, "i440fx-host", 0x8086, 0x1237, 0x06, 0x00, 0x00);
    vd_pci_register(h, &h->bridge, 0, NULL);
    return h;
}

void vd_pci_host_free(VdPciHost *host)
{
    if (!host) {
        return;
    }
    for (unsigned i = 0; i < PCI_SLOTS; i++) {
        if (host->devices[i]) {
            vd_pci_unregister(host->devices[i]);
        }
    }
    vd_bus_unmap(host->bus, host->region);
    g_free(host);
}

VdBus *vd_pci_host_bus(VdPciHost *host) { return host->bus; }

bool vd_pci_register(VdPciHost *host, VdPciDevice *dev, unsigned devfn, GError **errp)
{
    if (devfn >= PCI_SLOTS || host->devices[devfn]) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "PCI slot %02x.%x is taken or invalid",
                    devfn >> 3, devfn & 7);
        return false;
    }
    dev->host = host;
    dev->devfn = devfn;
    host->devices[devfn] = dev;
    update_bars(dev);
    return true;
}

void vd_pci_unregister(VdPciDevice *dev)
{
    if (!dev->host) {
        return;
    }
    for (unsigned i = 0; i < 6; i++) {
        vd_bus_unmap(dev->host->bus, dev->bars[i].region);
        dev->bars[i].region = NULL;
    }
    dev->host->devices[dev->devfn] = NULL;
    dev->host = NULL;
}
