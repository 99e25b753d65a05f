/*
 * block-driver.h - the contract between the generic block layer and a driver.
 *
 * A driver is a static const VdBlockDriver: a table of function pointers.
 * The generic layer (block/block-backend.c) owns all semantics: range and
 * alignment checks, bounce buffers, FUA emulation, flush skipping and
 * coalescing, sticky errors, stats.  A driver only performs host operations.
 *
 * Guarantees the generic layer gives a driver:
 *  - open/close and the capability callbacks run on the owner's thread;
 *    capabilities are asked once per open and cached.
 *  - I/O callbacks run in a worker thread of the I/O engine's pool and may
 *    block.  Several may run concurrently on the same state.  prepare may
 *    also run on the owner thread (the io_uring engine).
 *  - Every call passes one checkpoint (block/driver-call.c) that asserts:
 *    every offset and length is inside the image and a multiple of
 *    request_alignment; every iov buffer address and length is a multiple of
 *    mem_alignment and the iov adds up to bytes; VD_DRV_FUA is passed only if
 *    can_fua returned VD_FUA_NATIVE, VD_DRV_DSYNC only if can_dsync returned
 *    true (never both), VD_DRV_MAY_UNMAP only to write_zeroes.
 *
 * A driver returns 0 or a byte count (<= bytes) on success and a negative
 * errno (-4095..-1) on failure; the checkpoint asserts that too.
 *
 * An asynchronous driver (nbd, rbd) has aio_submit instead of the worker
 * callbacks: its I/O completes in the owner's GMainContext, with no thread.
 * The generic layer then runs every request through the aio-driver engine
 * (block/aio-driver.c): the same plan, the same checkpoint, the same faults.
 *
 * Durability of a host op is decided once.  The generic layer chooses the
 * plan (VD_DRV_FUA, VD_DRV_DSYNC, or a plain write followed by a flush); a
 * driver that talks to a descriptor turns it into one VdHostOp in prepare:
 * the only place that picks the descriptor and the RWF_* flags.  The
 * checkpoint prepares each read, write and flush_to_disk call and hands the
 * op to the driver in req->op; the io_uring engine submits the same op as
 * an SQE.  Whoever makes the syscall counts it with vd_drv_count_host_op
 * from the descriptor and flags it really used.  Other host counters are
 * counted with vd_drv_count; when req->trace is non-NULL, a driver appends
 * one "syscall(args)=result" entry per syscall with vd_drv_trace.
 */
#ifndef VD_BLOCK_DRIVER_H
#define VD_BLOCK_DRIVER_H

#include "block/block-backend.h"

#include <stdarg.h>

/*
 * How a durable write reaches the disk.  There is no "none": a driver
 * without a durable single write must make writes durable with its
 * flush_to_disk, which is what EMULATE means (the old VD_FUA_NONE meant the
 * same and was merged into it).  A can_fua of NULL means EMULATE.
 */
typedef enum VdFuaSupport {
    VD_FUA_EMULATE,  /* write, then the driver's flush_to_disk, before completion */
    VD_FUA_NATIVE,   /* pwritev with VD_DRV_FUA is durable by itself */
} VdFuaSupport;

/* Flags the generic layer passes to pwritev / write_zeroes. */
#define VD_DRV_FUA       (1u << 0) /* native FUA: e.g. pwritev2(RWF_DSYNC) */
#define VD_DRV_DSYNC     (1u << 1) /* write through the O_DSYNC descriptor */
#define VD_DRV_MAY_UNMAP (1u << 2)

/* Image locking (locking=): docs/cache-modes.md, "Image locking". */
typedef enum VdLocking {
    VD_LOCKING_AUTO, /* on where the host supports OFD locks, else off without a word */
    VD_LOCKING_ON,   /* on; an open fails where the host cannot lock */
    VD_LOCKING_OFF,  /* no locks taken, none checked */
} VdLocking;

/*
 * What one open of an image uses and refuses to share with other users, in
 * QEMU's permission model (each maps to QEMU's perm / shared-perm bits).
 */
