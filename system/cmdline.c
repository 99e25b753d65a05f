/* cmdline.c - the command-line convention of every vdisk tool (system/cmdline.h). */
#include "system/cmdline.h"

#include "util/options.h"
#include "vdisk-version.h"

#include <gio/gio.h>
#include <stdio.h>
#include <string.h>

#define CLI_ERROR(errp, ...) g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, __VA_ARGS__)

/* The options every tool has; they end parsing. */
static const struct BuiltinOption {
    const char *name;
    const char *alias;
    VdCliAction action;
} builtin_options[] = {
    { "help", "h", VD_CLI_HELP },
    { "version", NULL, VD_CLI_VERSION },
};

/* Does the name (len bytes, dashes stripped) spell name or alias? */
static bool name_matches(const char *arg, size_t len, const char *name, const char *alias)
{
    return (strlen(name) == len && strncmp(name, arg, len) == 0) ||
           (alias && strlen(alias) == len && strncmp(alias, arg, len) == 0);
}

/* The tool's table entry for an option name, or NULL. */
static const VdCliOption *find_option(const VdCliTool *tool, const char *name, size_t len)
{
    for (size_t i = 0; i < tool->n_options; i++) {
        if (name_matches(name, len, tool->options[i].name, tool->options[i].alias)) {
            return &tool->options[i];
        }
    }
    return NULL;
}

/* The built-in option for a name, or NULL. */
static const struct BuiltinOption *find_builtin(const char *name, size_t len)
{
    for (size_t i = 0; i < G_N_ELEMENTS(builtin_options); i++) {
        if (name_matches(name, len, builtin_options[i].name, builtin_options[i].alias)) {
            return &builtin_options[i];
        }
    }
    return NULL;
}

/* Is arg where a tool with operands stops taking options ("--", "-" or a word)? */
static bool starts_operands(const VdCliTool *tool, const char *arg)
{
    return tool->operand && (arg[0] != '-' || arg[1] == '\0' || strcmp(arg, "--") == 0);
}

/* Hand argv[first..] to the tool's operand function, in order; a leading "--" is dropped. */
static bool apply_operands(const VdCliTool *tool, void *opts, int argc, char **argv, int first, GError **errp)
{
    for (int i = first + (strcmp(argv[first], "--") == 0); i < argc; i++) {
        if (!tool->operand(opts, argv[i], errp)) {
            return false;
        }
    }
    return true;
}

/* Parse argv by the tool table (built-ins first), refusing repeats, then run the tool's check. */
bool vd_cli_parse(const VdCliTool *tool, void *opts, int argc, char **argv, VdCliAction *action, GError **errp)
{
    g_autofree guint *count = g_new0(guint, tool->n_options + 1);
    *action = VD_CLI_RUN;
    int i = 1;
    for (; i < argc && !starts_operands(tool, argv[i]); i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            CLI_ERROR(errp, "unexpected argument '%s' (options start with -, see --help)", arg);
            return false;
        }
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        int spelled = (int)(name + name_len - arg);   /* the option as written, without "=value" */
        const struct BuiltinOption *builtin = find_builtin(name, name_len);
        const VdCliOption *opt = builtin ? NULL : find_option(tool, name, name_len);
        if (!builtin && !opt) {
            CLI_ERROR(errp, "unknown option '%.*s' (see --help)", spelled, arg);
            return false;
        }
        if (eq && (builtin || !opt->takes_value)) {
            CLI_ERROR(errp, "option '%.*s' takes no value", spelled, arg);
            return false;
        }
        if (builtin) {
            *action = builtin->action;
            return true;
        }
        const char *value = NULL;
        if (opt->takes_value) {
            if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                CLI_ERROR(errp, "option '%s' needs a value (see --help)", arg);
                return false;
            }
        }
        if (count[opt - tool->options]++ && !opt->repeatable) {
            CLI_ERROR(errp, "option '%.*s' is given twice (it takes one value)", spelled, arg);
            return false;
        }
        if (!opt->apply(opts, value, errp)) {
            return false;
        }
    }
    if (i < argc && !apply_operands(tool, opts, argc, argv, i, errp)) {
        return false;
    }
    return !tool->check || tool->check(opts, errp);
}

/* Parse, then print usage, version or the one-line error; false: exit with *status. */
bool vd_cli_start(const VdCliTool *tool, void *opts, int argc, char **argv, int *status)
{
    g_autoptr(GError) err = NULL;
    VdCliAction action;
    if (!vd_cli_parse(tool, opts, argc, argv, &action, &err)) {
        fprintf(stderr, "%s: %s\n", tool->name, err->message);
        *status = VD_EXIT_USAGE;
        return false;
    }
    *status = VD_EXIT_OK;
    switch (action) {
    case VD_CLI_HELP:
        fputs(tool->usage, stdout);
        return false;
    case VD_CLI_VERSION:
        printf("%s (vdisk) %s\n", tool->name, vd_cli_version());
        return false;
    case VD_CLI_RUN:
        break;
    }
    return true;
}

/* The project version from meson.build (vdisk-version.h, generated). */
const char *vd_cli_version(void)
{
    return VDISK_VERSION;
}

/* A decimal number in [min, max], digits only: util's parser, worded for a command-line option. */
bool vd_cli_parse_uint(const char *name, const char *value, unsigned min, unsigned max, unsigned *out,
                       GError **errp)
{
    if (!vd_parse_uint(name, value, min, max, out, NULL)) {
        CLI_ERROR(errp, "%s '%s': expected a number from %u to %u", name, value, min, max);
        return false;
    }
    return true;
}
