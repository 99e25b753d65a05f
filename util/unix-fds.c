/* unix-fds.c - send a message with file descriptors attached (see include/util/unix-fds.h). */
#include "util/unix-fds.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

ssize_t vd_send_with_fds(int sock, const struct iovec *iov, int niov, const int *fds, unsigned nfds, int flags)
{
    union {
        char buf[CMSG_SPACE(VD_SEND_FDS_MAX * sizeof(int))];
        struct cmsghdr align;
    } control;
    if (nfds > VD_SEND_FDS_MAX) {
        return -EINVAL;
    }
    memset(&control, 0, sizeof(control));
    struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = niov };
    if (nfds) {
        mh.msg_control = control.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    }
    ssize_t n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
    return n < 0 ? -errno : n;
}
