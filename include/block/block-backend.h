/*
 * block-backend.h - the one block API every vdisk device uses.
 *
 * A VdBlockBackend is an open disk image plus the guest-visible write-cache
 * state that a device front end drives.  It turns guest-level operations
 * (read, write, FUA write, flush, discard, write-zeroes, write-cache toggle)
 * into host operations according to the host cache mode.
 *
 * Ownership:
 *  - vd_blk_open returns a backend the caller owns; vd_blk_close drains it
 *    and frees it.  Devices only borrow a backend: free every device
 *    attached to it (vd_ide_free, vd_virtio_blk_free, vd_virtio_scsi_free)
 *    before vd_blk_close.
 *  - Strings the backend returns (names, filename, unique id) are its own,
 *    valid until vd_blk_close; never free them.
 *  - Buffers and iovec arrays passed to an asynchronous call stay the
 *    caller's and must stay valid until its callback has run.  The opaque
 *    of a callback, notifier or trace sink is the caller's; remove a
 *    notifier before freeing what its opaque points to.
 *
 * Guarantees (the full table is docs/cache-modes.md):
 *  - Every asynchronous request completes exactly once, by calling its
 *    callback from the GMainContext given at open time, never from inside the
 *    submitting call.  ret is 0 on success or a negative errno.
 *  - Requests out of range fail with -ERANGE and never reach the driver;
 *    writes to a read-only backend fail with -EROFS; flush on a read-only
 *    backend succeeds.
 *  - With the write cache off, a write is durable when it completes.
 *  - A VD_REQ_FUA write is durable when it completes (except cache=unsafe).
 *  - A flush covers every write that completed before it was submitted.
 *  - After a failed sync step (a host flush's fdatasync, the flush of an
 *    emulated-FUA or WCE=0 write, or a durable RWF_DSYNC/O_DSYNC write),
 *    whatever its errno and the engine, every later flush and durable
 *    write fails with the same error until the backend is reopened (sticky
 *    error).
 *  - No write, write-zeroes or discard overtakes an older one to the same
 *    sector: a request overlapping an older one still in flight waits for it.
 *  - A failed request is reported, ignored or held per werror=/rerror=
 *    (see "Error policy" below); a held one completes after vd_blk_resume.
 *
 * Threading: all functions must be called from the thread that runs the
 * owner's GMainContext (the ctx given to vd_blk_open).  The I/O engines use
 * worker threads and io_uring internally, but every callback (completion,
 * write-cache notifier, trace sink) runs on the owner thread, from an
 * iteration of that context: the owner must keep iterating it
 * (g_main_context_iteration or a GMainLoop) or nothing completes.  The
 * synchronous wrappers (vd_blk_*_sync) iterate that context and are for
 * tests and tools only.
 */
#ifndef VD_BLOCK_BACKEND_H
#define VD_BLOCK_BACKEND_H

#include <gio/gio.h> /* GError domains: G_IO_ERROR */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

typedef struct VdBlockBackend VdBlockBackend;

/* The five host cache modes, in QEMU's -drive cache= spelling. */
typedef enum VdCacheMode {
    VD_CACHE_WRITEBACK,
    VD_CACHE_NONE,
    VD_CACHE_WRITETHROUGH,
    VD_CACHE_DIRECTSYNC,
    VD_CACHE_UNSAFE,
} VdCacheMode;

/* How a write is made durable while the guest write cache is off. */
typedef enum VdWritethroughPolicy {
    VD_WT_FUA,   /* each write is a FUA write: RWF_DSYNC, or write + fdatasync */
    VD_WT_DSYNC, /* writes go through a second descriptor opened O_DSYNC */
} VdWritethroughPolicy;

