/* virtio.c - the virtio device object: features, status state machine, config space. */
#include "virtio-internal.h"

#include <gio/gio.h>

#include <string.h>

/* The default translate hook: guest RAM of a VdBus, all or nothing. */
static void *bus_translate(void *opaque, uint64_t gpa, uint64_t *len, bool write)
{
    return vd_dma_map(opaque, gpa, *len);
}

/* Create a device; see virtio.h. */
VdVirtioDevice *vd_virtio_device_new(const VdVirtioDeviceOps *ops, void *opaque, unsigned num_queues,
                                     unsigned queue_max, VdBus *bus, GError **errp)
{
    if (num_queues == 0 || num_queues > 1024) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s: %u queues (1..1024 allowed)",
                    ops->name, num_queues);
        return NULL;
    }
    if (queue_max == 0 || queue_max > VD_VIRTQ_MAX_SIZE || (queue_max & (queue_max - 1))) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "%s: queue size %u is not a power of two in 1..%u", ops->name, queue_max, VD_VIRTQ_MAX_SIZE);
        return NULL;
    }
    if (ops->config_size > VD_VIRTIO_CONFIG_MAX) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s: config space too big", ops->name);
        return NULL;
    }
    VdVirtioDevice *vdev = g_new0(VdVirtioDevice, 1);
    vdev->ops = ops;
    vdev->opaque = opaque;
    if (bus) {
        vdev->translate = bus_translate;
        vdev->translate_opaque = bus;
    }
    vdev->nq = num_queues;
    vdev->vqs = g_new0(VdVirtQueue, num_queues);
    for (unsigned i = 0; i < num_queues; i++) {
        vdev->vqs[i].vdev = vdev;
        vdev->vqs[i].index = i;
        vdev->vqs[i].num_max = queue_max;
        vd_virtq_reset(&vdev->vqs[i]);
    }
    vdev->host_features = ops->get_features(vdev) | VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1);
    return vdev;
}

/* Free the device object (the device model frees its own state). */
void vd_virtio_device_free(VdVirtioDevice *vdev)
{
    if (!vdev) {
        return;
    }
    g_free(vdev->vqs);
    g_free(vdev->broken_reason);
    g_free(vdev);
}

void *vd_virtio_device_opaque(VdVirtioDevice *vdev) { return vdev->opaque; }
const VdVirtioDeviceOps *vd_virtio_device_ops(VdVirtioDevice *vdev) { return vdev->ops; }
unsigned vd_virtio_num_queues(VdVirtioDevice *vdev) { return vdev->nq; }
uint64_t vd_virtio_host_features(VdVirtioDevice *vdev) { return vdev->host_features; }
uint64_t vd_virtio_guest_features(VdVirtioDevice *vdev) { return vdev->guest_features; }
uint8_t vd_virtio_get_status(VdVirtioDevice *vdev) { return vdev->status; }
uint32_t vd_virtio_config_generation(VdVirtioDevice *vdev) { return vdev->generation; }
uint32_t vd_virtio_config_size(VdVirtioDevice *vdev) { return vdev->ops->config_size; }
bool vd_virtio_broken(VdVirtioDevice *vdev) { return vdev->broken; }
const char *vd_virtio_broken_reason(VdVirtioDevice *vdev) { return vdev->broken_reason; }

/* Replace the guest-memory translation (vhost-user maps guest memory itself). */
void vd_virtio_set_translate(VdVirtioDevice *vdev, VdVirtioTranslateFunc *fn, void *opaque)
{
    vdev->translate = fn;
    vdev->translate_opaque = opaque;
}

/* Bind the device to the transport that delivers its interrupts. */
void vd_virtio_set_transport(VdVirtioDevice *vdev, const VdVirtioTransportOps *ops, void *opaque)
{
    vdev->tops = ops;
    vdev->topaque = opaque;
}

/* Queue by index, or NULL if out of range. */
VdVirtQueue *vd_virtio_queue(VdVirtioDevice *vdev, unsigned index)
{
    return index < vdev->nq ? &vdev->vqs[index] : NULL;
}

/* True if the negotiated (driver) features include bit. */
bool vd_virtio_has_feature(VdVirtioDevice *vdev, unsigned bit)
{
    return bit < 64 && (vdev->guest_features >> bit) & 1;
}

/* Accept the driver's feature bits until FEATURES_OK. */
void vd_virtio_set_guest_features(VdVirtioDevice *vdev, uint64_t features)
{
    if ((vdev->status & VD_VIRTIO_STATUS_FEATURES_OK) || vdev->resetting) {
        return;
    }
    vdev->guest_features = features;
}

