/*
 * ide.h - an ATA disk behind the PIIX3 PCI IDE function (8086:7010).
 *
 * The controller owns two legacy channels (primary 0x1f0-0x1f7 + 0x3f6,
 * IRQ 14; secondary 0x170-0x177 + 0x376, IRQ 15), each with a master and a
 * slave position, and SFF-8038i bus-master DMA at BAR4 (preassigned 0xc000,
 * I/O decode and bus mastering enabled at power-on, reprogrammable through
 * PCI config space).  Each attached drive is an ATA disk backed by a
 * VdBlockBackend.  The guest-driver guide is docs/guest-drivers/ide.md.
 *
 * Ownership: the VMM owns the controller (vd_ide_piix3_new / vd_ide_free).
 * The PCI host, the bus and every attached backend are borrowed.
 * Teardown: vd_ide_free, then vd_blk_close of each backend (it drains the
 * requests vd_ide_free left in flight), then vd_pci_host_free, then
 * vd_bus_free.
 *
 * Guarantees:
 *  - Every guest-controlled value is validated: LBAs and sector counts
 *    (out of range: ERR + IDNF), opcodes (unknown: ERR + ABRT), PRD tables
 *    (read and followed only inside guest RAM through vd_dma_map/read/write,
 *    at most VD_IDE_PRD_MAX_ENTRIES entries per transfer), data-port accesses
 *    at any time.  No guest action crashes the process or touches memory
 *    outside guest RAM or sectors outside the disk.
 *  - The write cache is the backend's and only the backend's: the drive
 *    keeps no copy.  IDENTIFY word 85 bit 5 is vd_blk_write_cache() at the
 *    moment the guest reads it, so a change made by anyone else (the host,
 *    migration, the control socket) shows at the next IDENTIFY DEVICE; ATA
 *    has no way to announce it sooner.  SET FEATURES 02h asks the backend
 *    to enable it; 82h asks it to disable it and completes only after the
 *    backend has flushed (BSY held meanwhile), with ERR and ABRT if that
 *    flush failed.  Attaching a drive puts the backend's write cache to its
 *    power-on state, vd_blk_default_write_cache().
 *  - FLUSH CACHE (EXT) completes only after vd_blk_flush has completed;
 *    WRITE DMA FUA EXT and WRITE MULTIPLE FUA EXT are VD_REQ_FUA writes and
 *    complete only once durable.
 *  - Every backend request completes through its callback even across SRST
 *    or vd_ide_free: the request object outlives the device's interest in it.
 *  - SRST never lets an old write overtake a new one: after SRST is released
 *    each drive keeps BSY until every request the reset abandoned has
 *    finished on the host; the reset then finishes from that request's
 *    callback (DRDY, signature).  No loop is iterated in a register write.
 *  - Drain: vd_ide_in_flight counts every backend request of the
 *    controller from submission to its callback, abandoned ones included;
 *    vd_ide_drain calls back when it is 0.
 *
 * Threading: all functions, and every port access, run in the thread of the
 * machine's GMainContext (the bus's, which must also be the backends'
 * context); backend completions arrive there too.
 */
#ifndef VD_HW_IDE_H
#define VD_HW_IDE_H

#include "block/block-backend.h"
#include "hw/bus.h"
#include "hw/drain.h"
#include "hw/pci.h"
#include "hw/vmstate.h"

#define VD_IDE_PIIX3_DEVFN      9       /* PCI 00:01.1 */
#define VD_IDE_PIIX3_VENDOR     0x8086
#define VD_IDE_PIIX3_DEVICE     0x7010
#define VD_IDE_BMDMA_BASE       0xc000  /* BAR4 at power-on */
#define VD_IDE_BMDMA_SIZE       16

#define VD_IDE_PRIMARY_CMD      0x1f0
#define VD_IDE_PRIMARY_CTL      0x3f6
#define VD_IDE_PRIMARY_IRQ      14
#define VD_IDE_SECONDARY_CMD    0x170
#define VD_IDE_SECONDARY_CTL    0x376
#define VD_IDE_SECONDARY_IRQ    15
#define VD_IDE_CMD_SIZE         8
#define VD_IDE_CTL_SIZE         1

#define VD_IDE_CHANNELS         2
#define VD_IDE_MAX_DRIVES       4       /* index N: channel N/2, unit N%2 */
#define VD_IDE_PRD_MAX_ENTRIES  8192    /* one 64 KiB PRD table */
#define VD_IDE_MAX_MULTIPLE     16      /* IDENTIFY word 47 */

typedef struct VdIdeController VdIdeController;

/*
 * Create the PIIX3 IDE function at devfn on pci's bus: map both channels'
 * legacy ports and register the function with BAR4 at VD_IDE_BMDMA_BASE.
 */
VdIdeController *vd_ide_piix3_new(VdPciHost *pci, unsigned devfn, GError **errp);
/*
 * Unmap everything and free; requests still in flight complete later and are
 * discarded.  No vd_ide_drain may be waiting.
 */
void vd_ide_free(VdIdeController *ide);
/* Backend requests submitted and not yet called back (those a reset abandoned included). */
unsigned vd_ide_in_flight(VdIdeController *ide);
/*
 * Call cb(opaque) once vd_ide_in_flight is 0: at once if it is 0 now,
 * otherwise from the last request's callback (cb must not drain again).
 * Never iterates a loop; asserts it is not called from a completion.
 */
void vd_ide_drain(VdIdeController *ide, VdDrainFunc *cb, void *opaque);

/*
 * Attach an ATA disk at index (0..3; -1 = first free position).  The backend
 * stays owned by the caller and must outlive the controller.  serial may be
 * NULL or empty: IDENTIFY words 10-19 then carry vd_blk_unique_id(blk), the
 * same for the same image file and different for different ones.  On success *index_out
 * (if not NULL) holds the position used.
 */
bool vd_ide_attach(VdIdeController *ide, int index, VdBlockBackend *blk, const char *serial,
                   int *index_out, GError **errp);

/* The legacy port bases and IRQ of a channel (0 or 1). */
void vd_ide_channel_info(unsigned channel, uint16_t *cmd_base, uint16_t *ctl_base, unsigned *irq);
/* The PCI function, for the machine and tests. */
VdPciDevice *vd_ide_pci_device(VdIdeController *ide);
/* True if a drive sits at index. */
bool vd_ide_has_drive(VdIdeController *ide, unsigned index);

/*
 * Migration (hw/vmstate.h; dev is a VdIdeController): PCI configuration,
 * both channels (selection, device control, bus-master registers) and
 * every drive's task file, SET FEATURES settings (revert-on-reset,
 * multiple count, transfer mode), CHS translation, power state, the
 * command in progress and its PIO buffer.  The write cache is the
 * backend's and travels in the drive's section.  A DMA transfer held by
 * werror=stop travels and is restarted from its PRD table on the
 * destination; a held PIO or TRIM request refuses to save (the source
 * resumes; `cont` first).
 */
extern const VdDeviceStateOps vd_ide_state_ops;

#endif
