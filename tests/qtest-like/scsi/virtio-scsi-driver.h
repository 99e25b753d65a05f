/*
 * virtio-scsi-driver.h - a reference virtio-scsi guest driver over the
 * reference virtio-mmio driver (virtio-mmio-driver.h), plus the SCSI
 * commands a disk driver needs, written the way Linux's sd driver sends them.
 *
 * How a command looks in guest memory (virtio 1.2, 5.6.6.1):
 *
 *   device-readable   lun[8] id(le64) task_attr prio crn cdb[cdb_size]   (19 + cdb_size bytes)
 *   device-readable   data-out, if the command has any
 *   device-writable   sense_len(le32) resid(le32) status_qualifier(le16) status response
 *                     sense[sense_size]                                  (12 + sense_size bytes)
 *   device-writable   data-in, if the command has any
 *
 * The LUN field addresses target 0, LUN n as 01 00 (40|n>>8) (n&ff) 00 00 00 00.
 *
 * Write cache: WCE in the caching mode page (0x08), read with MODE SENSE
 * and changed with MODE SELECT; flush with SYNCHRONIZE CACHE; FUA bit in
 * WRITE(10/12/16).  See docs/guest-drivers/scsi.md.
 */
#ifndef VD_VIRTIO_SCSI_DRIVER_H
#define VD_VIRTIO_SCSI_DRIVER_H

#include "virtio-mmio-driver.h"

/* Feature bits (5.6.3). */
#define VSCSI_F_INOUT   0
#define VSCSI_F_HOTPLUG 1
#define VSCSI_F_CHANGE  2
#define VSCSI_F_T10_PI  3

/* Config offsets (5.6.4). */
#define VSCSI_CFG_NUM_QUEUES      0
#define VSCSI_CFG_SEG_MAX         4
#define VSCSI_CFG_MAX_SECTORS     8
#define VSCSI_CFG_CMD_PER_LUN     12
#define VSCSI_CFG_EVENT_INFO_SIZE 16
#define VSCSI_CFG_SENSE_SIZE      20
#define VSCSI_CFG_CDB_SIZE        24
#define VSCSI_CFG_MAX_CHANNEL     28
#define VSCSI_CFG_MAX_TARGET      30
#define VSCSI_CFG_MAX_LUN         32

/* Response codes. */
#define VSCSI_S_OK                 0
#define VSCSI_S_OVERRUN            1
#define VSCSI_S_ABORTED            2
#define VSCSI_S_BAD_TARGET         3
#define VSCSI_S_RESET              4
#define VSCSI_S_FAILURE            9
#define VSCSI_S_FUNCTION_SUCCEEDED 10
#define VSCSI_S_FUNCTION_REJECTED  11
#define VSCSI_S_INCORRECT_LUN      12
#define VSCSI_NO_ANSWER            0xff   /* the driver's marker: the device never answered */

/* Control queue types and TMF subtypes (5.6.6.2). */
#define VSCSI_T_TMF          0
#define VSCSI_T_AN_QUERY     1
#define VSCSI_T_AN_SUBSCRIBE 2
#define VSCSI_TMF_ABORT_TASK         0
#define VSCSI_TMF_ABORT_TASK_SET     1
#define VSCSI_TMF_CLEAR_ACA          2
#define VSCSI_TMF_CLEAR_TASK_SET     3
#define VSCSI_TMF_I_T_NEXUS_RESET    4
#define VSCSI_TMF_LOGICAL_UNIT_RESET 5
#define VSCSI_TMF_QUERY_TASK         6
#define VSCSI_TMF_QUERY_TASK_SET     7

/* Events (5.6.6.3). */
#define VSCSI_T_EVENTS_MISSED   0x80000000u
#define VSCSI_T_TRANSPORT_RESET 1
#define VSCSI_EVT_RESET_RESCAN  1

#define VSCSI_CDB_SIZE   32
#define VSCSI_SENSE_SIZE 96
#define VSCSI_EVENT_BUFS 4

/* Queue numbers. */
enum { VSCSI_CTRLQ = 0, VSCSI_EVENTQ = 1, VSCSI_REQQ = 2 };

typedef struct VdVscsi {
    VdVmmio dev;
    VdVq vq[3];                         /* control, event, first request queue */
    VdGuestAlloc *alloc;
    uint32_t cdb_size, sense_size;      /* what we configured */
    uint64_t event_buf[VSCSI_EVENT_BUFS];
    uint16_t event_head[VSCSI_EVENT_BUFS];   /* descriptor head of each event buffer */
    bool done[3][VMMIO_MAX_QUEUE];      /* used, not yet collected */
    uint32_t used_len[3][VMMIO_MAX_QUEUE];
    uint32_t isr_seen;
    uint64_t next_tag;
} VdVscsi;

