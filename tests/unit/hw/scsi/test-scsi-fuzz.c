/*
 * test-scsi-fuzz.c - a hostile initiator: random CDBs (random opcodes and
 * mutations of valid ones), random parameter lists and buffer sizes, random
 * nexuses and task management in between.  Under ASan/UBSan; every command
 * must complete exactly once with a well-formed answer, and the disk must
 * still work afterwards.  The seed is fixed (and printed) so a failure replays.
 */
#include "scsi-test-util.h"
#include "util/iov.h"

#define ITERATIONS 20000
#define IN_FLIGHT  16

static char *image;
static VdBlockBackend *blk;
static VdScsiDisk *disk;

/* Valid CDBs of every opcode, to mutate. */
static const uint8_t seeds[][16] = {
    { 0x00 }, { 0x03, 0, 0, 0, 18 }, { 0x08, 0, 0, 1, 1 }, { 0x0a, 0, 0, 1, 1 }, { 0x12, 1, 0x83, 0, 255 },
    { 0x15, 0x10, 0, 0, 24 }, { 0x1a, 0, 0x3f, 0, 255 }, { 0x1b, 0, 0, 0, 1 }, { 0x1e },
    { 0x25 }, { 0x28, 0, 0, 0, 0, 2, 0, 0, 1 }, { 0x2a, 0x08, 0, 0, 0, 2, 0, 0, 1 },
    { 0x2e, 0x02, 0, 0, 0, 3, 0, 0, 1 }, { 0x2f, 0x06, 0, 0, 0, 3, 0, 0, 1 }, { 0x35, 0x02 },
    { 0x41, 0x08, 0, 0, 0, 4, 0, 0, 2 }, { 0x42, 0, 0, 0, 0, 0, 0, 0, 24 }, { 0x55, 0x10, 0, 0, 0, 0, 0, 0, 28 },
    { 0x5a, 0x18, 0x08, 0, 0, 0, 0, 0, 64 }, { 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1 },
    { 0x8a, 0x08, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1 }, { 0x8e, 0x02, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 1 },
    { 0x8f, 0x06, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 1 }, { 0x91 }, { 0x93, 0x09, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2 },
    { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32 }, { 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64 },
    { 0xa3, 0x0c, 0x01, 0x93, 0, 0, 0, 0, 2, 0 }, { 0xa8, 0, 0, 0, 0, 8, 0, 0, 0, 1 },
    { 0xaa, 0, 0, 0, 0, 8, 0, 0, 0, 1 },
};

/* Parameter lists worth mutating: a caching page for MODE SELECT(6)/(10), an UNMAP list. */
static const uint8_t ms6[24] = { 0, 0, 0, 0, 0x08, 0x12, 0x04 };
static const uint8_t ms10[28] = { 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x12, 0x00 };
static const uint8_t unmap[24] = { 0, 22, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 8 };

typedef struct Slot {
    TCmd t;
    bool busy;
    uint8_t *out, *in;
    struct iovec oiov[3], iiov[3];
} Slot;

static Slot slots[IN_FLIGHT];
static unsigned completed, submitted;

static void slot_done(VdScsiRequest *req, void *opaque)
{
    Slot *s = opaque;
    s->t.completions++;
    completed++;
}

static int setup(void **state)
{
    image = make_image(8u << 20);
    g_autofree char *opts = g_strdup_printf("file=%s,cache=writeback", image);
    blk = blk_open_ok(opts);
    disk = disk_new_ok(blk, 0);
    return 0;
}

static int teardown(void **state)
{
    vd_scsi_disk_free(disk);
    vd_blk_close(blk);
    unlink_image(image);
    return 0;
}

