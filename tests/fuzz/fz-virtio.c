/* fz-virtio.c - the shared virtio-mmio fuzz guest (see fz-virtio.h). */
#include "fz-virtio.h"

#include "hw/virtio-mmio.h"

#include <string.h>

/* Status as the guest reads it. */
static uint32_t status(FzVirtio *v)
{
    return vg_rd(&v->g, VD_VMMIO_STATUS);
}

/* Negotiate and set up the queues from a clean heap. */
static void bring_up(FzVirtio *v)
{
    v->g.heap = v->heap0;
    v->features &= vg_device_features(&v->g);   /* e.g. a read-only disk offers no WRITE_ZEROES */
    if (!vg_negotiate(&v->g, v->features)) {
        fz_fail("virtio: FEATURES_OK refused for %#" G_GINT64_MODIFIER "x", v->features);
    }
    for (unsigned q = 0; q < v->nq; q++) {
        if (!vg_setup_queue(&v->g, q, FZV_QSIZE)) {
            fz_fail("virtio: queue %u not ready", q);
        }
    }
    vg_driver_ok(&v->g);
}

/* Set up the guest and bring the device to DRIVER_OK. */
void fzv_start(FzVirtio *v, VdBus *bus, uint64_t features, unsigned nq, unsigned skip_q)
{
    memset(v, 0, sizeof(*v));
    v->bus = bus;
    v->features = features;
    v->nq = MIN(nq, VG_MAX_QUEUES);
    v->skip_q = skip_q;
    vg_init(&v->g, bus, FZV_BASE, FZV_IRQ);
    v->heap0 = v->g.heap;
    v->data_next = FZV_DATA;
    bring_up(v);
}

/* Rolling allocation in the data area. */
uint64_t fzv_alloc(FzVirtio *v, uint32_t len)
{
    len = MIN(len, FZV_RAM - FZV_DATA);
    if (v->data_next + len > FZV_RAM) {
        v->data_next = FZV_DATA;
    }
    uint64_t a = v->data_next;
    v->data_next = (v->data_next + len + 15) & ~15u;
    return a;
}

/* Chain, publish and kick one request. */
void fzv_submit(FzVirtio *v, unsigned q, const VgBuf *bufs, unsigned n, bool indirect)
{
    q %= v->nq;
    unsigned head;
    if (indirect) {
        uint64_t table = fzv_alloc(v, 16 * n);
        for (unsigned i = 0; i < n; i++) {
            uint16_t flags = (bufs[i].write ? VD_VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VD_VRING_DESC_F_NEXT : 0);
            vg_write_desc_at(&v->g, table, i, bufs[i].addr, bufs[i].len, flags, i + 1 < n ? i + 1 : 0);
        }
        VgQueue *vq = &v->g.q[q];
        head = vq->next_desc % vq->num;
        vg_set_desc(&v->g, q, head, table, 16 * n, VD_VRING_DESC_F_INDIRECT, 0);
        vq->next_desc = (head + 1) % vq->num;
    } else {
        head = vg_chain(&v->g, q, bufs, n);
    }
    vg_publish(&v->g, q, head);
    vg_kick(&v->g, q);
}

/* FZV_OP_DESC: one raw descriptor, its address mostly in the data area. */
static void op_desc(FzVirtio *v, FzIn *in)
{
    unsigned q = fz_u8(in) % v->nq, idx = fz_u8(in) % FZV_QSIZE;
    uint8_t mode = fz_u8(in);
    uint64_t addr = (mode & 0x80) ? fz_u64(in) : FZV_DATA + 16u * fz_u16(in) % (FZV_RAM - FZV_DATA);
    uint32_t len = (mode & 0x40) ? fz_u32(in) : fz_u16(in);
    uint16_t next = fz_u8(in);
    vg_set_desc(&v->g, q, idx, addr, len, mode & 7, next);
}

/* FZV_OP_PUBLISH: a head (valid or not) into the avail ring, then maybe a kick. */
static void op_publish(FzVirtio *v, FzIn *in)
{
    unsigned q = fz_u8(in) % v->nq;
    uint8_t b = fz_u8(in);
    vg_publish(&v->g, q, (b & 0x80) ? fz_u16(in) : b % FZV_QSIZE);
    if (b & 0x40) {
        vg_kick(&v->g, q);
    }
}

