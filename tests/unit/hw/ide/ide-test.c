/* ide-test.c - the in-process rig shared by the IDE unit tests (see ide-test.h). */
#include "ide-test.h"
#include "util/bswap.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

/* IRQ listener: count rising edges and snapshot the chosen backend's counters. */
static void irq_listener(void *opaque, unsigned line, bool level)
{
    Rig *r = opaque;
    if (level) {
        r->raises[line]++;
        if (r->snap_blk) {
            vd_blk_get_stats(r->snap_blk, &r->snap);
        }
    }
}

Rig *rig_new(void)
{
    Rig *r = g_new0(Rig, 1);
    GError *err = NULL;
    r->bus = vd_bus_new(RIG_RAM, NULL, &err);
    assert_non_null(r->bus);
    r->pci = vd_pci_host_new(r->bus, &err);
    assert_non_null(r->pci);
    r->ide = vd_ide_piix3_new(r->pci, VD_IDE_PIIX3_DEVFN, &err);
    if (!r->ide) {
        fail_msg("vd_ide_piix3_new: %s", err->message);
    }
    vd_bus_set_irq_listener(r->bus, irq_listener, r);
    r->tmpdir = g_dir_make_tmp("vdisk-ide-XXXXXX", &err);
    assert_non_null(r->tmpdir);
    return r;
}

VdBlockBackend *rig_attach(Rig *r, int index, const char *opts)
{
    return rig_attach_sized(r, index, opts, 8 << 20);
}

VdBlockBackend *rig_attach_sized(Rig *r, int index, const char *opts, uint64_t file_size)
{
    GError *err = NULL;
    g_autofree char *path = g_strdup_printf("%s/disk%d.img", r->tmpdir, index);
    g_autofree char *o = NULL;
    const char *f = strstr(opts, "%F");
    if (f) {
        /* A fresh sparse image of file_size bytes. */
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        assert_int_equal(ftruncate(fileno(fp), file_size), 0);
        fclose(fp);
        o = g_strdup_printf("%.*s%s%s", (int)(f - opts), opts, path, f + 2);
    } else {
        o = g_strdup(opts);
    }
    VdBlockBackend *blk = vd_blk_open(o, NULL, &err);
    if (!blk) {
        fail_msg("vd_blk_open(%s): %s", o, err->message);
    }
    int used = -1;
    if (!vd_ide_attach(r->ide, index, blk, NULL, &used, &err)) {
        fail_msg("vd_ide_attach: %s", err->message);
    }
    r->blk[used] = blk;
    if (f) {
        r->path[used] = g_steal_pointer(&path);
    }
    return blk;
}

void rig_free(Rig *r)
{
    vd_ide_free(r->ide);
    for (int i = 0; i < VD_IDE_MAX_DRIVES; i++) {
        if (r->blk[i]) {
            vd_blk_close(r->blk[i]);
        }
        if (r->path[i]) {
            g_unlink(r->path[i]);
            g_free(r->path[i]);
        }
    }
    g_rmdir(r->tmpdir);
    g_free(r->tmpdir);
    vd_pci_host_free(r->pci);
    vd_bus_free(r->bus);
    g_free(r);
}

/* Read a port of the given width. */
static uint64_t port_read(Rig *r, uint16_t port, unsigned size)
{
    uint64_t v = 0;
    vd_bus_read(r->bus, VD_SPACE_PIO, port, size, &v);
    return v;
}

uint8_t inb(Rig *r, uint16_t port) { return port_read(r, port, 1); }
uint16_t inw(Rig *r, uint16_t port) { return port_read(r, port, 2); }
uint32_t inl(Rig *r, uint16_t port) { return port_read(r, port, 4); }
void outb(Rig *r, uint16_t port, uint8_t v) { vd_bus_write(r->bus, VD_SPACE_PIO, port, v, 1); }
void outw(Rig *r, uint16_t port, uint16_t v) { vd_bus_write(r->bus, VD_SPACE_PIO, port, v, 2); }
void outl(Rig *r, uint16_t port, uint32_t v) { vd_bus_write(r->bus, VD_SPACE_PIO, port, v, 4); }

void rig_settle(Rig *r)
{
    for (int i = 0; i < 20; i++) {
        g_usleep(500);
        while (g_main_context_iteration(NULL, FALSE)) {
        }
    }
}

bool rig_wait_irq(Rig *r, unsigned channel)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!vd_irq_level(r->bus, irq_line(channel))) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        if (!g_main_context_iteration(NULL, FALSE)) {
            g_usleep(50);
        }
    }
    return true;
}

