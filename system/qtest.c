/* qtest.c - the qtest-like line protocol server (docs/qtest-protocol.md). */
#include "system/qtest.h"

#include <errno.h>
#include <glib-unix.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_BLOCK (16u << 20)          /* read/write/b64 transfer limit */
#define MAX_DEVICE_BLOCK (1u << 20)    /* byte-wise transfers outside RAM */
#define OVERLONG_MARK "\001"           /* stands in the input for a line that was too long */
#define MAX_PENDING_ITERATIONS 100000

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

/* ---- output ---- */

/* Write all of buf; a broken or closed client ends the session. */
static void write_all(VdQtestServer *s, const char *buf, size_t len)
{
    while (len && !s->broken) {
        ssize_t n = write(s->out_fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= n;
        } else if (n < 0 && errno == EAGAIN) {
            struct pollfd p = { .fd = s->out_fd, .events = POLLOUT };
            poll(&p, 1, -1);
        } else if (!(n < 0 && errno == EINTR)) {
            s->broken = true;
        }
    }
}

/* Send one line (a newline is added). */
static void send_line(VdQtestServer *s, const char *line)
{
    g_autoptr(GString) buf = g_string_new(line);
    g_string_append_c(buf, '\n');
    write_all(s, buf->str, buf->len);
}

/* Asynchronous IRQ report, from the bus listener. */
static void on_irq(void *opaque, unsigned line, bool level)
{
    g_autofree char *msg = g_strdup_printf("IRQ %s %u", level ? "raise" : "lower", line);
    send_line(opaque, msg);
}

/* Asynchronous backend trace line; control characters become spaces. */
static void on_trace(void *opaque, const char *text)
{
    TraceSink *t = opaque;
    g_autofree char *msg = g_strdup_printf("TRACE %s %s", t->id, text);
    for (char *p = msg; *p; p++) {
        if ((unsigned char)*p < 0x20) {
            *p = ' ';
        }
    }
    send_line(t->s, msg);
}

/* ---- argument parsing ---- */

/* Set reply to "FAIL <message>". */
G_GNUC_PRINTF(2, 3) static void fail(GString *reply, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_string_assign(reply, "FAIL ");
    g_string_append_vprintf(reply, fmt, ap);
    va_end(ap);
}

/* An unsigned number as strtoul(base 0) reads it (0x hex, 0 octal, decimal), whole-string, <= max. */
static bool parse_num(const char *str, uint64_t max, const char *what, uint64_t *out, GString *reply)
{
    unsigned base = 10;
    const char *digits = str;
    if (str[0] == '0' && (str[1] == 'x' || str[1] == 'X')) {
        base = 16;
        digits = str + 2;
    } else if (str[0] == '0' && str[1]) {
        base = 8;
        digits = str + 1;
    }
    bool ok = *digits != '\0';
    for (const char *p = digits; ok && *p; p++) {
        int d = g_ascii_xdigit_value(*p);
        ok = d >= 0 && (unsigned)d < base;
    }
    if (!ok) {
        fail(reply, "%s '%s' is not a number", what, str);
        return false;
    }
    errno = 0;
    guint64 v = g_ascii_strtoull(digits, NULL, base);
    if (errno == ERANGE || v > max) {
        fail(reply, "%s %s is too large (maximum 0x%" PRIx64 ")", what, str, max);
        return false;
    }
    *out = v;
    return true;
}

/* Access size named by a command's suffix letter (outb, readq, ...). */
static unsigned suffix_size(const char *cmd)
{
    static const struct { char suffix; unsigned size; } sizes[] = { { 'b', 1 }, { 'w', 2 }, { 'l', 4 }, { 'q', 8 } };
    char c = cmd[strlen(cmd) - 1];
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        if (sizes[i].suffix == c) {
            return sizes[i].size;
        }
    }
    g_assert_not_reached();
}

/* All ones in the low size bytes. */
static uint64_t size_mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
}

