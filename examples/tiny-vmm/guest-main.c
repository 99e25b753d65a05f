/*
 * guest-main.c - the tiny guest's program: find the UART, the IDE channel
 * and the virtio-mmio disk in the FDT (and the IDE bus master in PCI
 * configuration space), then run the steps in order and say how many passed.
 */
#include "guest.h"

/* The steps, in the order the VMM expects their lines (tiny-vmm.c's host checks). */
static bool (*const steps[])(Guest *g) = {
    guest_ide_cache_off, guest_ide_write_dma, guest_ide_cache_on,
    guest_virtio_init, guest_virtio_write, guest_virtio_flush,
};
#define N_STEPS (sizeof(steps) / sizeof(steps[0]))

/* Print where a device was found. */
static void show(Guest *g, const char *what, const GuestDev *d)
{
    if (!d->found) {
        guest_printf(g, "guest: found no %s in the FDT\n", what);
        return;
    }
    guest_printf(g, "guest: found %s at %s 0x%x", what, d->pio ? "port" : "address", (unsigned)d->base[0]);
    if (d->nwin > 1) {
        guest_printf(g, " and 0x%x", (unsigned)d->base[1]);
    }
    guest_printf(g, ", irq %u\n", d->irq);
}

/* Discovery, then every step; the number of failures (every step runs, so each gets its line). */
unsigned guest_main(Guest *g, uint32_t fdt_gpa)
{
    const uint8_t *fdt = gcpu_ram(g->cpu, fdt_gpa);
    guest_fdt_find(fdt, "ns16550a", &g->uart);                 /* first: printing needs it */
    guest_fdt_find(fdt, "vdisk,piix3-ide", &g->ide);
    guest_fdt_find(fdt, "virtio,mmio", &g->virtio);
    g->bmdma = guest_ide_bmdma_base(g);
    show(g, "a 16550A UART", &g->uart);
    show(g, "an IDE channel", &g->ide);
    show(g, "a virtio-mmio device", &g->virtio);
    guest_printf(g, "guest: found the PIIX3 IDE function, bus master at port 0x%x\n", g->bmdma);
    bool devices = g->ide.found && g->ide.pio && g->ide.nwin == 2 && g->virtio.found && !g->virtio.pio && g->bmdma;
    unsigned ok = 0;
    for (unsigned i = 0; devices && i < N_STEPS; i++) {
        ok += steps[i](g);
    }
    guest_printf(g, "guest: done: %u of %u steps ok\n", ok, (unsigned)N_STEPS);
    return (unsigned)N_STEPS - ok;
}
