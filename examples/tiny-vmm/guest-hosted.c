/*
 * guest-hosted.c - guest-cpu.h for a guest that runs in the VMM's process:
 * every access is a GuestExits call (see guest-hosted.h).
 */
#include "guest-hosted.h"

/* IN: a port-I/O exit. */
uint32_t gcpu_in(GuestCpu *c, uint16_t port, unsigned size)
{
    return (uint32_t)c->exits->pio_in(c->vmm, port, size);
}

/* OUT: a port-I/O exit. */
void gcpu_out(GuestCpu *c, uint16_t port, uint32_t value, unsigned size)
{
    c->exits->pio_out(c->vmm, port, value, size);
}

/* A load outside RAM: an MMIO exit. */
uint32_t gcpu_mmio_read(GuestCpu *c, uint64_t gpa, unsigned size)
{
    return (uint32_t)c->exits->mmio_read(c->vmm, gpa, size);
}

/* A store outside RAM: an MMIO exit. */
void gcpu_mmio_write(GuestCpu *c, uint64_t gpa, uint32_t value, unsigned size)
{
    c->exits->mmio_write(c->vmm, gpa, value, size);
}

/* Guest RAM as the guest sees it; gpa must be inside it. */
uint8_t *gcpu_ram(GuestCpu *c, uint64_t gpa)
{
    return c->ram + gpa;
}

/* HLT until line irq is high: the VMM runs its loop meanwhile. */
bool gcpu_wait_irq(GuestCpu *c, unsigned irq)
{
    return c->exits->hlt(c->vmm, irq);
}

/* PAUSE: the VMM runs what is pending. */
void gcpu_pause(GuestCpu *c)
{
    c->exits->pause(c->vmm);
}
