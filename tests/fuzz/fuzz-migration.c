/*
 * fuzz-migration.c - libFuzzer target: the destination side of live
 * migration (system/migration-incoming.c, util/mig-stream.c and every
 * device's parse and apply, include/hw/vmstate.h).  Each input is one
 * whole stream for vd_migration_load on a destination with one null drive
 * on each interface, opened inactive (active=off), as --incoming does.
 *
 * Every section carries a CRC-32, which random mutations almost never get
 * right.  So an input that fails is loaded a second time with every
 * section's CRC recomputed (when that changes a byte): the first load
 * fuzzes the container, the second the section parsers behind it.
 *
 * Oracles (docs/fuzzing.md):
 *  - a refused stream sets *errp to a non-empty message, of one line if
 *    the input has no newline;
 *  - a refused stream changes nothing: the drives stay inactive with their
 *    write caches as opened, RAM stays zero, and every device saves the
 *    same state as before;
 *  - a loaded stream activated every drive, and the machine drains (every
 *    re-issued request completes within 5 s).
 * A destination is built once (~50 ms of page faults) and kept while loads
 * fail; after a load succeeds it is drained, freed and built again.
 *
 * --make-seeds OUTDIR SESSION...: write the seed streams (fz-mig-seeds.c).
 *
 * Threading: the fuzzer's thread and the default GMainContext.
 */
#include "fuzz-common.h"
#include "fz-migration.h"
#include "system/drive.h"
#include "system/migration.h"
#include "util/bswap.h"

#include <stdlib.h>
#include <string.h>

#define SECTION_TAIL 16   /* le32 version, le64 payload length, le32 CRC-32 */

static const char *const drives[] = {
    "if=ide,id=demo-ide,driver=null,size=2M",
    "if=virtio,id=vd0,driver=null,size=2M",
    "if=scsi,id=demo-scsi,driver=null,size=2M",
};

VdMachine *fzm_machine(bool incoming)
{
    VdMachine *m = vd_machine_new(FZM_RAM, NULL, NULL);
    if (!m) {
        fz_fail("cannot create the machine");
    }
    for (size_t i = 0; i < G_N_ELEMENTS(drives); i++) {
        GError *err = NULL;
        g_autofree char *spec = g_strconcat(drives[i], incoming ? ",active=off" : "", NULL);
        VdDriveSpec *d = vd_drive_spec_parse(spec, &err);
        if (!d || !vd_machine_add_drive(m, d, &err)) {
            fz_fail("drive %s: %s", spec, err->message);
        }
    }
    return m;
}

/* fz_wait condition: every device called back. */
static bool drained(void *opaque)
{
    return vd_machine_drain_pending(opaque) == 0;
}

void fzm_drain(VdMachine *m)
{
    VdMachineDrain *d = vd_machine_drain_start(m);
    fz_wait(drained, d, "migration: a device never drained after the load");
    vd_machine_drain_unref(d);
    for (guint i = 0; i < m->drives->len; i++) {
        fz_drain_blk(((VdDriveSpec *)g_ptr_array_index(m->drives, i))->blk);
    }
}

/* What every device of m saves now, as one stream (the "nothing changed" oracle compares two). */
static GBytes *device_states(VdMachine *m)
{
    VdMigWriter *w = vd_mig_writer_new();
    for (guint i = 0; i < m->states->len; i++) {
        VdMachineState *st = g_ptr_array_index(m->states, i);
        GError *err = NULL;
        vd_mig_section_begin(w, st->section, st->ops->version);
        if (!st->ops->save(st->dev, w, &err)) {
            fz_fail("%s: an idle destination cannot save: %s", st->section, err->message);
        }
        vd_mig_section_end(w);
    }
    return vd_mig_writer_finish(w);
}

/* The destination of the run, and what it looked like when built. */
typedef struct Dest {
    VdMachine *m;
    GBytes *states;
    bool wce[G_N_ELEMENTS(drives)];
} Dest;

/* A fresh inactive destination. */
static void dest_build(Dest *d)
{
    d->m = fzm_machine(true);
    d->states = device_states(d->m);
    for (guint i = 0; i < d->m->drives->len; i++) {
        d->wce[i] = vd_blk_write_cache(((VdDriveSpec *)g_ptr_array_index(d->m->drives, i))->blk);
    }
}

