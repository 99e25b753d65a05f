/* qtest.c - the qtest-like line protocol server: input, dispatch, transports (docs/qtest-protocol.md). */
#include "qtest-internal.h"

#include <errno.h>
#include <glib-unix.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define OVERLONG_MARK "\001"           /* stands in the input for a line that was too long */
#define MAX_PENDING_ITERATIONS 100000

/* ---- output ---- */

/* Write all of buf; a broken or closed client ends the session. */
static void write_all(VdQtestServer *s, const char *buf, size_t len)
{
    while (len && !s->broken) {
        ssize_t n = write(s->out_fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= n;
        } else if (n < 0 && errno == EAGAIN) {
            struct pollfd p = { .fd = s->out_fd, .events = POLLOUT };
            poll(&p, 1, -1);
        } else if (!(n < 0 && errno == EINTR)) {
            s->broken = true;
        }
    }
}

/* Send one line (a newline is added). */
void vd_qtest_send_line(VdQtestServer *s, const char *line)
{
    g_autoptr(GString) buf = g_string_new(line);
    g_string_append_c(buf, '\n');
    write_all(s, buf->str, buf->len);
}

/* Asynchronous IRQ report, from the bus listener. */
static void on_irq(void *opaque, unsigned line, bool level)
{
    g_autofree char *msg = g_strdup_printf("IRQ %s %u", level ? "raise" : "lower", line);
    vd_qtest_send_line(opaque, msg);
}

/* The command table: name, argument count range, handler, usage for FAIL messages. */
static const struct QtestCommand {
    const char *name;
    int min_args, max_args;
    VdQtestCmd *fn;
    const char *usage;
} commands[] = {
    { "outb", 2, 2, vd_qtest_cmd_out, "ADDR VALUE" },
    { "outw", 2, 2, vd_qtest_cmd_out, "ADDR VALUE" },
    { "outl", 2, 2, vd_qtest_cmd_out, "ADDR VALUE" },
    { "inb", 1, 1, vd_qtest_cmd_in, "ADDR" },
    { "inw", 1, 1, vd_qtest_cmd_in, "ADDR" },
    { "inl", 1, 1, vd_qtest_cmd_in, "ADDR" },
    { "writeb", 2, 2, vd_qtest_cmd_writex, "ADDR VALUE" },
    { "writew", 2, 2, vd_qtest_cmd_writex, "ADDR VALUE" },
    { "writel", 2, 2, vd_qtest_cmd_writex, "ADDR VALUE" },
    { "writeq", 2, 2, vd_qtest_cmd_writex, "ADDR VALUE" },
    { "readb", 1, 1, vd_qtest_cmd_readx, "ADDR" },
    { "readw", 1, 1, vd_qtest_cmd_readx, "ADDR" },
    { "readl", 1, 1, vd_qtest_cmd_readx, "ADDR" },
    { "readq", 1, 1, vd_qtest_cmd_readx, "ADDR" },
    { "read", 2, 2, vd_qtest_cmd_read, "ADDR SIZE" },
    { "write", 3, 3, vd_qtest_cmd_write, "ADDR SIZE 0xDATA" },
    { "memset", 3, 3, vd_qtest_cmd_memset, "ADDR SIZE VALUE" },
    { "b64read", 2, 2, vd_qtest_cmd_b64read, "ADDR SIZE" },
    { "b64write", 3, 3, vd_qtest_cmd_b64write, "ADDR SIZE BASE64" },
    { "endianness", 0, 0, vd_qtest_cmd_endianness, "" },
    { "clock_step", 0, 1, vd_qtest_cmd_clock_step, "[NS]" },
    { "clock_set", 1, 1, vd_qtest_cmd_clock_set, "NS" },
    { "irq_intercept_in", 0, 2, vd_qtest_cmd_irq_intercept, "[PATH [NAME]]" },
    { "irq_intercept_out", 0, 2, vd_qtest_cmd_irq_intercept, "[PATH [NAME]]" },
    { "irq_level", 1, 1, vd_qtest_cmd_irq_level, "LINE" },
    { "drain", 0, 1, vd_qtest_cmd_drain, "[TIMEOUT_MS]" },
    { "blockstats", 1, 1, vd_qtest_cmd_blockstats, "ID" },
    { "info", 0, 0, vd_qtest_cmd_info, "" },
    { "dtb", 0, 0, vd_qtest_cmd_dtb, "" },
    { "trace", 2, 2, vd_qtest_cmd_trace, "ID on|off" },
    { "inject", 4, 6, vd_qtest_cmd_inject, "ID read|write|flush|discard ERRNO COUNT|always [AFTER [START-END]]" },
    { "delay", 3, 3, vd_qtest_cmd_delay, "ID read|write|flush|discard US" },
    { "crash", 1, 2, vd_qtest_cmd_crash, "ID [SEED]" },
    { "crashlog", 2, 2, vd_qtest_cmd_crashlog, "ID PATH" },
    { "stop", 1, 1, vd_qtest_cmd_stop, "ID" },
    { "cont", 1, 1, vd_qtest_cmd_cont, "ID" },
    { "migrate", 1, 1, vd_qtest_cmd_migrate, "unix:PATH|fd:N" },
    { "query-migrate", 0, 0, vd_qtest_cmd_query_migrate, "" },
};

