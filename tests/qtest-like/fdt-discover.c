/* fdt-discover.c - device discovery from the machine's FDT. */
#include "fdt-discover.h"

#include <libfdt.h>
#include <string.h>

/* Read an n-cell big-endian number. */
static uint64_t read_cells(const fdt32_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = v << 32 | fdt32_to_cpu(p[i]);
    }
    return v;
}

/* Fill a VdFdtDevice from a node; false if its reg cannot be understood. */
static bool describe_node(const void *fdt, int node, VdFdtDevice *out)
{
    memset(out, 0, sizeof(*out));
    int parent = fdt_parent_offset(fdt, node);
    int ac = fdt_address_cells(fdt, parent), sc = fdt_size_cells(fdt, parent), len;
    if (parent < 0 || ac < 1 || ac > 2 || sc < 1 || sc > 2 ||
        fdt_get_path(fdt, node, out->path, sizeof(out->path)) < 0) {
        return false;
    }
    /* ISA convention: two address cells, the first being 1 for I/O space. */
    const fdt32_t *reg = fdt_getprop(fdt, node, "reg", &len);
    int entry = ac + sc;
    if (!reg || len < entry * 4) {
        return false;
    }
    bool isa = fdt_getprop(fdt, parent, "device_type", NULL) &&
               strcmp(fdt_getprop(fdt, parent, "device_type", NULL), "isa") == 0;
    for (int w = 0; w < 2 && (w + 1) * entry * 4 <= len; w++) {
        const fdt32_t *e = reg + w * entry;
        uint64_t base = isa ? fdt32_to_cpu(e[ac - 1]) : read_cells(e, ac);
        uint64_t size = read_cells(e + ac, sc);
        *(w ? &out->base2 : &out->base) = base;
        *(w ? &out->size2 : &out->size) = size;
        out->nwindows = w + 1;
    }
    out->pio = isa && fdt32_to_cpu(reg[0]) == 1;
    const fdt32_t *irq = fdt_getprop(fdt, node, "interrupts", &len);
    out->irq = irq && len >= 4 ? (int)fdt32_to_cpu(irq[0]) : -1;
    return true;
}

unsigned vd_fdt_find_compatible(const void *fdt, const char *compatible, VdFdtDevice *out, unsigned max)
{
    unsigned n = 0;
    if (fdt_check_header(fdt) != 0) {
        return 0;
    }
    for (int node = fdt_node_offset_by_compatible(fdt, -1, compatible); node >= 0;
         node = fdt_node_offset_by_compatible(fdt, node, compatible)) {
        VdFdtDevice dev;
        if (describe_node(fdt, node, &dev)) {
            if (n < max) {
                out[n] = dev;
            }
            n++;
        }
    }
    return n;
}

bool vd_fdt_find_drive(const void *fdt, const char *drive_id, VdFdtDevice *out)
{
    if (fdt_check_header(fdt) != 0) {
        return false;
    }
    for (int node = fdt_next_node(fdt, -1, NULL); node >= 0; node = fdt_next_node(fdt, node, NULL)) {
        if (fdt_stringlist_search(fdt, node, "vdisk,drives", drive_id) >= 0) {
            return describe_node(fdt, node, out);
        }
    }
    return false;
}

uint64_t vd_fdt_ram_size(const void *fdt)
{
    VdFdtDevice mem;
    int node = fdt_check_header(fdt) == 0 ? fdt_path_offset(fdt, "/memory@0") : -1;
    return node >= 0 && describe_node(fdt, node, &mem) ? mem.size : 0;
}

bool vd_qtest_find_drive(VdQtest *q, const char *drive_id, VdFdtDevice *out)
{
    size_t size;
    g_autofree void *fdt = vd_qtest_dtb(q, &size);
    return size >= sizeof(struct fdt_header) && fdt_totalsize(fdt) <= size && vd_fdt_find_drive(fdt, drive_id, out);
}
