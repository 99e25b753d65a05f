/* serial.c - a 16550A UART with an instantaneous transmitter. */
#include "hw/serial.h"

enum {
    REG_DATA, REG_IER, REG_IIR_FCR, REG_LCR, REG_MCR, REG_LSR, REG_MSR, REG_SCR,
};

#define IER_RDA   0x01
#define IER_THRE  0x02
#define IER_RLS   0x04
#define IER_MS    0x08

#define IIR_NONE    0x01
#define IIR_MS      0x00
#define IIR_THRE    0x02
#define IIR_RDA     0x04
#define IIR_RLS     0x06
#define IIR_TIMEOUT 0x0c
#define IIR_FIFO    0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB  0x80

#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08
#define MCR_LOOP  0x10

#define LSR_DR    0x01
#define LSR_OE    0x02
#define LSR_ERRORS 0x1e /* OE, PE, FE, BI */
#define LSR_THRE  0x20
#define LSR_TEMT  0x40

#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80

struct VdSerial {
    VdBus *bus;
    VdRegion *region;
    unsigned irq;
    VdSerialOutputFunc *out;
    void *opaque;
    uint8_t rx[VD_SERIAL_FIFO];
    unsigned rx_head, rx_count;
    uint8_t ier, fcr, lcr, mcr, lsr_errors, msr, scr, dll, dlm;
    bool thr_interrupt;          /* THR-empty interrupt pending */
};

/* Receive trigger level selected by FCR bits 7:6. */
static unsigned rx_trigger(const VdSerial *s)
{
    static const unsigned levels[4] = { 1, 4, 8, 14 };
    return levels[s->fcr >> 6];
}

/* Current interrupt identification, highest priority first. */
static uint8_t compute_iir(const VdSerial *s)
{
    uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
    if ((s->ier & IER_RLS) && s->lsr_errors) {
        return fifo | IIR_RLS;
    }
    if ((s->ier & IER_RDA) && s->rx_count) {
        bool below = (s->fcr & FCR_ENABLE) && s->rx_count < rx_trigger(s);
        /* The line is infinitely fast, so the character timeout has always elapsed. */
        return fifo | (below ? IIR_TIMEOUT : IIR_RDA);
    }
    if ((s->ier & IER_THRE) && s->thr_interrupt) {
        return fifo | IIR_THRE;
    }
    if ((s->ier & IER_MS) && (s->msr & 0x0f)) {
        return fifo | IIR_MS;
    }
    return fifo | IIR_NONE;
}

/* Drive the IRQ line from the pending interrupts, gated by OUT2. */
static void update_irq(VdSerial *s)
{
    bool level = !(compute_iir(s) & IIR_NONE) && (s->mcr & MCR_OUT2);
    vd_irq_set(s->bus, s->irq, level);
}

/* Put a byte into the receiver; false on overrun. */
static bool rx_push(VdSerial *s, uint8_t byte)
{
    unsigned cap = (s->fcr & FCR_ENABLE) ? VD_SERIAL_FIFO : 1;
    if (s->rx_count >= cap) {
        s->lsr_errors |= LSR_OE;
        if (cap == 1) {
            s->rx[s->rx_head] = byte; /* 16450 mode: the new byte overwrites RBR */
        }
        return false;
    }
    s->rx[(s->rx_head + s->rx_count) % VD_SERIAL_FIFO] = byte;
    s->rx_count++;
    return true;
}

/* Take the oldest received byte (0 if none). */
static uint8_t rx_pop(VdSerial *s)
{
    if (!s->rx_count) {
        return 0;
    }
    uint8_t b = s->rx[s->rx_head];
    s->rx_head = (s->rx_head + 1) % VD_SERIAL_FIFO;
    s->rx_count--;
    return b;
}

