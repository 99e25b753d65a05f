/*
 * file-posix.c - the "file" driver: a regular file or block device.
 *
 * Host operations: preadv/pwritev, pwritev2(RWF_DSYNC) as native FUA, a
 * second O_DSYNC descriptor for the dsync writethrough policy, fdatasync,
 * fallocate for discard and write-zeroes, posix_fadvise to drop the page
 * cache.  file_prepare is the only place that picks a read's, write's or
 * fdatasync's descriptor and RWF flags; the preadv/pwritev/fdatasync loops
 * here and the io_uring engine both run the op it prepared (req->op).  With
 * O_DIRECT the alignment comes from statx(STATX_DIOALIGN), or BLKSSZGET on a
 * block device, or 4096 when neither answers.  Image locks (locking=) are
 * OFD locks on the main descriptor, in QEMU's byte ranges (file-lock.c).
 */
#include "block/block-driver.h"
#include "file-lock.h"
#include "util/iov.h"
#include "util/hot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/uio.h>
#include <unistd.h>

typedef struct FileState {
    int fd;
    int dsync_fd;               /* -1 unless the dsync policy asked for it */
    bool direct, read_only, is_blockdev;
    bool rwf_dsync;             /* pwritev2(RWF_DSYNC) works on this kernel */
    uint32_t req_align, mem_align;
    bool locking;               /* locking= resolved: OFD locks are taken on fd */
    VdImagePerm perm;           /* the claim fd holds now */
    char *filename;             /* for lock errors */
} FileState;

/* Find the O_DIRECT alignment for an open descriptor. */
static void probe_alignment(FileState *s, const char *filename)
{
    s->req_align = s->mem_align = 1;
    if (!s->direct) {
        return;
    }
#ifdef STATX_DIOALIGN
    struct statx stx;
    if (statx(s->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN) &&
        stx.stx_dio_offset_align) {
        s->req_align = stx.stx_dio_offset_align;
        s->mem_align = MAX(stx.stx_dio_mem_align, 1u);
        return;
    }
#endif
    int sector;
    if (s->is_blockdev && ioctl(s->fd, BLKSSZGET, &sector) == 0 && sector > 0) {
        s->req_align = s->mem_align = sector;
        return;
    }
    s->req_align = s->mem_align = 4096; /* safe for every common file system */
}

/* Does pwritev2(RWF_DSYNC) work here?  A zero-length write checks the flag. */
static bool probe_rwf_dsync(int fd)
{
#ifdef RWF_DSYNC
    struct iovec iov = { .iov_base = NULL, .iov_len = 0 };
    return pwritev2(fd, &iov, 1, 0, RWF_DSYNC) == 0;
#else
    return false;
#endif
}

/* Resolve locking= for fd: auto turns off without a word where OFD locks do not work. */
static bool resolve_locking(FileState *s, VdLocking locking, GError **errp)
{
    int err = locking == VD_LOCKING_OFF ? 0 : vd_file_lock_probe(s->fd);
    s->locking = locking != VD_LOCKING_OFF && err == 0;
    if (locking == VD_LOCKING_ON && err < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "file=%s: locking=on, but OFD locks do not work on this file (%s); use locking=auto or locking=off",
                    s->filename, g_strerror(-err));
        return false;
    }
    return true;
}

/* Open the image (and the O_DSYNC twin if asked); refuse directories and odd files. */
static bool file_open(VdBlockDriverState *bs, const VdDriverOpenOptions *o, GError **errp)
{
    FileState *s = bs->opaque;
    s->fd = s->dsync_fd = -1;
    s->direct = o->direct;
    s->read_only = o->read_only;
    int flags = (o->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (o->direct ? O_DIRECT : 0);
    s->fd = open(o->filename, flags);
    if (s->fd < 0 && errno == EINVAL && o->direct) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "file=%s: this file system does not support O_DIRECT, which cache=none and cache=directsync need; "
                    "use cache=writeback or cache=writethrough", o->filename);
        return false;
    }
    if (s->fd < 0 && errno == EISDIR) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_IS_DIRECTORY, "file=%s is a directory, not a disk image", o->filename);
        return false;
    }
    if (s->fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "file=%s: %s", o->filename, g_strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(s->fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "file=%s is %s, not a regular file or block device", o->filename,
                    S_ISDIR(st.st_mode) ? "a directory" : "a special file");
        close(s->fd);
        return false;
    }
    s->is_blockdev = S_ISBLK(st.st_mode);
    s->filename = g_strdup(o->filename);
    if (!resolve_locking(s, o->locking, errp)) {
        g_free(s->filename);
        close(s->fd);
        return false;
    }
    probe_alignment(s, o->filename);
    s->rwf_dsync = !o->read_only && probe_rwf_dsync(s->fd);
    if (o->open_dsync_fd) {
        /* O_DSYNC cannot be toggled with fcntl: a second descriptor on the same open file. */
        g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", s->fd);
        s->dsync_fd = open(path, flags | O_DSYNC);
        if (s->dsync_fd < 0) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "file=%s: cannot open an O_DSYNC descriptor: %s",
                        o->filename, g_strerror(errno));
            g_free(s->filename);
            close(s->fd);
            return false;
        }
    }
    return true;
}

