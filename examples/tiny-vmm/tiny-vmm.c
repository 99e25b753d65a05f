/*
 * tiny-vmm.c - the smallest VMM that embeds libvdisk, in the shape of a
 * KVM-based one (docs/embedding.md walks through it):
 *
 *  - it owns one GMainContext, run by its main thread, that everything of
 *    libvdisk lives in;
 *  - it owns a VdBus (and through it guest RAM, which it hands to
 *    KVM_SET_USER_MEMORY_REGION under --kvm) and routes every port-I/O and
 *    MMIO exit to it with vd_bus_read / vd_bus_write; interrupt lines come
 *    back through the bus's IRQ listener (KVM_IRQ_LINE in a VMM with an
 *    interrupt controller);
 *  - it opens two drives and attaches an IDE disk (PIIX3, PCI) and a
 *    virtio-blk disk (virtio-mmio) to its bus, plus a 16550A UART for the
 *    guest's console, and describes them in an FDT in guest RAM;
 *  - it runs the tiny guest (guest-*.c): by default in this process, each
 *    register access being a call to the same exit handlers; with
 *    `--kvm guest.bin`, the same guest code built freestanding, in a KVM VM
 *    (tiny-kvm.c).  Either way the guest finds its devices in the FDT and
 *    prints one line per step on the UART, and the host checks each step
 *    against the backends' counters (host-checks.c).
 *
 * Exit status: 0 if every guest step and every host check passed, 1 if
 * one failed, 2 on bad usage, 77 with --kvm when KVM cannot run here (no
 * /dev/kvm, or the VM or vCPU cannot be created: the message says which).
 *
 * Threading: single-threaded (see tiny-vmm.h).  A VMM with vCPU threads
 * must hand each exit to the main-loop thread (for example with
 * g_main_context_invoke and a wait), because every libvdisk call belongs to
 * the thread that runs the GMainContext.
 */
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "tiny-vmm.h"
#include "guest.h"
#include "guest-hosted.h"

#define TINY_EXIT_NO_KVM 77

/* --- exits: what a KVM VMM does on KVM_EXIT_IO / KVM_EXIT_MMIO / KVM_EXIT_HLT --- */

/* Port read: dispatch to the bus; unclaimed ports read all ones. */
uint64_t tiny_pio_in(TinyVmm *v, uint16_t port, unsigned size)
{
    uint64_t val = 0;
    if (!vd_bus_read(v->bus, VD_SPACE_PIO, port, size, &val)) {
        v->unclaimed++;
    }
    return val;
}

/* Port write: dispatch to the bus. */
void tiny_pio_out(TinyVmm *v, uint16_t port, uint64_t value, unsigned size)
{
    if (!vd_bus_write(v->bus, VD_SPACE_PIO, port, value, size)) {
        v->unclaimed++;
    }
}

/* MMIO read outside RAM: dispatch to the bus. */
uint64_t tiny_mmio_read(TinyVmm *v, uint64_t gpa, unsigned size)
{
    uint64_t val = 0;
    if (!vd_bus_read(v->bus, VD_SPACE_MMIO, gpa, size, &val)) {
        v->unclaimed++;
    }
    return val;
}

/* MMIO write outside RAM: dispatch to the bus. */
void tiny_mmio_write(TinyVmm *v, uint64_t gpa, uint64_t value, unsigned size)
{
    if (!vd_bus_write(v->bus, VD_SPACE_MMIO, gpa, value, size)) {
        v->unclaimed++;
    }
}

/* The HLT timeout fired. */
static gboolean hlt_timeout(gpointer opaque)
{
    TinyVmm *v = opaque;
    v->hlt_timed_out = true;
    return G_SOURCE_REMOVE;
}

/* HLT: run the main loop (backend completions) until a line in mask is high. */
bool tiny_wait_irq(TinyVmm *v, uint64_t mask)
{
    GSource *timeout = g_timeout_source_new_seconds(TINY_HLT_TIMEOUT);
    g_source_set_callback(timeout, hlt_timeout, v, NULL);
    g_source_attach(timeout, v->ctx);
    v->hlt_timed_out = false;
    while (!(v->irq_levels & mask) && !v->hlt_timed_out) {
        g_main_context_iteration(v->ctx, TRUE);
    }
    g_source_destroy(timeout);
    g_source_unref(timeout);
    return !v->hlt_timed_out;
}

