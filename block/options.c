/*
 * options.c - parse a QEMU -drive style option string into VdBlockOptions.
 *
 * Syntax: key=value pairs separated by ',', where ",," inside a value is a
 * literal comma.  Every key and every enumerated value comes from a
 * name->value table, and every error names the key or value and lists what
 * is accepted.
 */
#include "block-internal.h"
#include "util/options.h"

#include <string.h>

typedef struct VdNameValue {
    const char *name;
    int value;
} VdNameValue;

static const VdNameValue cache_modes[] = {
    { "writeback", VD_CACHE_WRITEBACK },
    { "none", VD_CACHE_NONE },
    { "writethrough", VD_CACHE_WRITETHROUGH },
    { "directsync", VD_CACHE_DIRECTSYNC },
    { "unsafe", VD_CACHE_UNSAFE },
    { NULL, 0 },
};

static const VdNameValue wt_policies[] = {
    { "fua", VD_WT_FUA },
    { "dsync", VD_WT_DSYNC },
    { NULL, 0 },
};

static const VdNameValue booleans[] = {
    { "on", 1 }, { "off", 0 }, { "true", 1 }, { "false", 0 }, { "yes", 1 }, { "no", 0 }, { NULL, 0 },
};

static const VdNameValue aio_engines[] = {
    { "threads", VD_AIO_THREADS },
    { "io_uring", VD_AIO_IO_URING },
    { "driver", VD_AIO_DRIVER },
    { NULL, 0 },
};

static const VdNameValue inline_modes[] = {
    { "auto", VD_INLINE_AUTO }, { "on", VD_INLINE_ON }, { "off", VD_INLINE_OFF }, { NULL, 0 },
};

static const VdNameValue formats[] = {
    { "raw", VD_FORMAT_RAW },
    { "qcow2", VD_FORMAT_QCOW2 },
    { NULL, 0 },
};

static const VdNameValue locking_modes[] = {
    { "auto", VD_LOCKING_AUTO }, { "on", VD_LOCKING_ON }, { "off", VD_LOCKING_OFF }, { NULL, 0 },
};

static const VdNameValue discard_modes[] = {
    { "unmap", 1 }, { "on", 1 }, { "ignore", 0 }, { "off", 0 }, { NULL, 0 },
};

/* crashsim: tear= granularity in bytes (0: whole writes only). */
static const VdNameValue tear_sizes[] = {
    { "off", 0 }, { "512", 512 }, { "4k", 4096 }, { "4096", 4096 }, { NULL, 0 },
};

/* qcow2 repair= at open (docs/qcow2.md "Dirty images"): off, or leaks (lower refcounts above the references). */
static const VdNameValue repair_modes[] = {
    { "off", 0 }, { "leaks", 1 }, { NULL, 0 },
};

/* werror=, rerror= (QEMU's spellings). */
static const VdNameValue error_policies[] = {
    { "report", VD_ERR_REPORT }, { "ignore", VD_ERR_IGNORE }, { "stop", VD_ERR_STOP }, { "enospc", VD_ERR_ENOSPC },
    { NULL, 0 },
};

#define VD_CRASH_MAX_SAMPLES 1000000

static const VdBlockDriver *const builtin_drivers[] = {
    &vd_driver_file, &vd_driver_null, &vd_driver_null_aio, &vd_driver_crashsim, &vd_driver_nbd, &vd_driver_qcow2,
#ifdef VD_HAVE_RBD
    &vd_driver_rbd,
#endif
};
static GPtrArray *extra_drivers; /* vd_block_register_driver; owner thread at startup */

void vd_block_register_driver(const VdBlockDriver *drv)
{
    if (!extra_drivers) {
        extra_drivers = g_ptr_array_new();
    }
    g_ptr_array_add(extra_drivers, (gpointer)drv);
}