/* The I/O engine (aio=). */
typedef enum VdAioEngine {
    VD_AIO_THREADS,   /* a thread pool running preadv/pwritev/fdatasync */
    VD_AIO_IO_URING,  /* io_uring for single-step aligned ops, the pool for the rest;
                         the default, falling back to threads where io_uring is unavailable */
    VD_AIO_DRIVER,    /* the driver's own asynchronous I/O in the owner's loop (nbd, rbd);
                         always used for such a driver, never for another */
} VdAioEngine;

/* The inline fast path (inline=; docs/cache-modes.md, "I/O engines"). */
typedef enum VdInlineMode {
    VD_INLINE_AUTO,   /* the default: inline, with the adaptive write back-off */
    VD_INLINE_ON,     /* inline whenever the request qualifies; no back-off */
    VD_INLINE_OFF,    /* never: every host op goes to the engine (a fixed host path for traces) */
} VdInlineMode;

/* Request flags for vd_blk_pwritev / vd_blk_write_zeroes. */
#define VD_REQ_FUA       (1u << 0) /* durable at completion */
#define VD_REQ_MAY_UNMAP (1u << 1) /* write-zeroes may deallocate */

typedef void VdBlockCompletionFunc(void *opaque, int ret);

/* Guest-level and host-level counters.  Read them with vd_blk_get_stats. */
typedef struct VdBlockStats {
    /* guest level: what the device asked for */
    uint64_t reads, writes, fua_writes, flushes, discards, write_zeroes;
    uint64_t bytes_read, bytes_written;
    uint64_t wce_toggles;
    /* host level: what reached the host */
    /* host operations: syscalls, or io_uring operations with aio=io_uring */
    uint64_t host_reads, host_writes;     /* preadv/pwritev(2) calls */
    uint64_t host_fdatasync;              /* fdatasync(2) calls; a remote driver's flush (NBD_CMD_FLUSH) */
    uint64_t host_dsync_writes;           /* writes on a descriptor the kernel reports O_DSYNC */
    uint64_t host_rwf_dsync_writes;       /* writes submitted with RWF_DSYNC (pwritev2 or SQE), or a
                                             remote driver's FUA flag (NBD_CMD_FLAG_FUA) */
    uint64_t host_discards, host_zero_ranges; /* fallocate(2) calls, or a remote driver's trim / zero */
    uint64_t host_bytes_read, host_bytes_written;
    uint64_t bounce_rmw;                  /* read-modify-write cycles */
    uint64_t flushes_skipped;             /* nothing written since last flush */
    uint64_t flushes_coalesced;           /* served by another flush's fdatasync */
    uint64_t flushes_stage1_only;         /* cache=unsafe: fdatasync elided */
    uint64_t errors;                      /* guest requests that failed */
    uint64_t uring_ops;                   /* host ops that went through io_uring */
    uint64_t inline_ops;                  /* page-cache ops run on the owner thread (aio-inline.c) */
    uint64_t uring_submits;               /* io_uring_submit calls (one per loop iteration with SQEs) */
    uint64_t durable_writes;              /* guest writes made durable (WCE=0 or FUA) */
    uint64_t group_commits;               /* shared fdatasyncs covering several durable writes */
    uint64_t inline_backoffs;             /* times slow inline writes sent writes to the engine (aio-inline.c) */
} VdBlockStats;

/* Latency histogram: bucket i counts ops that took [2^i, 2^(i+1)) microseconds (bucket 0 from 0, the last without end). */
#define VD_LAT_BUCKETS 24
/* The lowest latency, in microseconds, that bucket i counts. */
static inline uint64_t vd_lat_bucket_floor_us(unsigned i) { return i ? UINT64_C(1) << i : 0; }
typedef enum VdLatencyClass { VD_LAT_READ, VD_LAT_WRITE, VD_LAT_FLUSH, VD_LAT_OTHER, VD_LAT__MAX } VdLatencyClass;

/* Host-op kinds a test can make fail (fault injection, see vd_blk_inject_error). */
typedef enum VdFaultOp {
    VD_FAULT_READ, VD_FAULT_WRITE, VD_FAULT_FLUSH, VD_FAULT_DISCARD, VD_FAULT__MAX
} VdFaultOp;

