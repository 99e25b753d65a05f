/* nbd-server.c - see nbd-server.h. */
#include "nbd-server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

void nbd_server_require(const char *prog)
{
    g_autofree char *p = g_find_program_in_path(prog);
    if (!p) {
        printf("SKIP: %s is not installed (scripts/install-deps.sh installs it)\n", prog);
        exit(77);
    }
}

/* True if something accepts connections on the unix socket at path (bound is not enough). */
static bool accepting(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* Spawn srv->argv and wait up to 10 s for the socket to accept. */
static void spawn(NbdServer *srv)
{
    unlink(srv->sock);
    g_autoptr(GError) err = NULL;
    if (!g_spawn_async(srv->dir, srv->argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                       &srv->pid, &err)) {
        g_error("cannot start %s: %s", srv->argv[0], err->message);
    }
    for (int i = 0; i < 1000 && !accepting(srv->sock); i++) {
        g_usleep(10000);
    }
    if (!accepting(srv->sock)) {
        g_error("%s does not accept on %s", srv->argv[0], srv->sock);
    }
}

/* A fresh folder and the paths in it. */
static void init(NbdServer *srv, const char *export_name)
{
    srv->dir = g_dir_make_tmp("vd-nbd-XXXXXX", NULL);
    g_assert(srv->dir);
    srv->sock = g_build_filename(srv->dir, "sock", NULL);
    srv->log = g_build_filename(srv->dir, "log", NULL);
    srv->uri = g_strdup_printf("nbd+unix:///%s?socket=%s", export_name, srv->sock);
}

void nbd_server_nbdkit(NbdServer *srv, const char *const *args)
{
    init(srv, "");
    GPtrArray *a = g_ptr_array_new();
    const char *head[] = { "nbdkit", "-U", srv->sock, "-f", "--exit-with-parent", "--filter=log" };
    for (size_t i = 0; i < G_N_ELEMENTS(head); i++) {
        g_ptr_array_add(a, g_strdup(head[i]));
    }
    for (const char *const *arg = args; *arg; arg++) {
        g_auto(GStrv) parts = g_strsplit(*arg, "@DIR@", -1);
        g_ptr_array_add(a, g_strjoinv(srv->dir, parts));
    }
    g_ptr_array_add(a, g_strdup_printf("logfile=%s", srv->log));
    g_ptr_array_add(a, NULL);
    srv->argv = (char **)g_ptr_array_free(a, FALSE);
    spawn(srv);
}

void nbd_server_memory(NbdServer *srv, const char *const *args)
{
    const char *argv[16];
    size_t n = 0, i = 0;
    for (; args && args[i] && g_str_has_prefix(args[i], "-"); i++) {
        argv[n++] = args[i];
    }
    argv[n++] = "memory";
    argv[n++] = "size=16M";
    for (; args && args[i]; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    nbd_server_nbdkit(srv, argv);
}

void nbd_server_eval(NbdServer *srv, bool flush)
{
    const char *args[] = {
        "eval",
        "get_size=truncate -s 16M @DIR@/disk && echo 16777216",
        "pread=dd if=@DIR@/disk iflag=skip_bytes,count_bytes skip=$4 count=$3 status=none",
        "pwrite=dd of=@DIR@/disk oflag=seek_bytes conv=notrunc seek=$4 status=none",
        "can_write=exit 0",
        "can_fua=echo none",
        flush ? "can_flush=exit 0" : "can_flush=exit 3",
        "flush=while [ -e @DIR@/hold ]; do sleep 0.01; done",
        NULL,
    };
    nbd_server_nbdkit(srv, args);
}

void nbd_server_qemu(NbdServer *srv, const char *export_name, const char *qemu_args)
{
    init(srv, export_name);
    g_autofree char *cmd = g_strdup_printf("qemu-nbd -t -k %s -x %s %s", srv->sock, export_name, qemu_args);
    srv->argv = g_strsplit_set(cmd, " ", -1);
    spawn(srv);
}

void nbd_server_kill(NbdServer *srv)
{
    if (srv->pid) {
        kill(srv->pid, SIGKILL);
        waitpid(srv->pid, NULL, 0);
        g_spawn_close_pid(srv->pid);
        srv->pid = 0;
    }
}

void nbd_server_restart(NbdServer *srv)
{
    nbd_server_kill(srv);
    spawn(srv);
}

void nbd_server_stop(NbdServer *srv)
{
    nbd_server_kill(srv);
    g_autofree char *rm = g_strdup_printf("rm -rf %s", srv->dir);
    g_assert(system(rm) == 0);
    g_free(srv->dir);
    g_free(srv->sock);
    g_free(srv->log);
    g_free(srv->uri);
    g_strfreev(srv->argv);
    memset(srv, 0, sizeof(*srv));
}

char *nbd_server_path(NbdServer *srv, const char *name)
{
    return g_build_filename(srv->dir, name, NULL);
}

unsigned nbd_log_count(NbdServer *srv, const char *words)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents(srv->log, &text, NULL, NULL)) {
        return 0;
    }
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1), want = g_strsplit(words, " ", -1);
    unsigned n = 0;
    for (char **l = lines; *l; l++) {
        bool all = g_str_has_suffix(*l, " ...");  /* a request; its reply line ends in return=N */
        for (char **w = want; *w && all; w++) {
            all = strstr(*l, *w) != NULL;
        }
        n += all;
    }
    return n;
}

void nbd_server_pause(NbdServer *srv, char cmd)
{
    g_autofree char *path = nbd_server_path(srv, "ctl");
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert(fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    char reply = 0;
    g_assert(write(fd, &cmd, 1) == 1);
    g_assert(read(fd, &reply, 1) == 1);
    g_assert(reply == g_ascii_toupper(cmd));
    close(fd);
}
