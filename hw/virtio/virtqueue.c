/* virtqueue.c - split virtqueues: validated descriptor chains, used ring, EVENT_IDX. */
#include "virtio-internal.h"

#include <string.h>

/* One descriptor as it lies in guest memory (little-endian). */
typedef struct VringDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} VringDesc;

#define VD_VIRTQ_MAX_IOV 4096   /* iovecs per element: chain <= 2 * 32768 is bounded here */

/* Byte offsets inside the avail and used rings. */
#define AVAIL_FLAGS 0
#define AVAIL_IDX   2
#define AVAIL_RING(i) (4 + 2 * (uint64_t)(i))
#define USED_IDX    2
#define USED_RING(i) (4 + 8 * (uint64_t)(i))

/* Power-on queue state: disabled, no rings, indices 0. */
void vd_virtq_reset(VdVirtQueue *vq)
{
    vq->num = vq->num_max;
    vq->desc = vq->avail = vq->used = 0;
    vq->ready = false;
    vq->last_avail = vq->used_idx = vq->signalled_used = 0;
    vq->signalled_used_valid = false;
    vq->push_pending = false;
    vq->inuse = 0;
    vq->throttled = false;
}

unsigned vd_virtq_index(VdVirtQueue *vq) { return vq->index; }
unsigned vd_virtq_size_max(VdVirtQueue *vq) { return vq->num_max; }
unsigned vd_virtq_size(VdVirtQueue *vq) { return vq->num; }

/* The transport's limit on the ring size (vhost-user: the front end picks the ring); ignored while ready. */
void vd_virtq_set_size_max(VdVirtQueue *vq, unsigned num_max)
{
    if (!vq->ready) {
        vq->num_max = num_max;
    }
}
bool vd_virtq_ready(VdVirtQueue *vq) { return vq->ready; }
uint16_t vd_virtq_last_avail(VdVirtQueue *vq) { return vq->last_avail; }
VdVirtioDevice *vd_virtq_device(VdVirtQueue *vq) { return vq->vdev; }

/* The driver picks a queue size (checked when the queue is enabled). */
void vd_virtq_set_size(VdVirtQueue *vq, unsigned num)
{
    if (!vq->ready) {
        vq->num = num;
    }
}

/* The driver places the three ring parts. */
void vd_virtq_set_addr(VdVirtQueue *vq, uint64_t desc, uint64_t avail, uint64_t used)
{
    if (!vq->ready) {
        vq->desc = desc;
        vq->avail = avail;
        vq->used = used;
    }
}

/* Where the driver placed the three ring parts. */
void vd_virtq_get_addr(VdVirtQueue *vq, uint64_t *desc, uint64_t *avail, uint64_t *used)
{
    *desc = vq->desc;
    *avail = vq->avail;
    *used = vq->used;
}

/* vhost-user SET_VRING_BASE: resume at idx (used idx follows, no requests in flight). */
void vd_virtq_set_last_avail(VdVirtQueue *vq, uint16_t idx)
{
    vq->last_avail = idx;
    vq->used_idx = idx;
    vq->signalled_used_valid = false;
}

/* Load a little-endian u16 ring field; the acquire pairs with the driver's release. */
static bool ring_load16(VdVirtioDevice *vdev, uint64_t gpa, uint16_t *out)
{
    uint64_t len;
    uint16_t *p = vd_virtio_map_piece(vdev, gpa, 2, false, &len);
    if (!p || len != 2) {
        return false;
    }
    *out = GUINT16_FROM_LE(__atomic_load_n(p, __ATOMIC_ACQUIRE));
    return true;
}

/* Store a little-endian u16 ring field with release order (prior writes visible first). */
static bool ring_store16(VdVirtioDevice *vdev, uint64_t gpa, uint16_t v)
{
    uint64_t len;
    uint16_t *p = vd_virtio_map_piece(vdev, gpa, 2, true, &len);
    if (!p || len != 2) {
        return false;
    }
    __atomic_store_n(p, GUINT16_TO_LE(v), __ATOMIC_RELEASE);
    return true;
}

/* vhost-user reconnect: continue from the used idx the ring itself holds. */
bool vd_virtq_sync_used_idx(VdVirtQueue *vq)
{
    uint16_t idx;
    if (!ring_load16(vq->vdev, vq->used + USED_IDX, &idx)) {
        return false;
    }
    vq->used_idx = idx;
    vq->signalled_used_valid = false;
    return true;
}

/* True if [gpa, gpa+len) is wholly translatable. */
static bool range_mapped(VdVirtioDevice *vdev, uint64_t gpa, uint64_t len, bool write)
{
    while (len) {
        uint64_t chunk;
        if (!vd_virtio_map_piece(vdev, gpa, len, write, &chunk)) {
            return false;
        }
        gpa += chunk;
        len -= chunk;
    }
    return true;
}

