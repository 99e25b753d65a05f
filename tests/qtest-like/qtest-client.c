/* qtest-client.c - the harness side of the qtest-like protocol. */
#include "qtest-client.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct VdQtest {
    GPid pid;
    int to_vmm, from_vmm;
    GString *rbuf;             /* bytes read but not yet split into lines */
    unsigned timeout_ms;
    bool irq[VD_QTEST_IRQS];
    unsigned raises[VD_QTEST_IRQS];
    GPtrArray *traces;         /* "ID text" */
    GPtrArray *infos;          /* INFO lines without the prefix */
    VdQtestAsyncHook *hook;
    void *hook_opaque;
    char *last_cmd;            /* for messages */
    bool eof;
};

/* Set once by a program (vd_qtest_set_program): its name; NULL in tests, which abort. */
static const char *program_name;

void vd_qtest_set_program(const char *program)
{
    program_name = program;
}

/* Print why the session cannot go on, then abort the test (or exit 1, in a program). */
G_GNUC_PRINTF(2, 3) G_GNUC_NORETURN static void die(VdQtest *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_name ? program_name : "qtest-client");
    vfprintf(stderr, fmt, ap);
    if (q && q->last_cmd) {
        fprintf(stderr, " (last command: %s)", q->last_cmd);
    }
    fputc('\n', stderr);
    va_end(ap);
    if (program_name) {
        exit(1);
    }
    abort();
}

const char *vd_qtest_vmm_path(void)
{
    const char *path = g_getenv("VDISK_VMM");
    if (!path || !*path) {
        die(NULL, "VDISK_VMM is not set (meson test sets it to the vdisk-vmm binary)");
    }
    return path;
}

/* The session timeout: $VDISK_QTEST_TIMEOUT_MS or the default. */
static unsigned default_timeout(void)
{
    const char *env = g_getenv("VDISK_QTEST_TIMEOUT_MS");
    guint64 v;
    if (env && g_ascii_string_to_unsigned(env, 10, 1, 3600000, &v, NULL)) {
        return v;
    }
    return VD_QTEST_DEFAULT_TIMEOUT_MS;
}

VdQtest *vd_qtest_startv(const char *const *extra_argv)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, (char *)vd_qtest_vmm_path());
    g_ptr_array_add(argv, "--qtest");
    g_ptr_array_add(argv, "stdio");
    for (const char *const *a = extra_argv; a && *a; a++) {
        g_ptr_array_add(argv, (char *)*a);
    }
    g_ptr_array_add(argv, NULL);
    VdQtest *q = g_new0(VdQtest, 1);
    g_autoptr(GError) err = NULL;
    if (!g_spawn_async_with_pipes(NULL, (char **)argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                  &q->pid, &q->to_vmm, &q->from_vmm, NULL, &err)) {
        die(q, "cannot start %s: %s", vd_qtest_vmm_path(), err->message);
    }
    q->rbuf = g_string_new(NULL);
    q->timeout_ms = default_timeout();
    q->traces = g_ptr_array_new_with_free_func(g_free);
    q->infos = g_ptr_array_new_with_free_func(g_free);
    return q;
}

VdQtest *vd_qtest_start(const char *extra_args)
{
    g_auto(GStrv) args = NULL;
    g_autoptr(GError) err = NULL;
    if (extra_args && *extra_args && !g_shell_parse_argv(extra_args, NULL, &args, &err)) {
        die(NULL, "bad VMM arguments '%s': %s", extra_args, err->message);
    }
    return vd_qtest_startv((const char *const *)args);
}

void vd_qtest_set_timeout(VdQtest *q, unsigned ms)
{
    q->timeout_ms = ms ? ms : default_timeout();
}

GPid vd_qtest_pid(VdQtest *q)
{
    return q->pid;
}

void vd_qtest_set_async_hook(VdQtest *q, VdQtestAsyncHook *fn, void *opaque)
{
    q->hook = fn;
    q->hook_opaque = opaque;
}

/* Book-keeping for one asynchronous line. */
static void handle_async(VdQtest *q, const char *line)
{
    unsigned n;
    char what[8];
    if (sscanf(line, "IRQ %7s %u", what, &n) == 2 && n < VD_QTEST_IRQS) {
        bool raise = strcmp(what, "raise") == 0;
        q->irq[n] = raise;
        q->raises[n] += raise;
    } else if (g_str_has_prefix(line, "TRACE ")) {
        g_ptr_array_add(q->traces, g_strdup(line + 6));
    } else if (g_str_has_prefix(line, "INFO ")) {
        g_ptr_array_add(q->infos, g_strdup(line + 5));
    }
    if (q->hook) {
        q->hook(q->hook_opaque, line);
    }
}

