/*
 * migration-incoming.c - the destination side of live migration: wait for
 * the stream, check all of it, take the images over, then apply it
 * (include/system/migration.h).
 */
#include "migration-internal.h"

#include "util/bswap.h"

#include <errno.h>
#include <glib-unix.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct VdIncoming {
    VdMachine *m;
    char *uri;
    char *path;                 /* the listening socket's file (unix:), unlinked at free */
    int listen_fd, conn_fd;
    unsigned timeout_s;
    GSource *wait_source;       /* accept (unix:) or readable (fd:) */
    GSource *timer;
    VdIncomingDoneFunc *done;
    void *opaque;
};

/* ---- loading a stream ---- */

/* A section of the stream by id; the id must be there exactly once. */
static VdMigSection *find_section(GPtrArray *secs, const char *id, GError **errp)
{
    VdMigSection *found = NULL;
    for (guint i = 0; i < secs->len; i++) {
        VdMigSection *s = g_ptr_array_index(secs, i);
        if (strcmp(s->id, id) != 0) {
            continue;
        }
        if (found) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "migration stream: section '%s' appears twice", id);
            return NULL;
        }
        found = s;
    }
    if (!found) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "migration stream: no section '%s' for this machine's device or drive (different configuration?)",
                    id);
    }
    return found;
}

/* A section's version must be the one this build writes. */
static bool check_version(VdMigSection *s, uint32_t version, GError **errp)
{
    if (s->version != version) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "migration stream: section '%s' has version %u; this vdisk reads version %u", s->id, s->version,
                    version);
        return false;
    }
    return true;
}

/* Walk the RAM section: check every page record; copy them into ram unless it is NULL. */
static bool ram_walk(VdMachine *m, VdMigSection *s, uint8_t *ram, GError **errp)
{
    uint64_t size;
    s->pos = 0;
    if (!check_version(s, VD_MIG_RAM_VERSION, errp) || !vd_mig_get_u64(s, "RAM size", &size, errp)) {
        return false;
    }
    if (size != m->ram_size) {
        return vd_mig_field_error(s, "RAM size", errp, "%" G_GUINT64_FORMAT " bytes on the source, %" G_GUINT64_FORMAT
                                  " here (give -m the same size)", size, m->ram_size);
    }
    while (vd_mig_left(s)) {
        uint64_t page;
        const uint8_t *data;
        if (!vd_mig_get_u64(s, "page number", &page, errp) ||
            !(data = vd_mig_get_ptr(s, "page data", VD_MIG_PAGE, errp))) {
            return false;
        }
        if (page >= size / VD_MIG_PAGE) {
            return vd_mig_field_error(s, "page number", errp, "%" G_GUINT64_FORMAT " is beyond RAM", page);
        }
        if (ram) {
            memcpy(ram + page * VD_MIG_PAGE, data, VD_MIG_PAGE);
        }
    }
    return true;
}

/* Check a drive's section: same image length; returns its write-cache state in *wce. */
static bool drive_parse(VdDriveSpec *d, VdMigSection *s, bool *wce, GError **errp)
{
    uint64_t len;
    if (!check_version(s, VD_MIG_DRIVE_VERSION, errp) || !vd_mig_get_u64(s, "image length", &len, errp) ||
        !vd_mig_get_bool(s, "write cache", wce, errp) || !vd_mig_section_done(s, errp)) {
        return false;
    }
    if (len != (uint64_t)vd_blk_length(d->blk)) {
        return vd_mig_field_error(s, "image length", errp, "%" G_GUINT64_FORMAT " bytes on the source, %"
                                  G_GINT64_FORMAT " bytes here (%s)", len, vd_blk_length(d->blk),
                                  vd_blk_filename(d->blk));
    }
    return true;
}

/* Every section must belong to this machine (each expected one was found; a foreign id is named). */
static bool check_no_extra(VdMachine *m, GPtrArray *secs, GError **errp)
{
    guint expected = 1 + m->drives->len + m->states->len;
    if (secs->len == expected) {
        return true;
    }
    for (guint i = 0; i < secs->len; i++) {
        VdMigSection *s = g_ptr_array_index(secs, i);
        bool known = strcmp(s->id, VD_MIG_RAM_SECTION) == 0 ||
                     (g_str_has_prefix(s->id, VD_MIG_DRIVE_PREFIX) &&
                      vd_machine_find_drive(m, s->id + strlen(VD_MIG_DRIVE_PREFIX)));
        for (guint k = 0; !known && k < m->states->len; k++) {
            known = strcmp(((VdMachineState *)g_ptr_array_index(m->states, k))->section, s->id) == 0;
        }
        if (!known) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        "migration stream: section '%s' has no device or drive on this machine", s->id);
            return false;
        }
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "migration stream: %u sections, %u expected", secs->len,
                expected);
    return false;
}

