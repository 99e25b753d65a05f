/* fdt.c - describe the machine in a flattened device tree (libfdt sequential writer). */
#include "system/machine.h"

#include <libfdt.h>
#include <string.h>

#define INTC_PHANDLE 1
#define ISA_NODE "isa"
#define SERIAL0_PATH "/isa/serial@i3f8"

/* One FDT node: the first device registered under a name@address, plus later drives. */
typedef struct DeviceNode {
    const VdDeviceInfo *info;
    GPtrArray *drives;          /* const char *, borrowed from the device infos */
} DeviceNode;

/* Stop building at the first libfdt error. */
#define TRY(expr) do { int ret_ = (expr); if (ret_ < 0) { return ret_; } } while (0)

/* A property of 32-bit cells. */
static int prop_cells(void *fdt, const char *name, const uint32_t *cells, unsigned n)
{
    fdt32_t be[8];
    g_assert(n <= G_N_ELEMENTS(be));
    for (unsigned i = 0; i < n; i++) {
        be[i] = cpu_to_fdt32(cells[i]);
    }
    return fdt_property(fdt, name, be, n * sizeof(fdt32_t));
}

/* A stringlist property from a list of strings. */
static int prop_stringlist(void *fdt, const char *name, GPtrArray *strings)
{
    g_autoptr(GString) buf = g_string_new(NULL);
    for (guint i = 0; i < strings->len; i++) {
        g_string_append_len(buf, g_ptr_array_index(strings, i), strlen(g_ptr_array_index(strings, i)) + 1);
    }
    return fdt_property(fdt, name, buf->str, buf->len);
}

/* Node name: name@<hex address>, with the ISA "i" prefix for I/O ports. */
static char *node_name(const VdDeviceInfo *info)
{
    return g_strdup_printf("%s@%s%" G_GINT64_MODIFIER "x", info->name, info->space == VD_SPACE_PIO ? "i" : "",
                           info->base);
}

/* Group the machine's devices by node, in registration order. */
static GPtrArray *collect_nodes(VdMachine *m, VdSpace space)
{
    GPtrArray *nodes = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < m->devices->len; i++) {
        const VdDeviceInfo *info = &g_array_index(m->devices, VdDeviceInfo, i);
        if (info->space != space) {
            continue;
        }
        DeviceNode *node = NULL;
        for (guint j = 0; j < nodes->len && !node; j++) {
            DeviceNode *n = g_ptr_array_index(nodes, j);
            if (n->info->base == info->base && strcmp(n->info->name, info->name) == 0) {
                node = n;
            }
        }
        if (!node) {
            node = g_new0(DeviceNode, 1);
            node->info = info;
            g_ptr_array_add(nodes, node);
        }
        if (info->drive_id) {
            if (!node->drives) {
                node->drives = g_ptr_array_new();
            }
            g_ptr_array_add(node->drives, (char *)info->drive_id);
        }
    }
    return nodes;
}

/* One device node; reg uses the parent's cells: <1 port len> on ISA, <addr64 size64> at the root. */
static int write_device(void *fdt, const DeviceNode *node)
{
    const VdDeviceInfo *info = node->info;
    g_autofree char *name = node_name(info);
    uint32_t reg[8];
    unsigned n = 0;
    const uint64_t windows[2][2] = { { info->base, info->size }, { info->base2, info->size2 } };
    for (unsigned w = 0; w < (info->size2 ? 2u : 1u); w++) {
        if (info->space == VD_SPACE_PIO) {
            reg[n++] = 1;
            reg[n++] = windows[w][0];
            reg[n++] = windows[w][1];
        } else {
            reg[n++] = windows[w][0] >> 32;
            reg[n++] = windows[w][0];
            reg[n++] = windows[w][1] >> 32;
            reg[n++] = windows[w][1];
        }
    }
    TRY(fdt_begin_node(fdt, name));
    TRY(fdt_property_string(fdt, "compatible", info->compatible ? info->compatible : info->name));
    TRY(prop_cells(fdt, "reg", reg, n));
    if (info->irq >= 0) {
        TRY(fdt_property_u32(fdt, "interrupts", info->irq));
    }
    if (node->drives) {
        TRY(prop_stringlist(fdt, "vdisk,drives", node->drives));
    }
    return fdt_end_node(fdt);
}

