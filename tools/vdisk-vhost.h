/*
 * vdisk-vhost.h - the pieces of the vdisk-vhost tool: options, the running
 * application, and the device kinds it can serve (vdisk-vhost-devices.c).
 */
#ifndef VD_TOOLS_VDISK_VHOST_H
#define VD_TOOLS_VDISK_VHOST_H

#include "block/block-backend.h"
#include "hw/vhost-user.h"
#include "hw/virtio.h"

typedef struct VdVhostApp VdVhostApp;

/* One kind of device the tool can serve. */
typedef struct VdVhostDeviceKind {
    const char *name;
    /* Open the drives (app->opts.drives) and build app->vdev. */
    bool (*create)(VdVhostApp *app, GError **errp);
    /* Iterate the context until nothing is in flight. */
    void (*drain)(VdVhostApp *app);
    /* Append "device ...\n" and one "driveN ...\n" line per drive. */
    void (*format_stats)(VdVhostApp *app, GString *out);
    /* Free the device and close the drives. */
    void (*destroy)(VdVhostApp *app);
} VdVhostDeviceKind;

typedef struct VdVhostOptions {
    char *socket;
    const VdVhostDeviceKind *kind;
    GPtrArray *drives;        /* char *: the --drive specs */
    unsigned num_queues;      /* 0: the device's default */
    unsigned queue_size;
    char *stats_file;
    char *control;            /* --control/--qmp socket spec (docs/control.md) */
    bool once, help;
} VdVhostOptions;

struct VdVhostApp {
    VdVhostOptions opts;
    GMainContext *ctx;
    GMainLoop *loop;
    VdVhostUserServer *server;
    VdVirtioDevice *vdev;
    GPtrArray *backends;      /* VdBlockBackend *, one per drive */
    void *dev;                /* VdVirtioBlk * or VdVirtioScsi * */
    char *last_stats;
    bool seen_connection;
};

/* The device kind called name, or NULL. */
const VdVhostDeviceKind *vd_vhost_device_kind(const char *name);

/*
 * Split a --drive spec into the block backend's option string and the
 * device keys (serial=); ",," stays an escaped comma.  Free with g_free.
 */
bool vd_vhost_split_drive(const char *spec, char **backend_opts, char **serial, GError **errp);

/* Shared by the device kinds (vdisk-vhost-devices.c). */
bool vd_vhost_open_drives(VdVhostApp *app, GPtrArray *serials, GError **errp);
void vd_vhost_close_drives(VdVhostApp *app);
void vd_vhost_format_drives(VdVhostApp *app, GString *out);

#ifdef VD_HAVE_VIRTIO_SCSI
extern const VdVhostDeviceKind vd_vhost_kind_scsi;
#endif

#endif
