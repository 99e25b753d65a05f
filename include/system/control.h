/*
 * control.h - the control socket: a subset of QMP (QEMU's JSON machine
 * protocol) for vdisk-vmm and vdisk-vhost (docs/control.md).
 *
 * Guarantees:
 *  - Each client gets QMP's greeting, must negotiate with qmp_capabilities
 *    (before that every other command gets CommandNotFound, as in QEMU),
 *    and then gets exactly one reply per command, {"return": ...} or
 *    {"error": {"class": ..., "desc": ...}}, with the command's "id" copied.
 *  - Commands of one client run one at a time, in the order sent; replies
 *    come in that order.  Several clients may be connected at once.
 *  - Malformed JSON, a non-object, an unknown command and missing, extra or
 *    mistyped arguments get an error reply naming what was wrong, never a
 *    crash; the session goes on.
 *  - A client that disconnects while its command runs loses nothing: the
 *    command completes and its reply is dropped.
 *  - Events go to every negotiated client, with QMP's timestamp.
 *
 * Threading: everything runs in the GMainContext given to vd_control_new
 * (the owner's: the one the drives' backends complete in).
 */
#ifndef VD_SYSTEM_CONTROL_H
#define VD_SYSTEM_CONTROL_H

#include "block/block-backend.h"

#include <glib.h>
#include <stdbool.h>

typedef struct VdControlServer VdControlServer;

/* What the owning binary does for the commands that concern it. */
typedef struct VdControlOps {
    /* quit: start the binary's clean shutdown (it returns; the loop ends later). */
    void (*quit)(void *opaque);
    /* migrate: move the machine to uri (docs/migration.md); NULL where the binary cannot migrate. */
    bool (*migrate)(void *opaque, const char *uri, GError **errp);
    /* query-migrate: the status name ("none", "active", "completed", "failed") and why it failed. */
    const char *(*query_migrate)(void *opaque, const char **error);
} VdControlOps;

/* A server with no socket and no drives yet. */
VdControlServer *vd_control_new(GMainContext *ctx, const VdControlOps *ops, void *opaque);
/* Stop listening (removing the socket file), drop every client, free. */
void vd_control_free(VdControlServer *s);

/* Make a drive known to the commands by id (the id string is copied; blk must outlive s). */
void vd_control_add_drive(VdControlServer *s, const char *id, VdBlockBackend *blk);

/*
 * Check a --control/--qmp argument without opening anything:
 * "unix:PATH" optionally followed by QEMU's ",server" (",server=on"),
 * ",wait=off" or ",nowait"; the control socket always listens and never waits.
 */
bool vd_control_spec_valid(const char *spec, GError **errp);
/* Listen on the socket a spec names (a stale socket file there is replaced). */
bool vd_control_listen(VdControlServer *s, const char *spec, GError **errp);
/* Serve one client on a connected stream socket; the server owns fd from now on. */
void vd_control_add_client(VdControlServer *s, int fd);
/* Number of connected clients. */
unsigned vd_control_num_clients(VdControlServer *s);

/*
 * The BLOCK_IO_ERROR event (QEMU's): a device request on drive `device`
 * failed with -err.  write: the request wrote (else it read); action is
 * "report", "ignore" or "stop" as the error policy decided.  For devices
 * and backends to call when a guest request fails.
 */
void vd_control_block_io_error(VdControlServer *s, const char *device, bool write, int err, const char *action);

#endif
