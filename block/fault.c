/*
 * fault.c - host faults (the blkdebug role): the one rule table per backend
 * that the driver-boundary checkpoint (driver-call.c) consults before every
 * driver call.  A rule fails one kind of op (read, write, flush, discard)
 * with an errno, after letting some ops pass, once, N times or always, and
 * only in an offset range if one is given; a delay holds every op of a kind
 * for a fixed time (a flush-bound device for benchmarks).  The --drive
 * options fault.OP= and delay.OP=, the qtest inject command and
 * vd_blk_inject_error all set these same rules.
 *
 * Lock rules: blk->faults and blk->delay_us are under blk->fault_lock; the
 * checkpoint runs in workers and on the owner thread.  blk->fault_armed_mask
 * (one bit per op that has a rule or a delay) is rewritten under the lock
 * after every change and read without it, so an op with nothing armed, the
 * common case, costs one atomic load instead of a lock per check.
 */
#include "block-internal.h"
#include "util/options.h"

#include <errno.h>
#include <string.h>

typedef struct VdErrnoName {
    const char *name;
    int err;
} VdErrnoName;

/* The errno names the options and qtest accept. */
static const VdErrnoName errno_names[] = {
    { "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT }, { "EROFS", EROFS }, { "EPERM", EPERM },
    { "EINVAL", EINVAL }, { "ENOMEM", ENOMEM }, { "ENOTSUP", ENOTSUP },
};

static const char *const op_names[VD_FAULT__MAX] = {
    [VD_FAULT_READ] = "read", [VD_FAULT_WRITE] = "write", [VD_FAULT_FLUSH] = "flush", [VD_FAULT_DISCARD] = "discard",
};

bool vd_fault_errno_parse(const char *name, int *err)
{
    for (size_t i = 0; i < G_N_ELEMENTS(errno_names); i++) {
        if (strcmp(name, errno_names[i].name) == 0) {
            *err = errno_names[i].err;
            return true;
        }
    }
    return false;
}

const char *vd_fault_op_name(VdFaultOp op)
{
    return op < VD_FAULT__MAX ? op_names[op] : "?";
}

bool vd_fault_op_parse(const char *name, VdFaultOp *op)
{
    for (int i = 0; i < VD_FAULT__MAX; i++) {
        if (strcmp(name, op_names[i]) == 0) {
            *op = i;
            return true;
        }
    }
    return false;
}

/* "EIO, ENOSPC, ..." */
static char *errno_list(void)
{
    GString *s = g_string_new(NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(errno_names); i++) {
        g_string_append_printf(s, "%s%s", i ? ", " : "", errno_names[i].name);
    }
    return g_string_free(s, FALSE);
}

/* Fail a fault.OP= value with one line naming it and the syntax. */
static bool bad_fault(const char *key, const char *value, const char *why, GError **errp)
{
    g_autofree char *names = errno_list();
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "invalid %s '%s': %s; expected ERRNO[@N[+]][/START-END] with ERRNO one of %s", key, value, why,
                names);
    return false;
}

bool vd_fault_rule_parse(const char *key, const char *value, VdFaultRule *out, GError **errp)
{
    *out = (VdFaultRule){ .count = VD_FAULT_ALWAYS };
    g_autofree char *spec = g_strdup(value);
    char *range = strchr(spec, '/');
    if (range) {
        *range++ = '\0';
        char *dash = strchr(range, '-');
        if (!dash) {
            return bad_fault(key, value, "the range needs START-END", errp);
        }
        *dash++ = '\0';
        if (!vd_parse_size(key, range, 0, &out->start, NULL) || !vd_parse_size(key, dash, 0, &out->end, NULL) ||
            out->end <= out->start) {
            return bad_fault(key, value, "the range must be START-END with START < END (sizes, e.g. 1M-2M)", errp);
        }
    }
    char *at = strchr(spec, '@');
    if (at) {
        *at++ = '\0';
        size_t len = strlen(at);
        bool always = len && at[len - 1] == '+';
        if (always) {
            at[len - 1] = '\0';
        }
        guint64 n;
        if (!g_ascii_string_to_unsigned(at, 10, 1, G_MAXUINT32, &n, NULL)) {
            return bad_fault(key, value, "@N needs an op number from 1", errp);
        }
        out->after = n - 1;
        out->count = always ? VD_FAULT_ALWAYS : 1;
    }
    if (!vd_fault_errno_parse(spec, &out->err)) {
        return bad_fault(key, value, "unknown errno", errp);
    }
    return true;
}

