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

/*
 * The guest-level log from a GUEST's own view, for a guest (a test driver,
 * the runner) that wants its promises checked, not the ones the backend saw:
 * that catches a device that drops a FUA bit or a FLUSH before the backend.
 * The guest reports each write it submits (its data, and whether it asked
 * for FUA) and how it completed, each FLUSH, and each switch of the write
 * cache to off (done: the device acknowledged a switch that drains, as ATA
 * SET FEATURES 82h and SCSI MODE SELECT do; a virtio-blk config write has no
 * acknowledgement, so call only vd_crash_guest_cache_off).  The promise rules
 * are the oracle's (docs/crash-testing.md).  Owner thread.
 */
typedef struct VdCrashGuest VdCrashGuest;
typedef struct VdCrashGuestWrite VdCrashGuestWrite;
VdCrashGuest *vd_crash_guest_new(void);
void vd_crash_guest_free(VdCrashGuest *g);
VdCrashGuestWrite *vd_crash_guest_write(VdCrashGuest *g, uint64_t offset, const void *data, uint64_t bytes, bool fua);
/* cache_off: the guest had switched the write cache off (it submitted the switch) when the write completed. */
void vd_crash_guest_write_done(VdCrashGuest *g, VdCrashGuestWrite *w, bool ok, bool cache_off);
uint64_t vd_crash_guest_flush(VdCrashGuest *g);
void vd_crash_guest_flush_done(VdCrashGuest *g, uint64_t flush, bool ok);
uint64_t vd_crash_guest_cache_off(VdCrashGuest *g);
void vd_crash_guest_cache_off_done(VdCrashGuest *g, uint64_t sw, bool ok);
/* vd_blk_crash_check, with the promises of g instead of the ones the backend saw. */
bool vd_blk_crash_check_guest(VdBlockBackend *blk, VdCrashGuest *g, uint64_t seed, VdCrashReport *out, GError **errp);

/*
 * Crash states as images, for a chain where crashsim sits BELOW a format
 * driver (driver=qcow2,child=crashsim,child.child=file): there the guest's
 * sectors are not crashsim's, so vd_blk_crash_check refuses; a test
 * materialises each state of the file instead and checks it with the
 * format's own tools (qemu-img check) and its own reader.
 * vd_blk_crash_states captures a cut now: the same pending units and state
 * numbering as vd_blk_crash_check with that seed, over `base`, the file's
 * bytes when crashsim opened it.  Writes are taken as whole 512-byte
 * sectors; a discard leaves zeroes (one of the contents it may leave).
 */
typedef struct VdCrashStates VdCrashStates;
VdCrashStates *vd_blk_crash_states(VdBlockBackend *blk, const uint8_t *base, size_t base_len, uint64_t seed,
                                   GError **errp);
uint64_t vd_crash_states_count(const VdCrashStates *st);
/* The file's bytes in state k; valid until the next call or vd_crash_states_free. */
const GByteArray *vd_crash_states_image(VdCrashStates *st, uint64_t k);
void vd_crash_states_free(VdCrashStates *st);

/* Write the host op log so far in dm-log-writes format (replay-log reads it). */
bool vd_blk_crash_write_log(VdBlockBackend *blk, const char *path, GError **errp);

#endif