/* Everything checked, nothing applied yet: the parsed device states and the drives' write caches. */
typedef struct Parsed {
    VdMigSection *ram;
    bool *wce;                  /* per drive */
    void **states;              /* per registered state */
} Parsed;

/* Drop parsed device states that will not be applied. */
static void parsed_clear(VdMachine *m, Parsed *p)
{
    for (guint i = 0; p->states && i < m->states->len; i++) {
        VdMachineState *st = g_ptr_array_index(m->states, i);
        if (p->states[i]) {
            st->ops->free_state(p->states[i]);
        }
    }
    g_free(p->states);
    g_free(p->wce);
}

/* Check every section; nothing of the machine changes. */
static bool parse_all(VdMachine *m, GPtrArray *secs, Parsed *p, GError **errp)
{
    p->wce = g_new0(bool, m->drives->len + 1);
    p->states = g_new0(void *, m->states->len + 1);
    if (!(p->ram = find_section(secs, VD_MIG_RAM_SECTION, errp)) || !ram_walk(m, p->ram, NULL, errp)) {
        return false;
    }
    for (guint i = 0; i < m->drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(m->drives, i);
        g_autofree char *id = g_strconcat(VD_MIG_DRIVE_PREFIX, d->id, NULL);
        VdMigSection *s = find_section(secs, id, errp);
        if (!s || !drive_parse(d, s, &p->wce[i], errp)) {
            return false;
        }
    }
    for (guint i = 0; i < m->states->len; i++) {
        VdMachineState *st = g_ptr_array_index(m->states, i);
        VdMigSection *s = find_section(secs, st->section, errp);
        if (!s || !check_version(s, st->ops->version, errp) || !(p->states[i] = st->ops->parse(st->dev, s, errp))) {
            return false;
        }
    }
    return check_no_extra(m, secs, errp);
}

/* Take every image over (drop its page cache, take the write lock); undone whole on failure. */
static bool activate_all(VdMachine *m, GError **errp)
{
    for (guint i = 0; i < m->drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(m->drives, i);
        if (!vd_blk_invalidate_cache(d->blk, errp)) {
            g_prefix_error(errp, "drive %s: ", d->id);
            while (i-- > 0) {
                vd_blk_inactivate(((VdDriveSpec *)g_ptr_array_index(m->drives, i))->blk, NULL);
            }
            return false;
        }
    }
    return true;
}

bool vd_migration_load(VdMachine *m, const uint8_t *data, size_t len, GError **errp)
{
    g_autoptr(GPtrArray) secs = vd_mig_stream_parse(data, len, errp);
    if (!secs) {
        return false;
    }
    Parsed p = { 0 };
    if (!parse_all(m, secs, &p, errp) || !activate_all(m, errp)) {
        parsed_clear(m, &p);
        return false;
    }
    ram_walk(m, p.ram, vd_bus_ram(m->bus), NULL);
    for (guint i = 0; i < m->drives->len; i++) {
        VdBlockBackend *blk = ((VdDriveSpec *)g_ptr_array_index(m->drives, i))->blk;
        if (vd_blk_write_cache(blk) != p.wce[i]) {
            vd_blk_set_write_cache(blk, p.wce[i], NULL, NULL);
        }
    }
    for (guint i = 0; i < m->states->len; i++) {
        VdMachineState *st = g_ptr_array_index(m->states, i);
        st->ops->apply(st->dev, g_steal_pointer(&p.states[i]));
    }
    parsed_clear(m, &p);
    return true;
}

/* ---- waiting for the stream ---- */

/* Read until the source ends its side; a pause longer than the stall timeout, or too much data, fails. */
static GByteArray *read_stream(VdIncoming *in, int fd, GError **errp)
{
    uint64_t limit = in->m->ram_size + in->m->ram_size / 256 + (64u << 20);
    GByteArray *buf = g_byte_array_new();
    uint8_t chunk[65536];
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, VD_INCOMING_STALL_TIMEOUT_MS);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        ssize_t n = r > 0 ? read(fd, chunk, sizeof(chunk)) : -1;
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0) {
            return buf;
        }
        if (n < 0 || (uint64_t)buf->len + (uint64_t)n > limit) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "--incoming %s: %s after %u bytes", in->uri,
                        r == 0 ? "the source stopped sending" : n < 0 ? g_strerror(errno) : "stream too long",
                        buf->len);
            g_byte_array_unref(buf);
            return NULL;
        }
        g_byte_array_append(buf, chunk, n);
    }
}

