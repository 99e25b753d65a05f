/* machine.c - the "vdisk" machine: RAM, PCI host, serial, drives and their devices. */
#include "system/machine.h"

#include <string.h>

typedef struct VdMachineCleanup {
    void (*fn)(void *opaque);
    void *opaque;
} VdMachineCleanup;

/* One device's drain, registered by its attach function. */
typedef struct VdMachineDrainer {
    VdMachineDrainFunc *fn;
    void *dev;
} VdMachineDrainer;

/*
 * A machine-wide drain: one reference for the caller and one for each
 * device that has not called back, so a caller that gives up (a drain
 * timeout) never leaves a device calling back into freed memory.
 */
struct VdMachineDrain {
    unsigned refs;
    unsigned pending;
};

/* if=none: the backend alone, with no device (as in QEMU); nothing to wire. */
static bool attach_none(VdMachine *m, VdDriveSpec *drive, GError **errp)
{
    return true;
}

/* Interface name -> attach function; positions follow the index rules in add_drive. */
static const struct Interface {
    const char *name;
    VdDriveAttachFunc *attach;
    int max_index;              /* indexes 0..max_index-1 are allocated here; 0: none */
} interface_table[] = {
    { "ide", vd_machine_attach_ide, VD_IDE_MAX_DRIVES },
    { "scsi", vd_machine_attach_scsi, VD_SCSI_MAX_LUNS },
    { "virtio", vd_machine_attach_virtio, 0 },
    { "none", attach_none, 0 },
};

/* Forward a serial byte to the machine's current sink. */
static void serial_output(void *opaque, uint8_t byte)
{
    VdMachine *m = opaque;
    if (m->serial_out) {
        m->serial_out(m->serial_opaque, byte);
    }
}

/* Undo vd_serial_new at machine free. */
static void free_serial(void *opaque)
{
    vd_serial_free(opaque);
}

/* Undo vd_pci_host_new at machine free. */
static void free_pci(void *opaque)
{
    vd_pci_host_free(opaque);
}

/* Release the strings a VdDeviceInfo copy owns. */
static void device_info_clear(gpointer p)
{
    VdDeviceInfo *info = p;
    g_free((char *)info->name);
    g_free((char *)info->compatible);
    g_free((char *)info->description);
    g_free((char *)info->drive_id);
}

/* Free one registered migration state entry. */
static void machine_state_free(gpointer p)
{
    VdMachineState *st = p;
    g_free(st->section);
    g_free(st);
}

VdMachine *vd_machine_new(uint64_t ram_size, GMainContext *ctx, GError **errp)
{
    VdBus *bus = vd_bus_new(ram_size, ctx, errp);
    if (!bus) {
        return NULL;
    }
    VdMachine *m = g_new0(VdMachine, 1);
    m->bus = bus;
    m->ctx = g_main_context_ref(vd_bus_context(bus));
    m->ram_size = ram_size;
    m->drives = g_ptr_array_new_with_free_func((GDestroyNotify)vd_drive_spec_free);
    m->devices = g_array_new(FALSE, TRUE, sizeof(VdDeviceInfo));
    g_array_set_clear_func(m->devices, device_info_clear);
    m->cleanups = g_ptr_array_new_with_free_func(g_free);
    m->drainers = g_ptr_array_new_with_free_func(g_free);
    m->states = g_ptr_array_new_with_free_func(machine_state_free);

    m->pci = vd_pci_host_new(bus, errp);
    if (!m->pci) {
        vd_machine_free(m);
        return NULL;
    }
    vd_machine_on_free(m, free_pci, m->pci);
    vd_machine_add_device(m, &(VdDeviceInfo){
        .name = "pci-host", .compatible = "vdisk,pci-host-cam1",
        .description = "PCI host bridge 00:00.0 8086:1237, configuration mechanism #1",
        .space = VD_SPACE_PIO, .base = 0xcf8, .size = 8, .irq = -1 });

    m->serial = vd_serial_new(bus, VD_SERIAL_COM1_PORT, VD_SERIAL_COM1_IRQ, serial_output, m, errp);
    if (!m->serial) {
        vd_machine_free(m);
        return NULL;
    }
    vd_machine_on_free(m, free_serial, m->serial);
    vd_machine_add_device(m, &(VdDeviceInfo){
        .name = "serial", .compatible = "ns16550a", .description = "16550A UART (COM1)",
        .space = VD_SPACE_PIO, .base = VD_SERIAL_COM1_PORT, .size = 8, .irq = VD_SERIAL_COM1_IRQ });
    return m;
}