/* Enable/disable; enabling validates size, alignment and ring placement. */
bool vd_virtq_set_ready(VdVirtQueue *vq, bool ready)
{
    if (!ready) {
        vq->ready = false;
        return true;
    }
    if (!vd_virtq_layout_ok(vq, vq->num, vq->desc, vq->avail, vq->used)) {
        return false;
    }
    vq->ready = true;
    return true;
}

/* Size a power of two up to the maximum, rings aligned and inside guest memory. */
bool vd_virtq_layout_ok(VdVirtQueue *vq, unsigned n, uint64_t desc, uint64_t avail, uint64_t used)
{
    VdVirtioDevice *vdev = vq->vdev;
    if (n == 0 || n > vq->num_max || (n & (n - 1))) {
        return false;
    }
    if ((desc & 15) || (avail & 1) || (used & 3)) {
        return false;
    }
    return range_mapped(vdev, desc, 16ull * n, false) && range_mapped(vdev, avail, 6 + 2ull * n, false) &&
           range_mapped(vdev, used, 6 + 8ull * n, true);
}

/* With EVENT_IDX, tell the driver which avail index should make it kick next. */
static void set_avail_event(VdVirtQueue *vq)
{
    if (vd_virtio_has_feature(vq->vdev, VD_VIRTIO_F_RING_EVENT_IDX) &&
        ring_store16(vq->vdev, vq->used + USED_RING(vq->num), vq->last_avail)) {
        vd_virtq_used_written(vq, USED_RING(vq->num), 2);
    }
}

/* Write one used ring entry and publish it by bumping used idx. */
static bool used_append(VdVirtQueue *vq, uint32_t id, uint32_t len)
{
    VdVirtioDevice *vdev = vq->vdev;
    uint32_t ent[2] = { GUINT32_TO_LE(id), GUINT32_TO_LE(len) };
    uint64_t slot = USED_RING(vq->used_idx % vq->num);
    if (!vd_virtio_guest_write(vdev, vq->used + slot, ent, sizeof(ent))) {
        return false;
    }
    vd_virtq_used_written(vq, slot, sizeof(ent));
    if (!ring_store16(vdev, vq->used + USED_IDX, (uint16_t)(vq->used_idx + 1))) {
        return false;
    }
    vd_virtq_used_written(vq, USED_IDX, 2);
    vq->used_idx++;
    vq->push_pending = true;
    vdev->stats.pushed++;
    return true;
}

