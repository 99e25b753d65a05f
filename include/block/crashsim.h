/*
 * crashsim.h - power cuts for a backend opened with driver=crashsim
 * (docs/crash-testing.md).
 *
 * A cut asks "if the power failed now, could a promised write be lost?".
 * It builds every legal crash state of the host-level model (or a seeded
 * sample of them), and checks that every sector the guest was promised
 * reads back as the promised data or as a later write's data.  A cut does
 * not change the disk: the workload simply goes on afterwards.
 *
 * Threading: the owner thread of the backend, like every vd_blk_* call.
 */
#ifndef VD_BLOCK_CRASHSIM_PUBLIC_H
#define VD_BLOCK_CRASHSIM_PUBLIC_H

#include "block/block-backend.h"

/* The exhaustive limit: a cut with at most this many pending units enumerates every subset. */
#define VD_CRASH_EXHAUSTIVE_UNITS 12

typedef struct VdCrashReport {
    uint64_t cuts;              /* crash states checked */
    uint64_t promised;          /* promised sectors at the cut */
    uint64_t failures;          /* states that lost a promised sector */
    unsigned pending;           /* host write units neither durable nor dropped: in flight or volatile */
    bool sampled;               /* too many pending units: seeded random states */
    bool unsafe;                /* cache=unsafe: nothing is promised; failures counts what would be lost */
    uint64_t seed;              /* the seed this cut used */
    uint64_t first_cut;         /* first failing state's index (failures > 0) */
    uint64_t first_lba;         /* ... and its first lost sector (512-byte units) */
} VdCrashReport;

/* True if blk's driver chain holds crashsim. */
bool vd_blk_has_crashsim(VdBlockBackend *blk);

/*
 * Cut now and check every enumerated or sampled crash state; state i of a
 * cut is fully determined by (seed, i) and the op history.  Also appends a
 * MARK "cut-N" entry to the op log.  Fails (errp) only if blk has no crashsim.
 */
bool vd_blk_crash_check(VdBlockBackend *blk, uint64_t seed, VdCrashReport *out, GError **errp);

/* "cuts=N promised=N failures=N [...]": the qtest reply after OK. */
void vd_crash_report_format(const VdCrashReport *r, GString *out);

/* Write the host op log so far in dm-log-writes format (replay-log reads it). */
bool vd_blk_crash_write_log(VdBlockBackend *blk, const char *path, GError **errp);

#endif