/* The driver called name, or NULL. */
static const VdBlockDriver *find_driver(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(builtin_drivers); i++) {
        if (strcmp(builtin_drivers[i]->name, name) == 0) {
            return builtin_drivers[i];
        }
    }
    for (guint i = 0; extra_drivers && i < extra_drivers->len; i++) {
        const VdBlockDriver *drv = g_ptr_array_index(extra_drivers, i);
        if (strcmp(drv->name, name) == 0) {
            return drv;
        }
    }
    return NULL;
}

/* "file, null, ..." */
static char *driver_names(void)
{
    GString *s = g_string_new(NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(builtin_drivers); i++) {
        g_string_append_printf(s, "%s%s", s->len ? ", " : "", builtin_drivers[i]->name);
    }
    for (guint i = 0; extra_drivers && i < extra_drivers->len; i++) {
        g_string_append_printf(s, ", %s", ((const VdBlockDriver *)g_ptr_array_index(extra_drivers, i))->name);
    }
    return g_string_free(s, FALSE);
}

/* Name of a table entry by value, for the enums' public name functions. */
static const char *table_name(const VdNameValue *table, int value)
{
    for (const VdNameValue *e = table; e->name; e++) {
        if (e->value == value) {
            return e->name;
        }
    }
    return "?";
}

const char *vd_cache_mode_name(VdCacheMode mode) { return table_name(cache_modes, mode); }
const char *vd_wt_policy_name(VdWritethroughPolicy policy) { return table_name(wt_policies, policy); }
const char *vd_aio_name(VdAioEngine aio) { return table_name(aio_engines, aio); }
const char *vd_locking_name(VdLocking locking) { return table_name(locking_modes, locking); }
const char *vd_inline_mode_name(VdInlineMode mode) { return table_name(inline_modes, mode); }
const char *vd_error_policy_name(VdErrorPolicy policy) { return table_name(error_policies, policy); }

/* "a, b, c" from a table's names. */
static char *table_names(const VdNameValue *table)
{
    GString *s = g_string_new(NULL);
    for (const VdNameValue *e = table; e->name; e++) {
        g_string_append_printf(s, "%s%s", s->len ? ", " : "", e->name);
    }
    return g_string_free(s, FALSE);
}

/* Look a value up in a table; on failure name the key and the accepted values. */
static bool lookup(const VdNameValue *table, const char *key, const char *value, int *out, GError **errp)
{
    for (const VdNameValue *e = table; e->name; e++) {
        if (strcmp(e->name, value) == 0) {
            *out = e->value;
            return true;
        }
    }
    g_autofree char *names = table_names(table);
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "invalid %s '%s'; accepted values: %s", key, value, names);
    return false;
}

/* size=: what the backend can address (its lengths and offsets are int64_t), in whole sectors. */
static bool parse_disk_size(const char *key, const char *value, uint64_t *out, GError **errp)
{
    if (!vd_parse_size(key, value, 0, out, errp)) {
        return false;
    }
    if (*out > VD_BLK_MAX_BYTES) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "%s=%s is too large; the largest disk is %" G_GUINT64_FORMAT " bytes (2^63 - 512)", key, value,
                    (guint64)VD_BLK_MAX_BYTES);
        return false;
    }
    return true;
}

typedef enum OptKey {
    K_FILE, K_DRIVER, K_FORMAT, K_CACHE, K_AIO, K_READ_ONLY, K_WT_POLICY, K_SIZE, K_DISCARD, K_LOCKING, K_ACTIVE,
    K_CHILD, K_CHILD_CHILD, K_TEAR, K_SAMPLES, K_LOG, K_WERROR, K_RERROR, K_L2_CACHE, K_RB_CACHE,
    K_FAULT_READ, K_FAULT_WRITE, K_FAULT_FLUSH, K_FAULT_DISCARD,   /* in VdFaultOp order */
    K_DELAY_READ, K_DELAY_WRITE, K_DELAY_FLUSH, K_DELAY_DISCARD, K_INLINE, K_REPAIR,
} OptKey;

