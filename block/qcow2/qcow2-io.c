/*
 * qcow2-io.c - guest reads, writes, write-zeroes and discards, one cluster
 * at a time (worker threads; several at once, see the lock rules in
 * qcow2.h).  A write into a cluster that is not allocated yet takes a new
 * host cluster and writes all of it: the guest's bytes plus zeroes for the
 * rest (the copy-on-write of a disk without a backing file, with no read),
 * or only the guest's bytes when the cluster was never written before and so
 * reads as zeroes anyway.  Its L2 entry is set after that write completed.
 */
#include "qcow2.h"
#include "util/iov.h"

#include <errno.h>

/* Frees waiting for a stage 1 beyond this many are written out at once. */
#define QCOW2_MAX_DEFERRED_FREES 4096

/* One cluster's piece of a request. */
typedef struct Piece {
    uint64_t off;               /* guest offset */
    uint64_t pos;               /* offset into the request's iov */
    uint64_t in;                /* offset inside the cluster */
    uint64_t n;                 /* bytes */
    uint64_t cluster;           /* guest cluster index */
} Piece;

/* The piece of req starting pos bytes in. */
static Piece piece_at(const BDRVQcow2State *s, const VdDriverReq *req, uint64_t pos)
{
    Piece p = { .off = req->offset + pos, .pos = pos };
    p.in = p.off % s->cluster_size;
    p.n = MIN(s->cluster_size - p.in, req->bytes - pos);
    p.cluster = p.off / s->cluster_size;
    return p;
}

/* Run a read or write of n bytes of req's iov from pos at host offset on the child. */
static int child_rw(BDRVQcow2State *s, bool write, const VdDriverReq *req, uint64_t pos, uint64_t n, uint64_t host)
{
    struct iovec *iov = NULL;
    /* The whole request in one cluster (the common case): its own iov, no copy. */
    unsigned niov = pos == 0 && n == req->bytes ? (unsigned)req->niov : vd_iov_slice(req->iov, req->niov, pos, n, &iov);
    VdDriverReq r = { .offset = host, .bytes = n, .iov = iov ? iov : req->iov, .niov = niov, .trace = req->trace };
    int ret = write ? vd_bdrv_pwritev(s->bs->child, &r) : vd_bdrv_preadv(s->bs->child, &r);
    g_free(iov);
    return ret < 0 ? ret : 0;
}

/* The mapping of a guest cluster once no allocation of it is in flight (s->lock held). */
static int settled_mapping(BDRVQcow2State *s, const Piece *p, Qcow2ClusterType *type, uint64_t *host)
{
    while (g_hash_table_contains(s->inflight, GSIZE_TO_POINTER(p->cluster + 1))) {
        s->alloc_waiters++;
        g_cond_wait(&s->alloc_cond, &s->lock);
        s->alloc_waiters--;
    }
    return qcow2_get_mapping(s, p->off, type, host);
}

int qcow2_preadv(VdBlockDriverState *bs, VdDriverReq *req)
{
    BDRVQcow2State *s = bs->opaque;
    for (uint64_t pos = 0; pos < req->bytes;) {
        Piece p = piece_at(s, req, pos);
        Qcow2ClusterType type;
        uint64_t host;
        g_mutex_lock(&s->lock);
        int ret = qcow2_get_mapping(s, p.off, &type, &host);
        g_mutex_unlock(&s->lock);
        if (ret < 0) {
            return ret;
        }
        if (type == QCOW2_NORMAL) {
            ret = child_rw(s, false, req, p.pos, p.n, host + p.in);
            if (ret < 0) {
                return ret;
            }
        } else {
            vd_iov_memset(req->iov, req->niov, p.pos, 0, p.n);
        }
        pos += p.n;
    }
    return 0;
}

