/*
 * request-exec.c - the worker-side half of a request: the host operations.
 *
 * The owner thread has already validated the request and decided its plan
 * (VdRequest.durable, fua_emulate, drv_flags, stage2).  This file turns the
 * plan into driver calls, adding bounce buffers and read-modify-write where
 * the request is not aligned to what the driver needs, and the flush that
 * emulates FUA where the driver has no native FUA.  Every driver call goes
 * through the checkpoint (driver-call.c).  Runs in a worker thread; touches
 * only the request and the driver (see block-internal.h).
 */
#include "block-internal.h"
#include "util/iov.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Call the driver through the checkpoint; note in req when a failed call was a sync step. */
static int call_driver(VdBlockBackend *blk, VdRequest *req, VdDrvCall call, VdDriverReq *dr)
{
    int ret = vd_driver_call(blk, call, dr);
    if (ret < 0 && vd_driver_call_is_sync(call, dr->flags)) {
        req->sync_failed = true;
    }
    return ret;
}

void *vd_request_bounce_alloc(VdBlockBackend *blk, size_t len)
{
    void *p = NULL;
    if (posix_memalign(&p, MAX(blk->mem_align, sizeof(void *)), MAX(len, 1)) != 0) {
        return NULL;
    }
    return p;
}

/* Read [off, off+len) (aligned) into buf through the driver. */
static int read_aligned(VdBlockBackend *blk, VdRequest *req, uint64_t off, void *buf, size_t len)
{
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    VdDriverReq dr = { .offset = off, .bytes = len, .iov = &iov, .niov = 1, .trace = req->trace };
    return call_driver(blk, req, VD_CALL_READ, &dr);
}

/* Write [off, off+len) (aligned) from buf through the driver with flags. */
static int write_aligned(VdBlockBackend *blk, VdRequest *req, uint64_t off, const void *buf, size_t len, unsigned flags)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    VdDriverReq dr = { .offset = off, .bytes = len, .iov = &iov, .niov = 1, .flags = flags, .trace = req->trace };
    return call_driver(blk, req, VD_CALL_WRITE, &dr);
}

/* Stage 1 (driver caches to the OS) and, if asked, stage 2 (the OS to disk). */
static int flush_stages(VdBlockBackend *blk, VdRequest *req, bool stage2)
{
    const VdBlockDriver *drv = blk->bs.drv;
    VdDriverReq dr = { .trace = req->trace };
    if (drv->flush_to_os) {
        int ret = call_driver(blk, req, VD_CALL_FLUSH_OS, &dr);
        if (ret < 0) {
            return ret;
        }
    }
    if (stage2 && drv->flush_to_disk) {
        return call_driver(blk, req, VD_CALL_FLUSH_DISK, &dr);
    }
    return 0;
}

/* Read, bouncing through an aligned buffer when needed. */
static int exec_read(VdBlockBackend *blk, VdRequest *req)
{
    if (vd_request_is_aligned(blk, req)) {
        VdDriverReq dr = { .offset = req->offset, .bytes = req->bytes, .iov = req->iov, .niov = req->niov,
                           .trace = req->trace };
        return call_driver(blk, req, VD_CALL_READ, &dr);
    }
    size_t len = req->align_end - req->align_off;
    uint8_t *buf = vd_request_bounce_alloc(blk, len);
    if (!buf) {
        return -ENOMEM;
    }
    int ret = read_aligned(blk, req, req->align_off, buf, len);
    if (ret >= 0) {
        vd_iov_from_buf(req->iov, req->niov, 0, buf + (req->offset - req->align_off), req->bytes);
    }
    free(buf);
    return ret;
}

/*
 * Fill buf (covering [align_off, align_end)) with the old contents of the
 * partial head and tail blocks, for a read-modify-write.
 */
static int rmw_read_edges(VdBlockBackend *blk, VdRequest *req, uint8_t *buf)
{
    uint32_t ra = blk->req_align;
    uint64_t end = req->offset + req->bytes;
    size_t len = req->align_end - req->align_off;
    int ret = 0;
    if (req->offset != req->align_off) {
        vd_drv_count(&blk->stats.bounce_rmw, 1);
        ret = read_aligned(blk, req, req->align_off, buf, ra);
    }
    bool tail_is_head_block = len == ra && req->offset != req->align_off;
    if (ret >= 0 && end != req->align_end && !tail_is_head_block) {
        vd_drv_count(&blk->stats.bounce_rmw, 1);
        ret = read_aligned(blk, req, req->align_end - ra, buf + len - ra, ra);
    }
    return ret;
}

