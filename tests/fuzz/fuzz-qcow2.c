/*
 * fuzz-qcow2.c - libFuzzer target: the qcow2 header parser and the L1 and
 * refcount-table checks, exactly as the driver's open runs them
 * (block/qcow2/qcow2-header.c).  The first byte picks read-only (bit 0);
 * the rest is the image file.  Oracles: no crash or sanitizer report; a
 * refusal carries one non-empty line; an accepted header describes tables
 * that lie inside the file.
 */
#include "qcow2.h"

#include <stdlib.h>
#include <string.h>

/* Check the tables an accepted header describes, as the open does. */
static void check_tables(const Qcow2Header *h, const uint8_t *img, size_t len)
{
    uint64_t cs = 1ull << h->cluster_bits;
    uint64_t l1_bytes = (uint64_t)h->l1_size * 8, rt_bytes = (uint64_t)h->refcount_table_clusters * cs;
    if (h->l1_table_offset + l1_bytes > len || h->refcount_table_offset + rt_bytes > len) {
        abort(); /* the parser promised the tables are inside the file */
    }
    uint64_t *l1 = g_malloc(MAX(l1_bytes, 8));
    memcpy(l1, img + h->l1_table_offset, l1_bytes);
    g_autoptr(GError) e1 = NULL;
    if (!vd_qcow2_check_l1(h, l1, len, &e1) && (!e1 || !*e1->message || strchr(e1->message, '\n'))) {
        abort();
    }
    g_free(l1);
    uint64_t *rt = g_malloc(MAX(rt_bytes, 8));
    memcpy(rt, img + h->refcount_table_offset, rt_bytes);
    g_autoptr(GError) e2 = NULL;
    if (!vd_qcow2_check_reftable(h, rt, rt_bytes / 8, len, &e2) && (!e2 || !*e2->message || strchr(e2->message, '\n'))) {
        abort();
    }
    g_free(rt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    bool read_only = data[0] & 1;
    const uint8_t *img = data + 1;
    size_t len = size - 1;
    Qcow2Header h;
    g_autoptr(GError) err = NULL;
    if (vd_qcow2_parse_header(img, len, len, read_only, &h, &err)) {
        check_tables(&h, img, len);
    } else if (!err || !*err->message || strchr(err->message, '\n')) {
        abort();
    }
    return 0;
}
