/*
 * migration-internal.h - what the source (migration.c) and the destination
 * (migration-incoming.c) agree on: the machine's own sections.
 *
 *   "ram"       version 1: le64 RAM size, then for every page that is not
 *               all zero: le64 page number, VD_MIG_PAGE bytes
 *   "drive/ID"  version 1: le64 image length, u8 write cache (0/1): the
 *               backend's state, carried once per drive
 */
#ifndef VD_SYSTEM_MIGRATION_INTERNAL_H
#define VD_SYSTEM_MIGRATION_INTERNAL_H

#include "system/migration.h"

#define VD_MIG_PAGE          4096u
#define VD_MIG_RAM_SECTION   "ram"
#define VD_MIG_RAM_VERSION   1
#define VD_MIG_DRIVE_PREFIX  "drive/"
#define VD_MIG_DRIVE_VERSION 1
/* The destination's verdict, one line: "OK" or "FAIL reason". */
#define VD_MIG_REPLY_MAX     4096

#endif
