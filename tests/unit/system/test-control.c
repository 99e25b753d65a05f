/*
 * test-control.c - the QMP control socket, driven in-process over
 * socketpairs (and once over its unix socket): negotiation, framing, every
 * command with a good and a bad argument, events, several clients, and a
 * client that hangs up while its command runs.
 */
#include "system/control.h"

#include <json-glib/json-glib.h>

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#define DEADLINE_US (10 * G_USEC_PER_SEC)

typedef struct T {
    GMainContext *ctx;
    char *dir;
    VdBlockBackend *d0, *d1;    /* d0: a read-write image; d1: read-only, cache=unsafe */
    VdControlServer *s;
    int quits;
    int wce_changes;            /* d0's write-cache notifications */
    bool wce_last;
} T;

/* A test client: its end of a socketpair and what it has read but not consumed. */
typedef struct Client {
    int fd;
    GString *in;
} Client;

/* ops->quit */
static void on_quit(void *opaque)
{
    ((T *)opaque)->quits++;
}

static const VdControlOps ops = { .quit = on_quit };

/* d0's write-cache notifier: the devices' view of a change. */
static void on_wce(void *opaque, bool enabled)
{
    T *t = opaque;
    t->wce_changes++;
    t->wce_last = enabled;
}

/* Open the backend `opts` on a new 1 MiB image called name. */
static VdBlockBackend *open_image(T *t, const char *name, const char *opts)
{
    g_autofree char *path = g_build_filename(t->dir, name, NULL);
    g_autofree char *zero = g_malloc0(1 << 20);
    assert_true(g_file_set_contents(path, zero, 1 << 20, NULL));
    g_autofree char *spec = g_strdup_printf("file=%s,%s", path, opts);
    g_autoptr(GError) err = NULL;
    VdBlockBackend *blk = vd_blk_open(spec, t->ctx, &err);
    assert_non_null(blk);
    return blk;
}

/* Fixture: two drives known as d0 and d1, and a server without a socket. */
static int setup(void **state)
{
    T *t = g_new0(T, 1);
    t->ctx = g_main_context_new();
    g_main_context_push_thread_default(t->ctx);
    t->dir = g_dir_make_tmp("vdisk-control-XXXXXX", NULL);
    /* aio=threads: every completion comes through one source (the pool's eventfd) */
    t->d0 = open_image(t, "d0.img", "cache=writeback,aio=threads");
    t->d1 = open_image(t, "d1.img", "cache=unsafe,read-only=on,locking=off");
    vd_blk_add_write_cache_notifier(t->d0, on_wce, t);
    t->s = vd_control_new(t->ctx, &ops, t);
    vd_control_add_drive(t->s, "d0", t->d0);
    vd_control_add_drive(t->s, "d1", t->d1);
    *state = t;
    return 0;
}

/* Iterate until nothing is pending, so that closed clients are gone. */
static void settle(T *t)
{
    while (g_main_context_iteration(t->ctx, FALSE)) {
    }
}

static int teardown(void **state)
{
    T *t = *state;
    settle(t);
    vd_control_free(t->s);
    vd_blk_remove_write_cache_notifier(t->d0, on_wce, t);
    vd_blk_close(t->d0);
    vd_blk_close(t->d1);
    g_autofree char *p0 = g_build_filename(t->dir, "d0.img", NULL);
    g_autofree char *p1 = g_build_filename(t->dir, "d1.img", NULL);
    unlink(p0);
    unlink(p1);
    rmdir(t->dir);
    g_free(t->dir);
    g_main_context_pop_thread_default(t->ctx);
    g_main_context_unref(t->ctx);
    g_free(t);
    return 0;
}

/* One loop step for the server, then wait briefly for the client's socket. */
static void step(T *t, int fd)
{
    if (!g_main_context_iteration(t->ctx, FALSE)) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        poll(&p, 1, 5);
    }
}

/* Write all of text, letting the server read meanwhile. */
static void send_text(T *t, Client *c, const char *text)
{
    size_t len = strlen(text), done = 0;
    gint64 deadline = g_get_monotonic_time() + DEADLINE_US;
    while (done < len) {
        ssize_t n = send(c->fd, text + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            done += n;
        } else {
            assert_true(n < 0 && errno == EAGAIN);
            step(t, c->fd);
        }
        assert_true(g_get_monotonic_time() < deadline);
    }
}

/* Read one reply line (without the newline); NULL at end of stream. */
static char *recv_line(T *t, Client *c)
{
    gint64 deadline = g_get_monotonic_time() + DEADLINE_US;
    for (;;) {
        char *nl = memchr(c->in->str, '\n', c->in->len);
        if (nl) {
            char *line = g_strndup(c->in->str, nl - c->in->str);
            g_string_erase(c->in, 0, nl - c->in->str + 1);
            return line;
        }
        char buf[65536];
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0) {
            return NULL;
        }
        if (n > 0) {
            g_string_append_len(c->in, buf, n);
            continue;
        }
        step(t, c->fd);
        if (g_get_monotonic_time() > deadline) {
            fail_msg("no reply within 10 s");
        }
    }
}

