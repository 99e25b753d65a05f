/*
 * test-scsi-cmds.c - the SCSI disk's non-data commands straight from CDBs:
 * dispatch and CDB checks, unit attentions, REQUEST SENSE, INQUIRY and its
 * VPD pages, READ CAPACITY, REPORT LUNS, START STOP UNIT, PREVENT ALLOW.
 */
#include "scsi-test-util.h"

#define NULL_BLOCKS 131072ull   /* 64 MiB null disk */

static VdBlockBackend *blk;
static VdScsiDisk *disk;

static int setup(void **state)
{
    blk = blk_open_ok("driver=null,size=67108864");
    disk = disk_new_ok(blk, 0);
    return 0;
}

static int teardown(void **state)
{
    vd_scsi_disk_free(disk);
    vd_blk_close(blk);
    return 0;
}

/* A new disk reports POWER ON 29/00 once per nexus, except to INQUIRY/REPORT LUNS; REQUEST SENSE clears it. */
static void test_power_on_unit_attention(void **state)
{
    VdScsiDisk *d = vd_scsi_disk_new(blk, NULL, NULL, NULL);
    TCmd t;
    uint8_t inq[6] = { 0x12, 0, 0, 0, 36, 0 };
    uint8_t data[64];
    RUN(d, &t, inq, NULL, 0, data, 36);
    assert_good(&t);
    assert_true(vd_scsi_disk_has_unit_attention(d, 0));
    uint8_t rl[12] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0 };
    RUN(d, &t, rl, NULL, 0, data, 64);
    assert_good(&t);
    assert_true(vd_scsi_disk_has_unit_attention(d, 0));
    uint8_t rs[6] = { 0x03, 0, 0, 0, 18, 0 };
    RUN(d, &t, rs, NULL, 0, data, 18);
    assert_good(&t);
    assert_int_equal(data[0], 0x70);
    assert_int_equal(data[2], 0x6);
    assert_int_equal(data[12], 0x29);
    assert_int_equal(data[13], 0x00);
    assert_false(vd_scsi_disk_has_unit_attention(d, 0));
    /* Nexus 1 still has its own. */
    assert_true(vd_scsi_disk_has_unit_attention(d, 1));
    clear_power_on_ua(d, 1);
    RUN(d, &t, rs, NULL, 0, data, 18);
    assert_good(&t);
    assert_int_equal(data[2], 0);
    assert_int_equal(data[12], 0);
    vd_scsi_disk_free(d);
}

/* Empty slots of the opcode table: 20/00 with the field pointer on byte 0. */
static void test_invalid_opcodes(void **state)
{
    static const uint8_t ops[] = { 0x01, 0x04, 0x07, 0x0b, 0x1d, 0x3b, 0x3c, 0x4d, 0x7f, 0x89, 0xa2, 0xa5,
                                   0xc0, 0xff };
    for (size_t i = 0; i < sizeof(ops); i++) {
        uint8_t cdb[16] = { ops[i] };
        TCmd t;
        RUN(disk, &t, cdb, NULL, 0, NULL, 0);
        assert_sense(&t, 0x5, 0x20, 0x00);
        assert_field(&t, true, 0, -1);
    }
}

/* NACA and LINK in the CONTROL byte, a CDB shorter than its opcode needs, empty CDB. */
static void test_malformed_cdb(void **state)
{
    TCmd t;
    uint8_t tur_naca[6] = { 0x00, 0, 0, 0, 0, 0x04 };
    RUN(disk, &t, tur_naca, NULL, 0, NULL, 0);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 5, 2);
    uint8_t read10_link[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x01 };
    uint8_t buf[512];
    RUN(disk, &t, read10_link, NULL, 0, buf, sizeof(buf));
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 9, 0);
    uint8_t read16_short[10] = { 0x88 };
    RUN(disk, &t, read16_short, NULL, 0, buf, sizeof(buf));
    assert_sense(&t, 0x5, 0x24, 0x00);
    tcmd_submit(disk, &t, 0, read16_short, 0, NULL, 0, NULL, 0);
    tcmd_wait(&t);
    assert_sense(&t, 0x5, 0x24, 0x00);
    /* An out-of-range nexus is a transport bug: HARDWARE ERROR, never a crash. */
    tcmd_submit(disk, &t, VD_SCSI_NEXUS_MAX, read16_short, 1, NULL, 0, NULL, 0);
    tcmd_wait(&t);
    assert_sense(&t, 0x4, 0x44, 0x00);
}