/* Is this line a reply (as opposed to an asynchronous line)? */
static bool is_reply(const char *line)
{
    return strcmp(line, "OK") == 0 || g_str_has_prefix(line, "OK ") || strcmp(line, "FAIL") == 0 ||
           g_str_has_prefix(line, "FAIL ");
}

/*
 * Read until a complete line is available or the deadline passes.  Returns
 * the line (g_free) or NULL on timeout or end of file.
 */
static char *read_line(VdQtest *q, gint64 deadline)
{
    for (;;) {
        char *nl = memchr(q->rbuf->str, '\n', q->rbuf->len);
        if (nl) {
            char *line = g_strndup(q->rbuf->str, nl - q->rbuf->str);
            g_string_erase(q->rbuf, 0, nl - q->rbuf->str + 1);
            return line;
        }
        if (q->eof) {
            return NULL;
        }
        gint64 left = deadline - g_get_monotonic_time();
        if (left <= 0) {
            return NULL;
        }
        struct pollfd p = { .fd = q->from_vmm, .events = POLLIN };
        int r = poll(&p, 1, (int)MIN(left / 1000 + 1, INT_MAX));
        if (r < 0 && errno != EINTR) {
            die(q, "poll: %s", g_strerror(errno));
        }
        if (r <= 0) {
            continue;
        }
        char buf[65536];
        ssize_t n = read(q->from_vmm, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            q->eof = true;
        } else {
            g_string_append_len(q->rbuf, buf, n);
        }
    }
}

/* Write a whole buffer to the VMM. */
static void send_raw(VdQtest *q, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(q->to_vmm, data, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            die(q, "the VMM stopped reading its input: %s", g_strerror(errno));
        }
        data += n;
        len -= n;
    }
}

/* How the VMM ended after closing its output: its exit status if it exits within a second (static text). */
static const char *vmm_end_text(VdQtest *q)
{
    static char text[64];
    int status;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(q->pid, &status, WNOHANG) == q->pid) {
            if (WIFEXITED(status)) {
                snprintf(text, sizeof(text), "it exited with status %d", WEXITSTATUS(status));
            } else {
                snprintf(text, sizeof(text), "it was killed by signal %d", WTERMSIG(status));
            }
            return text;
        }
        g_usleep(1000);
    }
    return "it is still running";
}

/* Wait for the reply line, handling asynchronous lines that come first. */
static char *wait_reply(VdQtest *q)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)q->timeout_ms * 1000;
    for (;;) {
        char *line = read_line(q, deadline);
        if (!line) {
            if (q->eof) {
                die(q, "the VMM closed its output (%s)", vmm_end_text(q));
            }
            die(q, "no reply within %u ms", q->timeout_ms);
        }
        if (is_reply(line)) {
            return line;
        }
        handle_async(q, line);
        g_free(line);
    }
}

void vd_qtest_send(VdQtest *q, const char *data, size_t len)
{
    send_raw(q, data, len);
}

char *vd_qtest_raw(VdQtest *q, const char *data, size_t len)
{
    g_free(q->last_cmd);
    q->last_cmd = g_strndup(data, MIN(len, 200));
    send_raw(q, data, len);
    return wait_reply(q);
}

/* Send one formatted command line and wait for its reply. */
static char *vcmd(VdQtest *q, const char *fmt, va_list ap)
{
    g_autoptr(GString) line = g_string_new(NULL);
    g_string_append_vprintf(line, fmt, ap);
    g_free(q->last_cmd);
    q->last_cmd = g_strndup(line->str, 200);
    g_string_append_c(line, '\n');
    send_raw(q, line->str, line->len);
    return wait_reply(q);
}

char *vd_qtest_cmd(VdQtest *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *reply = vcmd(q, fmt, ap);
    va_end(ap);
    return reply;
}

char *vd_qtest_ok(VdQtest *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *reply = vcmd(q, fmt, ap);
    va_end(ap);
    if (!g_str_has_prefix(reply, "OK")) {
        die(q, "expected OK, got '%s'", reply);
    }
    return g_strdup(reply[2] == ' ' ? reply + 3 : reply + 2);
}

/* Send a command whose reply is OK followed by one number. */
G_GNUC_PRINTF(2, 3) static uint64_t ok_number(VdQtest *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *reply = vcmd(q, fmt, ap);
    va_end(ap);
    char *end;
    if (!g_str_has_prefix(reply, "OK ")) {
        die(q, "expected OK VALUE, got '%s'", reply);
    }
    errno = 0;
    uint64_t v = g_ascii_strtoull(reply + 3, &end, 0);
    if (errno || *end || end == reply + 3) {
        die(q, "expected a number after OK, got '%s'", reply);
    }
    return v;
}

