/* control.c - the control socket: listening, clients, JSON framing, output and events (docs/control.md). */
#include "control-internal.h"

#include <errno.h>
#include <string.h>
#include <glib-unix.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- clients: lifetime ---- */

ControlClient *vd_control_client_ref(ControlClient *c)
{
    c->refs++;
    return c;
}

void vd_control_client_unref(ControlClient *c)
{
    if (--c->refs) {
        return;
    }
    g_string_free(c->in, TRUE);
    g_string_free(c->out, TRUE);
    g_free(c);
}

/* Remove and drop a GSource. */
static void source_clear(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

/* Hang up: close the socket, leave the server's list; a running command keeps c alive. */
static void client_close(ControlClient *c)
{
    VdControlServer *s = c->server;
    if (!s) {
        return;
    }
    source_clear(&c->in_source);
    source_clear(&c->out_source);
    source_clear(&c->resume_source);
    close(c->fd);
    c->fd = -1;
    c->server = NULL;
    g_ptr_array_remove(s->clients, c); /* drops the list's reference */
}

/* After end of input: close once the last command is done and its reply sent. */
static void client_close_if_done(ControlClient *c)
{
    if (c->eof && !c->busy && !c->deferred && !c->out->len) {
        client_close(c);
    }
}

/* ---- output ---- */

/* Write what the socket takes now; false if the client broke (it is then closed). */
static bool client_flush(ControlClient *c)
{
    while (c->out->len) {
        ssize_t n = send(c->fd, c->out->str, c->out->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            return true;
        }
        if (n <= 0) {
            client_close(c);
            return false;
        }
        g_string_erase(c->out, 0, n);
    }
    return true;
}

/* Output source: the socket takes more. */
static gboolean on_output(gint fd, GIOCondition cond, gpointer opaque)
{
    ControlClient *c = opaque;
    if (!client_flush(c)) {
        return G_SOURCE_REMOVE; /* closed (c may be freed) */
    }
    if (c->out->len) {
        return G_SOURCE_CONTINUE;
    }
    g_source_unref(c->out_source);
    c->out_source = NULL;
    client_close_if_done(c);
    return G_SOURCE_REMOVE;
}

/*
 * Append text as QMP's ASCII output: every other character becomes a \uXXXX
 * escape (a surrogate pair above U+FFFF); a byte that is not UTF-8 (a file
 * name from the command line) becomes U+FFFD.  Outside strings json-glib
 * writes only ASCII, so the escapes always land inside strings.
 */
static void append_ascii(GString *out, const char *text)
{
    const char *p = text;
    while (*p) {
        gunichar ch = g_utf8_get_char_validated(p, -1);
        bool valid = ch != (gunichar)-1 && ch != (gunichar)-2;
        if (valid && ch < 0x80) {
            g_string_append_c(out, (char)ch);
        } else if (valid && ch >= 0x10000) {
            ch -= 0x10000;
            g_string_append_printf(out, "\\u%04x\\u%04x", 0xd800 + (ch >> 10), 0xdc00 + (ch & 0x3ff));
        } else {
            g_string_append_printf(out, "\\u%04x", valid ? ch : 0xfffd);
        }
        p = valid ? g_utf8_next_char(p) : p + 1;
    }
}

void vd_control_send(ControlClient *c, JsonNode *msg)
{
    if (!c->server) {
        return; /* hung up: the reply is dropped */
    }
    g_autofree char *text = json_to_string(msg, FALSE);
    append_ascii(c->out, text);
    g_string_append_c(c->out, '\n');
    if (!client_flush(c) || !c->out->len) {
        return;
    }
    if (c->out->len > VD_CONTROL_MAX_OUT) {
        g_warning("control: a client reads no replies (%zu bytes queued); disconnecting it", c->out->len);
        client_close(c);
        return;
    }
    if (!c->out_source) {
        c->out_source = g_unix_fd_source_new(c->fd, G_IO_OUT);
        g_source_set_callback(c->out_source, (GSourceFunc)(void (*)(void))on_output, c, NULL);
        g_source_attach(c->out_source, c->server->ctx);
    }
}

void vd_control_emit_event(VdControlServer *s, const char *event, JsonObject *data)
{
    gint64 now = g_get_real_time();
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "event");
    json_builder_add_string_value(b, event);
    if (data) {
        json_builder_set_member_name(b, "data");
        JsonNode *n = json_node_init_object(json_node_alloc(), data);
        json_builder_add_value(b, n);
        json_object_unref(data);
    }
    json_builder_set_member_name(b, "timestamp");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "seconds");
    json_builder_add_int_value(b, now / G_USEC_PER_SEC);
    json_builder_set_member_name(b, "microseconds");
    json_builder_add_int_value(b, now % G_USEC_PER_SEC);
    json_builder_end_object(b);
    json_builder_end_object(b);
    g_autoptr(JsonNode) msg = json_builder_get_root(b);
    /* backwards: a client that breaks while sending leaves the list at its own index */
    for (guint i = s->clients->len; i-- > 0;) {
        ControlClient *c = g_ptr_array_index(s->clients, i);
        if (c->negotiated) {
            vd_control_send(c, msg);
        }
    }
}

