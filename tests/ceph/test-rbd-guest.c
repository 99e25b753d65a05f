/*
 * test-rbd-guest.c - a virtio-blk guest (the reference driver, through
 * vdisk-vmm's qtest protocol) on driver=rbd, against the single-node cluster
 * of tests/ceph/ceph-cluster.sh (CEPH_CONF).  What reached Ceph is read back
 * from Ceph itself, never from vdisk:
 *  - librbd's own perf counters and settings, from vdisk-vmm's librbd admin
 *    socket (the cluster's conf puts it at RUN/client.USER.PID.asok):
 *    `perf dump` and `config get`, as `ceph --admin-daemon` would ask;
 *  - the image's data, with `rbd export` once the VMM has exited.
 * Each test opens its own image as its own Ceph user, so counters never mix.
 */
#include "virtio-blk-driver.h"

#include <json-glib/json-glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define IMG_SIZE (16u << 20)
#define QSIZE    64
#define RAM_ALLOC_START 0x100000ull
#define RAM_ALLOC_END   0x4000000ull
#define BLK      4096u
#define OBJ      (4u << 20)   /* an RBD object (order 22) */
#define F(b) (1ull << (b))

typedef struct R {
    VdQtest *q;
    VdGuestAlloc alloc;
    VdVblk b;
    char *image, *user, *asok;
    uint8_t expect[IMG_SIZE];       /* what the guest wrote */
} R;

/* Run a command (argv), fail the test with its stderr unless it exits 0; its stdout (g_free). */
static char *run_ok(const char *const *argv)
{
    g_autofree char *err = NULL;
    char *out = NULL;
    int status = -1;
    g_autoptr(GError) gerr = NULL;
    gboolean ok = g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status,
                               &gerr);
    if (!ok || !g_spawn_check_wait_status(status, NULL)) {
        fail_msg("%s failed: %s%s", argv[0], gerr ? gerr->message : "", err ? err : "");
    }
    return out;
}

/* The cluster's run directory, where every client's admin socket is. */
static char *run_dir(void)
{
    const char *conf = g_getenv("CEPH_CONF");
    assert_non_null(conf);
    g_autofree char *dir = g_path_get_dirname(conf);
    return g_build_filename(dir, "run", NULL);
}

/* Create image name (16 MiB) and start the VMM with it as drive0 (extra: more drive options). */
static R *r_start(const char *name, const char *extra)
{
    R *r = g_new0(R, 1);
    r->image = g_strdup_printf("%s-%d", name, (int)getpid());
    r->user = g_strdup_printf("vd-%s", name);
    g_autofree char *spec = g_strdup_printf("rbd/%s", r->image);
    const char *create[] = { "rbd", "create", "--size", "16M", spec, NULL };
    g_free(run_ok(create));
    g_autofree char *args = g_strdup_printf("--drive driver=rbd,pool=rbd,image=%s,user=%s,if=virtio,id=drive0,%s",
                                            r->image, r->user, extra);
    r->q = vd_qtest_start(args);
    vd_guest_alloc_init(&r->alloc, RAM_ALLOC_START, RAM_ALLOC_END);
    VdVmmio dev;
    assert_true(vd_vmmio_find(r->q, 2, "drive0", &dev));
    assert_true(vd_vblk_init(&r->b, &dev, vd_vblk_all_features(), false, 1, QSIZE, &r->alloc));
    /* the VMM answers only once its drives are open, so librbd's socket is there now */
    g_autofree char *dir = run_dir();
    g_autofree char *sock = g_strdup_printf("client.%s.%d.asok", r->user, (int)vd_qtest_pid(r->q));
    r->asok = g_build_filename(dir, sock, NULL);
    assert_true(g_file_test(r->asok, G_FILE_TEST_EXISTS));
    return r;
}

/* Read exactly len bytes from fd. */
static void read_all(int fd, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        assert_true(n > 0);
        got += n;
    }
}

/*
 * An admin-socket command's JSON reply, parsed.  The protocol (what
 * `ceph --admin-daemon` speaks): the command as JSON and a NUL byte; the
 * reply is a 32-bit big-endian length and that many bytes of JSON.
 */
