/*
 * scsi-test-util.h - helpers for the SCSI disk unit tests: run one CDB
 * straight into a VdScsiDisk and check status, sense and residuals.
 */
#ifndef VD_SCSI_TEST_UTIL_H
#define VD_SCSI_TEST_UTIL_H

#include "hw/scsi.h"
#include "util/bswap.h"   /* CDBs are big-endian: vd_st_be* / vd_ld_be* */

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* One command in flight, as a transport would hold it. */
typedef struct TCmd {
    VdScsiRequest req;
    struct iovec out, in;
    int completions;
} TCmd;

static inline void tcmd_complete(VdScsiRequest *req, void *opaque)
{
    TCmd *t = opaque;
    t->completions++;
}

/* Fill and submit t; asserts the disk never completes inside submit. */
static inline void tcmd_submit(VdScsiDisk *disk, TCmd *t, unsigned nexus, const uint8_t *cdb, size_t cdb_len,
                               const void *out, size_t out_len, void *in, size_t in_len)
{
    memset(t, 0, sizeof(*t));
    memcpy(t->req.cdb, cdb, cdb_len);
    t->req.cdb_len = cdb_len;
    t->req.nexus = nexus;
    t->out.iov_base = (void *)out;
    t->out.iov_len = out_len;
    t->in.iov_base = in;
    t->in.iov_len = in_len;
    t->req.out_iov = &t->out;
    t->req.out_niov = out ? 1 : 0;
    t->req.in_iov = &t->in;
    t->req.in_niov = in ? 1 : 0;
    t->req.complete = tcmd_complete;
    t->req.opaque = t;
    vd_scsi_disk_submit(disk, &t->req);
    assert_int_equal(t->completions, 0);
}

/* Iterate the default context until t completed (fails after 10 s). */
static inline void tcmd_wait(TCmd *t)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (t->completions == 0) {
        assert_true(g_get_monotonic_time() < deadline);
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(t->completions, 1);
}

/* Run one command to completion on nexus 0; returns the SCSI status. */
static inline uint8_t run_nx(VdScsiDisk *disk, TCmd *t, unsigned nexus, const uint8_t *cdb, size_t cdb_len,
                             const void *out, size_t out_len, void *in, size_t in_len)
{
    tcmd_submit(disk, t, nexus, cdb, cdb_len, out, out_len, in, in_len);
    tcmd_wait(t);
    return t->req.status;
}

#define RUN(disk, t, cdb, out, out_len, in, in_len) \
    run_nx((disk), (t), 0, (cdb), sizeof(cdb), (out), (out_len), (in), (in_len))

/* Assert a completed command ended in CHECK CONDITION with this key/ASC/ASCQ. */
#define assert_sense(t, k, a, q) do { \
        assert_int_equal((t)->req.response, VD_SCSI_RESP_OK); \
        assert_int_equal((t)->req.status, VD_SCSI_CHECK_CONDITION); \
        assert_int_equal((t)->req.sense_len, VD_SCSI_SENSE_LEN); \
        assert_int_equal((t)->req.sense[0] & 0x7e, 0x70); \
        assert_int_equal((t)->req.sense[7], 10); \
        assert_int_equal((t)->req.sense[2] & 0x0f, (k)); \
        assert_int_equal((t)->req.sense[12], (a)); \
        assert_int_equal((t)->req.sense[13], (q)); \
    } while (0)

/* Assert the sense-key-specific field pointer. */
#define assert_field(t, cd, byte, bit) do { \
        assert_int_equal((t)->req.sense[15] & 0xc0, 0x80 | ((cd) ? 0x40 : 0)); \
        assert_int_equal(((t)->req.sense[16] << 8) | (t)->req.sense[17], (byte)); \
        if ((bit) >= 0) { \
            assert_int_equal((t)->req.sense[15] & 0x0f, 0x08 | (bit)); \
        } else { \
            assert_int_equal((t)->req.sense[15] & 0x08, 0); \
        } \
    } while (0)

#define assert_good(t) do { \
        assert_int_equal((t)->req.response, VD_SCSI_RESP_OK); \
        if ((t)->req.status != VD_SCSI_GOOD) { \
            fail_msg("status %#x sense %x/%02x/%02x", (t)->req.status, (t)->req.sense[2] & 0xf, \
                     (t)->req.sense[12], (t)->req.sense[13]); \
        } \
        assert_int_equal((t)->req.sense_len, 0); \
    } while (0)

/* Clear the power-on unit attention of nexus n, checking it was 29/00. */
static inline void clear_power_on_ua(VdScsiDisk *disk, unsigned n)
{
    static const uint8_t tur[6] = { 0x00 };
    TCmd t;
    run_nx(disk, &t, n, tur, 6, NULL, 0, NULL, 0);
    assert_sense(&t, 0x6, 0x29, 0x00);
    run_nx(disk, &t, n, tur, 6, NULL, 0, NULL, 0);
    assert_good(&t);
}

static inline VdBlockBackend *blk_open_ok(const char *opts)
{
    GError *err = NULL;
    VdBlockBackend *blk = vd_blk_open(opts, NULL, &err);
    if (!blk) {
        fail_msg("open '%s': %s", opts, err->message);
    }
    return blk;
}

/* A disk on blk with its power-on unit attention cleared on nexus 0. */
static inline VdScsiDisk *disk_new_ok(VdBlockBackend *blk, unsigned lun)
{
    GError *err = NULL;
    VdScsiDiskConfig cfg = { .lun = lun, .serial = NULL };
    VdScsiDisk *disk = vd_scsi_disk_new(blk, &cfg, NULL, &err);
    assert_non_null(disk);
    clear_power_on_ua(disk, 0);
    return disk;
}

static inline VdBlockStats blk_stats(VdBlockBackend *blk)
{
    VdBlockStats s;
    vd_blk_get_stats(blk, &s);
    return s;
}

/* A temporary raw image of size bytes; returns its path (g_free it, unlink_image it). */
static inline char *make_image(uint64_t size)
{
    char *dir = g_dir_make_tmp("vdisk-scsi-XXXXXX", NULL);
    assert_non_null(dir);
    char *path = g_build_filename(dir, "disk.img", NULL);
    g_free(dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    close(fd);
    return path;
}

static inline void unlink_image(char *path)
{
    char *dir = g_path_get_dirname(path);
    unlink(path);
    rmdir(dir);
    g_free(dir);
    g_free(path);
}

#endif
