/*
 * test-teardown.c - the ownership rules of the public headers, run under
 * ASan + LSan: a VMM that tears down exactly as the headers say
 * (transport, device model, backend, PCI host, bus) frees everything once,
 * even with a request in flight and the write cache changed by the guest.
 * A double free, a use after free or a leak fails the test (ASan aborts,
 * LSan fails the exit status).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "block/block-backend.h"
#include "hw/bus.h"
#include "hw/ide.h"
#include "hw/pci.h"
#include "hw/virtio-blk.h"
#include "hw/virtio-mmio.h"
#include "vguest.h"

#define RAM   (4u << 20)
#define BASE  0xd0000000ull
#define IRQ   5

/* What a VMM owns: the same objects tiny-vmm has. */
typedef struct Vmm {
    VdBus *bus;
    VdPciHost *pci;
    VdIdeController *ide;
    VdBlockBackend *ide_blk, *virtio_blk;
    VdVirtioBlk *vblk;
    VdVirtioMmio *mmio;
} Vmm;

/* Build the machine with both devices on null backends. */
static void vmm_build(Vmm *v)
{
    GError *err = NULL;
    v->bus = vd_bus_new(RAM, NULL, &err);
    v->pci = vd_pci_host_new(v->bus, &err);
    v->ide = vd_ide_piix3_new(v->pci, VD_IDE_PIIX3_DEVFN, &err);
    v->ide_blk = vd_blk_open("driver=null,size=1M", NULL, &err);
    v->virtio_blk = vd_blk_open("driver=null,size=1M", NULL, &err);
    assert_non_null(v->ide_blk);
    assert_non_null(v->virtio_blk);
    assert_true(vd_ide_attach(v->ide, 0, v->ide_blk, NULL, NULL, &err));
    v->vblk = vd_virtio_blk_new(v->virtio_blk, NULL, v->bus, &err);
    assert_non_null(v->vblk);
    v->mmio = vd_virtio_mmio_new(v->bus, BASE, VD_VIRTIO_MMIO_SIZE, IRQ, vd_virtio_blk_device(v->vblk), &err);
    assert_non_null(v->mmio);
}

/* The teardown order every public header states. */
static void vmm_teardown(Vmm *v)
{
    vd_virtio_mmio_free(v->mmio);
    uint64_t val = 0;
    assert_false(vd_bus_read(v->bus, VD_SPACE_MMIO, BASE, 4, &val));     /* window gone */
    assert_false(vd_irq_level(v->bus, IRQ));                               /* line low */
    vd_virtio_blk_free(v->vblk);       /* frees the VdVirtioDevice too; the VMM never does */
    vd_ide_free(v->ide);
    vd_blk_close(v->ide_blk);
    vd_blk_close(v->virtio_blk);
    vd_pci_host_free(v->pci);
    vd_bus_free(v->bus);
}

/* Start the virtio-blk driver, turn writeback off and leave one write in flight. */
static void guest_leave_write_in_flight(Vmm *v, VGuest *g)
{
    vg_init(g, v->bus, BASE, IRQ);
    uint64_t f = VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1) | VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_FLUSH) |
                 VD_VIRTIO_BIT(VD_VIRTIO_BLK_F_CONFIG_WCE);
    assert_true(vg_negotiate(g, f));
    assert_true(vg_setup_queue(g, 0, 8));
    vg_driver_ok(g);
    vg_config_write(g, VD_VIRTIO_BLK_CFG_WRITEBACK, 0, 1);
    vd_blk_drain(v->virtio_blk);                                           /* the 1->0 flush */
    assert_false(vd_blk_write_cache(v->virtio_blk));
    uint64_t hdr = vg_alloc(g, 16), data = vg_alloc(g, 4096), status = vg_alloc(g, 1);
    uint8_t *h = vg_ptr(g, hdr);
    h[0] = VD_VIRTIO_BLK_T_OUT;
    VgBuf bufs[] = { { hdr, 16, false }, { data, 4096, false }, { status, 1, true } };
    vg_publish(g, 0, vg_chain(g, 0, bufs, 3));
    vg_kick(g, 0);
    assert_int_equal(vd_blk_in_flight(v->virtio_blk), 1);
}

/* Idle devices: the documented order frees everything exactly once. */
static void test_teardown_idle(void **state)
{
    Vmm v = { 0 };
    vmm_build(&v);
    vmm_teardown(&v);
}

/* A request in flight and a guest-changed write cache: still exactly once, nothing touched after free. */
static void test_teardown_busy(void **state)
{
    Vmm v = { 0 };
    VGuest g;
    vmm_build(&v);
    guest_leave_write_in_flight(&v, &g);
    vmm_teardown(&v);
}

/* Run the teardown cases; LSan checks for leaks at exit. */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_teardown_idle),
        cmocka_unit_test(test_teardown_busy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
