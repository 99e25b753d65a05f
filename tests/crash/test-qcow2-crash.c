/*
 * test-qcow2-crash.c - power cuts under a qcow2 image (docs/qcow2.md).
 *
 * The chain is qcow2 -> crashsim -> file, so every cut hits the qcow2
 * file's own writes: data, refcount blocks, refcount tables, L2 and L1
 * tables, the header.  A seeded guest submits batches of allocating writes
 * (some FUA), write-zeroes, discards and flushes, and switches the write
 * cache off and on; at random points, often with requests in flight, the
 * test takes a cut and materialises every crash state of the FILE
 * (vd_blk_crash_states).  Each state must
 *  - read back every promised write (the guest's own promise log: FUA,
 *    write cache off, completed before a completed FLUSH), read through the
 *    image's own L1/L2 tables, and
 *  - pass `qemu-img check` with at most leaks (exit 0 or 3, never 2).
 * qemu-img check reads only metadata and the file length, so it runs once
 * per distinct metadata (hashed): the same structural check runs in process
 * on every distinct metadata state, and qemu-img check on the first
 * --qemu-checks of them (0: all), whose verdicts must agree with it.  The
 * promise check runs on every state.  Up to --repairs distinct states (leaky
 * ones, and every 8th other) are also opened with repair=leaks: afterwards
 * they must be clean (dirty bit clear, both checks exit 0, not 3) and keep
 * every promise.
 *
 * Usage: test-qcow2-crash [--states N] [--seed S] [--cluster-size BYTES] [--qemu-checks N] [--repairs N]
 * Exit 0 pass, 1 failure, 77 skip (no qemu-img).
 */
#include "block/block-backend.h"
#include "block/crashsim.h"
#include "util/bswap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DISK_BYTES (32u << 20)
#define BLOCK 4096u
#define NBLOCKS (DISK_BYTES / BLOCK)
#define SECT 512u
#define MAX_CHECKS 8            /* qemu-img checks at once */

/* One version of a guest block: content id (0: zeroes) or "anything" (a discard). */
typedef struct Ver {
    uint32_t id;
    bool any;
} Ver;

/* A guest block's versions in submission order, and the last promised one. */
typedef struct Block {
    GArray *vers;
    guint promised;
} Block;

typedef enum Kind { K_WRITE, K_FUA, K_ZEROES, K_ZEROES_UNMAP, K_DISCARD } Kind;

/* One guest request in flight. */
typedef struct Req {
    Kind kind;
    uint32_t block, nblocks, id;
    guint ver[4];               /* version index per block */
    uint8_t *buf;
    struct iovec iov;
    bool done, promised_at_done;
    int ret;
} Req;

typedef struct Test {
    VdBlockBackend *blk;
    Block blocks[NBLOCKS];
    GArray *touched;            /* uint32 blocks with versions */
    GPtrArray *unflushed;       /* Req* completed since the last flush was submitted */
    GPtrArray *all;             /* every Req, owned */
    uint32_t next_id;
    bool wce;
    uint8_t *base;
    gsize base_len;
    char *dir, *img, *check_img;
    uint32_t cs;
    GHashTable *meta_seen;      /* metadata hashes already checked */
    GQueue *checks;             /* Check*, running */
    uint64_t cut_points, states, distinct, qemu_checks, qemu_max, leaky, failures;
    uint64_t repairs, repair_max;  /* states opened with repair=leaks, at most */
} Test;

static void die(const char *fmt, ...) G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN;
/* Print one line and exit 1. */
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* The stamp of sector s of write id: id, sector, then a pattern. */
static void stamp(uint8_t *p, uint32_t id, uint64_t s)
{
    memset(p, (int)((id * 131 + s) & 0xff) | 1, SECT);
    vd_st_le64(p, id);
    vd_st_le64(p + 8, s);
}

/* The write id a sector holds (0 for zeroes), or UINT32_MAX if it is no write's stamp. */
static uint32_t stamp_id(const uint8_t *p, uint64_t s)
{
    static const uint8_t zero[SECT];
    if (!memcmp(p, zero, SECT)) {
        return 0;
    }
    uint64_t id = vd_ld_le64(p);
    uint8_t want[SECT];
    if (id == 0 || id > UINT32_MAX) {
        return UINT32_MAX;
    }
    stamp(want, (uint32_t)id, s);
    return memcmp(p, want, SECT) ? UINT32_MAX : (uint32_t)id;
}

