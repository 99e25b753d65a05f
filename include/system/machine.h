/*
 * machine.h - the "vdisk" machine model: RAM, the fixed memory map, the
 * devices attached from --drive options, and the FDT that describes them.
 *
 * Guarantees:
 *  - Devices sit at the fixed addresses of docs/architecture.md
 *    ("The machine"); virtio-mmio slots are handed out in command-line order.
 *  - Every device added with vd_machine_add_device appears in the FDT and in
 *    the qtest `info` command, with its address and IRQ.
 *
 * Guarantees (continued):
 *  - vd_machine_add_drive opens the drive's backend, allocates its index
 *    (IDE: 0..3, channel index/2, unit index%2; SCSI: the LUN) and calls
 *    the interface's attach function; on failure nothing of the drive stays.
 *  - An attach function whose device model is not part of the build fails
 *    with G_IO_ERROR_NOT_SUPPORTED; every other failure uses another code.
 *  - The FDT passes `dtc -I dtb -O dts` without warnings.
 *
 * Threading: a machine and everything on it run in one GMainContext.
 */
#ifndef VD_SYSTEM_MACHINE_H
#define VD_SYSTEM_MACHINE_H

#include "block/block-backend.h"
#include "hw/bus.h"
#include "hw/drain.h"
#include "hw/pci.h"
#include "hw/serial.h"
#include "system/drive.h"
#include "hw/virtio-mmio.h" /* VD_VIRTIO_MMIO_SIZE, the window of each slot */
#include "hw/vmstate.h"

#define VD_VIRTIO_MMIO_BASE  0xfeb00000ull
#define VD_VIRTIO_MMIO_SLOTS 8
#define VD_VIRTIO_MMIO_IRQ0  16

typedef struct VdMachine VdMachine;

#define VD_MACHINE_DEFAULT_RAM (128ull << 20)
/* What the FDT and `info` say about a device. */
typedef struct VdDeviceInfo {
    const char *name;         /* node name prefix, e.g. "virtio_mmio", "ide" */
    const char *compatible;   /* e.g. "virtio,mmio" */
    const char *description;  /* free text for `info`, e.g. "virtio-blk drive0" */
    VdSpace space;
    uint64_t base, size;      /* first register window */
    uint64_t base2, size2;    /* optional second window (IDE control block), size2 0 if none */
    int irq;                  /* -1 if none */
    const char *drive_id;     /* backing drive id, or NULL */
} VdDeviceInfo;

/* An attach function wires one drive's device onto the machine. */
typedef bool VdDriveAttachFunc(VdMachine *m, VdDriveSpec *drive, GError **errp);

struct VdMachine {
    GMainContext *ctx;
    VdBus *bus;
    VdPciHost *pci;
    uint64_t ram_size;
    unsigned next_virtio_slot;  /* next free virtio-mmio slot */
    GPtrArray *drives;          /* VdDriveSpec * */
    GArray *devices;            /* VdDeviceInfo (strings owned by the machine) */
    GPtrArray *cleanups;        /* VdMachineCleanup *, run in reverse at free */
    GPtrArray *drainers;        /* VdMachineDrainer *: every device's drain (vd_machine_on_drain) */
    GPtrArray *states;          /* VdMachineState *: what a migration carries (vd_machine_add_state) */
    int migration_status;       /* VdMigrationStatus of the last outgoing migration (system/migration.h) */
    char *migration_error;      /* why it failed, or NULL */
    void *ide;                  /* the IDE controller once created (hw/ide) */
    void *scsi;                 /* the virtio-scsi controller once created (hw/scsi) */
    VdSerial *serial;           /* the 16550A at 0x3f8 */
    VdSerialOutputFunc *serial_out; /* where its output goes (NULL: discarded) */
    void *serial_opaque;
};

/*
 * A device's drain API (vd_virtio_blk_drain, vd_virtio_scsi_drain,
 * vd_ide_drain): cb(opaque) once every request the device took has its
 * answer in guest memory; at once if none is in flight.  Never iterates a loop.
 */
typedef void VdMachineDrainFunc(void *dev, VdDrainFunc *cb, void *opaque);

/* A machine-wide drain started by vd_machine_drain_start (reference-counted). */
typedef struct VdMachineDrain VdMachineDrain;

/* Create a machine: RAM at 0, the PCI host bridge and the serial port. */
VdMachine *vd_machine_new(uint64_t ram_size, GMainContext *ctx, GError **errp);
/*
 * Drain every device (iterating the machine's context until each has
 * delivered every answer, then every backend), run the cleanups (devices
 * first), close every drive, free RAM.  Not from a callback of the context.
 */
void vd_machine_free(VdMachine *m);

/* One piece of device state a migration carries: section "<ops->kind>/<name>". */
typedef struct VdMachineState {
    char *section;
    const VdDeviceStateOps *ops;
    void *dev;
} VdMachineState;

/*
 * Register dev's migration state under the section "<ops->kind>/<name>"
 * (system/migration.c saves and loads them in registration order).
 */
void vd_machine_add_state(VdMachine *m, const VdDeviceStateOps *ops, const char *name, void *dev);

/* Requests of every drive's backend that reached the host and have not ended (parked ones left out). */
unsigned vd_machine_issued_in_flight(VdMachine *m);

/* Register dev's drain: vd_machine_drain_start and teardown wait for it. */
void vd_machine_on_drain(VdMachine *m, VdMachineDrainFunc *fn, void *dev);
/*
 * Ask every device to call back once it has delivered every answer; never
 * iterates a loop.  The drain is done (vd_machine_drain_pending is 0) when
 * all have called back; the caller holds one reference.
 */
VdMachineDrain *vd_machine_drain_start(VdMachine *m);
/* Devices that have not called back yet. */
unsigned vd_machine_drain_pending(const VdMachineDrain *d);
/* Drop the caller's reference (devices still to call back hold their own). */
void vd_machine_drain_unref(VdMachineDrain *d);

/*
 * Check that d's id= and serial= are unique, open, index and attach it; the
 * machine owns it on success, the caller on failure.
 */
bool vd_machine_add_drive(VdMachine *m, VdDriveSpec *drive, GError **errp);

/* The flattened device tree of the machine (g_free it). */
void *vd_machine_build_fdt(VdMachine *m, size_t *size, GError **errp);

/* Register a device for the FDT and `info`; strings are copied. */
void vd_machine_add_device(VdMachine *m, const VdDeviceInfo *info);
/* Run fn(opaque) when the machine is freed (reverse order of registration). */
void vd_machine_on_free(VdMachine *m, void (*fn)(void *opaque), void *opaque);
/* Claim the next virtio-mmio slot; false with an error when all 8 are used. */
bool vd_machine_next_virtio_slot(VdMachine *m, uint64_t *base, unsigned *irq, GError **errp);
/* Look up a drive by id. */
VdDriveSpec *vd_machine_find_drive(VdMachine *m, const char *id);

/* Per-interface attach functions; each lives next to its device wiring in system/. */
VdDriveAttachFunc vd_machine_attach_ide;
VdDriveAttachFunc vd_machine_attach_virtio;
VdDriveAttachFunc vd_machine_attach_scsi;

#endif