void vd_control_block_io_error(VdControlServer *s, const char *device, bool write, int err, const char *action)
{
    JsonObject *data = json_object_new();
    json_object_set_string_member(data, "device", device);
    json_object_set_string_member(data, "node-name", device);
    json_object_set_string_member(data, "operation", write ? "write" : "read");
    json_object_set_string_member(data, "action", action);
    json_object_set_boolean_member(data, "nospace", err == ENOSPC);
    json_object_set_string_member(data, "reason", g_strerror(err));
    vd_control_emit_event(s, "BLOCK_IO_ERROR", data);
}

/* ---- input framing ---- */

/*
 * Scan c->in for the end of the next top-level JSON value: a balanced
 * object or array, or a scalar ended by white space.  Returns the value
 * (g_free it), or NULL if none is complete yet; *err is set instead when
 * the value is too long or too deep (the input is then skipped up to the
 * next newline).
 */
static char *next_value(ControlClient *c, const char **err)
{
    for (; c->scan < c->in->len; c->scan++) {
        char ch = c->in->str[c->scan];
        bool end = false;
        if (c->discarding) {
            c->discarding = ch != '\n';
            continue;
        }
        if (c->in_str) {
            c->in_str = c->esc || ch != '"';
            c->esc = !c->esc && ch == '\\';
            end = !c->in_str && c->depth == 0;
        } else if (!c->started && g_ascii_isspace(ch)) {
            continue;
        } else {
            if (!c->started) {
                c->started = true;
                c->start = c->scan;
            }
            if (ch == '"') {
                c->in_str = true;
            } else if (ch == '{' || ch == '[') {
                if (++c->depth > VD_CONTROL_MAX_DEPTH) {
                    *err = "JSON nesting deeper than " G_STRINGIFY(VD_CONTROL_MAX_DEPTH) " levels";
                }
            } else if (ch == '}' || ch == ']') {
                end = c->depth <= 1; /* at depth 0 a stray close ends the value (a parse error) */
                c->depth -= c->depth > 0;
            } else if (g_ascii_isspace(ch) && c->depth == 0) {
                c->scan--; /* the space is not part of the value */
                end = true;
            }
        }
        if (!*err && c->started && c->scan + 1 - c->start > VD_CONTROL_MAX_MSG) {
            *err = "JSON value longer than 1 MiB";
        }
        if (*err) {
            g_string_erase(c->in, 0, c->scan + 1);
            c->scan = 0;
            c->started = c->in_str = c->esc = false;
            c->depth = 0;
            c->discarding = true;
            return NULL;
        }
        if (end) {
            char *value = g_strndup(c->in->str + c->start, c->scan + 1 - c->start);
            g_string_erase(c->in, 0, c->scan + 1);
            c->scan = 0;
            c->started = false;
            c->depth = 0;
            return value;
        }
    }
    if (!c->started) {
        g_string_truncate(c->in, 0); /* only white space (or discarded bytes) so far */
        c->scan = 0;
    }
    return NULL;
}

/* Schedule every client whose input waited for a handler that has now returned. */
static void resume_deferred(VdControlServer *s)
{
    for (guint i = 0; i < s->clients->len; i++) {
        ControlClient *c = g_ptr_array_index(s->clients, i);
        if (c->deferred) {
            c->deferred = false;
            vd_control_client_resume(c);
        }
    }
}

