/*
 * fuzz-scsi.c - libFuzzer target: CDBs, MODE SELECT parameter lists and task
 * management functions straight into the transport-independent SCSI disk
 * (include/hw/scsi.h) on a null backend.  The input is a list of operations
 * (see the Op enum); docs/fuzzing.md describes the format and the oracles:
 * every request completes exactly once with a well-formed answer, every TMF
 * reports done, and when nothing is outstanding the backend is idle.
 */
#include "fuzz-common.h"
#include "hw/scsi.h"

#include <string.h>

#define SLOTS      32
#define DISK_BYTES (256u << 10)   /* small: VERIFY reads its whole range, every read fills its buffer */
#define OUT_MAX    8192
#define IN_MAX     (64u << 10)

typedef struct Slot {
    VdScsiRequest req;
    struct iovec out, in;
    uint8_t *out_buf, *in_buf;
    size_t out_len, in_len;
    unsigned completions;
    bool busy;
} Slot;

typedef struct Rig {
    VdBlockBackend *blk;
    VdScsiDisk *disk;
    Slot slot[SLOTS];
    unsigned pending_cmds, pending_tmfs;
} Rig;

/* Input operations. */
enum { OP_CDB, OP_MODE_SELECT, OP_RW, OP_TMF, OP_PUMP, OP_SETTLE, OP__MAX };

/* Backend option strings an input picks from with its first byte. */
/* null-aio disks (no thread hand-off per request), one on the thread pool. */
static const char *const backends[] = {
    "driver=null,size=256K,aio=threads",
    "driver=null-aio,size=256K,cache=writethrough",
    "driver=null-aio,size=256K,cache=unsafe",
    "driver=null-aio,size=256K,read-only=on",
};

/* Opcodes OP_RW picks from: the data path and its neighbours. */
static const uint8_t rw_opcodes[] = {
    0x08, 0x0a, 0x28, 0x2a, 0x2e, 0x2f, 0x35, 0x41, 0x42, 0x88, 0x8a, 0x8e, 0x8f, 0x91, 0x93, 0xa8, 0xaa,
};

/* The ones among them that carry data-out. */
static const uint8_t write_opcodes[] = { 0x0a, 0x2a, 0x2e, 0x41, 0x42, 0x8a, 0x8e, 0x93, 0xaa };

/* Completion of one command: count it and check the answer is well formed. */
static void cmd_done(VdScsiRequest *req, void *opaque)
{
    Rig *r = opaque;
    Slot *s = (Slot *)req;
    if (++s->completions != 1) {
        fz_fail("SCSI command %#x completed %u times", req->cdb[0], s->completions);
    }
    if (req->sense_len != 0 && req->sense_len != VD_SCSI_SENSE_LEN) {
        fz_fail("SCSI command %#x: sense length %u", req->cdb[0], req->sense_len);
    }
    if (req->response == VD_SCSI_RESP_OK && req->status == VD_SCSI_CHECK_CONDITION && !req->sense_len) {
        fz_fail("SCSI command %#x: CHECK CONDITION without sense", req->cdb[0]);
    }
    if (req->in_resid > s->in_len || req->out_resid > s->out_len) {
        fz_fail("SCSI command %#x: residual beyond the buffer", req->cdb[0]);
    }
    r->pending_cmds--;
}

/* A TMF finished. */
static void tmf_done(void *opaque, bool found)
{
    Rig *r = opaque;
    r->pending_tmfs--;
}

/* fz_wait condition: nothing outstanding. */
static bool all_answered(void *opaque)
{
    Rig *r = opaque;
    return r->pending_cmds == 0 && r->pending_tmfs == 0;
}

/* fz_wait condition: a free slot. */
static bool slot_free(void *opaque)
{
    Rig *r = opaque;
    return r->pending_cmds < SLOTS;
}

/* Everything answered: the quiescence oracle applies. */
static void settle(Rig *r)
{
    fz_wait(all_answered, r, "SCSI request or TMF never answered");
    fz_quiescent("scsi");
}