/* Parse a reply line; it must be a JSON object. */
static JsonObject *parse_obj(const char *line)
{
    g_autoptr(JsonParser) p = json_parser_new();
    assert_true(json_parser_load_from_data(p, line, -1, NULL));
    JsonNode *root = json_parser_get_root(p);
    assert_true(JSON_NODE_HOLDS_OBJECT(root));
    return json_object_ref(json_node_get_object(root));
}

/* Read the next message as an object (unref it). */
static JsonObject *recv_obj(T *t, Client *c)
{
    g_autofree char *line = recv_line(t, c);
    assert_non_null(line);
    return parse_obj(line);
}

/* A new client on a socketpair; it reads the greeting and negotiates unless told not to. */
static Client *client_new(T *t, bool negotiate)
{
    Client *c = g_new0(Client, 1);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    c->fd = sv[0];
    c->in = g_string_new(NULL);
    vd_control_add_client(t->s, sv[1]);
    g_autoptr(JsonObject) greeting = recv_obj(t, c);
    JsonObject *qmp = json_object_get_object_member(greeting, "QMP");
    assert_non_null(qmp);
    JsonObject *ver = json_object_get_object_member(json_object_get_object_member(qmp, "version"), "qemu");
    assert_int_equal(json_object_get_int_member(ver, "major"), 0);
    assert_int_equal(json_object_get_int_member(ver, "minor"), 1);
    assert_int_equal(json_array_get_length(json_object_get_array_member(qmp, "capabilities")), 0);
    if (negotiate) {
        send_text(t, c, "{\"execute\": \"qmp_capabilities\"}\n");
        g_autoptr(JsonObject) r = recv_obj(t, c);
        assert_true(json_object_has_member(r, "return"));
    }
    return c;
}

static void client_free(Client *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    g_string_free(c->in, TRUE);
    g_free(c);
}

/* Send one request and return its reply (events before it are skipped). */
static JsonObject *call(T *t, Client *c, const char *req)
{
    send_text(t, c, req);
    send_text(t, c, "\n");
    for (;;) {
        JsonObject *r = recv_obj(t, c);
        if (!json_object_has_member(r, "event")) {
            return r;
        }
        json_object_unref(r);
    }
}

/* A request must fail with class cls and a desc containing desc. */
static void expect_error(T *t, Client *c, const char *req, const char *cls, const char *desc)
{
    g_autoptr(JsonObject) r = call(t, c, req);
    JsonObject *e = json_object_get_object_member(r, "error");
    if (!e || strcmp(json_object_get_string_member(e, "class"), cls) != 0 ||
        !strstr(json_object_get_string_member(e, "desc"), desc)) {
        g_autofree char *text = json_to_string(json_node_init_object(json_node_alloc(), r), FALSE);
        fail_msg("%s -> %s; expected %s with \"%s\"", req, text, cls, desc);
    }
}

/* A request must succeed; its "return" value (unref the node). */
static JsonNode *expect_return(T *t, Client *c, const char *req)
{
    g_autoptr(JsonObject) r = call(t, c, req);
    JsonNode *ret = json_object_get_member(r, "return");
    if (!ret) {
        g_autofree char *text = json_to_string(json_node_init_object(json_node_alloc(), r), FALSE);
        fail_msg("%s -> %s", req, text);
    }
    return json_node_copy(ret);
}

/* The "inserted" object of drive i in a query-block reply. */
static JsonObject *inserted(JsonNode *ret, guint i)
{
    JsonObject *info = json_array_get_object_element(json_node_get_array(ret), i);
    return json_object_get_object_member(info, "inserted");
}

/* Greeting, commands before negotiation, capabilities, id echo. */
static void test_negotiation(void **state)
{
    T *t = *state;
    Client *c = client_new(t, false);
    expect_error(t, c, "{\"execute\": \"query-block\"}", "CommandNotFound", "qmp_capabilities");
    expect_error(t, c, "{\"execute\": \"no-such\"}", "CommandNotFound", "qmp_capabilities");
    expect_error(t, c, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}",
                 "GenericError", "Capability 'oob' not available");
    expect_error(t, c, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": \"oob\"}}",
                 "GenericError", "Invalid parameter type for 'enable', expected: array of strings");
    g_autoptr(JsonObject) r = call(t, c, "{\"execute\": \"qmp_capabilities\", \"id\": {\"tag\": [1, \"x\"]}}");
    assert_non_null(json_object_get_object_member(r, "return"));
    g_autofree char *id = json_to_string(json_object_get_member(r, "id"), FALSE);
    assert_string_equal(id, "{\"tag\":[1,\"x\"]}");
    expect_error(t, c, "{\"execute\": \"qmp_capabilities\"}", "CommandNotFound", "already complete");
    /* output is ASCII, as QMP's: other characters are escaped (a surrogate pair above U+FFFF) */
    send_text(t, c, "{\"execute\": \"query-version\", \"id\": \"\xc3\xa9\xf0\x9f\x92\xbe\"}\n");
    g_autofree char *line = recv_line(t, c);
    assert_non_null(strstr(line, "\"id\":\"\\u00e9\\ud83d\\udcbe\""));
    g_autoptr(JsonObject) e = call(t, c, "{\"execute\": \"nope\", \"id\": 7}");
    assert_int_equal(json_object_get_int_member(e, "id"), 7);
    assert_string_equal(json_object_get_string_member(json_object_get_object_member(e, "error"), "class"),
                        "CommandNotFound");
    client_free(c);
}