typedef enum VdImagePerm {
    VD_PERM_NONE,     /* no claim at all (before the first lock, after close) */
    VD_PERM_READ,     /* read; others may read, nobody may write */
    VD_PERM_WRITE,    /* read and write; others may read, nobody else may write */
    VD_PERM_INACTIVE, /* migrated away: read, and let anyone write */
} VdImagePerm;

/* Options a driver is opened with, already parsed and validated. */
typedef struct VdDriverOpenOptions {
    const char *filename;       /* NULL for drivers without a file */
    bool read_only;
    bool direct;                /* O_DIRECT */
    bool open_dsync_fd;         /* also open a second, O_DSYNC descriptor */
    uint64_t size;              /* null driver: image size in bytes */
    VdLocking locking;          /* file drivers: whether set_perm locks */
    const struct VdBlockDriver *child; /* a filter's child driver (child=, or file when file= is given) */
    /* The drivers under the child, top first, NULL-terminated (child.child=), or NULL: vd_bdrv_open_child
     * opens the child with child = below_child[0]. */
    const struct VdBlockDriver *const *below_child;
    bool no_flush;              /* cache=unsafe: a driver's own ordering points skip flush_to_disk */
    uint64_t l2_cache_size;     /* qcow2: l2-cache-size= in bytes, 0: the default */
    uint64_t refcount_cache_size; /* qcow2: refcount-cache-size= in bytes, 0: the default */
    bool qcow2_repair;          /* qcow2: repair=leaks, lower refcounts above the references at open */
    unsigned crash_tear;        /* crashsim: tear writes at 0 (never), 512 or 4096 bytes */
    unsigned crash_samples;     /* crashsim: states sampled per cut when too many to enumerate */
    const char *crash_log;      /* crashsim: write the op log to this path at close (log=), or NULL */
    GMainContext *ctx;          /* the owner's context: an async driver attaches its sources here */
    GPtrArray *driver_opts;     /* VdOpt: the keys of the driver's option_names that were given; read with vd_drv_opt */
} VdDriverOpenOptions;

/* The value of a driver's own option key (one of its option_names), or NULL if not given. */
const char *vd_drv_opt(const VdDriverOpenOptions *opts, const char *key);

/* Descriptor open flags learnt from the kernel (F_GETFL), cached per open. */
#define VD_DRV_MAX_FDS 4
typedef struct VdDrvFdFlags {
    int fd;
    int flags;
} VdDrvFdFlags;

/* The per-open driver state.  The driver's own data lives in opaque. */
typedef struct VdBlockDriverState {
    const struct VdBlockDriver *drv;
    void *opaque;               /* drv->instance_size bytes, zeroed */
    VdBlockStats *stats;        /* host counters; update with vd_drv_count */
    /* Owned by driver-call.c: what the kernel says each descriptor is (written under fd_lock). */
    GMutex fd_lock;
    VdDrvFdFlags fd_flags[VD_DRV_MAX_FDS];
    unsigned n_fd_flags;
    struct VdBlockDriverState *child; /* a filter's child (the rest of the chain), or NULL */
} VdBlockDriverState;

/* The kind of one host syscall (or io_uring op) a driver can prepare. */
typedef enum VdHostOpKind { VD_HOST_READ, VD_HOST_WRITE, VD_HOST_FDATASYNC } VdHostOpKind;

/*
 * One host op exactly as it will be submitted: preadv2/pwritev2(fd, iov,
 * niov, offset, rwf) or fdatasync(fd), or the io_uring SQE with the same
 * fields.  rwf is RWF_DSYNC for native FUA, else 0.
 */
typedef struct VdHostOp {
    VdHostOpKind kind;
    int fd;
    int rwf;
    const struct iovec *iov;
    int niov;
    uint64_t offset, bytes;
} VdHostOp;

/* The operations an asynchronous driver runs (aio_submit). */
typedef enum VdDrvAioOp {
    VD_DRV_AIO_READ, VD_DRV_AIO_WRITE, VD_DRV_AIO_FLUSH, VD_DRV_AIO_DISCARD, VD_DRV_AIO_WRITE_ZEROES,
    VD_DRV_AIO__MAX
} VdDrvAioOp;

/* An asynchronous driver's completion: ret as a worker callback's result (0 or -errno). */
typedef void VdDrvAioCb(void *opaque, int ret);