/* The result of one command. */
typedef struct VdVscsiResult {
    uint8_t response;                   /* VSCSI_S_*, or VSCSI_NO_ANSWER */
    uint8_t status;                     /* SCSI status (GOOD 0, CHECK CONDITION 2) */
    uint32_t sense_len, resid, used_len;
    uint8_t sense[VSCSI_SENSE_SIZE];
} VdVscsiResult;

/* One command in flight (submitted, not collected). */
typedef struct VdVscsiReq {
    uint16_t head;
    uint64_t resp, data_in;
    uint32_t in_len;
    uint64_t tag;
} VdVscsiReq;

/* Fill an 8-byte LUN field for target/lun (single-level, flat addressing). */
void vd_vscsi_lun(uint8_t out[8], unsigned target, unsigned lun);

/*
 * Initialise dev as virtio-scsi (3.1.1): negotiate features (intersected
 * with the offer), write cdb_size 32 and sense_size 96 as Linux does, set up
 * the control, event and first request queue, DRIVER_OK, then give the
 * device VSCSI_EVENT_BUFS event buffers.
 */
bool vd_vscsi_init(VdVscsi *s, const VdVmmio *dev, uint64_t features, unsigned qsize, VdGuestAlloc *alloc);

/* Build and publish a command (no kick): header, CDB, data-out, response, data-in. */
VdVscsiReq vd_vscsi_submit(VdVscsi *s, const uint8_t lun[8], const uint8_t *cdb, size_t cdb_len,
                           const void *out, uint32_t out_len, uint32_t in_len);
/* Wait for a command's answer; copies data-in (in_len bytes) to in if not NULL. */
void vd_vscsi_collect(VdVscsi *s, const VdVscsiReq *r, VdVscsiResult *res, void *in);
/* Submit, kick, wait; returns the SCSI status, or VSCSI_NO_ANSWER if response != OK. */
uint8_t vd_vscsi_cmd(VdVscsi *s, unsigned lun, const uint8_t *cdb, size_t cdb_len, const void *out,
                     uint32_t out_len, void *in, uint32_t in_len, VdVscsiResult *res);

/* A task management function; returns its response byte. */
uint8_t vd_vscsi_tmf(VdVscsi *s, uint32_t subtype, const uint8_t lun[8], uint64_t tag);
/* AN query or subscribe; returns the response byte and stores event_actual. */
uint8_t vd_vscsi_an(VdVscsi *s, uint32_t type, const uint8_t lun[8], uint32_t requested, uint32_t *actual);
/* Wait for an event (timeout_ms); false if none came.  Gives the buffer back. */
bool vd_vscsi_event(VdVscsi *s, uint8_t ev[16], unsigned timeout_ms);

/* --- SCSI, the way Linux's sd driver does it --- */
/* Sense key / ASC / ASCQ of a CHECK CONDITION result (fixed format). */
uint8_t vd_vscsi_sense_key(const VdVscsiResult *r);
uint16_t vd_vscsi_asc(const VdVscsiResult *r);    /* ASC << 8 | ASCQ */
/* TEST UNIT READY until GOOD (consumes unit attentions); false after 8 tries. */
bool vd_vscsi_wait_ready(VdVscsi *s, unsigned lun);
/* READ(10)/WRITE(10) of n 512-byte blocks; fua sets the FUA bit. */
uint8_t vd_vscsi_read10(VdVscsi *s, unsigned lun, uint32_t lba, void *buf, uint16_t n);
uint8_t vd_vscsi_write10(VdVscsi *s, unsigned lun, uint32_t lba, const void *buf, uint16_t n, bool fua);
/* SYNCHRONIZE CACHE(10) with every field 0, as Linux's block layer flush. */
uint8_t vd_vscsi_sync_cache(VdVscsi *s, unsigned lun);
/* sd_read_cache_type(): MODE SENSE(6) page 8 (DBD=0), 4 bytes then the real length. */
bool vd_vscsi_read_cache_type(VdVscsi *s, unsigned lun, bool *wce, bool *dpofua);
/*
 * cache_type_store(): MODE SENSE(6) page 8 with DBD, edit WCE, clear PS,
 * device-specific byte 0, MODE SELECT(6) PF=1.  Returns the SCSI status;
 * sent and sent_len get the parameter list that went out.
 */
uint8_t vd_vscsi_set_cache_type(VdVscsi *s, unsigned lun, bool write_back, uint8_t *sent, size_t *sent_len,
                                VdVscsiResult *res);

#endif