/* Malformed input of every kind gets an error and the session goes on. */
static void test_framing(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    static const struct { const char *req, *desc; } bad[] = {
        { "{\"execute\": }", "JSON parse error" },
        { "}", "JSON parse error" },
        { "{\"execute\": \"q\xff\"}", "JSON parse error, JSON data must be UTF-8 encoded" },
        { "[1, 2]", "must be a JSON object" },
        { "42", "must be a JSON object" },
        { "\"a string\"", "must be a JSON object" },
        { "{}", "lacks member 'execute'" },
        { "{\"execute\": 1}", "'execute' must be a string" },
        { "{\"execute\": \"query-block\", \"arguments\": []}", "'arguments' must be an object" },
        { "{\"execute\": \"query-block\", \"exec-oob\": \"x\"}", "member 'exec-oob' is unexpected" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        expect_error(t, c, bad[i].req, "GenericError", bad[i].desc);
    }
    /* a value split across writes, two values in one write, no newline between them */
    send_text(t, c, "{\"execute\": \"query-");
    send_text(t, c, "version\", \"id\": 1}{\"execute\": \"query-version\", \"id\": \"}{\"}");
    /* escaped quotes and backslashes inside strings do not end them */
    send_text(t, c, "{\"execute\": \"query-version\", \"id\": \"a\\\"}b\"}{\"execute\": \"query-version\", "
                    "\"id\": \"c\\\\\"}\n");
    static const char *const ids[] = { "1", "\"}{\"", "\"a\\\"}b\"", "\"c\\\\\"" };
    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        g_autoptr(JsonObject) r = recv_obj(t, c);
        assert_non_null(json_object_get_object_member(r, "return"));
        g_autofree char *id = json_to_string(json_object_get_member(r, "id"), FALSE);
        assert_string_equal(id, ids[i]);
    }
    /* too deep, then too long: both skipped up to the next newline */
    g_autoptr(GString) deep = g_string_new("{\"execute\": \"query-version\", \"arguments\": ");
    for (int i = 0; i < 100; i++) {
        g_string_append(deep, "[");
    }
    expect_error(t, c, deep->str, "GenericError", "nesting deeper than");
    g_autoptr(GString) big = g_string_new("{\"execute\": \"");
    for (int i = 0; i < (1 << 20); i += 16) {
        g_string_append(big, "aaaaaaaaaaaaaaaa");
    }
    expect_error(t, c, big->str, "GenericError", "longer than 1 MiB");
    g_autoptr(JsonNode) v = expect_return(t, c, "{\"execute\": \"query-version\"}");
    client_free(c);
}

/* query-version and query-commands. */
static void test_query_version(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    g_autoptr(JsonNode) v = expect_return(t, c, "{\"execute\": \"query-version\"}");
    assert_string_equal(json_object_get_string_member(json_node_get_object(v), "package"), "vdisk-0.1.0");
    expect_error(t, c, "{\"execute\": \"query-version\", \"arguments\": {\"x\": 1}}", "GenericError",
                 "query-version: Parameter 'x' is unexpected");
    g_autoptr(JsonNode) cmds = expect_return(t, c, "{\"execute\": \"query-commands\"}");
    assert_true(json_array_get_length(json_node_get_array(cmds)) >= 10);
    expect_error(t, c, "{\"execute\": \"query-commands\", \"arguments\": {\"x\": 1}}", "GenericError",
                 "unexpected");
    client_free(c);
}