/* Drain and free the destination (a load succeeded: it is no longer one). */
static void dest_free(Dest *d)
{
    fzm_drain(d->m);
    vd_machine_free(d->m);
    g_bytes_unref(d->states);
    d->m = NULL;
    d->states = NULL;
    fz_order_reset();
}

/* A refused stream: the error is one clear line, and the destination is as it was built. */
static void check_refused(Dest *d, const GError *err, bool one_line)
{
    if (!err || !err->message || !*err->message) {
        fz_fail("migration: a refused stream gave no error message");
    }
    if (one_line && strchr(err->message, '\n')) {
        fz_fail("migration: the error is not one line: %s", err->message);
    }
    for (guint i = 0; i < d->m->drives->len; i++) {
        VdDriveSpec *ds = g_ptr_array_index(d->m->drives, i);
        if (vd_blk_is_active(ds->blk)) {
            fz_fail("migration: drive %s is active after a refused stream (%s)", ds->id, err->message);
        }
        if (vd_blk_write_cache(ds->blk) != d->wce[i]) {
            fz_fail("migration: drive %s's write cache changed by a refused stream (%s)", ds->id, err->message);
        }
    }
    const uint8_t *ram = vd_bus_ram(d->m->bus);
    static const uint8_t zero[4096];
    for (uint64_t off = 0; off < FZM_RAM; off += sizeof(zero)) {
        if (memcmp(ram + off, zero, sizeof(zero)) != 0) {
            fz_fail("migration: RAM page at 0x%" G_GINT64_MODIFIER "x written by a refused stream (%s)",
                    (guint64)off, err->message);
        }
    }
    g_autoptr(GBytes) now = device_states(d->m);
    if (!g_bytes_equal(now, d->states)) {
        fz_fail("migration: a device's state changed by a refused stream (%s)", err->message);
    }
}

/* Load one stream into the destination and check the outcome; true if it was loaded. */
static bool load(Dest *d, const uint8_t *data, size_t size)
{
    GError *err = NULL;
    if (vd_migration_load(d->m, data, size, &err)) {
        for (guint i = 0; i < d->m->drives->len; i++) {
            VdDriveSpec *ds = g_ptr_array_index(d->m->drives, i);
            if (!vd_blk_is_active(ds->blk)) {
                fz_fail("migration: drive %s still inactive after a loaded stream", ds->id);
            }
        }
        dest_free(d);
        return true;
    }
    check_refused(d, err, !memchr(data, '\n', size));
    g_error_free(err);
    return false;
}

/* Recompute the CRC-32 of every whole section of a container in buf; true if one changed. */
static bool fix_crcs(uint8_t *buf, size_t len)
{
    bool changed = false;
    size_t pos = VD_MIG_MAGIC_LEN + 4;
    while (pos + 2 <= len) {
        size_t idlen = vd_ld_le16(buf + pos);
        pos += 2;
        if (idlen == 0 || len - pos < idlen + SECTION_TAIL) {
            break;
        }
        pos += idlen;
        uint64_t plen = vd_ld_le64(buf + pos + 4);
        uint8_t *crc = buf + pos + 12;
        pos += SECTION_TAIL;
        if (plen > len - pos) {
            break;
        }
        uint32_t want = vd_crc32(buf + pos, plen);
        changed |= vd_ld_le32(crc) != want;
        vd_st_le32(crc, want);
        pos += plen;
    }
    return changed;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --make-seeds: write the seed corpus instead of fuzzing. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (*argc >= 2 && strcmp((*argv)[1], "--make-seeds") == 0) {
        fz_init();
        exit(fzm_make_seeds(*argc - 2, *argv + 2));
    }
    return 0;
}

/* One input: load it as is; if refused, load it again with its CRCs made right. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static Dest dest;
    fz_init();
    if (!dest.m) {
        dest_build(&dest);
    }
    if (load(&dest, data, size)) {
        return 0;
    }
    if (size < VD_MIG_MAGIC_LEN + 4) {
        return 0;
    }
    g_autofree uint8_t *copy = g_memdup2(data, size);
    if (fix_crcs(copy, size)) {
        load(&dest, copy, size);   /* the first load failed, so dest is still built */
    }
    return 0;
}