/* REQUEST SENSE: fixed format only, allocation length honoured. */
static void test_request_sense(void **state)
{
    TCmd t;
    uint8_t data[32];
    uint8_t desc[6] = { 0x03, 0x01, 0, 0, 18, 0 };
    RUN(disk, &t, desc, NULL, 0, data, 18);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 1, 0);
    uint8_t rs8[6] = { 0x03, 0, 0, 0, 8, 0 };
    memset(data, 0xaa, sizeof(data));
    RUN(disk, &t, rs8, NULL, 0, data, sizeof(data));
    assert_good(&t);
    assert_int_equal(t.req.in_resid, sizeof(data) - 8);
    assert_int_equal(data[0], 0x70);
    assert_int_equal(data[8], 0xaa);
}

/* Standard INQUIRY data and its CDB checks. */
static void test_inquiry_standard(void **state)
{
    TCmd t;
    uint8_t data[96];
    uint8_t inq[6] = { 0x12, 0, 0, 0, 96, 0 };
    memset(data, 0xee, sizeof(data));
    RUN(disk, &t, inq, NULL, 0, data, sizeof(data));
    assert_good(&t);
    assert_int_equal(t.req.in_resid, 96 - 36);
    assert_int_equal(data[0], 0x00);
    assert_int_equal(data[1] & 0x80, 0);
    assert_int_equal(data[2], 0x06);
    assert_int_equal(data[3] & 0x0f, 2);
    assert_int_equal(data[4], 31);
    assert_int_equal(data[7] & 0x02, 0x02);
    assert_memory_equal(data + 8, "VDISK   ", 8);
    assert_memory_equal(data + 16, "VDISK DISK      ", 16);
    assert_int_equal(data[36], 0xee);
    /* Truncated to the allocation length. */
    uint8_t inq5[6] = { 0x12, 0, 0, 0, 5, 0 };
    memset(data, 0xee, sizeof(data));
    RUN(disk, &t, inq5, NULL, 0, data, sizeof(data));
    assert_good(&t);
    assert_int_equal(t.req.in_resid, 96 - 5);
    assert_int_equal(data[4], 31);
    assert_int_equal(data[5], 0xee);
    /* CMDDT=1, a page code without EVPD, reserved bits. */
    uint8_t cmddt[6] = { 0x12, 0x02, 0, 0, 36, 0 };
    RUN(disk, &t, cmddt, NULL, 0, data, 36);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 1, 1);
    uint8_t pagenoevpd[6] = { 0x12, 0x00, 0x80, 0, 36, 0 };
    RUN(disk, &t, pagenoevpd, NULL, 0, data, 36);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 2, -1);
    uint8_t resv[6] = { 0x12, 0x10, 0, 0, 36, 0 };
    RUN(disk, &t, resv, NULL, 0, data, 36);
    assert_sense(&t, 0x5, 0x24, 0x00);
    /* Buffer smaller than the data the command returns: OVERRUN, nothing written. */
    memset(data, 0xee, sizeof(data));
    RUN(disk, &t, inq, NULL, 0, data, 10);
    assert_int_equal(t.req.response, VD_SCSI_RESP_OVERRUN);
    assert_int_equal(data[0], 0xee);
}

/* Fetch VPD page into data; returns the page length field. */
static unsigned vpd(uint8_t page, uint8_t *data, size_t len)
{
    TCmd t;
    uint8_t cdb[6] = { 0x12, 0x01, page, (uint8_t)(len >> 8), (uint8_t)len, 0 };
    RUN(disk, &t, cdb, NULL, 0, data, len);
    assert_good(&t);
    assert_int_equal(data[0], 0x00);
    assert_int_equal(data[1], page);
    return (unsigned)(data[2] << 8 | data[3]);
}

