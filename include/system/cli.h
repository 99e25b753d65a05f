/*
 * cli.h - the vdisk-vmm command line (docs/vdisk-vmm.md).
 *
 * Guarantees:
 *  - The convention of system/cmdline.h: one or two leading dashes,
 *    "--opt VALUE" or "--opt=VALUE", --help and --version, every option
 *    at most once except --drive.
 *  - Every malformed argument is refused with a message that names it;
 *    nothing is opened or created while parsing.  Every --drive is checked
 *    in full (system/drive.h), against the drives before it too.
 */
#ifndef VD_SYSTEM_CLI_H
#define VD_SYSTEM_CLI_H

#include "system/cmdline.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define VD_RAM_MIN (2ull << 20)
#define VD_RAM_MAX (3ull << 30)  /* below the virtio-mmio window at 0xfeb00000 */

typedef struct VdVmmOptions {
    uint64_t ram_size;
    GPtrArray *drives;      /* VdDriveSpec *: the parsed --drive options in command-line order */
    char *qtest;            /* --qtest transport, or NULL */
    char *control;          /* --control/--qmp socket spec, or NULL (docs/control.md) */
    char *dump_dtb;         /* --dump-dtb file, or NULL */
    char *serial_log;       /* --serial file, or NULL (output discarded) */
    char *incoming;         /* --incoming URI (unix:PATH or fd:N), or NULL (docs/migration.md) */
    unsigned incoming_timeout; /* --incoming-timeout seconds */
} VdVmmOptions;

void vd_vmm_options_init(VdVmmOptions *o);
void vd_vmm_options_clear(VdVmmOptions *o);
/* The vdisk-vmm command line, for vd_cli_parse / vd_cli_start with a VdVmmOptions. */
extern const VdCliTool vd_vmm_cli;

#endif