static const VdNameValue keys[] = {
    { "file", K_FILE }, { "driver", K_DRIVER }, { "format", K_FORMAT }, { "cache", K_CACHE },
    { "aio", K_AIO }, { "read-only", K_READ_ONLY }, { "wt-policy", K_WT_POLICY }, { "size", K_SIZE },
    { "discard", K_DISCARD }, { "locking", K_LOCKING }, { "active", K_ACTIVE },
    { "child", K_CHILD }, { "child.child", K_CHILD_CHILD }, { "tear", K_TEAR }, { "samples", K_SAMPLES }, { "log", K_LOG },
    { "werror", K_WERROR }, { "rerror", K_RERROR },
    { "l2-cache-size", K_L2_CACHE }, { "refcount-cache-size", K_RB_CACHE },
    { "fault.read", K_FAULT_READ }, { "fault.write", K_FAULT_WRITE }, { "fault.flush", K_FAULT_FLUSH },
    { "fault.discard", K_FAULT_DISCARD }, { "delay.read", K_DELAY_READ }, { "delay.write", K_DELAY_WRITE },
    { "delay.flush", K_DELAY_FLUSH }, { "delay.discard", K_DELAY_DISCARD }, { "inline", K_INLINE },
    { "repair", K_REPAIR }, { NULL, 0 },
};

/* The value of a driver's own option, or NULL. */
const char *vd_drv_opt(const VdDriverOpenOptions *opts, const char *key)
{
    for (guint i = 0; opts->driver_opts && i < opts->driver_opts->len; i++) {
        const VdOpt *o = g_ptr_array_index(opts->driver_opts, i);
        if (strcmp(o->key, key) == 0) {
            return o->value;
        }
    }
    return NULL;
}

void vd_block_options_add_driver_opt(VdBlockOptions *opts, const char *key, const char *value)
{
    if (!opts->driver_opts) {
        opts->driver_opts = vd_opts_new();
    }
    vd_opts_add(opts->driver_opts, key, value);
}

/* Keep a key that is not a generic one: the driver (known only at the end) may take it. */
static bool defer_driver_option(const VdOpt *pair, VdBlockOptions *opts, GError **errp)
{
    VdDriverOpenOptions probe = { .driver_opts = opts->driver_opts };
    if (vd_drv_opt(&probe, pair->key)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "option '%s' is given twice", pair->key);
        return false;
    }
    vd_block_options_add_driver_opt(opts, pair->key, pair->value);
    return true;
}

/* True if name is one of drv's own option keys. */
static bool driver_takes(const VdBlockDriver *drv, const char *name)
{
    for (const char *const *n = drv->option_names; n && *n; n++) {
        if (strcmp(*n, name) == 0) {
            return true;
        }
    }
    return false;
}

/* Every kept key must be one of the protocol driver's own; else name it and what is accepted. */
static bool check_driver_options(const VdBlockDriver *proto, const VdBlockOptions *o, GError **errp)
{
    for (guint i = 0; o->driver_opts && i < o->driver_opts->len; i++) {
        const VdOpt *opt = g_ptr_array_index(o->driver_opts, i);
        if (!driver_takes(proto, opt->key)) {
            g_autofree char *names = table_names(keys);
            GString *own = g_string_new(NULL);
            for (const char *const *n = proto->option_names; n && *n; n++) {
                g_string_append_printf(own, ", %s", *n);
            }
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "unknown option '%s'; accepted options: %s%s", opt->key, names, own->str);
            g_string_free(own, TRUE);
            return false;
        }
    }
    return true;
}

