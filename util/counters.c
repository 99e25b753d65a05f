/* counters.c - table-driven "name=value" counter rendering (see include/util/counters.h). */
#include "util/counters.h"

#include <stdbool.h>

void vd_counters_append(GString *out, const char *name, uint64_t value)
{
    bool sep = out->len && out->str[out->len - 1] != ' ' && out->str[out->len - 1] != '\n';
    g_string_append_printf(out, "%s%s=%" G_GUINT64_FORMAT, sep ? " " : "", name, value);
}

void vd_counters_format(GString *out, const VdCounter *rows, size_t n, const void *base)
{
    for (size_t i = 0; i < n; i++) {
        vd_counters_append(out, rows[i].name, *vd_counter_ptr(&rows[i], base));
    }
}
