/* options.c - option-string splitting and number parsing (see include/util/options.h). */
#include "util/options.h"

#include <string.h>

#define OPT_ERROR(errp, ...) g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, __VA_ARGS__)

/* Free one VdOpt (the GPtrArray's free function). */
static void opt_free(gpointer p)
{
    VdOpt *o = p;
    g_free(o->key);
    g_free(o->value);
    g_free(o);
}

/* Turn one unescaped item into a VdOpt, or explain why it is not key=value. */
static VdOpt *opt_new(const char *item, const char *str, GError **errp)
{
    const char *eq = strchr(item, '=');
    if (!*item) {
        OPT_ERROR(errp, "empty option in '%s' (a stray ','; write ',,' for a comma inside a value)", str);
        return NULL;
    }
    if (!eq || eq == item) {
        OPT_ERROR(errp, "option '%s' is not of the form key=value%s", item, eq ? " (the key is empty)" : "");
        return NULL;
    }
    VdOpt *o = g_new(VdOpt, 1);
    o->key = g_strndup(item, eq - item);
    o->value = g_strdup(eq + 1);
    return o;
}

GPtrArray *vd_opts_new(void)
{
    return g_ptr_array_new_with_free_func(opt_free);
}

void vd_opts_add(GPtrArray *opts, const char *key, const char *value)
{
    VdOpt *o = g_new(VdOpt, 1);
    *o = (VdOpt){ .key = g_strdup(key), .value = g_strdup(value) };
    g_ptr_array_add(opts, o);
}

GPtrArray *vd_opts_split(const char *str, GError **errp)
{
    g_autoptr(GPtrArray) opts = vd_opts_new();
    g_autoptr(GString) cur = g_string_new(NULL);
    if (!*str) {
        return g_steal_pointer(&opts);
    }
    for (const char *p = str;; p++) {
        if (*p == ',' && p[1] == ',') {
            g_string_append_c(cur, ',');
            p++;
        } else if (*p != ',' && *p != '\0') {
            g_string_append_c(cur, *p);
        } else {
            VdOpt *o = opt_new(cur->str, str, errp);
            if (!o) {
                return NULL;
            }
            g_ptr_array_add(opts, o);
            g_string_truncate(cur, 0);
            if (*p == '\0') {
                break;
            }
        }
    }
    return g_steal_pointer(&opts);
}

void vd_opts_append(GString *out, const char *key, const char *value)
{
    if (out->len) {
        g_string_append_c(out, ',');
    }
    g_string_append_printf(out, "%s=", key);
    for (const char *p = value; *p; p++) {
        if (*p == ',') {
            g_string_append_c(out, ',');
        }
        g_string_append_c(out, *p);
    }
}

/* The size suffixes and the power of two each stands for. */
static const struct {
    char suffix;
    unsigned shift;
} size_suffixes[] = {
    { 'b', 0 }, { 'k', 10 }, { 'm', 20 }, { 'g', 30 }, { 't', 40 },
};

bool vd_parse_size(const char *key, const char *value, unsigned default_shift, uint64_t *out, GError **errp)
{
    g_return_val_if_fail(default_shift < 64, false);
    size_t len = strlen(value), ndigits = strspn(value, "0123456789");
    unsigned shift = default_shift;
    bool ok = ndigits > 0 && (len == ndigits || len == ndigits + 1);
    if (ok && len == ndigits + 1) {
        ok = false;
        for (size_t i = 0; i < G_N_ELEMENTS(size_suffixes); i++) {
            if (g_ascii_tolower(value[ndigits]) == size_suffixes[i].suffix) {
                shift = size_suffixes[i].shift;
                ok = true;
            }
        }
    }
    if (!ok) {
        OPT_ERROR(errp, "%s=%s: not a size (digits with an optional suffix B, K, M, G or T)", key, value);
        return false;
    }
    g_autofree char *digits = g_strndup(value, ndigits);
    guint64 v;
    if (!g_ascii_string_to_unsigned(digits, 10, 0, UINT64_MAX >> shift, &v, NULL)) {
        OPT_ERROR(errp, "%s=%s: too large (the limit is 2^64-1 bytes)", key, value);
        return false;
    }
    *out = v << shift;
    return true;
}

bool vd_parse_uint(const char *key, const char *value, unsigned min, unsigned max, unsigned *out, GError **errp)
{
    guint64 v;
    if (!g_ascii_string_to_unsigned(value, 10, min, max, &v, NULL)) {
        OPT_ERROR(errp, "%s=%s: expected a number from %u to %u", key, value, min, max);
        return false;
    }
    *out = (unsigned)v;
    return true;
}
