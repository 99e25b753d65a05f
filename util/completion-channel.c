/*
 * completion-channel.c - the one cross-thread completion channel: any thread
 * pushes, the owner's GMainContext delivers.  Lock rules are in
 * include/util/completion-channel.h.
 */
#include "util/completion-channel.h"
#include "util/loop-source.h"

#include <errno.h>
#include <glib-unix.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct VdCompletionChannel {
    GAsyncQueue *queue;         /* thread-safe: pushed by any thread, popped by the owner */
    int event_fd;               /* non-zero while items may be waiting */
    GSource *source;            /* in the owner's context */
    VdCompletionDeliverFunc *deliver;
    void *opaque;
};

/* Owner thread: clear the eventfd (one read per wake), then deliver everything queued. */
static gboolean channel_ready(gint fd, GIOCondition cond, gpointer data)
{
    VdCompletionChannel *ch = data;
    uint64_t count;
    ssize_t n;
    do {
        n = read(fd, &count, sizeof(count));
    } while (n < 0 && errno == EINTR);
    void *item;
    while ((item = g_async_queue_try_pop(ch->queue))) {
        ch->deliver(ch->opaque, item);
    }
    return G_SOURCE_CONTINUE;
}

VdCompletionChannel *vd_completion_channel_new(GMainContext *ctx, VdCompletionDeliverFunc *deliver, void *opaque,
                                               GError **errp)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno), "eventfd: %s", g_strerror(errno));
        return NULL;
    }
    VdCompletionChannel *ch = g_new0(VdCompletionChannel, 1);
    ch->queue = g_async_queue_new();
    ch->event_fd = fd;
    ch->deliver = deliver;
    ch->opaque = opaque;
    ch->source = g_unix_fd_source_new(fd, G_IO_IN);
    g_source_set_callback(ch->source, (GSourceFunc)(void (*)(void))channel_ready, ch, NULL);
    vd_source_no_block(ch->source);
    g_source_attach(ch->source, ctx);
    return ch;
}

void vd_completion_channel_push(VdCompletionChannel *ch, void *item)
{
    g_async_queue_push(ch->queue, item);
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(ch->event_fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    /* EAGAIN: the counter is already non-zero, so the source wakes anyway. */
}

void vd_completion_channel_free(VdCompletionChannel *ch)
{
    if (!ch) {
        return;
    }
    g_assert(g_async_queue_length(ch->queue) == 0);
    g_source_destroy(ch->source);
    g_source_unref(ch->source);
    g_async_queue_unref(ch->queue);
    close(ch->event_fd);
    g_free(ch);
}
