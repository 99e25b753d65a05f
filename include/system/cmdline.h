/*
 * cmdline.h - the command-line convention every vdisk tool follows
 * (vdisk-vmm, vdisk-vhost; docs/vdisk-vmm.md, docs/vhost-user.md).
 *
 * Guarantees:
 *  - Options take one or two leading dashes, their value as the next
 *    argument or after '=' ("--opt VALUE", "-opt=VALUE"), as QEMU's do.
 *  - --help (-h) and --version are built in: the first of them ends parsing,
 *    prints the usage or "TOOL (vdisk) VERSION" on stdout, exit status 0.
 *  - A tool with operands (VdCliTool.operand) takes the first argument that
 *    is not an option, and every argument after it, as operands ("--" ends
 *    the options too), as getopt does in POSIX mode: "TOOL -x FILE -y" gives
 *    FILE and "-y" to the operand function.
 *  - Every malformed argument is refused with one line naming the option:
 *    an unknown option, a missing or unexpected value, a stray argument, an
 *    option that is not repeatable given twice, or the option's own check.
 *    Such a command line exits with VD_EXIT_USAGE before anything is opened.
 *  - A failure once the command line was accepted (a file that cannot be
 *    opened, a socket that cannot be bound) exits with VD_EXIT_FAILURE.
 *
 * Threading: none.
 */
#ifndef VD_SYSTEM_CMDLINE_H
#define VD_SYSTEM_CMDLINE_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

#define VD_EXIT_OK 0        /* --help, --version, or a clean end */
#define VD_EXIT_FAILURE 1   /* the command line was fine; something failed at run time */
#define VD_EXIT_USAGE 2     /* the command line is wrong; nothing was opened */

/* Store one option's value (NULL for an option without one) into the tool's options. */
typedef bool VdCliApplyFunc(void *opts, const char *value, GError **errp);

/* One entry of a tool's option table. */
typedef struct VdCliOption {
    const char *name;         /* without dashes, e.g. "drive" */
    const char *alias;        /* another name (e.g. "m"), or NULL */
    bool takes_value;
    bool repeatable;          /* false: a second occurrence is refused */
    VdCliApplyFunc *apply;
} VdCliOption;

/* A tool's command line. */
typedef struct VdCliTool {
    const char *name;         /* the program name, first word of every message */
    const char *usage;        /* the --help text */
    const VdCliOption *options;
    size_t n_options;
    /* Checks across options once all are parsed (required ones, limits), or NULL. */
    bool (*check)(void *opts, GError **errp);
    /* Takes each operand in order (see above), or NULL: an operand is refused as a stray argument. */
    VdCliApplyFunc *operand;
} VdCliTool;

/* What the command line asks for. */
typedef enum VdCliAction {
    VD_CLI_RUN,
    VD_CLI_HELP,
    VD_CLI_VERSION,
} VdCliAction;

/* Parse argv[1..argc-1] by the tool's table into opts, then run its check (unless --help/--version). */
bool vd_cli_parse(const VdCliTool *tool, void *opts, int argc, char **argv, VdCliAction *action, GError **errp);

/*
 * The convention for main(): parse, then print the usage, the version or
 * the one-line error.  True: run the tool.  False: exit with *status
 * (VD_EXIT_OK after --help/--version, VD_EXIT_USAGE after an error).
 */
bool vd_cli_start(const VdCliTool *tool, void *opts, int argc, char **argv, int *status);

/* The project version (meson.build), e.g. "0.1.0". */
const char *vd_cli_version(void);

/*
 * A decimal number in [min, max]: digits only, no sign, no space, no
 * leading "0x".  The error reads "NAME VALUE: expected a number from MIN to
 * MAX", so name is the option ("--num-queues").
 */
bool vd_cli_parse_uint(const char *name, const char *value, unsigned min, unsigned max, unsigned *out,
                       GError **errp);

#endif
