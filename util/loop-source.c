/* loop-source.c - helpers for the GSources of the owner loops (include/util/loop-source.h). */
#include "util/loop-source.h"

void vd_source_no_block(GSource *source)
{
    g_source_set_can_recurse(source, TRUE);
}