static JsonNode *asok_query(const char *asok, const char *json_cmd)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    assert_true(strlen(asok) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, asok);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, json_cmd, strlen(json_cmd) + 1), (ssize_t)strlen(json_cmd) + 1);
    uint32_t be_len;
    read_all(fd, &be_len, sizeof(be_len));
    uint32_t len = GUINT32_FROM_BE(be_len);
    g_autofree char *out = g_malloc(len + 1);
    read_all(fd, out, len);
    out[len] = 0;
    close(fd);
    g_autoptr(GError) err = NULL;
    JsonNode *node = json_from_string(out, &err);
    if (!node) {
        fail_msg("admin socket reply to %s is not JSON: %s", json_cmd, err->message);
    }
    return node;
}

/* One counter of the image's librbd logger ("librbd-ID-POOL-IMAGE") in `perf dump`. */
static uint64_t librbd_counter(R *r, const char *counter)
{
    vd_qtest_drain(r->q);
    JsonNode *node = asok_query(r->asok, "{\"prefix\": \"perf dump\"}");
    JsonObject *root = json_node_get_object(node);
    g_autofree char *suffix = g_strdup_printf("-rbd-%s", r->image);
    uint64_t value = UINT64_MAX;
    g_autoptr(GList) members = json_object_get_members(root);
    for (GList *m = members; m; m = m->next) {
        const char *name = m->data;
        if (g_str_has_prefix(name, "librbd-") && g_str_has_suffix(name, suffix)) {
            value = json_object_get_int_member(json_object_get_object_member(root, name), counter);
        }
    }
    json_node_unref(node);
    assert_true(value != UINT64_MAX);
    return value;
}

/* A librados/librbd setting as the client behind admin socket asok runs with it. */
static char *client_setting(const char *asok, const char *key)
{
    g_autofree char *cmd = g_strdup_printf("{\"prefix\": \"config get\", \"var\": \"%s\"}", key);
    JsonNode *node = asok_query(asok, cmd);
    char *value = g_strdup(json_object_get_string_member(json_node_get_object(node), key));
    json_node_unref(node);
    return value;
}

/* A recognisable block for (block index, seed). */
static void pattern(uint8_t *p, unsigned idx, uint8_t seed)
{
    for (unsigned i = 0; i < BLK; i++) {
        p[i] = (uint8_t)(seed + idx * 7 + i * 13);
    }
}

/* Guest write of block idx (remembered for the export check). */
static void guest_write(R *r, unsigned idx, uint8_t seed)
{
    uint8_t *p = r->expect + idx * BLK;
    pattern(p, idx, seed);
    assert_int_equal(vd_vblk_write(&r->b, idx * (BLK / 512), p, BLK), VBLK_S_OK);
}

/* True if `rbd diff` (the image's allocated extents) covers the byte at offset. */
static bool allocated(R *r, uint64_t offset)
{
    g_autofree char *spec = g_strdup_printf("rbd/%s", r->image);
    const char *diff[] = { "rbd", "diff", "--format", "json", spec, NULL };
    g_autofree char *out = run_ok(diff);
    g_autoptr(GError) err = NULL;
    JsonNode *node = json_from_string(out, &err);
    assert_non_null(node);
    JsonArray *extents = json_node_get_array(node);
    bool found = false;
    for (guint i = 0; i < json_array_get_length(extents); i++) {
        JsonObject *e = json_array_get_object_element(extents, i);
        uint64_t off = json_object_get_int_member(e, "offset"), len = json_object_get_int_member(e, "length");
        found |= offset >= off && offset - off < len;
    }
    json_node_unref(node);
    return found;
}

/* Quit the VMM (cleanly: ASan findings make it non-zero), then compare `rbd export` with what was written. */
static void r_stop_and_verify(R *r)
{
    assert_int_equal(vd_qtest_quit(r->q), 0);
    g_autofree char *spec = g_strdup_printf("rbd/%s", r->image);
    g_autofree char *path = g_strdup_printf("/tmp/vd-rbd-export-%d", (int)getpid());
    unlink(path);
    const char *exp[] = { "rbd", "export", "--no-progress", spec, path, NULL };
    g_free(run_ok(exp));
    g_autofree char *data = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(path, &data, &len, NULL));
    unlink(path);
    assert_int_equal(len, IMG_SIZE);
    assert_memory_equal(data, r->expect, sizeof(r->expect));
    const char *rm[] = { "rbd", "rm", "--no-progress", spec, NULL };
    g_free(run_ok(rm));
    g_free(r->image);
    g_free(r->user);
    g_free(r->asok);
    g_free(r);
}