/* IRQ listener: a device changed a line (a VMM with an interrupt controller calls KVM_IRQ_LINE here). */
static void irq_changed(void *opaque, unsigned line, bool level)
{
    TinyVmm *v = opaque;
    v->irq_levels = level ? v->irq_levels | (1ull << line) : v->irq_levels & ~(1ull << line);
}

/* --- the in-process guest's CPU: each exit is a direct call --- */

/* GuestExits.pio_in. */
static uint64_t hosted_pio_in(void *vmm, uint16_t port, unsigned size)
{
    return tiny_pio_in(vmm, port, size);
}

/* GuestExits.pio_out. */
static void hosted_pio_out(void *vmm, uint16_t port, uint64_t value, unsigned size)
{
    tiny_pio_out(vmm, port, value, size);
}

/* GuestExits.mmio_read. */
static uint64_t hosted_mmio_read(void *vmm, uint64_t gpa, unsigned size)
{
    return tiny_mmio_read(vmm, gpa, size);
}

/* GuestExits.mmio_write. */
static void hosted_mmio_write(void *vmm, uint64_t gpa, uint64_t value, unsigned size)
{
    tiny_mmio_write(vmm, gpa, value, size);
}

/* GuestExits.hlt: wait for the guest's own line. */
static bool hosted_hlt(void *vmm, unsigned irq)
{
    return tiny_wait_irq(vmm, 1ull << irq);
}

/* GuestExits.pause: run what is pending (completions), as a separate I/O thread would meanwhile. */
static void hosted_pause(void *vmm)
{
    TinyVmm *v = vmm;
    g_main_context_iteration(v->ctx, FALSE);
}

static const GuestExits hosted_exits = {
    .pio_in = hosted_pio_in, .pio_out = hosted_pio_out,
    .mmio_read = hosted_mmio_read, .mmio_write = hosted_mmio_write,
    .hlt = hosted_hlt, .pause = hosted_pause,
};

/* --- setup and teardown --- */

/* A sparse image of TINY_DISK_SIZE bytes at path. */
static bool create_image(const char *path, GError **errp)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0 || ftruncate(fd, TINY_DISK_SIZE) < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "cannot create image %s: %s", path,
                    g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    close(fd);
    return true;
}

/* Create an image and open it as a backend completing in v->ctx. */
static VdBlockBackend *open_drive(TinyVmm *v, const char *path, GError **errp)
{
    if (!create_image(path, errp)) {
        return NULL;
    }
    g_autofree char *opts = g_strdup_printf("file=%s,format=raw,cache=writeback", path);
    return vd_blk_open(opts, v->ctx, errp);
}

/* The device tree the guest reads at GUEST_FDT_GPA: memory, the virtio-mmio slot, and under /isa the IDE and UART. */
static bool build_fdt(TinyVmm *v, GError **errp)
{
    void *fdt = vd_bus_ram(v->bus) + GUEST_FDT_GPA;
    const fdt32_t mem[] = { 0, 0, 0, cpu_to_fdt32(TINY_RAM_SIZE) };
    const fdt32_t vio[] = { 0, cpu_to_fdt32(TINY_VIRTIO_BASE), 0, cpu_to_fdt32(VD_VIRTIO_MMIO_SIZE) };
    const fdt32_t ide[] = { cpu_to_fdt32(1), cpu_to_fdt32(VD_IDE_PRIMARY_CMD), cpu_to_fdt32(8),
                            cpu_to_fdt32(1), cpu_to_fdt32(VD_IDE_PRIMARY_CTL), cpu_to_fdt32(1) };
    const fdt32_t com[] = { cpu_to_fdt32(1), cpu_to_fdt32(VD_SERIAL_COM1_PORT), cpu_to_fdt32(8) };
    int err = fdt_create(fdt, GUEST_FDT_MAX);
    err = err ?: fdt_finish_reservemap(fdt);
    err = err ?: fdt_begin_node(fdt, "");
    err = err ?: fdt_property_u32(fdt, "#address-cells", 2);
    err = err ?: fdt_property_u32(fdt, "#size-cells", 2);
    err = err ?: fdt_property_string(fdt, "compatible", "tiny-vmm");
    err = err ?: fdt_begin_node(fdt, "memory@0");
    err = err ?: fdt_property_string(fdt, "device_type", "memory");
    err = err ?: fdt_property(fdt, "reg", mem, sizeof(mem));
    err = err ?: fdt_end_node(fdt);
    err = err ?: fdt_begin_node(fdt, "virtio_mmio@d0000000");
    err = err ?: fdt_property_string(fdt, "compatible", "virtio,mmio");
    err = err ?: fdt_property(fdt, "reg", vio, sizeof(vio));
    err = err ?: fdt_property_u32(fdt, "interrupts", TINY_VIRTIO_IRQ);
    err = err ?: fdt_end_node(fdt);
    err = err ?: fdt_begin_node(fdt, "isa");
    err = err ?: fdt_property_string(fdt, "device_type", "isa");
    err = err ?: fdt_property_u32(fdt, "#address-cells", 2);
    err = err ?: fdt_property_u32(fdt, "#size-cells", 1);
    err = err ?: fdt_begin_node(fdt, "ide@1f0");
    err = err ?: fdt_property_string(fdt, "compatible", "vdisk,piix3-ide");
    err = err ?: fdt_property(fdt, "reg", ide, sizeof(ide));
    err = err ?: fdt_property_u32(fdt, "interrupts", VD_IDE_PRIMARY_IRQ);
    err = err ?: fdt_end_node(fdt);
    err = err ?: fdt_begin_node(fdt, "serial@3f8");
    err = err ?: fdt_property_string(fdt, "compatible", "ns16550a");
    err = err ?: fdt_property(fdt, "reg", com, sizeof(com));
    err = err ?: fdt_property_u32(fdt, "interrupts", VD_SERIAL_COM1_IRQ);
    err = err ?: fdt_end_node(fdt);
    err = err ?: fdt_end_node(fdt);     /* isa */
    err = err ?: fdt_end_node(fdt);     /* / */
    err = err ?: fdt_finish(fdt);
    if (err) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot build the device tree: %s", fdt_strerror(err));
        return false;
    }
    return true;
}

