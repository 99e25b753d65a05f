/*
 * block-internal.h - shared between the files of the generic block layer.
 *
 * Lock rules:
 *  - Everything in VdBlockBackend is owned by the thread running blk->ctx,
 *    except: blk->stats host counters (atomic, written by workers through
 *    vd_drv_count), blk->faults (written under blk->fault_lock; count is
 *    stored atomically so vd_fault_pending may peek without the lock), and a VdRequest's
 *    exec fields while its job runs in a worker (the request is handed over
 *    wholesale: the owner thread does not touch it until it comes back
 *    through the completion queue).
 */
#ifndef VD_BLOCK_INTERNAL_H
#define VD_BLOCK_INTERNAL_H

#include "block/block-driver.h"

typedef enum VdReqType { VD_OP_READ, VD_OP_WRITE, VD_OP_FLUSH, VD_OP_DISCARD, VD_OP_ZEROES } VdReqType;

typedef struct VdRequest VdRequest;
typedef void VdRequestDoneFunc(VdRequest *req);

struct VdRequest {
    VdBlockBackend *blk;
    VdReqType type;
    uint64_t offset, bytes;
    const struct iovec *iov;
    int niov;
    unsigned flags;                 /* VD_REQ_* from the caller */
    VdBlockCompletionFunc *cb;
    void *opaque;
    int ret;
    gint64 start_us;
    GString *trace;                 /* host syscalls, when tracing */
    VdRequestDoneFunc *done;        /* owner-thread step after the worker job */

    /* Execution plan, decided on the owner thread before the job runs. */
    bool skip_exec;                 /* complete with ret without any host op */
    bool durable;                   /* must be durable at completion */
    bool fua_emulate;               /* durable by write + flush (no native FUA) */
    unsigned drv_flags;             /* VD_DRV_* for the data op */
    bool stage2;                    /* flush: also flush the OS to disk */
    bool internal;                  /* a write-cache toggle, not a guest flush */
    bool wce_target;                /* internal: the write-cache state asked for */
    bool serialised;                /* write range registered for RMW ordering */
    uint64_t align_off, align_end;  /* request expanded to the driver alignment */
    uint64_t flush_gen;             /* flush: write generation it must cover */
    bool was_cached_write;          /* counted in cached_writes_in_flight */
    bool rmw;                       /* offset or length not aligned: read-modify-write */
    const char *note;               /* why no host op happened, for the trace */
};

typedef struct VdWceNotifier {
    VdWriteCacheNotifyFunc *fn;
    void *opaque;
} VdWceNotifier;

typedef struct VdFaultSlot {
    int err;
    unsigned count;
} VdFaultSlot;

struct VdBlockBackend {
    GMainContext *ctx;
    VdBlockDriverState bs;
    char *filename;
    VdCacheMode cache_mode;
    VdWritethroughPolicy wt_policy;
    bool read_only;
    bool discard_enabled;
    int64_t length;
    char unique_id[VD_BLK_UNIQUE_ID_LEN + 1];   /* see vd_blk_unique_id */

    /* Capabilities, asked once at open. */
    VdFuaSupport cap_fua;
    bool cap_dsync, cap_discard, cap_zero;
    uint32_t req_align, mem_align;

    bool wce;
    GArray *wce_notifiers;          /* VdWceNotifier, in the order added */
    bool inactive;
    VdLocking locking;              /* locking= as given (the driver resolves auto) */
    int sticky_error;               /* 0, or the errno of the failed host flush */

    /* Flush state: generations count completed writes that still need a flush. */
    uint64_t write_gen, flushed_gen;
    VdRequest *active_flush;        /* the request whose host flush is running */
    GQueue flush_waiters;           /* flushes waiting for the active one */

    unsigned in_flight;
    unsigned cached_writes_in_flight;
    GQueue wce_off_waiters;         /* VdRequest (internal flush) waiting for cached writes */
    GList *serialising;             /* in-flight writes when req_align > 1 */
    GQueue serial_waiters;          /* writes waiting for an overlapping write */

    /* I/O engines. */
    VdAioEngine aio;
    bool aio_explicit;
    struct VdUring *uring;          /* aio=io_uring */
    GThreadPool *pool;
    GAsyncQueue *completions;
    int event_fd;
    GSource *event_source;
    void *zero_buf;                 /* VD_ZERO_BUF_SIZE aligned zero bytes */

    VdBlockStats stats;
    uint64_t latency[VD_LAT__MAX][VD_LAT_BUCKETS];
    VdTraceFunc *trace_fn;
    void *trace_opaque;

    GMutex fault_lock;
    VdFaultSlot faults[VD_FAULT__MAX];
};

#define VD_ZERO_BUF_SIZE (1u << 20)

/* Parsed option string. */
typedef struct VdBlockOptions {
    char *file;
    const VdBlockDriver *driver;
    VdCacheMode cache;
    VdWritethroughPolicy wt_policy;
    bool read_only;
    bool discard;
    VdAioEngine aio;
    bool aio_explicit;              /* aio= was given: no fallback */
    uint64_t size;
    bool size_set;
    VdLocking locking;
    bool active;                    /* active=off: a migration destination, see vd_blk_open */
} VdBlockOptions;

/* options.c */
bool vd_block_options_parse(const char *options, VdBlockOptions *out, GError **errp);
void vd_block_options_clear(VdBlockOptions *opts);
/* The locking= spelling of a mode. */
const char *vd_locking_name(VdLocking locking);

/* aio-pool.c: run req's job in a worker; req->done then runs on the owner thread. */
bool vd_aio_init(VdBlockBackend *blk, GError **errp);
void vd_aio_cleanup(VdBlockBackend *blk);
void vd_aio_submit(VdBlockBackend *blk, VdRequest *req);
void vd_aio_submit_to_pool(VdBlockBackend *blk, VdRequest *req);
/* Queue req for completion without running a job (deferred, never inline). */
void vd_aio_complete_later(VdBlockBackend *blk, VdRequest *req);

/* request-exec.c: the worker-side job (host ops) for one request. */
void vd_request_execute(VdBlockBackend *blk, VdRequest *req);
/* True if req can reach the driver without a bounce buffer. */
bool vd_request_is_aligned(VdBlockBackend *blk, VdRequest *req);
/* True if an injected fault of this kind is pending. */
bool vd_fault_pending(VdBlockBackend *blk, VdFaultOp op);

/* aio-uring.c: the io_uring engine for single-step ops. */
bool vd_uring_init(VdBlockBackend *blk, GError **errp);
void vd_uring_cleanup(VdBlockBackend *blk);
/* Submit req through io_uring if it is a single aligned op; false: use the pool. */
bool vd_uring_try_submit(VdBlockBackend *blk, VdRequest *req);

/* stats.c */
void vd_stats_record_latency(VdBlockBackend *blk, VdRequest *req);
void vd_stats_emit_trace(VdBlockBackend *blk, VdRequest *req, const char *note);

#endif