/* ---- reading a crash state through its own qcow2 tables ---- */

typedef struct View {
    const uint8_t *p;
    size_t len;
    uint32_t cs;
    uint64_t l1_off, l1_size, rt_off, rt_bytes;
} View;

/* A big-endian u64 of the image, 0 past its end. */
static uint64_t be64_at(const View *v, uint64_t off)
{
    return off + 8 <= v->len ? vd_ld_be64(v->p + off) : 0;
}

/* Read the header fields the view needs from a state's bytes. */
static void view_init(View *v, const GByteArray *img)
{
    *v = (View){ .p = img->data, .len = img->len };
    v->cs = 1u << vd_ld_be32(img->data + 20);
    v->l1_size = vd_ld_be32(img->data + 36);
    v->l1_off = vd_ld_be64(img->data + 40);
    v->rt_off = vd_ld_be64(img->data + 48);
    v->rt_bytes = (uint64_t)vd_ld_be32(img->data + 56) * v->cs;
}

/* Guest sector at guest_off: a pointer into the image, or to zeroes. */
static const uint8_t *view_sector(const View *v, uint64_t guest_off)
{
    static const uint8_t zero[SECT];
    uint64_t cl = guest_off / v->cs, l2n = v->cs / 8;
    uint64_t l2 = be64_at(v, v->l1_off + cl / l2n * 8) & 0x00fffffffffffe00ull;
    if (!l2) {
        return zero;
    }
    uint64_t e = be64_at(v, l2 + cl % l2n * 8);
    uint64_t host = e & 0x00fffffffffffe00ull;
    if ((e & 1) || !host) {
        return zero;
    }
    uint64_t off = host + guest_off % v->cs;
    return off + SECT <= v->len ? v->p + off : zero;
}

