/*
 * tiny-kvm.c - `tiny-vmm --kvm guest.bin`: the same machine, with the
 * guest program run by a KVM vCPU (Documentation/virt/kvm/api.rst).
 *
 *  - VM: KVM_CREATE_VM; guest RAM is the VdBus's mapping, given to KVM as
 *    memory slot 0 at guest-physical 0 (KVM_SET_USER_MEMORY_REGION), so
 *    the devices' DMA and the guest see the same bytes.  There is no
 *    in-kernel interrupt controller, so HLT exits to us.
 *  - vCPU: 32-bit protected mode with flat segments, no paging, interrupts
 *    off; EIP = GUEST_LOAD_GPA, EBX = the FDT's address (guest-bare.c).
 *  - Exits: KVM_EXIT_IO and KVM_EXIT_MMIO go to tiny_pio_* / tiny_mmio_*,
 *    exactly the handlers the in-process guest calls, except that a write
 *    to GUEST_EXIT_PORT ends the run.  KVM_EXIT_HLT runs the main loop
 *    until a device line is high (the guest then reads its device's status).
 *    After every exit the main loop runs once without blocking, so
 *    completions arrive while the guest polls, as with an I/O thread.
 *
 * Threading: KVM_RUN runs on the main-loop thread, so the exit handlers
 * call libvdisk on the thread that owns it.
 */
#include "tiny-vmm.h"
#include "guest.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define KVM_TSS_GPA     0xfffbd000u     /* three pages below the BIOS, outside RAM (kvmtool's choice) */
#define X86_CR0_PE      1u
#define X86_RFLAGS_RSVD 2u              /* bit 1 always reads 1 */
#define KVM_RUN_SECONDS 60              /* the whole guest run */

/* The VM's descriptors and the vCPU's shared kvm_run page. */
typedef struct Kvm {
    int sys, vm, vcpu;
    struct kvm_run *run;
    size_t run_size;
} Kvm;

/* Set errp from errno for what failed. */
static bool kvm_fail(GError **errp, const char *what)
{
    int e = errno;
    g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(e), "%s: %s", what, g_strerror(e));
    return false;
}

/* Open /dev/kvm, create the VM with RAM in slot 0 and one vCPU; *unavailable when KVM cannot run here. */
static bool kvm_open(Kvm *k, TinyVmm *v, bool *unavailable, GError **errp)
{
    k->sys = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (k->sys < 0) {
        *unavailable = true;
        return kvm_fail(errp, "no /dev/kvm (open)");
    }
    int api = ioctl(k->sys, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        *unavailable = true;
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "KVM API version %d, not %d", api, KVM_API_VERSION);
        return false;
    }
    k->vm = ioctl(k->sys, KVM_CREATE_VM, 0);
    if (k->vm < 0) {
        *unavailable = true;
        return kvm_fail(errp, "KVM_CREATE_VM");
    }
    if (ioctl(k->vm, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0) {
        return kvm_fail(errp, "KVM_SET_TSS_ADDR");
    }
    struct kvm_userspace_memory_region ram = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = vd_bus_ram_size(v->bus),
        .userspace_addr = (uintptr_t)vd_bus_ram(v->bus),
    };
    if (ioctl(k->vm, KVM_SET_USER_MEMORY_REGION, &ram) < 0) {
        return kvm_fail(errp, "KVM_SET_USER_MEMORY_REGION");
    }
    k->vcpu = ioctl(k->vm, KVM_CREATE_VCPU, 0);
    if (k->vcpu < 0) {
        *unavailable = true;
        return kvm_fail(errp, "KVM_CREATE_VCPU");
    }
    int size = ioctl(k->sys, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size < (int)sizeof(struct kvm_run)) {
        return kvm_fail(errp, "KVM_GET_VCPU_MMAP_SIZE");
    }
    k->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, k->vcpu, 0);
    if (k->run == MAP_FAILED) {
        k->run = NULL;
        return kvm_fail(errp, "mmap of the vCPU's kvm_run");
    }
    k->run_size = (size_t)size;
    return true;
}

/* Close whatever kvm_open opened. */
static void kvm_close(Kvm *k)
{
    if (k->run) {
        munmap(k->run, k->run_size);
    }
    if (k->vcpu >= 0) {
        close(k->vcpu);
    }
    if (k->vm >= 0) {
        close(k->vm);
    }
    if (k->sys >= 0) {
        close(k->sys);
    }
}