/* FZV_OP_MMIO: any transport register; writes to the ring setup registers void the answered oracle. */
static void op_mmio(FzVirtio *v, FzIn *in)
{
    uint32_t off = (fz_u8(in) & 0x3f) * 4;
    uint32_t val = fz_u32(in);
    if (fz_u8(in) & 1) {
        vg_rd(&v->g, off);
        return;
    }
    static const uint32_t harmless[] = { VD_VMMIO_INTERRUPT_ACK, VD_VMMIO_QUEUE_NOTIFY, VD_VMMIO_DEVICE_FEATURES_SEL };
    bool ok = false;
    for (size_t i = 0; i < G_N_ELEMENTS(harmless); i++) {
        ok |= off == harmless[i];
    }
    v->unchecked |= !ok;
    vg_wr(&v->g, off, val);
}

/* fz_wait condition: a reset the guest asked for has finished (status reads 0). */
static bool reset_done(void *opaque)
{
    return status(opaque) == 0;
}

/* FZV_OP_RESET: reset the device, wait for it, check quiescence, bring it up again. */
static void op_reset(FzVirtio *v)
{
    if (v->resets++ >= 8) {
        return;
    }
    vg_wr(&v->g, VD_VMMIO_STATUS, 0);
    fz_wait(reset_done, v, "virtio reset never finished");
    fz_quiescent("virtio: the device reads back status 0 after a reset");
    bring_up(v);
    v->unchecked = false;
}

/* Dispatch one generic operation. */
void fzv_op(FzVirtio *v, FzIn *in, unsigned op)
{
    switch (op) {
    case FZV_OP_DESC:
        op_desc(v, in);
        break;
    case FZV_OP_PUBLISH:
        op_publish(v, in);
        break;
    case FZV_OP_KICK:
        vg_kick(&v->g, fz_u8(in) % (v->nq + 1));
        break;
    case FZV_OP_RAM: {
        uint8_t buf[64];
        uint32_t at = FZV_DATA + fz_u32(in) % (FZV_RAM - FZV_DATA - sizeof(buf));
        size_t n = fz_bytes(in, buf, fz_u8(in) % sizeof(buf));
        memcpy(vg_ptr(&v->g, at), buf, n);
        break;
    }
    case FZV_OP_MMIO:
        op_mmio(v, in);
        break;
    case FZV_OP_CONFIG: {
        uint32_t off = fz_u8(in) % 64;
        unsigned size = 1u << (fz_u8(in) % 3);
        vg_config_write(&v->g, off, fz_u32(in), size);
        break;
    }
    case FZV_OP_PUMP:
        fz_pump(fz_u8(in) % 8);
        vg_ack(&v->g);
        break;
    case FZV_OP_SETTLE:
        fzv_settle(v);
        break;
    default:
        op_reset(v);
        break;
    }
}

/* True if the guest should expect no answers: broken, not running, or registers rewritten. */
static bool exempt(FzVirtio *v)
{
    uint32_t st = status(v);
    return v->unchecked || (st & VD_VIRTIO_STATUS_NEEDS_RESET) || !(st & VD_VIRTIO_STATUS_DRIVER_OK);
}

/* fz_wait condition: every head published on the answered queues is in the used ring, or exempt. */
static bool all_answered(void *opaque)
{
    FzVirtio *v = opaque;
    if (exempt(v)) {
        return fz_order_outstanding() == 0;
    }
    for (unsigned q = 0; q < v->nq; q++) {
        if (q != v->skip_q && vg_used_idx(&v->g, q) != v->g.q[q].avail_idx) {
            return false;
        }
    }
    return true;
}

/* Kick every queue, wait for the answers, check the oracles. */
void fzv_settle(FzVirtio *v)
{
    /* A kick on every queue, as a driver that lost a notification would send. */
    for (unsigned q = 0; q < v->nq; q++) {
        vg_kick(&v->g, q);
    }
    if (!fz_wait_for(all_answered, v)) {
        GString *q = g_string_new(NULL);
        for (unsigned i = 0; i < v->nq; i++) {
            g_string_append_printf(q, " q%u avail=%u used=%u", i, v->g.q[i].avail_idx, vg_used_idx(&v->g, i));
        }
        fz_fail("virtio: a published request was never answered after 5 s (status %#x,%s, %u backend requests)",
                vg_rd(&v->g, VD_VMMIO_STATUS), q->str, fz_order_outstanding());
    }
    vg_ack(&v->g);
    if (!exempt(v)) {
        fz_quiescent("virtio: every published request is in the used ring");
    }
}