/* Closing the main descriptor releases its OFD locks. */
static void file_close(VdBlockDriverState *bs)
{
    FileState *s = bs->opaque;
    if (s->dsync_fd >= 0) {
        close(s->dsync_fd);
    }
    close(s->fd);
    g_free(s->filename);
}

/* Claim perm on the image with OFD locks, unless locking= resolved to off. */
static bool file_set_perm(VdBlockDriverState *bs, VdImagePerm perm, GError **errp)
{
    FileState *s = bs->opaque;
    if (s->locking && !vd_file_lock_change(s->fd, s->filename, s->perm, perm, errp)) {
        return false;
    }
    s->perm = perm;
    return true;
}

static int64_t file_get_length(VdBlockDriverState *bs)
{
    FileState *s = bs->opaque;
    if (s->is_blockdev) {
        uint64_t bytes;
        return ioctl(s->fd, BLKGETSIZE64, &bytes) < 0 ? -errno : (int64_t)bytes;
    }
    struct stat st;
    return fstat(s->fd, &st) < 0 ? -errno : st.st_size;
}

static VdFuaSupport file_can_fua(VdBlockDriverState *bs)
{
    return ((FileState *)bs->opaque)->rwf_dsync ? VD_FUA_NATIVE : VD_FUA_EMULATE;
}

static bool file_can_dsync(VdBlockDriverState *bs) { return ((FileState *)bs->opaque)->dsync_fd >= 0; }
static bool file_can_discard(VdBlockDriverState *bs) { return !((FileState *)bs->opaque)->is_blockdev; }
static bool file_can_zero(VdBlockDriverState *bs) { return !((FileState *)bs->opaque)->is_blockdev; }
static uint32_t file_request_alignment(VdBlockDriverState *bs) { return ((FileState *)bs->opaque)->req_align; }
static uint32_t file_mem_alignment(VdBlockDriverState *bs) { return ((FileState *)bs->opaque)->mem_align; }

/* Describe one read, write or fdatasync as the host op to submit: descriptor and RWF flags. */
VD_HOT static int file_prepare(VdBlockDriverState *bs, VdHostOpKind kind, const VdDriverReq *req, VdHostOp *out)
{
    FileState *s = bs->opaque;
    *out = (VdHostOp){ .kind = kind, .fd = s->fd, .iov = req->iov, .niov = req->niov, .offset = req->offset,
                       .bytes = req->bytes };
    if (kind != VD_HOST_WRITE) {
        return 0;
    }
    if (req->flags & VD_DRV_DSYNC) {
        g_assert(s->dsync_fd >= 0); /* can_dsync said so */
        out->fd = s->dsync_fd;
    } else if (req->flags & VD_DRV_FUA) {
        g_assert(s->rwf_dsync);     /* can_fua said NATIVE */
        out->rwf = RWF_DSYNC;
    }
    return 0;
}

/* The prepared op of a data call; the checkpoint always prepares this driver's calls. */
static const VdHostOp *prepared(VdDriverReq *req, VdHostOpKind kind)
{
    g_assert(req->op && req->op->kind == kind);
    return req->op;
}

