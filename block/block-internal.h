/*
 * block-internal.h - shared between the files of the generic block layer.
 *
 * Layers (each calls only the ones below it; results come back up only as
 * completion callbacks, req->done, run on the owner thread):
 *
 *   block-backend.c   generic layer: validation, durability plan, overlap
 *        |            serialisation, flush generations, sticky errors
 *   engine.c          chooses the engine once at open (VdEngineOps); routes
 *        |            each request inline or to the engine
 *   aio-inline.c      non-durable page-cache I/O on the owner thread, and the
 *        |            ready list every deferred completion goes through
 *   aio-uring.c ----> aio-pool.c     io_uring runs single host ops itself and
 *        |               |           hands multi-step ones down to the pool
 *        |          request-exec.c   worker side: bounce, RMW, FUA emulation
 *        |               |
 *        |    aio-driver.c           or, for an asynchronous driver (aio_submit),
 *        |               |           every request as steps on the owner thread
 *   driver-call.c     the driver-boundary checkpoint: every call into a
 *        |            driver (and every io_uring op's prepare and result);
 *        |            takes the host faults and delays of fault.c
 *   drivers           file-posix.c (prepare: the one place fd + RWF chosen), null.c,
 *                     drivers with aio_submit (nbd, rbd)
 *        |
 *   host-op.c         leaf: count a host op from the fd and flags submitted, trace
 *
 * Lock rules:
 *  - Everything in VdBlockBackend is owned by the thread running blk->ctx,
 *    except: blk->stats host counters (atomic, written by workers through
 *    vd_drv_count / vd_drv_count_host_op), blk->faults (under
 *    blk->fault_lock), blk->bs.fd_flags (written once under blk->bs.fd_lock,
 *    read lock-free after n_fd_flags is published), the
 *    engine's completion queue (a GAsyncQueue), and a VdRequest's exec
 *    fields while its job runs in a worker (the request is handed over
 *    wholesale: the owner thread does not touch it until it comes back
 *    through the completion queue).
 *  - The io_uring ring belongs to the owner thread only.
 */
#ifndef VD_BLOCK_INTERNAL_H
#define VD_BLOCK_INTERNAL_H

#include "block/block-driver.h"
#include "util/align.h"
#include "util/hot.h"

#include <limits.h> /* IOV_MAX */

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
    bool group_commit;              /* durable write run plain, completed by a shared flush */
    bool durable_write;             /* counted in durable_writes_in_flight */
    bool fua_emulate;               /* durable by write + flush (no native FUA) */
    unsigned drv_flags;             /* VD_DRV_* for the data op */
    bool stage2;                    /* flush: also flush the OS to disk */
    bool internal;                  /* a write-cache toggle, not a guest flush */
    bool report_only;               /* the host's own request (migration): werror= never holds it */
    bool wce_target;                /* internal: the write-cache state asked for */
    bool sync_failed;               /* exec: a sync step (flush_to_disk, durable write) failed */
    uint64_t align_off, align_end;  /* request expanded to the driver alignment */
    uint64_t flush_gen;             /* flush: write generation it must cover */
    bool was_cached_write;          /* counted in cached_writes_in_flight */
    const char *note;               /* why no host op happened, for the trace */
    VdHostOp uring_op;              /* aio-uring.c: the op its SQE carries */
    VdRequest *next_ready;          /* aio-inline.c ready list / block-backend.c free list link */
    int ser_index;                  /* its entry in blk->serialising, -1 while not in it */
    struct VdCrashGuestOp *crash;   /* crashsim's record of this request, or NULL */
    uint64_t seq;                   /* submission order, for resuming held requests in order */
};

typedef struct VdWceNotifier {
    VdWriteCacheNotifyFunc *fn;
    void *opaque;
} VdWceNotifier;

typedef struct VdStopNotifier {
    VdStopNotifyFunc *fn;
    void *opaque;
} VdStopNotifier;

#define VD_SER_REGION_SHIFT 20      /* the overlap index counts ranges per 1 MiB region... */
#define VD_SER_BUCKETS 256          /* ...in this many buckets (region number modulo) */

