/*
 * mock-driver.h - an in-memory test driver ("driver=mock,size=N") that logs
 * every call in order and can hold any kind of call in its worker thread
 * until the test releases it, so tests can observe ordering and concurrency.
 */
#ifndef VD_TEST_MOCK_DRIVER_H
#define VD_TEST_MOCK_DRIVER_H

#include "block/block-driver.h"

typedef enum MockOp { MOCK_READ, MOCK_WRITE, MOCK_FLUSH_OS, MOCK_FLUSH_DISK, MOCK_DISCARD, MOCK_ZERO, MOCK__MAX } MockOp;

typedef struct MockConfig {
    VdFuaSupport fua;
    bool dsync, zero;              /* can_dsync, can_zero */
    bool stage1;                   /* implement flush_to_os */
    uint32_t req_align;
    bool write_through;            /* write_through_only: a disk without a volatile cache */
} MockConfig;

/* Register the driver once and reset state with this configuration. */
void mock_reset(const MockConfig *cfg);
/* Calls of one kind so far. */
unsigned mock_calls(MockOp op);
/* The call log, e.g. "W0+4096 F2 ", each entry followed by a space. */
const char *mock_log(void);
/* Flags seen by the last write (VD_DRV_*). */
unsigned mock_last_write_flags(void);
/* Hold every later call of this kind until mock_release; mock_wait_held waits for one to arrive. */
void mock_hold(MockOp op);
void mock_wait_held(MockOp op, unsigned n);
void mock_release(MockOp op);
/* Make the next call of this kind return err (negative). */
void mock_fail_next(MockOp op, int err);
/* Direct access to the backing bytes. */
uint8_t *mock_data(void);

#endif