/* query-block: QEMU's members per drive. */
static void test_query_block(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    g_autoptr(JsonNode) r = expect_return(t, c, "{\"execute\": \"query-block\"}");
    assert_int_equal(json_array_get_length(json_node_get_array(r)), 2);
    JsonObject *info = json_array_get_object_element(json_node_get_array(r), 0);
    assert_string_equal(json_object_get_string_member(info, "device"), "d0");
    JsonObject *i0 = inserted(r, 0), *i1 = inserted(r, 1);
    assert_string_equal(json_object_get_string_member(i0, "drv"), "raw");
    assert_string_equal(json_object_get_string_member(i0, "x-vdisk-driver"), "file");
    assert_non_null(strstr(json_object_get_string_member(i0, "file"), "d0.img"));
    assert_false(json_object_get_boolean_member(i0, "ro"));
    assert_true(json_object_get_boolean_member(i0, "active"));
    JsonObject *cache0 = json_object_get_object_member(i0, "cache");
    assert_true(json_object_get_boolean_member(cache0, "writeback"));
    assert_false(json_object_get_boolean_member(cache0, "direct"));
    assert_false(json_object_get_boolean_member(cache0, "no-flush"));
    assert_string_equal(json_object_get_string_member(i0, "x-vdisk-cache-mode"), "writeback");
    assert_string_equal(json_object_get_string_member(i0, "x-vdisk-locking"), "auto");
    assert_true(json_object_get_boolean_member(i1, "ro"));
    assert_true(json_object_get_boolean_member(json_object_get_object_member(i1, "cache"), "no-flush"));
    assert_string_equal(json_object_get_string_member(i1, "x-vdisk-locking"), "off");
    assert_int_equal(json_object_get_int_member(json_object_get_object_member(i1, "image"), "virtual-size"),
                     1 << 20);
    expect_error(t, c, "{\"execute\": \"query-block\", \"arguments\": {\"device\": \"d0\"}}", "GenericError",
                 "Parameter 'device' is unexpected");
    client_free(c);
}

/* query-blockstats: the backend's counters. */
static void test_query_blockstats(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    char buf[512] = { 1 };
    assert_int_equal(vd_blk_pwrite_sync(t->d0, 0, buf, sizeof(buf), 0), 0);
    g_autoptr(JsonNode) r = expect_return(t, c, "{\"execute\": \"query-blockstats\"}");
    JsonObject *e = json_array_get_object_element(json_node_get_array(r), 0);
    assert_string_equal(json_object_get_string_member(e, "device"), "d0");
    JsonObject *st = json_object_get_object_member(e, "stats");
    assert_int_equal(json_object_get_int_member(st, "wr_operations"), 1);
    assert_int_equal(json_object_get_int_member(st, "wr_bytes"), 512);
    JsonObject *ours = json_object_get_object_member(st, "x-vdisk");
    assert_int_equal(json_object_get_int_member(ours, "writes"), 1);
    assert_int_equal(json_object_get_int_member(ours, "host_writes"), 1);
    assert_true(json_object_has_member(ours, "uring_ops"));
    /* QEMU's latency histograms: 23 boundaries (2 us to 2^23 us, in ns), 24 bins; the one write is in one bin. */
    static const char *const hists[] = { "rd_latency_histogram", "wr_latency_histogram", "flush_latency_histogram" };
    for (size_t i = 0; i < G_N_ELEMENTS(hists); i++) {
        JsonObject *h = json_object_get_object_member(st, hists[i]);
        assert_non_null(h);
        JsonArray *bounds = json_object_get_array_member(h, "boundaries"), *bins = json_object_get_array_member(h, "bins");
        assert_int_equal(json_array_get_length(bounds), 23);
        assert_int_equal(json_array_get_int_element(bounds, 0), 2000);
        assert_int_equal(json_array_get_int_element(bounds, 22), (gint64)1000 << 23);
        assert_int_equal(json_array_get_length(bins), 24);
        gint64 sum = 0;
        for (guint b = 0; b < 24; b++) {
            sum += json_array_get_int_element(bins, b);
        }
        assert_int_equal(sum, i == 1 ? 1 : 0);
    }
    expect_error(t, c, "{\"execute\": \"query-blockstats\", \"arguments\": {\"flat\": true}}", "GenericError",
                 "Parameter 'flat' is unexpected");
    client_free(c);
}

