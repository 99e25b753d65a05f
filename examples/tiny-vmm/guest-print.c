/*
 * guest-print.c - the tiny guest's console: a small printf that writes to
 * the 16550A UART the guest found in its FDT, polling LSR THRE before each
 * byte as a driver without interrupts does.
 */
#include "guest.h"

#include <stdarg.h>

enum { UART_THR = 0, UART_LSR = 5, LSR_THRE = 0x20 };
#define UART_SPIN_LIMIT 100000

/* One byte to the UART (dropped if the guest has no UART). */
static void put_byte(Guest *g, char ch)
{
    if (!g->uart.found) {
        return;
    }
    uint16_t port = g->uart.base[0];
    for (unsigned i = 0; !(gcpu_in(g->cpu, port + UART_LSR, 1) & LSR_THRE) && i < UART_SPIN_LIMIT; i++) {
        gcpu_pause(g->cpu);
    }
    gcpu_out(g->cpu, port + UART_THR, (uint8_t)ch, 1);
}

/* An unsigned number in base 10 or 16, at least width digits (zero-padded). */
static void put_number(Guest *g, uint32_t v, unsigned base, unsigned width)
{
    char digits[16];
    unsigned n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v && n < sizeof(digits));
    for (unsigned i = n; i < width && i < sizeof(digits); i++) {
        put_byte(g, '0');
    }
    while (n) {
        put_byte(g, digits[--n]);
    }
}

/* One conversion (spec is the character after % and the width) from ap. */
static void put_conversion(Guest *g, char spec, unsigned width, va_list *ap)
{
    if (spec == 's') {
        for (const char *s = va_arg(*ap, const char *); *s; s++) {
            put_byte(g, *s);
        }
    } else if (spec == 'c') {
        put_byte(g, (char)va_arg(*ap, int));
    } else if (spec == 'd') {
        int v = va_arg(*ap, int);
        if (v < 0) {
            put_byte(g, '-');
        }
        put_number(g, v < 0 ? 0u - (uint32_t)v : (uint32_t)v, 10, width);
    } else if (spec == 'u' || spec == 'x') {
        put_number(g, va_arg(*ap, unsigned), spec == 'u' ? 10 : 16, width);
    } else {
        put_byte(g, '%');
        put_byte(g, spec);
    }
}

/* printf to the UART: %s %c %d %u %x, with %0Nx / %Nu widths. */
void guest_printf(Guest *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%' || !p[1]) {
            put_byte(g, *p);
            continue;
        }
        unsigned width = 0;
        for (p++; *p >= '0' && *p <= '9'; p++) {
            width = width * 10 + (unsigned)(*p - '0');
        }
        if (!*p) {
            break;
        }
        put_conversion(g, *p, width, &ap);
    }
    va_end(ap);
}
