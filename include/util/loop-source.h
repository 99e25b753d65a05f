/*
 * loop-source.h - helpers for the GSources of the owner loops.
 */
#ifndef VDISK_UTIL_LOOP_SOURCE_H
#define VDISK_UTIL_LOOP_SOURCE_H

#include <glib.h>

/*
 * Let source dispatch without GLib blocking it.  GLib blocks a dispatching
 * source that cannot recurse by taking its fds out of the context's poll
 * set and putting them back afterwards, and each change signals the
 * context's wake-up eventfd: two write()s per dispatch and a read() in the
 * next iteration, 3 of the 7 syscalls of an io_uring request at QD1.  The
 * source's dispatch must be re-entrant: a callback it runs may iterate the
 * loop (a synchronous wait) and so dispatch it again.
 */
void vd_source_no_block(GSource *source);

#endif
