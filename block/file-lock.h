/*
 * file-lock.h - image locks on a descriptor, in the byte ranges QEMU uses.
 *
 * Owner thread only (open, close, inactivate, invalidate_cache).
 */
#ifndef VD_FILE_LOCK_H
#define VD_FILE_LOCK_H

#include "block/block-driver.h"

/* 0 if OFD locks work on fd, else the negative errno that says why not. */
int vd_file_lock_probe(int fd);

/*
 * Move fd's claim on the image from `from` to `to`.  On a conflict with
 * another open file description (another process, or another open in this
 * one) set errp to one line naming filename and the other user's mode, put
 * the `from` claim back, and return false.
 */
bool vd_file_lock_change(int fd, const char *filename, VdImagePerm from, VdImagePerm to, GError **errp);

#endif