/* Send a command that must answer plain OK. */
#define OK_CMD(q, ...) g_free(vd_qtest_ok(q, __VA_ARGS__))

void vd_qtest_outb(VdQtest *q, uint16_t port, uint8_t v) { OK_CMD(q, "outb 0x%x 0x%x", port, v); }
void vd_qtest_outw(VdQtest *q, uint16_t port, uint16_t v) { OK_CMD(q, "outw 0x%x 0x%x", port, v); }
void vd_qtest_outl(VdQtest *q, uint16_t port, uint32_t v) { OK_CMD(q, "outl 0x%x 0x%x", port, v); }
uint8_t vd_qtest_inb(VdQtest *q, uint16_t port) { return ok_number(q, "inb 0x%x", port); }
uint16_t vd_qtest_inw(VdQtest *q, uint16_t port) { return ok_number(q, "inw 0x%x", port); }
uint32_t vd_qtest_inl(VdQtest *q, uint16_t port) { return ok_number(q, "inl 0x%x", port); }

void vd_qtest_writeb(VdQtest *q, uint64_t a, uint8_t v) { OK_CMD(q, "writeb 0x%" PRIx64 " 0x%x", a, v); }
void vd_qtest_writew(VdQtest *q, uint64_t a, uint16_t v) { OK_CMD(q, "writew 0x%" PRIx64 " 0x%x", a, v); }
void vd_qtest_writel(VdQtest *q, uint64_t a, uint32_t v) { OK_CMD(q, "writel 0x%" PRIx64 " 0x%x", a, v); }
void vd_qtest_writeq(VdQtest *q, uint64_t a, uint64_t v)
{
    OK_CMD(q, "writeq 0x%" PRIx64 " 0x%" PRIx64, a, v);
}
uint8_t vd_qtest_readb(VdQtest *q, uint64_t a) { return ok_number(q, "readb 0x%" PRIx64, a); }
uint16_t vd_qtest_readw(VdQtest *q, uint64_t a) { return ok_number(q, "readw 0x%" PRIx64, a); }
uint32_t vd_qtest_readl(VdQtest *q, uint64_t a) { return ok_number(q, "readl 0x%" PRIx64, a); }
uint64_t vd_qtest_readq(VdQtest *q, uint64_t a) { return ok_number(q, "readq 0x%" PRIx64, a); }

void vd_qtest_memread(VdQtest *q, uint64_t addr, void *buf, size_t len)
{
    if (!len) {
        return;
    }
    g_autofree char *b64 = vd_qtest_ok(q, "b64read 0x%" PRIx64 " 0x%zx", addr, len);
    gsize out_len;
    g_autofree uint8_t *data = g_base64_decode(b64, &out_len);
    if (out_len != len) {
        die(q, "b64read returned %zu bytes instead of %zu", (size_t)out_len, len);
    }
    memcpy(buf, data, len);
}

void vd_qtest_memwrite(VdQtest *q, uint64_t addr, const void *buf, size_t len)
{
    if (!len) {
        return;
    }
    g_autofree char *b64 = g_base64_encode(buf, len);
    OK_CMD(q, "b64write 0x%" PRIx64 " 0x%zx %s", addr, len, b64);
}

void vd_qtest_memset(VdQtest *q, uint64_t addr, uint8_t value, size_t len)
{
    OK_CMD(q, "memset 0x%" PRIx64 " 0x%zx 0x%x", addr, len, value);
}

bool vd_qtest_drain(VdQtest *q)
{
    g_autofree char *reply = vd_qtest_cmd(q, "drain");
    return strcmp(reply, "OK") == 0;
}

uint64_t vd_qtest_blockstat(VdQtest *q, const char *id, const char *key)
{
    g_autofree char *stats = vd_qtest_ok(q, "blockstats %s", id);
    g_auto(GStrv) pairs = g_strsplit(stats, " ", -1);
    size_t klen = strlen(key);
    for (char **p = pairs; *p; p++) {
        if (strncmp(*p, key, klen) == 0 && (*p)[klen] == '=') {
            return g_ascii_strtoull(*p + klen + 1, NULL, 10);
        }
    }
    die(q, "drive %s has no counter '%s' (blockstats: %s)", id, key, stats);
}

void vd_qtest_trace(VdQtest *q, const char *id, bool on)
{
    OK_CMD(q, "trace %s %s", id, on ? "on" : "off");
}

GPtrArray *vd_qtest_take_traces(VdQtest *q)
{
    GPtrArray *t = q->traces;
    q->traces = g_ptr_array_new_with_free_func(g_free);
    return t;
}

