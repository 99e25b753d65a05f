/*
 * fz-mig-seeds.c - the migration target's seed generator
 * (`fuzz-migration --make-seeds OUTDIR SESSION...`): real streams of a
 * source machine of the target's shape, sent by vd_migrate over a
 * socketpair to a thread that keeps them and answers OK.  Seeds: the idle
 * machine, the idle machine with every drive's write cache flipped, then
 * per qtest session (tests/fuzz/corpus/qtest/, the harness
 * drivers' command lines, among them the write-cache changes of IDE and
 * virtio-blk) the machine after it, and the machine after it run with
 * every backend stopped, so the guest's requests travel held in the
 * stream.  Each seed is checked to load on a fresh destination; a stream
 * already written under another name is not written again.
 *
 * Threading: the fuzzer's thread and the default GMainContext; one reader
 * thread per stream, which touches only its socket and buffer.
 */
#include "fuzz-common.h"
#include "fz-migration.h"
#include "fz-qtest-run.h"
#include "system/migration.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STOP_ALL "stop demo-ide\nstop vd0\nstop demo-scsi\n"

/* The receiving end of one stream. */
typedef struct Receiver {
    int fd;
    GByteArray *stream;
} Receiver;

/* Reader thread: keep everything up to end of file, then answer OK. */
static gpointer receive(gpointer opaque)
{
    Receiver *r = opaque;
    uint8_t chunk[65536];
    ssize_t n;
    while ((n = read(r->fd, chunk, sizeof(chunk))) > 0) {
        g_byte_array_append(r->stream, chunk, n);
    }
    if (n == 0 && send(r->fd, "OK\n", 3, MSG_NOSIGNAL) != 3) {
        n = -1;
    }
    return GINT_TO_POINTER(n == 0);
}

/* Migrate m into memory: the stream (g_byte_array_unref it), or NULL if the source refused. */
static GByteArray *capture(VdMachine *m)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        fz_fail("socketpair: %s", g_strerror(errno));
    }
    Receiver r = { .fd = sv[1], .stream = g_byte_array_new() };
    GThread *t = g_thread_new("mig-receiver", receive, &r);
    GError *err = NULL;
    g_autofree char *uri = g_strdup_printf("fd:%d", sv[0]);
    bool sent = vd_migrate(m, uri, &err);   /* closes sv[0] */
    if (!g_thread_join(t) && sent) {
        fz_fail("the receiver failed");
    }
    close(sv[1]);
    if (!sent) {
        printf("no seed: %s\n", err->message);
        g_error_free(err);
        g_byte_array_unref(r.stream);
        return NULL;
    }
    return r.stream;
}

/* Flip every drive's write cache, as a MODE SELECT of the caching page (or SET FEATURES) would. */
static void flip_write_caches(VdMachine *m)
{
    for (guint i = 0; i < m->drives->len; i++) {
        VdBlockBackend *blk = ((VdDriveSpec *)g_ptr_array_index(m->drives, i))->blk;
        if (vd_blk_set_write_cache_sync(blk, !vd_blk_write_cache(blk)) < 0) {
            fz_fail("cannot flip a write cache");
        }
    }
}

/*
 * Build a source, run the session (text NULL: none) or flip its write
 * caches (flip), migrate it, check the stream loads, write it to dir/name.
 */
static void make_seed(const char *dir, const char *name, const char *prefix, const char *text, size_t len, bool flip)
{
    VdMachine *src = fzm_machine(false);
    if (text) {
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        g_autofree char *session = g_strconcat(prefix, text, NULL);
        if (devnull < 0) {
            fz_fail("/dev/null: %s", g_strerror(errno));
        }
        fz_qtest_run(src, devnull, (const uint8_t *)session, strlen(session));
        close(devnull);
    }
    if (flip) {
        flip_write_caches(src);
    }
    g_autoptr(GByteArray) stream = capture(src);
    vd_machine_free(src);
    if (!stream) {
        return;
    }
    VdMachine *dst = fzm_machine(true);
    GError *err = NULL;
    if (!vd_migration_load(dst, stream->data, stream->len, &err)) {
        fz_fail("seed %s does not load: %s", name, err->message);
    }
    fzm_drain(dst);
    vd_machine_free(dst);
    fz_order_reset();
    static GHashTable *written;   /* stream (GBytes) -> seed name: no seed twice */
    if (!written) {
        written = g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, g_free);
    }
    GBytes *bytes = g_bytes_new(stream->data, stream->len);
    const char *twin = g_hash_table_lookup(written, bytes);
    if (twin) {
        printf("%s: the same stream as %s\n", name, twin);
        g_bytes_unref(bytes);
        return;
    }
    g_hash_table_insert(written, bytes, g_strdup(name));
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (!g_file_set_contents(path, (const char *)stream->data, stream->len, &err)) {
        fz_fail("%s", err->message);
    }
    printf("%s: %u bytes\n", path, stream->len);
}

int fzm_make_seeds(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: fuzz-migration --make-seeds OUTDIR [QTEST-SESSION...]\n");
        return 2;
    }
    make_seed(argv[0], "idle", "", NULL, 0, false);
    make_seed(argv[0], "write-caches-flipped", "", NULL, 0, true);
    for (int i = 1; i < argc; i++) {
        g_autofree char *text = NULL, *base = g_path_get_basename(argv[i]);
        g_autofree char *held = g_strconcat(base, "-held", NULL);
        gsize len;
        GError *err = NULL;
        if (!g_file_get_contents(argv[i], &text, &len, &err)) {
            fz_fail("%s", err->message);
        }
        make_seed(argv[0], base, "", text, len, false);
        make_seed(argv[0], held, STOP_ALL, text, len, false);
    }
    return 0;
}
