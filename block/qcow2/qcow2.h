/*
 * qcow2.h - the qcow2 format driver, shared by its files (docs/qcow2.md):
 *   qcow2.c           the driver table, open and close
 *   qcow2-header.c    parse and validate the header and the L1 / refcount tables
 *   qcow2-cache.c     the metadata table cache (L2 tables, refcount blocks)
 *   qcow2-refcount.c  refcounts, cluster allocation, refcount-table growth, deferred frees
 *   qcow2-cluster.c   guest offset -> host cluster mapping: L1, L2, new L2 tables
 *   qcow2-io.c        read, write (allocating), write-zeroes, discard
 *   qcow2-flush.c     write-back in dependency order, the two flush stages, the dirty bit
 *   qcow2-repair.c    repair=leaks: recount every cluster's references at open, lower leaked refcounts
 *
 * Lock rules:
 *  - s->lock (a GMutex) protects every piece of metadata: the header copy,
 *    the L1 and refcount tables, both caches, the allocator (free_hint,
 *    fresh_idx), the in-flight allocations and the deferred frees.  Every
 *    metadata read and write to the child runs with it held, so the write-back
 *    order (below) is the order the child sees.
 *  - Guest data I/O to the child runs WITHOUT the lock: a write into an
 *    allocated cluster, and the data write of a new cluster.
 *  - A guest cluster being allocated is in s->inflight from the allocation of
 *    its host cluster until its L2 entry points there; another write to the
 *    same guest cluster waits on s->alloc_cond (with s->lock, counted in
 *    s->alloc_waiters: a finished allocation broadcasts only if someone
 *    waits) and then finds it allocated.  A new cluster's L2 entry is set only after its whole data
 *    (the guest's bytes plus zeroes for the rest) has been written, so a read
 *    racing the allocation sees the old mapping (zeroes), never stale data.
 *  - Open and close run on the owner thread with no I/O in flight.
 *
 * Dependency order of metadata writes (every level is made durable, with the
 * child's flush_to_disk, before a higher level that may point at it is
 * written; cache=unsafe skips those flushes, as it skips every host flush):
 *   HEADER_DIRTY < DATA < REFBLOCK < REFTABLE < L2 < L1
 * (DATA: a new cluster's data is durable before an L2 entry pointing at it,
 * or a cut could leave the entry pointing past the end of the file.)
 * Frees (refcount decrements) wait until the L2 entries that pointed at the
 * clusters are durable (qcow2-refcount.c).  So a cut at any point can only
 * leak clusters, never leave an entry pointing at a cluster with refcount 0.
 */
#ifndef VD_BLOCK_QCOW2_H
#define VD_BLOCK_QCOW2_H

#include "block/block-driver.h"

#define QCOW2_MAGIC 0x514649fbu           /* "QFI\xfb" */
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES (32u << 20)      /* QEMU's QCOW_MAX_L1_SIZE */
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20) /* QEMU's QCOW_MAX_REFTABLE_SIZE */
#define QCOW2_V2_HEADER_LENGTH 72
#define QCOW2_V3_HEADER_LENGTH 104

/* Incompatible feature bits. */
#define QCOW2_INCOMPAT_DIRTY   (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
/* Header extension types. */
#define QCOW2_EXT_BITMAPS 0x23852875u
/* Compatible feature bits. */
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

/* L1 / L2 / refcount-table entry bits. */
#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull /* bits 9..55 */
#define QCOW2_L1_RESERVED      0x7f000000000001ffull
#define QCOW2_L2_RESERVED      0x3f000000000001feull
#define QCOW2_RT_RESERVED      0x00000000000001ffull

/* The header fields the driver uses, in host order. */
typedef struct Qcow2Header {
    uint32_t version;
    uint32_t cluster_bits;
    uint64_t size;
    uint64_t backing_file_offset;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    bool has_bitmaps;           /* a bitmaps extension: its clusters are referenced from there (repair refuses) */
} Qcow2Header;

/* qcow2-header.c: pure functions on buffers (the fuzz target calls them too). */
/* Parse and validate the header in buf (the image's first len bytes); one error line names the field.
 * repair: a dirty image is accepted for writing (repair=leaks runs qcow2_repair_leaks on it). */
bool vd_qcow2_parse_header(const uint8_t *buf, size_t len, uint64_t file_len, bool read_only, bool repair,
                           Qcow2Header *h, GError **errp);
