/*
 * drive.h - the --drive option string, shared by every tool that turns one
 * into a device (vdisk-vmm, vdisk-vhost): device keys are split from the
 * block backend's keys and every key is checked before anything is opened.
 *
 * Guarantees:
 *  - vd_drive_spec_parse* refuses, with one line naming the key: a malformed
 *    item, a device key given twice, a device key the tool does not take
 *    (VdDriveRules), a value outside its key's table or range (serial=: 1-20
 *    printable ASCII characters without spaces, never cut), and every key or
 *    value the block backend would refuse (vd_blk_check_options).  Nothing
 *    is opened or created.
 *  - vd_drive_spec_check_unique refuses a drive whose id= or serial= another
 *    drive of the same process already has.
 *
 * Threading: none (plain data).
 */
#ifndef VD_SYSTEM_DRIVE_H
#define VD_SYSTEM_DRIVE_H

#include "block/block-backend.h"

#include <glib.h>
#include <stdbool.h>

#define VD_IDE_MAX_DRIVES 4     /* 2 channels x 2 units */
#define VD_SCSI_MAX_LUNS 64
#define VD_DRIVE_MAX_QUEUES 64
#define VD_DRIVE_SERIAL_MAX 20  /* the shortest serial field among ATA/SCSI/virtio */

/* One --drive option after parsing: device keys split from backend keys. */
typedef struct VdDriveSpec {
    char *text;               /* the option string as given, for messages */
    char *id;                 /* id=, or "drive<N>" */
    char *interface;          /* if=ide|scsi|virtio|none, or the tool's (VdDriveRules) */
    int index;                /* index=, -1 if absent */
    char *serial;             /* serial=, or NULL */
    unsigned num_queues;      /* num-queues= (virtio), default 1 */
    char *backend_options;    /* everything else, for vd_blk_open */
    VdBlockBackend *blk;      /* opened by the machine before attach (vdisk-vmm only) */
} VdDriveSpec;

/* The device keys, one bit each. */
typedef enum VdDriveKey {
    VD_DRIVE_KEY_IF = 1u << 0,
    VD_DRIVE_KEY_INDEX = 1u << 1,
    VD_DRIVE_KEY_ID = 1u << 2,
    VD_DRIVE_KEY_SERIAL = 1u << 3,
    VD_DRIVE_KEY_NUM_QUEUES = 1u << 4,
} VdDriveKey;

/* What a tool takes in --drive. */
typedef struct VdDriveRules {
    unsigned keys;            /* VdDriveKey bits the tool accepts; the others are refused */
    const char *interface;    /* the interface when if= is absent */
    const char *refusal;      /* why the other device keys are refused (completes the error line) */
} VdDriveRules;

/* vdisk-vmm's rules: every device key; if= defaults to ide, as in QEMU. */
extern const VdDriveRules vd_drive_rules_vmm;

/* Parse one --drive option string by vdisk-vmm's rules. */
VdDriveSpec *vd_drive_spec_parse(const char *str, GError **errp);
/* Parse one --drive option string by a tool's rules. */
VdDriveSpec *vd_drive_spec_parse_rules(const char *str, const VdDriveRules *rules, GError **errp);
/* Close the backend (if opened) and free the spec; NULL is ignored. */
void vd_drive_spec_free(VdDriveSpec *drive);
/* False when a drive in others (VdDriveSpec *) has d's id= or serial=. */
bool vd_drive_spec_check_unique(const VdDriveSpec *d, GPtrArray *others, GError **errp);

#endif