/* One host-level request as a driver sees it. */
typedef struct VdDriverReq {
    uint64_t offset;
    uint64_t bytes;
    const struct iovec *iov;    /* preadv/pwritev only */
    int niov;
    unsigned flags;             /* VD_DRV_* */
    GString *trace;             /* non-NULL: append syscall trace entries */
    const VdHostOp *op;         /* preadv/pwritev/flush_to_disk of a driver with prepare: run this */
} VdDriverReq;

typedef struct VdBlockDriver {
    const char *name;           /* "file", "null" */
    size_t instance_size;
    bool needs_filename;
    bool is_filter;             /* has a child: open it with vd_bdrv_open_child */
    bool remote;                /* takes neither file= nor size=: its options name the image (nbd, rbd) */
    const char *const *option_names; /* NULL-terminated keys of its own (uri=, pool=...), or NULL */

    bool (*open)(VdBlockDriverState *bs, const VdDriverOpenOptions *opts, GError **errp);
    void (*close)(VdBlockDriverState *bs);
    int64_t (*get_length)(VdBlockDriverState *bs);

    /* Capabilities: asked once per open. */
    VdFuaSupport (*can_fua)(VdBlockDriverState *bs);
    bool (*can_dsync)(VdBlockDriverState *bs);
    bool (*can_discard)(VdBlockDriverState *bs);
    bool (*can_zero)(VdBlockDriverState *bs);
    uint32_t (*request_alignment)(VdBlockDriverState *bs); /* NULL: 1 */
    uint32_t (*mem_alignment)(VdBlockDriverState *bs);     /* NULL: 1 */

    /* I/O: run in worker threads. */
    int (*preadv)(VdBlockDriverState *bs, VdDriverReq *req);
    int (*pwritev)(VdBlockDriverState *bs, VdDriverReq *req);
    int (*flush_to_os)(VdBlockDriverState *bs, VdDriverReq *req);   /* stage 1; NULL: nothing cached */
    int (*flush_to_disk)(VdBlockDriverState *bs, VdDriverReq *req); /* stage 2: fdatasync */
    int (*discard)(VdBlockDriverState *bs, VdDriverReq *req);       /* -ENOTSUP: advisory no-op */
    int (*write_zeroes)(VdBlockDriverState *bs, VdDriverReq *req);  /* -ENOTSUP: layer writes zeroes */
    int (*drop_page_cache)(VdBlockDriverState *bs, VdDriverReq *req);

    /*
     * Optional, for drivers that talk to a descriptor: describe req (a read,
     * a write with its VD_DRV_* flags, or a flush_to_disk) as one host op.
     * The only place where the descriptor and the RWF_* flags are chosen.
     * 0, or -ENOTSUP if it cannot be one host op (then only the driver's
     * own callbacks can run it).
     */
    int (*prepare)(VdBlockDriverState *bs, VdHostOpKind kind, const VdDriverReq *req, VdHostOp *out);

    /*
     * Optional, owner thread: claim perm on the image against other users
     * (other processes, and other opens in this one), or fail with one line
     * naming the file and the other user's mode and leave the old claim in
     * place.  The generic layer calls it after open (READ or WRITE), on
     * inactivate (INACTIVE) and on invalidate_cache.  NULL: nothing to lock.
     */
    bool (*set_perm)(VdBlockDriverState *bs, VdImagePerm perm, GError **errp);

    /*
     * Optional: an asynchronous driver (instead of preadv..write_zeroes,
     * which it leaves NULL).  Owner thread only.  Start op on req (the same
     * range, iovecs and VD_DRV_* flags a worker callback would get; FLUSH is
     * stage 2, the protocol's flush; DISCARD may end in -ENOTSUP, advisory;
     * WRITE_ZEROES in -ENOTSUP, then the engine writes zeroes) and call
     * cb(opaque, ret) exactly once, later, from the owner's GMainContext
     * (VdDriverOpenOptions.ctx), never inside aio_submit: 0 when the whole
     * range is done, or a negative errno.  req and its iovecs stay valid
     * until cb.  Many requests may be in flight at once, in any order.
     * A failure that leaves the outcome unknown (a dropped connection) is an
     * error, never a success: a flush is reported successful only when the
     * remote end said so.  The generic layer uses the aio-driver engine for
     * every request of such a driver (block/aio-driver.c), and drains every
     * request before close.
     */
    void (*aio_submit)(VdBlockDriverState *bs, VdDrvAioOp op, VdDriverReq *req, VdDrvAioCb *cb, void *opaque);

    /*
     * Optional, asked once per open: true if every completed write is
     * durable by itself (the remote end has no volatile cache and no flush,
     * e.g. an NBD server without NBD_FLAG_SEND_FLUSH).  The disk is then
     * write-through only: the write cache is off and stays off.  NULL: false.
     */
    bool (*write_through_only)(VdBlockDriverState *bs);
} VdBlockDriver;

