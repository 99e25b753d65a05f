/*
 * test-completion-channel.c - util/completion-channel.c: items pushed from
 * any thread are delivered on the owner's context only, in push order, never
 * inside the push, and only when that context runs.
 */
#include "util/completion-channel.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define THREADS 4
#define PER_THREAD 2000

typedef struct Sink {
    GThread *owner;
    unsigned count;
    unsigned next[THREADS];     /* the next sequence number expected from each pusher */
    bool wrong_thread, out_of_order;
} Sink;

/* Record one delivered item: thread index in the high bits, sequence in the low 16. */
static void sink_deliver(void *opaque, void *item)
{
    Sink *s = opaque;
    guintptr v = GPOINTER_TO_SIZE(item) - 1;
    unsigned t = v >> 16, seq = v & 0xffff;
    s->wrong_thread |= g_thread_self() != s->owner;
    s->out_of_order |= t >= THREADS || seq != s->next[t];
    if (t < THREADS) {
        s->next[t] = seq + 1;
    }
    s->count++;
}

/* An item value that is never NULL. */
static void *item_of(unsigned t, unsigned seq)
{
    return GSIZE_TO_POINTER(((guintptr)t << 16 | seq) + 1);
}

/* A push on the owner thread is delivered later, by its own context, not by another one. */
static void test_deferred_to_owner_context(void **state)
{
    GMainContext *ctx = g_main_context_new();
    Sink s = { .owner = g_thread_self() };
    VdCompletionChannel *ch = vd_completion_channel_new(ctx, sink_deliver, &s, NULL);
    assert_non_null(ch);
    vd_completion_channel_push(ch, item_of(0, 0));
    vd_completion_channel_push(ch, item_of(0, 1));
    assert_int_equal(s.count, 0);                   /* never inside the push */
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    assert_int_equal(s.count, 0);                   /* the default context does not own it */
    g_main_context_iteration(ctx, TRUE);            /* one wake delivers everything queued */
    assert_int_equal(s.count, 2);
    assert_false(s.out_of_order);
    assert_false(g_main_context_iteration(ctx, FALSE)); /* the eventfd was cleared: nothing more */
    vd_completion_channel_free(ch);
    g_main_context_unref(ctx);
}

typedef struct Pusher {
    VdCompletionChannel *ch;
    unsigned t;
} Pusher;

/* Worker: push PER_THREAD items in order. */
static gpointer pusher_run(gpointer data)
{
    Pusher *p = data;
    for (unsigned i = 0; i < PER_THREAD; i++) {
        vd_completion_channel_push(p->ch, item_of(p->t, i));
    }
    return NULL;
}

/* Many threads push at once: every item arrives once, on the owner thread, in each pusher's order. */
static void test_many_threads(void **state)
{
    Sink s = { .owner = g_thread_self() };
    VdCompletionChannel *ch = vd_completion_channel_new(NULL, sink_deliver, &s, NULL);
    Pusher p[THREADS];
    GThread *th[THREADS];
    for (unsigned t = 0; t < THREADS; t++) {
        p[t] = (Pusher){ .ch = ch, .t = t };
        th[t] = g_thread_new("pusher", pusher_run, &p[t]);
    }
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (s.count < THREADS * PER_THREAD && g_get_monotonic_time() < deadline) {
        g_main_context_iteration(NULL, TRUE);
    }
    for (unsigned t = 0; t < THREADS; t++) {
        g_thread_join(th[t]);
    }
    assert_int_equal(s.count, THREADS * PER_THREAD);
    assert_false(s.wrong_thread);
    assert_false(s.out_of_order);
    vd_completion_channel_free(ch);
    vd_completion_channel_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deferred_to_owner_context),
        cmocka_unit_test(test_many_threads),
    };
    return cmocka_run_group_tests_name("util-completion-channel", tests, NULL, NULL);
}