/* Check that [addr, addr+len) does not wrap around the address space. */
static bool range_ok(uint64_t addr, uint64_t len, GString *reply)
{
    if (len && addr + (len - 1) < addr) {
        fail(reply, "range 0x%" PRIx64 "+0x%" PRIx64 " wraps around the address space", addr, len);
        return false;
    }
    return true;
}

/* The drive named by id, or NULL with a FAIL reply. */
static VdDriveSpec *find_drive(VdQtestServer *s, const char *id, GString *reply)
{
    VdDriveSpec *d = vd_machine_find_drive(s->m, id);
    if (!d) {
        fail(reply, "no drive with id '%s'", id);
    }
    return d;
}

/* ---- guest memory ---- */

/* Copy guest physical memory: RAM directly, anything else byte by byte through the bus. */
static bool mem_access(VdQtestServer *s, uint64_t addr, uint8_t *buf, uint64_t len, bool write, GString *reply)
{
    uint8_t *ram = vd_dma_map(s->m->bus, addr, len);
    if (ram) {
        write ? memcpy(ram, buf, len) : memcpy(buf, ram, len);
        return true;
    }
    if (len > MAX_DEVICE_BLOCK) {
        fail(reply, "0x%" PRIx64 "+0x%" PRIx64 " leaves RAM and is over the 0x%x byte limit for device memory",
             addr, len, MAX_DEVICE_BLOCK);
        return false;
    }
    for (uint64_t i = 0; i < len; i++) {
        uint64_t v;
        if (write) {
            vd_bus_write(s->m->bus, VD_SPACE_MMIO, addr + i, buf[i], 1);
        } else {
            vd_bus_read(s->m->bus, VD_SPACE_MMIO, addr + i, 1, &v);
            buf[i] = v;
        }
    }
    return true;
}

/* Parse "ADDR SIZE" of a block command, with 1 <= SIZE <= max (0 allowed if allow_zero). */
static bool parse_block(char **argv, uint64_t max, bool allow_zero, uint64_t *addr, uint64_t *len, GString *reply)
{
    if (!parse_num(argv[1], UINT64_MAX, "ADDR", addr, reply) || !parse_num(argv[2], max, "SIZE", len, reply)) {
        return false;
    }
    if (!*len && !allow_zero) {
        fail(reply, "SIZE must not be 0");
        return false;
    }
    return range_ok(*addr, *len, reply);
}

/* ---- commands ---- */

typedef void QtestCmd(VdQtestServer *s, int argc, char **argv, GString *reply);

/* outb/outw/outl ADDR VALUE */
static void cmd_out(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    unsigned size = suffix_size(argv[0]);
    uint64_t addr, value;
    if (parse_num(argv[1], 0xffff, "ADDR", &addr, reply) &&
        parse_num(argv[2], size_mask(size), "VALUE", &value, reply)) {
        vd_bus_write(s->m->bus, VD_SPACE_PIO, addr, value, size);
        g_string_assign(reply, "OK");
    }
}

/* inb/inw/inl ADDR -> OK 0x%04x */
static void cmd_in(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t addr, value;
    if (parse_num(argv[1], 0xffff, "ADDR", &addr, reply)) {
        vd_bus_read(s->m->bus, VD_SPACE_PIO, addr, suffix_size(argv[0]), &value);
        g_string_printf(reply, "OK 0x%04" PRIx64, value);
    }
}

/* writeb/w/l/q ADDR VALUE */
static void cmd_writex(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    unsigned size = suffix_size(argv[0]);
    uint64_t addr, value;
    if (parse_num(argv[1], UINT64_MAX, "ADDR", &addr, reply) &&
        parse_num(argv[2], size_mask(size), "VALUE", &value, reply) && range_ok(addr, size, reply)) {
        vd_bus_write(s->m->bus, VD_SPACE_MMIO, addr, value, size);
        g_string_assign(reply, "OK");
    }
}