/* Every image is a whole number of these, at least one: vd_blk_open refuses others. */
#define VD_BLK_SECTOR 512
/* The largest image the backend addresses: INT64_MAX rounded down to a sector (size= limit). */
#define VD_BLK_MAX_BYTES ((uint64_t)INT64_MAX / VD_BLK_SECTOR * VD_BLK_SECTOR)

/*
 * Open a backend from a QEMU -drive style option string, for example
 * "file=disk.img,format=raw,cache=none,read-only=on,wt-policy=dsync".
 * Accepted keys: file, driver, format (raw, qcow2: docs/qcow2.md), child, child.child,
 * l2-cache-size, refcount-cache-size, repair (qcow2: off, leaks), cache, aio, inline, read-only,
 * wt-policy, discard, locking, active, werror, rerror, fault.OP and
 * delay.OP (OP: read, write, flush, discard), size (null driver only).  Device keys such
 * as if= and index= belong to the VMM, which removes them first.
 * Completions are delivered in ctx (NULL: the thread-default context).
 *
 * Fails with one line naming the file if the image is empty or its size is
 * not a multiple of VD_BLK_SECTOR (every device and tool gets the same
 * rule), or if another user holds a conflicting image lock: with locking=on
 * or auto (the default), a read-write open takes QEMU's "write" lock and
 * shares only reading; a read-only open shares only reading too.  Two opens
 * in one process conflict like two processes (OFD locks).
 *
 * active=off opens a migration destination (QEMU's spelling): inactive as
 * after vd_blk_inactivate, holding only a shared read lock, so it opens
 * while the source still writes; writes fail with -EPERM until
 * vd_blk_invalidate_cache.
 */
VdBlockBackend *vd_blk_open(const char *options, GMainContext *ctx, GError **errp);
/*
 * Refuse, as vd_blk_open would, every unknown key and bad value in options;
 * nothing is opened (a missing file= path is vd_blk_open's to find).
 */
bool vd_blk_check_options(const char *options, GError **errp);
/* Drain every request, then close the image and free the backend. */
void vd_blk_close(VdBlockBackend *blk);

/* Option-string spellings of the enums. */
const char *vd_cache_mode_name(VdCacheMode mode);
const char *vd_wt_policy_name(VdWritethroughPolicy policy);
const char *vd_aio_name(VdAioEngine aio);
const char *vd_inline_mode_name(VdInlineMode mode);

int64_t vd_blk_length(VdBlockBackend *blk);          /* bytes */
bool vd_blk_is_read_only(VdBlockBackend *blk);
VdCacheMode vd_blk_cache_mode(VdBlockBackend *blk);
VdWritethroughPolicy vd_blk_wt_policy(VdBlockBackend *blk);
/* The engine in use (after any fallback from the default). */
VdAioEngine vd_blk_aio(VdBlockBackend *blk);
const char *vd_blk_driver_name(VdBlockBackend *blk);
const char *vd_blk_filename(VdBlockBackend *blk);
/*
 * A name for the image, fixed at open, that devices use as their default
 * serial: "VD" and 16 upper-case hex digits hashed from the file's st_dev
 * and st_ino, so the same file opened twice (or by two processes) gets the
 * same name and two files get different ones.  Random per open for
 * driver=null.  It changes when the image is copied (a new inode).
 */
#define VD_BLK_UNIQUE_ID_LEN 18
const char *vd_blk_unique_id(VdBlockBackend *blk);
/* True if the image is open with O_DIRECT (cache=none, cache=directsync). */
bool vd_blk_is_direct(VdBlockBackend *blk);
/* True if the backend can do a native (single-syscall) FUA write. */
bool vd_blk_fua_native(VdBlockBackend *blk);
bool vd_blk_can_discard(VdBlockBackend *blk);
/* False between vd_blk_inactivate (or an active=off open) and vd_blk_invalidate_cache. */
bool vd_blk_is_active(VdBlockBackend *blk);
/* The locking= option as given: "auto", "on" or "off". */
const char *vd_blk_locking_name(VdBlockBackend *blk);

