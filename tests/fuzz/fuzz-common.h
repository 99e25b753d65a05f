/*
 * fuzz-common.h - what every in-tree libFuzzer target shares: a reader over
 * the fuzz input, a bounded loop drain, and the oracles that go beyond "no
 * crash" (docs/fuzzing.md):
 *  - answered: a target calls fz_fail when a request the guest submitted
 *    got no answer after the loop was drained (and the device is not in its
 *    documented error state);
 *  - quiescence: whenever the guest has no request outstanding, the block
 *    backend may have no read or write in flight (fz_quiescent);
 *  - order: no write, write-zeroes or discard completes before an older
 *    overlapping one that the guest issued before it last saw everything
 *    answered (checked in fz-order.c by wrapping the vd_blk_* submit calls
 *    at link time, -Wl,--wrap).
 *
 * Threading: everything runs on the fuzzer's thread and the default
 * GMainContext; only the block layer's worker threads run elsewhere.
 */
#ifndef VD_FUZZ_COMMON_H
#define VD_FUZZ_COMMON_H

#include "block/block-backend.h"
#include "hw/bus.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The fuzz input, consumed front to back; reads past the end give zeroes. */
typedef struct FzIn {
    const uint8_t *p;
    size_t n;
} FzIn;

/* True while input is left. */
static inline bool fz_more(const FzIn *in) { return in->n > 0; }
uint8_t fz_u8(FzIn *in);
uint16_t fz_u16(FzIn *in);
uint32_t fz_u32(FzIn *in);
uint64_t fz_u64(FzIn *in);
/* Copy up to len bytes (fewer at the end of input); returns how many. */
size_t fz_bytes(FzIn *in, void *buf, size_t len);

/* Report an oracle violation and abort, so libFuzzer saves the input. */
void fz_fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN;

/* One-time setup every target calls first: quiet logs, a wake-up tick for the loop. */
void fz_init(void);
/* Run whatever the default context has ready, up to n dispatches, without blocking. */
void fz_pump(unsigned n);
/* Iterate the loop until done(opaque) is true; false after 5 s. */
bool fz_wait_for(bool (*done)(void *opaque), void *opaque);
/* Iterate the loop until done(opaque) is true; fz_fail with what after 5 s. */
void fz_wait(bool (*done)(void *opaque), void *opaque, const char *what);
/* Wait until blk has nothing in flight (a request that never completes fails). */
void fz_drain_blk(VdBlockBackend *blk);

/*
 * A backend for opts, opened on first use and kept for the whole run (an
 * open costs a 1 MiB zero buffer, more than most inputs take to run): idle,
 * with the write cache back at its power-on state.  Never close it.
 */
VdBlockBackend *fz_backend(const char *opts);
/* A bus with ram bytes of guest RAM, kept for the whole run; RAM is zeroed on each call. */
VdBus *fz_bus(uint64_t ram);

/* The guest has seen every request answered: check the backend is idle, start a new epoch. */
void fz_quiescent(const char *where);
/*
 * A finding that is reported but not fixed yet (docs/fuzzing.md, "Known
 * findings") is named in the environment variable VD_FUZZ_KNOWN (comma
 * separated); scripts/fuzz.sh and the CI smoke set it from tests/fuzz/known.txt.
 */
bool fz_known(const char *name);
/*
 * Like fz_quiescent, but if the known finding `known` is listed, backend
 * requests still in flight are allowed: only the epoch advances, so the
 * order oracle still catches a write that then overtakes a newer one.
 */
void fz_quiescent_unless_known(const char *where, const char *known);
/* Backend reads and modifying requests submitted and not yet completed (all backends). */
unsigned fz_order_outstanding(void);
/* Forget all bookkeeping (after a target tore its backends down). */
void fz_order_reset(void);

#endif
