/*
 * fz-migration.h - what the migration target (fuzz-migration.c) shares with
 * its seed generator (fz-mig-seeds.c): the machine both sides are built
 * as, 2 MiB of RAM and one null drive on each interface (IDE, virtio-blk,
 * virtio-scsi) with the ids the qtest target's sessions use.
 *
 * Threading: the fuzzer's thread and the default GMainContext.
 */
#ifndef VD_FZ_MIGRATION_H
#define VD_FZ_MIGRATION_H

#include "system/machine.h"

#define FZM_RAM (2u << 20)

/* A machine of the target's shape; a destination (incoming) has its drives opened with active=off. */
VdMachine *fzm_machine(bool incoming);
/* Drain every device and backend of m (a request that never completes fails the input). */
void fzm_drain(VdMachine *m);
/*
 * --make-seeds OUTDIR QTEST-SESSION...: write real streams of a source
 * machine to OUTDIR (idle, after each qtest session, and after each
 * session with every backend stopped so the guest's requests stay held).
 */
int fzm_make_seeds(int argc, char **argv);

#endif
