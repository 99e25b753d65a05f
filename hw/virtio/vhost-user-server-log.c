/*
 * vhost-user-server-log.c - the dirty log of live migration (vhost-user
 * LOG_SHMFD): the front end's bitmap, one bit per 4 KiB page of guest
 * physical memory, that the back end sets for every byte it writes into
 * guest memory.  The front end (QEMU) reads and clears it while it copies
 * RAM, so a bit is set only after the bytes are written (a page sent before
 * our write is sent again).
 *
 * Input is hostile: SET_LOG_BASE's size and offset are checked against the
 * fd, and a page beyond the bitmap is counted, never written.
 *
 * Threading: the server's GMainContext; bits are set with an atomic OR
 * because the front end clears them from its own threads.
 */
#include "vhost-user-server-internal.h"

#include <gio/gio.h>

#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_ERROR(errp, ...) g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, __VA_ARGS__)

/* Why a log of size bytes at offset in a file of file_size bytes is refused, or NULL. */
static const char *log_problem(uint64_t size, uint64_t offset, uint64_t file_size)
{
    if (size == 0) {
        return "size 0";
    }
    if (offset + size < offset || offset + size > SIZE_MAX / 2) {
        return "offset + size overflow";
    }
    if (offset + size > file_size) {
        return "offset + size exceed the file";
    }
    return NULL;
}

/* Map the new bitmap (fd consumed); on failure the old one stays. */
bool vd_vhost_log_set(VdVhostLog *l, int fd, uint64_t size, uint64_t offset, GError **errp)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        LOG_ERROR(errp, "dirty log: the fd is not a memory file");
        close(fd);
        return false;
    }
    const char *problem = log_problem(size, offset, st.st_size);
    if (problem) {
        LOG_ERROR(errp, "dirty log of %" G_GUINT64_FORMAT " bytes at offset %" G_GUINT64_FORMAT
                  " in a %lld-byte file: %s", size, offset, (long long)st.st_size, problem);
        close(fd);
        return false;
    }
    /* From 0: mmap wants a page-aligned offset, the front end's need not be. */
    size_t len = offset + size;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        LOG_ERROR(errp, "dirty log: mmap of %zu bytes: %s", len, g_strerror(e));
        return false;
    }
    vd_vhost_log_clear(l);
    l->map = p;
    l->map_len = len;
    l->bits = (uint8_t *)p + offset;
    l->size = size;
    return true;
}

/* Unmap the bitmap (no log). */
void vd_vhost_log_clear(VdVhostLog *l)
{
    if (l->map) {
        munmap(l->map, l->map_len);
    }
    l->map = NULL;
    l->map_len = 0;
    l->bits = NULL;
    l->size = 0;
}

/* Set the bit of every page [gpa, gpa+len) touches; pages beyond the bitmap are counted. */
void vd_vhost_log_mark(VdVhostLog *l, uint64_t gpa, uint64_t len)
{
    if (!l->bits || len == 0) {
        return;
    }
    uint64_t first = gpa / VD_VHOST_LOG_PAGE;
    uint64_t last = (gpa + len - 1 < gpa ? UINT64_MAX : gpa + len - 1) / VD_VHOST_LOG_PAGE;
    for (uint64_t page = first; page <= last; page++) {
        if (page / 8 >= l->size) {
            if (!l->overflows++) {
                g_warning("vhost-user: dirty log: page 0x%" G_GINT64_MODIFIER "x is beyond the %" G_GUINT64_FORMAT
                          "-byte log; not logged", page, l->size);
            }
            return;
        }
        __atomic_fetch_or(&l->bits[page / 8], (uint8_t)(1u << (page % 8)), __ATOMIC_RELEASE);
        if (page == UINT64_MAX) {
            return;
        }
    }
}