/* VPD 0x80 serial and the NAA id of VPD 0x83 of a fresh disk on an image file (no serial=). */
static void image_ids(const char *path, char serial[65], uint64_t *naa)
{
    g_autofree char *opts = g_strdup_printf("file=%s", path);
    VdBlockBackend *b = blk_open_ok(opts);
    VdScsiDisk *d = disk_new_ok(b, 0);
    VdScsiDisk *saved = disk;
    disk = d;
    uint8_t data[255];
    unsigned n = vpd(0x80, data, sizeof(data));
    assert_true(n > 0 && n <= 64);
    memcpy(serial, data + 4, n);
    serial[n] = 0;
    vpd(0x83, data, sizeof(data));
    *naa = vd_ld_be64(data + 8 + data[7] + 4);
    disk = saved;
    vd_scsi_disk_free(d);
    vd_blk_close(b);
}

/* Issue 8/8 finding 7: two images give two serials and NAA ids; the same image opened again, the same. */
static void test_default_ids_per_image(void **state)
{
    char *a = make_image(1u << 20), *b = make_image(1u << 20);
    char sa[65], sb[65], sa2[65];
    uint64_t na, nb, na2;
    image_ids(a, sa, &na);
    image_ids(b, sb, &nb);
    image_ids(a, sa2, &na2);
    assert_string_not_equal(sa, sb);
    assert_true(na != nb);
    assert_string_equal(sa, sa2);
    assert_true(na == na2);
    unlink_image(a);
    unlink_image(b);
}

/* Every VPD page, and an unsupported one. */
static void test_inquiry_vpd(void **state)
{
    uint8_t data[255];
    static const uint8_t pages[] = { 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 };
    assert_int_equal(vpd(0x00, data, sizeof(data)), sizeof(pages));
    assert_memory_equal(data + 4, pages, sizeof(pages));

    /* No serial=: the image's own id (random for driver=null). */
    const char *uid = vd_blk_unique_id(blk);
    unsigned n = vpd(0x80, data, sizeof(data));
    assert_int_equal(n, strlen(uid));
    assert_memory_equal(data + 4, uid, n);

    n = vpd(0x83, data, sizeof(data));
    /* T10 vendor designator, then NAA. */
    assert_int_equal(data[4] & 0x0f, 2);
    assert_int_equal(data[5] & 0x3f, 0x01);
    unsigned l1 = data[7];
    g_autofree char *t10 = g_strdup_printf("VDISK   %s", uid);
    assert_int_equal(l1, strlen(t10));
    assert_memory_equal(data + 8, t10, l1);
    const uint8_t *naa = data + 8 + l1;
    assert_int_equal(naa[0] & 0x0f, 1);
    assert_int_equal(naa[1] & 0x3f, 0x03);
    assert_int_equal(naa[3], 8);
    assert_int_equal(naa[4] >> 4, 3);
    assert_int_equal(n, 4 + l1 + 12);

    assert_int_equal(vpd(0xb0, data, sizeof(data)), 0x3c);
    assert_int_equal(data[4] & 1, 1);                            /* WSNZ */
    assert_int_equal(vd_ld_be32(data + 8), VD_SCSI_MAX_XFER_BLOCKS);
    assert_int_equal(vd_ld_be32(data + 12), VD_SCSI_OPT_XFER_BLOCKS);
    assert_int_equal(vd_ld_be32(data + 20), VD_SCSI_MAX_UNMAP_BLOCKS);
    assert_int_equal(vd_ld_be32(data + 24), VD_SCSI_MAX_UNMAP_DESCS);
    assert_int_equal(vd_ld_be64(data + 36), VD_SCSI_MAX_WS_BLOCKS);

    assert_int_equal(vpd(0xb1, data, sizeof(data)), 0x3c);
    assert_int_equal(data[4] << 8 | data[5], 1);                 /* non-rotating */

    assert_int_equal(vpd(0xb2, data, sizeof(data)), 4);
    assert_int_equal(data[5] & 0xe0, 0xe0);                      /* LBPU LBPWS LBPWS10 */
    assert_int_equal(data[5] & 0x1c, 0);                         /* LBPRZ=0 */

    TCmd t;
    uint8_t bad[6] = { 0x12, 0x01, 0x81, 0, 255, 0 };
    RUN(disk, &t, bad, NULL, 0, data, sizeof(data));
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 2, -1);
}