/* x-vdisk-set-write-cache: through the backend (devices notified), replying after the flush. */
static void test_set_write_cache(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    char buf[512] = { 1 };
    assert_int_equal(vd_blk_pwrite_sync(t->d0, 0, buf, sizeof(buf), 0), 0);
    g_autoptr(JsonNode) off = expect_return(t, c, "{\"execute\": \"x-vdisk-set-write-cache\", "
                                                  "\"arguments\": {\"device\": \"d0\", \"enable\": false}}");
    assert_false(vd_blk_write_cache(t->d0));
    assert_int_equal(t->wce_changes, 1);
    assert_false(t->wce_last);
    VdBlockStats st;
    vd_blk_get_stats(t->d0, &st);
    assert_int_equal(st.host_fdatasync, 1); /* the reply came after the flush */
    g_autoptr(JsonNode) on = expect_return(t, c, "{\"execute\": \"x-vdisk-set-write-cache\", "
                                                 "\"arguments\": {\"device\": \"d0\", \"enable\": true}}");
    assert_true(vd_blk_write_cache(t->d0));
    assert_true(t->wce_last);
    expect_error(t, c, "{\"execute\": \"x-vdisk-set-write-cache\", \"arguments\": {\"device\": \"d9\", "
                       "\"enable\": true}}", "DeviceNotFound", "Device 'd9' not found");
    expect_error(t, c, "{\"execute\": \"x-vdisk-set-write-cache\", \"arguments\": {\"device\": \"d0\"}}",
                 "GenericError", "Parameter 'enable' is missing");
    expect_error(t, c, "{\"execute\": \"x-vdisk-set-write-cache\", \"arguments\": {\"device\": \"d0\", "
                       "\"enable\": \"yes\"}}", "GenericError", "Invalid parameter type for 'enable', expected: boolean");
    expect_error(t, c, "{\"execute\": \"x-vdisk-set-write-cache\", \"arguments\": {\"device\": 0, "
                       "\"enable\": true}}", "GenericError", "Invalid parameter type for 'device', expected: string");
    /* a failed flush is the command's error; the cache is off all the same */
    assert_int_equal(vd_blk_pwrite_sync(t->d0, 0, buf, sizeof(buf), 0), 0);
    vd_blk_inject_error(t->d0, VD_FAULT_FLUSH, EIO, 1);
    expect_error(t, c, "{\"execute\": \"x-vdisk-set-write-cache\", \"arguments\": {\"device\": \"d0\", "
                       "\"enable\": false}}", "GenericError", "flushing the data it held failed");
    assert_false(vd_blk_write_cache(t->d0));
    client_free(c);
}

/* blockdev-set-active / block-set-active: inactivate and activate, by name or all. */
static void test_set_active(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    g_autoptr(JsonNode) a = expect_return(t, c, "{\"execute\": \"blockdev-set-active\", "
                                                "\"arguments\": {\"node-name\": \"d0\", \"active\": false}}");
    assert_false(vd_blk_is_active(t->d0));
    assert_true(vd_blk_is_active(t->d1));
    char buf[512] = { 0 };
    assert_int_equal(vd_blk_pwrite_sync(t->d0, 0, buf, sizeof(buf), 0), -EPERM);
    g_autoptr(JsonNode) q = expect_return(t, c, "{\"execute\": \"query-block\"}");
    assert_false(json_object_get_boolean_member(inserted(q, 0), "active"));
    g_autoptr(JsonNode) b = expect_return(t, c, "{\"execute\": \"block-set-active\", "
                                                "\"arguments\": {\"device\": \"d0\", \"active\": true}}");
    assert_true(vd_blk_is_active(t->d0));
    g_autoptr(JsonNode) all = expect_return(t, c, "{\"execute\": \"blockdev-set-active\", "
                                                  "\"arguments\": {\"active\": false}}");
    assert_false(vd_blk_is_active(t->d0));
    assert_false(vd_blk_is_active(t->d1));
    g_autoptr(JsonNode) back = expect_return(t, c, "{\"execute\": \"blockdev-set-active\", "
                                                   "\"arguments\": {\"active\": true}}");
    assert_true(vd_blk_is_active(t->d0) && vd_blk_is_active(t->d1));
    expect_error(t, c, "{\"execute\": \"blockdev-set-active\", \"arguments\": {\"node-name\": \"x\", "
                       "\"active\": true}}", "GenericError", "Failed to find node with node-name='x'");
    expect_error(t, c, "{\"execute\": \"block-set-active\", \"arguments\": {\"device\": \"x\", \"active\": true}}",
                 "DeviceNotFound", "Device 'x' not found");
    expect_error(t, c, "{\"execute\": \"block-set-active\", \"arguments\": {\"device\": \"d0\", "
                       "\"node-name\": \"d0\", \"active\": true}}", "GenericError", "mutually exclusive");
    expect_error(t, c, "{\"execute\": \"blockdev-set-active\", \"arguments\": {\"node-name\": \"d0\"}}",
                 "GenericError", "Parameter 'active' is missing");
    /* a failed inactivate (the flush fails) is reported and the drive stays active */
    assert_int_equal(vd_blk_pwrite_sync(t->d0, 0, buf, sizeof(buf), 0), 0);
    vd_blk_inject_error(t->d0, VD_FAULT_FLUSH, EIO, 1);
    expect_error(t, c, "{\"execute\": \"blockdev-set-active\", \"arguments\": {\"node-name\": \"d0\", "
                       "\"active\": false}}", "GenericError", "d0: ");
    assert_true(vd_blk_is_active(t->d0));
    client_free(c);
}

/*
 * A command that iterates the loop (inactivate drains and flushes) right
 * after an asynchronous one: it must not start inside the backend's
 * completion callback, whose source would then be blocked while it waits.
 */
