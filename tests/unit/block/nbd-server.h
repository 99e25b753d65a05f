/*
 * nbd-server.h - run an NBD server (nbdkit or qemu-nbd) for a test: on a
 * unix socket in a fresh folder, in the foreground as our child, killed and
 * restarted at will.  With nbdkit's log filter every command and flag lands
 * in a log file that the test reads back.
 */
#ifndef VD_TEST_NBD_SERVER_H
#define VD_TEST_NBD_SERVER_H

#include <glib.h>
#include <stdbool.h>

typedef struct NbdServer {
    char *dir;          /* the folder: sock, log, files */
    char *sock;
    char *log;          /* nbdkit's log filter output */
    char *uri;          /* nbd+unix:///EXPORT?socket=SOCK */
    char **argv;        /* the server's command line, to restart it */
    GPid pid;
} NbdServer;

/* Exit 77 with one SKIP line if prog is not installed. */
void nbd_server_require(const char *prog);
/*
 * Start "nbdkit -U SOCK -f --filter=log ARGS... logfile=LOG" and wait for its
 * socket.  args is NULL-terminated; "@DIR@" in an argument becomes the
 * server's folder.  The log filter is outermost: it sees each request as it
 * arrives.
 */
void nbd_server_nbdkit(NbdServer *srv, const char *const *args);
/* nbdkit's memory plugin (16M); args: "--filter=NAME"/"--OPTION" first, then filter parameters. */
void nbd_server_memory(NbdServer *srv, const char *const *args);
/*
 * nbdkit's eval plugin on a 16M file, for servers the memory plugin cannot
 * be: with flush but without FUA (flush=true), or without flush at all.
 * Its flush waits while the file "hold" exists in the server's folder, so a
 * test can keep one at the server (the pause filter holds data commands only).
 */
void nbd_server_eval(NbdServer *srv, bool flush);
/* Start "qemu-nbd -t -k SOCK -x EXPORT ARGS" (persistent: it serves one client after another) and wait for its socket. */
void nbd_server_qemu(NbdServer *srv, const char *export_name, const char *qemu_args);
/* Kill the server at once (SIGKILL) and reap it. */
void nbd_server_kill(NbdServer *srv);
/* Start it again with the same command line. */
void nbd_server_restart(NbdServer *srv);
/* Kill it if running and remove its folder. */
void nbd_server_stop(NbdServer *srv);
/* A path in the server's folder (g_free it). */
char *nbd_server_path(NbdServer *srv, const char *name);
/* Requests in the log (not replies) whose line contains every one of the space-separated words. */
unsigned nbd_log_count(NbdServer *srv, const char *words);
/* Send one command character to the pause filter's control socket (pause-control=@DIR@/ctl) and wait for its answer. */
void nbd_server_pause(NbdServer *srv, char cmd);

#endif