/* READ CAPACITY(10) and (16), PMI rules, service action. */
static void test_read_capacity(void **state)
{
    TCmd t;
    uint8_t data[32];
    uint8_t rc10[10] = { 0x25 };
    RUN(disk, &t, rc10, NULL, 0, data, 8);
    assert_good(&t);
    assert_int_equal(vd_ld_be32(data), NULL_BLOCKS - 1);
    assert_int_equal(vd_ld_be32(data + 4), 512);
    uint8_t rc10_lba[10] = { 0x25, 0, 0, 0, 0, 1 };
    RUN(disk, &t, rc10_lba, NULL, 0, data, 8);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 2, -1);
    uint8_t rc10_pmi[10] = { 0x25, 0, 0, 0, 0, 1, 0, 0, 1, 0 };
    RUN(disk, &t, rc10_pmi, NULL, 0, data, 8);
    assert_good(&t);

    uint8_t rc16[16] = { 0x9e, 0x10 };
    vd_st_be32(rc16 + 10, 32);
    RUN(disk, &t, rc16, NULL, 0, data, 32);
    assert_good(&t);
    assert_int_equal(vd_ld_be64(data), NULL_BLOCKS - 1);
    assert_int_equal(vd_ld_be32(data + 8), 512);
    assert_int_equal(data[14] & 0x80, 0x80);                     /* LBPME */
    vd_st_be32(rc16 + 10, 12);
    memset(data, 0xee, sizeof(data));
    RUN(disk, &t, rc16, NULL, 0, data, 32);
    assert_good(&t);
    assert_int_equal(t.req.in_resid, 20);
    assert_int_equal(data[12], 0xee);
    uint8_t sa[16] = { 0x9e, 0x11 };
    RUN(disk, &t, sa, NULL, 0, data, 32);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 1, 4);
}

/* Capacity beyond 32 bits: READ CAPACITY(10) says 0xFFFFFFFF. */
static void test_read_capacity_large(void **state)
{
    VdBlockBackend *b = blk_open_ok("driver=null,size=4398046511104");  /* 4 TiB */
    VdScsiDisk *d = disk_new_ok(b, 0);
    TCmd t;
    uint8_t data[32];
    uint8_t rc10[10] = { 0x25 };
    RUN(d, &t, rc10, NULL, 0, data, 8);
    assert_good(&t);
    assert_int_equal(vd_ld_be32(data), 0xffffffffu);
    uint8_t rc16[16] = { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32 };
    RUN(d, &t, rc16, NULL, 0, data, 32);
    assert_good(&t);
    assert_int_equal(vd_ld_be64(data), (4398046511104ull / 512) - 1);
    vd_scsi_disk_free(d);
    vd_blk_close(b);
}