/* Parse one key=value pair into opts. */
static bool apply_option(const VdOpt *pair, VdBlockOptions *opts, unsigned *seen, GError **errp)
{
    const char *key = pair->key, *value = pair->value;
    int k, v;
    if (!lookup(keys, "option", key, &k, NULL)) {
        return defer_driver_option(pair, opts, errp);
    }
    if (*seen & (1u << k)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "option '%s' is given twice", key);
        return false;
    }
    *seen |= 1u << k;
    switch ((OptKey)k) {
    case K_FILE:
        if (!*value) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "file= needs a path");
            return false;
        }
        opts->file = g_strdup(value);
        return true;
    case K_DRIVER:
    case K_CHILD:
    case K_CHILD_CHILD: {
        const VdBlockDriver *drv = find_driver(value);
        if (!drv) {
            g_autofree char *names = driver_names();
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "invalid %s '%s'; accepted values: %s", key, value, names);
            return false;
        }
        *(k == K_DRIVER ? &opts->driver : k == K_CHILD ? &opts->child : &opts->child_child) = drv;
        return true;
    }
    case K_L2_CACHE:
        return vd_parse_size(key, value, 0, &opts->l2_cache_size, errp);
    case K_RB_CACHE:
        return vd_parse_size(key, value, 0, &opts->refcount_cache_size, errp);
    case K_REPAIR:
        if (!lookup(repair_modes, key, value, &v, errp)) {
            return false;
        }
        opts->qcow2_repair = v;
        return true;
    case K_TEAR:
        if (!lookup(tear_sizes, key, value, &v, errp)) {
            return false;
        }
        opts->crash_tear = v;
        opts->crash_set = true;
        return true;
    case K_SAMPLES: {
        guint64 n;
        opts->crash_set = true;
        if (!g_ascii_string_to_unsigned(value, 10, 1, VD_CRASH_MAX_SAMPLES, &n, NULL)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "invalid samples '%s'; expected a number from 1 to %u", value, VD_CRASH_MAX_SAMPLES);
            return false;
        }
        opts->crash_samples = n;
        return true;
    }
    case K_LOG:
        opts->crash_set = true;
        if (!*value) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "log= needs a path");
            return false;
        }
        opts->crash_log = g_strdup(value);
        return true;
    case K_FORMAT:
        opts->format_set = true;
        return lookup(formats, key, value, &opts->format, errp);
    case K_CACHE:
        if (!lookup(cache_modes, key, value, &v, errp)) {
            return false;
        }
        opts->cache = v;
        return true;
    case K_AIO:
        if (!lookup(aio_engines, key, value, &v, errp)) {
            return false;
        }
        opts->aio = v;
        opts->aio_explicit = true;
        return true;
    case K_INLINE:
        if (!lookup(inline_modes, key, value, &v, errp)) {
            return false;
        }
        opts->inline_mode = v;
        return true;
    case K_READ_ONLY:
        if (!lookup(booleans, key, value, &v, errp)) {
            return false;
        }
        opts->read_only = v;
        return true;
    case K_WT_POLICY:
        if (!lookup(wt_policies, key, value, &v, errp)) {
            return false;
        }
        opts->wt_policy = v;
        return true;
    case K_SIZE:
        opts->size_set = true;
        return parse_disk_size(key, value, &opts->size, errp);
    case K_DISCARD:
        if (!lookup(discard_modes, key, value, &v, errp)) {
            return false;
        }
        opts->discard = v;
        return true;
    case K_LOCKING:
        if (!lookup(locking_modes, key, value, &v, errp)) {
            return false;
        }
        opts->locking = v;
        return true;
    case K_ACTIVE:
        if (!lookup(booleans, key, value, &v, errp)) {
            return false;
        }
        opts->active = v;
        return true;
    case K_WERROR:
    case K_RERROR:
        if (!lookup(error_policies, key, value, &v, errp)) {
            return false;
        }
        *(k == K_WERROR ? &opts->werror : &opts->rerror) = v;
        return true;
    case K_FAULT_READ:
    case K_FAULT_WRITE:
    case K_FAULT_FLUSH:
    case K_FAULT_DISCARD:
        return vd_fault_rule_parse(key, value, &opts->faults[k - K_FAULT_READ], errp);
    case K_DELAY_READ:
    case K_DELAY_WRITE:
    case K_DELAY_FLUSH:
    case K_DELAY_DISCARD:
        return vd_fault_delay_parse(key, value, &opts->delay_us[k - K_DELAY_READ], errp);
    }
    return false;
}