/* Mix bytes [off, off+len) of the image (past its end: nothing) into h, a word at a time. */
static uint64_t hash_range(uint64_t h, const View *v, uint64_t off, uint64_t len)
{
    uint64_t end = MIN(off + len, (uint64_t)v->len), i = off;
    for (; i + 8 <= end; i += 8) {
        uint64_t w;
        memcpy(&w, v->p + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    for (; i < end; i++) {
        h = (h ^ v->p[i]) * 0x100000001b3ull;
    }
    return h;
}

/* A hash of everything qemu-img check reads: the header cluster, L1, L2s, refcount table and blocks, the length. */
static uint64_t view_meta_hash(const View *v)
{
    uint64_t h = 0xcbf29ce484222325ull ^ v->len;
    h = hash_range(h, v, 0, v->cs);
    h = hash_range(h, v, v->l1_off, v->l1_size * 8);
    for (uint64_t i = 0; i < v->l1_size; i++) {
        uint64_t l2 = be64_at(v, v->l1_off + i * 8) & 0x00fffffffffffe00ull;
        h = l2 ? hash_range(h, v, l2, v->cs) : h;
    }
    h = hash_range(h, v, v->rt_off, v->rt_bytes);
    for (uint64_t i = 0; i < v->rt_bytes / 8; i++) {
        uint64_t rb = be64_at(v, v->rt_off + i * 8) & ~0x1ffull;
        h = rb ? hash_range(h, v, rb, v->cs) : h;
    }
    return h;
}

/* Count one reference to the cluster at off; false if it starts at or past the end of the file (qemu-img: an error). */
static bool add_ref(const View *v, GHashTable *refs, uint64_t off)
{
    uint64_t c = off / v->cs;
    g_hash_table_insert(refs, GSIZE_TO_POINTER(c + 1),
                        GSIZE_TO_POINTER(GPOINTER_TO_SIZE(g_hash_table_lookup(refs, GSIZE_TO_POINTER(c + 1))) + 1));
    return off < v->len;
}

/* The refcount the image's own refcount blocks give the cluster c. */
static uint64_t refcount_of(const View *v, uint64_t c)
{
    uint64_t per = v->cs / 2, rb = be64_at(v, v->rt_off + c / per * 8) & ~0x1ffull;
    if (c / per * 8 >= v->rt_bytes || !rb || rb + v->cs > v->len) {
        return 0;
    }
    return vd_ld_be16(v->p + rb + c % per * 2);
}

/*
 * The structural check qemu-img check makes, in process: every cluster the metadata points at (header,
 * L1, refcount table, L2 tables, refcount blocks, data) has a refcount at least its references.
 * 0: clean, 3: leaks only, 2: corrupt (what qemu-img check exits with).
 */
static int view_check(const View *v)
{
    g_autoptr(GHashTable) refs = g_hash_table_new(g_direct_hash, g_direct_equal);
    bool ok = add_ref(v, refs, 0);
    for (uint64_t off = v->l1_off; off < v->l1_off + v->l1_size * 8; off += v->cs) {
        ok &= add_ref(v, refs, off);
    }
    for (uint64_t off = v->rt_off; off < v->rt_off + v->rt_bytes; off += v->cs) {
        ok &= add_ref(v, refs, off);
    }
    for (uint64_t i = 0; i < v->l1_size; i++) {
        uint64_t l2 = be64_at(v, v->l1_off + i * 8) & 0x00fffffffffffe00ull;
        if (!l2) {
            continue;
        }
        ok &= add_ref(v, refs, l2);
        for (uint64_t j = 0; j < v->cs / 8; j++) {
            uint64_t host = be64_at(v, l2 + j * 8) & 0x00fffffffffffe00ull;
            if (host) {
                ok &= add_ref(v, refs, host);
            }
        }
    }
    for (uint64_t i = 0; i < v->rt_bytes / 8; i++) {
        uint64_t rb = be64_at(v, v->rt_off + i * 8) & ~0x1ffull;
        if (rb) {
            ok &= add_ref(v, refs, rb);
        }
    }
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init(&it, refs);
    while (ok && g_hash_table_iter_next(&it, &key, &val)) {
        ok = refcount_of(v, GPOINTER_TO_SIZE(key) - 1) >= GPOINTER_TO_SIZE(val);
    }
    if (!ok) {
        return 2;
    }
    /* A leak: a cluster of the file whose refcount is above its references (qemu-img looks no further). */
    uint64_t per = v->cs / 2, file_clusters = (v->len + v->cs - 1) / v->cs;
    for (uint64_t i = 0; i < v->rt_bytes / 8; i++) {
        uint64_t rb = be64_at(v, v->rt_off + i * 8) & ~0x1ffull;
        for (uint64_t j = 0; rb && rb + v->cs <= v->len && j < per && i * per + j < file_clusters; j++) {
            uint64_t ref = vd_ld_be16(v->p + rb + j * 2);
            if (ref > GPOINTER_TO_SIZE(g_hash_table_lookup(refs, GSIZE_TO_POINTER(i * per + j + 1)))) {
                return 3;
            }
        }
    }
    return 0;
}

/* ---- the oracle ---- */

/* Check every promised block of one state; returns false (and says why) on a lost promise. */
static bool check_promises(Test *t, const View *v, uint64_t cut, uint64_t k)
{
    for (guint i = 0; i < t->touched->len; i++) {
        uint32_t b = g_array_index(t->touched, uint32_t, i);
        Block *bl = &t->blocks[b];
        bool any = false;
        for (guint j = bl->promised; j < bl->vers->len; j++) {
            any |= g_array_index(bl->vers, Ver, j).any;
        }
        for (unsigned s = 0; !any && s < BLOCK / SECT; s++) {
            uint64_t sector = (uint64_t)b * (BLOCK / SECT) + s;
            uint32_t got = stamp_id(view_sector(v, sector * SECT), sector);
            bool ok = false;
            for (guint j = bl->promised; j < bl->vers->len && !ok; j++) {
                ok = g_array_index(bl->vers, Ver, j).id == got;
            }
            if (!ok) {
                fprintf(stderr, "FAIL cut %" G_GUINT64_FORMAT " state %" G_GUINT64_FORMAT ": sector %" G_GUINT64_FORMAT
                        " holds write %d, promised write %u (or a later one)\n", cut, k, sector,
                        got == UINT32_MAX ? -1 : (int)got, g_array_index(bl->vers, Ver, bl->promised).id);
                return false;
            }
        }
    }
    return true;
}

/* One qemu-img check running on a state's file. */
typedef struct Check {
    GPid pid;
    char *path;
    uint64_t cut, k;
    int expect;                 /* view_check's verdict: qemu-img must agree */
} Check;

/* Wait for the oldest running check and count its verdict: exit 0 clean, 3 leaks, anything else a failure. */
static void check_reap(Test *t)
{
    Check *c = g_queue_pop_head(t->checks);
    int status;
    if (waitpid(c->pid, &status, 0) != c->pid) {
        die("waitpid: %s", g_strerror(errno));
    }
    g_spawn_close_pid(c->pid);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    if (code != c->expect) {
        fprintf(stderr, "FAIL cut %" G_GUINT64_FORMAT " state %" G_GUINT64_FORMAT ": qemu-img check exit %d, the "
                "in-process check said %d; the state is kept in %s\n", c->cut, c->k, code, c->expect, c->path);
        t->failures++;
    } else if (code != 0 && code != 3) {
        fprintf(stderr, "FAIL cut %" G_GUINT64_FORMAT " state %" G_GUINT64_FORMAT ": qemu-img check exit %d; "
                "the state is kept in %s\n", c->cut, c->k, code, c->path);
        t->failures++;
    } else {
        unlink(c->path);
    }
    g_free(c->path);
    g_free(c);
}

/* Write a state's bytes to a file, plainly: g_file_set_contents would fsync every state. */
static void save_state(const char *path, const GByteArray *img)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, img->data, img->len) != (ssize_t)img->len || close(fd) != 0) {
        die("%s: %s", path, g_strerror(errno));
    }
}