/* An in-flight modifying request and a copy of its aligned range (fixed once set), kept in one array so the overlap scan reads memory in order. */
typedef struct VdSerialRange {
    uint64_t off, end;
    VdRequest *req;
} VdSerialRange;

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
    bool cap_write_through;         /* no volatile cache: the write cache is off for good */
    uint32_t req_align, mem_align;

    bool wce;
    GArray *wce_notifiers;          /* VdWceNotifier, in the order added */
    bool inactive;
    VdLocking locking;              /* locking= as given (the driver resolves auto) */
    int sticky_error;               /* 0, or the -errno of the first failed sync step */

    /* Flush state: generations count completed writes that still need a flush. */
    uint64_t write_gen, flushed_gen;
    VdRequest *active_flush;        /* the request whose host flush is running */
    GQueue flush_waiters;           /* flushes waiting for the active one */

    /* Group commit (block-backend.c): EWMA latency in us of a durable write per method, 0 = unmeasured. */
    unsigned durable_writes_in_flight;
    uint64_t commit_cost_single_us, commit_cost_group_us;
    unsigned commit_decisions;      /* counts decisions, to try the losing method now and then (no clock) */
    gint64 commit_probe_us;         /* when the losing method was last tried */
    bool group_flush_queued;        /* a group-commit flush waits on the ready list */
    unsigned group_writing;         /* group-commit writes dispatched whose data step has not finished */
    bool group_flush_held;          /* written group-commit writes wait for a flush held back... */
    unsigned group_flush_holdoff;   /* ...until this many more group-commit writes finish writing */

    unsigned in_flight;
    unsigned cached_writes_in_flight;
    GQueue wce_off_waiters;         /* VdRequest (internal flush) waiting for cached writes */
    VdSerialRange *serialising;     /* in-flight modifying requests (write, zeroes, discard), in no order... */
    unsigned n_serialising, serialising_cap;    /* ...n of them, room for cap (a plain array: no call per request) */
    /*
     * An index of serialising, kept only by serial_enter/serial_leave:
     * how many of its ranges touch each 1 MiB region (VD_SER_REGION_SHIFT),
     * hashed into VD_SER_BUCKETS buckets, and how many span so many
     * regions that they touch every bucket.  A request whose buckets are
     * all empty overlaps none of them, so serial_conflict skips the scan.
     */
    unsigned ser_bucket[VD_SER_BUCKETS];
    unsigned ser_wide;
    GQueue serial_waiters;          /* modifying requests waiting for an overlapping older one */

    /* The I/O engine, chosen once at open; NULL until then. */
    const struct VdEngineOps *engine;
    struct VdPool *pool;            /* aio-pool.c state (also used by io_uring) */
    struct VdUring *uring;          /* aio-uring.c state */
    struct VdInline *inline_path;   /* aio-inline.c: fast path and ready list */
    VdInlineMode inline_mode;       /* inline=, fixed at open */
    VdRequest *free_reqs;           /* finished requests kept for reuse (owner thread) */
    unsigned n_free_reqs;
    struct VdAioDrv *aiodrv;        /* aio-driver.c state */
    void *zero_buf;                 /* VD_ZERO_BUF_SIZE aligned zero bytes */

    VdBlockStats stats;
    bool latency_off;               /* vd_blk_set_latency_histograms(false): no clock reads */
    uint64_t latency[VD_LAT__MAX][VD_LAT_BUCKETS];
    VdTraceFunc *trace_fn;
    void *trace_opaque;

    GMutex fault_lock;
    VdFaultRule faults[VD_FAULT__MAX];  /* fault.c */
    unsigned delay_us[VD_FAULT__MAX];
    unsigned fault_armed_mask;          /* bit op: a rule or delay applies; written under fault_lock (fault.c) */

    struct VdCrashSim *crash;       /* the crashsim filter in the driver chain, or NULL */

    /* Error policy (block-backend.c, "error policy"); owner thread. */
    VdErrorPolicy werror, rerror;
    bool stopped;                   /* new requests go to stop_queue, not to the engine */
    GQueue held;                    /* failed requests kept for a retry, in seq order */
    GQueue stop_queue;              /* requests submitted while stopped, in order */
    GArray *stop_notifiers;         /* VdStopNotifier */
    uint64_t next_seq;
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
    VdInlineMode inline_mode;       /* inline= */
    bool active;                    /* active=off: a migration destination, see vd_blk_open */
    const VdBlockDriver *child;     /* a filter's child driver */
    const VdBlockDriver *child_child; /* child.child=: the child's own child (qcow2 over crashsim) */
    int format;                     /* format=: VD_FORMAT_* */
    bool format_set;
    uint64_t l2_cache_size, refcount_cache_size; /* qcow2 */
    bool qcow2_repair;              /* qcow2: repair=leaks */
    unsigned crash_tear;            /* crashsim: 0, 512 or 4096 */
    unsigned crash_samples;         /* crashsim: states per sampled cut */
    char *crash_log;                /* crashsim: log=, the op log written at close */
    bool crash_set;                 /* a crashsim-only option was given */
    VdErrorPolicy werror, rerror;
    VdFaultRule faults[VD_FAULT__MAX];  /* fault.OP= */
    unsigned delay_us[VD_FAULT__MAX];   /* delay.OP= */
    GPtrArray *driver_opts;             /* VdOpt: keys of the protocol driver's option_names */
} VdBlockOptions;