/* Host pointer to the first piece of [gpa, gpa+len) and its length; NULL if unmapped or wrapping. */
void *vd_virtio_map_piece(VdVirtioDevice *vdev, uint64_t gpa, uint64_t len, bool write, uint64_t *piece)
{
    uint64_t chunk = len;
    void *p = vdev->translate ? vdev->translate(vdev->translate_opaque, gpa, &chunk, write) : NULL;
    if (!p || chunk == 0 || chunk > len || gpa + chunk < gpa) {
        return NULL;
    }
    *piece = chunk;
    return p;
}

/* Copy between buf and guest memory, in as many pieces as the translate hook needs. */
static bool guest_copy(VdVirtioDevice *vdev, uint64_t gpa, uint8_t *buf, uint64_t len, bool to_guest)
{
    while (len) {
        uint64_t chunk;
        uint8_t *p = vd_virtio_map_piece(vdev, gpa, len, to_guest, &chunk);
        if (!p) {
            return false;
        }
        memcpy(to_guest ? p : buf, to_guest ? buf : p, chunk);
        buf += chunk;
        gpa += chunk;
        len -= chunk;
    }
    return true;
}

/* Copy guest memory into buf. */
bool vd_virtio_guest_read(VdVirtioDevice *vdev, uint64_t gpa, void *buf, uint64_t len)
{
    return guest_copy(vdev, gpa, buf, len, false);
}

/* Copy buf into guest memory. */
bool vd_virtio_guest_write(VdVirtioDevice *vdev, uint64_t gpa, const void *buf, uint64_t len)
{
    return guest_copy(vdev, gpa, (uint8_t *)buf, len, true);
}

/* Ask the transport for an interrupt. */
void vd_virtio_raise(VdVirtioDevice *vdev, int queue)
{
    vdev->stats.interrupts++;
    if (vdev->tops && vdev->tops->notify) {
        vdev->tops->notify(vdev->topaque, queue);
    }
}

/* Tell the transport (its dirty log) that the core wrote part of vq's used ring. */
void vd_virtq_used_written(VdVirtQueue *vq, uint64_t offset, uint64_t len)
{
    VdVirtioDevice *vdev = vq->vdev;
    if (vdev->tops && vdev->tops->used_written) {
        vdev->tops->used_written(vdev->topaque, vq->index, offset, len);
    }
}

/*
 * Start a reset: the queues stop and every request popped so far is stale
 * at once; the status register keeps its value until the device has nothing
 * in flight (virtio 1.2, 2.4.1: the driver waits for status to read back 0)
 * and calls vd_virtio_reset_done.
 */
void vd_virtio_reset(VdVirtioDevice *vdev)
{
    if (vdev->resetting) {
        return;   /* one reset at a time; it finishes from the device's callback */
    }
    vdev->resetting = true;
    vdev->epoch++;
    vdev->stats.resets++;
    for (unsigned i = 0; i < vdev->nq; i++) {
        vd_virtq_reset(&vdev->vqs[i]);
    }
    if (vdev->ops->reset) {
        vdev->ops->reset(vdev);
    } else {
        vd_virtio_reset_done(vdev);
    }
}

/* The device is quiescent: power-on state, status reads 0 from now on. */
void vd_virtio_reset_done(VdVirtioDevice *vdev)
{
    g_assert(vdev->resetting);
    vdev->resetting = false;
    vdev->status = 0;
    vdev->guest_features = 0;
    vdev->broken = false;
    g_clear_pointer(&vdev->broken_reason, g_free);
    for (unsigned i = 0; i < vdev->nq; i++) {
        vd_virtq_reset(&vdev->vqs[i]);
    }
}

/* True between a reset's start and vd_virtio_reset_done. */
bool vd_virtio_resetting(VdVirtioDevice *vdev)
{
    return vdev->resetting;
}

/* FEATURES_OK: the driver's set must be offered, include VERSION_1 and suit the device. */
static bool negotiate(VdVirtioDevice *vdev)
{
    uint64_t f = vdev->guest_features;
    if (f & ~vdev->host_features) {
        return false;
    }
    if (!(f & VD_VIRTIO_BIT(VD_VIRTIO_F_VERSION_1))) {
        return false;
    }
    return !vdev->ops->set_features || vdev->ops->set_features(vdev, f);
}

