/*
 * fuzz-qtest.c - libFuzzer target: the qtest line protocol (system/qtest*.c)
 * in-process.  Each input is fed through a pipe to a fresh qtest server on a
 * 2 MiB machine with one null drive on each interface (IDE, virtio-blk,
 * virtio-scsi); replies go to /dev/null.  The loop runs until the server has
 * read end of file and finished every line.  The machine is built once per
 * process (building one costs ~50 ms here, mostly page faults on fresh
 * buffers) and its RAM is zeroed per input, so device state carries over
 * from input to input: a crash may need the inputs before it.  Oracles: no
 * crash, no sanitizer report, no hang (libFuzzer -timeout).
 */
#include "fuzz-common.h"
#include "fz-qtest-run.h"
#include "system/machine.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define INPUT_MAX 16384   /* below the pipe buffer: one write, no writer thread */

static const char *const drives[] = {
    "if=ide,id=demo-ide,driver=null,size=2M,aio=threads",
    "if=virtio,id=vd0,driver=null,size=2M,aio=threads",
    "if=scsi,id=demo-scsi,driver=null,size=2M,aio=threads",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: the input as one client's whole session on the process's machine. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int devnull = -1;
    fz_init();
    if (size > INPUT_MAX) {
        return 0;
    }
    if (devnull < 0) {
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    }
    static VdMachine *m;
    if (m) {
        memset(vd_bus_ram(m->bus), 0, vd_bus_ram_size(m->bus));
        fz_qtest_run(m, devnull, data, size);
        return 0;
    }
    m = vd_machine_new(2u << 20, NULL, NULL);
    if (!m) {
        fz_fail("cannot create the machine");
    }
    for (size_t i = 0; i < G_N_ELEMENTS(drives); i++) {
        GError *err = NULL;
        VdDriveSpec *d = vd_drive_spec_parse(drives[i], &err);
        if (!d || !vd_machine_add_drive(m, d, &err)) {
            fz_fail("drive %s: %s", drives[i], err->message);
        }
    }
    fz_qtest_run(m, devnull, data, size);
    return 0;
}