/* format= values: raw adds nothing, qcow2 puts the qcow2 driver on top of the chain. */
enum { VD_FORMAT_RAW, VD_FORMAT_QCOW2 };

/* options.c */
bool vd_block_options_parse(const char *options, VdBlockOptions *out, GError **errp);
void vd_block_options_clear(VdBlockOptions *opts);
/* Keep one of the protocol driver's own options (the caller has checked it is not given yet). */
void vd_block_options_add_driver_opt(VdBlockOptions *opts, const char *key, const char *value);
/*
 * filename-spelling.c: file=rbd:..., file=nbd:... (QEMU's protocol
 * filenames) become driver= and the driver's own options, unless another
 * driver= was given (driver_given: driver= appeared); false with errp set
 * if the filename is malformed.
 */
bool vd_block_filename_spelling(VdBlockOptions *o, bool driver_given, GError **errp);
/* The locking= spelling of a mode. */
const char *vd_locking_name(VdLocking locking);

/*
 * An I/O engine.  The generic layer talks to the engine only through this
 * table (via engine.c).  submit runs req's host ops and later, on the owner
 * thread, calls req->done, never from inside the submitting call.
 */
typedef struct VdEngineOps {
    const char *name;
    VdAioEngine kind;
    bool (*init)(VdBlockBackend *blk, GError **errp);  /* cleans up after itself on failure */
    void (*cleanup)(VdBlockBackend *blk);             /* nothing may be in flight */
    void (*submit)(VdBlockBackend *blk, VdRequest *req);
    /*
     * Submits in one batch per loop iteration, and the kernel completes a
     * cached read at submit: with other requests in flight, a read is
     * cheaper here than as its own inline syscall (aio-inline.c).
     */
    bool batches_reads;
} VdEngineOps;

/* engine.c: set blk->engine; the default (not explicit) io_uring falls back to threads. */
bool vd_engine_open(VdBlockBackend *blk, VdAioEngine aio, bool aio_explicit, GError **errp);
/* engine.c: tear down the engine and the inline path; nothing may be in flight. */
void vd_engine_close(VdBlockBackend *blk);
/*
 * engine.c: run req inline if it qualifies, else through the engine; req->done runs later.
 * True if it ran inline: its host op is over and req->ret holds the result.
 */
bool vd_engine_submit(VdBlockBackend *blk, VdRequest *req);
/* engine.c: call req->done from the ready list, without any host op. */
void vd_engine_complete_later(VdBlockBackend *blk, VdRequest *req);

