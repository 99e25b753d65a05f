/*
 * vdisk-vhost.h - the pieces of the vdisk-vhost tool: options, the running
 * application, and the device kinds it can serve (vdisk-vhost-devices.c).
 */
#ifndef VD_TOOLS_VDISK_VHOST_H
#define VD_TOOLS_VDISK_VHOST_H

#include "block/block-backend.h"
#include "hw/vhost-user-server.h"
#include "hw/virtio.h"
#include "system/drive.h"

typedef struct VdVhostApp VdVhostApp;

/* One kind of device the tool can serve. */
typedef struct VdVhostDeviceKind {
    const char *name;
    /* Open the drives (app->opts.drives) and build app->vdev. */
    bool (*create)(VdVhostApp *app, GError **errp);
    /* Call cb once the device has nothing in flight (the device's drain API; never iterates). */
    void (*drain)(VdVhostApp *app, VdDrainFunc *cb, void *cb_opaque);
    /* Append "device ...\n" and one "driveN ...\n" line per drive. */
    void (*format_stats)(VdVhostApp *app, GString *out);
    /* Free the device and close the drives. */
    void (*destroy)(VdVhostApp *app);
    unsigned max_drives;      /* --drive options it takes */
    unsigned max_queues;      /* the highest --num-queues */
} VdVhostDeviceKind;

typedef struct VdVhostOptions {
    char *socket;
    const VdVhostDeviceKind *kind;
    GPtrArray *drives;        /* VdDriveSpec *: the --drive options, parsed and checked */
    unsigned num_queues;      /* 0: the device's default */
    unsigned queue_size;
    char *stats_file;
    char *control;            /* --control/--qmp socket spec (docs/control.md) */
    bool once;
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

/* Shared by the device kinds (vdisk-vhost-devices.c). */
/* The n-th --drive (its serial= is the device's). */
const VdDriveSpec *vd_vhost_drive(VdVhostApp *app, guint n);
/* Open every --drive as a block backend, into app->backends. */
bool vd_vhost_open_drives(VdVhostApp *app, GError **errp);
void vd_vhost_close_drives(VdVhostApp *app);
void vd_vhost_format_drives(VdVhostApp *app, GString *out);

#ifdef VD_HAVE_VIRTIO_SCSI
extern const VdVhostDeviceKind vd_vhost_kind_scsi;
#endif

#endif
