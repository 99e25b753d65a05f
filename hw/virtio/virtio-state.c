/*
 * virtio-state.c - migration of the virtio core's state (features, status,
 * config generation, every queue's rings and indices) and of the
 * virtio-mmio transport's registers.  Device models embed the core's
 * fields at the start of their own section (hw/vmstate.h).
 */
#include "virtio-internal.h"
#include "hw/virtio-mmio.h"

#include <gio/gio.h>

/* One queue as the stream carries it. */
typedef struct QueueState {
    uint32_t num;
    uint64_t desc, avail, used;
    bool ready, signalled_used_valid, push_pending;
    uint16_t last_avail, used_idx, signalled_used;
} QueueState;

struct VdVirtioState {
    uint64_t guest_features;
    uint8_t status;
    uint32_t generation;
    bool broken;
    uint32_t nq;
    QueueState *q;
};

void vd_virtio_save(VdVirtioDevice *vdev, VdMigWriter *w)
{
    g_assert(!vdev->resetting);   /* a quiescent device has finished its reset */
    vd_mig_put_u64(w, vdev->guest_features);
    vd_mig_put_u8(w, vdev->status);
    vd_mig_put_u32(w, vdev->generation);
    vd_mig_put_u8(w, vdev->broken);
    vd_mig_put_u32(w, vdev->nq);
    for (unsigned i = 0; i < vdev->nq; i++) {
        VdVirtQueue *vq = &vdev->vqs[i];
        vd_mig_put_u32(w, vq->num);
        vd_mig_put_u64(w, vq->desc);
        vd_mig_put_u64(w, vq->avail);
        vd_mig_put_u64(w, vq->used);
        vd_mig_put_u8(w, vq->ready);
        vd_mig_put_u16(w, vq->last_avail);
        vd_mig_put_u16(w, vq->used_idx);
        vd_mig_put_u16(w, vq->signalled_used);
        vd_mig_put_u8(w, vq->signalled_used_valid);
        vd_mig_put_u8(w, vq->push_pending);
    }
}

void vd_virtio_state_free(VdVirtioState *st)
{
    if (st) {
        g_free(st->q);
        g_free(st);
    }
}

/* Read one queue's fields and check them against this device's queue. */
static bool parse_queue(VdVirtioDevice *vdev, VdMigSection *sec, unsigned i, QueueState *q, GError **errp)
{
    g_autofree char *f = g_strdup_printf("queue %u", i);
    if (!vd_mig_get_u32(sec, f, &q->num, errp) || !vd_mig_get_u64(sec, f, &q->desc, errp) ||
        !vd_mig_get_u64(sec, f, &q->avail, errp) || !vd_mig_get_u64(sec, f, &q->used, errp) ||
        !vd_mig_get_bool(sec, f, &q->ready, errp) || !vd_mig_get_u16(sec, f, &q->last_avail, errp) ||
        !vd_mig_get_u16(sec, f, &q->used_idx, errp) || !vd_mig_get_u16(sec, f, &q->signalled_used, errp) ||
        !vd_mig_get_bool(sec, f, &q->signalled_used_valid, errp) || !vd_mig_get_bool(sec, f, &q->push_pending, errp)) {
        return false;
    }
    VdVirtQueue *vq = &vdev->vqs[i];
    if (q->num == 0 || q->num > vq->num_max || (q->num & (q->num - 1))) {
        return vd_mig_field_error(sec, f, errp, "size %u is not a power of two in 1..%u", q->num, vq->num_max);
    }
    if (q->ready && !vd_virtq_layout_ok(vq, q->num, q->desc, q->avail, q->used)) {
        return vd_mig_field_error(sec, f, errp, "its rings (desc 0x%" G_GINT64_MODIFIER "x, avail 0x%"
                                  G_GINT64_MODIFIER "x, used 0x%" G_GINT64_MODIFIER "x) are misaligned or "
                                  "outside guest memory", q->desc, q->avail, q->used);
    }
    return true;
}