/* aio-inline.c: the inline fast path and the ready list (owner thread). */
bool vd_inline_init(VdBlockBackend *blk, GError **errp);
void vd_inline_cleanup(VdBlockBackend *blk);
/* Run req inline if it is non-durable, aligned page-cache I/O; false: submit it to the engine. */
bool vd_inline_try(VdBlockBackend *blk, VdRequest *req);
/* Queue req for its done step at the next loop iteration. */
void vd_inline_complete_later(VdBlockBackend *blk, VdRequest *req);

/* aio-pool.c: a GThreadPool running request-exec.c jobs. */
extern const VdEngineOps vd_engine_pool;
/* aio-uring.c: io_uring for single host ops, the pool for the rest. */
extern const VdEngineOps vd_engine_uring;
/* aio-driver.c: every request through an asynchronous driver's aio_submit, in the owner's loop. */
extern const VdEngineOps vd_engine_driver;

/* request-exec.c: the worker-side job (host ops) for one request. */
void vd_request_execute(VdBlockBackend *blk, VdRequest *req);
/* A buffer of len bytes at the driver's memory alignment (free it with free), or NULL. */
void *vd_request_bounce_alloc(VdBlockBackend *blk, size_t len);
/* The discard req sends: [*start, *end), its range shrunk to whole driver blocks; false if none is sent. */
static inline bool vd_request_discard_range(VdBlockBackend *blk, VdRequest *req, uint64_t *start, uint64_t *end)
{
    *start = vd_align_up(req->offset, blk->req_align);
    *end = vd_align_down(req->offset + req->bytes, blk->req_align);
    return blk->cap_discard && *end > *start;
}
/* True if req can reach the driver without a bounce buffer. */
static inline bool vd_request_is_aligned(VdBlockBackend *blk, VdRequest *req)
{
    if (!vd_is_aligned(req->offset | req->bytes, blk->req_align) || req->niov > IOV_MAX) {
        return false;
    }
    for (int i = 0; i < req->niov; i++) {
        if (!vd_is_aligned((uintptr_t)req->iov[i].iov_base | req->iov[i].iov_len, blk->mem_align)) {
            return false;
        }
    }
    return true;
}

/* driver-call.c: the driver-boundary checkpoint. */
typedef enum VdDrvCall {
    VD_CALL_READ, VD_CALL_WRITE, VD_CALL_FLUSH_OS, VD_CALL_FLUSH_DISK, VD_CALL_DISCARD, VD_CALL_ZEROES,
    VD_CALL__MAX
} VdDrvCall;
/* Check dr, take an injected fault or prepare the host op, call the driver, check its result. */
int vd_driver_call(VdBlockBackend *blk, VdDrvCall call, VdDriverReq *dr);
/*
 * For an engine that submits host ops itself: check dr like vd_driver_call,
 * then take an injected fault (returned as its -errno) or have the driver
 * prepare the op (0; the op is checked against dr and the plan), or -ENOTSUP.
 */
int vd_driver_prepare(VdBlockBackend *blk, VdDrvCall call, VdDriverReq *dr, VdHostOp *op);
/*
 * For the aio-driver engine: check dr like vd_driver_call, then take an
 * injected fault (returned as its -errno; nothing submitted, cb never runs)
 * or count the host op and start it with the driver's aio_submit (0; cb runs
 * later, once).  The caller sleeps no delay here: see vd_driver_call_delay.
 */
int vd_driver_aio_submit(VdBlockBackend *blk, VdDrvCall call, VdDriverReq *dr, VdDrvAioCb *cb, void *opaque);
/* An asynchronous driver's result for dr: check it (0 or -errno), count the bytes, trace it. */
void vd_driver_aio_done(VdBlockBackend *blk, VdDrvCall call, VdDriverReq *dr, int ret);
/* The injected delay (delay.OP=) of a call, in microseconds. */
unsigned vd_driver_call_delay(VdBlockBackend *blk, VdDrvCall call);
/* Assert that a driver's (or a CQE's) result is 0, a byte count <= bytes, or -4095..-1. */
void vd_driver_check_result(uint64_t bytes, int64_t ret);
/* True if a failure of this call may have consumed a one-shot writeback error (a sync step). */
bool vd_driver_call_is_sync(VdDrvCall call, unsigned flags);

