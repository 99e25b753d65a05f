/*
 * tiny-emu.c - tiny_kvm_run() with the Unicorn CPU emulator instead of KVM,
 * so that guest.bin itself (its _start, its in/out and MMIO instructions,
 * its HLT, guest.ld's layout, the EBX boot protocol) runs where /dev/kvm
 * does not.  test-install.sh links it with tiny-vmm's other objects in
 * place of tiny-kvm.o; everything but the KVM ioctls is then the code that
 * `tiny-vmm --kvm` runs.
 *
 * The emulated CPU starts as tiny-kvm.c's vCPU does: 32-bit protected
 * mode with flat segments (Unicorn's UC_MODE_32), EIP = GUEST_LOAD_GPA,
 * EBX = the FDT.  Guest RAM is the VdBus's mapping; the virtio-mmio window
 * and the I/O ports go to the same tiny_mmio_* / tiny_pio_* handlers as
 * KVM_EXIT_MMIO / KVM_EXIT_IO, and the main loop runs once after each.
 * Unicorn returns from uc_emu_start at a HLT, which is handled as tiny-kvm.c
 * handles KVM_EXIT_HLT.
 *
 * Threading: the main-loop thread; the hooks run inside uc_emu_start on it.
 */
#include "tiny-vmm.h"
#include "guest.h"

#include <stdio.h>
#include <unicorn/unicorn.h>

#define EMU_RUN_SECONDS 60
#define EMU_MMIO_PAGE   0x1000u
#define X86_HLT         0xf4

/* The run's state, shared with the hooks. */
typedef struct Emu {
    TinyVmm *v;
    uc_engine *uc;
    bool exited;            /* the guest wrote GUEST_EXIT_PORT */
    int exit_value;
    unsigned exits, hlts;   /* port/MMIO accesses and HLTs, as KVM would have counted them */
} Emu;

/* IN: a port-I/O exit. */
static uint32_t hook_in(uc_engine *uc, uint32_t port, int size, void *opaque)
{
    Emu *e = opaque;
    e->exits++;
    uint32_t val = (uint32_t)tiny_pio_in(e->v, (uint16_t)port, (unsigned)size);
    g_main_context_iteration(e->v->ctx, FALSE);
    return val;
}

/* OUT: a port-I/O exit, or the end of the run. */
static void hook_out(uc_engine *uc, uint32_t port, int size, uint32_t value, void *opaque)
{
    Emu *e = opaque;
    e->exits++;
    if (port == GUEST_EXIT_PORT) {
        e->exited = true;
        e->exit_value = (int)(value & 0xff);
        uc_emu_stop(uc);
        return;
    }
    tiny_pio_out(e->v, (uint16_t)port, value, (unsigned)size);
    g_main_context_iteration(e->v->ctx, FALSE);
}

/* A load from the virtio-mmio page. */
static uint64_t hook_mmio_read(uc_engine *uc, uint64_t offset, unsigned size, void *opaque)
{
    Emu *e = opaque;
    e->exits++;
    uint64_t val = tiny_mmio_read(e->v, TINY_VIRTIO_BASE + offset, size);
    g_main_context_iteration(e->v->ctx, FALSE);
    return val;
}

/* A store to the virtio-mmio page. */
static void hook_mmio_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *opaque)
{
    Emu *e = opaque;
    e->exits++;
    tiny_mmio_write(e->v, TINY_VIRTIO_BASE + offset, value, size);
    g_main_context_iteration(e->v->ctx, FALSE);
}

/* Set errp from a Unicorn error. */
static bool emu_fail(GError **errp, const char *what, uc_err err)
{
    g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", what, uc_strerror(err));
    return false;
}

/* The emulated machine: RAM, the MMIO page, the I/O hooks, the boot registers. */
static bool emu_setup(Emu *e, GError **errp)
{
    uc_hook h_in, h_out;
    uint32_t eip = GUEST_LOAD_GPA, ebx = GUEST_FDT_GPA;
    uc_err err = uc_open(UC_ARCH_X86, UC_MODE_32, &e->uc);
    if (err) {
        e->uc = NULL;
        return emu_fail(errp, "uc_open", err);
    }
    err = uc_mem_map_ptr(e->uc, 0, vd_bus_ram_size(e->v->bus), UC_PROT_ALL, vd_bus_ram(e->v->bus));
    err = err ?: uc_mmio_map(e->uc, TINY_VIRTIO_BASE, EMU_MMIO_PAGE, hook_mmio_read, e, hook_mmio_write, e);
    err = err ?: uc_hook_add(e->uc, &h_in, UC_HOOK_INSN, (void *)hook_in, e, 1, 0, UC_X86_INS_IN);
    err = err ?: uc_hook_add(e->uc, &h_out, UC_HOOK_INSN, (void *)hook_out, e, 1, 0, UC_X86_INS_OUT);
    err = err ?: uc_reg_write(e->uc, UC_X86_REG_EIP, &eip);
    err = err ?: uc_reg_write(e->uc, UC_X86_REG_EBX, &ebx);
    return err ? emu_fail(errp, "setting up the emulated CPU", err) : true;
}

/* Run from EIP until the exit port; at each HLT wait for a device line as on KVM_EXIT_HLT. */
static int emu_run(Emu *e, GError **errp)
{
    gint64 deadline = g_get_monotonic_time() + EMU_RUN_SECONDS * G_USEC_PER_SEC;
    while (!e->exited) {
        uint32_t eip;
        uc_reg_read(e->uc, UC_X86_REG_EIP, &eip);
        uc_err err = uc_emu_start(e->uc, eip, 0, 0, 0);
        if (err) {
            uc_reg_read(e->uc, UC_X86_REG_EIP, &eip);
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "the guest stopped at 0x%x: %s", eip, uc_strerror(err));
            return -1;
        }
        uc_reg_read(e->uc, UC_X86_REG_EIP, &eip);
        const uint8_t *ram = vd_bus_ram(e->v->bus);
        if (e->exited) {
            break;
        }
        if (eip == 0 || eip > vd_bus_ram_size(e->v->bus) || ram[eip - 1] != X86_HLT) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "the guest stopped at 0x%x, not after a HLT", eip);
            return -1;
        }
        e->hlts++;
        if (!tiny_wait_irq(e->v, ~0ull) || g_get_monotonic_time() > deadline) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "the guest halted at 0x%x and no interrupt came",
                        eip);
            return -1;
        }
    }
    return e->exit_value;
}

/* tiny-vmm.h's tiny_kvm_run, emulated: load guest.bin and run it to its exit port. */
int tiny_kvm_run(TinyVmm *v, const char *path, bool *unavailable, GError **errp)
{
    Emu e = { .v = v };
    *unavailable = false;
    printf("host: running guest.bin under the Unicorn emulator in place of KVM\n");
    int result = tiny_load_guest(v, path, errp) && emu_setup(&e, errp) ? emu_run(&e, errp) : -1;
    if (e.uc) {
        uc_close(e.uc);
    }
    printf("host: the emulated guest made %u port/MMIO accesses and %u HLTs\n", e.exits, e.hlts);
    return result;
}
