/*
 * crash-guests.h - tiny in-process guests for the crash runner: each drives
 * one device model (PIIX3 IDE, virtio-blk over virtio-mmio, the SCSI disk)
 * directly through its registers or request API, the way the unit tests in
 * tests/unit/hw/ do, so thousands of power cuts per second are possible.
 *
 * A guest has `depth` request slots.  submit_* start a request in a free
 * slot and return at once; poll reports one finished slot (without
 * blocking); set_wce switches the write cache the device's own way and
 * returns once the device has acknowledged it.  Everything runs on the
 * calling thread, with completions from the thread-default GMainContext.
 */
#ifndef VD_CRASH_GUESTS_H
#define VD_CRASH_GUESTS_H

#include "block/block-backend.h"

#define CG_MAX_DEPTH 4
#define CG_MAX_SECTORS 64

typedef struct CrashGuest CrashGuest;

typedef struct CrashGuestOps {
    const char *name;
    unsigned depth;             /* requests in flight at most */
    bool has_fua;               /* the device has a FUA write */
    bool switch_drains;         /* set_wce(false) returns once earlier writes are durable (ATA 82h, MODE SELECT) */
    CrashGuest *(*open)(VdBlockBackend *blk, GError **errp);
    /* data: nsect * 512 bytes, copied into guest memory before submission */
    void (*submit_write)(CrashGuest *g, unsigned slot, uint64_t lba, unsigned nsect, bool fua, const uint8_t *data);
    void (*submit_flush)(CrashGuest *g, unsigned slot);
    /* false: the device refused (status says why) */
    bool (*set_wce)(CrashGuest *g, bool on);
    /* A finished slot, if any; *ok: the device reported success. */
    bool (*poll)(CrashGuest *g, unsigned *slot, bool *ok);
    /* Optional: a device reset that abandons the request in flight; returns once the device is ready again. */
    void (*reset)(CrashGuest *g);
    void (*close)(CrashGuest *g);
} CrashGuestOps;

extern const CrashGuestOps crash_guest_ide, crash_guest_virtio_blk, crash_guest_scsi;

#endif
