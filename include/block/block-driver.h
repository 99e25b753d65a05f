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
 *    block.  Several may run concurrently on the same state.
 *  - Every offset and length is inside the image and a multiple of
 *    request_alignment; every iov buffer address and length is a multiple of
 *    mem_alignment.
 *  - VD_DRV_FUA is passed only if can_fua returned VD_FUA_NATIVE, and
 *    VD_DRV_DSYNC only if can_dsync returned true.
 *
 * A driver returns >= 0 on success and a negative errno on failure.  It
 * counts every host syscall it makes in req->stats (atomically, with
 * vd_drv_count) and, when req->trace is non-NULL, appends one
 * "syscall(args)=result" entry per syscall with vd_drv_trace.
 */
#ifndef VD_BLOCK_DRIVER_H
#define VD_BLOCK_DRIVER_H

#include "block/block-backend.h"

#include <stdarg.h>

typedef enum VdFuaSupport {
    VD_FUA_NONE,     /* no durable single write: the generic layer flushes after */
    VD_FUA_EMULATE,  /* the driver's flush makes a write durable: write + flush */
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
} VdDriverOpenOptions;

/* The per-open driver state.  The driver's own data lives in opaque. */
typedef struct VdBlockDriverState {
    const struct VdBlockDriver *drv;
    void *opaque;               /* drv->instance_size bytes, zeroed */
    VdBlockStats *stats;        /* host counters; update with vd_drv_count */
} VdBlockDriverState;

/* One host-level request as a driver sees it. */
typedef struct VdDriverReq {
    uint64_t offset;
    uint64_t bytes;
    const struct iovec *iov;    /* preadv/pwritev only */
    int niov;
    unsigned flags;             /* VD_DRV_* */
    GString *trace;             /* non-NULL: append syscall trace entries */
} VdDriverReq;

typedef struct VdBlockDriver {
    const char *name;           /* "file", "null" */
    size_t instance_size;
    bool needs_filename;

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
     * Optional, for aio=io_uring: the descriptor that a single aligned
     * read/write with these VD_DRV_* flags (RWF_DSYNC is added by the engine
     * for VD_DRV_FUA), or a datasync flush (flags 0), can be issued on.
     * -1: not possible, the thread pool runs the driver op instead.
     */
    int (*get_fd)(VdBlockDriverState *bs, unsigned drv_flags);

    /*
     * Optional, owner thread: claim perm on the image against other users
     * (other processes, and other opens in this one), or fail with one line
     * naming the file and the other user's mode and leave the old claim in
     * place.  The generic layer calls it after open (READ or WRITE), on
     * inactivate (INACTIVE) and on invalidate_cache.  NULL: nothing to lock.
     */
    bool (*set_perm)(VdBlockDriverState *bs, VdImagePerm perm, GError **errp);
} VdBlockDriver;

extern const VdBlockDriver vd_driver_file;
/* Make a further driver (e.g. a test's) available to driver=NAME. */
void vd_block_register_driver(const VdBlockDriver *drv);
extern const VdBlockDriver vd_driver_null;

/* Add n to a host counter from any thread. */
static inline void vd_drv_count(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* Append one "syscall(...)=result" trace entry if tracing is on. */
void vd_drv_trace(VdDriverReq *req, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

#endif