/* Write a new cluster at host: the piece, with zeroes around it unless the cluster reads as zeroes already. */
static int write_new_cluster(BDRVQcow2State *s, const VdDriverReq *req, const Piece *p, uint64_t host, bool fresh)
{
    if (fresh) {
        return child_rw(s, true, req, p->pos, p->n, host + p->in);
    }
    struct iovec *mid;
    unsigned nmid = vd_iov_slice(req->iov, req->niov, p->pos, p->n, &mid);
    struct iovec *iov = g_new(struct iovec, nmid + 2);
    unsigned niov = 0;
    if (p->in) {
        iov[niov++] = (struct iovec){ .iov_base = s->zero_cluster, .iov_len = p->in };
    }
    for (unsigned i = 0; i < nmid; i++) {
        iov[niov++] = mid[i];
    }
    if (p->in + p->n < s->cluster_size) {
        iov[niov++] = (struct iovec){ .iov_base = s->zero_cluster, .iov_len = s->cluster_size - p->in - p->n };
    }
    VdDriverReq r = { .offset = host, .bytes = s->cluster_size, .iov = iov, .niov = niov, .trace = req->trace };
    int ret = vd_bdrv_pwritev(s->bs->child, &r);
    g_free(iov);
    g_free(mid);
    return ret < 0 ? ret : 0;
}

/* Allocate, write and link a new cluster for a piece (s->lock held on entry and on return). */
static int allocating_write(BDRVQcow2State *s, const VdDriverReq *req, const Piece *p, Qcow2ClusterType type,
                            uint64_t old_host)
{
    uint64_t host;
    bool fresh;
    int ret = qcow2_ensure_l2(s, p->off);
    if (ret >= 0) {
        ret = qcow2_alloc_cluster(s, &host, &fresh);
    }
    if (ret < 0) {
        return ret;
    }
    g_hash_table_add(s->inflight, GSIZE_TO_POINTER(p->cluster + 1));
    g_mutex_unlock(&s->lock);
    ret = write_new_cluster(s, req, p, host, fresh);
    g_mutex_lock(&s->lock);
    if (ret >= 0) {
        qcow2_note_unsynced(s, QCOW2_LVL_DATA); /* the L2 table that points here waits for it */
        ret = qcow2_set_l2_entry(s, p->off, host | QCOW2_OFLAG_COPIED);
    }
    if (ret >= 0 && type == QCOW2_ZERO_ALLOC) {
        qcow2_free_cluster_deferred(s, old_host);
    }
    if (ret < 0) {
        qcow2_free_cluster_now(s, host); /* nothing points at it */
    }
    g_hash_table_remove(s->inflight, GSIZE_TO_POINTER(p->cluster + 1));
    if (s->alloc_waiters) {
        g_cond_broadcast(&s->alloc_cond); /* a futex syscall even without waiters: only when someone waits */
    }
    return ret;
}

int qcow2_pwritev(VdBlockDriverState *bs, VdDriverReq *req)
{
    BDRVQcow2State *s = bs->opaque;
    for (uint64_t pos = 0; pos < req->bytes;) {
        Piece p = piece_at(s, req, pos);
        Qcow2ClusterType type;
        uint64_t host;
        g_mutex_lock(&s->lock);
        int ret = settled_mapping(s, &p, &type, &host);
        if (ret >= 0 && type != QCOW2_NORMAL) {
            ret = allocating_write(s, req, &p, type, host);
            g_mutex_unlock(&s->lock);
        } else {
            g_mutex_unlock(&s->lock);
            if (ret >= 0) {
                ret = child_rw(s, true, req, p.pos, p.n, host + p.in);
            }
        }
        if (ret < 0) {
            return ret;
        }
        pos += p.n;
    }
    return 0;
}

/* Zeroes over part of an allocated cluster, written as data. */
static int zero_partial(BDRVQcow2State *s, const VdDriverReq *req, uint64_t host, uint64_t n)
{
    struct iovec iov = { .iov_base = s->zero_cluster, .iov_len = n };
    VdDriverReq r = { .offset = host, .bytes = n, .iov = &iov, .niov = 1, .trace = req->trace };
    int ret = vd_bdrv_pwritev(s->bs->child, &r);
    return ret < 0 ? ret : 0;
}

