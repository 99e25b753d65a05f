/*
 * migration.c - the source side of live migration: quiesce, hand the
 * images over, send the stream, and undo everything if the destination
 * does not take it (include/system/migration.h).
 */
#include "migration-internal.h"

#include "util/mig-stream.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *const status_names[] = {
    [VD_MIGRATION_NONE] = "none", [VD_MIGRATION_ACTIVE] = "active",
    [VD_MIGRATION_COMPLETED] = "completed", [VD_MIGRATION_FAILED] = "failed",
};

const char *vd_migration_status_name(VdMigrationStatus st)
{
    return status_names[st];
}

VdMigrationStatus vd_migration_status(VdMachine *m, const char **error)
{
    *error = m->migration_error;
    return m->migration_status;
}

bool vd_migration_uri_parse(const char *uri, VdMigrationUri *out, GError **errp)
{
    out->path = NULL;
    out->fd = -1;
    if (g_str_has_prefix(uri, "unix:")) {
        const char *p = uri + 5;
        if (!*p || strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "migration URI %s: the socket path must be non-empty and under %zu bytes", uri,
                        sizeof(((struct sockaddr_un *)0)->sun_path));
            return false;
        }
        out->path = g_strdup(p);
        return true;
    }
    if (g_str_has_prefix(uri, "fd:")) {
        char *end;
        errno = 0;
        long n = strtol(uri + 3, &end, 10);
        if (!uri[3] || *end || errno || n < 0 || n > INT32_MAX) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "migration URI %s: fd: takes a descriptor number", uri);
            return false;
        }
        out->fd = n;
        return true;
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "migration URI '%s': expected unix:PATH or fd:N", uri);
    return false;
}

void vd_migration_uri_clear(VdMigrationUri *u)
{
    g_clear_pointer(&u->path, g_free);
    u->fd = -1;
}

/* Connect to the destination (unix:PATH), or take over fd:N; -1 with errp set. */
static int open_uri(const char *uri, GError **errp)
{
    VdMigrationUri u;
    if (!vd_migration_uri_parse(uri, &u, errp)) {
        return -1;
    }
    if (!u.path) {
        return u.fd;
    }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_strlcpy(addr.sun_path, u.path, sizeof(addr.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "migrate: cannot connect to %s: %s", u.path,
                    g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    vd_migration_uri_clear(&u);
    return fd;
}

/* Timeout source callback of the quiesce wait. */
static gboolean quiesce_expired(gpointer opaque)
{
    *(bool *)opaque = true;
    return G_SOURCE_REMOVE;
}

/*
 * The backends are stopped: wait until every request they issued has
 * ended and its answer is in guest memory.  What is left in flight is
 * parked in a backend, and the devices carry it.
 */
static bool quiesce(VdMachine *m, GError **errp)
{
    bool expired = false;
    GSource *timer = g_timeout_source_new(VD_MIGRATE_QUIESCE_TIMEOUT_MS);
    g_source_set_callback(timer, quiesce_expired, &expired, NULL);
    g_source_attach(timer, m->ctx);
    while (vd_machine_issued_in_flight(m) && !expired) {
        g_main_context_iteration(m->ctx, TRUE);
    }
    g_source_destroy(timer);
    g_source_unref(timer);
    /* answers a device delivers from the loop (the SCSI disk's idle source) */
    for (int i = 0; i < 1000 && g_main_context_iteration(m->ctx, FALSE); i++) {
    }
    unsigned left = vd_machine_issued_in_flight(m);
    if (left) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                    "migrate: %u requests still in flight after %u ms; the source keeps running", left,
                    VD_MIGRATE_QUIESCE_TIMEOUT_MS);
        return false;
    }
    return true;
}

/* Guest RAM: the size, then every page that is not all zero (the destination's RAM starts zeroed). */
static void save_ram(VdMachine *m, VdMigWriter *w)
{
    static const uint8_t zero[VD_MIG_PAGE];
    const uint8_t *ram = vd_bus_ram(m->bus);
    vd_mig_section_begin(w, VD_MIG_RAM_SECTION, VD_MIG_RAM_VERSION);
    vd_mig_put_u64(w, m->ram_size);
    for (uint64_t p = 0; p < m->ram_size / VD_MIG_PAGE; p++) {
        const uint8_t *page = ram + p * VD_MIG_PAGE;
        if (memcmp(page, zero, VD_MIG_PAGE) != 0) {
            vd_mig_put_u64(w, p);
            vd_mig_put_bytes(w, page, VD_MIG_PAGE);
        }
    }
    vd_mig_section_end(w);
}