static int file_preadv(VdBlockDriverState *bs, VdDriverReq *req)
{
    const VdHostOp *op = prepared(req, VD_HOST_READ);
    g_autofree struct iovec *iov0 = g_memdup2(op->iov, sizeof(*op->iov) * op->niov);
    struct iovec *iov = iov0;
    unsigned niov = op->niov;
    uint64_t off = op->offset, left = op->bytes;
    while (left) {
        ssize_t n = op->rwf ? preadv2(op->fd, iov, niov, off, op->rwf) : preadv(op->fd, iov, niov, off);
        int err = n < 0 ? errno : 0;
        vd_drv_count_host_op(bs, VD_HOST_READ, op->fd, op->rwf);
        vd_drv_trace(req, "preadv(off=%" G_GUINT64_FORMAT ",len=%" G_GUINT64_FORMAT ")=%zd", off, left, n);
        if (err == EINTR) {
            continue;
        }
        if (err) {
            return -err;
        }
        if (n == 0) {
            vd_iov_memset(iov, niov, 0, 0, SIZE_MAX); /* a read past the end of the file */
            break;
        }
        vd_drv_count(&bs->stats->host_bytes_read, n);
        vd_iov_advance(&iov, &niov, n);
        off += n;
        left -= n;
    }
    return 0;
}

/* Trace one write syscall as it was made: descriptor kind and flags. */
static void trace_write(VdBlockDriverState *bs, VdDriverReq *req, const VdHostOp *op, uint64_t off, uint64_t left,
                        ssize_t n)
{
    int fl = vd_drv_fd_flags(bs, op->fd);
    if (op->rwf & RWF_DSYNC) {
        vd_drv_trace(req, "pwritev2(off=%" G_GUINT64_FORMAT ",len=%" G_GUINT64_FORMAT ",RWF_DSYNC)=%zd", off, left, n);
    } else if (fl >= 0 && (fl & O_DSYNC) == O_DSYNC) {
        vd_drv_trace(req, "pwritev(O_DSYNC fd,off=%" G_GUINT64_FORMAT ",len=%" G_GUINT64_FORMAT ")=%zd", off, left, n);
    } else {
        vd_drv_trace(req, "pwritev(off=%" G_GUINT64_FORMAT ",len=%" G_GUINT64_FORMAT ")=%zd", off, left, n);
    }
}

static int file_pwritev(VdBlockDriverState *bs, VdDriverReq *req)
{
    const VdHostOp *op = prepared(req, VD_HOST_WRITE);
    g_autofree struct iovec *iov0 = g_memdup2(op->iov, sizeof(*op->iov) * op->niov);
    struct iovec *iov = iov0;
    unsigned niov = op->niov;
    uint64_t off = op->offset, left = op->bytes;
    while (left) {
        ssize_t n = op->rwf ? pwritev2(op->fd, iov, niov, off, op->rwf) : pwritev(op->fd, iov, niov, off);
        int err = n < 0 ? errno : 0;
        vd_drv_count_host_op(bs, VD_HOST_WRITE, op->fd, op->rwf);
        trace_write(bs, req, op, off, left, n);
        if (err == EINTR) {
            continue;
        }
        if (err) {
            return -err;
        }
        if (n == 0) {
            return -ENOSPC;
        }
        vd_drv_count(&bs->stats->host_bytes_written, n);
        vd_iov_advance(&iov, &niov, n);
        off += n;
        left -= n;
    }
    return 0;
}

static int file_flush_to_disk(VdBlockDriverState *bs, VdDriverReq *req)
{
    const VdHostOp *op = prepared(req, VD_HOST_FDATASYNC);
    int err;
    do {
        err = fdatasync(op->fd) < 0 ? errno : 0;
        vd_drv_count_host_op(bs, VD_HOST_FDATASYNC, op->fd, 0);
    } while (err == EINTR);
    vd_drv_trace(req, "fdatasync()=%d", -err);
    return -err;
}

/* fallocate with a mode, mapping "not supported here" to -ENOTSUP. */
static int file_fallocate(VdBlockDriverState *bs, VdDriverReq *req, int mode, const char *name)
{
    FileState *s = bs->opaque;
    int ret;
    do {
        ret = fallocate(s->fd, mode, req->offset, req->bytes);
    } while (ret < 0 && errno == EINTR);
    int err = ret < 0 ? errno : 0;
    vd_drv_trace(req, "fallocate(%s,off=%" G_GUINT64_FORMAT ",len=%" G_GUINT64_FORMAT ")=%d", name, req->offset,
                 req->bytes, -err);
    if (err == EOPNOTSUPP || err == ENOSYS || err == EINVAL) {
        return -ENOTSUP;
    }
    return -err;
}

static int file_discard(VdBlockDriverState *bs, VdDriverReq *req)
{
    int ret = file_fallocate(bs, req, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, "PUNCH_HOLE");
    if (ret != -ENOTSUP) {
        vd_drv_count(&bs->stats->host_discards, 1);
    }
    return ret;
}