/* Flat 32-bit protected mode: CR0.PE, code and data segments of base 0 and limit 4 GiB; EIP, EBX. */
static bool vcpu_setup(Kvm *k, GError **errp)
{
    struct kvm_sregs sregs;
    if (ioctl(k->vcpu, KVM_GET_SREGS, &sregs) < 0) {
        return kvm_fail(errp, "KVM_GET_SREGS");
    }
    struct kvm_segment seg = {
        .base = 0, .limit = 0xffffffff, .selector = 1 << 3, .present = 1,
        .type = 11,         /* code: execute/read, accessed */
        .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
    };
    sregs.cr0 |= X86_CR0_PE;
    sregs.cs = seg;
    seg.type = 3;           /* data: read/write, accessed */
    seg.selector = 2 << 3;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg;
    if (ioctl(k->vcpu, KVM_SET_SREGS, &sregs) < 0) {
        return kvm_fail(errp, "KVM_SET_SREGS");
    }
    struct kvm_regs regs = { .rflags = X86_RFLAGS_RSVD, .rip = GUEST_LOAD_GPA, .rbx = GUEST_FDT_GPA };
    if (ioctl(k->vcpu, KVM_SET_REGS, &regs) < 0) {
        return kvm_fail(errp, "KVM_SET_REGS");
    }
    return true;
}

/* One KVM_EXIT_IO (count items of size bytes at data_offset); true with *exit_value when it ends the run. */
static bool exit_io(TinyVmm *v, struct kvm_run *run, int *exit_value)
{
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
        uint64_t val = 0;
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            memcpy(&val, data, run->io.size);   /* x86: little-endian, as the bus wants it */
            if (run->io.port == GUEST_EXIT_PORT) {
                *exit_value = (int)val;
                return true;
            }
            tiny_pio_out(v, run->io.port, val, run->io.size);
        } else {
            val = tiny_pio_in(v, run->io.port, run->io.size);
            memcpy(data, &val, run->io.size);
        }
    }
    return false;
}

/* One KVM_EXIT_MMIO: a load or store of len bytes outside RAM. */
static void exit_mmio(TinyVmm *v, struct kvm_run *run)
{
    uint64_t val = 0;
    if (run->mmio.is_write) {
        memcpy(&val, run->mmio.data, run->mmio.len);
        tiny_mmio_write(v, run->mmio.phys_addr, val, run->mmio.len);
    } else {
        val = tiny_mmio_read(v, run->mmio.phys_addr, run->mmio.len);
        memcpy(run->mmio.data, &val, run->mmio.len);
    }
}

/* Handle one exit; 1: run on, 0: the guest wrote its exit port, -1: errp set. */
static int handle_exit(TinyVmm *v, struct kvm_run *run, int *exit_value, GError **errp)
{
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        return exit_io(v, run, exit_value) ? 0 : 1;
    case KVM_EXIT_MMIO:
        exit_mmio(v, run);
        return 1;
    case KVM_EXIT_HLT:
        if (!tiny_wait_irq(v, ~0ull)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "the guest halted and no device interrupt came within %d s", TINY_HLT_TIMEOUT);
            return -1;
        }
        return 1;
    case KVM_EXIT_FAIL_ENTRY:
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "KVM_EXIT_FAIL_ENTRY (hardware reason 0x%llx)",
                    (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        return -1;
    case KVM_EXIT_INTERNAL_ERROR:
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "KVM_EXIT_INTERNAL_ERROR (suberror %u)",
                    run->internal.suberror);
        return -1;
    case KVM_EXIT_SHUTDOWN:
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "the guest triple-faulted (KVM_EXIT_SHUTDOWN)");
        return -1;
    default:
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "unexpected KVM exit reason %u", run->exit_reason);
        return -1;
    }
}

/* KVM_RUN until the guest writes its exit port; its value, or -1 (errp set). */
static int run_vcpu(TinyVmm *v, Kvm *k, GError **errp)
{
    gint64 deadline = g_get_monotonic_time() + KVM_RUN_SECONDS * G_USEC_PER_SEC;
    int exit_value = -1;
    int more = 1;
    while (more > 0) {
        if (g_get_monotonic_time() > deadline) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "the guest ran %d s without finishing",
                        KVM_RUN_SECONDS);
            return -1;
        }
        if (ioctl(k->vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            kvm_fail(errp, "KVM_RUN");
            return -1;
        }
        more = handle_exit(v, k->run, &exit_value, errp);
        g_main_context_iteration(v->ctx, FALSE);    /* completions, as an I/O thread would deliver them */
    }
    return more < 0 ? -1 : exit_value;
}

/* Load guest.bin, build the VM, run it to its exit port; its exit value or -1 (errp; *unavailable). */
int tiny_kvm_run(TinyVmm *v, const char *path, bool *unavailable, GError **errp)
{
    Kvm k = { .sys = -1, .vm = -1, .vcpu = -1 };
    *unavailable = false;
    int result = -1;
    if (kvm_open(&k, v, unavailable, errp) && tiny_load_guest(v, path, errp) && vcpu_setup(&k, errp)) {
        result = run_vcpu(v, &k, errp);
    }
    kvm_close(&k);
    return result;
}
