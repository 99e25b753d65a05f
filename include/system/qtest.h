/*
 * qtest.h - the qtest-like server: a line protocol that drives the machine's
 * buses the way a guest CPU would (docs/qtest-protocol.md).
 *
 * Guarantees:
 *  - Every command line gets exactly one reply line, "OK[ value]" or
 *    "FAIL reason"; replies use QEMU qtest's number formats.
 *  - Asynchronous lines ("IRQ raise N", "IRQ lower N", "TRACE ID text",
 *    "INFO ...") are sent the moment they happen, so they may precede the
 *    reply of the command that caused them or arrive between commands.
 *  - Malformed input (unknown commands, bad or huge numbers, missing or extra
 *    arguments, lines over VD_QTEST_MAX_LINE bytes) gets FAIL, never a crash.
 *  - Commands run one at a time, even while one of them waits for I/O (drain).
 *  - After each command the machine's context is run until it is idle, so
 *    interrupts caused by completions already due are reported.
 *
 * Threading: everything runs in the machine's GMainContext.
 */
#ifndef VD_SYSTEM_QTEST_H
#define VD_SYSTEM_QTEST_H

#include "system/machine.h"

#define VD_QTEST_MAX_LINE (64u << 20)
#define VD_QTEST_DRAIN_TIMEOUT_MS 10000

typedef struct VdQtestServer VdQtestServer;

/* Serve on an already open pair of descriptors (they may be equal); the server does not close them. */
VdQtestServer *vd_qtest_server_new(VdMachine *m, int in_fd, int out_fd);
/*
 * Open the transport named by a --qtest argument and serve on it:
 * "stdio", "unix:PATH" (connect to a listening client, as QEMU does) or
 * "unix:PATH,server" (listen on PATH and accept one client).
 */
VdQtestServer *vd_qtest_server_open(VdMachine *m, const char *spec, GError **errp);
/* Check a --qtest argument without opening anything. */
bool vd_qtest_spec_valid(const char *spec, GError **errp);
/* True once the client has closed its side (end of file) or the output broke. */
bool vd_qtest_server_done(VdQtestServer *s);
void vd_qtest_server_free(VdQtestServer *s);

#endif