/* The client cache of each host cache mode, exactly as docs/cache-modes.md's "Ceph RBD" table says. */
static void test_cache_mode_table(void **state)
{
    static const struct {
        const char *mode, *rbd_cache;
    } table[] = {
        { "writeback", "true" }, { "writethrough", "true" }, { "unsafe", "true" },
        { "none", "false" }, { "directsync", "false" },
    };
    /* one VMM, one drive per mode: each drive is its own librados client with its own socket */
    g_autoptr(GString) args = g_string_new(NULL);
    g_autoptr(GPtrArray) images = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
        char *image = g_strdup_printf("table-%s-%d", table[i].mode, (int)getpid());
        g_ptr_array_add(images, image);
        g_autofree char *spec = g_strdup_printf("rbd/%s", image);
        const char *create[] = { "rbd", "create", "--size", "1M", spec, NULL };
        g_free(run_ok(create));
        g_string_append_printf(args, " --drive driver=rbd,pool=rbd,image=%s,user=vd-table-%s,cache=%s,if=none,id=d%zu",
                               image, table[i].mode, table[i].mode, i);
    }
    VdQtest *q = vd_qtest_start(args->str);
    g_autofree char *info = vd_qtest_ok(q, "info"); /* it answers once every drive is open */
    g_autofree char *dir = run_dir();
    for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
        g_autofree char *sock = g_strdup_printf("client.vd-table-%s.%d.asok", table[i].mode, (int)vd_qtest_pid(q));
        g_autofree char *asok = g_build_filename(dir, sock, NULL);
        g_autofree char *cache = client_setting(asok, "rbd_cache");
        g_autofree char *wtuf = client_setting(asok, "rbd_cache_writethrough_until_flush");
        assert_string_equal(cache, table[i].rbd_cache);
        assert_string_equal(wtuf, "false");
    }
    assert_int_equal(vd_qtest_quit(q), 0);
    for (guint i = 0; i < images->len; i++) {
        g_autofree char *spec = g_strdup_printf("rbd/%s", (char *)g_ptr_array_index(images, i));
        const char *rm[] = { "rbd", "rm", "--no-progress", spec, NULL };
        g_free(run_ok(rm));
    }
}

/* cache=writeback: cached writes make no librbd flush; a guest FLUSH is one rbd_aio_flush; data in Ceph. */
static void test_guest_flush_reaches_librbd(void **state)
{
    R *r = r_start("flush", "cache=writeback");
    assert_int_equal(vd_vblk_writeback(&r->b), 1);
    uint64_t flush0 = librbd_counter(r, "flush"), wr0 = librbd_counter(r, "wr");
    for (unsigned i = 0; i < 8; i++) {
        guest_write(r, i, 0x11);
    }
    assert_int_equal(librbd_counter(r, "wr") - wr0, 8);
    assert_int_equal(librbd_counter(r, "flush") - flush0, 0);
    assert_int_equal(vd_vblk_flush(&r->b), VBLK_S_OK);
    assert_int_equal(librbd_counter(r, "flush") - flush0, 1);
    /* nothing written since: the next flush is skipped by the generic layer */
    assert_int_equal(vd_vblk_flush(&r->b), VBLK_S_OK);
    assert_int_equal(librbd_counter(r, "flush") - flush0, 1);
    /* what the guest reads back is what Ceph has */
    uint8_t buf[BLK];
    assert_int_equal(vd_vblk_read(&r->b, 3 * (BLK / 512), buf, BLK), VBLK_S_OK);
    assert_memory_equal(buf, r->expect + 3 * BLK, BLK);
    r_stop_and_verify(r);
}

/*
 * With the guest cache off, five writes under cache_opt: each reaches librbd
 * as a write followed by per_write flushes before it completes.  Returns
 * the running VMM and the flush count before the writes.
 */
static R *wce_off_writes(const char *name, const char *cache_opt, unsigned per_write, uint64_t *flush0)
{
    R *r = r_start(name, cache_opt);
    assert_int_equal(vd_vblk_set_writeback(&r->b, 0), 0);
    *flush0 = librbd_counter(r, "flush");
    uint64_t wr0 = librbd_counter(r, "wr");
    for (unsigned i = 0; i < 5; i++) {
        guest_write(r, i, 0x22);
        assert_int_equal(librbd_counter(r, "flush") - *flush0, (i + 1) * per_write);
    }
    assert_int_equal(librbd_counter(r, "wr") - wr0, 5);
    return r;
}