VdVirtioState *vd_virtio_parse(VdVirtioDevice *vdev, VdMigSection *sec, GError **errp)
{
    VdVirtioState *st = g_new0(VdVirtioState, 1);
    if (!vd_mig_get_u64(sec, "guest features", &st->guest_features, errp) ||
        !vd_mig_get_u8(sec, "status", &st->status, errp) ||
        !vd_mig_get_u32(sec, "config generation", &st->generation, errp) ||
        !vd_mig_get_bool(sec, "broken", &st->broken, errp) ||
        !vd_mig_get_u32(sec, "queues", &st->nq, errp)) {
        goto fail;
    }
    if (st->guest_features & ~vdev->host_features) {
        vd_mig_field_error(sec, "guest features", errp, "0x%" G_GINT64_MODIFIER "x has bits this device does not "
                           "offer (0x%" G_GINT64_MODIFIER "x)", st->guest_features, vdev->host_features);
        goto fail;
    }
    if (st->nq != vdev->nq) {
        vd_mig_field_error(sec, "queues", errp, "%u in the stream, this device has %u", st->nq, vdev->nq);
        goto fail;
    }
    st->q = g_new0(QueueState, st->nq);
    for (unsigned i = 0; i < st->nq; i++) {
        if (!parse_queue(vdev, sec, i, &st->q[i], errp)) {
            goto fail;
        }
    }
    return st;
fail:
    vd_virtio_state_free(st);
    return NULL;
}

void vd_virtio_apply(VdVirtioDevice *vdev, VdVirtioState *st)
{
    g_assert(!vdev->resetting);
    vdev->guest_features = st->guest_features;
    vdev->status = st->status;
    vdev->generation = st->generation;
    vdev->broken = st->broken;
    g_clear_pointer(&vdev->broken_reason, g_free);
    if (st->broken) {
        vdev->broken_reason = g_strdup("broken on the migration source");
    }
    for (unsigned i = 0; i < vdev->nq; i++) {
        VdVirtQueue *vq = &vdev->vqs[i];
        const QueueState *q = &st->q[i];
        vd_virtq_reset(vq);
        vq->num = q->num;
        vq->desc = q->desc;
        vq->avail = q->avail;
        vq->used = q->used;
        vq->ready = q->ready;
        vq->last_avail = q->last_avail;
        vq->used_idx = q->used_idx;
        vq->signalled_used = q->signalled_used;
        vq->signalled_used_valid = q->signalled_used_valid;
        vq->push_pending = q->push_pending;
    }
    vd_virtio_state_free(st);
}

/* ---- virtio-mmio: the transport's registers ---- */

/* The registers that are not the device's: InterruptStatus and the selectors. */
typedef struct MmioState {
    uint32_t isr, device_features_sel, driver_features_sel, queue_sel, shm_sel;
} MmioState;

/* Save the transport's registers. */
static bool mmio_save(void *dev, VdMigWriter *w, GError **errp)
{
    uint32_t regs[5];
    vd_virtio_mmio_get_regs(dev, regs);
    for (unsigned i = 0; i < G_N_ELEMENTS(regs); i++) {
        vd_mig_put_u32(w, regs[i]);
    }
    return true;
}

/* Read the transport's registers; any value is one the guest could have written. */
static void *mmio_parse(void *dev, VdMigSection *sec, GError **errp)
{
    static const char *const names[] = { "InterruptStatus", "DeviceFeaturesSel", "DriverFeaturesSel", "QueueSel",
                                         "SHMSel" };
    uint32_t *regs = g_new0(uint32_t, G_N_ELEMENTS(names));
    for (unsigned i = 0; i < G_N_ELEMENTS(names); i++) {
        if (!vd_mig_get_u32(sec, names[i], &regs[i], errp)) {
            g_free(regs);
            return NULL;
        }
    }
    if (regs[0] & ~(uint32_t)(VD_VIRTIO_ISR_QUEUE | VD_VIRTIO_ISR_CONFIG)) {
        vd_mig_field_error(sec, names[0], errp, "0x%x has bits other than used-buffer and config change", regs[0]);
        g_free(regs);
        return NULL;
    }
    return regs;
}

/* Restore the registers and the interrupt line they drive. */
static void mmio_apply(void *dev, void *state)
{
    vd_virtio_mmio_set_regs(dev, state);
    g_free(state);
}

const VdDeviceStateOps vd_virtio_mmio_state_ops = {
    .kind = "virtio-mmio",
    .version = 1,
    .save = mmio_save,
    .parse = mmio_parse,
    .apply = mmio_apply,
    .free_state = g_free,
};