/* Build the machine: context, drives, bus with RAM, PCI host + IDE, virtio-blk on virtio-mmio, UART, FDT. */
static bool vmm_create(TinyVmm *v, GError **errp)
{
    v->ctx = g_main_context_new();
    g_main_context_push_thread_default(v->ctx);    /* this thread owns it from now on */
    v->dir = g_dir_make_tmp("tiny-vmm-XXXXXX", errp);
    if (!v->dir) {
        return false;
    }
    v->ide_path = g_build_filename(v->dir, "ide.img", NULL);
    v->virtio_path = g_build_filename(v->dir, "virtio.img", NULL);
    if (!(v->ide_blk = open_drive(v, v->ide_path, errp)) || !(v->virtio_blk = open_drive(v, v->virtio_path, errp))) {
        return false;
    }
    if (!(v->bus = vd_bus_new(TINY_RAM_SIZE, v->ctx, errp))) {
        return false;
    }
    vd_bus_set_irq_listener(v->bus, irq_changed, v);
    if (!(v->pci = vd_pci_host_new(v->bus, errp)) ||
        !(v->ide = vd_ide_piix3_new(v->pci, VD_IDE_PIIX3_DEVFN, errp)) ||
        !vd_ide_attach(v->ide, 0, v->ide_blk, NULL, NULL, errp)) {
        return false;
    }
    if (!(v->vblk = vd_virtio_blk_new(v->virtio_blk, NULL, v->bus, errp)) ||
        !(v->mmio = vd_virtio_mmio_new(v->bus, TINY_VIRTIO_BASE, VD_VIRTIO_MMIO_SIZE, TINY_VIRTIO_IRQ,
                                       vd_virtio_blk_device(v->vblk), errp))) {
        return false;
    }
    host_checks_init(v);
    v->uart = vd_serial_new(v->bus, VD_SERIAL_COM1_PORT, VD_SERIAL_COM1_IRQ, host_checks_byte, v, errp);
    return v->uart && build_fdt(v, errp);
}

/* Tear down in the order the headers give: transports and devices, backends, PCI, bus. */
static void vmm_destroy(TinyVmm *v)
{
    vd_serial_free(v->uart);
    vd_virtio_mmio_free(v->mmio);       /* unbinds from the device: before the device */
    vd_virtio_blk_free(v->vblk);        /* frees its VdVirtioDevice too: never free that yourself */
    vd_ide_free(v->ide);
    if (v->ide_blk) {
        vd_blk_close(v->ide_blk);       /* after every device that used it */
    }
    if (v->virtio_blk) {
        vd_blk_close(v->virtio_blk);
    }
    vd_pci_host_free(v->pci);
    vd_bus_free(v->bus);                /* last: unmaps guest RAM */
    host_checks_free(v);
    if (v->dir) {
        g_unlink(v->ide_path);
        g_unlink(v->virtio_path);
        g_rmdir(v->dir);
    }
    g_free(v->ide_path);
    g_free(v->virtio_path);
    g_free(v->dir);
    g_main_context_pop_thread_default(v->ctx);
    g_main_context_unref(v->ctx);
}

