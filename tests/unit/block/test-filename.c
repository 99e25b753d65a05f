/*
 * test-filename.c - QEMU's protocol filenames (block/filename-spelling.c):
 * file=rbd:POOL/IMAGE[@SNAP][:conf=..][:id=..] and file=nbd:unix:PATH /
 * nbd:HOST:PORT[:exportname=..] / nbd://... become exactly the driver's own
 * options; every malformed one fails with one line naming what is wrong.
 * No Ceph and no NBD server needed: only the option parser runs (and the rbd
 * driver's open-time checks, which come before librbd is loaded).
 */
#include "block-test-util.h"
#include "block-internal.h"

#include <string.h>

/* One accepted spelling: the options it must become (NULL-terminated key, value pairs). */
typedef struct Row {
    const char *opts;
    const char *driver;
    const char *const expect[16];
} Row;

static const Row good[] = {
#ifdef VD_HAVE_RBD
    { "file=rbd:mypool/disk1", "rbd", { "pool", "mypool", "image", "disk1", NULL } },
    { "file=rbd:mypool/disk1:id=admin:conf=/etc/ceph/ceph.conf", "rbd",
      { "pool", "mypool", "image", "disk1", "user", "admin", "conf", "/etc/ceph/ceph.conf", NULL } },
    { "file=rbd:p/img@snap1,read-only=on", "rbd", { "pool", "p", "image", "img", "snapshot", "snap1", NULL } },
    { "file=rbd:p/img@s:conf=/c", "rbd", { "pool", "p", "image", "img", "snapshot", "s", "conf", "/c", NULL } },
    /* QEMU's escapes: \: \@ \/ and \\ are literal characters. */
    { "file=rbd:p\\/q/a\\:b\\@c:conf=/x\\:y", "rbd", { "pool", "p/q", "image", "a:b@c", "conf", "/x:y", NULL } },
    { "file=rbd:p/i:conf=/etc/ceph/a\\\\b", "rbd", { "pool", "p", "image", "i", "conf", "/etc/ceph/a\\b", NULL } },
    { "driver=rbd,file=rbd:p/i", "rbd", { "pool", "p", "image", "i", NULL } },
    /* ",," is the option string's comma, then the filename is parsed. */
    { "file=rbd:p/i,,x", "rbd", { "pool", "p", "image", "i,x", NULL } },
#endif
    { "file=nbd:unix:/run/nbd.sock", "nbd", { "server.type", "unix", "server.path", "/run/nbd.sock", NULL } },
    { "file=nbd:unix:/tmp/s:exportname=vm1", "nbd",
      { "server.type", "unix", "server.path", "/tmp/s", "export", "vm1", NULL } },
    { "file=nbd:localhost:10809", "nbd",
      { "server.type", "inet", "server.host", "localhost", "server.port", "10809", NULL } },
    { "file=nbd:10.0.0.2:1234:exportname=", "nbd",
      { "server.type", "inet", "server.host", "10.0.0.2", "server.port", "1234", "export", "", NULL } },
    { "file=nbd:[::1]:10809:exportname=a:b", "nbd",
      { "server.type", "inet", "server.host", "::1", "server.port", "10809", "export", "a:b", NULL } },
    { "file=nbd://host:1234/exp", "nbd", { "uri", "nbd://host:1234/exp", NULL } },
    { "file=nbd+unix:///e?socket=/s", "nbd", { "uri", "nbd+unix:///e?socket=/s", NULL } },
    { "file=nbds://h/e", "nbd", { "uri", "nbds://h/e", NULL } },
    { "driver=nbd,file=nbd:h:1", "nbd", { "server.type", "inet", "server.host", "h", "server.port", "1", NULL } },
};

