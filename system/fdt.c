/* fdt.c - describe the machine in a flattened device tree (libfdt). */
#include "system/machine.h"

#include <libfdt.h>

#define INTC_PHANDLE 1
#define ISA_PATH "/isa"

/* Turn a libfdt status into a GError; true when ok. */
static bool fdt_ok(int ret, const char *what, GError **errp)
{
    if (ret >= 0) {
        return true;
    }
    g_set_error(errp, G_IO_ERROR, ret == -FDT_ERR_NOSPACE ? G_IO_ERROR_NO_SPACE : G_IO_ERROR_FAILED,
                "FDT %s: %s", what, fdt_strerror(ret));
    return false;
}

/* Append a 64-bit value as two cells (#address-cells/#size-cells = 2). */
static int append_u64_cells(void *fdt, int node, const char *prop, uint64_t v)
{
    int ret = fdt_appendprop_u32(fdt, node, prop, v >> 32);
    return ret < 0 ? ret : fdt_appendprop_u32(fdt, node, prop, (uint32_t)v);
}

/* The fixed nodes: root properties, /chosen, /aliases, memory, the interrupt controller, ISA bus. */
static int build_fixed(void *fdt, VdMachine *m)
{
    int ret = 0, node;
    ret |= fdt_setprop_u32(fdt, 0, "#address-cells", 2);
    ret |= fdt_setprop_u32(fdt, 0, "#size-cells", 2);
    ret |= fdt_setprop_string(fdt, 0, "compatible", "vdisk,machine");
    ret |= fdt_setprop_string(fdt, 0, "model", "vdisk virtual machine");
    ret |= fdt_setprop_u32(fdt, 0, "interrupt-parent", INTC_PHANDLE);
    if (ret < 0) {
        return ret;
    }

    node = fdt_add_subnode(fdt, 0, "chosen");
    if (node < 0 || (ret = fdt_setprop_string(fdt, node, "stdout-path", "serial0")) < 0) {
        return node < 0 ? node : ret;
    }
    node = fdt_add_subnode(fdt, 0, "aliases");
    if (node < 0 || (ret = fdt_setprop_string(fdt, node, "serial0", ISA_PATH "/serial@i3f8")) < 0) {
        return node < 0 ? node : ret;
    }

    node = fdt_add_subnode(fdt, 0, "memory@0");
    if (node < 0) {
        return node;
    }
    ret |= fdt_setprop_string(fdt, node, "device_type", "memory");
    ret |= append_u64_cells(fdt, node, "reg", 0);
    ret |= append_u64_cells(fdt, node, "reg", m->ram_size);
    if (ret < 0) {
        return ret;
    }

    /* The machine's IRQ lines 0..63: level-triggered, one cell = the line number. */
    node = fdt_add_subnode(fdt, 0, "interrupt-controller");
    if (node < 0) {
        return node;
    }
    ret |= fdt_setprop_string(fdt, node, "compatible", "vdisk,irq-lines");
    ret |= fdt_setprop(fdt, node, "interrupt-controller", NULL, 0);
    ret |= fdt_setprop_u32(fdt, node, "#interrupt-cells", 1);
    ret |= fdt_setprop_u32(fdt, node, "#address-cells", 0);
    ret |= fdt_setprop_u32(fdt, node, "vdisk,num-lines", VD_IRQ_LINES);
    ret |= fdt_setprop_u32(fdt, node, "phandle", INTC_PHANDLE);
    if (ret < 0) {
        return ret;
    }

    /* Port I/O devices sit on an ISA-style bus: reg = <1 port length> (1 = I/O space). */
    node = fdt_add_subnode(fdt, 0, "isa");
    if (node < 0) {
        return node;
    }
    ret |= fdt_setprop_string(fdt, node, "device_type", "isa");
    ret |= fdt_setprop_u32(fdt, node, "#address-cells", 2);
    ret |= fdt_setprop_u32(fdt, node, "#size-cells", 1);
    return ret;
}

/* Append one register window to reg, in the parent bus's cell format. */
static int append_window(void *fdt, int node, VdSpace space, uint64_t base, uint64_t size)
{
    int ret;
    if (space == VD_SPACE_PIO) {
        ret = fdt_appendprop_u32(fdt, node, "reg", 1);
        ret = ret < 0 ? ret : fdt_appendprop_u32(fdt, node, "reg", (uint32_t)base);
        return ret < 0 ? ret : fdt_appendprop_u32(fdt, node, "reg", (uint32_t)size);
    }
    ret = append_u64_cells(fdt, node, "reg", base);
    return ret < 0 ? ret : append_u64_cells(fdt, node, "reg", size);
}

/*
 * One device node: name@unit-address under / (MMIO) or /isa (PIO, unit
 * address "i<port>").  Devices that share a node (two drives on one IDE
 * channel) add their drive id to its "vdisk,drives" list.
 */
static int build_device(void *fdt, const VdDeviceInfo *info)
{
    int parent = info->space == VD_SPACE_PIO ? fdt_path_offset(fdt, ISA_PATH) : 0;
    if (parent < 0) {
        return parent;
    }
    g_autofree char *name = g_strdup_printf("%s@%s%" G_GINT64_MODIFIER "x", info->name,
                                            info->space == VD_SPACE_PIO ? "i" : "", info->base);
    int node = fdt_subnode_offset(fdt, parent, name);
    if (node < 0) {
        int ret = 0;
        node = fdt_add_subnode(fdt, parent, name);
        if (node < 0) {
            return node;
        }
        ret |= fdt_setprop_string(fdt, node, "compatible", info->compatible ? info->compatible : info->name);
        ret |= append_window(fdt, node, info->space, info->base, info->size);
        if (info->size2) {
            ret |= append_window(fdt, node, info->space, info->base2, info->size2);
        }
        if (info->irq >= 0) {
            ret |= fdt_setprop_u32(fdt, node, "interrupts", info->irq);
        }
        if (ret < 0) {
            return ret;
        }
    }
    return info->drive_id ? fdt_appendprop_string(fdt, node, "vdisk,drives", info->drive_id) : 0;
}

/* Build the whole tree into buf; a libfdt error code on failure. */
static int build_tree(void *buf, int size, VdMachine *m)
{
    int ret = fdt_create_empty_tree(buf, size);
    if (ret < 0 || (ret = build_fixed(buf, m)) < 0) {
        return ret;
    }
    for (guint i = 0; i < m->devices->len; i++) {
        ret = build_device(buf, &g_array_index(m->devices, VdDeviceInfo, i));
        if (ret < 0) {
            return ret;
        }
    }
    return fdt_pack(buf);
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
            fdt_ok(ret, "build", errp);
            return NULL;
        }
    }
    fdt_ok(-FDT_ERR_NOSPACE, "build", errp);
    return NULL;
}