/* Validate the L1 table (big-endian entries, as on disk); converts it to host order in place. */
bool vd_qcow2_check_l1(const Qcow2Header *h, uint64_t *l1, uint64_t file_len, GError **errp);
/* Validate the refcount table (big-endian entries); converts it to host order in place. */
bool vd_qcow2_check_reftable(const Qcow2Header *h, uint64_t *rt, uint64_t entries, uint64_t file_len, GError **errp);
/* Store the incompatible and autoclear features into a header buffer of a v3 image. */
void vd_qcow2_store_features(uint8_t *buf, uint64_t incompatible, uint64_t autoclear);

/* One cached table (an L2 table or a refcount block). */
typedef struct Qcow2CacheEntry {
    uint64_t offset;            /* host offset of the table; 0: free slot */
    void *table;
    uint64_t lru;
    unsigned pins;              /* in use by the caller holding s->lock: not evicted */
    bool dirty;
} Qcow2CacheEntry;

typedef enum Qcow2Level {
    QCOW2_LVL_HEADER_DIRTY,
    QCOW2_LVL_DATA,             /* a new cluster's data: written by the request itself, before its L2 entry */
    QCOW2_LVL_REFBLOCK, QCOW2_LVL_REFTABLE, QCOW2_LVL_L2, QCOW2_LVL_L1,
    QCOW2_LVL__MAX,
} Qcow2Level;

typedef struct Qcow2Cache {
    Qcow2Level level;           /* where its tables sit in the write-back order */
    unsigned n;
    Qcow2CacheEntry *e;
    GHashTable *map;            /* &entry->offset -> entry, for the tables present */
    uint64_t lru_clock;
    uint64_t hits, misses, writes;
} Qcow2Cache;

typedef struct BDRVQcow2State {
    GMutex lock;
    GCond alloc_cond;
    unsigned alloc_waiters;     /* threads waiting on alloc_cond (s->lock): broadcast only if any */
    VdBlockDriverState *bs;
    Qcow2Header h;
    bool read_only;
    bool no_flush;              /* cache=unsafe: ordering points skip the child's flush_to_disk */
    uint32_t cluster_size;
    uint32_t align;             /* the child's request alignment (at least 512) */
    uint32_t mem_align;
    uint64_t l2_entries;        /* entries per L2 table */
    uint64_t refs_per_block;    /* refcount entries per refcount block */
    uint8_t *hdr_buf;           /* the first `align` bytes of the image (header), aligned */

    uint64_t *l1;               /* host order, h.l1_size entries */
    uint64_t l1_dirty_lo, l1_dirty_hi; /* dirty entry range [lo, hi); lo == hi: clean */
    uint64_t *rt;               /* refcount table, host order */
    uint64_t rt_entries;
    bool rt_dirty;
    Qcow2Cache l2_cache, rb_cache;

    uint64_t free_hint;         /* no free cluster below this index */
    uint64_t fresh_idx;         /* clusters from here on were never written: they read as zeroes */
    GHashTable *inflight;       /* guest cluster index + 1 being allocated */
    GArray *deferred_frees;     /* uint64 host offsets whose refcount drops after their L2 entries are durable */
    unsigned unsynced;          /* bit per Qcow2Level written since the child's last flush_to_disk */
    bool dirty_marked;          /* the dirty bit is set on disk (v3) */
    void *zero_cluster;         /* cluster_size zero bytes, aligned: the COW of a new cluster */
    uint64_t barriers;          /* child flushes issued for ordering */
    uint64_t meta_writes;       /* metadata writes so far: a stage-2 flush knows what it covered */
} BDRVQcow2State;

/* What a guest cluster maps to. */
typedef enum Qcow2ClusterType {
    QCOW2_UNALLOCATED, QCOW2_ZERO_PLAIN, QCOW2_ZERO_ALLOC, QCOW2_NORMAL,
} Qcow2ClusterType;

/* qcow2-cache.c (s->lock held) */
/* n empty slots of the cluster size for tables of that level. */
void qcow2_cache_init(Qcow2Cache *c, Qcow2Level level, unsigned n, BDRVQcow2State *s);
/* Free the slots (the caller wrote the dirty tables out first). */
void qcow2_cache_destroy(Qcow2Cache *c);
/* Pin the table at offset (read it, or zero it if fresh); evicts the least recently used unpinned table. */
int qcow2_cache_get(BDRVQcow2State *s, Qcow2Cache *c, uint64_t offset, bool fresh, void **table);
/* Unpin the table at offset. */
void qcow2_cache_put(Qcow2Cache *c, uint64_t offset);
/* The pinned table at offset was changed: write it back later. */
void qcow2_cache_mark_dirty(Qcow2Cache *c, uint64_t offset);
/* Write every dirty table of c to the child (after the lower levels, qcow2_order_before). */
int qcow2_cache_write_dirty(BDRVQcow2State *s, Qcow2Cache *c);