/* readb/w/l/q ADDR -> OK 0x%016x */
static void cmd_readx(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    unsigned size = suffix_size(argv[0]);
    uint64_t addr, value;
    if (parse_num(argv[1], UINT64_MAX, "ADDR", &addr, reply) && range_ok(addr, size, reply)) {
        vd_bus_read(s->m->bus, VD_SPACE_MMIO, addr, size, &value);
        g_string_printf(reply, "OK 0x%016" PRIx64, value);
    }
}

/* read ADDR SIZE -> OK 0x<hex bytes> */
static void cmd_read(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t addr, len;
    if (!parse_block(argv, MAX_BLOCK, false, &addr, &len, reply)) {
        return;
    }
    g_autofree uint8_t *buf = g_malloc(len);
    if (mem_access(s, addr, buf, len, false, reply)) {
        g_string_assign(reply, "OK 0x");
        for (uint64_t i = 0; i < len; i++) {
            g_string_append_printf(reply, "%02x", buf[i]);
        }
    }
}

/* write ADDR SIZE 0xHEX: missing trailing bytes are zero. */
static void cmd_write(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t addr, len;
    if (!parse_block(argv, MAX_BLOCK, false, &addr, &len, reply)) {
        return;
    }
    const char *hex = argv[3];
    size_t digits = strlen(hex) - 2;
    if (hex[0] != '0' || (hex[1] != 'x' && hex[1] != 'X') || digits % 2 || digits / 2 > len) {
        fail(reply, "DATA must be 0x followed by at most SIZE bytes as pairs of hex digits");
        return;
    }
    g_autofree uint8_t *buf = g_malloc0(len);
    for (size_t i = 0; i < digits / 2; i++) {
        int hi = g_ascii_xdigit_value(hex[2 + 2 * i]), lo = g_ascii_xdigit_value(hex[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            fail(reply, "DATA has a character that is not a hex digit at position %zu", 2 + 2 * i);
            return;
        }
        buf[i] = hi << 4 | lo;
    }
    if (mem_access(s, addr, buf, len, true, reply)) {
        g_string_assign(reply, "OK");
    }
}

/* memset ADDR SIZE VALUE (SIZE 0 does nothing) */
static void cmd_memset(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t addr, len, value;
    if (!parse_block(argv, UINT64_MAX, true, &addr, &len, reply) ||
        !parse_num(argv[3], 0xff, "VALUE", &value, reply)) {
        return;
    }
    uint8_t *ram = vd_dma_map(s->m->bus, addr, len);
    if (ram) {
        memset(ram, value, len);
        g_string_assign(reply, "OK");
        return;
    }
    if (len > MAX_DEVICE_BLOCK) {
        fail(reply, "0x%" PRIx64 "+0x%" PRIx64 " leaves RAM and is over the 0x%x byte limit for device memory",
             addr, len, MAX_DEVICE_BLOCK);
        return;
    }
    g_autofree uint8_t *buf = g_malloc(len ? len : 1);
    memset(buf, value, len);
    if (mem_access(s, addr, buf, len, true, reply)) {
        g_string_assign(reply, "OK");
    }
}

/* b64read ADDR SIZE -> OK <base64> */
static void cmd_b64read(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t addr, len;
    if (!parse_block(argv, MAX_BLOCK, true, &addr, &len, reply)) {
        return;
    }
    g_autofree uint8_t *buf = g_malloc(len ? len : 1);
    if (mem_access(s, addr, buf, len, false, reply)) {
        g_autofree char *b64 = g_base64_encode(buf, len);
        g_string_printf(reply, "OK %s", b64);
    }
}

/* Strict base64 check: groups of four from the alphabet, '=' only as padding at the end. */
static bool base64_valid(const char *str)
{
    size_t len = strlen(str), pad = 0;
    if (len % 4) {
        return false;
    }
    while (pad < 2 && pad < len && str[len - 1 - pad] == '=') {
        pad++;
    }
    for (size_t i = 0; i < len - pad; i++) {
        if (!g_ascii_isalnum(str[i]) && str[i] != '+' && str[i] != '/') {
            return false;
        }
    }
    return true;
}

/* b64write ADDR SIZE BASE64: the data must decode to exactly SIZE bytes. */
static void cmd_b64write(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t addr, len;
    if (!parse_block(argv, MAX_BLOCK, true, &addr, &len, reply)) {
        return;
    }
    if (!base64_valid(argv[3])) {
        fail(reply, "DATA is not valid base64");
        return;
    }
    gsize out_len;
    g_autofree uint8_t *buf = g_base64_decode(argv[3], &out_len);
    if (out_len != len) {
        fail(reply, "SIZE is %" PRIu64 " but DATA decodes to %zu bytes", len, (size_t)out_len);
        return;
    }
    if (mem_access(s, addr, buf, len, true, reply)) {
        g_string_assign(reply, "OK");
    }
}

/* endianness -> OK little */
static void cmd_endianness(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    g_string_assign(reply, "OK little");
}

/* clock_step [NS] -> OK <new ns>; the machine has no timers, so there is never a next deadline. */
static void cmd_clock_step(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t ns;
    if (argc < 2) {
        fail(reply, "no timer deadline is pending, so there is nothing to step to (give NS)");
        return;
    }
    if (!parse_num(argv[1], (uint64_t)(INT64_MAX - s->clock_ns), "NS", &ns, reply)) {
        return;
    }
    s->clock_ns += ns;
    g_string_printf(reply, "OK %" PRIi64, s->clock_ns);
}

/* clock_set NS -> OK <ns>, or FAIL <current ns> if NS lies in the past. */
static void cmd_clock_set(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t ns;
    if (!parse_num(argv[1], INT64_MAX, "NS", &ns, reply)) {
        return;
    }
    if ((int64_t)ns >= s->clock_ns) {
        s->clock_ns = ns;
        g_string_printf(reply, "OK %" PRIi64, s->clock_ns);
    } else {
        g_string_printf(reply, "FAIL %" PRIi64, s->clock_ns);
    }
}

/* irq_intercept_in/out PATH: every IRQ line is always reported, so this only says OK. */
static void cmd_irq_intercept(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    g_string_assign(reply, "OK");
}

/* irq_level LINE -> OK 0|1 (extension) */
static void cmd_irq_level(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t line;
    if (parse_num(argv[1], VD_IRQ_LINES - 1, "LINE", &line, reply)) {
        g_string_printf(reply, "OK %d", vd_irq_level(s->m->bus, line));
    }
}

/* Requests in flight over every drive. */
static unsigned total_in_flight(VdMachine *m)
{
    unsigned n = 0;
    for (guint i = 0; i < m->drives->len; i++) {
        n += vd_blk_in_flight(((VdDriveSpec *)g_ptr_array_index(m->drives, i))->blk);
    }
    return n;
}

/* Timeout source callback for drain. */
static gboolean drain_expired(gpointer opaque)
{
    *(bool *)opaque = true;
    return G_SOURCE_REMOVE;
}

/* drain [TIMEOUT_MS]: run the loop until no drive has a request in flight (extension). */
static void cmd_drain(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t timeout = VD_QTEST_DRAIN_TIMEOUT_MS;
    if (argc > 1 && !parse_num(argv[1], 3600 * 1000, "TIMEOUT_MS", &timeout, reply)) {
        return;
    }
    bool expired = false;
    GSource *timer = g_timeout_source_new(timeout);
    g_source_set_callback(timer, drain_expired, &expired, NULL);
    g_source_attach(timer, s->m->ctx);
    while (total_in_flight(s->m) && !expired) {
        g_main_context_iteration(s->m->ctx, TRUE);
    }
    g_source_destroy(timer);
    g_source_unref(timer);
    unsigned left = total_in_flight(s->m);
    if (left) {
        fail(reply, "%u requests still in flight after %" PRIu64 " ms", left, timeout);
    } else {
        g_string_assign(reply, "OK");
    }
}

/* blockstats ID -> OK key=value ... (extension) */
static void cmd_blockstats(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    VdDriveSpec *d = find_drive(s, argv[1], reply);
    if (d) {
        g_string_assign(reply, "OK ");
        vd_blk_format_stats(d->blk, reply);
    }
}

/* "0x<base>+0x<size>" of a register window. */
static void append_window(GString *out, uint64_t base, uint64_t size)
{
    g_string_append_printf(out, "0x%" PRIx64 "+0x%" PRIx64, base, size);
}

/* info -> one INFO line per device and per drive, then OK <count> (extension) */
static void cmd_info(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    VdMachine *m = s->m;
    g_autoptr(GString) line = g_string_new(NULL);
    g_string_printf(line, "INFO ram 0x0+0x%" PRIx64, m->ram_size);
    send_line(s, line->str);
    for (guint i = 0; i < m->devices->len; i++) {
        const VdDeviceInfo *d = &g_array_index(m->devices, VdDeviceInfo, i);
        g_string_printf(line, "INFO device %s %s=", d->name, d->space == VD_SPACE_PIO ? "pio" : "mmio");
        append_window(line, d->base, d->size);
        if (d->size2) {
            g_string_append_c(line, ',');
            append_window(line, d->base2, d->size2);
        }
        g_string_append_printf(line, " irq=%d compatible=%s drive=%s desc=%s", d->irq,
                               d->compatible ? d->compatible : "-", d->drive_id ? d->drive_id : "-",
                               d->description ? d->description : "");
        send_line(s, line->str);
    }
    for (guint i = 0; i < m->drives->len; i++) {
        VdDriveSpec *d = g_ptr_array_index(m->drives, i);
        g_string_printf(line, "INFO drive %s if=%s index=%d size=%" PRId64 " driver=%s cache=%s wce=%d ro=%d",
                        d->id, d->interface, d->index, vd_blk_length(d->blk), vd_blk_driver_name(d->blk),
                        vd_cache_mode_name(vd_blk_cache_mode(d->blk)), vd_blk_write_cache(d->blk),
                        vd_blk_is_read_only(d->blk));
        send_line(s, line->str);
    }
    g_string_printf(reply, "OK %u", 1 + m->devices->len + m->drives->len);
}

/* dtb -> OK <base64 of the flattened device tree> (extension) */
static void cmd_dtb(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    g_autoptr(GError) err = NULL;
    size_t size;
    g_autofree void *fdt = vd_machine_build_fdt(s->m, &size, &err);
    if (!fdt) {
        fail(reply, "%s", err->message);
        return;
    }
    g_autofree char *b64 = g_base64_encode(fdt, size);
    g_string_printf(reply, "OK %s", b64);
}

/* Free a trace sink (hash table value). */
static void trace_sink_free(gpointer p)
{
    TraceSink *t = p;
    g_free(t->id);
    g_free(t);
}

/* trace ID on|off: backend trace lines become "TRACE ID text" lines (extension) */
static void cmd_trace(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    VdDriveSpec *d = find_drive(s, argv[1], reply);
    if (!d) {
        return;
    }
    if (strcmp(argv[2], "on") == 0) {
        TraceSink *t = g_new0(TraceSink, 1);
        t->s = s;
        t->id = g_strdup(d->id);
        vd_blk_set_trace(d->blk, on_trace, t);
        g_hash_table_replace(s->traces, g_strdup(d->id), t);
    } else if (strcmp(argv[2], "off") == 0) {
        vd_blk_set_trace(d->blk, NULL, NULL);
        g_hash_table_remove(s->traces, d->id);
    } else {
        fail(reply, "trace takes on or off, not '%s'", argv[2]);
        return;
    }
    g_string_assign(reply, "OK");
}

/* inject ID read|write|flush|discard ERRNO COUNT: fail the next COUNT host ops (extension) */
static void cmd_inject(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    static const struct { const char *name; VdFaultOp op; } ops[] = {
        { "read", VD_FAULT_READ }, { "write", VD_FAULT_WRITE },
        { "flush", VD_FAULT_FLUSH }, { "discard", VD_FAULT_DISCARD },
    };
    static const struct { const char *name; int err; } errnos[] = {
        { "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EROFS", EROFS }, { "EPERM", EPERM },
        { "EINVAL", EINVAL }, { "ENOMEM", ENOMEM }, { "EDQUOT", EDQUOT }, { "ENOTSUP", ENOTSUP },
    };
    VdDriveSpec *d = find_drive(s, argv[1], reply);
    if (!d) {
        return;
    }
    int op = -1, err = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(ops); i++) {
        if (strcmp(argv[2], ops[i].name) == 0) {
            op = ops[i].op;
        }
    }
    if (op < 0) {
        fail(reply, "unknown operation '%s' (read, write, flush or discard)", argv[2]);
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(errnos); i++) {
        if (strcmp(argv[3], errnos[i].name) == 0) {
            err = errnos[i].err;
        }
    }
    uint64_t num, count;
    if (!err) {
        if (!parse_num(argv[3], 4095, "ERRNO", &num, reply)) {
            return;
        }
        if (!num) {
            fail(reply, "ERRNO must not be 0");
            return;
        }
        err = num;
    }
    if (!parse_num(argv[4], UINT32_MAX, "COUNT", &count, reply)) {
        return;
    }
    vd_blk_inject_error(d->blk, op, err, count);
    g_string_assign(reply, "OK");
}

