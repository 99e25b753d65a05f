/*
 * crashsim-internal.h - the power-cut simulator, shared by its files:
 *   crashsim.c        the filter driver: the HOST-level model (durable map,
 *                     volatile and in-flight writes), fed by every driver op
 *   crashsim-guest.c  the GUEST-level log (VdCrashGuest): what was promised,
 *                     fed by hooks in block-backend.c or by a guest itself
 *   crashsim-cut.c    a cut: enumerate or sample crash states, run the oracle
 *   crashsim-log.c    the op log in dm-log-writes format
 *
 * Lock rules:
 *  - host side (durable, pending, log, host_seq): written by worker threads
 *    inside driver ops and read by a cut on the owner thread, always under
 *    cs->lock.
 *  - guest side (cs->seen, a VdCrashGuest): the owner thread only (the
 *    backend's submit and completion paths, and the cut); so is a guest's
 *    own VdCrashGuest.
 *  A cut takes cs->lock for its whole duration: a power cut is an instant,
 *  and workers that want to record an op simply wait for it.
 */
#ifndef VD_BLOCK_CRASHSIM_H
#define VD_BLOCK_CRASHSIM_H

#include "block-internal.h"
#include "block/crashsim.h"

#define VD_CRASH_SECTOR 512u

/* Per-sector content tokens; a content hash always has its low bit set. */
#define VD_CRASH_BASE     ((uint64_t)0) /* the image's content before crashsim saw a write */
#define VD_CRASH_DISCARD  ((uint64_t)2) /* discarded: reads back as anything */
#define VD_CRASH_ANY      ((uint64_t)4) /* partly written sector: not checked */

typedef enum VdCrashOpKind { VD_CRASH_OP_WRITE, VD_CRASH_OP_ZEROES, VD_CRASH_OP_DISCARD } VdCrashOpKind;

/* One host-level modifying op, as crashsim passed it to its child. */
typedef struct VdCrashHostWrite {
    VdCrashOpKind kind;
    uint64_t sector, nsect;     /* whole 512-byte sectors touched (partial ones hash as ANY) */
    uint64_t *hash;             /* nsect content tokens */
    uint8_t *data;              /* WRITE: nsect * 512 bytes for the log, else NULL */
    bool fua;                   /* VD_DRV_FUA or VD_DRV_DSYNC: durable at completion */
    uint64_t start_seq;         /* host order of submission */
    uint64_t done_seq;          /* host order of completion; 0 while in flight */
} VdCrashHostWrite;

/* One durable sector: the host write that made it durable, by completion order. */
typedef struct VdCrashDurable {
    uint64_t seq;
    uint64_t hash;
} VdCrashDurable;

/* One entry of the dm-log-writes op log. */
typedef enum VdCrashLogKind { VD_CRASH_LOG_OP, VD_CRASH_LOG_FLUSH, VD_CRASH_LOG_MARK } VdCrashLogKind;
typedef struct VdCrashLogEntry {
    VdCrashLogKind kind;
    VdCrashHostWrite *op;       /* LOG_OP (owned by the log) */
    char *mark;                 /* LOG_MARK */
    int64_t when;               /* LOG_FLUSH: g_get_monotonic_time() when it was logged */
} VdCrashLogEntry;

/* One guest-level modifying request (as the backend saw it, or as a guest submitted it). */
typedef struct VdCrashGuestWrite {
    uint64_t sector, nsect;     /* sectors touched (partly covered ones hold ANY) */
    uint64_t *hash;             /* nsect tokens; NULL: discard or failed (anything goes) */
    uint64_t submit_seq, done_seq; /* guest order; done_seq 0 while in flight */
    bool fua;
    bool promised;
} VdCrashGuestWrite;