uint8_t rig_wait_not_busy(Rig *r, unsigned channel)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    uint8_t st;
    while ((st = inb(r, ctl_port(channel))) & ST_BSY) {
        assert_true(g_get_monotonic_time() < deadline);
        if (!g_main_context_iteration(NULL, FALSE)) {
            g_usleep(50);
        }
    }
    return st;
}

uint16_t cmd_port(unsigned ch) { return ch ? VD_IDE_SECONDARY_CMD : VD_IDE_PRIMARY_CMD; }
uint16_t ctl_port(unsigned ch) { return ch ? VD_IDE_SECONDARY_CTL : VD_IDE_PRIMARY_CTL; }
unsigned irq_line(unsigned ch) { return ch ? VD_IDE_SECONDARY_IRQ : VD_IDE_PRIMARY_IRQ; }
uint16_t bm_port(unsigned ch) { return VD_IDE_BMDMA_BASE + 8 * ch; }

void ata_select(Rig *r, unsigned ch, unsigned unit)
{
    outb(r, cmd_port(ch) + 6, 0xa0 | 0x40 | (unit << 4));
}

void ata_tf28(Rig *r, unsigned ch, unsigned unit, uint32_t lba, uint8_t count, uint8_t feature)
{
    uint16_t p = cmd_port(ch);
    outb(r, p + 6, 0xe0 | (unit << 4) | ((lba >> 24) & 0x0f));
    outb(r, p + 1, feature);
    outb(r, p + 2, count);
    outb(r, p + 3, lba);
    outb(r, p + 4, lba >> 8);
    outb(r, p + 5, lba >> 16);
}

void ata_tf48(Rig *r, unsigned ch, unsigned unit, uint64_t lba, uint16_t count)
{
    uint16_t p = cmd_port(ch);
    outb(r, p + 6, 0x40 | (unit << 4));
    outb(r, p + 2, count >> 8);
    outb(r, p + 3, lba >> 24);
    outb(r, p + 4, lba >> 32);
    outb(r, p + 5, lba >> 40);
    outb(r, p + 2, count);
    outb(r, p + 3, lba);
    outb(r, p + 4, lba >> 8);
    outb(r, p + 5, lba >> 16);
}

void ata_command(Rig *r, unsigned ch, uint8_t cmd)
{
    outb(r, cmd_port(ch) + 7, cmd);
}

uint8_t ata_nodata(Rig *r, unsigned ch, uint8_t cmd)
{
    ata_command(r, ch, cmd);
    assert_true(rig_wait_irq(r, ch));
    return inb(r, cmd_port(ch) + 7);
}

uint8_t ata_pio_in(Rig *r, unsigned ch, void *buf, uint32_t nsect, uint32_t block)
{
    uint8_t *p = buf;
    uint32_t done = 0;
    while (done < nsect) {
        if (!rig_wait_irq(r, ch)) {
            fail_msg("no interrupt before block at sector %u", done);
        }
        uint8_t st = inb(r, cmd_port(ch) + 7);
        if (st & ST_ERR) {
            return st;
        }
        assert_true(st & ST_DRQ);
        uint32_t n = MIN(block, nsect - done);
        for (uint32_t i = 0; i < n * 256; i++) {
            uint16_t w = inw(r, cmd_port(ch));
            p[(size_t)done * 512 + 2 * i] = w;
            p[(size_t)done * 512 + 2 * i + 1] = w >> 8;
        }
        done += n;
    }
    return inb(r, ctl_port(ch));
}

uint8_t ata_pio_out(Rig *r, unsigned ch, const void *buf, uint32_t nsect, uint32_t block)
{
    const uint8_t *p = buf;
    uint32_t done = 0;
    uint8_t st = rig_wait_not_busy(r, ch);
    while (done < nsect) {
        if (done > 0) {
            if (!rig_wait_irq(r, ch)) {
                fail_msg("no interrupt before block at sector %u", done);
            }
            st = inb(r, cmd_port(ch) + 7);
        }
        if (st & ST_ERR) {
            return st;
        }
        assert_true(st & ST_DRQ);
        uint32_t n = MIN(block, nsect - done);
        for (uint32_t i = 0; i < n * 256; i++) {
            outw(r, cmd_port(ch), p[(size_t)done * 512 + 2 * i] | p[(size_t)done * 512 + 2 * i + 1] << 8);
        }
        done += n;
    }
    if (!rig_wait_irq(r, ch)) {
        fail_msg("no completion interrupt");
    }
    return inb(r, cmd_port(ch) + 7);
}