/* qcow2-flush.c (s->lock held) */
/* Write metadata to the child at offset, after making every lower dirty level durable. */
int qcow2_meta_write(BDRVQcow2State *s, Qcow2Level level, uint64_t offset, const void *buf, size_t len);
/* Read metadata from the child. */
int qcow2_meta_read(BDRVQcow2State *s, uint64_t offset, void *buf, size_t len);
/* Make every level below `level` written and durable (the child's flush unless no_flush). */
int qcow2_order_before(BDRVQcow2State *s, Qcow2Level level);
/* Stage 1: every level in order, then the deferred frees. */
int qcow2_writeout_all(BDRVQcow2State *s);
/* Write the header buffer s->hdr_buf as it is. */
int qcow2_write_header(BDRVQcow2State *s);
/* A write of level has reached the child and is not durable yet. */
void qcow2_note_unsynced(BDRVQcow2State *s, Qcow2Level level);
/* A child flush_to_disk as an ordering point (nothing under cache=unsafe). */
int qcow2_barrier(BDRVQcow2State *s);
/* Write everything out, make it durable, then clear the dirty bit (v3) durably. */
int qcow2_mark_clean(BDRVQcow2State *s);
/* Close: write everything out and clear the dirty bit. */
void qcow2_shutdown(BDRVQcow2State *s);
/* The driver's stage 1 and stage 2 (qcow2-flush.c). */
int qcow2_flush_to_os(VdBlockDriverState *bs, VdDriverReq *req);
int qcow2_flush_to_disk(VdBlockDriverState *bs, VdDriverReq *req);

/* qcow2-refcount.c (s->lock held) */
/* The refcount of a cluster (0 where no refcount block covers it). */
int qcow2_get_refcount(BDRVQcow2State *s, uint64_t cluster, uint64_t *ref);
/* Allocate one cluster (refcount 1); *fresh: it was never written, so it reads as zeroes. */
int qcow2_alloc_cluster(BDRVQcow2State *s, uint64_t *offset, bool *fresh);
/* Drop the refcount of a cluster now (nothing on disk points at it). */
int qcow2_free_cluster_now(BDRVQcow2State *s, uint64_t offset);
/* Drop it once the L2 entries that pointed at it are durable. */
void qcow2_free_cluster_deferred(BDRVQcow2State *s, uint64_t offset);
/* Apply the deferred frees (their L2 entries are durable). */
int qcow2_apply_deferred_frees(BDRVQcow2State *s);

/* qcow2-cluster.c (s->lock held) */
/* What is wrong with an L2 entry (compressed, reserved bits, misaligned, v2 zero flag), or NULL. */
const char *qcow2_l2_entry_problem(const BDRVQcow2State *s, uint64_t e);
/* The type and host cluster of a checked L2 entry. */
void qcow2_l2_entry_type(uint64_t e, Qcow2ClusterType *type, uint64_t *host);
/* The mapping of the guest cluster holding guest_off: its type and host cluster offset. */
int qcow2_get_mapping(BDRVQcow2State *s, uint64_t guest_off, Qcow2ClusterType *type, uint64_t *host);
/* Point the guest cluster at entry (an L2 entry), allocating its L2 table if needed. */
int qcow2_set_l2_entry(BDRVQcow2State *s, uint64_t guest_off, uint64_t entry);
/* Make sure the L2 table of guest_off exists (so that linking later cannot fail on allocation). */
int qcow2_ensure_l2(BDRVQcow2State *s, uint64_t guest_off);

/* qcow2-repair.c (open, owner thread, no I/O in flight) */
/* repair=leaks: lower every refcount above its references, durably, and clear the dirty bit; refuse
 * (changing nothing) if a refcount is below its references. */
bool qcow2_repair_leaks(BDRVQcow2State *s, uint64_t file_len, GError **errp);

/* qcow2-io.c (worker threads, take s->lock themselves) */
/* The driver's data callbacks. */
int qcow2_preadv(VdBlockDriverState *bs, VdDriverReq *req);
int qcow2_pwritev(VdBlockDriverState *bs, VdDriverReq *req);
int qcow2_write_zeroes(VdBlockDriverState *bs, VdDriverReq *req);
int qcow2_discard(VdBlockDriverState *bs, VdDriverReq *req);

extern const VdBlockDriver vd_driver_qcow2;

#endif