/* The guest-level log: whose view it is does not matter (the backend's hooks, or a guest's own). */
struct VdCrashGuest {
    uint64_t gseq;
    GPtrArray *gwrites;         /* VdCrashGuestWrite*, in submission order */
    uint64_t off_seq;           /* seq of the latest write-cache 1->0 switch, 0: none */
    bool off_done;              /* ... and its drain-and-flush completed */
};

/* A backend request's record, hung on VdRequest.crash between submit and completion. */
typedef struct VdCrashGuestOp {
    uint64_t submit_seq;
    VdCrashGuestWrite *w;       /* modifying requests only */
} VdCrashGuestOp;

typedef struct VdCrashSim {
    GMutex lock;
    unsigned tear;              /* 0, 512 or 4096 */
    char *log_path;             /* log=: the op log is written here at close (with time stamps), or NULL */
    unsigned samples;
    uint64_t zero_hash;         /* the token of a 512-byte zero sector */

    /* host side, under lock */
    uint64_t host_seq;
    GHashTable *durable;        /* sector+1 -> VdCrashDurable* */
    GPtrArray *pending;         /* VdCrashHostWrite*: in flight (done_seq 0) or completed but volatile */
    GPtrArray *log;             /* VdCrashLogEntry*, in dm-log-writes order */
    unsigned flushes_running;

    /* guest side, owner thread: what the backend promised */
    VdCrashGuest *seen;
    unsigned cuts;              /* crash checks so far (names the MARK entries) */
} VdCrashSim;

/* crashsim.c */
uint64_t vd_crash_hash_sector(const uint8_t *p);
/* Tokens of a range that holds one value (zeroes or a discard), partial edge sectors ANY. */
uint64_t *vd_crash_fill_tokens(uint64_t offset, uint64_t bytes, uint64_t token, uint64_t *sector, uint64_t *nsect);
/* Per-sector tokens of an iovec covering [offset, offset+bytes); sets *sector, *nsect. */
uint64_t *vd_crash_hash_iov(uint64_t offset, uint64_t bytes, const struct iovec *iov, int niov,
                            uint64_t *sector, uint64_t *nsect);
void vd_crash_host_write_free(VdCrashHostWrite *w);

/* One pending unit: a (piece of a) host op that a state keeps or drops. */
typedef struct VdCrashUnit {
    VdCrashHostWrite *w;
    uint64_t first, end;             /* sectors of w covered by this unit */
    uint64_t order;                  /* host order: completion, or after every completed op if in flight */
} VdCrashUnit;

/* crashsim-cut.c (lock held): the pending units of a cut now, whether state k keeps unit u, how many states. */
GArray *vd_crash_collect_units(VdCrashSim *cs);
bool vd_crash_keeps(bool exhaustive, uint64_t seed, uint64_t k, guint u);
uint64_t vd_crash_state_count(const VdCrashSim *cs, guint units);

/* crashsim-guest.c: the backend's hooks (owner thread). */
VdCrashGuestOp *vd_crash_note_submit(VdCrashSim *cs, VdRequest *req);
void vd_crash_note_done(VdCrashSim *cs, VdRequest *req);
void vd_crash_note_wce(VdCrashSim *cs, bool enabled);

/* crashsim-log.c (lock held) */
void vd_crash_log_add(VdCrashSim *cs, VdCrashLogKind kind, VdCrashHostWrite *op, const char *mark);
void vd_crash_log_entry_free(gpointer p);
/*
 * Migration hand-over (vd_blk_inactivate after its flush, vd_blk_invalidate_cache
 * before the first write): a MARK "WHAT t=MICROSECONDS" (CLOCK_MONOTONIC), so
 * the op logs of a source and a destination merge on one time line.  Takes the lock.
 */
void vd_crash_note_handover(VdCrashSim *cs, const char *what);
/* Write the op log to path (cs NULL: an empty one); stamps: a MARK "t=MICROSECONDS" after each FLUSH (takes the lock). */
bool vd_crash_log_write(VdCrashSim *cs, const char *path, bool stamps, GError **errp);

#endif