static void test_set_active_after_async(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    char buf[512] = { 1 };
    assert_int_equal(vd_blk_pwrite_sync(t->d0, 0, buf, sizeof(buf), 0), 0);
    send_text(t, c, "{\"execute\": \"x-vdisk-set-write-cache\", \"arguments\": {\"device\": \"d0\", "
                    "\"enable\": false}, \"id\": 1}\n"
                    "{\"execute\": \"blockdev-set-active\", \"arguments\": {\"active\": false}, \"id\": 2}\n"
                    "{\"execute\": \"query-block\", \"id\": 3}\n");
    for (gint64 id = 1; id <= 3; id++) {
        g_autoptr(JsonObject) r = recv_obj(t, c);
        assert_int_equal(json_object_get_int_member(r, "id"), id); /* in order */
        assert_true(json_object_has_member(r, "return"));
    }
    assert_false(vd_blk_is_active(t->d0));
    client_free(c);
}

/*
 * Handlers never nest: while A's inactivate waits for its flush (iterating
 * the loop), B's activate, already readable, must wait for A to return.
 * Nested, it would run inside A and A would then leave the drive inactive.
 */
static void test_handlers_never_nest(void **state)
{
    T *t = *state;
    Client *a = client_new(t, true), *b = client_new(t, true);
    char buf[512] = { 1 };
    assert_int_equal(vd_blk_pwrite_sync(t->d0, 0, buf, sizeof(buf), 0), 0); /* the flush has work to do */
    const char *off = "{\"execute\": \"blockdev-set-active\", \"arguments\": {\"node-name\": \"d0\", "
                      "\"active\": false}}\n";
    const char *on = "{\"execute\": \"blockdev-set-active\", \"arguments\": {\"node-name\": \"d0\", "
                     "\"active\": true}}\n";
    assert_int_equal(send(a->fd, off, strlen(off), 0), (ssize_t)strlen(off));
    assert_int_equal(send(b->fd, on, strlen(on), 0), (ssize_t)strlen(on));
    g_autoptr(JsonObject) ra = recv_obj(t, a);
    g_autoptr(JsonObject) rb = recv_obj(t, b);
    assert_true(json_object_has_member(ra, "return"));
    assert_true(json_object_has_member(rb, "return"));
    assert_true(vd_blk_is_active(t->d0)); /* B ran after A */
    client_free(a);
    client_free(b);
}

/* A guest write's completion: how many ran and the last result. */
typedef struct Done {
    int calls, ret;
} Done;

/* VdBlockCompletionFunc recording into a Done. */
static void on_done(void *opaque, int ret)
{
    Done *d = opaque;
    d->calls++;
    d->ret = ret;
}

/* The next message must be the event named name; returns it (unref it). */
static JsonObject *expect_event(T *t, Client *c, const char *name)
{
    JsonObject *ev = recv_obj(t, c);
    const char *got = json_object_has_member(ev, "event") ? json_object_get_string_member(ev, "event") : "(reply)";
    if (strcmp(got, name) != 0) {
        fail_msg("expected event %s, got %s", name, got);
    }
    return ev;
}

/* Iterate the loop for a while so that anything that would complete does. */
static void spin(T *t)
{
    gint64 until = g_get_monotonic_time() + G_USEC_PER_SEC / 5;
    while (g_get_monotonic_time() < until) {
        g_main_context_iteration(t->ctx, FALSE);
        g_usleep(1000);
    }
}

/* Iterate the loop until d's request completes; fail after DEADLINE_US. */
static void wait_done(T *t, const Done *d)
{
    gint64 deadline = g_get_monotonic_time() + DEADLINE_US;
    while (!d->calls) {
        if (!g_main_context_iteration(t->ctx, FALSE)) {
            g_usleep(1000);
        }
        if (g_get_monotonic_time() > deadline) {
            fail_msg("the write did not complete within 10 s");
        }
    }
}

/* stop stops every drive and announces STOP once; a write then waits; cont releases it and announces RESUME. */
static void test_stop_cont(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    expect_error(t, c, "{\"execute\": \"stop\", \"arguments\": {\"now\": true}}", "GenericError",
                 "Parameter 'now' is unexpected");
    g_autoptr(JsonNode) r1 = expect_return(t, c, "{\"execute\": \"stop\"}");
    g_autoptr(JsonObject) stop = expect_event(t, c, "STOP");
    assert_true(vd_blk_is_stopped(t->d0));
    assert_true(vd_blk_is_stopped(t->d1));
    static uint8_t buf[4096];
    static struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
    static Done done; /* static: a failed assertion leaves the write to complete in teardown */
    done = (Done){ 0 };
    vd_blk_pwritev(t->d0, 0, &iov, 1, 0, on_done, &done);
    spin(t);
    assert_int_equal(done.calls, 0);
    assert_int_equal(vd_blk_parked(t->d0), 1);
    /* already stopped: the reply and no STOP, so cont's reply comes next */
    send_text(t, c, "{\"execute\": \"stop\"}\n{\"execute\": \"cont\"}\n");
    g_autoptr(JsonObject) r2 = recv_obj(t, c);
    assert_true(json_object_has_member(r2, "return"));
    g_autoptr(JsonObject) r3 = recv_obj(t, c);
    assert_true(json_object_has_member(r3, "return"));
    g_autoptr(JsonObject) resume = expect_event(t, c, "RESUME");
    assert_false(vd_blk_is_stopped(t->d0));
    assert_false(vd_blk_is_stopped(t->d1));
    wait_done(t, &done);
    assert_int_equal(done.ret, 0);
    client_free(c);
}