/* The command table: name, argument count range, handler, usage for FAIL messages. */
static const struct QtestCommand {
    const char *name;
    int min_args, max_args;
    QtestCmd *fn;
    const char *usage;
} commands[] = {
    { "outb", 2, 2, cmd_out, "ADDR VALUE" },
    { "outw", 2, 2, cmd_out, "ADDR VALUE" },
    { "outl", 2, 2, cmd_out, "ADDR VALUE" },
    { "inb", 1, 1, cmd_in, "ADDR" },
    { "inw", 1, 1, cmd_in, "ADDR" },
    { "inl", 1, 1, cmd_in, "ADDR" },
    { "writeb", 2, 2, cmd_writex, "ADDR VALUE" },
    { "writew", 2, 2, cmd_writex, "ADDR VALUE" },
    { "writel", 2, 2, cmd_writex, "ADDR VALUE" },
    { "writeq", 2, 2, cmd_writex, "ADDR VALUE" },
    { "readb", 1, 1, cmd_readx, "ADDR" },
    { "readw", 1, 1, cmd_readx, "ADDR" },
    { "readl", 1, 1, cmd_readx, "ADDR" },
    { "readq", 1, 1, cmd_readx, "ADDR" },
    { "read", 2, 2, cmd_read, "ADDR SIZE" },
    { "write", 3, 3, cmd_write, "ADDR SIZE 0xDATA" },
    { "memset", 3, 3, cmd_memset, "ADDR SIZE VALUE" },
    { "b64read", 2, 2, cmd_b64read, "ADDR SIZE" },
    { "b64write", 3, 3, cmd_b64write, "ADDR SIZE BASE64" },
    { "endianness", 0, 0, cmd_endianness, "" },
    { "clock_step", 0, 1, cmd_clock_step, "[NS]" },
    { "clock_set", 1, 1, cmd_clock_set, "NS" },
    { "irq_intercept_in", 0, 2, cmd_irq_intercept, "[PATH [NAME]]" },
    { "irq_intercept_out", 0, 2, cmd_irq_intercept, "[PATH [NAME]]" },
    { "irq_level", 1, 1, cmd_irq_level, "LINE" },
    { "drain", 0, 1, cmd_drain, "[TIMEOUT_MS]" },
    { "blockstats", 1, 1, cmd_blockstats, "ID" },
    { "info", 0, 0, cmd_info, "" },
    { "dtb", 0, 0, cmd_dtb, "" },
    { "trace", 2, 2, cmd_trace, "ID on|off" },
    { "inject", 4, 4, cmd_inject, "ID read|write|flush|discard ERRNO COUNT" },
};