uint8_t ata_identify_dev(Rig *r, unsigned ch, unsigned unit, uint16_t id[256])
{
    uint8_t raw[512];
    ata_select(r, ch, unit);
    ata_command(r, ch, 0xec);
    uint8_t st = ata_pio_in(r, ch, raw, 1, 1);
    for (int i = 0; i < 256; i++) {
        id[i] = vd_ld_le16(raw + 2 * i);
    }
    return st;
}

uint64_t ata_read_lba48(Rig *r, unsigned ch)
{
    uint16_t p = cmd_port(ch);
    uint64_t lo = inb(r, p + 3) | inb(r, p + 4) << 8 | (uint32_t)inb(r, p + 5) << 16;
    outb(r, ctl_port(ch), 0x80);
    uint64_t hi = inb(r, p + 3) | inb(r, p + 4) << 8 | (uint32_t)inb(r, p + 5) << 16;
    outb(r, ctl_port(ch), 0x00);
    return hi << 24 | lo;
}

uint32_t ata_read_lba28(Rig *r, unsigned ch)
{
    uint16_t p = cmd_port(ch);
    return inb(r, p + 3) | inb(r, p + 4) << 8 | (uint32_t)inb(r, p + 5) << 16 |
           (uint32_t)(inb(r, p + 6) & 0x0f) << 24;
}

void prd_write(Rig *r, uint64_t gpa, const uint32_t *addrs, const uint32_t *counts, unsigned n, bool eot_last)
{
    uint8_t *ram = vd_bus_ram(r->bus);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = ram + gpa + 8 * i;
        uint32_t a = addrs[i], c = counts[i] & 0xffff;
        vd_st_le32(e, a);
        vd_st_le16(e + 4, c);
        e[6] = 0;
        e[7] = (eot_last && i == n - 1) ? 0x80 : 0;
    }
}

void bm_setup(Rig *r, unsigned ch, uint32_t prd, bool to_mem)
{
    outb(r, bm_port(ch), 0);                       /* stop */
    outb(r, bm_port(ch) + 2, 0x06);                /* clear ERROR and INTR */
    outl(r, bm_port(ch) + 4, prd);
    outb(r, bm_port(ch), to_mem ? 0x08 : 0x00);
}

void bm_start(Rig *r, unsigned ch, bool to_mem)
{
    outb(r, bm_port(ch), (to_mem ? 0x08 : 0x00) | 0x01);
}

void bm_stop(Rig *r, unsigned ch)
{
    outb(r, bm_port(ch), inb(r, bm_port(ch)) & ~0x01);
}

uint8_t bm_status(Rig *r, unsigned ch) { return inb(r, bm_port(ch) + 2); }
void bm_clear_status(Rig *r, unsigned ch) { outb(r, bm_port(ch) + 2, 0x06); }

uint8_t ata_dma(Rig *r, unsigned ch, unsigned unit, uint8_t cmd, uint64_t lba, uint16_t nsect, uint32_t gpa)
{
    const uint32_t prd = 0x1000;
    bool lba28 = cmd == 0xc8 || cmd == 0xca;
    uint32_t bytes = (nsect ? nsect : (lba28 ? 256u : 65536u)) * 512u;
    bool to_mem = cmd == 0x25 || cmd == 0xc8;
    /* Split into 64 KiB entries (a count of 0 means 64 KiB). */
    unsigned n = (bytes + 0xffff) / 0x10000;
    uint32_t *addrs = g_new(uint32_t, n), *counts = g_new(uint32_t, n);
    for (unsigned i = 0; i < n; i++) {
        addrs[i] = gpa + i * 0x10000;
        counts[i] = MIN(bytes - i * 0x10000u, 0x10000u) & 0xffff;
    }
    prd_write(r, prd, addrs, counts, n, true);
    g_free(addrs);
    g_free(counts);
    bm_setup(r, ch, prd, to_mem);
    if (lba28) {
        ata_tf28(r, ch, unit, lba, nsect, 0);
    } else {
        ata_tf48(r, ch, unit, lba, nsect);
    }
    ata_command(r, ch, cmd);
    bm_start(r, ch, to_mem);
    if (!rig_wait_irq(r, ch)) {
        fail_msg("no DMA completion interrupt");
    }
    bm_stop(r, ch);
    return inb(r, cmd_port(ch) + 7);
}

VdBlockStats rig_stats(VdBlockBackend *blk)
{
    VdBlockStats s;
    vd_blk_get_stats(blk, &s);
    return s;
}

uint64_t durable_ops(const VdBlockStats *s)
{
    return s->host_fdatasync + s->host_dsync_writes + s->host_rwf_dsync_writes;
}

void fill_pattern(void *buf, size_t len, uint32_t seed)
{
    uint8_t *p = buf;
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = x >> 16;
    }
}
