/* bus.c - guest RAM, region dispatch, DMA bounds checks and IRQ lines. */
#include "hw/bus.h"
#include "util/bswap.h"

#include <string.h>
#include <sys/mman.h>

struct VdRegion {
    VdSpace space;
    uint64_t base, len;
    const VdIoOps *ops;
    void *opaque;
    char *name;
};

struct VdBus {
    GMainContext *ctx;
    uint8_t *ram;
    uint64_t ram_size;
    GPtrArray *regions[2];          /* per VdSpace, unsorted; machines have few */
    uint64_t irq_levels;            /* bit n = line n */
    VdIrqListener *irq_listener;
    void *irq_opaque;
};

/* Allocate the bus and zeroed guest RAM (anonymous mmap, so untouched RAM costs nothing). */
VdBus *vd_bus_new(uint64_t ram_size, GMainContext *ctx, GError **errp)
{
    if (ram_size == 0 || ram_size > (64ull << 30)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "RAM size %" G_GUINT64_FORMAT " is out of range (1 byte .. 64 GiB)", ram_size);
        return NULL;
    }
    void *ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "cannot allocate %" G_GUINT64_FORMAT " bytes of RAM: %s",
                    ram_size, g_strerror(errno));
        return NULL;
    }
    VdBus *bus = g_new0(VdBus, 1);
    bus->ctx = ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
    bus->ram = ram;
    bus->ram_size = ram_size;
    for (int i = 0; i < 2; i++) {
        bus->regions[i] = g_ptr_array_new();
    }
    return bus;
}

/* Free the bus; every region must have been unmapped by its device. */
void vd_bus_free(VdBus *bus)
{
    if (!bus) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        while (bus->regions[i]->len) {
            vd_bus_unmap(bus, g_ptr_array_index(bus->regions[i], 0));
        }
        g_ptr_array_free(bus->regions[i], TRUE);
    }
    munmap(bus->ram, bus->ram_size);
    g_main_context_unref(bus->ctx);
    g_free(bus);
}

GMainContext *vd_bus_context(VdBus *bus) { return bus->ctx; }
uint8_t *vd_bus_ram(VdBus *bus) { return bus->ram; }
uint64_t vd_bus_ram_size(VdBus *bus) { return bus->ram_size; }
uint64_t vd_region_base(const VdRegion *r) { return r->base; }
const char *vd_region_name(const VdRegion *r) { return r->name; }

/* True if [a, a+alen) and [b, b+blen) intersect (both non-empty, no overflow). */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* Claim a range of an address space for a device's registers. */
VdRegion *vd_bus_map(VdBus *bus, VdSpace space, uint64_t base, uint64_t len,
                     const VdIoOps *ops, void *opaque, const char *name, GError **errp)
{
    uint64_t limit = space == VD_SPACE_PIO ? 0x10000 : UINT64_MAX;
    if (len == 0 || base > limit || len > limit - base) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "region %s [0x%" G_GINT64_MODIFIER "x, +0x%" G_GINT64_MODIFIER "x) does not fit its address space",
                    name, base, len);
        return NULL;
    }
    if (space == VD_SPACE_MMIO && ranges_overlap(base, len, 0, bus->ram_size)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "region %s overlaps guest RAM", name);
        return NULL;
    }
    GPtrArray *list = bus->regions[space];
    for (guint i = 0; i < list->len; i++) {
        VdRegion *r = g_ptr_array_index(list, i);
        if (ranges_overlap(base, len, r->base, r->len)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "region %s overlaps region %s at 0x%" G_GINT64_MODIFIER "x",
                        name, r->name, r->base);
            return NULL;
        }
    }
    VdRegion *r = g_new0(VdRegion, 1);
    *r = (VdRegion){ .space = space, .base = base, .len = len, .ops = ops, .opaque = opaque, .name = g_strdup(name) };
    g_ptr_array_add(list, r);
    return r;
}