void vd_machine_free(VdMachine *m)
{
    if (!m) {
        return;
    }
    /*
     * Let every request complete, and its answer reach guest memory, while its
     * device still exists (a device frees answers it has not delivered); then
     * the backends (drives without a device).
     */
    /* A backend drain first ends any werror=stop (held requests complete with their error), so devices can drain. */
    for (guint i = 0; i < m->drives->len; i++) {
        vd_blk_drain(((VdDriveSpec *)g_ptr_array_index(m->drives, i))->blk);
    }
    VdMachineDrain *drain = vd_machine_drain_start(m);
    while (vd_machine_drain_pending(drain)) {
        g_main_context_iteration(m->ctx, TRUE);
    }
    vd_machine_drain_unref(drain);
    for (guint i = 0; i < m->drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(m->drives, i);
        vd_blk_drain(d->blk);
    }
    for (guint i = m->cleanups->len; i-- > 0;) {
        VdMachineCleanup *c = g_ptr_array_index(m->cleanups, i);
        c->fn(c->opaque);
    }
    g_ptr_array_free(m->cleanups, TRUE);
    g_ptr_array_free(m->drainers, TRUE);
    g_ptr_array_free(m->states, TRUE);
    g_free(m->migration_error);
    g_ptr_array_free(m->drives, TRUE);
    g_array_free(m->devices, TRUE);
    vd_bus_free(m->bus);
    g_main_context_unref(m->ctx);
    g_free(m);
}

void vd_machine_add_device(VdMachine *m, const VdDeviceInfo *info)
{
    VdDeviceInfo copy = *info;
    copy.name = g_strdup(info->name);
    copy.compatible = g_strdup(info->compatible);
    copy.description = g_strdup(info->description);
    copy.drive_id = g_strdup(info->drive_id);
    g_array_append_val(m->devices, copy);
}

void vd_machine_on_free(VdMachine *m, void (*fn)(void *opaque), void *opaque)
{
    VdMachineCleanup *c = g_new(VdMachineCleanup, 1);
    *c = (VdMachineCleanup){ fn, opaque };
    g_ptr_array_add(m->cleanups, c);
}

void vd_machine_add_state(VdMachine *m, const VdDeviceStateOps *ops, const char *name, void *dev)
{
    VdMachineState *st = g_new0(VdMachineState, 1);
    st->section = g_strdup_printf("%s/%s", ops->kind, name);
    st->ops = ops;
    st->dev = dev;
    g_ptr_array_add(m->states, st);
}

unsigned vd_machine_issued_in_flight(VdMachine *m)
{
    unsigned n = 0;
    for (guint i = 0; i < m->drives->len; i++) {
        VdBlockBackend *blk = ((VdDriveSpec *)g_ptr_array_index(m->drives, i))->blk;
        n += vd_blk_in_flight(blk) - vd_blk_parked(blk);
    }
    return n;
}

void vd_machine_on_drain(VdMachine *m, VdMachineDrainFunc *fn, void *dev)
{
    VdMachineDrainer *d = g_new(VdMachineDrainer, 1);
    *d = (VdMachineDrainer){ fn, dev };
    g_ptr_array_add(m->drainers, d);
}

/* A device has delivered every answer: one fewer pending, and its reference goes. */
static void device_drained(void *opaque)
{
    VdMachineDrain *d = opaque;
    d->pending--;
    vd_machine_drain_unref(d);
}

VdMachineDrain *vd_machine_drain_start(VdMachine *m)
{
    VdMachineDrain *d = g_new0(VdMachineDrain, 1);
    d->refs = 1 + m->drainers->len;
    d->pending = m->drainers->len;
    for (guint i = 0; i < m->drainers->len; i++) {
        VdMachineDrainer *dr = g_ptr_array_index(m->drainers, i);
        dr->fn(dr->dev, device_drained, d);
    }
    return d;
}