/* Run one command line and send its reply. */
static void handle_line(VdQtestServer *s, char *line, size_t len)
{
    g_autoptr(GString) reply = g_string_new(NULL);
    if (len && line[len - 1] == '\r') {
        line[--len] = '\0';
    }
    if (strcmp(line, OVERLONG_MARK) == 0) {
        fail(reply, "line longer than %u bytes", VD_QTEST_MAX_LINE);
    } else if (memchr(line, '\0', len)) {
        fail(reply, "line contains a NUL byte");
    } else {
        g_auto(GStrv) words = g_strsplit_set(line, " \t", -1);
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        for (char **w = words; *w; w++) {
            if (**w) {
                g_ptr_array_add(argv, *w);
            }
        }
        int argc = argv->len;
        g_ptr_array_add(argv, NULL);
        char **args = (char **)argv->pdata;
        const struct QtestCommand *cmd = NULL;
        for (size_t i = 0; argc && i < G_N_ELEMENTS(commands); i++) {
            if (strcmp(args[0], commands[i].name) == 0) {
                cmd = &commands[i];
            }
        }
        if (!argc) {
            fail(reply, "empty command");
        } else if (!cmd) {
            fail(reply, "Unknown command '%s'", args[0]);
        } else if (argc - 1 < cmd->min_args || argc - 1 > cmd->max_args) {
            fail(reply, "wrong number of arguments (usage: %s%s%s)", cmd->name, cmd->usage[0] ? " " : "",
                 cmd->usage);
        } else {
            cmd->fn(s, argc, args, reply);
        }
    }
    send_line(s, reply->str);
}