extern const VdBlockDriver vd_driver_file;
/* Make a further driver (e.g. a test's) available to driver=NAME. */
void vd_block_register_driver(const VdBlockDriver *drv);
extern const VdBlockDriver vd_driver_null;
extern const VdBlockDriver vd_driver_null_aio;

/*
 * The driver chain (driver-chain.c).  A filter opens its child with the same
 * options; the vd_bdrv_* helpers call a driver's callback, or give the
 * answer for a driver that has none, so a filter passes each one down.
 */
bool vd_bdrv_open_child(VdBlockDriverState *parent, const VdBlockDriver *drv, const VdDriverOpenOptions *opts,
                        GError **errp);
void vd_bdrv_close_child(VdBlockDriverState *parent);
/* The first driver state of type drv in the chain starting at bs, or NULL. */
VdBlockDriverState *vd_bdrv_find(VdBlockDriverState *bs, const VdBlockDriver *drv);
VdFuaSupport vd_bdrv_can_fua(VdBlockDriverState *bs);
bool vd_bdrv_can_dsync(VdBlockDriverState *bs);
bool vd_bdrv_can_discard(VdBlockDriverState *bs);
bool vd_bdrv_can_zero(VdBlockDriverState *bs);
uint32_t vd_bdrv_request_alignment(VdBlockDriverState *bs);
uint32_t vd_bdrv_mem_alignment(VdBlockDriverState *bs);
/* Stage 1 of a flush: this driver's caches to its child, then the child's, down the chain. */
int vd_bdrv_flush_to_os(VdBlockDriverState *bs, VdDriverReq *req);
/* Stage 2: the protocol at the bottom of the chain flushes to the disk. */
int vd_bdrv_flush_to_disk(VdBlockDriverState *bs, VdDriverReq *req);
/* A child's read or write; its host op is prepared here when the child prepares its own. */
int vd_bdrv_preadv(VdBlockDriverState *bs, VdDriverReq *req);
int vd_bdrv_pwritev(VdBlockDriverState *bs, VdDriverReq *req);
/* Pass an image claim (locking) down to a child. */
bool vd_bdrv_set_perm(VdBlockDriverState *bs, VdImagePerm perm, GError **errp);
int vd_bdrv_discard(VdBlockDriverState *bs, VdDriverReq *req);
int vd_bdrv_write_zeroes(VdBlockDriverState *bs, VdDriverReq *req);

extern const VdBlockDriver vd_driver_crashsim;
extern const VdBlockDriver vd_driver_nbd;
/* Ceph RBD through librbd (block/rbd.c); built where librbd-dev is installed (VD_HAVE_RBD). */
extern const VdBlockDriver vd_driver_rbd;
extern const VdBlockDriver vd_driver_qcow2;

/* Add n to a host counter from any thread. */
static inline void vd_drv_count(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/*
 * Count one host op at submission from what was really submitted: the
 * descriptor (host_dsync_writes if the kernel says it is O_DSYNC) and the
 * RWF flags (host_rwf_dsync_writes for RWF_DSYNC).  Any thread.
 */
void vd_drv_count_host_op(VdBlockDriverState *bs, VdHostOpKind kind, int fd, int rwf);
/* The open flags (F_GETFL) of one of the driver's descriptors, cached; -1 if fd is bad. */
int vd_drv_fd_flags(VdBlockDriverState *bs, int fd);

/* Append one "syscall(...)=result" trace entry if tracing is on. */
void vd_drv_trace(VdDriverReq *req, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

#endif