/* Stop waiting: remove the accept/readable source and the timer. */
static void stop_waiting(VdIncoming *in)
{
    GSource **srcs[] = { &in->wait_source, &in->timer };
    for (size_t i = 0; i < G_N_ELEMENTS(srcs); i++) {
        if (*srcs[i]) {
            g_source_destroy(*srcs[i]);
            g_source_unref(*srcs[i]);
            *srcs[i] = NULL;
        }
    }
}

/* A connection: read, load, answer the source, tell the owner. */
static void serve_connection(VdIncoming *in, int fd)
{
    stop_waiting(in);
    GError *err = NULL;
    GByteArray *stream = read_stream(in, fd, &err);
    if (stream && stream->len == 0) {
        g_set_error(&err, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                    "--incoming %s: the source closed the connection without sending a stream (its migrate says why)",
                    in->uri);
        g_clear_pointer(&stream, g_byte_array_unref);
    }
    if (stream) {
        vd_migration_load(in->m, stream->data, stream->len, &err);
        g_byte_array_unref(stream);
    }
    g_autofree char *reply = err ? g_strdup_printf("FAIL %s\n", err->message) : g_strdup("OK\n");
    for (char *c = reply; c[1]; c++) {
        *c = *c == '\n' ? ' ' : *c;
    }
    if (send(fd, reply, strlen(reply), MSG_NOSIGNAL) < 0 && !err) {
        g_set_error(&err, G_IO_ERROR, g_io_error_from_errno(errno), "--incoming %s: answering the source: %s",
                    in->uri, g_strerror(errno));
    }
    in->done(in->opaque, err);
    g_clear_error(&err);
}

/* The listening socket is readable: accept the source. */
static gboolean on_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    VdIncoming *in = opaque;
    int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) {
        return G_SOURCE_CONTINUE;
    }
    in->conn_fd = conn;
    serve_connection(in, conn);
    return G_SOURCE_REMOVE;
}

/* fd:N has data (or end of file). */
static gboolean on_readable(gint fd, GIOCondition cond, gpointer opaque)
{
    serve_connection(opaque, fd);
    return G_SOURCE_REMOVE;
}

/* Nothing arrived in time. */
static gboolean on_timeout(gpointer opaque)
{
    VdIncoming *in = opaque;
    stop_waiting(in);
    GError *err = g_error_new(G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "--incoming %s: no migration stream within %u s",
                              in->uri, in->timeout_s);
    in->done(in->opaque, err);
    g_error_free(err);
    return G_SOURCE_REMOVE;
}

/* Listen on a unix socket path (a stale socket file there is replaced); -1 with errp set. */
static int listen_unix(const char *path, GError **errp)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "--incoming: cannot listen on %s: %s", path,
                    g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

VdIncoming *vd_incoming_new(VdMachine *m, const char *uri, unsigned timeout_s, VdIncomingDoneFunc *done,
                            void *opaque, GError **errp)
{
    VdMigrationUri u;
    if (!vd_migration_uri_parse(uri, &u, errp)) {
        return NULL;
    }
    VdIncoming *in = g_new0(VdIncoming, 1);
    in->m = m;
    in->uri = g_strdup(uri);
    in->path = g_steal_pointer(&u.path);
    in->listen_fd = in->conn_fd = -1;
    in->timeout_s = timeout_s;
    in->done = done;
    in->opaque = opaque;
    if (in->path) {
        in->listen_fd = listen_unix(in->path, errp);
        if (in->listen_fd < 0) {
            g_clear_pointer(&in->path, g_free);
            vd_incoming_free(in);
            return NULL;
        }
        in->wait_source = g_unix_fd_source_new(in->listen_fd, G_IO_IN);
        g_source_set_callback(in->wait_source, (GSourceFunc)(void (*)(void))on_accept, in, NULL);
    } else {
        in->conn_fd = u.fd;
        in->wait_source = g_unix_fd_source_new(in->conn_fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
        g_source_set_callback(in->wait_source, (GSourceFunc)(void (*)(void))on_readable, in, NULL);
    }
    g_source_attach(in->wait_source, m->ctx);
    in->timer = g_timeout_source_new_seconds(timeout_s);
    g_source_set_callback(in->timer, on_timeout, in, NULL);
    g_source_attach(in->timer, m->ctx);
    return in;
}

void vd_incoming_free(VdIncoming *in)
{
    if (!in) {
        return;
    }
    stop_waiting(in);
    if (in->listen_fd >= 0) {
        close(in->listen_fd);
    }
    if (in->conn_fd >= 0) {
        close(in->conn_fd);
    }
    if (in->path) {
        unlink(in->path);
    }
    g_free(in->path);
    g_free(in->uri);
    g_free(in);
}
