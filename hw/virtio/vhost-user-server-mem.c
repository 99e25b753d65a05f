/* vhost-user-server-mem.c - the vhost-user memory table: mmap the front end's regions, translate addresses. */
#include "vhost-user-server-internal.h"

#include <gio/gio.h>

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MEM_ERROR(errp, ...) g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, __VA_ARGS__)

/* True if [a, a+alen) and [b, b+blen) intersect (lengths > 0, no overflow). */
static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* Check one region against itself and its file. */
static bool region_valid(const VdVhostMemRegionMsg *r, int fd, unsigned i, GError **errp)
{
    struct stat st;
    if (r->memory_size == 0 || r->guest_phys_addr + r->memory_size < r->guest_phys_addr ||
        r->userspace_addr + r->memory_size < r->userspace_addr ||
        r->mmap_offset + r->memory_size < r->mmap_offset || r->memory_size > SIZE_MAX / 2) {
        MEM_ERROR(errp, "memory region %u: bad size or wrap-around", i);
        return false;
    }
    if (fd < 0 || fstat(fd, &st) < 0) {
        MEM_ERROR(errp, "memory region %u: bad file descriptor", i);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {   /* memfd, tmpfs, hugetlbfs files are regular; devices and sockets are not */
        MEM_ERROR(errp, "memory region %u: the fd is not a memory file", i);
        return false;
    }
    if ((uint64_t)st.st_size < r->mmap_offset + r->memory_size) {
        MEM_ERROR(errp, "memory region %u: offset + size exceed the file (%lld bytes)", i, (long long)st.st_size);
        return false;
    }
    return true;
}

/* No two regions may overlap in guest physical or front-end virtual space. */
static bool table_valid(const VdVhostMemRegionMsg *regions, unsigned n, GError **errp)
{
    for (unsigned i = 0; i < n; i++) {
        for (unsigned j = i + 1; j < n; j++) {
            const VdVhostMemRegionMsg *a = &regions[i], *b = &regions[j];
            if (overlaps(a->guest_phys_addr, a->memory_size, b->guest_phys_addr, b->memory_size) ||
                overlaps(a->userspace_addr, a->memory_size, b->userspace_addr, b->memory_size)) {
                MEM_ERROR(errp, "memory regions %u and %u overlap", i, j);
                return false;
            }
        }
    }
    return true;
}

/* Unmap every region. */
void vd_vhost_mem_clear(VdVhostMem *m)
{
    for (unsigned i = 0; i < m->n; i++) {
        munmap(m->r[i].map, m->r[i].map_len);
    }
    memset(m, 0, sizeof(*m));
}

/* Map the new table; on any failure nothing changes (the fds are closed either way). */
bool vd_vhost_mem_set(VdVhostMem *m, const VdVhostMemRegionMsg *regions, const int *fds, unsigned n,
                      GError **errp)
{
    VdVhostMem fresh = { 0 };
    bool ok = n <= VD_VHOST_USER_MAX_REGIONS;
    if (!ok) {
        MEM_ERROR(errp, "%u memory regions (at most %u)", n, VD_VHOST_USER_MAX_REGIONS);
    }
    for (unsigned i = 0; ok && i < n; i++) {
        ok = region_valid(&regions[i], fds[i], i, errp);
    }
    ok = ok && table_valid(regions, n, errp);
    for (unsigned i = 0; ok && i < n; i++) {
        const VdVhostMemRegionMsg *r = &regions[i];
        size_t len = r->mmap_offset + r->memory_size;
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fds[i], 0);
        if (p == MAP_FAILED) {
            MEM_ERROR(errp, "memory region %u: mmap: %s", i, g_strerror(errno));
            ok = false;
            break;
        }
        fresh.r[i] = (VdVhostMemRegion){ r->guest_phys_addr, r->memory_size, r->userspace_addr, p, len,
                                         (uint8_t *)p + r->mmap_offset };
        fresh.n = i + 1;
    }
    for (unsigned i = 0; i < n && i < VD_VHOST_USER_MAX_REGIONS; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    if (!ok) {
        vd_vhost_mem_clear(&fresh);
        return false;
    }
    vd_vhost_mem_clear(m);
    *m = fresh;
    return true;
}

/* Guest physical -> host pointer, clipped to the end of the region that holds gpa. */
void *vd_vhost_mem_translate(void *opaque, uint64_t gpa, uint64_t *len, bool write)
{
    const VdVhostMem *m = opaque;
    for (unsigned i = 0; i < m->n; i++) {
        const VdVhostMemRegion *r = &m->r[i];
        if (gpa >= r->gpa && gpa - r->gpa < r->size) {
            uint64_t off = gpa - r->gpa;
            *len = MIN(*len, r->size - off);
            return *len ? r->host + off : NULL;
        }
    }
    return NULL;
}

/* Front-end virtual -> guest physical for a range inside a single region. */
bool vd_vhost_mem_uva_to_gpa(const VdVhostMem *m, uint64_t uva, uint64_t len, uint64_t *gpa)
{
    for (unsigned i = 0; i < m->n; i++) {
        const VdVhostMemRegion *r = &m->r[i];
        if (uva >= r->uva && uva - r->uva < r->size && len <= r->size - (uva - r->uva)) {
            *gpa = r->gpa + (uva - r->uva);
            return true;
        }
    }
    return false;
}

/* Host address -> guest physical for a range inside a single region (the dirty log of an answered buffer). */
bool vd_vhost_mem_host_to_gpa(const VdVhostMem *m, const void *host, uint64_t len, uint64_t *gpa)
{
    uintptr_t h = (uintptr_t)host;
    for (unsigned i = 0; i < m->n; i++) {
        const VdVhostMemRegion *r = &m->r[i];
        uintptr_t start = (uintptr_t)r->host;
        if (h >= start && h - start < r->size && len <= r->size - (h - start)) {
            *gpa = r->gpa + (h - start);
            return true;
        }
    }
    return false;
}
