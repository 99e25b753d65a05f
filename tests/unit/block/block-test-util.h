/* block-test-util.h - helpers shared by the block layer's cmocka tests. */
#ifndef VD_BLOCK_TEST_UTIL_H
#define VD_BLOCK_TEST_UTIL_H

#include "block/block-backend.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <sys/uio.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* Records how often and with what result a completion callback ran. */
typedef struct Completion {
    int calls;
    int ret;
} Completion;

static inline void completion_cb(void *opaque, int ret)
{
    Completion *c = opaque;
    c->calls++;
    c->ret = ret;
}

/* Iterate the default context until c has completed (fails the test after 10 s). */
static inline void wait_completion(Completion *c)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (c->calls == 0) {
        assert_true(g_get_monotonic_time() < deadline);
        g_main_context_iteration(NULL, FALSE);
        g_usleep(100);
    }
}

/* Let pending completions run without waiting for any in particular. */
static inline void settle(void)
{
    for (int i = 0; i < 50; i++) {
        g_usleep(200);
        while (g_main_context_iteration(NULL, FALSE)) {
        }
    }
}

/* True unless fd's file system refuses preadv2(RWF_NOWAIT) whatever its page cache holds (tmpfs: EOPNOTSUPP). */
static inline bool fd_answers_nowait(int fd)
{
    static uint8_t probe[4096];
    struct iovec iov = { probe, sizeof(probe) };
    return preadv2(fd, &iov, 1, 0, RWF_NOWAIT) >= 0 || errno != EOPNOTSUPP;
}

/* True unless the file at path refuses preadv2(RWF_NOWAIT) (see fd_answers_nowait). */
static inline bool path_answers_nowait(const char *path)
{
    int fd = open(path, O_RDONLY);
    bool ok = fd < 0 || fd_answers_nowait(fd);
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static inline VdBlockStats stats_of(VdBlockBackend *blk)
{
    VdBlockStats s;
    vd_blk_get_stats(blk, &s);
    return s;
}

static inline VdBlockBackend *open_ok(const char *opts)
{
    GError *err = NULL;
    VdBlockBackend *blk = vd_blk_open(opts, NULL, &err);
    if (!blk) {
        fail_msg("open '%s': %s", opts, err->message);
    }
    return blk;
}

/* A scratch image of `size` zero bytes called `name` in a new temporary folder. */
typedef struct TempImage {
    char *dir, *path;
} TempImage;

static inline void temp_image_create(TempImage *t, const char *name, off_t size)
{
    t->dir = g_dir_make_tmp("vdisk-test-XXXXXX", NULL);
    assert_non_null(t->dir);
    t->path = g_build_filename(t->dir, name, NULL);
    int fd = open(t->path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
}

static inline void temp_image_remove(TempImage *t)
{
    unlink(t->path);
    rmdir(t->dir);
    g_free(t->path);
    g_free(t->dir);
}

#endif