/* A chain is bad: answer its head (if known) with len 0, then break the device. */
static void *chain_error(VdVirtQueue *vq, int head, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void *chain_error(VdVirtQueue *vq, int head, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_autofree char *msg = g_strdup_printf("queue %u: %s", vq->index, why);
    if (head >= 0) {
        used_append(vq, head, 0);
    }
    vd_virtio_set_needs_reset(vq->vdev, msg);
    if (head >= 0) {
        vd_virtq_notify(vq);
    }
    return NULL;
}

/* Collects a chain's iovecs while it is walked. */
typedef struct ChainWalk {
    GArray *iov;      /* struct iovec */
    unsigned out_num; /* iovecs before the first device-writable one */
    uint64_t out_len, in_len;
    bool seen_write;
} ChainWalk;

/* Map one descriptor's buffer into the walk; false if it leaves guest memory. */
static bool map_desc(VdVirtioDevice *vdev, ChainWalk *w, uint64_t addr, uint32_t len, bool write)
{
    uint64_t left = len;
    if (addr + left < addr) {
        return false;
    }
    while (left) {
        uint64_t chunk;
        void *p = vd_virtio_map_piece(vdev, addr, left, write, &chunk);
        if (!p || w->iov->len >= VD_VIRTQ_MAX_IOV) {
            return false;
        }
        struct iovec v = { .iov_base = p, .iov_len = chunk };
        g_array_append_val(w->iov, v);
        addr += chunk;
        left -= chunk;
    }
    if (write) {
        w->in_len += len;
    } else {
        w->out_len += len;
        w->out_num = w->iov->len;
    }
    return true;
}

/* Build the element for the chain starting at head; NULL (device broken) if invalid. */
static void *walk_chain(VdVirtQueue *vq, unsigned head, size_t elem_size)
{
    VdVirtioDevice *vdev = vq->vdev;
    ChainWalk w = { .iov = g_array_new(FALSE, FALSE, sizeof(struct iovec)) };
    uint64_t table = vq->desc;
    unsigned table_size = vq->num, idx = head, count = 0;
    bool indirect = false;
    void *ret = NULL;

    for (;;) {
        VringDesc d;
        if (!vd_virtio_guest_read(vdev, table + 16ull * idx, &d, sizeof(d))) {
            chain_error(vq, head, "descriptor %u of table 0x%" G_GINT64_MODIFIER "x is outside guest memory", idx, table);
            goto out;
        }
        uint64_t addr = GUINT64_FROM_LE(d.addr);
        uint32_t len = GUINT32_FROM_LE(d.len);
        uint16_t flags = GUINT16_FROM_LE(d.flags), next = GUINT16_FROM_LE(d.next);
        if (flags & VD_VRING_DESC_F_INDIRECT) {
            if (indirect) {
                chain_error(vq, head, "nested INDIRECT descriptor in head %u", head);
                goto out;
            }
            if (!vd_virtio_has_feature(vdev, VD_VIRTIO_F_RING_INDIRECT_DESC)) {
                chain_error(vq, head, "INDIRECT descriptor without RING_INDIRECT_DESC");
                goto out;
            }
            if (flags & VD_VRING_DESC_F_NEXT) {
                chain_error(vq, head, "descriptor %u has both INDIRECT and NEXT", idx);
                goto out;
            }
            if (len == 0 || len % 16 || len / 16 > vq->num) {
                chain_error(vq, head, "indirect table length %u is not 16..%u*16 in steps of 16", len, vq->num);
                goto out;
            }
            if ((addr & 15) || !range_mapped(vdev, addr, len, false)) {
                chain_error(vq, head, "indirect table at 0x%" G_GINT64_MODIFIER "x is misplaced", addr);
                goto out;
            }
            indirect = true;
            table = addr;
            table_size = len / 16;
            idx = 0;
            count = 0;
            continue;
        }
        if (++count > table_size) {
            chain_error(vq, head, "chain at head %u is longer than %u descriptors (loop?)", head, table_size);
            goto out;
        }
        bool write = flags & VD_VRING_DESC_F_WRITE;
        if (!write && w.seen_write) {
            chain_error(vq, head, "device-readable descriptor after a writable one in head %u", head);
            goto out;
        }
        w.seen_write |= write;
        if (!map_desc(vdev, &w, addr, len, write)) {
            chain_error(vq, head, "buffer 0x%" G_GINT64_MODIFIER "x+%u is outside guest memory", addr, len);
            goto out;
        }
        if (!(flags & VD_VRING_DESC_F_NEXT)) {
            break;
        }
        if (next >= table_size) {
            chain_error(vq, head, "next %u points outside the %s table of %u", next,
                        indirect ? "indirect" : "descriptor", table_size);
            goto out;
        }
        idx = next;
    }

    size_t base = (MAX(elem_size, sizeof(VdVirtqElem)) + 15) & ~(size_t)15;
    uint8_t *mem = g_malloc0(base + w.iov->len * sizeof(struct iovec));
    VdVirtqElem *elem = (VdVirtqElem *)mem;
    struct iovec *sg = (struct iovec *)(mem + base);
    if (w.iov->len) {
        memcpy(sg, w.iov->data, w.iov->len * sizeof(struct iovec));
    }
    elem->index = head;
    elem->out_num = w.out_num;
    elem->in_num = w.iov->len - w.out_num;
    elem->out_sg = sg;
    elem->in_sg = sg + w.out_num;
    elem->out_len = w.out_len;
    elem->in_len = w.in_len;
    elem->vq = vq;
    elem->epoch = vdev->epoch;
    vdev->stats.popped++;
    ret = elem;
out:
    g_array_free(w.iov, TRUE);
    return ret;
}

/* Take the next available chain; see virtio.h. */
void *vd_virtq_pop(VdVirtQueue *vq, size_t elem_size)
{
    VdVirtioDevice *vdev = vq->vdev;
    if (!vq->ready || vdev->broken || !(vdev->status & VD_VIRTIO_STATUS_DRIVER_OK)) {
        return NULL;
    }
    uint16_t avail_idx;
    if (!ring_load16(vdev, vq->avail + AVAIL_IDX, &avail_idx)) {
        return chain_error(vq, -1, "avail ring outside guest memory");
    }
    if (avail_idx == vq->last_avail) {
        /* Empty: publish avail_event, then look again so a racing kick is not lost. */
        set_avail_event(vq);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (!ring_load16(vdev, vq->avail + AVAIL_IDX, &avail_idx) || avail_idx == vq->last_avail) {
            return NULL;
        }
    }
    if ((uint16_t)(avail_idx - vq->last_avail) > vq->num) {
        return chain_error(vq, -1, "avail idx %u is more than %u ahead of %u", avail_idx, vq->num,
                           vq->last_avail);
    }
    if (vq->inuse >= vq->num) {
        /* A correct driver cannot have more than num buffers outstanding. */
        vq->throttled = true;
        return NULL;
    }
    uint16_t head;
    if (!ring_load16(vdev, vq->avail + AVAIL_RING(vq->last_avail % vq->num), &head)) {
        return chain_error(vq, -1, "avail ring outside guest memory");
    }
    vq->last_avail++;
    set_avail_event(vq);
    if (head >= vq->num) {
        return chain_error(vq, -1, "head %u is not below queue size %u", head, vq->num);
    }
    VdVirtqElem *elem = walk_chain(vq, head, elem_size);
    if (elem) {
        vq->inuse++;
    }
    return elem;
}

/* Take back, on a migration destination, a chain the source had popped; see virtio.h. */
void *vd_virtq_pop_head(VdVirtQueue *vq, unsigned head, size_t elem_size)
{
    if (!vq->ready || vq->vdev->broken || head >= vq->num) {
        return NULL;
    }
    VdVirtqElem *elem = walk_chain(vq, head, elem_size);
    if (elem) {
        vq->inuse++;
    }
    return elem;
}

/*
 * The core owns the in-use throttle: vd_virtq_pop refuses an element while num are in use, and the first
 * notify after a push that freed a slot kicks the queue again, so the refused element is taken.
 */
void vd_virtq_resume_throttled(VdVirtQueue *vq)
{
    if (vq->throttled && vq->inuse < vq->num) {
        vq->throttled = false;
        vd_virtq_run(vq);
    }
}

unsigned vd_virtq_inuse(VdVirtQueue *vq) { return vq->inuse; }

/* True if the element predates the latest reset. */
bool vd_virtq_elem_stale(const VdVirtqElem *elem)
{
    return elem->epoch != elem->vq->vdev->epoch;
}

/* Put a finished element in the used ring; stale elements are dropped. */
bool vd_virtq_push(VdVirtqElem *elem, uint32_t written)
{
    VdVirtQueue *vq = elem->vq;
    VdVirtioDevice *vdev = vq->vdev;
    if (vdev->tops && vdev->tops->buffer_written && elem->in_num) {
        /* Even a stale answer may have written its buffers: the dirty log must say so. */
        vdev->tops->buffer_written(vdev->topaque, elem->in_sg, elem->in_num);
    }
    if (vd_virtq_elem_stale(elem)) {
        return false;
    }
    vq->inuse--;
    if (!vq->ready) {
        return false;
    }
    if (written > elem->in_len) {
        written = elem->in_len;
    }
    if (!used_append(vq, elem->index, written)) {
        vd_virtio_set_needs_reset(vq->vdev, "used ring outside guest memory");
        return false;
    }
    return true;
}

/* Release an element from vd_virtq_pop. */
void vd_virtq_elem_free(void *elem)
{
    g_free(elem);
}

/* virtio 1.2 2.7.10: interrupt iff the used index crossed used_event since the last decision. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

/* Interrupt the driver unless EVENT_IDX or NO_INTERRUPT says it does not want one now. */
static void vd_virtq_raise_if_wanted(VdVirtQueue *vq)
{
    VdVirtioDevice *vdev = vq->vdev;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);   /* used idx visible before we read the driver's wish */
    bool fire;
    if (vd_virtio_has_feature(vdev, VD_VIRTIO_F_RING_EVENT_IDX)) {
        uint16_t used_event = 0;
        bool ok = ring_load16(vdev, vq->avail + AVAIL_RING(vq->num), &used_event);
        uint16_t old = vq->signalled_used;
        bool valid = vq->signalled_used_valid;
        vq->signalled_used = vq->used_idx;
        vq->signalled_used_valid = true;
        fire = !ok || !valid || need_event(used_event, vq->used_idx, old);
    } else {
        uint16_t flags = 0;
        fire = !ring_load16(vdev, vq->avail + AVAIL_FLAGS, &flags) || !(flags & VD_VRING_AVAIL_F_NO_INTERRUPT);
    }
    if (fire) {
        vd_virtio_raise(vdev, vq->index);
    } else {
        vdev->stats.interrupts_suppressed++;
    }
}

/* Interrupt the driver if it asked to hear about the buffers pushed so far. */
void vd_virtq_notify(VdVirtQueue *vq)
{
    if (!vq->push_pending || !vq->ready) {
        return;
    }
    vq->push_pending = false;
    vd_virtq_raise_if_wanted(vq);
    vd_virtq_resume_throttled(vq);
}
