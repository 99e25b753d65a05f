/* qcow2-test-util.h - qemu-img helpers shared by the qcow2 tests (they skip where qemu-img is missing). */
#ifndef VD_QCOW2_TEST_UTIL_H
#define VD_QCOW2_TEST_UTIL_H

#include "block-test-util.h"

#include <stdio.h>

/* Exit status of a command (argv NULL-terminated); its output goes to the test's stderr on failure. */
static inline int run_status(const char *const *argv)
{
    g_autofree char *out = NULL, *err = NULL;
    int status = 0;
    g_autoptr(GError) gerr = NULL;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &gerr)) {
        fail_msg("%s: %s", argv[0], gerr->message);
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code) {
        fprintf(stderr, "%s %s: exit %d\n%s%s", argv[0], argv[1], code, out, err);
    }
    return code;
}

/* True if qemu-img can be run. */
static inline bool have_qemu_img(void)
{
    g_autofree char *p = g_find_program_in_path("qemu-img");
    return p != NULL;
}

/* qemu-img create -f qcow2 -o cluster_size=CS,compat=COMPAT PATH SIZE. */
static inline void qimg_create(const char *path, const char *cluster_size, const char *compat, const char *size)
{
    g_autofree char *o = g_strdup_printf("cluster_size=%s,compat=%s", cluster_size, compat);
    const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", o, path, size, NULL };
    assert_int_equal(run_status(argv), 0);
}

/* qemu-img check PATH: 0 clean, 2 corrupt, 3 leaks. */
static inline int qimg_check(const char *path)
{
    const char *argv[] = { "qemu-img", "check", "-q", "-f", "qcow2", path, NULL };
    return run_status(argv);
}

/* qemu-img compare of the qcow2 image against a raw reference: 0 if equal. */
static inline int qimg_compare(const char *img, const char *raw)
{
    const char *argv[] = { "qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", img, raw, NULL };
    return run_status(argv);
}

/* Write len bytes of buf to a new file at path. */
static inline void write_file(const char *path, const void *buf, size_t len)
{
    g_autoptr(GError) err = NULL;
    if (!g_file_set_contents(path, buf, len, &err)) {
        fail_msg("%s: %s", path, err->message);
    }
}

#endif
