/*
 * tiny-vmm.c - the smallest VMM that embeds libvdisk, in the shape of a
 * KVM-based one (docs/embedding.md walks through it):
 *
 *  - it owns one GMainContext, run by its main thread, that everything of
 *    libvdisk lives in;
 *  - it owns a VdBus (and through it guest RAM, which a KVM VMM would hand
 *    to KVM_SET_USER_MEMORY_REGION) and routes every port-I/O and MMIO exit
 *    to it with vd_bus_read / vd_bus_write; interrupt lines come back
 *    through the bus's IRQ listener (KVM_IRQ_LINE);
 *  - it opens two drives and attaches an IDE disk (PIIX3, PCI) and a
 *    virtio-blk disk (virtio-mmio) to its bus;
 *  - instead of KVM_RUN it runs a tiny guest (guest.c) whose register
 *    accesses are these same exits, step by step, and after each step
 *    checks on the host side, through the backend's counters
 *    (vd_blk_get_stats), that what the guest was promised really happened.
 *
 * Exit status: 0 if every guest step and every host check passed, 1 if
 * one failed, 2 on bad usage.
 *
 * Threading: single-threaded.  A real VMM runs vCPUs on their own threads;
 * they must hand each exit to the main-loop thread (for example with
 * g_main_context_invoke and a wait), because every libvdisk call belongs to
 * the thread that runs the GMainContext.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "block/block-backend.h"
#include "hw/bus.h"
#include "hw/ide.h"
#include "hw/pci.h"
#include "hw/virtio-blk.h"
#include "hw/virtio-mmio.h"

#include "guest.h"

/* The board: guest RAM at 0, the PIIX3 IDE at its PC addresses, one virtio-mmio slot. */
#define TINY_RAM_SIZE    (2u << 20)
#define TINY_VIRTIO_BASE 0xd0000000ull
#define TINY_VIRTIO_IRQ  5
#define TINY_DISK_SIZE   (1u << 20)
#define TINY_HLT_TIMEOUT 10     /* seconds a HLT may wait for its interrupt */

/* Everything the VMM owns. */
typedef struct TinyVmm {
    GMainContext *ctx;          /* the one context; this thread runs it */
    char *dir;                  /* temporary directory of the two images */
    char *ide_path, *virtio_path;
    VdBlockBackend *ide_blk, *virtio_blk;
    VdBus *bus;
    VdPciHost *pci;
    VdIdeController *ide;
    VdVirtioBlk *vblk;
    VdVirtioMmio *mmio;
    uint64_t irq_levels;        /* bit n: line n is high (what KVM_IRQ_LINE would be told) */
    unsigned unclaimed;         /* exits no device claimed */
    bool hlt_timed_out;
} TinyVmm;

/* --- exits: what a KVM VMM does on KVM_EXIT_IO / KVM_EXIT_MMIO / KVM_EXIT_HLT --- */

/* Port read: dispatch to the bus; unclaimed ports read all ones. */
static uint64_t exit_pio_in(void *opaque, uint16_t port, unsigned size)
{
    TinyVmm *v = opaque;
    uint64_t val = 0;
    if (!vd_bus_read(v->bus, VD_SPACE_PIO, port, size, &val)) {
        v->unclaimed++;
    }
    return val;
}

/* Port write: dispatch to the bus. */
static void exit_pio_out(void *opaque, uint16_t port, uint64_t value, unsigned size)
{
    TinyVmm *v = opaque;
    if (!vd_bus_write(v->bus, VD_SPACE_PIO, port, value, size)) {
        v->unclaimed++;
    }
}

/* MMIO read outside RAM: dispatch to the bus. */
static uint64_t exit_mmio_read(void *opaque, uint64_t gpa, unsigned size)
{
    TinyVmm *v = opaque;
    uint64_t val = 0;
    if (!vd_bus_read(v->bus, VD_SPACE_MMIO, gpa, size, &val)) {
        v->unclaimed++;
    }
    return val;
}