/* Start qemu-img check on one state's file; a few run at once (they mostly wait for the disk). */
static void check_start(Test *t, const GByteArray *img, uint64_t cut, uint64_t k, int expect)
{
    while (g_queue_get_length(t->checks) >= MAX_CHECKS) {
        check_reap(t);
    }
    Check *c = g_new0(Check, 1);
    c->cut = cut;
    c->k = k;
    c->expect = expect;
    c->path = g_strdup_printf("%s/state-%" G_GUINT64_FORMAT ".qcow2", t->dir, t->qemu_checks);
    save_state(c->path, img);
    g_autoptr(GError) err = NULL;
    const char *argv[] = { "qemu-img", "check", "-q", "-f", "qcow2", c->path, NULL };
    if (!g_spawn_async(NULL, (char **)argv, NULL,
                       G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
                           G_SPAWN_STDERR_TO_DEV_NULL,
                       NULL, NULL, &c->pid, &err)) {
        die("qemu-img: %s", err->message);
    }
    g_queue_push_tail(t->checks, c);
    t->qemu_checks++;
}

/*
 * Open a crash state with repair=leaks and close it: the repaired file must be clean (no dirty bit, the
 * in-process check and qemu-img check both exit 0) and still keep every promise.
 */
static void repair_state(Test *t, const GByteArray *img, uint64_t k)
{
    g_autofree char *path = g_strdup_printf("%s/repair.qcow2", t->dir);
    save_state(path, img);
    g_autofree char *opts = g_strdup_printf("file=%s,format=qcow2,repair=leaks,cache=unsafe,aio=threads", path);
    g_autoptr(GError) err = NULL;
    VdBlockBackend *blk = vd_blk_open(opts, NULL, &err);
    t->repairs++;
    if (!blk) {
        fprintf(stderr, "FAIL cut %" G_GUINT64_FORMAT " state %" G_GUINT64_FORMAT ": repair=leaks refused it: %s\n",
                t->cut_points, k, err->message);
        t->failures++;
        return;
    }
    vd_blk_close(blk);
    gchar *data;
    gsize len;
    if (!g_file_get_contents(path, &data, &len, NULL)) {
        die("cannot read %s", path);
    }
    g_autoptr(GByteArray) fixed = g_byte_array_new_take((guint8 *)data, len);
    View v;
    view_init(&v, fixed);
    int verdict = view_check(&v);
    if (!check_promises(t, &v, t->cut_points, k) || verdict != 0 || (vd_ld_be64(fixed->data + 72) & 1)) {
        fprintf(stderr, "FAIL cut %" G_GUINT64_FORMAT " state %" G_GUINT64_FORMAT ": after repair=leaks the "
                "in-process check says %d, dirty bit %d\n", t->cut_points, k, verdict,
                (int)(vd_ld_be64(fixed->data + 72) & 1));
        t->failures++;
    }
    check_start(t, fixed, t->cut_points, k, 0);
}