/* cache=writeback, guest cache off: every write is followed by rbd_aio_flush before it completes. */
static void test_wce_off_writes_flushed(void **state)
{
    uint64_t flush0;
    r_stop_and_verify(wce_off_writes("wce0", "cache=writeback", 1, &flush0));
}

/* cache=none: no client cache, so writes are committed when they complete: WCE=0 needs no flush. */
static void test_none_writes_durable_without_flush(void **state)
{
    uint64_t flush0;
    R *r = wce_off_writes("none", "cache=none", 0, &flush0);
    /* with the guest cache on, a FLUSH after a write still reaches librbd */
    assert_int_equal(vd_vblk_set_writeback(&r->b, 1), 1);
    guest_write(r, 6, 0x34);
    assert_int_equal(vd_vblk_flush(&r->b), VBLK_S_OK);
    assert_int_equal(librbd_counter(r, "flush") - flush0, 1);
    r_stop_and_verify(r);
}

/* cache=unsafe: neither a guest FLUSH nor WCE=0 writes ever reach rbd_aio_flush. */
static void test_unsafe_never_flushes(void **state)
{
    R *r = r_start("unsafe", "cache=unsafe");
    uint64_t flush0 = librbd_counter(r, "flush");
    guest_write(r, 0, 0x44);
    assert_int_equal(vd_vblk_flush(&r->b), VBLK_S_OK);
    assert_int_equal(vd_vblk_set_writeback(&r->b, 0), 0);
    guest_write(r, 1, 0x45);
    assert_int_equal(librbd_counter(r, "flush") - flush0, 0);
    assert_int_equal(librbd_counter(r, "wr"), 2);
    r_stop_and_verify(r);
}

/* WRITE_ZEROES and DISCARD reach Ceph: the export shows zeroes where data was. */
static void test_zeroes_and_discard(void **state)
{
    R *r = r_start("zero", "cache=writeback,discard=unmap");
    for (unsigned i = 0; i < 6; i++) {
        guest_write(r, i, 0x55);
    }
    assert_int_equal(vd_vblk_dwz(&r->b, VBLK_T_WRITE_ZEROES, 1 * (BLK / 512), BLK / 512, 0), VBLK_S_OK);
    memset(r->expect + 1 * BLK, 0, BLK);
    assert_int_equal(vd_vblk_dwz(&r->b, VBLK_T_WRITE_ZEROES, 2 * (BLK / 512), BLK / 512, 1), VBLK_S_OK);
    memset(r->expect + 2 * BLK, 0, BLK);
    /* librbd may skip a small discard (rbd_discard_granularity_bytes); a whole 4 MiB object goes */
    for (unsigned i = OBJ / BLK; i < OBJ / BLK + 4; i++) {
        guest_write(r, i, 0x56);
    }
    assert_int_equal(vd_vblk_dwz(&r->b, VBLK_T_DISCARD, OBJ / 512, OBJ / 512, 0), VBLK_S_OK);
    memset(r->expect + OBJ, 0, OBJ);
    /* on blocks never written: without unmap the zeroes are allocated (thick), with unmap they need not be */
    assert_int_equal(vd_vblk_dwz(&r->b, VBLK_T_WRITE_ZEROES, 2 * OBJ / 512, BLK / 512, 0), VBLK_S_OK);
    assert_int_equal(vd_vblk_dwz(&r->b, VBLK_T_WRITE_ZEROES, 3 * OBJ / 512, BLK / 512, 1), VBLK_S_OK);
    assert_int_equal(vd_vblk_flush(&r->b), VBLK_S_OK);
    assert_true(librbd_counter(r, "discard") >= 1);
    assert_true(allocated(r, 2 * OBJ));
    assert_false(allocated(r, 3 * OBJ));
    r_stop_and_verify(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_mode_table),
        cmocka_unit_test(test_guest_flush_reaches_librbd),
        cmocka_unit_test(test_wce_off_writes_flushed),
        cmocka_unit_test(test_none_writes_durable_without_flush),
        cmocka_unit_test(test_unsafe_never_flushes),
        cmocka_unit_test(test_zeroes_and_discard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
