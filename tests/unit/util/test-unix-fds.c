/* test-unix-fds.c - vd_send_with_fds: the data and the fds arrive; too many fds and a closed peer are errors. */
#include "util/unix-fds.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* Two bytes and two fds go out; the peer gets both, and the fds are live duplicates. */
static void test_send_fds(void **state)
{
    int sv[2], pipefd[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(pipe(pipefd), 0);
    struct iovec iov[2] = { { "a", 1 }, { "b", 1 } };
    assert_int_equal(vd_send_with_fds(sv[0], iov, 2, pipefd, 2, 0), 2);

    char buf[4], control[CMSG_SPACE(4 * sizeof(int))];
    struct iovec in = { buf, sizeof(buf) };
    struct msghdr mh = { .msg_iov = &in, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
    assert_int_equal(recvmsg(sv[1], &mh, 0), 2);
    assert_memory_equal(buf, "ab", 2);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    assert_non_null(cm);
    assert_int_equal(cm->cmsg_type, SCM_RIGHTS);
    assert_int_equal(cm->cmsg_len, CMSG_LEN(2 * sizeof(int)));
    int got[2];
    memcpy(got, CMSG_DATA(cm), sizeof(got));
    assert_int_equal(write(got[1], "x", 1), 1);          /* the received write end feeds our read end */
    assert_int_equal(read(pipefd[0], buf, 1), 1);
    assert_int_equal(buf[0], 'x');
    for (int i = 0; i < 2; i++) {
        close(got[i]);
        close(pipefd[i]);
        close(sv[i]);
    }
}

/* More fds than a message carries: -EINVAL, nothing sent; a closed peer: -EPIPE, no SIGPIPE. */
static void test_errors(void **state)
{
    int sv[2], fds[VD_SEND_FDS_MAX + 1] = { 0 };
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct iovec iov = { "a", 1 };
    assert_int_equal(vd_send_with_fds(sv[0], &iov, 1, fds, VD_SEND_FDS_MAX + 1, 0), -EINVAL);
    close(sv[1]);
    assert_int_equal(vd_send_with_fds(sv[0], &iov, 1, NULL, 0, 0), -EPIPE);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_fds),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