/* Asynchronous I/O.  iov must stay valid until the callback runs. */
void vd_blk_preadv(VdBlockBackend *blk, uint64_t offset, const struct iovec *iov, int niov,
                   VdBlockCompletionFunc *cb, void *opaque);
void vd_blk_pwritev(VdBlockBackend *blk, uint64_t offset, const struct iovec *iov, int niov,
                    unsigned flags, VdBlockCompletionFunc *cb, void *opaque);
void vd_blk_flush(VdBlockBackend *blk, VdBlockCompletionFunc *cb, void *opaque);
void vd_blk_discard(VdBlockBackend *blk, uint64_t offset, uint64_t bytes,
                    VdBlockCompletionFunc *cb, void *opaque);
void vd_blk_write_zeroes(VdBlockBackend *blk, uint64_t offset, uint64_t bytes, unsigned flags,
                         VdBlockCompletionFunc *cb, void *opaque);

/*
 * The guest-visible write cache.  Turning it on takes effect at once.
 * Turning it off (1->0) makes new writes durable at once, waits for writes
 * already in flight, then flushes; cb gets the flush result.  cb may be NULL.
 */
void vd_blk_set_write_cache(VdBlockBackend *blk, bool enable, VdBlockCompletionFunc *cb, void *opaque);
bool vd_blk_write_cache(VdBlockBackend *blk);
/*
 * True if the disk has no volatile cache to turn on (e.g. an NBD server
 * without flush: it acknowledges only durable writes).  Its write cache is
 * off from open on and stays off: turning it on completes with 0 and
 * changes nothing.  The one answer to "can this disk's write cache be
 * turned on": every device asks it to tell its guest there is no switchable
 * cache (SCSI: WCE 0 and not changeable, MODE SELECT WCE=1 fails 26/00; ATA:
 * IDENTIFY word 82 bit 5 clear, SET FEATURES 02h/82h abort; virtio-blk: the
 * writeback byte stays 0, a write of 1 is ignored).
 */
bool vd_blk_write_through_only(VdBlockBackend *blk);

/*
 * Write-cache change notification: the backend's write-cache state is the
 * only truth, and a device that shows it to its guest subscribes here to
 * learn of changes made by anyone (itself, the host, migration, a control
 * socket).  fn runs on the owner thread inside vd_blk_set_write_cache, right
 * after the state changed and before that call returns; it must not call
 * vd_blk_set_write_cache itself.  Notifiers run in the order they were added.
 */
typedef void VdWriteCacheNotifyFunc(void *opaque, bool enabled);
void vd_blk_add_write_cache_notifier(VdBlockBackend *blk, VdWriteCacheNotifyFunc *fn, void *opaque);
void vd_blk_remove_write_cache_notifier(VdBlockBackend *blk, VdWriteCacheNotifyFunc *fn, void *opaque);
/* The power-on write-cache state that the cache mode (and a write-through-only disk) implies. */
bool vd_blk_default_write_cache(VdBlockBackend *blk);

/* Number of requests submitted and not yet completed (held and queued ones included). */
unsigned vd_blk_in_flight(VdBlockBackend *blk);
/*
 * Iterate the owner's context until nothing is in flight.  On a stopped
 * backend (see "Error policy") it first ends the stop: held requests
 * complete with their error, queued ones are issued.  For teardown.
 */
void vd_blk_drain(VdBlockBackend *blk);
/*
 * Completion-callback depth of the calling thread.  The backend brackets
 * every request callback with enter/exit; a device that delivers
 * completions later (the SCSI disk's idle source) brackets its own.  A
 * device drain asserts !vd_blk_in_completion(): a drain that waits inside a
 * completion would wait for itself.
 */