/* Release a region; NULL is ignored. */
void vd_bus_unmap(VdBus *bus, VdRegion *region)
{
    if (!region) {
        return;
    }
    g_ptr_array_remove(bus->regions[region->space], region);
    g_free(region->name);
    g_free(region);
}

/* The region that holds the whole access [addr, addr+size), or NULL. */
static VdRegion *find_region(VdBus *bus, VdSpace space, uint64_t addr, unsigned size)
{
    GPtrArray *list = bus->regions[space];
    for (guint i = 0; i < list->len; i++) {
        VdRegion *r = g_ptr_array_index(list, i);
        if (addr >= r->base && addr - r->base < r->len && size <= r->len - (addr - r->base)) {
            return r;
        }
    }
    return NULL;
}

/* Dispatch a guest read; RAM first for MMIO space, then device regions. */
bool vd_bus_read(VdBus *bus, VdSpace space, uint64_t addr, unsigned size, uint64_t *value)
{
    uint64_t ones = size >= 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
    if (size != 1 && size != 2 && size != 4 && size != 8) {
        *value = ones;
        return false;
    }
    if (space == VD_SPACE_MMIO) {
        uint8_t *p = vd_dma_map(bus, addr, size);
        if (p) {
            *value = vd_ld_le_n(p, size);
            return true;
        }
    }
    VdRegion *r = find_region(bus, space, addr, size);
    if (!r || !r->ops->read) {
        *value = ones;
        return false;
    }
    *value = r->ops->read(r->opaque, addr - r->base, size) & ones;
    return true;
}

/* Dispatch a guest write; unclaimed addresses are ignored. */
bool vd_bus_write(VdBus *bus, VdSpace space, uint64_t addr, uint64_t value, unsigned size)
{
    if (size != 1 && size != 2 && size != 4 && size != 8) {
        return false;
    }
    if (space == VD_SPACE_MMIO) {
        uint8_t *p = vd_dma_map(bus, addr, size);
        if (p) {
            vd_st_le_n(p, value, size);
            return true;
        }
    }
    VdRegion *r = find_region(bus, space, addr, size);
    if (!r || !r->ops->write) {
        return false;
    }
    r->ops->write(r->opaque, addr - r->base, value, size);
    return true;
}

/* Bounds-checked translation of a guest physical range to a host pointer. */
void *vd_dma_map(VdBus *bus, uint64_t gpa, uint64_t len)
{
    if (gpa > bus->ram_size || len > bus->ram_size - gpa) {
        return NULL;
    }
    return bus->ram + gpa;
}

/* Copy from guest RAM; false (nothing copied) if the range leaves RAM. */
bool vd_dma_read(VdBus *bus, uint64_t gpa, void *buf, uint64_t len)
{
    void *p = vd_dma_map(bus, gpa, len);
    if (!p) {
        return false;
    }
    memcpy(buf, p, len);
    return true;
}

/* Copy into guest RAM; false (nothing copied) if the range leaves RAM. */
bool vd_dma_write(VdBus *bus, uint64_t gpa, const void *buf, uint64_t len)
{
    void *p = vd_dma_map(bus, gpa, len);
    if (!p) {
        return false;
    }
    memcpy(p, buf, len);
    return true;
}

/* Set a level-triggered line; the listener hears only changes. */
void vd_irq_set(VdBus *bus, unsigned line, bool level)
{
    g_return_if_fail(line < VD_IRQ_LINES);
    uint64_t bit = 1ull << line;
    bool old = bus->irq_levels & bit;
    if (old == level) {
        return;
    }
    bus->irq_levels ^= bit;
    if (bus->irq_listener) {
        bus->irq_listener(bus->irq_opaque, line, level);
    }
}

bool vd_irq_level(VdBus *bus, unsigned line)
{
    return line < VD_IRQ_LINES && (bus->irq_levels >> line) & 1;
}

void vd_bus_set_irq_listener(VdBus *bus, VdIrqListener *fn, void *opaque)
{
    bus->irq_listener = fn;
    bus->irq_opaque = opaque;
}