/* Submit a command with cdb and out data taken as given; in_len bytes of data-in room. */
static void submit(Rig *r, unsigned nexus, uint64_t tag, const uint8_t *cdb, size_t cdb_len,
                   const uint8_t *out, size_t out_len, size_t in_len)
{
    fz_wait(slot_free, r, "SCSI slot never freed");
    Slot *s = NULL;
    for (unsigned i = 0; i < SLOTS; i++) {
        if (!r->slot[i].busy || r->slot[i].completions) {
            s = &r->slot[i];
            break;
        }
    }
    g_free(s->out_buf);
    g_free(s->in_buf);
    memset(s, 0, sizeof(*s));
    memcpy(s->req.cdb, cdb, cdb_len);
    s->req.cdb_len = cdb_len;
    s->req.nexus = nexus % VD_SCSI_NEXUS_MAX;
    s->req.tag = tag;
    s->out_buf = g_memdup2(out, out_len);
    s->out_len = out_len;
    s->in_buf = g_malloc(in_len);
    s->in_len = in_len;
    s->out = (struct iovec){ s->out_buf, out_len };
    s->in = (struct iovec){ s->in_buf, in_len };
    s->req.out_iov = &s->out;
    s->req.out_niov = out_len ? 1 : 0;
    s->req.in_iov = &s->in;
    s->req.in_niov = in_len ? 1 : 0;
    s->req.complete = cmd_done;
    s->req.opaque = r;
    s->busy = true;
    r->pending_cmds++;
    vd_scsi_disk_submit(r->disk, &s->req);
    if (s->completions) {
        fz_fail("SCSI command %#x completed inside submit", cdb[0]);
    }
}

/* OP_CDB: any CDB, any data-out, any data-in room. */
static void op_cdb(Rig *r, FzIn *in)
{
    uint8_t cdb[VD_SCSI_CDB_MAX] = { 0 }, out[OUT_MAX];
    unsigned nexus = fz_u8(in);
    uint64_t tag = fz_u8(in);
    size_t cdb_len = 1 + fz_u8(in) % VD_SCSI_CDB_MAX;
    fz_bytes(in, cdb, cdb_len);
    size_t out_len = fz_u16(in) % OUT_MAX;
    memset(out, 0, out_len);
    fz_bytes(in, out, MIN(out_len, 64));
    submit(r, nexus, tag, cdb, cdb_len, out, out_len, fz_u16(in) % IN_MAX);
}

/* OP_MODE_SELECT: MODE SELECT(6) or (10) with PF/SP/RTD bits and a parameter list from the input. */
static void op_mode_select(Rig *r, FzIn *in)
{
    uint8_t cdb[10] = { 0 }, list[512] = { 0 };
    unsigned flags = fz_u8(in);
    size_t len = fz_u8(in) + (flags & 0x80 ? 256 : 0);
    len = MIN(len, sizeof(list));
    fz_bytes(in, list, len);
    bool ten = flags & 0x40;
    cdb[0] = ten ? 0x55 : 0x15;
    cdb[1] = flags & 0x13;            /* PF, RTD, SP */
    size_t alloc = flags & 0x20 ? fz_u16(in) : len;   /* lie about the length sometimes */
    if (ten) {
        cdb[7] = alloc >> 8;
        cdb[8] = alloc;
    } else {
        cdb[4] = alloc;
    }
    submit(r, 0, 0, cdb, ten ? 10 : 6, list, len, 0);
}