/* Check a finished command's answer is well formed, then release the slot. */
static void check_and_release(Slot *s)
{
    VdScsiRequest *r = &s->t.req;
    assert_int_equal(s->t.completions, 1);
    assert_true(r->response <= VD_SCSI_RESP_RESET);
    if (r->response == VD_SCSI_RESP_OK && r->status == VD_SCSI_CHECK_CONDITION) {
        assert_int_equal(r->sense_len, VD_SCSI_SENSE_LEN);
        assert_true((r->sense[0] & 0x7f) == 0x70 || (r->sense[0] & 0x7f) == 0x71);
        assert_int_equal(r->sense[7], 10);
        assert_true((r->sense[2] & 0x0f) != 0);
    } else {
        assert_int_equal(r->status, VD_SCSI_GOOD);
        assert_int_equal(r->sense_len, 0);
    }
    size_t in_size = vd_iov_size(r->in_iov, r->in_niov), out_size = vd_iov_size(r->out_iov, r->out_niov);
    assert_true(r->in_resid <= in_size);
    assert_true(r->out_resid <= out_size);
    g_free(s->out);
    g_free(s->in);
    s->busy = false;
}

/* Split a buffer into up to 3 random iovecs. */
static unsigned split(GRand *rng, uint8_t *buf, size_t len, struct iovec *iov)
{
    if (!len) {
        return 0;
    }
    unsigned n = g_rand_int_range(rng, 1, 4);
    size_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t take = i == n - 1 ? len - off : (size_t)g_rand_int_range(rng, 0, (gint32)(len - off) + 1);
        iov[i].iov_base = buf + off;
        iov[i].iov_len = take;
        off += take;
    }
    return n;
}

/* Build a random command into a free slot and submit it. */
static void submit_random(GRand *rng, Slot *s)
{
    uint8_t cdb[VD_SCSI_CDB_MAX] = { 0 };
    size_t cdb_len;
    const uint8_t *list = NULL;
    size_t list_len = 0;
    if (g_rand_int_range(rng, 0, 8) == 0) {
        for (size_t i = 0; i < sizeof(cdb); i++) {
            cdb[i] = g_rand_int_range(rng, 0, 256);
        }
        cdb_len = g_rand_int_range(rng, 0, VD_SCSI_CDB_MAX + 1);
    } else {
        unsigned k = g_rand_int_range(rng, 0, G_N_ELEMENTS(seeds));
        memcpy(cdb, seeds[k], 16);
        cdb_len = vd_scsi_cdb_length(cdb[0]);
        unsigned flips = g_rand_int_range(rng, 0, 4);
        for (unsigned f = 0; f < flips; f++) {
            unsigned byte = g_rand_int_range(rng, 1, (gint32)cdb_len);
            cdb[byte] ^= 1u << g_rand_int_range(rng, 0, 8);
        }
        if (cdb[0] == 0x15) {
            list = ms6, list_len = sizeof(ms6);
        } else if (cdb[0] == 0x55) {
            list = ms10, list_len = sizeof(ms10);
        } else if (cdb[0] == 0x42) {
            list = unmap, list_len = sizeof(unmap);
        }
    }
    size_t out_len = g_rand_int_range(rng, 0, 4) == 0 ? 0 : (size_t)g_rand_int_range(rng, 0, 8192);
    size_t in_len = g_rand_int_range(rng, 0, 4) == 0 ? 0 : (size_t)g_rand_int_range(rng, 0, 8192);
    s->out = g_malloc0(MAX(out_len, list_len) + 1);
    s->in = g_malloc0(in_len + 1);
    if (list) {
        out_len = MAX(out_len, list_len);
        memcpy(s->out, list, list_len);
        s->out[g_rand_int_range(rng, 0, (gint32)list_len)] ^= 1u << g_rand_int_range(rng, 0, 8);
    } else {
        for (size_t i = 0; i < out_len; i++) {
            s->out[i] = g_rand_int_range(rng, 0, 256);
        }
    }
    memset(&s->t, 0, sizeof(s->t));
    memcpy(s->t.req.cdb, cdb, sizeof(cdb));
    s->t.req.cdb_len = cdb_len;
    s->t.req.nexus = g_rand_int_range(rng, 0, 3);
    s->t.req.tag = g_rand_int_range(rng, 0, 64);
    s->t.req.out_niov = split(rng, s->out, out_len, s->oiov);
    s->t.req.out_iov = s->oiov;
    s->t.req.in_niov = split(rng, s->in, in_len, s->iiov);
    s->t.req.in_iov = s->iiov;
    s->t.req.complete = slot_done;
    s->t.req.opaque = s;
    s->busy = true;
    submitted++;
    vd_scsi_disk_submit(disk, &s->t.req);
    assert_int_equal(s->t.completions, 0);
}