void vd_qtest_inject(VdQtest *q, const char *id, const char *op, int err, unsigned count)
{
    OK_CMD(q, "inject %s %s %d %u", id, op, err, count);
}

void *vd_qtest_dtb(VdQtest *q, size_t *size)
{
    g_autofree char *b64 = vd_qtest_ok(q, "dtb");
    gsize len;
    void *fdt = g_base64_decode(b64, &len);
    *size = len;
    return fdt;
}

GPtrArray *vd_qtest_info(VdQtest *q)
{
    g_ptr_array_set_size(q->infos, 0);
    g_free(vd_qtest_ok(q, "info"));
    GPtrArray *out = q->infos;
    q->infos = g_ptr_array_new_with_free_func(g_free);
    return out;
}

bool vd_qtest_irq_level(VdQtest *q, unsigned line)
{
    return line < VD_QTEST_IRQS && q->irq[line];
}

unsigned vd_qtest_irq_raises(VdQtest *q, unsigned line)
{
    return line < VD_QTEST_IRQS ? q->raises[line] : 0;
}

/* Consume asynchronous lines until cond(q) holds or the deadline passes. */
static bool read_async_until(VdQtest *q, gint64 deadline, bool (*cond)(VdQtest *q, const void *arg),
                             const void *arg)
{
    while (!cond || !cond(q, arg)) {
        g_autofree char *line = read_line(q, deadline);
        if (!line) {
            return false;
        }
        if (is_reply(line)) {
            die(q, "unexpected reply '%s' with no command pending", line);
        }
        handle_async(q, line);
    }
    return true;
}

typedef struct IrqWait {
    unsigned line;
    bool level;
} IrqWait;

/* Condition for vd_qtest_wait_irq. */
static bool irq_reached(VdQtest *q, const void *arg)
{
    const IrqWait *w = arg;
    return q->irq[w->line] == w->level;
}

bool vd_qtest_wait_irq(VdQtest *q, unsigned line, bool level, unsigned timeout_ms)
{
    if (line >= VD_QTEST_IRQS) {
        die(q, "IRQ line %u does not exist", line);
    }
    IrqWait w = { line, level };
    gint64 deadline = g_get_monotonic_time() + (gint64)(timeout_ms ? timeout_ms : q->timeout_ms) * 1000;
    return read_async_until(q, deadline, irq_reached, &w);
}

void vd_qtest_poll(VdQtest *q, unsigned ms)
{
    read_async_until(q, g_get_monotonic_time() + (gint64)ms * 1000, NULL, NULL);
}

int vd_qtest_quit(VdQtest *q)
{
    close(q->to_vmm);
    /* Keep reading so that the VMM never blocks on a full pipe while it shuts down. */
    gint64 deadline = g_get_monotonic_time() + (gint64)q->timeout_ms * 1000;
    while (!q->eof && g_get_monotonic_time() < deadline) {
        g_free(read_line(q, deadline));
    }
    int status = 0;
    pid_t r;
    while ((r = waitpid(q->pid, &status, WNOHANG)) == 0 && g_get_monotonic_time() < deadline) {
        g_usleep(1000);
    }
    int ret;
    if (r == 0) {
        fprintf(stderr, "qtest-client: the VMM did not exit within %u ms; killing it\n", q->timeout_ms);
        kill(q->pid, SIGKILL);
        waitpid(q->pid, &status, 0);
        ret = -1;
    } else {
        ret = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    g_spawn_close_pid(q->pid);
    close(q->from_vmm);
    g_string_free(q->rbuf, TRUE);
    g_ptr_array_free(q->traces, TRUE);
    g_ptr_array_free(q->infos, TRUE);
    g_free(q->last_cmd);
    g_free(q);
    return ret;
}

void vd_guest_alloc_init(VdGuestAlloc *a, uint64_t start, uint64_t end)
{
    a->start = a->next = start;
    a->end = end;
}

uint64_t vd_guest_alloc(VdGuestAlloc *a, uint64_t size, uint64_t align)
{
    if (!align || (align & (align - 1))) {
        die(NULL, "guest alloc: alignment %" PRIu64 " is not a power of two", align);
    }
    uint64_t addr = (a->next + align - 1) & ~(align - 1);
    if (addr < a->next || addr > a->end || size > a->end - addr) {
        die(NULL, "guest alloc: %" PRIu64 " bytes do not fit in [0x%" PRIx64 ", 0x%" PRIx64 ")", size, a->start,
            a->end);
    }
    a->next = addr + size;
    return addr;
}

void vd_guest_alloc_reset(VdGuestAlloc *a)
{
    a->next = a->start;
}
