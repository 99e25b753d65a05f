/*
 * cli.h - the vdisk-vmm command line (docs/vdisk-vmm.md).
 *
 * Guarantees:
 *  - Options are accepted with one or two leading dashes, as "--opt VALUE"
 *    or "--opt=VALUE", like QEMU's.
 *  - Every malformed argument is refused with a message that names it;
 *    nothing is opened or created while parsing.
 */
#ifndef VD_SYSTEM_CLI_H
#define VD_SYSTEM_CLI_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define VD_RAM_MIN (2ull << 20)
#define VD_RAM_MAX (3ull << 30)  /* below the virtio-mmio window at 0xfeb00000 */

typedef struct VdVmmOptions {
    uint64_t ram_size;
    GPtrArray *drives;      /* char *: --drive strings in command-line order */
    char *qtest;            /* --qtest transport, or NULL */
    char *control;          /* --control/--qmp socket spec, or NULL (docs/control.md) */
    char *dump_dtb;         /* --dump-dtb file, or NULL */
    char *serial_log;       /* --serial file, or NULL (output discarded) */
    bool help;
} VdVmmOptions;

void vd_vmm_options_init(VdVmmOptions *o);
void vd_vmm_options_clear(VdVmmOptions *o);
/* Parse argv[1..argc-1] into o. */
bool vd_vmm_parse_args(VdVmmOptions *o, int argc, char **argv, GError **errp);
/* The --help text. */
const char *vd_vmm_usage(void);

/*
 * A QEMU-style size: digits with an optional suffix B, K, M, G or T
 * (powers of 1024, either case).  Without a suffix the number is in units
 * of 2^default_shift bytes (20 for -m, as QEMU's -m means MiB).
 */
bool vd_parse_size(const char *str, unsigned default_shift, uint64_t *out, GError **errp);

#endif