/* Run one command line and send its reply. */
static void handle_line(VdQtestServer *s, char *line, size_t len)
{
    g_autoptr(GString) reply = g_string_new(NULL);
    if (len && line[len - 1] == '\r') {
        line[--len] = '\0';
    }
    if (strcmp(line, OVERLONG_MARK) == 0) {
        vd_qtest_fail(reply, "line longer than %u bytes", VD_QTEST_MAX_LINE);
    } else if (memchr(line, '\0', len)) {
        vd_qtest_fail(reply, "line contains a NUL byte");
    } else {
        g_auto(GStrv) words = g_strsplit_set(line, " \t", -1);
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        for (char **w = words; *w; w++) {
            if (**w) {
                g_ptr_array_add(argv, *w);
            }
        }
        int argc = argv->len;
        g_ptr_array_add(argv, NULL);
        char **args = (char **)argv->pdata;
        const struct QtestCommand *cmd = NULL;
        for (size_t i = 0; argc && i < G_N_ELEMENTS(commands); i++) {
            if (strcmp(args[0], commands[i].name) == 0) {
                cmd = &commands[i];
            }
        }
        if (!argc) {
            vd_qtest_fail(reply, "empty command");
        } else if (!cmd) {
            vd_qtest_fail(reply, "Unknown command '%s'", args[0]);
        } else if (argc - 1 < cmd->min_args || argc - 1 > cmd->max_args) {
            vd_qtest_fail(reply, "wrong number of arguments (usage: %s%s%s)", cmd->name, cmd->usage[0] ? " " : "",
                 cmd->usage);
        } else {
            cmd->fn(s, argc, args, reply);
        }
    }
    vd_qtest_send_line(s, reply->str);
}

/* Run whatever the context has ready, without blocking (device completions, IRQs). */
static void run_pending(VdQtestServer *s)
{
    for (int i = 0; i < MAX_PENDING_ITERATIONS && g_main_context_iteration(s->m->ctx, FALSE); i++) {
    }
}

/* Execute every complete line in the input buffer, in order. */
static void process_lines(VdQtestServer *s)
{
    s->processing = true;
    char *nl;
    while (!s->broken && (nl = memchr(s->inbuf->str, '\n', s->inbuf->len))) {
        size_t len = nl - s->inbuf->str;
        g_autofree char *line = g_malloc(len + 1);
        memcpy(line, s->inbuf->str, len); /* NUL bytes included, so that the line can be refused */
        line[len] = '\0';
        g_string_erase(s->inbuf, 0, len + 1);
        handle_line(s, line, len);
        run_pending(s);
    }
    s->processing = false;
}

/*
 * Queue input bytes; a line over VD_QTEST_MAX_LINE collapses to
 * OVERLONG_MARK.  True if at least one line was completed.
 */
static bool queue_input(VdQtestServer *s, const char *data, size_t n)
{
    bool completed = false;
    while (n) {
        const char *nl = memchr(data, '\n', n);
        size_t seg = nl ? (size_t)(nl - data) : n;
        if (s->discarding) {
            /* drop the rest of the overlong line */
        } else if (seg > VD_QTEST_MAX_LINE - s->partial) {
            g_string_truncate(s->inbuf, s->inbuf->len - s->partial);
            g_string_append(s->inbuf, OVERLONG_MARK);
            s->partial = strlen(OVERLONG_MARK);
            s->discarding = true;
        } else {
            g_string_append_len(s->inbuf, data, seg);
            s->partial += seg;
        }
        if (nl) {
            g_string_append_c(s->inbuf, '\n');
            s->partial = 0;
            s->discarding = false;
            completed = true;
            seg++;
        }
        data += seg;
        n -= seg;
    }
    return completed;
}

