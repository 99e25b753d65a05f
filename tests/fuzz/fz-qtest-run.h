/*
 * fz-qtest-run.h - one qtest session in-process, as the qtest target runs
 * each input and the migration seed generator runs the qtest seeds.
 *
 * Threading: the fuzzer's thread and the machine's (default) GMainContext.
 */
#ifndef VD_FZ_QTEST_RUN_H
#define VD_FZ_QTEST_RUN_H

#include "system/machine.h"

/* Feed data (less than a pipe buffer) to a new qtest server on m, replies to out_fd, and run it to the end. */
void fz_qtest_run(VdMachine *m, int out_fd, const uint8_t *data, size_t size);

#endif