bool vd_fault_delay_parse(const char *key, const char *value, unsigned *us, GError **errp)
{
    static const struct { const char *suffix; unsigned mult; } units[] = { { "us", 1 }, { "ms", 1000 }, { "s", 1000000 } };
    char *end = NULL;
    guint64 n = g_ascii_strtoull(value, &end, 10);
    for (size_t i = 0; end != value && i < G_N_ELEMENTS(units); i++) {
        if (strcmp(end, units[i].suffix) == 0 && n <= VD_FAULT_MAX_DELAY_US / units[i].mult) {
            *us = n * units[i].mult;
            return true;
        }
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "invalid %s '%s'; expected a time with a unit (us, ms, s) of at most 10s, e.g. 2ms", key, value);
    return false;
}

/* Republish which ops have a rule or delay (under fault_lock, after any change). */
static void update_armed_mask(VdBlockBackend *blk)
{
    unsigned mask = 0;
    for (int op = 0; op < VD_FAULT__MAX; op++) {
        const VdFaultRule *r = &blk->faults[op];
        if ((r->err && r->count) || blk->delay_us[op]) {
            mask |= 1u << op;
        }
    }
    __atomic_store_n(&blk->fault_armed_mask, mask, __ATOMIC_RELEASE);
}

void vd_blk_set_fault(VdBlockBackend *blk, VdFaultOp op, const VdFaultRule *rule)
{
    g_return_if_fail(op < VD_FAULT__MAX && rule->err >= 0);
    g_mutex_lock(&blk->fault_lock);
    blk->faults[op] = *rule;
    update_armed_mask(blk);
    g_mutex_unlock(&blk->fault_lock);
}

void vd_blk_set_delay(VdBlockBackend *blk, VdFaultOp op, unsigned delay_us)
{
    g_return_if_fail(op < VD_FAULT__MAX && delay_us <= VD_FAULT_MAX_DELAY_US);
    g_mutex_lock(&blk->fault_lock);
    blk->delay_us[op] = delay_us;
    update_armed_mask(blk);
    g_mutex_unlock(&blk->fault_lock);
}

void vd_blk_inject_error(VdBlockBackend *blk, VdFaultOp op, int err, unsigned count)
{
    g_return_if_fail(err > 0);
    VdFaultRule rule = { .err = err, .count = count };
    vd_blk_set_fault(blk, op, &rule);
}

int vd_fault_take_slow(VdBlockBackend *blk, VdFaultOp op, uint64_t offset, uint64_t bytes)
{
    int err = 0;
    g_mutex_lock(&blk->fault_lock);
    VdFaultRule *r = &blk->faults[op];
    bool in_range = !r->end || op == VD_FAULT_FLUSH || (offset < r->end && offset + bytes > r->start);
    if (r->err && r->count && in_range) {
        if (r->after) {
            r->after--;
        } else {
            err = r->err;
            if (r->count != VD_FAULT_ALWAYS && --r->count == 0) {
                update_armed_mask(blk);
            }
        }
    }
    g_mutex_unlock(&blk->fault_lock);
    return err;
}

bool vd_fault_armed_slow(VdBlockBackend *blk, VdFaultOp op)
{
    g_mutex_lock(&blk->fault_lock);
    const VdFaultRule *r = &blk->faults[op];
    bool armed = (r->err && r->count) || blk->delay_us[op];
    g_mutex_unlock(&blk->fault_lock);
    return armed;
}

unsigned vd_fault_delay_slow(VdBlockBackend *blk, VdFaultOp op)
{
    g_mutex_lock(&blk->fault_lock);
    unsigned us = blk->delay_us[op];
    g_mutex_unlock(&blk->fault_lock);
    return us;
}
