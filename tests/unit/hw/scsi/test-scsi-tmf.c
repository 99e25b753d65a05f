/*
 * test-scsi-tmf.c - task management on the SCSI disk: ABORT TASK, ABORT TASK
 * SET, CLEAR TASK SET, LOGICAL UNIT RESET, I_T NEXUS RESET, hard reset and
 * QUERY TASK, with commands really in flight on a file backend; the unit
 * attentions they leave; and freeing a disk with commands in flight.
 */
#include "scsi-test-util.h"

static char *image;
static VdBlockBackend *blk;
static VdScsiDisk *disk;
static uint8_t bufs[8][4096];

/* Order of events: commands complete and TMFs finish. */
static GString *order;

typedef struct TmfResult {
    int calls;
    bool found;
} TmfResult;

static void tmf_done(void *opaque, bool found)
{
    TmfResult *r = opaque;
    r->calls++;
    r->found = found;
    g_string_append_c(order, 'T');
}

static void ordered_complete(VdScsiRequest *req, void *opaque)
{
    TCmd *t = opaque;
    t->completions++;
    g_string_append_c(order, 'C');
}

static int setup(void **state)
{
    image = make_image(4u << 20);
    g_autofree char *opts = g_strdup_printf("file=%s,cache=writeback", image);
    blk = blk_open_ok(opts);
    disk = disk_new_ok(blk, 0);
    clear_power_on_ua(disk, 1);
    order = g_string_new("");
    return 0;
}

static int teardown(void **state)
{
    vd_scsi_disk_free(disk);
    vd_blk_close(blk);
    unlink_image(image);
    g_string_free(order, TRUE);
    return 0;
}

/* Submit a READ(10) of 8 blocks with a tag on a nexus; it goes to the thread pool. */
static void submit_read(TCmd *t, unsigned nexus, uint64_t tag, unsigned i)
{
    uint8_t cdb[10] = { 0x28, 0, 0, 0, 0, (uint8_t)i, 0, 0, 8, 0 };
    tcmd_submit(disk, t, nexus, cdb, 10, NULL, 0, bufs[i], sizeof(bufs[i]));
    t->req.tag = tag;
    t->req.complete = ordered_complete;
}

static void wait_tmf(TmfResult *r)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (r->calls == 0) {
        assert_true(g_get_monotonic_time() < deadline);
        g_main_context_iteration(NULL, TRUE);
    }
    assert_int_equal(r->calls, 1);
}

/* ABORT TASK finds the command by (nexus, tag): it ends ABORTED, then the TMF completes. */
static void test_abort_task(void **state)
{
    TCmd t;
    TmfResult r = { 0 };
    submit_read(&t, 0, 7, 0);
    assert_true(vd_scsi_disk_query_task(disk, 0, true, 7));
    assert_false(vd_scsi_disk_query_task(disk, 0, true, 8));
    assert_false(vd_scsi_disk_query_task(disk, 1, false, 0));
    vd_scsi_disk_abort_task(disk, 0, 7, tmf_done, &r);
    assert_int_equal(r.calls, 0);
    wait_tmf(&r);
    assert_true(r.found);
    assert_int_equal(t.completions, 1);
    assert_string_equal(order->str, "CT");
    assert_int_equal(t.req.response, VD_SCSI_RESP_ABORTED);
    assert_int_equal(t.req.sense_len, 0);
    assert_int_equal(t.req.in_resid, sizeof(bufs[0]));
    assert_false(vd_scsi_disk_query_task(disk, 0, true, 7));
}

/* ABORT TASK for a tag (or nexus) with no command: not found, answered later, others untouched. */
static void test_abort_task_not_found(void **state)
{
    TCmd t;
    TmfResult r = { 0 };
    submit_read(&t, 1, 7, 0);
    vd_scsi_disk_abort_task(disk, 0, 7, tmf_done, &r);
    assert_int_equal(r.calls, 0);
    wait_tmf(&r);
    assert_false(r.found);
    tcmd_wait(&t);
    assert_good(&t);
}