/* REPORT LUNS of a lone disk and of a target with several LUNs added over time. */
static void test_report_luns(void **state)
{
    TCmd t;
    uint8_t data[128];
    uint8_t rl[12] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 0, 0 };
    RUN(disk, &t, rl, NULL, 0, data, sizeof(data));
    assert_good(&t);
    assert_int_equal(vd_ld_be32(data), 8);
    assert_int_equal(t.req.in_resid, 128 - 16);

    VdScsiTarget *tg = vd_scsi_target_new();
    VdBlockBackend *b2 = blk_open_ok("driver=null,size=1048576");
    VdBlockBackend *b3 = blk_open_ok("driver=null,size=1048576");
    VdScsiDisk *d2 = disk_new_ok(b2, 1);
    VdScsiDiskConfig c3 = { .lun = 300 };
    VdScsiDisk *d3 = vd_scsi_disk_new(b3, &c3, NULL, NULL);
    clear_power_on_ua(d3, 0);
    assert_true(vd_scsi_target_add(tg, disk, NULL));
    assert_true(vd_scsi_target_add(tg, d3, NULL));
    /* The disk present before gets REPORTED LUNS DATA HAS CHANGED. */
    uint8_t tur[6] = { 0 };
    RUN(disk, &t, tur, NULL, 0, NULL, 0);
    assert_sense(&t, 0x6, 0x3f, 0x0e);
    assert_true(vd_scsi_target_add(tg, d2, NULL));
    GError *err = NULL;
    assert_false(vd_scsi_target_add(tg, d2, &err));
    g_clear_error(&err);
    assert_int_equal(vd_scsi_target_count(tg), 3);
    assert_int_equal(vd_scsi_target_lun_at(tg, 1), 1);
    assert_ptr_equal(vd_scsi_target_find(tg, 300), d3);
    assert_null(vd_scsi_target_find(tg, 2));

    RUN(d3, &t, rl, NULL, 0, data, sizeof(data));
    assert_good(&t);
    assert_int_equal(vd_ld_be32(data), 24);
    static const uint8_t want[24] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                      0x41, 0x2c, 0, 0, 0, 0, 0, 0 };
    assert_memory_equal(data + 8, want, 24);
    /* SELECT REPORT 1 (well-known LUNs only): none. */
    uint8_t rl1[12] = { 0xa0, 0, 1, 0, 0, 0, 0, 0, 0, 128, 0, 0 };
    RUN(d3, &t, rl1, NULL, 0, data, sizeof(data));
    assert_good(&t);
    assert_int_equal(vd_ld_be32(data), 0);
    uint8_t rlbad[12] = { 0xa0, 0, 3, 0, 0, 0, 0, 0, 0, 128, 0, 0 };
    RUN(d3, &t, rlbad, NULL, 0, data, sizeof(data));
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 2, -1);
    uint8_t rlshort[12] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0 };
    RUN(d3, &t, rlshort, NULL, 0, data, sizeof(data));
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 6, -1);

    vd_scsi_disk_free(d2);
    assert_int_equal(vd_scsi_target_count(tg), 2);
    vd_scsi_target_free(tg);
    vd_scsi_disk_free(d3);
    vd_blk_close(b2);
    vd_blk_close(b3);
}

/* START STOP UNIT: stopped unit is NOT READY 04/02 for medium commands; bad fields. */
static void test_start_stop(void **state)
{
    TCmd t;
    uint8_t data[512];
    uint8_t stop[6] = { 0x1b, 0, 0, 0, 0x00, 0 };
    uint8_t start[6] = { 0x1b, 0, 0, 0, 0x01, 0 };
    uint8_t tur[6] = { 0 };
    uint8_t read10[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
    RUN(disk, &t, stop, NULL, 0, NULL, 0);
    assert_good(&t);
    RUN(disk, &t, tur, NULL, 0, NULL, 0);
    assert_sense(&t, 0x2, 0x04, 0x02);
    RUN(disk, &t, read10, NULL, 0, data, 512);
    assert_sense(&t, 0x2, 0x04, 0x02);
    uint8_t inq[6] = { 0x12, 0, 0, 0, 36, 0 };
    RUN(disk, &t, inq, NULL, 0, data, 36);
    assert_good(&t);
    uint8_t rs[6] = { 0x03, 0, 0, 0, 18, 0 };
    RUN(disk, &t, rs, NULL, 0, data, 18);
    assert_good(&t);
    assert_int_equal(data[2], 0x2);
    assert_int_equal(data[12], 0x04);
    assert_int_equal(data[13], 0x02);
    RUN(disk, &t, start, NULL, 0, NULL, 0);
    assert_good(&t);
    RUN(disk, &t, read10, NULL, 0, data, 512);
    assert_good(&t);
    /* Stop with IMMED and with NO_FLUSH also stop. */
    uint8_t stop_immed[6] = { 0x1b, 1, 0, 0, 0x00, 0 };
    RUN(disk, &t, stop_immed, NULL, 0, NULL, 0);
    assert_good(&t);
    RUN(disk, &t, tur, NULL, 0, NULL, 0);
    assert_sense(&t, 0x2, 0x04, 0x02);
    uint8_t stop_nf[6] = { 0x1b, 0, 0, 0, 0x04, 0 };
    RUN(disk, &t, stop_nf, NULL, 0, NULL, 0);
    assert_good(&t);
    RUN(disk, &t, start, NULL, 0, NULL, 0);
    assert_good(&t);
    uint8_t pc[6] = { 0x1b, 0, 0, 0, 0x31, 0 };
    RUN(disk, &t, pc, NULL, 0, NULL, 0);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 4, 7);
    uint8_t loej[6] = { 0x1b, 0, 0, 0, 0x02, 0 };
    RUN(disk, &t, loej, NULL, 0, NULL, 0);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 4, 1);
}