/* Run whatever the context has ready, without blocking (device completions, IRQs). */
static void run_pending(VdQtestServer *s)
{
    for (int i = 0; i < MAX_PENDING_ITERATIONS && g_main_context_iteration(s->m->ctx, FALSE); i++) {
    }
}

/* Execute every complete line in the input buffer, in order. */
static void process_lines(VdQtestServer *s)
{
    s->processing = true;
    char *nl;
    while (!s->broken && (nl = memchr(s->inbuf->str, '\n', s->inbuf->len))) {
        size_t len = nl - s->inbuf->str;
        g_autofree char *line = g_malloc(len + 1);
        memcpy(line, s->inbuf->str, len); /* NUL bytes included, so that the line can be refused */
        line[len] = '\0';
        g_string_erase(s->inbuf, 0, len + 1);
        handle_line(s, line, len);
        run_pending(s);
    }
    s->processing = false;
}

/*
 * Queue input bytes; a line over VD_QTEST_MAX_LINE collapses to
 * OVERLONG_MARK.  True if at least one line was completed.
 */
static bool queue_input(VdQtestServer *s, const char *data, size_t n)
{
    bool completed = false;
    while (n) {
        const char *nl = memchr(data, '\n', n);
        size_t seg = nl ? (size_t)(nl - data) : n;
        if (s->discarding) {
            /* drop the rest of the overlong line */
        } else if (seg > VD_QTEST_MAX_LINE - s->partial) {
            g_string_truncate(s->inbuf, s->inbuf->len - s->partial);
            g_string_append(s->inbuf, OVERLONG_MARK);
            s->partial = strlen(OVERLONG_MARK);
            s->discarding = true;
        } else {
            g_string_append_len(s->inbuf, data, seg);
            s->partial += seg;
        }
        if (nl) {
            g_string_append_c(s->inbuf, '\n');
            s->partial = 0;
            s->discarding = false;
            completed = true;
            seg++;
        }
        data += seg;
        n -= seg;
    }
    return completed;
}