/* Every device node of one address space, in registration order. */
static int write_devices(void *fdt, VdMachine *m, VdSpace space)
{
    g_autoptr(GPtrArray) nodes = collect_nodes(m, space);
    int ret = 0;
    for (guint i = 0; i < nodes->len && ret >= 0; i++) {
        DeviceNode *node = g_ptr_array_index(nodes, i);
        ret = write_device(fdt, node);
    }
    for (guint i = 0; i < nodes->len; i++) {
        DeviceNode *node = g_ptr_array_index(nodes, i);
        if (node->drives) {
            g_ptr_array_free(node->drives, TRUE);
        }
    }
    return ret;
}

/* The whole tree, written into buf of size bytes. */
static int build_tree(void *buf, int size, VdMachine *m)
{
    TRY(fdt_create(buf, size));
    TRY(fdt_finish_reservemap(buf));
    TRY(fdt_begin_node(buf, ""));
    TRY(fdt_property_u32(buf, "#address-cells", 2));
    TRY(fdt_property_u32(buf, "#size-cells", 2));
    TRY(fdt_property_string(buf, "compatible", "vdisk,machine"));
    TRY(fdt_property_string(buf, "model", "vdisk virtual machine"));
    TRY(fdt_property_u32(buf, "interrupt-parent", INTC_PHANDLE));

    TRY(fdt_begin_node(buf, "chosen"));
    TRY(fdt_property_string(buf, "stdout-path", "serial0"));
    TRY(fdt_end_node(buf));
    TRY(fdt_begin_node(buf, "aliases"));
    TRY(fdt_property_string(buf, "serial0", SERIAL0_PATH));
    TRY(fdt_end_node(buf));

    TRY(fdt_begin_node(buf, "memory@0"));
    TRY(fdt_property_string(buf, "device_type", "memory"));
    TRY(prop_cells(buf, "reg", (uint32_t[]){ 0, 0, m->ram_size >> 32, (uint32_t)m->ram_size }, 4));
    TRY(fdt_end_node(buf));

    /* The machine's level-triggered IRQ lines; one cell: the line number. */
    TRY(fdt_begin_node(buf, "interrupt-controller"));
    TRY(fdt_property_string(buf, "compatible", "vdisk,irq-lines"));
    TRY(fdt_property(buf, "interrupt-controller", NULL, 0));
    TRY(fdt_property_u32(buf, "#interrupt-cells", 1));
    TRY(fdt_property_u32(buf, "#address-cells", 0));
    TRY(fdt_property_u32(buf, "vdisk,num-lines", VD_IRQ_LINES));
    TRY(fdt_property_u32(buf, "phandle", INTC_PHANDLE));
    TRY(fdt_end_node(buf));

    /* Port I/O devices: an ISA-style bus whose reg is <1 port length> (1 = I/O space). */
    TRY(fdt_begin_node(buf, ISA_NODE));
    TRY(fdt_property_string(buf, "device_type", "isa"));
    TRY(fdt_property_u32(buf, "#address-cells", 2));
    TRY(fdt_property_u32(buf, "#size-cells", 1));
    TRY(write_devices(buf, m, VD_SPACE_PIO));
    TRY(fdt_end_node(buf));

    TRY(write_devices(buf, m, VD_SPACE_MMIO));
    TRY(fdt_end_node(buf));
    return fdt_finish(buf);
}

void *vd_machine_build_fdt(VdMachine *m, size_t *size, GError **errp)
{
    for (int cap = 16 * 1024; cap <= 1024 * 1024; cap *= 2) {
        void *buf = g_malloc0(cap);
        int ret = build_tree(buf, cap, m);
        if (ret == 0) {
            *size = fdt_totalsize(buf);
            return buf;
        }
        g_free(buf);
        if (ret != -FDT_ERR_NOSPACE) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "building the FDT: %s", fdt_strerror(ret));
            return NULL;
        }
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "building the FDT: over 1 MiB");
    return NULL;
}