/* Input source callback: read, queue, and execute unless a command is already running. */
static gboolean on_input(gint fd, GIOCondition cond, gpointer opaque)
{
    VdQtestServer *s = opaque;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        s->eof = true; /* an outer process_lines, if any, finishes the queued lines */
        if (!s->processing) {
            process_lines(s);
        }
        g_source_unref(s->in_source);
        s->in_source = NULL;
        return G_SOURCE_REMOVE;
    }
    if (queue_input(s, buf, n) && !s->processing) {
        process_lines(s);
    }
    return G_SOURCE_CONTINUE;
}

VdQtestServer *vd_qtest_server_new(VdMachine *m, int in_fd, int out_fd)
{
    VdQtestServer *s = g_new0(VdQtestServer, 1);
    s->m = m;
    s->in_fd = in_fd;
    s->out_fd = out_fd;
    s->inbuf = g_string_new(NULL);
    s->traces = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, vd_qtest_trace_sink_free);
    s->in_source = g_unix_fd_source_new(in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(s->in_source, (GSourceFunc)(void (*)(void))on_input, s, NULL);
    g_source_attach(s->in_source, m->ctx);
    vd_bus_set_irq_listener(m->bus, on_irq, s);
    return s;
}

/* Split "unix:PATH[,server]"; false with an error for anything else but "stdio". */
static bool parse_spec(const char *spec, char **path, bool *server, GError **errp)
{
    *path = NULL;
    *server = false;
    if (g_strcmp0(spec, "stdio") == 0) {
        return true;
    }
    if (!spec || !g_str_has_prefix(spec, "unix:")) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--qtest %s: expected stdio, unix:PATH or unix:PATH,server", spec ? spec : "");
        return false;
    }
    g_autofree char *p = g_strdup(spec + 5);
    if (g_str_has_suffix(p, ",server")) {
        p[strlen(p) - 7] = '\0';
        *server = true;
    }
    if (!*p || strchr(p, ',') || strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--qtest %s: the socket path must be non-empty, without commas, and under %zu bytes", spec,
                    sizeof(((struct sockaddr_un *)0)->sun_path));
        return false;
    }
    *path = g_steal_pointer(&p);
    return true;
}

bool vd_qtest_spec_valid(const char *spec, GError **errp)
{
    g_autofree char *path = NULL;
    bool server;
    return parse_spec(spec, &path, &server, errp);
}

/* Connect to, or listen on and accept one client at, a unix socket path. */
static int open_unix(const char *path, bool server, GError **errp)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "socket: %s", g_strerror(errno));
        return -1;
    }
    if (!server) {
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "--qtest: cannot connect to %s: %s", path,
                        g_strerror(errno));
            close(fd);
            return -1;
        }
        return fd;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "--qtest: cannot listen on %s: %s", path,
                    g_strerror(errno));
        close(fd);
        return -1;
    }
    int conn;
    do {
        conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    } while (conn < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    unlink(path);
    if (conn < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(saved), "--qtest: accept on %s: %s", path,
                    g_strerror(saved));
    }
    return conn;
}

VdQtestServer *vd_qtest_server_open(VdMachine *m, const char *spec, GError **errp)
{
    g_autofree char *path = NULL;
    bool server;
    if (!parse_spec(spec, &path, &server, errp)) {
        return NULL;
    }
    if (!path) {
        return vd_qtest_server_new(m, STDIN_FILENO, STDOUT_FILENO);
    }
    int fd = open_unix(path, server, errp);
    if (fd < 0) {
        return NULL;
    }
    VdQtestServer *s = vd_qtest_server_new(m, fd, fd);
    s->owns_fds = true;
    return s;
}

bool vd_qtest_server_done(VdQtestServer *s)
{
    return s->broken || (s->eof && !s->processing);
}

void vd_qtest_server_free(VdQtestServer *s)
{
    if (!s) {
        return;
    }
    GHashTableIter it;
    gpointer id;
    g_hash_table_iter_init(&it, s->traces);
    while (g_hash_table_iter_next(&it, &id, NULL)) {
        VdDriveSpec *d = vd_machine_find_drive(s->m, id);
        if (d) {
            vd_blk_set_trace(d->blk, NULL, NULL);
        }
    }
    g_hash_table_destroy(s->traces);
    vd_bus_set_irq_listener(s->m->bus, NULL, NULL);
    if (s->in_source) {
        g_source_destroy(s->in_source);
        g_source_unref(s->in_source);
    }
    if (s->owns_fds) {
        close(s->in_fd);
    }
    g_string_free(s->inbuf, TRUE);
    g_free(s);
}