/* PREVENT ALLOW MEDIUM REMOVAL: allow is fine, prevent is rejected (not removable). */
static void test_prevent_allow(void **state)
{
    TCmd t;
    uint8_t allow[6] = { 0x1e, 0, 0, 0, 0, 0 };
    uint8_t prevent[6] = { 0x1e, 0, 0, 0, 1, 0 };
    RUN(disk, &t, allow, NULL, 0, NULL, 0);
    assert_good(&t);
    RUN(disk, &t, prevent, NULL, 0, NULL, 0);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 4, 0);
}

/* Issue REPORT SUPPORTED OPERATION CODES with options, opcode, service action. */
static void rsoc(TCmd *t, uint8_t byte2, uint8_t opc, uint16_t sa, uint8_t *data, size_t len)
{
    uint8_t cdb[12] = { 0xa3, 0x0c, byte2, opc };
    vd_st_be16(cdb + 4, sa);
    vd_st_be32(cdb + 6, (uint32_t)len);
    RUN(disk, t, cdb, NULL, 0, data, len);
}

/* REPORT SUPPORTED OPERATION CODES: the list, single commands, usage data, timeouts, bad fields. */
static void test_report_supported_opcodes(void **state)
{
    TCmd t;
    static uint8_t data[8192];
    rsoc(&t, 0x00, 0, 0, data, sizeof(data));
    assert_good(&t);
    uint32_t len = vd_ld_be32(data);
    assert_int_equal(len % 8, 0);
    assert_int_equal(len / 8, 30);                  /* every slot of the table; UNMAP too (null discards) */
    bool seen_ws16 = false, seen_rc16 = false;
    for (uint32_t o = 4; o < 4 + len; o += 8) {
        /* Every listed opcode executes (not INVALID OPCODE). */
        uint8_t cdb[16] = { data[o], (uint8_t)vd_ld_be32(data + o) };
        cdb[1] = data[o + 3];
        TCmd u;
        run_nx(disk, &u, 0, cdb, data[o + 7], NULL, 0, NULL, 0);
        assert_false(u.req.status == VD_SCSI_CHECK_CONDITION && u.req.sense[12] == 0x20);
        seen_ws16 |= data[o] == 0x93 && data[o + 7] == 16;
        seen_rc16 |= data[o] == 0x9e && data[o + 3] == 0x10 && (data[o + 5] & 1);
    }
    assert_true(seen_ws16);
    assert_true(seen_rc16);
    /* With RCTD every descriptor carries a 12-byte timeouts descriptor. */
    rsoc(&t, 0x80, 0, 0, data, sizeof(data));
    assert_good(&t);
    assert_int_equal(vd_ld_be32(data), 30 * 20);
    assert_int_equal(data[4 + 5] & 0x02, 0x02);
    assert_int_equal(data[4 + 8 + 1], 0x0a);
    /* One command, as Linux's scsi_report_opcode asks (options 1): WRITE SAME(16) is supported. */
    rsoc(&t, 0x01, 0x93, 0, data, 512);
    assert_good(&t);
    assert_int_equal(data[1] & 0x07, 0x03);
    assert_int_equal(data[2] << 8 | data[3], 16);
    assert_int_equal(data[4], 0x93);
    assert_int_equal(data[5], 0x09);
    rsoc(&t, 0x01, 0x41, 0, data, 512);
    assert_good(&t);
    assert_int_equal(data[1] & 0x07, 0x03);
    assert_int_equal(data[2] << 8 | data[3], 10);
    rsoc(&t, 0x01, 0x04, 0, data, 512);             /* FORMAT UNIT: not supported */
    assert_good(&t);
    assert_int_equal(data[1] & 0x07, 0x01);
    rsoc(&t, 0x01, 0x9e, 0, data, 512);             /* has service actions: options 1 is invalid */
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 2, 2);
    rsoc(&t, 0x02, 0x9e, 0x10, data, 512);
    assert_good(&t);
    assert_int_equal(data[1] & 0x07, 0x03);
    assert_int_equal(data[5], 0x10);
    rsoc(&t, 0x02, 0x9e, 0x11, data, 512);
    assert_good(&t);
    assert_int_equal(data[1] & 0x07, 0x01);
    rsoc(&t, 0x02, 0x28, 0, data, 512);             /* no service actions: options 2 is invalid */
    assert_sense(&t, 0x5, 0x24, 0x00);
    rsoc(&t, 0x83, 0x28, 0, data, 512);             /* options 3 + RCTD */
    assert_good(&t);
    assert_int_equal(data[1], 0x83);
    assert_int_equal(data[4 + 10 + 1], 0x0a);
    rsoc(&t, 0x04, 0x28, 0, data, 512);
    assert_sense(&t, 0x5, 0x24, 0x00);
    rsoc(&t, 0x08, 0x28, 0, data, 512);             /* reserved bits */
    assert_sense(&t, 0x5, 0x24, 0x00);
    uint8_t other_sa[12] = { 0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 1, 0 };
    RUN(disk, &t, other_sa, NULL, 0, data, 256);
    assert_sense(&t, 0x5, 0x24, 0x00);
    assert_field(&t, true, 1, 4);
    /* Truncated to the allocation length. */
    memset(data, 0xee, 16);
    rsoc(&t, 0x00, 0, 0, data, 6);
    assert_good(&t);
    assert_int_equal(data[6], 0xee);
}