/*
 * error-policy.c: the action (VD_ERR_REPORT, VD_ERR_IGNORE or VD_ERR_STOP)
 * for a request that failed with err (negative) under policy; ignorable is
 * false for flushes and durable writes, which are never acknowledged on error.
 */
VdErrorPolicy vd_error_action(VdErrorPolicy policy, int err, bool ignorable);
/* Run every stop notifier, in the order added. */
void vd_error_notify_stop(VdBlockBackend *blk, bool is_read, int err);

/* fault.c: parse fault.OP= (ERRNO[@N[+]][/START-END]) and delay.OP= (2ms) values. */
bool vd_fault_rule_parse(const char *key, const char *value, VdFaultRule *out, GError **errp);
bool vd_fault_delay_parse(const char *key, const char *value, unsigned *us, GError **errp);
/*
 * The three queries below read fault.c's published mask first (one atomic
 * load, no lock): on the request path no rule is set, and that costs no call.
 * The *_slow halves, in fault.c, take the lock and read the rules.
 */
int vd_fault_take_slow(VdBlockBackend *blk, VdFaultOp op, uint64_t offset, uint64_t bytes);
bool vd_fault_armed_slow(VdBlockBackend *blk, VdFaultOp op);
unsigned vd_fault_delay_slow(VdBlockBackend *blk, VdFaultOp op);

/* True if op may have a rule or delay: false means nothing to take (fault.c publishes the mask). */
static inline bool vd_fault_maybe_armed(VdBlockBackend *blk, VdFaultOp op)
{
    return op < VD_FAULT__MAX && (__atomic_load_n(&blk->fault_armed_mask, __ATOMIC_ACQUIRE) & (1u << op));
}
/* The checkpoint: the errno an op of kind op at [offset, offset+bytes) fails with under the rules, or 0. */
static inline int vd_fault_take(VdBlockBackend *blk, VdFaultOp op, uint64_t offset, uint64_t bytes)
{
    return vd_fault_maybe_armed(blk, op) ? vd_fault_take_slow(blk, op, offset, bytes) : 0;
}
/*
 * True while a rule or a delay applies to ops of kind op: the inline path
 * then leaves them to the engine, so that a rule counts each op once (an
 * inline read that falls back would otherwise pass the checkpoint twice).
 */
static inline bool vd_fault_armed(VdBlockBackend *blk, VdFaultOp op)
{
    return vd_fault_maybe_armed(blk, op) && vd_fault_armed_slow(blk, op);
}
/* The delay of ops of kind op, in microseconds. */
static inline unsigned vd_fault_delay(VdBlockBackend *blk, VdFaultOp op)
{
    return vd_fault_maybe_armed(blk, op) ? vd_fault_delay_slow(blk, op) : 0;
}

/* stats.c */
/* Now, as the running loop iteration's cached time if called from a dispatch (one clock read per iteration). */
gint64 vd_stats_now(void);
/*
 * Bracket a dispatch of one of the backend's own sources (the ready list,
 * io_uring) that may finish many requests: vd_stats_now then answers from
 * a thread-local copy of the iteration's time instead of asking GLib (a
 * thread-local lookup and the context lock) twice per request.  Returns
 * the outer value to restore, since a callback may iterate the loop; a
 * request that such a nested iteration finishes through another source
 * (the pool's channel) is timed with the outer iteration's time.
 */
gint64 vd_stats_dispatch_begin(GSource *source);
void vd_stats_dispatch_end(gint64 outer);
/* The histogram bucket of a latency: floor(log2(us)), 0 for us <= 1, the last bucket for the longest. */
unsigned vd_stats_latency_bucket(gint64 us);
void vd_stats_record_latency(VdBlockBackend *blk, VdRequest *req);
void vd_stats_emit_trace(VdBlockBackend *blk, VdRequest *req, const char *note);

#endif
