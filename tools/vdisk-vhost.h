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
    int socket_mode;          /* --socket-mode, -1: as created (umask) */
    int socket_gid;           /* --socket-group, -1: ours */
    int listen_fd;            /* --fd or systemd's fd 3, -1: listen on --socket */
    bool activated;           /* listen_fd came from LISTEN_FDS */
    char *pidfile;
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

/* The daemon side (vdisk-vhost-daemon.c): socket options, listening, readiness. */
bool vd_vhost_parse_socket_mode(VdVhostOptions *o, const char *arg, GError **errp);
bool vd_vhost_parse_socket_group(VdVhostOptions *o, const char *arg, GError **errp);
bool vd_vhost_parse_fd(VdVhostOptions *o, const char *arg, GError **errp);
/* Take systemd's socket (LISTEN_FDS/LISTEN_PID for this process) into o->listen_fd. */
bool vd_vhost_take_listen_fds(VdVhostOptions *o, GError **errp);
/* Create app->server on the socket the options name. */
bool vd_vhost_listen(VdVhostApp *app, const VdVhostUserDeviceOps *ops, GError **errp);
/* --pidfile and READY=1; then STOPPING=1 and the pidfile removed. */
bool vd_vhost_announce_ready(VdVhostApp *app, GError **errp);
void vd_vhost_announce_stopping(VdVhostApp *app);

#ifdef VD_HAVE_VIRTIO_SCSI
extern const VdVhostDeviceKind vd_vhost_kind_scsi;
#endif

#endif
