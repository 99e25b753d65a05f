/*
 * migration.h - live migration of a vdisk machine (docs/migration.md): the
 * source sends guest RAM, each drive's write-cache state and every
 * device's state over a stream socket; the destination, started with
 * --incoming, loads it and takes the image over.
 *
 * The hand-over (each step must finish before the next starts):
 *   source:      stop every backend (vd_blk_stop) -> wait until nothing but
 *                parked requests is in flight -> vd_blk_inactivate every
 *                drive (fdatasync; the write lock is released) -> send the
 *                stream -> wait for the destination's verdict
 *   destination: read the whole stream -> check every section (nothing is
 *                changed yet) -> vd_blk_invalidate_cache every drive
 *                (page cache dropped, write lock taken) -> apply RAM, write
 *                caches, devices (held requests re-issued) -> answer OK
 *
 * Guarantees:
 *  - The destination writes to an image only after the source's flush
 *    completed: the source inactivates before it sends the first byte.
 *  - A failure at any step (connect, drain, flush, a device that cannot
 *    save, a refused or broken stream, no answer) leaves the source as it
 *    was: images active again, backends the migration stopped resumed,
 *    requests held by werror=stop still held for `cont`; nothing lost.
 *  - A destination never applies part of a stream: a malformed, foreign or
 *    mismatching stream (RAM size, drives, image sizes, device
 *    configuration) is refused whole, with one line naming the section and
 *    field, and the destination stays unstarted.
 *  - An --incoming that receives nothing within its timeout fails with a
 *    message naming the URI and the timeout.
 *
 * Threading: the machine's GMainContext.  vd_migrate iterates it (like the
 * qtest drain) and blocks on the socket while sending.
 */
#ifndef VD_SYSTEM_MIGRATION_H
#define VD_SYSTEM_MIGRATION_H

#include "system/machine.h"

#define VD_MIGRATE_QUIESCE_TIMEOUT_MS 10000   /* source: requests issued to the host must end by then */
#define VD_MIGRATE_REPLY_TIMEOUT_MS   60000   /* source: the destination's verdict */
#define VD_INCOMING_STALL_TIMEOUT_MS  10000   /* destination: longest pause inside the stream */
#define VD_INCOMING_DEFAULT_TIMEOUT_S 60      /* destination: nothing received at all */

/* Where a migration goes or comes from. */
typedef struct VdMigrationUri {
    char *path;     /* unix:PATH, or NULL */
    int fd;         /* fd:N, or -1 */
} VdMigrationUri;

/* Parse "unix:PATH" or "fd:N"; false with one line naming the URI. */
bool vd_migration_uri_parse(const char *uri, VdMigrationUri *out, GError **errp);
void vd_migration_uri_clear(VdMigrationUri *u);

/* The state query-migrate reports. */
typedef enum VdMigrationStatus {
    VD_MIGRATION_NONE, VD_MIGRATION_ACTIVE, VD_MIGRATION_COMPLETED, VD_MIGRATION_FAILED,
} VdMigrationStatus;
/* QEMU's spelling: "none", "active", "completed", "failed". */
const char *vd_migration_status_name(VdMigrationStatus st);

/* Source: migrate the machine to uri (synchronous); false with the reason, and the source resumes. */
bool vd_migrate(VdMachine *m, const char *uri, GError **errp);
/* Source: the last migration's status and, if it failed, why (NULL otherwise). */
VdMigrationStatus vd_migration_status(VdMachine *m, const char **error);

/* Destination: called once the stream was loaded (err NULL) or the incoming migration failed. */
typedef void VdIncomingDoneFunc(void *opaque, const GError *err);
typedef struct VdIncoming VdIncoming;
/*
 * Wait for a migration stream on uri (unix:PATH: listen there; fd:N: read
 * that connected socket), for at most timeout_s seconds for the first
 * byte.  The machine's drives must have been opened with active=off.
 */
VdIncoming *vd_incoming_new(VdMachine *m, const char *uri, unsigned timeout_s, VdIncomingDoneFunc *done,
                            void *opaque, GError **errp);
/* Stop listening (removing the socket file) and free. */
void vd_incoming_free(VdIncoming *in);

/* Load a whole stream into a machine whose drives are inactive (the destination's step; exported for tests). */
bool vd_migration_load(VdMachine *m, const uint8_t *data, size_t len, GError **errp);

#endif