/* Input source callback: read, queue, and execute unless a command is already running. */
static gboolean on_input(gint fd, GIOCondition cond, gpointer opaque)
{
    VdQtestServer *s = opaque;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        s->eof = true; /* an outer process_lines, if any, finishes the queued lines */
        if (!s->processing) {
            process_lines(s);
        }
        g_source_unref(s->in_source);
        s->in_source = NULL;
        return G_SOURCE_REMOVE;
    }
    if (queue_input(s, buf, n) && !s->processing) {
        process_lines(s);
    }
    return G_SOURCE_CONTINUE;
}

VdQtestServer *vd_qtest_server_new(VdMachine *m, int in_fd, int out_fd)
{
    VdQtestServer *s = g_new0(VdQtestServer, 1);
    s->m = m;
    s->in_fd = in_fd;
    s->out_fd = out_fd;
    s->inbuf = g_string_new(NULL);
    s->traces = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, trace_sink_free);
    s->in_source = g_unix_fd_source_new(in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(s->in_source, (GSourceFunc)(void (*)(void))on_input, s, NULL);
    g_source_attach(s->in_source, m->ctx);
    vd_bus_set_irq_listener(m->bus, on_irq, s);
    return s;
}

/* Split "unix:PATH[,server]"; false with an error for anything else but "stdio". */
static bool parse_spec(const char *spec, char **path, bool *server, GError **errp)
{
    *path = NULL;
    *server = false;
    if (g_strcmp0(spec, "stdio") == 0) {
        return true;
    }
    if (!spec || !g_str_has_prefix(spec, "unix:")) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--qtest %s: expected stdio, unix:PATH or unix:PATH,server", spec ? spec : "");
        return false;
    }
    g_autofree char *p = g_strdup(spec + 5);
    if (g_str_has_suffix(p, ",server")) {
        p[strlen(p) - 7] = '\0';
        *server = true;
    }
    if (!*p || strchr(p, ',') || strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "--qtest %s: the socket path must be non-empty, without commas, and under %zu bytes", spec,
                    sizeof(((struct sockaddr_un *)0)->sun_path));
        return false;
    }
    *path = g_steal_pointer(&p);
    return true;
}