static int file_write_zeroes(VdBlockDriverState *bs, VdDriverReq *req)
{
    int ret = file_fallocate(bs, req, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, "ZERO_RANGE");
    if (ret == -ENOTSUP && (req->flags & VD_DRV_MAY_UNMAP)) {
        /* A punched hole reads back as zeroes. */
        ret = file_fallocate(bs, req, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, "PUNCH_HOLE");
    }
    if (ret != -ENOTSUP) {
        vd_drv_count(&bs->stats->host_zero_ranges, 1);
    }
    return ret;
}

#define MINCORE_WINDOW (1ull << 30)   /* bytes mapped at a time to ask mincore */

/* Pages of the image (regular file or block device) resident in the host page cache; -errno on failure. */
static int64_t resident_pages(int fd)
{
    off_t end = lseek(fd, 0, SEEK_END);
    long page = sysconf(_SC_PAGESIZE);
    if (end < 0) {
        return -errno;
    }
    int64_t n = 0;
    g_autofree unsigned char *vec = g_malloc(MINCORE_WINDOW / page);
    for (uint64_t off = 0; off < (uint64_t)end; off += MINCORE_WINDOW) {
        size_t len = MIN(MINCORE_WINDOW, (uint64_t)end - off);
        void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, off);
        if (p == MAP_FAILED) {
            return -errno;
        }
        int r = mincore(p, len, vec);
        int err = errno;
        munmap(p, len);
        if (r < 0) {
            return -err;
        }
        for (size_t i = 0; i < (len + page - 1) / page; i++) {
            n += vec[i] & 1;
        }
    }
    return n;
}

/*
 * True if the image is a file whose pages are its only copy (tmpfs, ramfs):
 * no page of it can be stale.  Not a block device: its node may sit on
 * devtmpfs, but its page cache is its own.
 */
static bool pages_are_the_file(const FileState *s)
{
    struct statfs sfs;
    return !s->is_blockdev && fstatfs(s->fd, &sfs) == 0 && (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC);
}

/*
 * Migration destination: drop every page of the image from the host page
 * cache (it may hold what this host read before the source wrote), then
 * check with mincore that none stayed; pages that stay are -EBUSY.  Dirty
 * pages cannot be dropped: pages another writer on this same host left
 * dirty (they are current, not stale) are written back first
 * (sync_file_range, no device flush).  On tmpfs the pages are the file,
 * shared by source and destination (one host), so there is nothing to drop.
 */
static int file_drop_page_cache(VdBlockDriverState *bs, VdDriverReq *req)
{
    FileState *s = bs->opaque;
    if (s->direct) {
        return 0; /* nothing of ours is in the page cache */
    }
    if (pages_are_the_file(s)) {
        vd_drv_trace(req, "fstatfs: tmpfs, the page cache is the file");
        return 0;
    }
    int sret = sync_file_range(s->fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                               SYNC_FILE_RANGE_WAIT_AFTER);
    vd_drv_trace(req, "sync_file_range(WRITE)=%d", sret < 0 ? -errno : 0);
    int ret = posix_fadvise(s->fd, 0, 0, POSIX_FADV_DONTNEED);
    vd_drv_trace(req, "posix_fadvise(DONTNEED)=%d", -ret);
    if (ret) {
        return -ret;
    }
    int64_t left = resident_pages(s->fd);
    vd_drv_trace(req, "mincore: %" G_GINT64_FORMAT " pages resident", left);
    return left < 0 ? (int)left : left > 0 ? -EBUSY : 0;
}

const VdBlockDriver vd_driver_file = {
    .name = "file",
    .instance_size = sizeof(FileState),
    .needs_filename = true,
    .open = file_open,
    .close = file_close,
    .get_length = file_get_length,
    .can_fua = file_can_fua,
    .can_dsync = file_can_dsync,
    .can_discard = file_can_discard,
    .can_zero = file_can_zero,
    .request_alignment = file_request_alignment,
    .mem_alignment = file_mem_alignment,
    .preadv = file_preadv,
    .pwritev = file_pwritev,
    .flush_to_disk = file_flush_to_disk,
    .discard = file_discard,
    .write_zeroes = file_write_zeroes,
    .drop_page_cache = file_drop_page_cache,
    .prepare = file_prepare,
    .set_perm = file_set_perm,
};