/* A backend that stops by itself (werror=enospc, ENOSPC): BLOCK_IO_ERROR with action stop, then STOP; cont retries. */
static void test_stop_on_error(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    vd_blk_inject_error(t->d0, VD_FAULT_WRITE, ENOSPC, 1);
    static uint8_t buf[4096];
    static struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
    static Done done; /* static: a failed assertion leaves the write to complete in teardown */
    done = (Done){ 0 };
    vd_blk_pwritev(t->d0, 0, &iov, 1, 0, on_done, &done);
    g_autoptr(JsonObject) ev = expect_event(t, c, "BLOCK_IO_ERROR");
    JsonObject *data = json_object_get_object_member(ev, "data");
    assert_string_equal(json_object_get_string_member(data, "device"), "d0");
    assert_string_equal(json_object_get_string_member(data, "operation"), "write");
    assert_string_equal(json_object_get_string_member(data, "action"), "stop");
    assert_true(json_object_get_boolean_member(data, "nospace"));
    g_autoptr(JsonObject) stop = expect_event(t, c, "STOP");
    assert_true(vd_blk_is_stopped(t->d0));
    assert_int_equal(done.calls, 0);
    g_autoptr(JsonNode) r = expect_return(t, c, "{\"execute\": \"cont\"}");
    g_autoptr(JsonObject) resume = expect_event(t, c, "RESUME");
    wait_done(t, &done);
    assert_int_equal(done.ret, 0); /* the injected error was one-shot: the retry succeeds */
    client_free(c);
}

/* quit: the reply, then SHUTDOWN to every negotiated client, then the owner's quit. */
static void test_quit(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true), *other = client_new(t, true), *raw = client_new(t, false);
    expect_error(t, c, "{\"execute\": \"quit\", \"arguments\": {\"force\": true}}", "GenericError",
                 "Parameter 'force' is unexpected");
    assert_int_equal(t->quits, 0);
    send_text(t, c, "{\"execute\": \"quit\"}\n");
    g_autoptr(JsonObject) r = recv_obj(t, c);
    assert_true(json_object_has_member(r, "return"));
    g_autoptr(JsonObject) ev = recv_obj(t, c);
    assert_string_equal(json_object_get_string_member(ev, "event"), "SHUTDOWN");
    g_autoptr(JsonObject) ev2 = recv_obj(t, other);
    assert_string_equal(json_object_get_string_member(ev2, "event"), "SHUTDOWN");
    JsonObject *ts = json_object_get_object_member(ev2, "timestamp");
    assert_true(json_object_get_int_member(ts, "seconds") > 1600000000);
    assert_true(json_object_get_int_member(ts, "microseconds") < 1000000);
    assert_int_equal(t->quits, 1);
    /* the client still negotiating gets no event */
    settle(t);
    char b;
    assert_int_equal(recv(raw->fd, &b, 1, MSG_DONTWAIT), -1);
    client_free(c);
    client_free(other);
    client_free(raw);
}

/* BLOCK_IO_ERROR: the hook devices call, with QEMU's data members. */
static void test_block_io_error_event(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    vd_control_block_io_error(t->s, "d0", true, ENOSPC, "report");
    g_autoptr(JsonObject) ev = recv_obj(t, c);
    assert_string_equal(json_object_get_string_member(ev, "event"), "BLOCK_IO_ERROR");
    JsonObject *data = json_object_get_object_member(ev, "data");
    assert_string_equal(json_object_get_string_member(data, "device"), "d0");
    assert_string_equal(json_object_get_string_member(data, "operation"), "write");
    assert_string_equal(json_object_get_string_member(data, "action"), "report");
    assert_true(json_object_get_boolean_member(data, "nospace"));
    client_free(c);
}

/* Several clients at once, each with its own negotiation state. */
static void test_several_clients(void **state)
{
    T *t = *state;
    Client *a = client_new(t, true), *b = client_new(t, false);
    assert_int_equal(vd_control_num_clients(t->s), 2);
    expect_error(t, b, "{\"execute\": \"query-version\"}", "CommandNotFound", "qmp_capabilities");
    g_autoptr(JsonNode) v = expect_return(t, a, "{\"execute\": \"query-version\"}");
    client_free(a);
    settle(t);
    assert_int_equal(vd_control_num_clients(t->s), 1);
    expect_error(t, b, "{\"execute\": \"query-version\"}", "CommandNotFound", "qmp_capabilities");
    client_free(b);
    settle(t);
    assert_int_equal(vd_control_num_clients(t->s), 0);
}