/* Cut now: every crash state of the file must keep the promises and pass qemu-img check. */
static void cut(Test *t)
{
    g_autoptr(GError) err = NULL;
    uint64_t seed = 1000 + t->cut_points;
    VdCrashStates *st = vd_blk_crash_states(t->blk, t->base, t->base_len, seed, &err);
    if (!st) {
        die("cut: %s", err->message);
    }
    uint64_t n = vd_crash_states_count(st);
    for (uint64_t k = 0; k < n; k++) {
        const GByteArray *img = vd_crash_states_image(st, k);
        View v;
        view_init(&v, img);
        if (!check_promises(t, &v, t->cut_points, k)) {
            t->failures++;
        }
        uint64_t h = view_meta_hash(&v);
        if (!g_hash_table_contains(t->meta_seen, &h)) {
            g_hash_table_add(t->meta_seen, g_memdup2(&h, sizeof(h)));
            int verdict = view_check(&v);
            t->distinct++;
            t->leaky += verdict == 3;
            if (verdict != 0 && verdict != 3) {
                fprintf(stderr, "FAIL cut %" G_GUINT64_FORMAT " state %" G_GUINT64_FORMAT ": an entry points at a "
                        "cluster with too low a refcount, or metadata past the end of the file\n", t->cut_points, k);
                t->failures++;
            }
            if (!t->qemu_max || t->qemu_checks < t->qemu_max || verdict == 2) {
                check_start(t, img, t->cut_points, k, verdict);
            }
            if (t->repairs < t->repair_max && (verdict == 3 || t->distinct % 8 == 0)) {
                repair_state(t, img, k); /* leaky states first, and a sample of the others */
            }
        }
    }
    t->states += n;
    t->cut_points++;
    vd_crash_states_free(st);
}

/* ---- the guest ---- */

/* Free a request and its buffer. */
static void req_free(gpointer p)
{
    Req *r = p;
    g_free(r->buf);
    g_free(r);
}

/* A promise: version ver of block b (and the older ones) must survive. */
static void promise(Test *t, uint32_t b, guint ver)
{
    t->blocks[b].promised = MAX(t->blocks[b].promised, ver);
}

/* Completion of a guest request. */
static void req_done(void *opaque, int ret)
{
    Req *r = opaque;
    r->ret = ret;
    r->done = true;
}

/* Submit one request on blocks [b, b+n). */
static Req *submit(Test *t, Kind kind, uint32_t b, uint32_t n)
{
    Req *r = g_new0(Req, 1);
    g_ptr_array_add(t->all, r);
    *r = (Req){ .kind = kind, .block = b, .nblocks = n, .id = ++t->next_id };
    r->promised_at_done = (kind == K_FUA || !t->wce) && kind != K_DISCARD;
    for (uint32_t i = 0; i < n; i++) {
        Block *bl = &t->blocks[b + i];
        if (!bl->vers) {
            bl->vers = g_array_new(FALSE, FALSE, sizeof(Ver));
            Ver zero = { 0 };
            g_array_append_val(bl->vers, zero); /* the base: durable, zeroes */
            uint32_t bb = b + i;
            g_array_append_val(t->touched, bb);
        }
        Ver v = { .id = (kind == K_WRITE || kind == K_FUA) ? r->id : 0, .any = kind == K_DISCARD };
        r->ver[i] = bl->vers->len;
        g_array_append_val(bl->vers, v);
    }
    uint64_t off = (uint64_t)b * BLOCK, len = (uint64_t)n * BLOCK;
    switch (kind) {
    case K_WRITE:
    case K_FUA:
        r->buf = g_malloc(len);
        for (uint64_t s = 0; s < len / SECT; s++) {
            stamp(r->buf + s * SECT, r->id, off / SECT + s);
        }
        r->iov = (struct iovec){ r->buf, len };
        vd_blk_pwritev(t->blk, off, &r->iov, 1, kind == K_FUA ? VD_REQ_FUA : 0, req_done, r);
        break;
    case K_ZEROES:
    case K_ZEROES_UNMAP:
        vd_blk_write_zeroes(t->blk, off, len, kind == K_ZEROES_UNMAP ? VD_REQ_MAY_UNMAP : 0, req_done, r);
        break;
    case K_DISCARD:
        vd_blk_discard(t->blk, off, len, req_done, r);
        break;
    }
    return r;
}

