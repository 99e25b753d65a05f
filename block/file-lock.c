/*
 * file-lock.c - image locks that QEMU understands: OFD byte-range locks.
 *
 * QEMU's file-posix driver gives each permission bit i one byte of the image
 * file: an open read-locks byte 100+i while it *uses* permission i, and byte
 * 200+i while it *refuses to share* permission i.  Bits: 0 consistent read,
 * 1 write, 2 write unchanged, 3 resize.  Every lock is shared (F_RDLCK), so
 * taking one never fails; a conflict is found by testing bytes with
 * F_OFD_GETLK(F_WRLCK), which reports locks of other open file descriptions
 * only.  An open that wants permission i fails if another refuses to share
 * it (byte 200+i is held); an open that refuses to share i fails if another
 * uses it (byte 100+i is held).
 *
 * The order is QEMU's: take the union of the old and the new bytes, test,
 * then drop to exactly the new bytes (or back to the old ones on a
 * conflict).  Two opens racing therefore both see each other and both fail,
 * never both succeed.
 *
 * OFD locks belong to the open file description: two opens of one image in
 * one process exclude each other like two processes do, and the locks go
 * away when the descriptor is closed.
 *
 * Owner thread only.
 */
#include "file-lock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define LOCK_PERM_BASE 100   /* byte 100+i: this open uses permission i */
#define LOCK_SHARED_BASE 200 /* byte 200+i: this open does not share permission i */

enum { P_READ = 1 << 0, P_WRITE = 1 << 1, P_WRITE_UNCHANGED = 1 << 2, P_RESIZE = 1 << 3, P_BITS = 4 };

/* QEMU's names of the permission bits, as its lock errors spell them. */
static const char *const perm_names[P_BITS] = { "consistent read", "write", "write unchanged", "resize" };

typedef struct PermSet {
    unsigned use, unshare;
} PermSet;

/* Each VdImagePerm as QEMU permission bits.  Like a QEMU device with share-rw=off. */
static const PermSet perm_sets[] = {
    [VD_PERM_NONE] = { 0, 0 },
    [VD_PERM_READ] = { P_READ, P_WRITE | P_RESIZE },
    [VD_PERM_WRITE] = { P_READ | P_WRITE, P_WRITE | P_RESIZE },
    [VD_PERM_INACTIVE] = { P_READ, 0 },
};

#ifdef F_OFD_SETLK

/* Take (F_RDLCK) or drop (F_UNLCK) this description's lock on one byte; 0 or -errno. */
static int lock_byte(int fd, int byte, short type)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };
    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* 1 if another open file description holds a lock on byte, 0 if not, or -errno. */
static int byte_held_by_other(int fd, int byte)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        return -errno;
    }
    return fl.l_type != F_UNLCK;
}

int vd_file_lock_probe(int fd)
{
    int ret = byte_held_by_other(fd, LOCK_PERM_BASE);
    return ret < 0 ? ret : 0;
}

/* Hold exactly the bytes of set; 0 or the first -errno. */
static int apply_bytes(int fd, PermSet set)
{
    for (int i = 0; i < P_BITS; i++) {
        int ret = lock_byte(fd, LOCK_PERM_BASE + i, (set.use >> i) & 1 ? F_RDLCK : F_UNLCK);
        if (ret == 0) {
            ret = lock_byte(fd, LOCK_SHARED_BASE + i, (set.unshare >> i) & 1 ? F_RDLCK : F_UNLCK);
        }
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* What the other user of the image is doing, judged by the permission bytes it holds. */
static const char *other_mode(int fd)
{
    if (byte_held_by_other(fd, LOCK_PERM_BASE + 1) > 0) {
        return "writing";
    }
    if (byte_held_by_other(fd, LOCK_PERM_BASE + 3) > 0) {
        return "resizing";
    }
    return "reading";
}

/* 0 if set can coexist with every other user; else -EAGAIN with *why set (QEMU's words), or -errno. */
static int check_bytes(int fd, PermSet set, char **why)
{
    for (int i = 0; i < P_BITS; i++) {
        if ((set.use >> i) & 1) {
            int held = byte_held_by_other(fd, LOCK_SHARED_BASE + i);
            if (held) {
                *why = held > 0 ? g_strdup_printf("Failed to get \"%s\" lock", perm_names[i]) : NULL;
                return held > 0 ? -EAGAIN : held;
            }
        }
        if ((set.unshare >> i) & 1) {
            int held = byte_held_by_other(fd, LOCK_PERM_BASE + i);
            if (held) {
                *why = held > 0 ? g_strdup_printf("Failed to get shared \"%s\" lock", perm_names[i]) : NULL;
                return held > 0 ? -EAGAIN : held;
            }
        }
    }
    return 0;
}

bool vd_file_lock_change(int fd, const char *filename, VdImagePerm from, VdImagePerm to, GError **errp)
{
    PermSet old = perm_sets[from], new = perm_sets[to];
    PermSet both = { old.use | new.use, old.unshare | new.unshare };
    g_autofree char *why = NULL;
    int ret = apply_bytes(fd, both);
    if (ret == 0) {
        ret = check_bytes(fd, new, &why);
    }
    if (ret == -EAGAIN) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_BUSY,
                    "file=%s: in use by another process for %s (%s); use locking=off to override", filename,
                    other_mode(fd), why);
    } else if (ret < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(-ret),
                    "file=%s: cannot lock the image: %s; use locking=off to open it without a lock", filename,
                    g_strerror(-ret));
    }
    apply_bytes(fd, ret < 0 ? old : new); /* dropping locks only: cannot conflict */
    return ret == 0;
}

#else /* no OFD locks in this C library */

/* Without F_OFD_*, locking=auto turns off and locking=on fails. */
int vd_file_lock_probe(int fd)
{
    return -ENOTSUP;
}

/* Unreachable: the probe failed, so the driver never locks. */
bool vd_file_lock_change(int fd, const char *filename, VdImagePerm from, VdImagePerm to, GError **errp)
{
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "file=%s: this build has no OFD locks", filename);
    return false;
}

#endif
