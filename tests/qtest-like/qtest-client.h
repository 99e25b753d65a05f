/*
 * qtest-client.h - drive vdisk-vmm through its qtest-like protocol, the way
 * QEMU's libqtest drives QEMU.  This is what guest-driver tests build on.
 *
 * Guarantees:
 *  - vd_qtest_start runs $VDISK_VMM (set by `meson test`) with --qtest stdio.
 *  - No call waits longer than the timeout (default 10 s, $VDISK_QTEST_TIMEOUT_MS
 *    or vd_qtest_set_timeout): a VMM that stops answering makes the call
 *    print what it was waiting for and abort the test instead of hanging.
 *  - A FAIL reply to a typed helper (outb, readl, memread, ...) aborts the
 *    test with the reply; vd_qtest_cmd returns any reply for tests of FAIL.
 *  - Asynchronous lines are consumed wherever they arrive: "IRQ raise|lower N"
 *    updates the tracked level and raise count of line N, "TRACE" and "INFO"
 *    lines are collected in arrival order.
 *  - A program that is not a test (vdisk-seq) calls vd_qtest_set_program:
 *    then each of those failures prints "PROGRAM: what went wrong" and exits
 *    with status 1 instead of aborting.
 *  - vd_qtest_quit closes the session and returns the VMM's exit status, so
 *    a test can assert the VMM ended cleanly (ASan reports make it non-zero).
 */
#ifndef VD_QTEST_CLIENT_H
#define VD_QTEST_CLIENT_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define VD_QTEST_DEFAULT_TIMEOUT_MS 10000
#define VD_QTEST_IRQS 64

typedef struct VdQtest VdQtest;

/* Called for every asynchronous line (IRQ, TRACE, INFO, anything not OK/FAIL), in order. */
typedef void VdQtestAsyncHook(void *opaque, const char *line);

/* Start the VMM with extra arguments (a shell-quoted string, may be NULL or ""). */
VdQtest *vd_qtest_start(const char *extra_args);
/* Start with an argument vector (NULL-terminated, may be NULL). */
VdQtest *vd_qtest_startv(const char *const *extra_argv);
/* End the session: close the VMM's input, wait for it; its exit status (128+signal if killed). */
int vd_qtest_quit(VdQtest *q);
void vd_qtest_set_timeout(VdQtest *q, unsigned ms);
void vd_qtest_set_async_hook(VdQtest *q, VdQtestAsyncHook *fn, void *opaque);
/* The VMM's process id (for signal tests). */
GPid vd_qtest_pid(VdQtest *q);
/* Failures exit(1) with one "program: ..." line instead of aborting (process-wide; call once at start). */
void vd_qtest_set_program(const char *program);
/* The VMM binary: $VDISK_VMM; a failure (above) if unset. */
const char *vd_qtest_vmm_path(void);

/* Send one command line, return its reply line ("OK ..." or "FAIL ..."; g_free it). */
G_GNUC_PRINTF(2, 3) char *vd_qtest_cmd(VdQtest *q, const char *fmt, ...);
/* Send bytes as they are, without waiting for anything. */
void vd_qtest_send(VdQtest *q, const char *data, size_t len);
/* Send bytes as they are (tests of malformed input); returns the next reply. */
char *vd_qtest_raw(VdQtest *q, const char *data, size_t len);
/* Send a command and require OK; returns what follows "OK" (maybe ""), g_free it. */
G_GNUC_PRINTF(2, 3) char *vd_qtest_ok(VdQtest *q, const char *fmt, ...);

/* Port I/O. */
void vd_qtest_outb(VdQtest *q, uint16_t port, uint8_t v);
void vd_qtest_outw(VdQtest *q, uint16_t port, uint16_t v);
void vd_qtest_outl(VdQtest *q, uint16_t port, uint32_t v);
uint8_t vd_qtest_inb(VdQtest *q, uint16_t port);
uint16_t vd_qtest_inw(VdQtest *q, uint16_t port);
uint32_t vd_qtest_inl(VdQtest *q, uint16_t port);

/* Guest physical memory (RAM and MMIO), little-endian. */
void vd_qtest_writeb(VdQtest *q, uint64_t addr, uint8_t v);
void vd_qtest_writew(VdQtest *q, uint64_t addr, uint16_t v);
void vd_qtest_writel(VdQtest *q, uint64_t addr, uint32_t v);
void vd_qtest_writeq(VdQtest *q, uint64_t addr, uint64_t v);
uint8_t vd_qtest_readb(VdQtest *q, uint64_t addr);
uint16_t vd_qtest_readw(VdQtest *q, uint64_t addr);
uint32_t vd_qtest_readl(VdQtest *q, uint64_t addr);
uint64_t vd_qtest_readq(VdQtest *q, uint64_t addr);
/* Bulk transfers (base64 on the wire). */
void vd_qtest_memread(VdQtest *q, uint64_t addr, void *buf, size_t len);
void vd_qtest_memwrite(VdQtest *q, uint64_t addr, const void *buf, size_t len);
void vd_qtest_memset(VdQtest *q, uint64_t addr, uint8_t value, size_t len);

/* Extensions. */
/* Wait until no drive has I/O in flight; false if the VMM's drain timed out. */
bool vd_qtest_drain(VdQtest *q);
/* One backend counter of drive id, e.g. ("drive0", "host_fdatasync"); aborts if unknown. */
uint64_t vd_qtest_blockstat(VdQtest *q, const char *id, const char *key);
/* Backend trace lines for drive id on or off; they are collected as "ID text". */
void vd_qtest_trace(VdQtest *q, const char *id, bool on);
/* The TRACE lines received so far ("ID text"), handed over and forgotten. */
GPtrArray *vd_qtest_take_traces(VdQtest *q);
/* Make the next count host ops of kind op ("read", "write", "flush", "discard") fail with -err. */
void vd_qtest_inject(VdQtest *q, const char *id, const char *op, int err, unsigned count);
/* The machine's FDT (g_free it). */
void *vd_qtest_dtb(VdQtest *q, size_t *size);
/* The `info` lines, without the "INFO " prefix. */
GPtrArray *vd_qtest_info(VdQtest *q);

/* IRQ lines as reported by the asynchronous IRQ lines. */
bool vd_qtest_irq_level(VdQtest *q, unsigned line);
/* Number of "IRQ raise line" seen since the start. */
unsigned vd_qtest_irq_raises(VdQtest *q, unsigned line);
/* Wait (up to timeout_ms; 0 = the session timeout) until line has level; false on timeout. */
bool vd_qtest_wait_irq(VdQtest *q, unsigned line, bool level, unsigned timeout_ms);
/* Read asynchronous lines for up to ms milliseconds (lets completions arrive). */
void vd_qtest_poll(VdQtest *q, unsigned ms);

/* A bump allocator over a window of guest RAM, for descriptor tables and buffers. */
typedef struct VdGuestAlloc {
    uint64_t start, end, next;
} VdGuestAlloc;

void vd_guest_alloc_init(VdGuestAlloc *a, uint64_t start, uint64_t end);
/* size bytes aligned to align (a power of two); aborts when the window is exhausted. */
uint64_t vd_guest_alloc(VdGuestAlloc *a, uint64_t size, uint64_t align);
/* Forget every allocation. */
void vd_guest_alloc_reset(VdGuestAlloc *a);

#endif
