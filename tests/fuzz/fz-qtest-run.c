/* fz-qtest-run.c - one qtest session in-process through a pipe (fz-qtest-run.h). */
#include "fz-qtest-run.h"
#include "fuzz-common.h"
#include "system/qtest.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* fz_wait condition: the server read end of file and ran every line. */
static bool server_done(void *opaque)
{
    return vd_qtest_server_done(opaque);
}

void fz_qtest_run(VdMachine *m, int out_fd, const uint8_t *data, size_t size)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        fz_fail("pipe: %s", g_strerror(errno));
    }
    if (size && write(p[1], data, size) != (ssize_t)size) {
        fz_fail("pipe write: %s", g_strerror(errno));
    }
    close(p[1]);
    VdQtestServer *s = vd_qtest_server_new(m, p[0], out_fd);
    fz_wait(server_done, s, "qtest: the session never ended");
    vd_qtest_server_free(s);
    close(p[0]);
}