/* MMIO write outside RAM: dispatch to the bus. */
static void exit_mmio_write(void *opaque, uint64_t gpa, uint64_t value, unsigned size)
{
    TinyVmm *v = opaque;
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

/* HLT: run the main loop (backend completions) until the guest's interrupt line is high. */
static bool exit_hlt(void *opaque, unsigned irq)
{
    TinyVmm *v = opaque;
    GSource *timeout = g_timeout_source_new_seconds(TINY_HLT_TIMEOUT);
    g_source_set_callback(timeout, hlt_timeout, v, NULL);
    g_source_attach(timeout, v->ctx);
    v->hlt_timed_out = false;
    while (!(v->irq_levels & (1ull << irq)) && !v->hlt_timed_out) {
        g_main_context_iteration(v->ctx, TRUE);
    }
    g_source_destroy(timeout);
    g_source_unref(timeout);
    return !v->hlt_timed_out;
}

/* PAUSE in a guest polling loop: let pending host work (completions) run. */
static void exit_pause(void *opaque)
{
    TinyVmm *v = opaque;
    g_main_context_iteration(v->ctx, FALSE);
}

static const GuestExits tiny_exits = {
    .pio_in = exit_pio_in, .pio_out = exit_pio_out,
    .mmio_read = exit_mmio_read, .mmio_write = exit_mmio_write,
    .hlt = exit_hlt, .pause = exit_pause,
};

/* IRQ listener: a device changed a line (a KVM VMM calls KVM_IRQ_LINE here). */
static void irq_changed(void *opaque, unsigned line, bool level)
{
    TinyVmm *v = opaque;
    v->irq_levels = level ? v->irq_levels | (1ull << line) : v->irq_levels & ~(1ull << line);
}

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

/* Build the machine: context, drives, bus with RAM, PCI host + IDE, virtio-blk on virtio-mmio. */
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
    if (!(v->vblk = vd_virtio_blk_new(v->virtio_blk, NULL, v->bus, errp))) {
        return false;
    }
    v->mmio = vd_virtio_mmio_new(v->bus, TINY_VIRTIO_BASE, VD_VIRTIO_MMIO_SIZE, TINY_VIRTIO_IRQ,
                                 vd_virtio_blk_device(v->vblk), errp);
    return v->mmio != NULL;
}