/* Parse one framed value and run it; a parse error gets GenericError without id. */
static void handle_value(ControlClient *c, const char *text)
{
    g_autoptr(JsonParser) parser = json_parser_new_immutable();
    g_autoptr(GError) err = NULL;
    if (!json_parser_load_from_data(parser, text, -1, &err)) {
        vd_control_send_error(c, NULL, "GenericError", "JSON parse error, %s", err->message);
        return;
    }
    vd_control_dispatch(c, json_parser_get_root(parser));
}

/* Run the client's queued commands, unless it is busy or another client's handler is running. */
static void client_pump(ControlClient *c)
{
    if (c->pumping) {
        return;
    }
    vd_control_client_ref(c);
    c->pumping = true;
    while (c->server && !c->busy) {
        VdControlServer *s = c->server;
        if (s->running) {
            c->deferred = true; /* resumed when that handler returns */
            break;
        }
        const char *err = NULL;
        g_autofree char *value = next_value(c, &err);
        if (err) {
            vd_control_send_error(c, NULL, "GenericError", "%s; input skipped up to the next newline", err);
            continue;
        }
        if (!value) {
            break;
        }
        s->running++;
        handle_value(c, value);
        if (--s->running == 0) {
            resume_deferred(s);
        }
    }
    c->pumping = false;
    client_close_if_done(c);
    vd_control_client_unref(c);
}

/* Idle source: the client's turn to run queued commands. */
static gboolean on_resume(gpointer opaque)
{
    ControlClient *c = opaque;
    g_source_unref(c->resume_source);
    c->resume_source = NULL;
    client_pump(c);
    return G_SOURCE_REMOVE;
}

void vd_control_client_resume(ControlClient *c)
{
    if (c->server && !c->resume_source) {
        c->resume_source = g_idle_source_new();
        g_source_set_callback(c->resume_source, on_resume, c, NULL);
        g_source_attach(c->resume_source, c->server->ctx);
    }
}

/* Input source: queue what arrived and run it. */
static gboolean on_input(gint fd, GIOCondition cond, gpointer opaque)
{
    ControlClient *c = opaque;
    char buf[16384];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n < 0) {
        client_close(c); /* a running command completes; its reply is dropped */
        return G_SOURCE_REMOVE;
    }
    if (n == 0) {
        /* shut down for sending (socat, nc): still run what it sent and reply, then close */
        c->eof = true;
        g_source_unref(c->in_source);
        c->in_source = NULL;
        client_pump(c);
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(c->in, buf, n);
    client_pump(c);
    return G_SOURCE_CONTINUE;
}