/* Configuration checks of vd_scsi_disk_new. */
static void test_config(void **state)
{
    GError *err = NULL;
    VdScsiDiskConfig c = { .lun = VD_SCSI_LUN_MAX };
    assert_null(vd_scsi_disk_new(blk, &c, NULL, &err));
    g_clear_error(&err);
    VdScsiDiskConfig c2 = { .vendor = "TOOLONGVENDOR" };
    assert_null(vd_scsi_disk_new(blk, &c2, NULL, &err));
    g_clear_error(&err);
    VdScsiDiskConfig c3 = { .serial = "bad\nserial" };
    assert_null(vd_scsi_disk_new(blk, &c3, NULL, &err));
    g_clear_error(&err);
    assert_null(vd_scsi_disk_new(NULL, NULL, NULL, &err));
    g_clear_error(&err);
    VdScsiDiskConfig c4 = { .serial = "SER123", .vendor = "ACME", .product = "Disk" };
    VdScsiDisk *d = vd_scsi_disk_new(blk, &c4, NULL, &err);
    assert_non_null(d);
    TCmd t;
    uint8_t data[64];
    uint8_t cdb[6] = { 0x12, 0x01, 0x80, 0, 64, 0 };
    RUN(d, &t, cdb, NULL, 0, data, sizeof(data));
    assert_good(&t);
    assert_int_equal(data[3], 6);
    assert_memory_equal(data + 4, "SER123", 6);
    uint8_t inq[6] = { 0x12, 0, 0, 0, 36, 0 };
    RUN(d, &t, inq, NULL, 0, data, 36);
    assert_memory_equal(data + 8, "ACME    Disk            ", 24);
    vd_scsi_disk_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_power_on_unit_attention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_opcodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_cdb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_sense, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inquiry_standard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inquiry_vpd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_ids_per_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_capacity_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_luns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prevent_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_supported_opcodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