/* A client that hangs up mid-command: the command completes, its reply is dropped, nothing leaks. */
static void test_disconnect_mid_command(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    char buf[512] = { 1 };
    assert_int_equal(vd_blk_pwrite_sync(t->d0, 0, buf, sizeof(buf), 0), 0);
    send_text(t, c, "{\"execute\": \"x-vdisk-set-write-cache\", \"arguments\": {\"device\": \"d0\", "
                    "\"enable\": false}}\n{\"execute\": \"query-block\"}\n");
    /* run until the server has read the request and the backend is flushing, then hang up */
    gint64 deadline = g_get_monotonic_time() + DEADLINE_US;
    while (vd_blk_write_cache(t->d0)) {
        step(t, c->fd);
        assert_true(g_get_monotonic_time() < deadline);
    }
    assert_true(vd_blk_in_flight(t->d0) > 0); /* the flush has not completed yet */
    close(c->fd);
    c->fd = -1;
    while (vd_control_num_clients(t->s) || vd_blk_in_flight(t->d0)) {
        g_main_context_iteration(t->ctx, TRUE);
    }
    settle(t);
    VdBlockStats st;
    vd_blk_get_stats(t->d0, &st);
    assert_int_equal(st.host_fdatasync, 1); /* the command finished */
    client_free(c);
}

/* A client that shuts down its sending side still gets every reply, then end of stream. */
static void test_half_close(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    send_text(t, c, "{\"execute\": \"query-version\", \"id\": 1}\n{\"execute\": \"x-vdisk-set-write-cache\", "
                    "\"arguments\": {\"device\": \"d0\", \"enable\": false}, \"id\": 2}\n"
                    "{\"execute\": \"query-block\", \"id\": 3}");
    shutdown(c->fd, SHUT_WR);
    for (gint64 id = 1; id <= 3; id++) {
        g_autoptr(JsonObject) r = recv_obj(t, c);
        assert_int_equal(json_object_get_int_member(r, "id"), id);
    }
    g_autofree char *end = recv_line(t, c);
    assert_null(end);
    client_free(c);
}

/* A client that stops reading, then hangs up with replies still queued: dropped cleanly. */
static void test_hangup_with_output_queued(void **state)
{
    T *t = *state;
    Client *c = client_new(t, true);
    g_autoptr(GString) many = g_string_new(NULL);
    for (int i = 0; i < 2000; i++) {
        g_string_append(many, "{\"execute\": \"query-blockstats\"}\n"); /* ~2 MB of replies */
    }
    send_text(t, c, many->str);
    shutdown(c->fd, SHUT_WR);
    settle(t);
    assert_int_equal(vd_control_num_clients(t->s), 1); /* still sending what the socket takes */
    close(c->fd);
    c->fd = -1;
    gint64 deadline = g_get_monotonic_time() + DEADLINE_US;
    while (vd_control_num_clients(t->s)) {
        g_main_context_iteration(t->ctx, FALSE);
        assert_true(g_get_monotonic_time() < deadline);
    }
    client_free(c);
}

/* The unix socket transport, and --control argument checks. */
static void test_unix_socket(void **state)
{
    T *t = *state;
    g_autofree char *path = g_build_filename(t->dir, "qmp.sock", NULL);
    g_autofree char *spec = g_strdup_printf("unix:%s,server,wait=off", path);
    assert_true(vd_control_listen(t->s, spec, NULL));
    Client c = { .fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), .in = g_string_new(NULL) };
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    assert_int_equal(connect(c.fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    g_autoptr(JsonObject) greeting = recv_obj(t, &c);
    assert_true(json_object_has_member(greeting, "QMP"));
    g_autoptr(JsonObject) r = call(t, &c, "{\"execute\": \"qmp_capabilities\"}");
    assert_true(json_object_has_member(r, "return"));
    close(c.fd);
    g_string_free(c.in, TRUE);
    static const struct { const char *spec, *msg; } bad[] = {
        { "tcp:1234", "expected unix:PATH" },
        { "unix:", "must be non-empty" },
        { "unix:/x,wait=on", "unknown flag 'wait=on'" },
        { "unix:/x,server,bogus", "unknown flag 'bogus'" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        assert_false(vd_control_spec_valid(bad[i].spec, &err));
        assert_non_null(strstr(err->message, bad[i].msg));
    }
    settle(t);
    vd_control_free(t->s); /* removes the socket file */
    t->s = vd_control_new(t->ctx, &ops, t);
    assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_negotiation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_blockstats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_write_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_active_after_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handlers_never_nest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_cont, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_on_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_io_error_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_mid_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hangup_with_output_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
