/*
 * vdisk-vhost-daemon.c - what makes vdisk-vhost a well-behaved daemon: the
 * listening socket (a file with --socket-mode/--socket-group, an inherited
 * --fd, or systemd socket activation), the --pidfile, and the
 * sd_notify-compatible READY=1 / STOPPING=1 datagrams to $NOTIFY_SOCKET.
 *
 * Threading: the main thread only, before and after the loop runs.
 */
#include "vdisk-vhost.h"
#include "system/cmdline.h"

#include <gio/gio.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SD_LISTEN_FDS_START 3   /* systemd's first passed fd */

/* --socket-mode: octal permission bits (0 to 0777), e.g. 0660. */
bool vd_vhost_parse_socket_mode(VdVhostOptions *o, const char *arg, GError **errp)
{
    guint64 mode;
    if (!g_ascii_string_to_unsigned(arg, 8, 0, 0777, &mode, NULL)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--socket-mode '%s': expected octal permission bits from 0 to 0777 (e.g. 0660)", arg);
        return false;
    }
    o->socket_mode = (int)mode;
    return true;
}

/* --socket-group: a group name or a numeric gid that exists. */
bool vd_vhost_parse_socket_group(VdVhostOptions *o, const char *arg, GError **errp)
{
    guint64 gid;
    struct group *gr = getgrnam(arg);
    if (gr) {
        o->socket_gid = (int)gr->gr_gid;
    } else if (g_ascii_string_to_unsigned(arg, 10, 0, G_MAXINT32, &gid, NULL)) {
        o->socket_gid = (int)gid;
    } else {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "--socket-group '%s': no such group", arg);
        return false;
    }
    return true;
}

/* --fd: a descriptor number the parent left open (checked to be a listening socket at start). */
bool vd_vhost_parse_fd(VdVhostOptions *o, const char *arg, GError **errp)
{
    unsigned fd;
    if (!vd_cli_parse_uint("--fd", arg, 0, G_MAXINT32, &fd, errp)) {
        return false;
    }
    if (fcntl((int)fd, F_GETFD) < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "--fd %u: not an open descriptor", fd);
        return false;
    }
    o->listen_fd = (int)fd;
    return true;
}

/* systemd socket activation: fd 3 when LISTEN_PID is us and LISTEN_FDS is 1 (the variables are then unset). */
bool vd_vhost_take_listen_fds(VdVhostOptions *o, GError **errp)
{
    const char *fds = g_getenv("LISTEN_FDS");
    const char *pid = g_getenv("LISTEN_PID");
    guint64 n, p;
    if (!fds || !pid || !g_ascii_string_to_unsigned(pid, 10, 1, G_MAXINT32, &p, NULL) || (pid_t)p != getpid()) {
        return true;   /* not for us */
    }
    if (!g_ascii_string_to_unsigned(fds, 10, 1, 1, &n, NULL)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "LISTEN_FDS=%s: vdisk-vhost takes exactly one socket (one ListenStream=)", fds);
        return false;
    }
    if (o->socket || o->listen_fd >= 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "LISTEN_FDS is set: drop --socket/--fd (the socket comes from systemd)");
        return false;
    }
    o->listen_fd = SD_LISTEN_FDS_START;
    o->activated = true;
    g_unsetenv("LISTEN_FDS");
    g_unsetenv("LISTEN_PID");
    g_unsetenv("LISTEN_FDNAMES");
    return true;
}

/* Apply --socket-mode/--socket-group to the socket file we created. */
static bool set_socket_access(const VdVhostOptions *o, GError **errp)
{
    const char *what = NULL;
    if (o->socket_gid >= 0 && chown(o->socket, (uid_t)-1, (gid_t)o->socket_gid) < 0) {
        what = "--socket-group";
    } else if (o->socket_mode >= 0 && chmod(o->socket, (mode_t)o->socket_mode) < 0) {
        what = "--socket-mode";
    }
    if (what) {
        int e = errno;
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(e), "%s on %s: %s", what, o->socket, g_strerror(e));
        return false;
    }
    return true;
}

/* Listen (socket file, --fd or systemd's fd) and serve app->vdev; false: errp set, nothing left behind. */
bool vd_vhost_listen(VdVhostApp *a, const VdVhostUserDeviceOps *ops, GError **errp)
{
    const VdVhostOptions *o = &a->opts;
    if (o->listen_fd >= 0) {
        a->server = vd_vhost_user_server_new_fd(o->listen_fd, a->vdev, ops, a, a->ctx, errp);
        if (!a->server) {
            g_prefix_error(errp, "%s: ", o->activated ? "LISTEN_FDS" : "--fd");
        }
        return a->server != NULL;
    }
    a->server = vd_vhost_user_server_new(o->socket, a->vdev, ops, a, a->ctx, errp);
    if (a->server && !set_socket_access(o, errp)) {
        vd_vhost_user_server_free(a->server);   /* removes the socket file */
        a->server = NULL;
    }
    return a->server != NULL;
}

/* Send one sd_notify datagram to $NOTIFY_SOCKET (a path, or @name for an abstract socket); no-op if unset. */
static void sd_notify_send(const char *text)
{
    const char *path = g_getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = path ? strlen(path) : 0;
    if (!path || len < 2 || len >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@')) {
        if (path) {
            fprintf(stderr, "vdisk-vhost: NOTIFY_SOCKET=%s: not a socket path or @name, not notified\n", path);
        }
        return;
    }
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@') {
        sa.sun_path[0] = '\0';   /* abstract namespace: the length says where the name ends */
    }
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0) {
        fprintf(stderr, "vdisk-vhost: NOTIFY_SOCKET=%s: %s\n", path, g_strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
    }
}

/* Serving: write --pidfile, then tell systemd READY=1 (the socket accepts connections from now on). */
bool vd_vhost_announce_ready(VdVhostApp *a, GError **errp)
{
    if (a->opts.pidfile) {
        g_autofree char *pid = g_strdup_printf("%d\n", (int)getpid());
        if (!g_file_set_contents_full(a->opts.pidfile, pid, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, errp)) {
            g_prefix_error(errp, "--pidfile: ");
            return false;
        }
    }
    g_autofree char *msg = g_strdup_printf("READY=1\nMAINPID=%d\nSTATUS=serving %s\n", (int)getpid(),
                                           a->opts.kind->name);
    sd_notify_send(msg);
    return true;
}

/* Leaving: STOPPING=1 to systemd, and the pidfile goes. */
void vd_vhost_announce_stopping(VdVhostApp *a)
{
    sd_notify_send("STOPPING=1\n");
    if (a->opts.pidfile) {
        unlink(a->opts.pidfile);
    }
}
