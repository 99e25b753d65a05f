/* qtest-mem.c - the QEMU-compatible commands: port I/O, memory, clock, IRQ interception. */
#include "qtest-internal.h"

/* outb/outw/outl ADDR VALUE */
void vd_qtest_cmd_out(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    unsigned size = vd_qtest_suffix_size(argv[0]);
    uint64_t addr, value;
    if (vd_qtest_parse_num(argv[1], 0xffff, "ADDR", &addr, reply) &&
        vd_qtest_parse_num(argv[2], vd_qtest_size_mask(size), "VALUE", &value, reply)) {
        vd_bus_write(s->m->bus, VD_SPACE_PIO, addr, value, size);
        g_string_assign(reply, "OK");
    }
}

/* inb/inw/inl ADDR -> OK 0x%04x */
void vd_qtest_cmd_in(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t addr, value;
    if (vd_qtest_parse_num(argv[1], 0xffff, "ADDR", &addr, reply)) {
        vd_bus_read(s->m->bus, VD_SPACE_PIO, addr, vd_qtest_suffix_size(argv[0]), &value);
        g_string_printf(reply, "OK 0x%04" PRIx64, value);
    }
}

/* writeb/w/l/q ADDR VALUE */
void vd_qtest_cmd_writex(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    unsigned size = vd_qtest_suffix_size(argv[0]);
    uint64_t addr, value;
    if (vd_qtest_parse_num(argv[1], UINT64_MAX, "ADDR", &addr, reply) &&
        vd_qtest_parse_num(argv[2], vd_qtest_size_mask(size), "VALUE", &value, reply) && vd_qtest_range_ok(addr, size, reply)) {
        vd_bus_write(s->m->bus, VD_SPACE_MMIO, addr, value, size);
        g_string_assign(reply, "OK");
    }
}

/* readb/w/l/q ADDR -> OK 0x%016x */
void vd_qtest_cmd_readx(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    unsigned size = vd_qtest_suffix_size(argv[0]);
    uint64_t addr, value;
    if (vd_qtest_parse_num(argv[1], UINT64_MAX, "ADDR", &addr, reply) && vd_qtest_range_ok(addr, size, reply)) {
        vd_bus_read(s->m->bus, VD_SPACE_MMIO, addr, size, &value);
        g_string_printf(reply, "OK 0x%016" PRIx64, value);
    }
}

/* read ADDR SIZE -> OK 0x<hex bytes> */
void vd_qtest_cmd_read(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t addr, len;
    if (!vd_qtest_parse_block(argv, MAX_BLOCK, false, &addr, &len, reply)) {
        return;
    }
    g_autofree uint8_t *buf = g_malloc(len);
    if (vd_qtest_mem_access(s, addr, buf, len, false, reply)) {
        g_string_assign(reply, "OK 0x");
        for (uint64_t i = 0; i < len; i++) {
            g_string_append_printf(reply, "%02x", buf[i]);
        }
    }
}

/* write ADDR SIZE 0xHEX: missing trailing bytes are zero. */
void vd_qtest_cmd_write(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t addr, len;
    if (!vd_qtest_parse_block(argv, MAX_BLOCK, false, &addr, &len, reply)) {
        return;
    }
    const char *hex = argv[3];
    size_t digits = strlen(hex) - 2;
    if (hex[0] != '0' || (hex[1] != 'x' && hex[1] != 'X') || digits % 2 || digits / 2 > len) {
        vd_qtest_fail(reply, "DATA must be 0x followed by at most SIZE bytes as pairs of hex digits");
        return;
    }
    g_autofree uint8_t *buf = g_malloc0(len);
    for (size_t i = 0; i < digits / 2; i++) {
        int hi = g_ascii_xdigit_value(hex[2 + 2 * i]), lo = g_ascii_xdigit_value(hex[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            vd_qtest_fail(reply, "DATA has a character that is not a hex digit at position %zu", 2 + 2 * i);
            return;
        }
        buf[i] = hi << 4 | lo;
    }
    if (vd_qtest_mem_access(s, addr, buf, len, true, reply)) {
        g_string_assign(reply, "OK");
    }
}

/* memset ADDR SIZE VALUE (SIZE 0 does nothing) */
void vd_qtest_cmd_memset(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t addr, len, value;
    if (!vd_qtest_parse_block(argv, UINT64_MAX, true, &addr, &len, reply) ||
        !vd_qtest_parse_num(argv[3], 0xff, "VALUE", &value, reply)) {
        return;
    }
    uint8_t *ram = vd_dma_map(s->m->bus, addr, len);
    if (ram) {
        memset(ram, value, len);
        g_string_assign(reply, "OK");
        return;
    }
    if (len > MAX_DEVICE_BLOCK) {
        vd_qtest_fail(reply, "0x%" PRIx64 "+0x%" PRIx64 " leaves RAM and is over the 0x%x byte limit for device memory",
             addr, len, MAX_DEVICE_BLOCK);
        return;
    }
    g_autofree uint8_t *buf = g_malloc(len ? len : 1);
    memset(buf, value, len);
    if (vd_qtest_mem_access(s, addr, buf, len, true, reply)) {
        g_string_assign(reply, "OK");
    }
}

/* b64read ADDR SIZE -> OK <base64> */
void vd_qtest_cmd_b64read(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t addr, len;
    if (!vd_qtest_parse_block(argv, MAX_BLOCK, true, &addr, &len, reply)) {
        return;
    }
    g_autofree uint8_t *buf = g_malloc(len ? len : 1);
    if (vd_qtest_mem_access(s, addr, buf, len, false, reply)) {
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
void vd_qtest_cmd_b64write(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t addr, len;
    if (!vd_qtest_parse_block(argv, MAX_BLOCK, true, &addr, &len, reply)) {
        return;
    }
    if (!base64_valid(argv[3])) {
        vd_qtest_fail(reply, "DATA is not valid base64");
        return;
    }
    gsize out_len;
    g_autofree uint8_t *buf = g_base64_decode(argv[3], &out_len);
    if (out_len != len) {
        vd_qtest_fail(reply, "SIZE is %" PRIu64 " but DATA decodes to %zu bytes", len, (size_t)out_len);
        return;
    }
    if (vd_qtest_mem_access(s, addr, buf, len, true, reply)) {
        g_string_assign(reply, "OK");
    }
}

/* endianness -> OK little */
void vd_qtest_cmd_endianness(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    g_string_assign(reply, "OK little");
}

/* clock_step [NS] -> OK <new ns>; the machine has no timers, so there is never a next deadline. */
void vd_qtest_cmd_clock_step(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t ns;
    if (argc < 2) {
        vd_qtest_fail(reply, "no timer deadline is pending, so there is nothing to step to (give NS)");
        return;
    }
    if (!vd_qtest_parse_num(argv[1], (uint64_t)(INT64_MAX - s->clock_ns), "NS", &ns, reply)) {
        return;
    }
    s->clock_ns += ns;
    g_string_printf(reply, "OK %" PRIi64, s->clock_ns);
}

/* clock_set NS -> OK <ns>, or FAIL <current ns> if NS lies in the past. */
void vd_qtest_cmd_clock_set(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    uint64_t ns;
    if (!vd_qtest_parse_num(argv[1], INT64_MAX, "NS", &ns, reply)) {
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
void vd_qtest_cmd_irq_intercept(VdQtestServer *s, int argc, char **argv, GString *reply)
{
    g_string_assign(reply, "OK");
}