/* OP_RW: a data-path command with an LBA near the end of the disk and a short length (mode 1: odd data-out). */
static void op_rw(Rig *r, FzIn *in)
{
    uint8_t cdb[16] = { 0 }, out[OUT_MAX] = { 0 };
    uint8_t op = rw_opcodes[fz_u8(in) % G_N_ELEMENTS(rw_opcodes)];
    uint8_t flags = fz_u8(in), mode = fz_u8(in);
    uint64_t blocks = DISK_BYTES / VD_SCSI_BLOCK_SIZE;
    uint64_t lba = fz_u16(in) % (blocks + 16);
    unsigned count = fz_u8(in) % 17;
    unsigned len = vd_scsi_cdb_length(op);
    cdb[0] = op;
    cdb[1] = flags;
    if (len == 6) {
        cdb[1] = (flags & 0xe0) | ((lba >> 16) & 0x1f);
        cdb[2] = lba >> 8;
        cdb[3] = lba;
        cdb[4] = count;
    } else if (len == 10) {
        for (int i = 0; i < 4; i++) {
            cdb[2 + i] = lba >> (24 - 8 * i);
        }
        cdb[7] = count >> 8;
        cdb[8] = count;
    } else if (len == 12) {
        for (int i = 0; i < 4; i++) {
            cdb[2 + i] = lba >> (24 - 8 * i);
        }
        cdb[9] = count;
    } else {
        for (int i = 0; i < 8; i++) {
            cdb[2 + i] = lba >> (56 - 8 * i);
        }
        cdb[13] = count;
    }
    bool writes = memchr(write_opcodes, op, sizeof(write_opcodes)) != NULL;
    size_t out_len = (mode & 1) ? fz_u8(in) : writes ? (size_t)count * VD_SCSI_BLOCK_SIZE : 0;
    fz_bytes(in, out, MIN(out_len, 32));
    unsigned nexus = fz_u8(in);
    uint64_t tag = fz_u8(in);
    submit(r, nexus, tag, cdb, len ? len : 10, out, MIN(out_len, sizeof(out)),
           writes ? 0 : (size_t)count * VD_SCSI_BLOCK_SIZE);
}

/* OP_TMF: one task management function. */
static void op_tmf(Rig *r, FzIn *in)
{
    unsigned kind = fz_u8(in) % 7, nexus = fz_u8(in) % VD_SCSI_NEXUS_MAX;
    uint64_t tag = fz_u8(in);
    r->pending_tmfs++;
    switch (kind) {
    case 0:
        vd_scsi_disk_abort_task(r->disk, nexus, tag, tmf_done, r);
        break;
    case 1:
        vd_scsi_disk_abort_task_set(r->disk, nexus, tmf_done, r);
        break;
    case 2:
        vd_scsi_disk_clear_task_set(r->disk, tmf_done, r);
        break;
    case 3:
        vd_scsi_disk_lun_reset(r->disk, tmf_done, r);
        break;
    case 4:
        vd_scsi_disk_nexus_reset(r->disk, nexus, tmf_done, r);
        break;
    case 5:
        vd_scsi_disk_hard_reset(r->disk, tmf_done, r);
        break;
    default:
        r->pending_tmfs--;
        vd_scsi_disk_query_task(r->disk, nexus, tag & 1, tag >> 1);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: a fresh disk, the operations, then everything must be answered. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FzIn in = { data, size };
    fz_init();
    Rig r = { 0 };
    r.blk = fz_backend(backends[fz_u8(&in) % G_N_ELEMENTS(backends)]);
    VdScsiDiskConfig cfg = { .lun = 0 };
    r.disk = vd_scsi_disk_new(r.blk, &cfg, NULL, NULL);
    unsigned ops = 0;
    while (fz_more(&in) && ops++ < 256) {
        switch (fz_u8(&in) % OP__MAX) {
        case OP_CDB:
            op_cdb(&r, &in);
            break;
        case OP_MODE_SELECT:
            op_mode_select(&r, &in);
            break;
        case OP_RW:
            op_rw(&r, &in);
            break;
        case OP_TMF:
            op_tmf(&r, &in);
            break;
        case OP_PUMP:
            fz_pump(fz_u8(&in) % 8);
            break;
        default:
            settle(&r);
            break;
        }
    }
    settle(&r);
    vd_scsi_disk_free(r.disk);
    for (unsigned i = 0; i < SLOTS; i++) {
        g_free(r.slot[i].out_buf);
        g_free(r.slot[i].in_buf);
    }
    fz_order_reset();
    return 0;
}