void vd_blk_completion_enter(void);
void vd_blk_completion_exit(void);
bool vd_blk_in_completion(void);

/*
 * Migration.
 * inactivate (source): wait for every request issued to the host, flush
 * to stable storage (fdatasync unless cache=unsafe), release the write
 * lock while keeping a shared read lock that lets another process write,
 * then fail every later write with -EPERM until invalidate_cache.  On a
 * failed flush it returns false and stays active.  On a stopped backend
 * (error policy, vd_blk_stop) the parked requests stay parked and are not
 * covered by the flush: they never reached the disk, and a migration
 * carries them to the destination (docs/migration.md).
 * invalidate_cache (destination): wait for every request issued to the
 * host (parked ones stay parked), take the image lock of this open
 * again (the write lock unless read-only), drop the host page cache of the
 * image (posix_fadvise DONTNEED; nothing to drop with O_DIRECT), and allow
 * writes.  It makes no host flush: the destination has written nothing,
 * and the source's inactivate made the image durable.  If another process
 * holds a conflicting lock it returns false naming it, and the backend
 * stays as it was.
 */
bool vd_blk_inactivate(VdBlockBackend *blk, GError **errp);
bool vd_blk_invalidate_cache(VdBlockBackend *blk, GError **errp);

/* Observability. */
void vd_blk_get_stats(VdBlockBackend *blk, VdBlockStats *out);
void vd_blk_get_latency(VdBlockBackend *blk, VdLatencyClass cls, uint64_t out[VD_LAT_BUCKETS]);
/*
 * Latency histograms are on by default; off, requests read no clock at all.
 * On, a request's start and end are the loop iteration's cached time (one
 * clock read per loop iteration, shared by every request in it).
 */
void vd_blk_set_latency_histograms(VdBlockBackend *blk, bool enable);
/*
 * Tests: the clock (microseconds) the inline path times each inline write
 * with, to test the inline=auto back-off without wall time; NULL restores
 * g_get_monotonic_time.
 */
typedef gint64 VdClockFunc(void *opaque);
void vd_blk_set_inline_clock(VdBlockBackend *blk, VdClockFunc *now, void *opaque);
/* Print "key=value" pairs of every counter, space separated, no newline. */
void vd_blk_format_stats(VdBlockBackend *blk, GString *out);
/*
 * Trace sink: when set, one line per guest op is passed to fn, naming the op
 * and every host syscall it caused, e.g.
 *   "write off=0 len=4096 fua -> pwritev2(off=0,len=4096,RWF_DSYNC)=4096"
 */
typedef void VdTraceFunc(void *opaque, const char *line);
void vd_blk_set_trace(VdBlockBackend *blk, VdTraceFunc *fn, void *opaque);

/*
 * Host faults (blkdebug's role; docs/cache-modes.md, "Host faults"): one rule
 * per op kind, taken at the driver-boundary checkpoint.  The op kind's ops
 * that touch [start, end) (any offset when end is 0; a flush has none) are
 * counted: the first `after` pass, then `count` of them fail with -err
 * (VD_FAULT_ALWAYS: every later one).  err 0 clears the rule.
 */
#define VD_FAULT_ALWAYS UINT32_MAX
typedef struct VdFaultRule {
    int err;
    unsigned count;
    uint64_t after;
    uint64_t start, end;
} VdFaultRule;
void vd_blk_set_fault(VdBlockBackend *blk, VdFaultOp op, const VdFaultRule *rule);
/* Delay every host op of kind op by delay_us (at most 10 s) before it runs; 0: none. */
#define VD_FAULT_MAX_DELAY_US 10000000u
void vd_blk_set_delay(VdBlockBackend *blk, VdFaultOp op, unsigned delay_us);
/* Fault injection for tests: the next `count` host ops of kind `op` fail with -err. */
void vd_blk_inject_error(VdBlockBackend *blk, VdFaultOp op, int err, unsigned count);
/* Names: "read", "write", "flush", "discard"; errno names "EIO", "ENOSPC", "EDQUOT", ... */
const char *vd_fault_op_name(VdFaultOp op);
bool vd_fault_op_parse(const char *name, VdFaultOp *op);
bool vd_fault_errno_parse(const char *name, int *err);

