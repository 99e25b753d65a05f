/*
 * serial.h - a 16550A UART on the port-I/O bus (the PC's COM1 at 0x3f8, IRQ 4).
 *
 * Ownership: the VMM owns the VdSerial (vd_serial_new / vd_serial_free,
 * before vd_bus_free); the output sink and its opaque are the VMM's and
 * must outlive the UART.
 *
 * Guarantees:
 *  - Registers behave as the 16550A data sheet says for a UART whose
 *    transmitter is infinitely fast: a byte written to THR is handed to the
 *    output sink at once, so LSR THRE and TEMT are always set afterwards.
 *  - Interrupt identification follows the 16550A priorities: receiver line
 *    status (IIR 6), received data (IIR 4), THR empty (IIR 2), modem status
 *    (IIR 0); IIR bit 0 is 1 when nothing is pending, bits 7:6 are set while
 *    the FIFOs are enabled.
 *  - The IRQ line is driven only while MCR OUT2 is set, as on a PC.
 *  - Loopback (MCR bit 4) routes THR into the receiver and MCR bits into MSR.
 *  - Any register access, with any value, is safe.
 *
 * Threading: the thread of the bus's GMainContext; the output sink is called
 * on it, from inside the guest's THR write.
 */
#ifndef VD_HW_SERIAL_H
#define VD_HW_SERIAL_H

#include "hw/bus.h"

#define VD_SERIAL_COM1_PORT 0x3f8
#define VD_SERIAL_COM1_IRQ  4
#define VD_SERIAL_FIFO      16

typedef struct VdSerial VdSerial;

/* Where transmitted bytes go (never stdout/stderr unless the caller says so). */
typedef void VdSerialOutputFunc(void *opaque, uint8_t byte);

/* Map the UART's 8 ports at base; out may be NULL to discard output. */
VdSerial *vd_serial_new(VdBus *bus, uint16_t base, unsigned irq, VdSerialOutputFunc *out,
                        void *opaque, GError **errp);
void vd_serial_free(VdSerial *s);
/* Host-to-guest byte; false (and LSR OE set) if the receive FIFO is full. */
bool vd_serial_receive(VdSerial *s, uint8_t byte);

#endif