void vd_control_add_client(VdControlServer *s, int fd)
{
    ControlClient *c = g_new0(ControlClient, 1);
    c->refs = 1; /* the server's list */
    c->server = s;
    c->fd = fd;
    c->in = g_string_new(NULL);
    c->out = g_string_new(NULL);
    g_ptr_array_add(s->clients, c);
    c->in_source = g_unix_fd_source_new(fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(c->in_source, (GSourceFunc)(void (*)(void))on_input, c, NULL);
    g_source_attach(c->in_source, s->ctx);
    g_autoptr(JsonNode) greeting = vd_control_greeting();
    vd_control_send(c, greeting);
}

unsigned vd_control_num_clients(VdControlServer *s)
{
    return s->clients->len;
}

/* ---- server ---- */

VdControlServer *vd_control_new(GMainContext *ctx, const VdControlOps *ops, void *opaque)
{
    VdControlServer *s = g_new0(VdControlServer, 1);
    s->ctx = g_main_context_ref(ctx);
    s->ops = ops;
    s->opaque = opaque;
    s->drives = g_ptr_array_new();
    s->clients = g_ptr_array_new_with_free_func((GDestroyNotify)vd_control_client_unref);
    s->listen_fd = -1;
    return s;
}

/* True if any drive's backend but d's is stopped (the machine counts as stopped then). */
static bool other_drive_stopped(VdControlServer *s, ControlDrive *d)
{
    bool stopped = false;
    for (guint i = 0; i < s->drives->len; i++) {
        ControlDrive *o = g_ptr_array_index(s->drives, i);
        stopped |= o != d && vd_blk_is_stopped(o->blk);
    }
    return stopped;
}

/* Stop notifier: a backend held a failed request (werror/rerror=stop, enospc): BLOCK_IO_ERROR, then STOP. */
static void on_drive_stopped(void *opaque, bool is_read, int err)
{
    ControlDrive *d = opaque;
    if (!err) {
        return; /* our own vd_blk_stop (the stop command announces it) */
    }
    vd_control_block_io_error(d->server, d->id, !is_read, -err, "stop");
    if (!other_drive_stopped(d->server, d)) {
        vd_control_emit_event(d->server, "STOP", NULL); /* as QEMU: only when the machine was running */
    }
}

void vd_control_add_drive(VdControlServer *s, const char *id, VdBlockBackend *blk)
{
    ControlDrive *d = g_new0(ControlDrive, 1);
    d->id = g_strdup(id);
    d->blk = blk;
    d->server = s;
    vd_blk_add_stop_notifier(blk, on_drive_stopped, d);
    g_ptr_array_add(s->drives, d);
}

/* The QEMU-style options after "unix:PATH" that the control socket accepts (it always listens). */
static const char *const spec_flags[] = { "server", "server=on", "wait=off", "nowait" };

/* Split "unix:PATH[,FLAG...]" into PATH; false with one line naming the problem. */
static bool parse_spec(const char *spec, char **path, GError **errp)
{
    if (!g_str_has_prefix(spec, "unix:")) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--control %s: expected unix:PATH (optionally ,server and ,wait=off as QEMU's -qmp)", spec);
        return false;
    }
    g_auto(GStrv) parts = g_strsplit(spec + 5, ",", -1); /* "" splits into no parts at all */
    for (char **p = parts[0] ? parts + 1 : parts; *p; p++) {
        bool known = false;
        for (size_t i = 0; i < G_N_ELEMENTS(spec_flags); i++) {
            known |= strcmp(*p, spec_flags[i]) == 0;
        }
        if (!known) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "--control %s: unknown flag '%s' (accepted: server, server=on, wait=off, nowait)", spec, *p);
            return false;
        }
    }
    if (!parts[0] || !parts[0][0] || strlen(parts[0]) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--control %s: the socket path must be non-empty, without commas, and under %zu bytes", spec,
                    sizeof(((struct sockaddr_un *)0)->sun_path));
        return false;
    }
    *path = g_strdup(parts[0]);
    return true;
}

bool vd_control_spec_valid(const char *spec, GError **errp)
{
    g_autofree char *path = NULL;
    return parse_spec(spec, &path, errp);
}

/* Listening source: accept a client. */
static gboolean on_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    VdControlServer *s = opaque;
    int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn >= 0) {
        vd_control_add_client(s, conn);
    } else if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        g_warning("control: accept on %s: %s", s->socket_path, g_strerror(errno));
    }
    return G_SOURCE_CONTINUE;
}

bool vd_control_listen(VdControlServer *s, const char *spec, GError **errp)
{
    g_autofree char *path = NULL;
    if (!parse_spec(spec, &path, errp)) {
        return false;
    }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(path); /* a stale socket from an earlier run */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 16) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "--control: cannot listen on %s: %s", path,
                    g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    s->listen_fd = fd;
    s->socket_path = g_steal_pointer(&path);
    s->listen_source = g_unix_fd_source_new(fd, G_IO_IN);
    g_source_set_callback(s->listen_source, (GSourceFunc)(void (*)(void))on_accept, s, NULL);
    g_source_attach(s->listen_source, s->ctx);
    return true;
}

void vd_control_free(VdControlServer *s)
{
    if (!s) {
        return;
    }
    while (s->clients->len) {
        client_close(g_ptr_array_index(s->clients, 0));
    }
    g_ptr_array_unref(s->clients);
    source_clear(&s->listen_source);
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        unlink(s->socket_path);
    }
    for (guint i = 0; i < s->drives->len; i++) {
        ControlDrive *d = g_ptr_array_index(s->drives, i);
        vd_blk_remove_stop_notifier(d->blk, on_drive_stopped, d);
        g_free(d->id);
        g_free(d);
    }
    g_ptr_array_unref(s->drives);
    g_free(s->socket_path);
    g_main_context_unref(s->ctx);
    g_free(s);
}