bool vd_qtest_spec_valid(const char *spec, GError **errp)
{
    g_autofree char *path = NULL;
    bool server;
    return parse_spec(spec, &path, &server, errp);
}

/* Connect to, or listen on and accept one client at, a unix socket path. */
static int open_unix(const char *path, bool server, GError **errp)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "socket: %s", g_strerror(errno));
        return -1;
    }
    if (!server) {
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
            g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "--qtest: cannot connect to %s: %s", path,
                        g_strerror(errno));
            close(fd);
            return -1;
        }
        return fd;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "--qtest: cannot listen on %s: %s", path,
                    g_strerror(errno));
        close(fd);
        return -1;
    }
    int conn;
    do {
        conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    } while (conn < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    unlink(path);
    if (conn < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(saved), "--qtest: accept on %s: %s", path,
                    g_strerror(saved));
    }
    return conn;
}

VdQtestServer *vd_qtest_server_open(VdMachine *m, const char *spec, GError **errp)
{
    g_autofree char *path = NULL;
    bool server;
    if (!parse_spec(spec, &path, &server, errp)) {
        return NULL;
    }
    if (!path) {
        return vd_qtest_server_new(m, STDIN_FILENO, STDOUT_FILENO);
    }
    int fd = open_unix(path, server, errp);
    if (fd < 0) {
        return NULL;
    }
    VdQtestServer *s = vd_qtest_server_new(m, fd, fd);
    s->owns_fds = true;
    return s;
}

bool vd_qtest_server_done(VdQtestServer *s)
{
    return s->broken || (s->eof && !s->processing);
}

void vd_qtest_server_free(VdQtestServer *s)
{
    if (!s) {
        return;
    }
    GHashTableIter it;
    gpointer id;
    g_hash_table_iter_init(&it, s->traces);
    while (g_hash_table_iter_next(&it, &id, NULL)) {
        VdDriveSpec *d = vd_machine_find_drive(s->m, id);
        if (d) {
            vd_blk_set_trace(d->blk, NULL, NULL);
        }
    }
    g_hash_table_destroy(s->traces);
    vd_bus_set_irq_listener(s->m->bus, NULL, NULL);
    if (s->in_source) {
        g_source_destroy(s->in_source);
        g_source_unref(s->in_source);
    }
    if (s->owns_fds) {
        close(s->in_fd);
    }
    g_string_free(s->inbuf, TRUE);
    g_free(s);
}