/* Run the loop until every request of reqs (and the flush, if any) completed; then keep the promises. */
static void complete_all(Test *t, GPtrArray *reqs, Req *flush, GPtrArray *flush_covers)
{
    for (;;) {
        bool all = !flush || flush->done;
        for (guint i = 0; i < reqs->len; i++) {
            all &= ((Req *)g_ptr_array_index(reqs, i))->done;
        }
        if (all) {
            break;
        }
        g_main_context_iteration(NULL, TRUE);
    }
    for (guint i = 0; i < reqs->len; i++) {
        Req *r = g_ptr_array_index(reqs, i);
        if (r->ret) {
            die("request %u failed: %s", r->id, g_strerror(-r->ret));
        }
        if (r->promised_at_done) {
            for (uint32_t j = 0; j < r->nblocks; j++) {
                promise(t, r->block + j, r->ver[j]);
            }
        }
        g_ptr_array_add(t->unflushed, r);
    }
    if (flush) {
        if (flush->ret) {
            die("flush failed: %s", g_strerror(-flush->ret));
        }
        for (guint i = 0; i < flush_covers->len; i++) {
            Req *r = g_ptr_array_index(flush_covers, i);
            for (uint32_t j = 0; r->kind != K_DISCARD && j < r->nblocks; j++) {
                promise(t, r->block + j, r->ver[j]);
            }
        }
    }
}

/* Completion of a flush request. */
static void flush_done_cb(void *opaque, int ret)
{
    req_done(opaque, ret);
}

/* One step: a batch of 1-4 requests on distinct blocks, maybe a flush with it, cuts while in flight or after. */
static void step(Test *t, GRand *r)
{
    static const Kind kinds[] = { K_WRITE, K_WRITE, K_WRITE, K_WRITE, K_WRITE, K_WRITE, K_FUA,
                                  K_ZEROES, K_ZEROES_UNMAP, K_DISCARD };
    g_autoptr(GPtrArray) reqs = g_ptr_array_new();
    unsigned n = g_rand_int_range(r, 1, 5);
    uint32_t hot = g_rand_int_range(r, 0, NBLOCKS / 64); /* a hot 256 KiB region: shared clusters and L2s */
    for (unsigned i = 0; i < n; i++) {
        uint32_t nb = g_rand_int_range(r, 1, 5);
        uint32_t b = g_rand_boolean(r) ? hot * 64 + i * 16 + g_rand_int_range(r, 0, 12)
                                       : (uint32_t)g_rand_int_range(r, 0, (gint32)(NBLOCKS - nb));
        bool clash = false;
        for (guint j = 0; j < reqs->len; j++) {
            Req *o = g_ptr_array_index(reqs, j);
            clash |= b < o->block + o->nblocks && o->block < b + nb;
        }
        if (!clash) {
            g_ptr_array_add(reqs, submit(t, kinds[g_rand_int_range(r, 0, G_N_ELEMENTS(kinds))], b, nb));
        }
    }
    Req *flush = NULL;
    g_autoptr(GPtrArray) covers = g_ptr_array_new();
    if (g_rand_int_range(r, 0, 4) == 0) {
        /* A flush now covers what completed before it: the previous batches, not this one. */
        g_ptr_array_extend_and_steal(covers, g_steal_pointer(&t->unflushed));
        t->unflushed = g_ptr_array_new_with_free_func(NULL);
        flush = g_new0(Req, 1);
        vd_blk_flush(t->blk, flush_done_cb, flush);
    }
    if (g_rand_boolean(r)) {
        cut(t);
    }
    complete_all(t, reqs, flush, covers);
    g_free(flush);
    if (g_rand_int_range(r, 0, 3) == 0) {
        cut(t);
    }
    if (g_rand_int_range(r, 0, 40) == 0) {
        t->wce = !t->wce;
        if (vd_blk_set_write_cache_sync(t->blk, t->wce) != 0) {
            die("write cache switch failed");
        }
        if (!t->wce) {
            /* The switch drained and flushed: everything completed so far is promised. */
            for (guint i = 0; i < t->unflushed->len; i++) {
                Req *q = g_ptr_array_index(t->unflushed, i);
                for (uint32_t j = 0; q->kind != K_DISCARD && j < q->nblocks; j++) {
                    promise(t, q->block + j, q->ver[j]);
                }
            }
        }
    }
}