/*
 * Error policy (werror= for writes, write-zeroes, discard and flushes;
 * rerror= for reads), QEMU's spellings and defaults (werror=enospc,
 * rerror=report).  The backend decides, once, when a request fails:
 *  - report: complete it with the error (the device maps it to its standard's error);
 *  - ignore: complete it as a success.  Never for a flush or a durable write
 *    (FUA, or the write cache off): acknowledging those would lose acknowledged
 *    data, so they are reported;
 *  - stop: hold the request (no callback) and stop the backend: every request
 *    submitted while stopped is queued, not issued, and the stop notifiers run;
 *  - enospc: stop for ENOSPC, report anything else.
 * A request that failed without a host op (range, read-only, sticky error) is
 * always reported.  vd_blk_resume re-issues the held requests in submission
 * order, re-planning each (so a held flush or durable write after a failed sync
 * step completes with the sticky error), then issues the queued ones in order.
 * vd_blk_drain and vd_blk_close on a stopped backend report the held requests
 * (their error) and issue the queued ones: nothing waits forever.  A device
 * that waits for its own requests (a reset) waits until then or vd_blk_resume.
 */
typedef enum VdErrorPolicy { VD_ERR_REPORT, VD_ERR_IGNORE, VD_ERR_STOP, VD_ERR_ENOSPC } VdErrorPolicy;
const char *vd_error_policy_name(VdErrorPolicy policy);
VdErrorPolicy vd_blk_werror(VdBlockBackend *blk);
VdErrorPolicy vd_blk_rerror(VdBlockBackend *blk);
/* Stop notification: fn runs on the owner thread when the backend enters the
 * stopped state; err is the held request's -errno, or 0 for vd_blk_stop. */
typedef void VdStopNotifyFunc(void *opaque, bool is_read, int err);
void vd_blk_add_stop_notifier(VdBlockBackend *blk, VdStopNotifyFunc *fn, void *opaque);
void vd_blk_remove_stop_notifier(VdBlockBackend *blk, VdStopNotifyFunc *fn, void *opaque);
/* Stop issuing requests (as a held error would; QMP stop); requests already issued still complete. */
void vd_blk_stop(VdBlockBackend *blk);
/* Leave the stopped state: retry the held requests in order, then issue the queued ones (cont). */
void vd_blk_resume(VdBlockBackend *blk);
/*
 * An operator's cont (QMP cont, qtest cont): on a stopped backend whose image
 * was handed over (inactive after a migration), take the image back first,
 * as QEMU's cont does; if another process holds it (the destination), fail
 * naming it and stay stopped.  Then vd_blk_resume.
 */
bool vd_blk_cont(VdBlockBackend *blk, GError **errp);
bool vd_blk_is_stopped(VdBlockBackend *blk);
/* Requests held after an error or queued while stopped (counted in vd_blk_in_flight). */
unsigned vd_blk_parked(VdBlockBackend *blk);

/* Synchronous wrappers for tests and tools; they iterate the owner's context. */
int vd_blk_pread_sync(VdBlockBackend *blk, uint64_t offset, void *buf, size_t bytes);
int vd_blk_pwrite_sync(VdBlockBackend *blk, uint64_t offset, const void *buf, size_t bytes, unsigned flags);
int vd_blk_flush_sync(VdBlockBackend *blk);
int vd_blk_discard_sync(VdBlockBackend *blk, uint64_t offset, uint64_t bytes);
int vd_blk_write_zeroes_sync(VdBlockBackend *blk, uint64_t offset, uint64_t bytes, unsigned flags);
int vd_blk_set_write_cache_sync(VdBlockBackend *blk, bool enable);

#endif