static void tmf_noop(void *opaque, bool found)
{
    (*(unsigned *)opaque)++;
}

/* Thousands of random commands, 16 in flight, with TMFs thrown in. */
static void test_fuzz(void **state)
{
    const char *env = g_getenv("VD_FUZZ_SEED");   /* replay or explore other seeds */
    guint32 seed = env ? (guint32)g_ascii_strtoull(env, NULL, 10) : 20261121;
    GRand *rng = g_rand_new_with_seed(seed);
    print_message("seed %u\n", seed);
    unsigned tmfs = 0, tmfs_done = 0;
    while (submitted < ITERATIONS) {
        Slot *free_slot = NULL;
        for (unsigned i = 0; i < IN_FLIGHT; i++) {
            if (slots[i].busy && slots[i].t.completions) {
                check_and_release(&slots[i]);
            }
            if (!slots[i].busy && (!free_slot || g_rand_boolean(rng))) {
                free_slot = &slots[i];
            }
        }
        if (!free_slot) {
            g_main_context_iteration(NULL, TRUE);
            continue;
        }
        submit_random(rng, free_slot);
        switch (g_rand_int_range(rng, 0, 200)) {
        case 0:
            vd_scsi_disk_abort_task(disk, g_rand_int_range(rng, 0, 3), g_rand_int_range(rng, 0, 64), tmf_noop,
                                    &tmfs_done);
            tmfs++;
            break;
        case 1:
            vd_scsi_disk_lun_reset(disk, tmf_noop, &tmfs_done);
            tmfs++;
            break;
        case 2:
            vd_scsi_disk_nexus_reset(disk, g_rand_int_range(rng, 0, 3), tmf_noop, &tmfs_done);
            tmfs++;
            break;
        default:
            break;
        }
        g_main_context_iteration(NULL, FALSE);
    }
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    while (completed < submitted || tmfs_done < tmfs) {
        assert_true(g_get_monotonic_time() < deadline);
        g_main_context_iteration(NULL, TRUE);
    }
    for (unsigned i = 0; i < IN_FLIGHT; i++) {
        if (slots[i].busy) {
            check_and_release(&slots[i]);
        }
    }
    print_message("%u commands, %u TMFs\n", submitted, tmfs);
    /* Still a working disk: start it (a fuzzed STOP may have stopped it), clear UAs, write, read back. */
    TCmd t;
    uint8_t start[6] = { 0x1b, 0, 0, 0, 1, 0 };
    for (int i = 0; i < 8; i++) {
        RUN(disk, &t, start, NULL, 0, NULL, 0);
    }
    uint8_t w[512], r[512];
    memset(w, 0x3c, sizeof(w));
    uint8_t wr[10] = { 0x2a, 0, 0, 0, 0x10, 0, 0, 0, 1, 0 };
    uint8_t rd[10] = { 0x28, 0, 0, 0, 0x10, 0, 0, 0, 1, 0 };
    RUN(disk, &t, wr, w, 512, NULL, 0);
    assert_good(&t);
    RUN(disk, &t, rd, NULL, 0, r, 512);
    assert_good(&t);
    assert_memory_equal(r, w, 512);
    g_rand_free(rng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