int main(int argc, char **argv)
{
    uint64_t target = 2000, seed = 2026, cs = 4096, qemu_max = 100, repair_max = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        uint64_t *dst = !strcmp(argv[i], "--states") ? &target : !strcmp(argv[i], "--seed") ? &seed
                      : !strcmp(argv[i], "--cluster-size") ? &cs : !strcmp(argv[i], "--qemu-checks") ? &qemu_max
                      : !strcmp(argv[i], "--repairs") ? &repair_max : NULL;
        if (!dst) {
            die("unknown option '%s'; accepted: --states N, --seed S, --cluster-size BYTES, --qemu-checks N (0: all), "
                "--repairs N", argv[i]);
        }
        *dst = g_ascii_strtoull(argv[i + 1], NULL, 10);
    }
    g_autofree char *qemu_img = g_find_program_in_path("qemu-img");
    if (!qemu_img) {
        printf("SKIP qcow2-crash: qemu-img not found (apt-get install qemu-utils)\n");
        return 77;
    }
    Test t = { .cs = (uint32_t)cs, .wce = true, .qemu_max = qemu_max, .repair_max = repair_max };
    t.dir = g_dir_make_tmp("vdisk-qcow2-crash-XXXXXX", NULL);
    t.img = g_build_filename(t.dir, "disk.qcow2", NULL);
    t.check_img = g_build_filename(t.dir, "state.qcow2", NULL);
    g_autofree char *create = g_strdup_printf("qemu-img create -q -f qcow2 -o cluster_size=%" G_GUINT64_FORMAT
                                              " '%s' %u", cs, t.img, DISK_BYTES);
    if (system(create) != 0 || !g_file_get_contents(t.img, (char **)&t.base, &t.base_len, NULL)) {
        die("cannot create %s", t.img);
    }
    g_autofree char *opts = g_strdup_printf("driver=qcow2,child=crashsim,child.child=file,file=%s,aio=threads,"
                                            "samples=32", t.img);
    g_autoptr(GError) err = NULL;
    t.blk = vd_blk_open(opts, NULL, &err);
    if (!t.blk) {
        die("open: %s", err->message);
    }
    t.touched = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    t.unflushed = g_ptr_array_new_with_free_func(NULL);
    t.all = g_ptr_array_new_with_free_func(req_free);
    t.meta_seen = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    t.checks = g_queue_new();
    g_autoptr(GRand) r = g_rand_new_with_seed((guint32)seed);
    gint64 t0 = g_get_monotonic_time();
    while (t.states < target && !t.failures) {
        step(&t, r);
    }
    while (!g_queue_is_empty(t.checks)) {
        check_reap(&t);
    }
    g_queue_free(t.checks);
    vd_blk_close(t.blk);
    const char *argv_check[] = { "qemu-img", "check", "-q", t.img, NULL };
    int status;
    g_spawn_sync(NULL, (char **)argv_check, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, NULL);
    printf("qcow2-crash cluster_size=%" G_GUINT64_FORMAT " seed=%" G_GUINT64_FORMAT ": %" G_GUINT64_FORMAT
           " crash states at %" G_GUINT64_FORMAT " cut points, %" G_GUINT64_FORMAT " distinct metadata states (%"
           G_GUINT64_FORMAT " with leaks), %" G_GUINT64_FORMAT " of them also by qemu-img check, %" G_GUINT64_FORMAT
           " repaired with repair=leaks, %" G_GUINT64_FORMAT " failures, %.1f s; clean close: qemu-img check exit %d\n", cs, seed, t.states, t.cut_points, t.distinct,
           t.leaky, t.qemu_checks, t.repairs,
           t.failures, (g_get_monotonic_time() - t0) / 1e6, WEXITSTATUS(status));
    g_ptr_array_free(t.all, TRUE);
    g_ptr_array_free(t.unflushed, TRUE);
    g_array_free(t.touched, TRUE);
    g_hash_table_destroy(t.meta_seen);
    for (uint32_t b = 0; b < NBLOCKS; b++) {
        if (t.blocks[b].vers) {
            g_array_free(t.blocks[b].vers, TRUE);
        }
    }
    g_free(t.base);
    g_autofree char *rm = g_strdup_printf("rm -rf '%s'", t.dir);
    if (!t.failures) {
        (void)!system(rm); /* else the failing states stay for a look */
    }
    g_free(t.dir);
    g_free(t.img);
    g_free(t.check_img);
    return t.failures || WEXITSTATUS(status) != 0 ? 1 : 0;
}