/* The L2 entry that makes a whole cluster read as zeroes (v3: the zero flag), and whether the old host cluster goes. */
static uint64_t zero_entry(const BDRVQcow2State *s, Qcow2ClusterType type, uint64_t host, bool unmap, bool *free_old)
{
    bool has_host = type == QCOW2_NORMAL || type == QCOW2_ZERO_ALLOC;
    *free_old = has_host && unmap;
    if (s->h.version < 3) {
        return 0; /* only reached with unmap: v2 has no zero flag, and unallocated reads as zeroes */
    }
    return (has_host && !unmap) ? (host | QCOW2_OFLAG_ZERO | QCOW2_OFLAG_COPIED) : QCOW2_OFLAG_ZERO;
}

/* Write zeroes over one cluster's piece (s->lock held). */
static int zero_piece(BDRVQcow2State *s, const VdDriverReq *req, const Piece *p, bool unmap)
{
    Qcow2ClusterType type;
    uint64_t host;
    int ret = settled_mapping(s, p, &type, &host);
    if (ret < 0 || type == QCOW2_UNALLOCATED || type == QCOW2_ZERO_PLAIN) {
        return ret; /* reads as zeroes already (no backing file) */
    }
    bool whole = p->n == s->cluster_size;
    if (!whole || (s->h.version < 3 && !unmap)) {
        if (type != QCOW2_NORMAL) {
            return 0;
        }
        g_mutex_unlock(&s->lock);
        ret = zero_partial(s, req, host + p->in, p->n);
        g_mutex_lock(&s->lock);
        return ret;
    }
    bool free_old;
    uint64_t entry = zero_entry(s, type, host, unmap, &free_old);
    ret = qcow2_set_l2_entry(s, p->off, entry);
    if (ret >= 0 && free_old) {
        qcow2_free_cluster_deferred(s, host);
    }
    return ret;
}

/* Drop one whole cluster: unallocated, so it reads as zeroes (s->lock held). */
static int discard_piece(BDRVQcow2State *s, const Piece *p)
{
    Qcow2ClusterType type;
    uint64_t host;
    if (p->n != s->cluster_size) {
        return 0; /* advisory: part of a cluster stays */
    }
    int ret = settled_mapping(s, p, &type, &host);
    if (ret < 0 || type == QCOW2_UNALLOCATED) {
        return ret;
    }
    ret = qcow2_set_l2_entry(s, p->off, 0);
    if (ret >= 0 && (type == QCOW2_NORMAL || type == QCOW2_ZERO_ALLOC)) {
        qcow2_free_cluster_deferred(s, host);
    }
    return ret;
}

/* Run op on every cluster piece of req under the lock; write out if too many frees wait. */
static int for_each_piece(BDRVQcow2State *s, VdDriverReq *req, bool zero)
{
    int ret = 0;
    g_mutex_lock(&s->lock);
    for (uint64_t pos = 0; ret >= 0 && pos < req->bytes;) {
        Piece p = piece_at(s, req, pos);
        ret = zero ? zero_piece(s, req, &p, req->flags & VD_DRV_MAY_UNMAP) : discard_piece(s, &p);
        pos += p.n;
    }
    if (ret >= 0 && s->deferred_frees->len > QCOW2_MAX_DEFERRED_FREES) {
        ret = qcow2_writeout_all(s);
    }
    g_mutex_unlock(&s->lock);
    return ret;
}

int qcow2_write_zeroes(VdBlockDriverState *bs, VdDriverReq *req)
{
    return for_each_piece(bs->opaque, req, true);
}

int qcow2_discard(VdBlockDriverState *bs, VdDriverReq *req)
{
    return for_each_piece(bs->opaque, req, false);
}
