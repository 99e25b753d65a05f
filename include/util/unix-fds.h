/*
 * unix-fds.h - sending file descriptors over a unix socket (SCM_RIGHTS),
 * as vhost-user front ends do with memory regions and eventfds.
 *
 * Threading: none; the caller owns the socket.
 */
#ifndef VD_UTIL_UNIX_FDS_H
#define VD_UTIL_UNIX_FDS_H

#include <sys/types.h>
#include <sys/uio.h>

/* The most fds one message carries (vhost-user's limit is 8 memory regions). */
#define VD_SEND_FDS_MAX 16

/*
 * Send iov[0..niov) as one message on sock, with nfds fds attached as one
 * SCM_RIGHTS control message (none when nfds is 0).  flags go to sendmsg
 * (MSG_NOSIGNAL is always added).  Returns the bytes sent, or -errno;
 * -EINVAL for more than VD_SEND_FDS_MAX fds.
 */
ssize_t vd_send_with_fds(int sock, const struct iovec *iov, int niov, const int *fds, unsigned nfds, int flags);

#endif