/* Each spelling becomes its driver and exactly its options; file= is gone. */
static void test_translated(void **state)
{
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        VdBlockOptions o;
        g_autoptr(GError) err = NULL;
        if (!vd_block_options_parse(good[i].opts, &o, &err)) {
            fail_msg("%s: %s", good[i].opts, err->message);
        }
        assert_string_equal(o.driver->name, good[i].driver);
        assert_null(o.file);
        VdDriverOpenOptions d = { .driver_opts = o.driver_opts };
        size_t n = 0;
        for (const char *const *e = good[i].expect; *e; e += 2, n++) {
            const char *v = vd_drv_opt(&d, e[0]);
            if (!v || strcmp(v, e[1]) != 0) {
                fail_msg("%s: %s='%s', expected '%s'", good[i].opts, e[0], v ? v : "(none)", e[1]);
            }
        }
        assert_int_equal(o.driver_opts ? o.driver_opts->len : 0, n);
        vd_block_options_clear(&o);
    }
}

/* Another driver= keeps file= a path: driver=file,file=rbd:x names a local file. */
static void test_other_driver_keeps_path(void **state)
{
    VdBlockOptions o;
    g_autoptr(GError) err = NULL;
    assert_true(vd_block_options_parse("driver=file,file=nbd:unix:/x", &o, &err));
    assert_string_equal(o.driver->name, "file");
    assert_string_equal(o.file, "nbd:unix:/x");
    vd_block_options_clear(&o);
}

/* Every malformed filename: one line that names the part that is wrong. */
static void test_malformed(void **state)
{
    static const struct {
        const char *opts;
        const char *msg;
    } bad[] = {
#ifdef VD_HAVE_RBD
        { "file=rbd:", "no pool: a '/' must follow the pool name" },
        { "file=rbd:pool", "no pool: a '/' must follow the pool name" },
        { "file=rbd:/img", "the pool name is empty" },
        { "file=rbd:pool/", "the image name is empty" },
        { "file=rbd:pool/:conf=/c", "the image name is empty" },
        { "file=rbd:pool/@snap", "the image name is empty" },
        { "file=rbd:pool/img@", "the snapshot name after '@' is empty" },
        { "file=rbd:pool/img@:id=a", "the snapshot name after '@' is empty" },
        { "file=rbd:pool/img@a@b", "more than one '@'" },
        { "file=rbd:pool/ns/img", "RBD namespaces (POOL/NAMESPACE/IMAGE) are not supported" },
        { "file=rbd:pool/img:conf", "option 'conf' has no value (KEY=VALUE)" },
        { "file=rbd:pool/img:mon_host=1.2.3.4", "unknown option 'mon_host'; accepted options: conf, id" },
        { "file=rbd:pool/img:id=a:id=b", "option 'id' is given twice" },
        { "file=rbd:pool/img,pool=other", "file=rbd:pool/img already sets pool; give it without pool=" },
        { "file=rbd:pool/img@s", "rbd: snapshot=s cannot be written: open it with read-only=on" },
        { "file=rbd:pool/img,format=qcow2", "an asynchronous driver (nbd, rbd) cannot sit under another driver" },
#endif
        { "file=nbd:", "'' is not HOST:PORT or unix:PATH" },
        { "file=nbd:host", "'host' is not HOST:PORT or unix:PATH" },
        { "file=nbd:unix:", "nbd:unix: needs a socket path" },
        { "file=nbd::10809", "the host name is empty" },
        { "file=nbd:host:", "invalid port ''; expected a number from 1 to 65535" },
        { "file=nbd:host:0", "invalid port '0'" },
        { "file=nbd:host:65536", "invalid port '65536'" },
        { "file=nbd:host:http", "invalid port 'http'" },
        { "file=nbd:[::1", "'[::1' is not HOST:PORT or unix:PATH" },
        { "file=nbd:[::1]10809", "is not HOST:PORT or unix:PATH" },
        { "file=nbd:unix:/s:exportname=x,export=y", "already sets export; give it without export=" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        VdBlockBackend *blk = vd_blk_open(bad[i].opts, NULL, &err);
        if (blk || !err || !strstr(err->message, bad[i].msg) || strchr(err->message, '\n')) {
            fail_msg("%s: got '%s', expected '%s'", bad[i].opts, err ? err->message : "(opened)", bad[i].msg);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translated),
        cmocka_unit_test(test_other_driver_keeps_path),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests_name("block-filename", tests, NULL, NULL);
}
