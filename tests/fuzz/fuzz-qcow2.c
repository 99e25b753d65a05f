/*
 * fuzz-qcow2.c - libFuzzer target: the qcow2 header parser and the L1 and
 * refcount-table checks, exactly as the driver's open runs them
 * (block/qcow2/qcow2-header.c).  The first byte picks read-only (bit 0)
 * and repair=leaks (bit 1: the image, if its header and tables pass, is
 * also opened through the driver with repair=leaks, from a memfd, and its
 * first sector read: the repair walks its L2 tables and refcount blocks);
 * the rest is the image file.  Oracles: no crash or sanitizer report; a
 * refusal carries one non-empty line; an accepted header describes tables
 * that lie inside the file.
 */
#include "qcow2.h"
#include "block/block-backend.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Check the tables an accepted header describes, as the open does; true if both pass. */
static bool check_tables(const Qcow2Header *h, const uint8_t *img, size_t len)
{
    uint64_t cs = 1ull << h->cluster_bits;
    uint64_t l1_bytes = (uint64_t)h->l1_size * 8, rt_bytes = (uint64_t)h->refcount_table_clusters * cs;
    if (h->l1_table_offset + l1_bytes > len || h->refcount_table_offset + rt_bytes > len) {
        abort(); /* the parser promised the tables are inside the file */
    }
    uint64_t *l1 = g_malloc(MAX(l1_bytes, 8));
    memcpy(l1, img + h->l1_table_offset, l1_bytes);
    g_autoptr(GError) e1 = NULL;
    bool ok = vd_qcow2_check_l1(h, l1, len, &e1);
    if (!ok && (!e1 || !*e1->message || strchr(e1->message, '\n'))) {
        abort();
    }
    g_free(l1);
    uint64_t *rt = g_malloc(MAX(rt_bytes, 8));
    memcpy(rt, img + h->refcount_table_offset, rt_bytes);
    g_autoptr(GError) e2 = NULL;
    bool rt_ok = vd_qcow2_check_reftable(h, rt, rt_bytes / 8, len, &e2);
    if (!rt_ok && (!e2 || !*e2->message || strchr(e2->message, '\n'))) {
        abort();
    }
    g_free(rt);
    return ok && rt_ok;
}

/* Open the image with repair=leaks (the file: a memfd, padded to whole sectors), read a sector, close. */
static void try_repair(const uint8_t *img, size_t len)
{
    static int fd = -1;
    if (fd < 0 && (fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC)) < 0) {
        abort();
    }
    size_t padded = (len + 511) / 512 * 512;
    if (ftruncate(fd, 0) != 0 || pwrite(fd, img, len, 0) != (ssize_t)len || ftruncate(fd, (off_t)padded) != 0) {
        abort();
    }
    g_autofree char *opts = g_strdup_printf("file=/proc/self/fd/%d,format=qcow2,repair=leaks,cache=unsafe,"
                                            "locking=off,aio=threads", fd);
    g_autoptr(GError) err = NULL;
    VdBlockBackend *blk = vd_blk_open(opts, NULL, &err);
    if (!blk) {
        if (!err || !*err->message || strchr(err->message, '\n')) {
            abort();
        }
        return;
    }
    uint8_t sector[512];
    (void)vd_blk_pread_sync(blk, 0, sector, sizeof(sector));
    vd_blk_close(blk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    bool repair = data[0] & 2, read_only = (data[0] & 1) && !repair;
    const uint8_t *img = data + 1;
    size_t len = size - 1;
    Qcow2Header h;
    g_autoptr(GError) err = NULL;
    if (vd_qcow2_parse_header(img, len, len, read_only, repair, &h, &err)) {
        if (check_tables(&h, img, len) && repair) {
            try_repair(img, len);
        }
    } else if (!err || !*err->message || strchr(err->message, '\n')) {
        abort();
    }
    return 0;
}