/* --- running the guest --- */

/* Copy guest.bin to GUEST_LOAD_GPA in guest RAM. */
bool tiny_load_guest(TinyVmm *v, const char *path, GError **errp)
{
    g_autofree char *image = NULL;
    gsize len;
    if (!g_file_get_contents(path, &image, &len, errp)) {
        return false;
    }
    if (len == 0 || len > GUEST_LOAD_MAX) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: %zu bytes, expected 1 to %u", path, (size_t)len,
                    GUEST_LOAD_MAX);
        return false;
    }
    memcpy(vd_bus_ram(v->bus) + GUEST_LOAD_GPA, image, len);
    return true;
}

/* The guest in this process: its CPU's exits are calls to the exit handlers above. */
static bool run_hosted(TinyVmm *v)
{
    GuestCpu cpu = { .exits = &hosted_exits, .vmm = v, .ram = vd_bus_ram(v->bus),
                     .ram_size = vd_bus_ram_size(v->bus) };
    Guest g = { .cpu = &cpu };
    return guest_main(&g, GUEST_FDT_GPA) == 0;
}

/* guest.bin under KVM; *no_kvm when KVM cannot run here. */
static bool run_kvm(TinyVmm *v, const char *path, bool *no_kvm)
{
    GError *err = NULL;
    int failed = tiny_kvm_run(v, path, no_kvm, &err);
    if (failed < 0) {
        fprintf(stderr, "tiny-vmm: --kvm: %s\n", err->message);
        g_error_free(err);
        return false;
    }
    printf("host: the guest program ended with %d failed step(s)\n", failed);
    return failed == 0;
}

/* The image file holds GUEST_SECTORS sectors of fill at offset 0. */
static bool check_image(const char *name, const char *path, uint8_t fill)
{
    uint8_t buf[GUEST_SECTORS * 512], want[GUEST_SECTORS * 512];
    memset(want, fill, sizeof(want));
    int fd = open(path, O_RDONLY);
    bool ok = fd >= 0 && pread(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) && !memcmp(buf, want, sizeof(buf));
    if (fd >= 0) {
        close(fd);
    }
    printf("host: %s image holds what the guest wrote: %s\n", name, ok ? "ok" : "FAILED");
    return ok;
}

/* The checks after the guest: every step confirmed, both images, no stray accesses. */
static bool check_after(TinyVmm *v)
{
    bool ok = host_checks_passed(v);
    ok = check_image("ide", v->ide_path, GUEST_IDE_FILL) && ok;
    ok = check_image("virtio-blk", v->virtio_path, GUEST_VIRTIO_FILL) && ok;
    if (v->unclaimed) {
        printf("host: %u guest accesses hit no device: FAILED\n", v->unclaimed);
        ok = false;
    }
    return ok;
}

/* Parse the command line, build the VMM, run the guest, check, tear down. */
int main(int argc, char **argv)
{
    g_autofree char *kvm_guest = NULL;
    const GOptionEntry entries[] = {
        { "kvm", 0, 0, G_OPTION_ARG_FILENAME, &kvm_guest,
          "run the freestanding guest program GUEST.BIN in a KVM VM (default: the guest runs in this process)",
          "GUEST.BIN" },
        { NULL },
    };
    g_autoptr(GOptionContext) oc = g_option_context_new("- the libvdisk embedding example (docs/embedding.md)");
    g_option_context_add_main_entries(oc, entries, NULL);
    GError *err = NULL;
    if (!g_option_context_parse(oc, &argc, &argv, &err) || argc > 1) {
        fprintf(stderr, "tiny-vmm: %s\n", err ? err->message : "unexpected argument (see --help)");
        g_clear_error(&err);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    TinyVmm v = { 0 };
    bool no_kvm = false;
    bool created = vmm_create(&v, &err);
    if (!created) {
        fprintf(stderr, "tiny-vmm: %s\n", err->message);
        g_error_free(err);
    }
    bool ran = created && (kvm_guest ? run_kvm(&v, kvm_guest, &no_kvm) : run_hosted(&v));
    bool ok = created && !no_kvm && check_after(&v) && ran;
    vmm_destroy(&v);
    if (no_kvm) {
        return TINY_EXIT_NO_KVM;
    }
    printf("tiny-vmm: %s\n", ok ? "all checks passed" : "FAILED");
    return ok ? 0 : 1;
}