/* Modem status inputs: loopback mirrors MCR, otherwise a connected, ready line. */
static void update_msr(VdSerial *s)
{
    uint8_t lines = MSR_CTS | MSR_DSR | MSR_DCD;
    if (s->mcr & MCR_LOOP) {
        lines = ((s->mcr & MCR_RTS) ? MSR_CTS : 0) | ((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
                ((s->mcr & MCR_OUT1) ? MSR_RI : 0) | ((s->mcr & MCR_OUT2) ? MSR_DCD : 0);
    }
    uint8_t old = s->msr & 0xf0, changed = old ^ lines;
    uint8_t delta = ((changed & MSR_CTS) ? 0x01 : 0) | ((changed & MSR_DSR) ? 0x02 : 0) |
                    ((old & MSR_RI) && !(lines & MSR_RI) ? 0x04 : 0) | ((changed & MSR_DCD) ? 0x08 : 0);
    s->msr = lines | (s->msr & 0x0f) | delta;
}

/* Transmit one byte: to the sink, or back into the receiver in loopback. */
static void transmit(VdSerial *s, uint8_t byte)
{
    if (s->mcr & MCR_LOOP) {
        rx_push(s, byte);
    } else if (s->out) {
        s->out(s->opaque, byte);
    }
    s->thr_interrupt = true; /* the transmitter took it: THR is empty again */
}

/* Register read. */
static uint64_t serial_read(void *opaque, uint64_t addr, unsigned size)
{
    VdSerial *s = opaque;
    uint8_t v = 0;
    switch (addr) {
    case REG_DATA:
        v = (s->lcr & LCR_DLAB) ? s->dll : rx_pop(s);
        break;
    case REG_IER:
        v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
        break;
    case REG_IIR_FCR:
        v = compute_iir(s);
        if ((v & 0x0f) == IIR_THRE) {
            s->thr_interrupt = false; /* reading IIR acknowledges THR empty */
        }
        break;
    case REG_LCR:
        v = s->lcr;
        break;
    case REG_MCR:
        v = s->mcr;
        break;
    case REG_LSR:
        v = (s->rx_count ? LSR_DR : 0) | s->lsr_errors | LSR_THRE | LSR_TEMT;
        s->lsr_errors = 0;
        break;
    case REG_MSR:
        v = s->msr;
        s->msr &= 0xf0;
        break;
    case REG_SCR:
        v = s->scr;
        break;
    }
    update_irq(s);
    return v;
}

/* Register write. */
static void serial_write(void *opaque, uint64_t addr, uint64_t value, unsigned size)
{
    VdSerial *s = opaque;
    uint8_t v = value;
    switch (addr) {
    case REG_DATA:
        if (s->lcr & LCR_DLAB) {
            s->dll = v;
        } else {
            transmit(s, v);
        }
        break;
    case REG_IER:
        if (s->lcr & LCR_DLAB) {
            s->dlm = v;
        } else {
            if ((v & IER_THRE) && !(s->ier & IER_THRE)) {
                s->thr_interrupt = true; /* enabling ETBEI with THR empty interrupts at once */
            }
            s->ier = v & 0x0f;
        }
        break;
    case REG_IIR_FCR:
        if ((v ^ s->fcr) & FCR_ENABLE || (v & FCR_CLEAR_RX)) {
            s->rx_head = s->rx_count = 0;
        }
        s->fcr = v & (FCR_ENABLE | 0xc0);
        if (!(s->fcr & FCR_ENABLE)) {
            s->fcr = 0;
        }
        break;
    case REG_LCR:
        s->lcr = v;
        break;
    case REG_MCR:
        s->mcr = v & 0x1f;
        update_msr(s);
        break;
    default:
        if (addr == REG_SCR) {
            s->scr = v;
        }
        break; /* LSR and MSR writes are factory-test only: ignored */
    }
    update_irq(s);
}

static const VdIoOps serial_ops = { .read = serial_read, .write = serial_write };

/* Create the UART and claim its eight ports. */
VdSerial *vd_serial_new(VdBus *bus, uint16_t base, unsigned irq, VdSerialOutputFunc *out,
                        void *opaque, GError **errp)
{
    if (irq >= VD_IRQ_LINES) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "serial: IRQ %u out of range", irq);
        return NULL;
    }
    VdSerial *s = g_new0(VdSerial, 1);
    s->bus = bus;
    s->irq = irq;
    s->out = out;
    s->opaque = opaque;
    s->lcr = 0x03; /* 8N1 */
    s->dll = 0x0c; /* 9600 baud */
    update_msr(s);
    s->msr &= 0xf0; /* no deltas at power-on */
    s->region = vd_bus_map(bus, VD_SPACE_PIO, base, 8, &serial_ops, s, "serial", errp);
    if (!s->region) {
        g_free(s);
        return NULL;
    }
    return s;
}

void vd_serial_free(VdSerial *s)
{
    if (!s) {
        return;
    }
    vd_bus_unmap(s->bus, s->region);
    vd_irq_set(s->bus, s->irq, false);
    g_free(s);
}

bool vd_serial_receive(VdSerial *s, uint8_t byte)
{
    bool ok = rx_push(s, byte);
    update_irq(s);
    return ok;
}