/* The whole stream: RAM, each drive's write cache (its one owner is the backend), each device. */
static GBytes *build_stream(VdMachine *m, GError **errp)
{
    VdMigWriter *w = vd_mig_writer_new();
    save_ram(m, w);
    for (guint i = 0; i < m->drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(m->drives, i);
        g_autofree char *id = g_strconcat(VD_MIG_DRIVE_PREFIX, d->id, NULL);
        vd_mig_section_begin(w, id, VD_MIG_DRIVE_VERSION);
        vd_mig_put_u64(w, vd_blk_length(d->blk));
        vd_mig_put_u8(w, vd_blk_write_cache(d->blk));
        vd_mig_section_end(w);
    }
    for (guint i = 0; i < m->states->len; i++) {
        VdMachineState *st = g_ptr_array_index(m->states, i);
        vd_mig_section_begin(w, st->section, st->ops->version);
        if (!st->ops->save(st->dev, w, errp)) {
            g_prefix_error(errp, "migrate: %s: ", st->section);
            vd_mig_writer_free(w);
            return NULL;
        }
        vd_mig_section_end(w);
    }
    return vd_mig_writer_finish(w);
}

/* Write all of buf to a blocking socket. */
static bool send_all(int fd, const uint8_t *buf, size_t len, GError **errp)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "migrate: sending the stream failed: %s",
                        g_strerror(errno));
            return false;
        }
        buf += n;
        len -= n;
    }
    return true;
}

/* Read the destination's one-line verdict; true for "OK". */
static bool read_verdict(int fd, GError **errp)
{
    char line[VD_MIG_REPLY_MAX];
    size_t got = 0;
    while (got < sizeof(line) - 1 && !memchr(line, '\n', got)) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, VD_MIGRATE_REPLY_TIMEOUT_MS);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r == 0) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "migrate: no answer from the destination within %u ms",
                        VD_MIGRATE_REPLY_TIMEOUT_MS);
            return false;
        }
        ssize_t n = read(fd, line + got, sizeof(line) - 1 - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                        "migrate: the destination closed the connection without an answer");
            return false;
        }
        got += n;
    }
    line[got] = '\0';
    line[strcspn(line, "\n")] = '\0';
    if (strcmp(line, "OK") == 0) {
        return true;
    }
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "migrate: the destination refused the stream: %s",
                g_str_has_prefix(line, "FAIL ") ? line + 5 : line);
    return false;
}

/* Inactivate every drive (flush, release the write lock); inactive[i] says which were. */
static bool inactivate_all(VdMachine *m, bool *inactive, GError **errp)
{
    for (guint i = 0; i < m->drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(m->drives, i);
        if (!vd_blk_inactivate(d->blk, errp)) {
            g_prefix_error(errp, "migrate: drive %s: ", d->id);
            return false;
        }
        inactive[i] = true;
    }
    return true;
}

/* A failed migration: take the images back, and resume the backends the migration stopped. */
static void roll_back(VdMachine *m, const bool *was_stopped, const bool *inactive, GError **errp)
{
    for (guint i = 0; i < m->drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(m->drives, i);
        g_autoptr(GError) err = NULL;
        if (inactive[i] && !vd_blk_invalidate_cache(d->blk, &err)) {
            /* someone else holds the image now: this source must not write it */
            g_prefix_error(errp, "drive %s stays inactive (%s); ", d->id, err->message);
            continue;
        }
        if (!was_stopped[i]) {
            vd_blk_resume(d->blk);
        }
    }
}

/* Send the stream, end our side (the destination reads to end of file), and wait for the verdict. */
static bool transfer(int fd, GBytes *stream, GError **errp)
{
    gsize len;
    const uint8_t *data = g_bytes_get_data(stream, &len);
    if (!send_all(fd, data, len, errp)) {
        return false;
    }
    if (shutdown(fd, SHUT_WR) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "migrate: shutdown: %s", g_strerror(errno));
        return false;
    }
    return read_verdict(fd, errp);
}

/* The steps of vd_migrate after the connection is open; false with the reason, rolled back. */
static bool migrate_over(VdMachine *m, int fd, GError **errp)
{
    guint n = m->drives->len;
    g_autofree bool *was_stopped = g_new0(bool, n + 1), *inactive = g_new0(bool, n + 1);
    for (guint i = 0; i < n; i++) {
        VdBlockBackend *blk = ((VdDriveSpec *)g_ptr_array_index(m->drives, i))->blk;
        was_stopped[i] = vd_blk_is_stopped(blk);
        vd_blk_stop(blk);
    }
    GBytes *stream = NULL;
    bool ok = quiesce(m, errp) && inactivate_all(m, inactive, errp) && (stream = build_stream(m, errp)) &&
              transfer(fd, stream, errp);
    g_clear_pointer(&stream, g_bytes_unref);
    if (!ok) {
        roll_back(m, was_stopped, inactive, errp);
    }
    return ok;
}

bool vd_migrate(VdMachine *m, const char *uri, GError **errp)
{
    if (m->migration_status == VD_MIGRATION_COMPLETED) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_EXISTS, "migrate: this machine has already migrated");
        return false;
    }
    int fd = open_uri(uri, errp);
    if (fd < 0) {
        return false;
    }
    m->migration_status = VD_MIGRATION_ACTIVE;
    g_clear_pointer(&m->migration_error, g_free);
    GError *err = NULL;
    bool ok = migrate_over(m, fd, &err);
    close(fd);
    if (!ok) {
        m->migration_status = VD_MIGRATION_FAILED;
        m->migration_error = g_strdup(err->message);
        g_propagate_error(errp, err);
        return false;
    }
    m->migration_status = VD_MIGRATION_COMPLETED;
    return true;
}
