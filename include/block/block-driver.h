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

/* Options a driver is opened with, already parsed and validated. */
typedef struct VdDriverOpenOptions {
    const char *filename;       /* NULL for drivers without a file */
    bool read_only;
    bool direct;                /* O_DIRECT */
    bool open_dsync_fd;         /* also open a second, O_DSYNC descriptor */
    uint64_t size;              /* null driver: image size in bytes */
    const struct VdBlockDriver *child; /* a filter's child driver (child=, or file when file= is given) */
    unsigned crash_tear;        /* crashsim: tear writes at 0 (never), 512 or 4096 bytes */
    unsigned crash_samples;     /* crashsim: states sampled per cut when too many to enumerate */
} VdDriverOpenOptions;

/* The per-open driver state.  The driver's own data lives in opaque. */
typedef struct VdBlockDriverState {
    const struct VdBlockDriver *drv;
    void *opaque;               /* drv->instance_size bytes, zeroed */
    VdBlockStats *stats;        /* host counters; update with vd_drv_count */
    struct VdBlockDriverState *child; /* a filter's child (the rest of the chain), or NULL */
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
    bool is_filter;             /* has a child: open it with vd_bdrv_open_child */

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
} VdBlockDriver;

extern const VdBlockDriver vd_driver_file;
/* Make a further driver (e.g. a test's) available to driver=NAME. */
void vd_block_register_driver(const VdBlockDriver *drv);
extern const VdBlockDriver vd_driver_null;

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
int vd_bdrv_discard(VdBlockDriverState *bs, VdDriverReq *req);
int vd_bdrv_write_zeroes(VdBlockDriverState *bs, VdDriverReq *req);

extern const VdBlockDriver vd_driver_crashsim;

/* Add n to a host counter from any thread. */
static inline void vd_drv_count(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* Append one "syscall(...)=result" trace entry if tracing is on. */
void vd_drv_trace(VdDriverReq *req, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

#endif