/* Write, with bounce/RMW when unaligned and a trailing flush when FUA is emulated. */
static int exec_write(VdBlockBackend *blk, VdRequest *req)
{
    int ret;
    if (vd_request_is_aligned(blk, req)) {
        VdDriverReq dr = { .offset = req->offset, .bytes = req->bytes, .iov = req->iov, .niov = req->niov,
                           .flags = req->drv_flags, .trace = req->trace };
        ret = call_driver(blk, req, VD_CALL_WRITE, &dr);
    } else {
        size_t len = req->align_end - req->align_off;
        uint8_t *buf = vd_request_bounce_alloc(blk, len);
        if (!buf) {
            return -ENOMEM;
        }
        ret = rmw_read_edges(blk, req, buf);
        if (ret >= 0) {
            vd_iov_to_buf(req->iov, req->niov, 0, buf + (req->offset - req->align_off), req->bytes);
            ret = write_aligned(blk, req, req->align_off, buf, len, req->drv_flags);
        }
        free(buf);
    }
    if (ret >= 0 && req->fua_emulate) {
        ret = flush_stages(blk, req, true);
    }
    return ret;
}

/* Zero part of one aligned block by read-modify-write. */
static int zero_partial_block(VdBlockBackend *blk, VdRequest *req, uint64_t block, uint64_t from, uint64_t to)
{
    uint32_t ra = blk->req_align;
    uint8_t *buf = vd_request_bounce_alloc(blk, ra);
    if (!buf) {
        return -ENOMEM;
    }
    vd_drv_count(&blk->stats.bounce_rmw, 1);
    int ret = read_aligned(blk, req, block, buf, ra);
    if (ret >= 0) {
        memset(buf + (from - block), 0, to - from);
        ret = write_aligned(blk, req, block, buf, ra, 0);
    }
    free(buf);
    return ret;
}

/* Zero an aligned range: the driver's fast path, else plain writes of zeroes. */
static int zero_aligned(VdBlockBackend *blk, VdRequest *req, uint64_t off, uint64_t bytes)
{
    if (bytes == 0) {
        return 0;
    }
    if (blk->cap_zero) {
        VdDriverReq dr = { .offset = off, .bytes = bytes, .trace = req->trace,
                           .flags = (req->flags & VD_REQ_MAY_UNMAP) ? VD_DRV_MAY_UNMAP : 0 };
        int ret = call_driver(blk, req, VD_CALL_ZEROES, &dr);
        if (ret != -ENOTSUP) {
            return ret;
        }
    }
    while (bytes) {
        size_t n = MIN(bytes, VD_ZERO_BUF_SIZE);
        int ret = write_aligned(blk, req, off, blk->zero_buf, n, 0);
        if (ret < 0) {
            return ret;
        }
        off += n;
        bytes -= n;
    }
    return 0;
}

/* Write zeroes: partial head and tail blocks by RMW, the aligned middle by the driver. */
static int exec_zeroes(VdBlockBackend *blk, VdRequest *req)
{
    uint32_t ra = blk->req_align;
    uint64_t off = req->offset, end = req->offset + req->bytes;
    uint64_t mid_start = off, mid_end = end;
    int ret = 0;
    if (req->align_end - req->align_off == ra && (off != req->align_off || end != req->align_end)) {
        /* The whole range is inside one block. */
        ret = zero_partial_block(blk, req, req->align_off, off, end);
        mid_start = mid_end = end;
    } else {
        if (off != req->align_off) {
            mid_start = req->align_off + ra;
            ret = zero_partial_block(blk, req, req->align_off, off, mid_start);
        }
        if (ret >= 0 && end != req->align_end) {
            mid_end = req->align_end - ra;
            ret = zero_partial_block(blk, req, mid_end, mid_end, end);
        }
    }
    if (ret >= 0 && mid_end > mid_start) {
        ret = zero_aligned(blk, req, mid_start, mid_end - mid_start);
    }
    if (ret >= 0 && req->fua_emulate) {
        ret = flush_stages(blk, req, true);
    }
    return ret;
}

/* Discard the aligned interior of the range; the driver may decline (advisory). */
static int exec_discard(VdBlockBackend *blk, VdRequest *req)
{
    uint64_t start, end;
    int ret = 0;
    if (vd_request_discard_range(blk, req, &start, &end)) {
        VdDriverReq dr = { .offset = start, .bytes = end - start, .trace = req->trace };
        ret = call_driver(blk, req, VD_CALL_DISCARD, &dr);
        if (ret == -ENOTSUP) {
            ret = 0;
        }
    }
    if (ret >= 0 && req->fua_emulate) {
        ret = flush_stages(blk, req, true);
    }
    return ret;
}

void vd_request_execute(VdBlockBackend *blk, VdRequest *req)
{
    if (req->skip_exec) {
        return;
    }
    int ret = -EINVAL;
    switch (req->type) {
    case VD_OP_READ:
        ret = exec_read(blk, req);
        break;
    case VD_OP_WRITE:
        ret = exec_write(blk, req);
        break;
    case VD_OP_FLUSH:
        ret = flush_stages(blk, req, req->stage2);
        break;
    case VD_OP_DISCARD:
        ret = exec_discard(blk, req);
        break;
    case VD_OP_ZEROES:
        ret = exec_zeroes(blk, req);
        break;
    }
    req->ret = ret < 0 ? ret : 0;
}