/* The status register state machine (virtio 1.2, 3.1.1 and 2.1.2). */
void vd_virtio_set_status(VdVirtioDevice *vdev, uint8_t status)
{
    if (vdev->resetting) {
        return;   /* the driver must wait for status to read 0 first */
    }
    if (status == 0) {
        vd_virtio_reset(vdev);
        return;
    }
    uint8_t old = vdev->status;
    /* The driver may only add bits; NEEDS_RESET is the device's to set. */
    status = (status | old) & ~VD_VIRTIO_STATUS_NEEDS_RESET;
    status |= old & VD_VIRTIO_STATUS_NEEDS_RESET;
    uint8_t added = status & ~old;
    if ((added & VD_VIRTIO_STATUS_FEATURES_OK) && !negotiate(vdev)) {
        status &= ~VD_VIRTIO_STATUS_FEATURES_OK;
    }
    if ((added & VD_VIRTIO_STATUS_DRIVER_OK) && !(status & VD_VIRTIO_STATUS_FEATURES_OK)) {
        status &= ~VD_VIRTIO_STATUS_DRIVER_OK;   /* never run without negotiated features */
    }
    vdev->status = status;
    if ((status & ~old & VD_VIRTIO_STATUS_DRIVER_OK) && vdev->ops->driver_ok) {
        vdev->ops->driver_ok(vdev);
    }
}

/* Read device config space; bytes past its end read as 0. */
void vd_virtio_config_read(VdVirtioDevice *vdev, uint32_t offset, void *buf, uint32_t len)
{
    uint8_t config[VD_VIRTIO_CONFIG_MAX] = { 0 };
    uint32_t size = vdev->ops->config_size;
    memset(buf, 0, len);
    if (vdev->ops->get_config) {
        vdev->ops->get_config(vdev, config);
    }
    if (offset >= size) {
        return;
    }
    memcpy(buf, config + offset, MIN(len, size - offset));
}

/* Write device config space; a write reaching past its end is dropped whole. */
void vd_virtio_config_write(VdVirtioDevice *vdev, uint32_t offset, const void *buf, uint32_t len)
{
    uint32_t size = vdev->ops->config_size;
    if (offset >= size || len > size - offset || !vdev->ops->config_write) {
        return;
    }
    vdev->ops->config_write(vdev, offset, buf, len);
}

/* The device changed its config: new generation, config interrupt once running. */
void vd_virtio_config_changed(VdVirtioDevice *vdev)
{
    vdev->generation++;
    if (vdev->status & VD_VIRTIO_STATUS_DRIVER_OK) {
        vd_virtio_raise(vdev, -1);
    }
}

/* Enter NEEDS_RESET: queues stop, the driver hears a config change. */
void vd_virtio_set_needs_reset(VdVirtioDevice *vdev, const char *why)
{
    vdev->stats.chain_errors++;
    if (vdev->broken) {
        return;
    }
    g_debug("%s: needs reset: %s", vdev->ops->name, why);
    vdev->broken = true;
    vdev->broken_reason = g_strdup(why);
    vdev->status |= VD_VIRTIO_STATUS_NEEDS_RESET;
    if (vdev->status & VD_VIRTIO_STATUS_DRIVER_OK) {
        vdev->generation++;
        vd_virtio_raise(vdev, -1);
    }
}

/*
 * Run the device's queue_notify on a live queue.  Never nested: a kick that arrives from inside
 * queue_notify (a completion that freed a throttled slot) runs it once more after it returns.
 */
void vd_virtq_run(VdVirtQueue *vq)
{
    VdVirtioDevice *vdev = vq->vdev;
    if (vq->in_queue_notify) {
        vq->kick_again = true;
        return;
    }
    vq->in_queue_notify = true;
    do {
        vq->kick_again = false;
        if (!vq->ready || vdev->broken || vdev->resetting || !(vdev->status & VD_VIRTIO_STATUS_DRIVER_OK)) {
            break;
        }
        vdev->ops->queue_notify(vdev, vq);
    } while (vq->kick_again);
    vq->in_queue_notify = false;
}

/* The driver kicked a queue: run the device if the queue is live. */
void vd_virtio_queue_kick(VdVirtioDevice *vdev, unsigned index)
{
    VdVirtQueue *vq = vd_virtio_queue(vdev, index);
    vdev->stats.kicks++;
    if (vq) {
        vd_virtq_run(vq);
    }
}

/* Snapshot of the core's counters. */
void vd_virtio_get_stats(VdVirtioDevice *vdev, VdVirtioStats *out)
{
    *out = vdev->stats;
}