/* ABORT TASK SET ends the commands of one nexus; CLEAR TASK SET those of all. */
static void test_abort_and_clear_task_set(void **state)
{
    TCmd t[4];
    TmfResult r = { 0 };
    submit_read(&t[0], 0, 1, 0);
    submit_read(&t[1], 0, 2, 1);
    submit_read(&t[2], 1, 3, 2);
    vd_scsi_disk_abort_task_set(disk, 0, tmf_done, &r);
    wait_tmf(&r);
    assert_true(r.found);
    assert_int_equal(t[0].req.response, VD_SCSI_RESP_ABORTED);
    assert_int_equal(t[1].req.response, VD_SCSI_RESP_ABORTED);
    tcmd_wait(&t[2]);
    assert_good(&t[2]);

    TmfResult r2 = { 0 };
    submit_read(&t[0], 0, 1, 0);
    submit_read(&t[3], 1, 4, 3);
    vd_scsi_disk_clear_task_set(disk, tmf_done, &r2);
    wait_tmf(&r2);
    assert_int_equal(t[0].req.response, VD_SCSI_RESP_ABORTED);
    assert_int_equal(t[3].req.response, VD_SCSI_RESP_ABORTED);
}

/* LOGICAL UNIT RESET: commands end RESET; 29/03 on every nexus; a stopped unit starts; WCE is kept. */
static void test_lun_reset(void **state)
{
    TCmd t[2], u;
    TmfResult r = { 0 };
    uint8_t stop[6] = { 0x1b, 0, 0, 0, 0x04, 0 };
    RUN(disk, &u, stop, NULL, 0, NULL, 0);
    assert_good(&u);
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    uint8_t inq[6] = { 0x12, 0, 0, 0, 36, 0 };
    tcmd_submit(disk, &t[0], 0, inq, 6, NULL, 0, bufs[0], 36);
    t[0].req.complete = ordered_complete;
    tcmd_submit(disk, &t[1], 1, inq, 6, NULL, 0, bufs[1], 36);
    t[1].req.complete = ordered_complete;
    vd_scsi_disk_lun_reset(disk, tmf_done, &r);
    wait_tmf(&r);
    assert_int_equal(t[0].completions, 1);
    assert_int_equal(t[1].completions, 1);
    uint8_t tur[6] = { 0 };
    for (unsigned n = 0; n < 2; n++) {
        run_nx(disk, &u, n, tur, 6, NULL, 0, NULL, 0);
        assert_sense(&u, 0x6, 0x29, 0x03);
        run_nx(disk, &u, n, tur, 6, NULL, 0, NULL, 0);
        assert_good(&u);               /* started again */
    }
    assert_false(vd_blk_write_cache(blk));
}

/* I_T NEXUS RESET: only that nexus's commands end, and only it gets 29/07. */
static void test_nexus_reset(void **state)
{
    TCmd t[2], u;
    TmfResult r = { 0 };
    submit_read(&t[0], 0, 1, 0);
    submit_read(&t[1], 1, 2, 1);
    vd_scsi_disk_nexus_reset(disk, 1, tmf_done, &r);
    wait_tmf(&r);
    assert_int_equal(t[1].req.response, VD_SCSI_RESP_RESET);
    tcmd_wait(&t[0]);
    assert_good(&t[0]);
    uint8_t tur[6] = { 0 };
    run_nx(disk, &u, 0, tur, 6, NULL, 0, NULL, 0);
    assert_good(&u);
    run_nx(disk, &u, 1, tur, 6, NULL, 0, NULL, 0);
    assert_sense(&u, 0x6, 0x29, 0x07);
}

/*
 * A hard reset that turns the write cache off (write-through default) waits
 * for its flush; a failed flush is not dropped: after 29/00 every nexus gets
 * it as a deferred error (response code 71h, WRITE ERROR).
 */
static void test_hard_reset_flush_error(void **state)
{
    vd_scsi_disk_free(disk);
    vd_blk_close(blk);
    g_autofree char *opts = g_strdup_printf("file=%s,cache=writethrough", image);
    blk = blk_open_ok(opts);
    disk = disk_new_ok(blk, 0);
    assert_int_equal(vd_blk_set_write_cache_sync(blk, true), 0);
    static uint8_t data[512];
    uint8_t wr[10] = { 0x2a, 0, 0, 0, 0, 9, 0, 0, 1, 0 };
    TCmd u;
    run_nx(disk, &u, 0, wr, 10, data, sizeof(data), NULL, 0);
    assert_sense(&u, 0x6, 0x2a, 0x01);                   /* the host's change above */
    run_nx(disk, &u, 0, wr, 10, data, sizeof(data), NULL, 0);
    assert_good(&u);
    vd_blk_inject_error(blk, VD_FAULT_FLUSH, EIO, 1);
    TmfResult r = { 0 };
    vd_scsi_disk_hard_reset(disk, tmf_done, &r);
    wait_tmf(&r);
    while (vd_scsi_disk_in_flight(disk)) {
        g_main_context_iteration(NULL, TRUE);
    }
    assert_false(vd_blk_write_cache(blk));
    uint8_t tur[6] = { 0 };
    for (unsigned nx = 0; nx < 2; nx++) {
        run_nx(disk, &u, nx, tur, 6, NULL, 0, NULL, 0);
        assert_sense(&u, 0x6, 0x29, 0x00);
        run_nx(disk, &u, nx, tur, 6, NULL, 0, NULL, 0);
        assert_sense(&u, 0x3, 0x0c, 0x00);
        assert_int_equal(u.req.sense[0] & 0x7f, 0x71);
        run_nx(disk, &u, nx, tur, 6, NULL, 0, NULL, 0);
        assert_good(&u);
    }
}