unsigned vd_machine_drain_pending(const VdMachineDrain *d)
{
    return d->pending;
}

void vd_machine_drain_unref(VdMachineDrain *d)
{
    if (--d->refs == 0) {
        g_free(d);
    }
}

bool vd_machine_next_virtio_slot(VdMachine *m, uint64_t *base, unsigned *irq, GError **errp)
{
    if (m->next_virtio_slot >= VD_VIRTIO_MMIO_SLOTS) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                    "all %d virtio-mmio slots are in use", VD_VIRTIO_MMIO_SLOTS);
        return false;
    }
    unsigned n = m->next_virtio_slot++;
    *base = VD_VIRTIO_MMIO_BASE + n * VD_VIRTIO_MMIO_SIZE;
    *irq = VD_VIRTIO_MMIO_IRQ0 + n;
    return true;
}

VdDriveSpec *vd_machine_find_drive(VdMachine *m, const char *id)
{
    for (guint i = 0; i < m->drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(m->drives, i);
        if (g_strcmp0(d->id, id) == 0) {
            return d;
        }
    }
    return NULL;
}

/* The interface table entry for a name, or NULL. */
static const struct Interface *find_interface(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(interface_table); i++) {
        if (g_strcmp0(name, interface_table[i].name) == 0) {
            return &interface_table[i];
        }
    }
    return NULL;
}

/* Is position idx on interface iface taken by an attached drive? */
static bool index_taken(VdMachine *m, const char *iface, int idx)
{
    for (guint i = 0; i < m->drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(m->drives, i);
        if (strcmp(d->interface, iface) == 0 && d->index == idx) {
            return true;
        }
    }
    return false;
}

/* Give the drive an id ("drive<N>") if it has none (vd_drive_spec_check_unique refused duplicates). */
static void assign_id(VdMachine *m, VdDriveSpec *d)
{
    if (d->id) {
        return;
    }
    for (unsigned n = m->drives->len;; n++) {
        g_autofree char *id = g_strdup_printf("drive%u", n);
        if (!vd_machine_find_drive(m, id)) {
            d->id = g_steal_pointer(&id);
            return;
        }
    }
}

/* Check or allocate the drive's position: the lowest free one if none was given. */
static bool assign_index(VdMachine *m, const struct Interface *iface, VdDriveSpec *d, GError **errp)
{
    if (!iface->max_index) {
        return true;
    }
    if (d->index >= 0) {
        if (d->index >= iface->max_index || index_taken(m, iface->name, d->index)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "drive %s: if=%s index=%d is %s", d->id,
                        iface->name, d->index, d->index >= iface->max_index ? "out of range" : "already taken");
            return false;
        }
        return true;
    }
    for (int i = 0; i < iface->max_index; i++) {
        if (!index_taken(m, iface->name, i)) {
            d->index = i;
            return true;
        }
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "drive %s: all %d if=%s positions are taken", d->id,
                iface->max_index, iface->name);
    return false;
}

bool vd_machine_add_drive(VdMachine *m, VdDriveSpec *d, GError **errp)
{
    const struct Interface *iface = find_interface(d->interface);
    if (!iface) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "if=%s: unknown interface", d->interface);
        return false;
    }
    int given_index = d->index;
    bool had_id = d->id != NULL;
    if (!vd_drive_spec_check_unique(d, m->drives, errp)) {
        return false;
    }
    assign_id(m, d);
    if (!assign_index(m, iface, d, errp)) {
        goto undo;
    }
    GError *err = NULL;
    d->blk = vd_blk_open(d->backend_options, m->ctx, &err);
    if (!d->blk) {
        g_propagate_prefixed_error(errp, err, "drive %s: ", d->id);
        goto undo;
    }
    g_ptr_array_add(m->drives, d); /* visible to the attach function through find_drive */
    if (!iface->attach(m, d, errp)) {
        g_ptr_array_steal_index(m->drives, m->drives->len - 1); /* still the caller's */
        vd_blk_close(d->blk);
        d->blk = NULL;
        goto undo;
    }
    return true;
undo:
    d->index = given_index;
    if (!had_id) {
        g_clear_pointer(&d->id, g_free);
    }
    return false;
}
