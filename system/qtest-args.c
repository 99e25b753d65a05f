/* qtest-args.c - argument parsing and guest-memory access for the qtest-like server. */
#include "qtest-internal.h"

#include <errno.h>

/* Set reply to "FAIL <message>". */
void vd_qtest_fail(GString *reply, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_string_assign(reply, "FAIL ");
    g_string_append_vprintf(reply, fmt, ap);
    va_end(ap);
}

/* An unsigned number as strtoul(base 0) reads it (0x hex, 0 octal, decimal), whole-string, <= max. */
bool vd_qtest_parse_num(const char *str, uint64_t max, const char *what, uint64_t *out, GString *reply)
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
        vd_qtest_fail(reply, "%s '%s' is not a number", what, str);
        return false;
    }
    errno = 0;
    guint64 v = g_ascii_strtoull(digits, NULL, base);
    if (errno == ERANGE || v > max) {
        vd_qtest_fail(reply, "%s %s is too large (maximum 0x%" PRIx64 ")", what, str, max);
        return false;
    }
    *out = v;
    return true;
}

/* Access size named by a command's suffix letter (outb, readq, ...). */
unsigned vd_qtest_suffix_size(const char *cmd)
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
uint64_t vd_qtest_size_mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
}

/* Check that [addr, addr+len) does not wrap around the address space. */
bool vd_qtest_range_ok(uint64_t addr, uint64_t len, GString *reply)
{
    if (len && addr + (len - 1) < addr) {
        vd_qtest_fail(reply, "range 0x%" PRIx64 "+0x%" PRIx64 " wraps around the address space", addr, len);
        return false;
    }
    return true;
}

/* The drive named by id, or NULL with a FAIL reply. */
VdDriveSpec *vd_qtest_find_drive(VdQtestServer *s, const char *id, GString *reply)
{
    VdDriveSpec *d = vd_machine_find_drive(s->m, id);
    if (!d) {
        vd_qtest_fail(reply, "no drive with id '%s'", id);
    }
    return d;
}

/* Copy guest physical memory: RAM directly, anything else byte by byte through the bus. */
bool vd_qtest_mem_access(VdQtestServer *s, uint64_t addr, uint8_t *buf, uint64_t len, bool write, GString *reply)
{
    uint8_t *ram = vd_dma_map(s->m->bus, addr, len);
    if (ram) {
        write ? memcpy(ram, buf, len) : memcpy(buf, ram, len);
        return true;
    }
    if (len > MAX_DEVICE_BLOCK) {
        vd_qtest_fail(reply, "0x%" PRIx64 "+0x%" PRIx64 " leaves RAM and is over the 0x%x byte limit for device memory",
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
bool vd_qtest_parse_block(char **argv, uint64_t max, bool allow_zero, uint64_t *addr, uint64_t *len, GString *reply)
{
    if (!vd_qtest_parse_num(argv[1], UINT64_MAX, "ADDR", addr, reply) || !vd_qtest_parse_num(argv[2], max, "SIZE", len, reply)) {
        return false;
    }
    if (!*len && !allow_zero) {
        vd_qtest_fail(reply, "SIZE must not be 0");
        return false;
    }
    return vd_qtest_range_ok(*addr, *len, reply);
}

