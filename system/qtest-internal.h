/*
 * qtest-internal.h - what the parts of the qtest-like server share:
 * qtest.c (input, dispatch, transports), qtest-args.c (argument parsing and
 * guest-memory access), qtest-mem.c (QEMU-compatible commands) and
 * qtest-ext.c (vdisk's extensions).
 */
#ifndef VD_SYSTEM_QTEST_INTERNAL_H
#define VD_SYSTEM_QTEST_INTERNAL_H

#include "system/qtest.h"

#include <inttypes.h>
#include <string.h>

#define MAX_BLOCK (16u << 20)          /* read/write/b64 transfer limit */
#define MAX_DEVICE_BLOCK (1u << 20)    /* byte-wise transfers outside RAM */

struct VdQtestServer {
    VdMachine *m;
    int in_fd, out_fd;
    bool owns_fds;
    GSource *in_source;
    GString *inbuf;
    size_t partial;        /* bytes of the incomplete last line in inbuf */
    bool discarding;       /* dropping the rest of an overlong line */
    bool processing;       /* a command is running: new input is only queued */
    bool eof;              /* the client closed its side */
    bool broken;           /* the output failed: nothing more can be said */
    int64_t clock_ns;      /* the virtual clock of clock_step / clock_set */
    GHashTable *traces;    /* drive id -> TraceSink */
};

typedef struct TraceSink {
    VdQtestServer *s;
    char *id;
} TraceSink;

/* A command handler: argv[0] is the command, argc counts it; it fills reply. */
typedef void VdQtestCmd(VdQtestServer *s, int argc, char **argv, GString *reply);

/* Output. */
void vd_qtest_send_line(VdQtestServer *s, const char *line);

/* Arguments (each FAIL sets reply). */
G_GNUC_PRINTF(2, 3) void vd_qtest_fail(GString *reply, const char *fmt, ...);
bool vd_qtest_parse_num(const char *str, uint64_t max, const char *what, uint64_t *out, GString *reply);
unsigned vd_qtest_suffix_size(const char *cmd);
uint64_t vd_qtest_size_mask(unsigned size);
bool vd_qtest_range_ok(uint64_t addr, uint64_t len, GString *reply);
VdDriveSpec *vd_qtest_find_drive(VdQtestServer *s, const char *id, GString *reply);
bool vd_qtest_parse_block(char **argv, uint64_t max, bool allow_zero, uint64_t *addr, uint64_t *len, GString *reply);
bool vd_qtest_mem_access(VdQtestServer *s, uint64_t addr, uint8_t *buf, uint64_t len, bool write, GString *reply);

/* QEMU-compatible commands (qtest-mem.c). */
VdQtestCmd vd_qtest_cmd_out, vd_qtest_cmd_in, vd_qtest_cmd_writex, vd_qtest_cmd_readx, vd_qtest_cmd_read,
    vd_qtest_cmd_write, vd_qtest_cmd_memset, vd_qtest_cmd_b64read, vd_qtest_cmd_b64write,
    vd_qtest_cmd_endianness, vd_qtest_cmd_clock_step, vd_qtest_cmd_clock_set, vd_qtest_cmd_irq_intercept;

/* Extensions (qtest-ext.c). */
VdQtestCmd vd_qtest_cmd_irq_level, vd_qtest_cmd_drain, vd_qtest_cmd_blockstats, vd_qtest_cmd_info,
    vd_qtest_cmd_dtb, vd_qtest_cmd_trace, vd_qtest_cmd_inject, vd_qtest_cmd_crash, vd_qtest_cmd_crashlog,
    vd_qtest_cmd_stop, vd_qtest_cmd_cont, vd_qtest_cmd_delay, vd_qtest_cmd_migrate, vd_qtest_cmd_query_migrate;
/* Free a TraceSink (the traces hash table's value destructor). */
void vd_qtest_trace_sink_free(gpointer p);

#endif
