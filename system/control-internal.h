/*
 * control-internal.h - shared by control.c (sockets, framing, output,
 * events) and control-cmds.c (request checks, the command table, handlers).
 *
 * Lifetimes: a client is reference counted.  The server's client list holds
 * one reference until the client closes; a running command (ControlCmd)
 * holds another, so a client that hangs up mid-command stays allocated
 * until the command completes, and its reply is then dropped.  A closed
 * client has fd -1, no sources and server NULL.
 *
 * Re-entrancy: a command whose handler iterates the context (block-set-active
 * drains the backend) may let other clients' input arrive; their commands
 * wait (deferred) until the running handler returns, so handlers never nest.
 * A client's next command never starts inside a completion callback (the
 * backend's completion source would be blocked while the handler waits on
 * it): it starts from the client's own idle source (resume_source).
 *
 * Threading: the owner's GMainContext only.
 */
#ifndef VD_SYSTEM_CONTROL_INTERNAL_H
#define VD_SYSTEM_CONTROL_INTERNAL_H

#include "system/control.h"

#include <json-glib/json-glib.h>

#define VD_CONTROL_MAX_MSG   (1u << 20)   /* longest JSON value accepted */
#define VD_CONTROL_MAX_DEPTH 64           /* deepest nesting accepted */
#define VD_CONTROL_MAX_OUT   (16u << 20)  /* unsent output before a client is dropped */

typedef struct ControlClient ControlClient;

/* A drive the commands can name. */
typedef struct ControlDrive {
    char *id;
    VdBlockBackend *blk;
    VdControlServer *server;    /* for the stop notifier */
} ControlDrive;

struct VdControlServer {
    GMainContext *ctx;
    const VdControlOps *ops;
    void *opaque;
    GPtrArray *drives;          /* ControlDrive * */
    GPtrArray *clients;         /* ControlClient *, one reference each */
    int listen_fd;              /* -1 if not listening */
    char *socket_path;          /* unlinked at free */
    GSource *listen_source;
    unsigned running;           /* > 0 while a handler's synchronous part runs */
};

struct ControlClient {
    int refs;
    VdControlServer *server;    /* NULL once closed */
    int fd;
    bool negotiated;            /* qmp_capabilities done */
    bool busy;                  /* a command is running (replies keep their order) */
    bool pumping;               /* client_pump is on the stack */
    bool deferred;              /* has input waiting for another client's handler */
    bool eof;                   /* the client shut down its sending side: finish, then close */
    /* input framing: the scanner's state over `in` */
    GString *in;
    size_t scan;                /* next byte to look at */
    size_t start;               /* first byte of the value being scanned */
    bool started, in_str, esc, discarding;
    unsigned depth;
    /* output not yet accepted by the socket */
    GString *out;
    GSource *in_source, *out_source;
    GSource *resume_source;     /* idle: run the queued commands (see Re-entrancy) */
};

/* One command in flight: its reply goes to client (dropped if it closed meanwhile). */
typedef struct ControlCmd {
    ControlClient *client;      /* referenced */
    JsonNode *id;               /* the request's "id", or NULL */
    JsonObject *args;           /* referenced; an empty object if none were given */
    const char *name;
} ControlCmd;

/* control.c */
/* Take a reference on c. */
ControlClient *vd_control_client_ref(ControlClient *c);
/* Drop a reference; the last one frees c (it is closed by then). */
void vd_control_client_unref(ControlClient *c);
/* Queue one message (a newline is added); nothing happens if c is closed. */
void vd_control_send(ControlClient *c, JsonNode *msg);
/* Send an event to every negotiated client; data may be NULL (takes it). */
void vd_control_emit_event(VdControlServer *s, const char *event, JsonObject *data);
/* Run the client's queued commands later, from its idle source (a command just finished). */
void vd_control_client_resume(ControlClient *c);

/* control-cmds.c */
/* Check one parsed request and run it (or reply with an error). */
void vd_control_dispatch(ControlClient *c, JsonNode *request);
/* Reply {"error": ...} to a message that could not be parsed (no id). */
void vd_control_send_error(ControlClient *c, JsonNode *id, const char *cls, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
/* The greeting sent to each new client. */
JsonNode *vd_control_greeting(void);

#endif