/* Tear down in the order the headers give: transports and devices, backends, PCI, bus. */
static void vmm_destroy(TinyVmm *v)
{
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

/* --- host-side checks, through the backend's counters --- */

/* Host operations that made data durable. */
static uint64_t durable_ops(const VdBlockStats *s)
{
    return s->host_fdatasync + s->host_dsync_writes + s->host_rwf_dsync_writes;
}

/* Print one host check and return its verdict. */
static bool report(bool ok, const char *what, const VdBlockStats *b, const VdBlockStats *a)
{
    printf("host: %s (host writes +%" G_GUINT64_FORMAT ", pwritev2(RWF_DSYNC) +%" G_GUINT64_FORMAT
           ", O_DSYNC writes +%" G_GUINT64_FORMAT ", fdatasync +%" G_GUINT64_FORMAT "): %s\n",
           what, a->host_writes - b->host_writes, a->host_rwf_dsync_writes - b->host_rwf_dsync_writes,
           a->host_dsync_writes - b->host_dsync_writes, a->host_fdatasync - b->host_fdatasync,
           ok ? "ok" : "FAILED");
    return ok;
}

/* After SET FEATURES 82h: the backend's write cache is off. */
static bool check_cache_off(VdBlockBackend *blk, const VdBlockStats *b, const VdBlockStats *a)
{
    return report(!vd_blk_write_cache(blk) && a->wce_toggles > b->wce_toggles,
                  "ide backend write cache is off", b, a);
}

/* After SET FEATURES 02h / virtio init: the backend's write cache is on. */
static bool check_cache_on(VdBlockBackend *blk, const VdBlockStats *b, const VdBlockStats *a)
{
    return report(vd_blk_write_cache(blk), "backend write cache is on", b, a);
}

/* A write made while the write cache was off reached the host as a durable write. */
static bool check_durable_write(VdBlockBackend *blk, const VdBlockStats *b, const VdBlockStats *a)
{
    return report(a->writes == b->writes + 1 && durable_ops(a) > durable_ops(b),
                  "write with the write cache off was durable on the host", b, a);
}

/* A write made with the write cache on reached the host, and nothing made it durable yet. */
static bool check_cached_write(VdBlockBackend *blk, const VdBlockStats *b, const VdBlockStats *a)
{
    return report(a->writes == b->writes + 1 && a->host_writes > b->host_writes && durable_ops(a) == durable_ops(b),
                  "write with the write cache on was a plain host write, not yet durable", b, a);
}

/* The guest's FLUSH reached fdatasync. */
static bool check_flush(VdBlockBackend *blk, const VdBlockStats *b, const VdBlockStats *a)
{
    return report(a->flushes == b->flushes + 1 && a->host_fdatasync == b->host_fdatasync + 1,
                  "FLUSH reached fdatasync", b, a);
}

/* One guest step and the host check that follows it, on one backend. */
typedef struct Step {
    bool (*guest)(Guest *g);
    bool ide;                   /* which backend the check looks at: IDE's or virtio-blk's */
    bool (*check)(VdBlockBackend *blk, const VdBlockStats *before, const VdBlockStats *after);
} Step;

static const Step steps[] = {
    { guest_ide_cache_off, true, check_cache_off },
    { guest_ide_write_dma, true, check_durable_write },
    { guest_ide_cache_on, true, check_cache_on },
    { guest_virtio_init, false, check_cache_on },
    { guest_virtio_write, false, check_cached_write },
    { guest_virtio_flush, false, check_flush },
};

/* Run every step; a failed guest step or host check ends the run. */
static bool run_guest(TinyVmm *v)
{
    Guest g = {
        .exits = &tiny_exits, .vmm = v, .ram = vd_bus_ram(v->bus), .ram_size = vd_bus_ram_size(v->bus),
        .board = { .ide_cmd = VD_IDE_PRIMARY_CMD, .ide_ctl = VD_IDE_PRIMARY_CTL, .ide_bmdma = VD_IDE_BMDMA_BASE,
                   .ide_irq = VD_IDE_PRIMARY_IRQ, .virtio_base = TINY_VIRTIO_BASE, .virtio_irq = TINY_VIRTIO_IRQ },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
        VdBlockBackend *blk = steps[i].ide ? v->ide_blk : v->virtio_blk;
        VdBlockStats before, after;
        vd_blk_get_stats(blk, &before);
        bool ok = steps[i].guest(&g);
        vd_blk_get_stats(blk, &after);
        if (!ok || !steps[i].check(blk, &before, &after)) {
            return false;
        }
    }
    return true;
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

/* Build the VMM, run the guest, check, tear down. */
int main(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "usage: tiny-vmm (no arguments; see docs/embedding.md)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    TinyVmm v = { 0 };
    GError *err = NULL;
    bool ok = vmm_create(&v, &err);
    if (!ok) {
        fprintf(stderr, "tiny-vmm: %s\n", err->message);
        g_error_free(err);
    }
    ok = ok && run_guest(&v);
    ok = ok && check_image("ide", v.ide_path, GUEST_IDE_FILL) && check_image("virtio-blk", v.virtio_path,
                                                                              GUEST_VIRTIO_FILL);
    if (ok && v.unclaimed) {
        printf("host: %u guest accesses hit no device: FAILED\n", v.unclaimed);
        ok = false;
    }
    vmm_destroy(&v);
    printf("tiny-vmm: %s\n", ok ? "all checks passed" : "FAILED");
    return ok ? 0 : 1;
}