/* Hard reset: WCE back to the power-on value; 29/00 replaces older unit attentions. */
static void test_hard_reset(void **state)
{
    TCmd u;
    TmfResult r = { 0 };
    assert_int_equal(vd_blk_set_write_cache_sync(blk, false), 0);
    vd_scsi_disk_set_unit_attention(disk, 0, VD_SENSE_MODE_PARAMS_CHANGED);
    vd_scsi_disk_hard_reset(disk, tmf_done, &r);
    wait_tmf(&r);
    assert_false(r.found);
    assert_true(vd_blk_write_cache(blk));
    uint8_t tur[6] = { 0 };
    run_nx(disk, &u, 0, tur, 6, NULL, 0, NULL, 0);
    assert_sense(&u, 0x6, 0x29, 0x00);
    run_nx(disk, &u, 0, tur, 6, NULL, 0, NULL, 0);
    assert_good(&u);
}

/* Unit attentions are reported oldest first, once each; a reset supersedes older ones. */
static void test_unit_attention_queue(void **state)
{
    TCmd u;
    uint8_t tur[6] = { 0 };
    vd_scsi_disk_set_unit_attention(disk, 0, VD_SENSE_MODE_PARAMS_CHANGED);
    vd_scsi_disk_set_unit_attention(disk, 0, VD_SENSE_LUNS_CHANGED);
    vd_scsi_disk_set_unit_attention(disk, 0, VD_SENSE_MODE_PARAMS_CHANGED);   /* duplicate */
    run_nx(disk, &u, 0, tur, 6, NULL, 0, NULL, 0);
    assert_sense(&u, 0x6, 0x2a, 0x01);
    run_nx(disk, &u, 0, tur, 6, NULL, 0, NULL, 0);
    assert_sense(&u, 0x6, 0x3f, 0x0e);
    run_nx(disk, &u, 0, tur, 6, NULL, 0, NULL, 0);
    assert_good(&u);
    vd_scsi_disk_set_unit_attention(disk, 0, VD_SENSE_MODE_PARAMS_CHANGED);
    vd_scsi_disk_set_unit_attention(disk, 0, VD_SENSE_LUN_RESET);
    run_nx(disk, &u, 0, tur, 6, NULL, 0, NULL, 0);
    assert_sense(&u, 0x6, 0x29, 0x03);
    run_nx(disk, &u, 0, tur, 6, NULL, 0, NULL, 0);
    assert_good(&u);
    /* Unsupported opcodes report the unit attention first, as any command does. */
    vd_scsi_disk_set_unit_attention(disk, 0, VD_SENSE_MODE_PARAMS_CHANGED);
    uint8_t bad[6] = { 0x02 };
    run_nx(disk, &u, 0, bad, 6, NULL, 0, NULL, 0);
    assert_sense(&u, 0x6, 0x2a, 0x01);
    run_nx(disk, &u, 0, bad, 6, NULL, 0, NULL, 0);
    assert_sense(&u, 0x5, 0x20, 0x00);
}

/* Freeing a disk with commands in flight completes every one of them first. */
static void test_free_with_commands_in_flight(void **state)
{
    TCmd t[4];
    uint8_t sc[10] = { 0x35, 0x02 };                        /* plus a background flush */
    TCmd s;
    uint8_t w[10] = { 0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
    RUN(disk, &s, w, bufs[5], 512, NULL, 0);
    for (unsigned i = 0; i < 4; i++) {
        submit_read(&t[i], 0, i, i);
    }
    tcmd_submit(disk, &s, 0, sc, 10, NULL, 0, NULL, 0);
    assert_true(vd_scsi_disk_in_flight(disk) >= 4);
    vd_scsi_disk_free(disk);
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(t[i].completions, 1);
        assert_good(&t[i]);
    }
    assert_int_equal(s.completions, 1);
    disk = disk_new_ok(blk, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_abort_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_task_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_and_clear_task_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lun_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nexus_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hard_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hard_reset_flush_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unit_attention_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_commands_in_flight, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
