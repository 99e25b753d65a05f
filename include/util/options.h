/*
 * options.h - QEMU-style option strings and the numbers in them.
 *
 * An option string is key=value items separated by ','; inside a key or a
 * value ",," stands for one literal comma.  Every parser here reports one
 * error line that names the key (or the item) and what was expected, in
 * G_IO_ERROR / G_IO_ERROR_INVALID_ARGUMENT.
 *
 * Threading: none.
 */
#ifndef VD_UTIL_OPTIONS_H
#define VD_UTIL_OPTIONS_H

#include <gio/gio.h> /* GError domains: G_IO_ERROR */
#include <stdbool.h>
#include <stdint.h>

/* One item of an option string, unescaped. */
typedef struct VdOpt {
    char *key;      /* never empty */
    char *value;    /* may be empty */
} VdOpt;

/*
 * Split str into VdOpt items, in order (an empty str gives none).  Refused:
 * an empty item (a leading, doubled-up or trailing ','), an item without
 * '=', an empty key.  Duplicate keys are the caller's to judge.  Returns a
 * GPtrArray that frees its items, or NULL with errp set.
 */
GPtrArray *vd_opts_split(const char *str, GError **errp);
/* An empty VdOpt array of the same kind (it frees its items). */
GPtrArray *vd_opts_new(void);
/* Append a copy of key=value (no checks: the caller's own items). */
void vd_opts_add(GPtrArray *opts, const char *key, const char *value);
/* Append ",key=value" (no comma when out is empty) with the value's commas escaped. */
void vd_opts_append(GString *out, const char *key, const char *value);

/*
 * A size: decimal digits and an optional suffix B, K, M, G or T (either
 * case, powers of 1024); without a suffix the unit is 2^default_shift bytes
 * (20 for -m, as in QEMU).  No sign, no space, no hex, no fraction; a value
 * over 2^64-1 bytes is refused.  key names the option in the error.
 */
bool vd_parse_size(const char *key, const char *value, unsigned default_shift, uint64_t *out, GError **errp);
/* A decimal number in [min, max]: digits only (no sign, no space). */
bool vd_parse_uint(const char *key, const char *value, unsigned min, unsigned max, unsigned *out, GError **errp);

#endif