/* format=qcow2: the qcow2 driver on top of the chain that driver= and child= describe. */
static bool apply_format(VdBlockOptions *o, unsigned seen, GError **errp)
{
    bool qcow2_named = o->driver == &vd_driver_qcow2 || o->child == &vd_driver_qcow2 || o->child_child == &vd_driver_qcow2;
    if (o->format_set && o->format == VD_FORMAT_RAW && qcow2_named) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "format=raw contradicts the qcow2 driver in the chain");
        return false;
    }
    if (!o->format_set || o->format != VD_FORMAT_QCOW2) {
        return true;
    }
    if (qcow2_named || o->child_child) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "format=qcow2 puts qcow2 above driver=%s; give it without driver=qcow2 or child.child=",
                    o->driver->name);
        return false;
    }
    o->child_child = o->child;
    o->child = (seen & (1u << K_DRIVER)) ? o->driver : NULL;
    o->driver = &vd_driver_qcow2;
    return true;
}

/* True if drv is in the chain of o. */
static bool in_chain(const VdBlockOptions *o, const VdBlockDriver *drv)
{
    return o->driver == drv || o->child == drv || o->child_child == drv;
}

/* A driver with a child gets one (file= alone implies file), two levels deep; the bottom is a protocol. */
static bool check_chain(VdBlockOptions *o, GError **errp)
{
    if (o->driver->is_filter && !o->child && o->file) {
        o->child = &vd_driver_file;
    }
    if (o->child && o->child->is_filter && !o->child_child && o->file) {
        o->child_child = &vd_driver_file;
    }
    if (o->driver->is_filter && !o->child) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "driver '%s' needs a child: child=file,file=PATH or child=null,size=BYTES", o->driver->name);
    } else if (!o->driver->is_filter && o->child) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "child= is only for a driver with a child (crashsim, qcow2), not driver '%s'", o->driver->name);
    } else if ((o->child && o->child->aio_submit) || (o->child_child && o->child_child->aio_submit)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "invalid child '%s': an asynchronous driver (nbd, rbd) cannot sit under another driver",
                    (o->child_child ? o->child_child : o->child)->name);
    } else if (o->child && o->child->is_filter && !o->child_child) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "child '%s' needs a child: child.child=file,file=PATH or child.child=null,size=BYTES", o->child->name);
    } else if (o->child_child && !(o->child && o->child->is_filter)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "child.child= is only for a child with a child (crashsim)");
    } else if (o->child_child && o->child_child->is_filter) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "invalid child.child '%s': the bottom of the chain must be a protocol driver (file, null)",
                    o->child_child->name);
    } else if (o->crash_set && !in_chain(o, &vd_driver_crashsim) &&
               !(o->driver->is_filter && o->driver != &vd_driver_qcow2)) { /* a (test) filter may open crashsim itself */
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "tear=, samples= and log= are only for driver=crashsim");
    } else if ((o->l2_cache_size || o->refcount_cache_size) && !in_chain(o, &vd_driver_qcow2)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "l2-cache-size= and refcount-cache-size= are only for a qcow2 image (format=qcow2)");
    } else if (o->qcow2_repair && !in_chain(o, &vd_driver_qcow2)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "repair= is only for a qcow2 image (format=qcow2)");
    } else if (o->qcow2_repair && o->read_only) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "repair=leaks writes the image: it cannot go with read-only=on");
    } else {
        return true;
    }
    return false;
}

