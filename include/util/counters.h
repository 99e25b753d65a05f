/*
 * counters.h - "name=value" rendering of a counter struct from a table.
 *
 * A stats printer lists its struct's uint64_t counters once, as a static
 * const table of {name, offsetof} rows, and appends them with one call; the
 * same table can drive snapshots.  Pairs are separated by one space; none
 * goes before the first pair of a string or of a line.
 *
 * Threading: none; the caller gives a snapshot or owns the struct.
 */
#ifndef VD_UTIL_COUNTERS_H
#define VD_UTIL_COUNTERS_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

/* One uint64_t counter of a struct: its printed name and its offset. */
typedef struct VdCounter {
    const char *name;
    size_t offset;
} VdCounter;

/* A row printed under the field's own name. */
#define VD_COUNTER(type, field) { #field, offsetof(type, field) }
/* A row printed under another name. */
#define VD_COUNTER_AS(type, field, printed) { printed, offsetof(type, field) }

/* The counter a row names inside the struct at base. */
static inline uint64_t *vd_counter_ptr(const VdCounter *row, const void *base)
{
    return (uint64_t *)((char *)base + row->offset);
}

/* Append "name=value" for each of the n rows, values read from the struct at base. */
void vd_counters_format(GString *out, const VdCounter *rows, size_t n, const void *base);
/* Append one "name=value" pair, separated like the table's pairs. */
void vd_counters_append(GString *out, const char *name, uint64_t value);

#endif