/* aio= against the driver: an asynchronous driver runs only aio=driver, and only it does. */
static bool check_aio(const VdBlockOptions *o, GError **errp)
{
    bool async = o->driver->aio_submit != NULL;
    if (async && o->aio_explicit && o->aio != VD_AIO_DRIVER) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "aio=%s does not apply to driver=%s: its I/O runs in the owner's loop (aio=driver)",
                    vd_aio_name(o->aio), o->driver->name);
        return false;
    }
    if (!async && o->aio == VD_AIO_DRIVER) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "aio=driver needs a driver with its own asynchronous I/O (nbd, rbd), not driver=%s",
                    o->driver->name);
        return false;
    }
    return true;
}

/* The protocol at the bottom of the chain. */
static const VdBlockDriver *bottom_driver(const VdBlockOptions *o)
{
    return o->child_child ? o->child_child : o->child ? o->child : o->driver;
}

/* file= and size= as the protocol at the bottom of the chain needs them. */
static bool check_protocol(const VdBlockDriver *proto, const VdBlockOptions *o, GError **errp)
{
    if (proto->remote && (o->file || o->size_set)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "driver '%s' takes no %s option; its own options "
                    "name the image", proto->name, o->file ? "file=" : "size=");
    } else if (proto->remote) {
        return true;
    } else if (proto->needs_filename && !o->file) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "driver '%s' needs file=PATH", proto->name);
    } else if (!proto->needs_filename && o->file) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "driver '%s' takes no file= option", proto->name);
    } else if (o->size_set && proto->needs_filename) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "size= is only for driver=null; a file's size is its length");
    } else if (!proto->needs_filename && !o->size_set) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "driver '%s' needs size=BYTES", proto->name);
    } else {
        return true;
    }
    return false;
}

/* The writethrough policy used when wt-policy= is absent: see docs/cache-modes.md. */
#define VD_WT_POLICY_DEFAULT VD_WT_FUA
/*
 * The I/O engine used when aio= is absent: io_uring, which measured faster
 * (docs/benchmarks.md); the backend falls back to the thread pool where
 * io_uring cannot be set up.  An explicit aio=io_uring fails instead.
 */
#define VD_AIO_DEFAULT VD_AIO_IO_URING

bool vd_block_options_parse(const char *options, VdBlockOptions *out, GError **errp)
{
    *out = (VdBlockOptions){ .driver = &vd_driver_file, .cache = VD_CACHE_WRITEBACK,
                             .wt_policy = VD_WT_POLICY_DEFAULT, .discard = true,
                             .aio = VD_AIO_DEFAULT, .locking = VD_LOCKING_AUTO, .active = true,
                             .werror = VD_ERR_ENOSPC, .rerror = VD_ERR_REPORT };
    g_autoptr(GPtrArray) pairs = NULL;
    unsigned seen = 0;
    if (!options) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no options given; file= is required");
        return false;
    }
    pairs = vd_opts_split(options, errp);
    if (!pairs) {
        return false;
    }
    for (guint i = 0; i < pairs->len; i++) {
        if (!apply_option(g_ptr_array_index(pairs, i), out, &seen, errp)) {
            vd_block_options_clear(out);
            return false;
        }
    }
    const VdBlockDriver *named = out->driver;
    bool spelled = vd_block_filename_spelling(out, (seen & (1u << K_DRIVER)) != 0, errp);
    seen |= out->driver != named ? 1u << K_DRIVER : 0;    /* file=rbd:... names the driver as driver= would */
    if (spelled && apply_format(out, seen, errp) && check_chain(out, errp) && check_protocol(bottom_driver(out), out, errp) &&
        check_driver_options(bottom_driver(out), out, errp) && check_aio(out, errp)) {
        return true;
    }
    vd_block_options_clear(out);
    return false;
}

void vd_block_options_clear(VdBlockOptions *opts)
{
    g_clear_pointer(&opts->file, g_free);
    g_clear_pointer(&opts->crash_log, g_free);
    g_clear_pointer(&opts->driver_opts, g_ptr_array_unref);
}
