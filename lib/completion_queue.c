/* Completions on an event loop: the core shared with the libuv bridge
 * (completion_queue.h), and cf_completion_queue, whose eventfd any loop can
 * poll.
 *
 * An entry is on exactly one list: `pending` while its future runs, `ready`
 * once it is done, then on a dispatch's own batch while its callback runs.
 * The completing thread moves it from pending to ready in the listener's
 * notify, with the future's lock held and then the core's (the lock order
 * of future.c: future, then listener), and allocates nothing.
 *
 * Closing sets `closed` under the core's lock, after which a notify leaves
 * its entry alone, then takes every pending entry's listener off its future:
 * unlisten takes the future's lock, so it also waits for a notify under way.
 * Dispatches and close count themselves in `dispatching`; the last one to
 * leave a closed core tells its caller to free it, so a callback may free
 * the queue it runs from.
 * SPDX-License-Identifier: MIT */
#include "completion_queue.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct cf__completion {
    cf__listener listener; /* .data points back here */
    cf__completions *owner;
    cf_future *future; /* one reference */
    cf_done_fn cb;
    void *userdata;
    cf__completion *prev, *next; /* pending: both; ready and batches: next */
};

/* ------------------------------------------------------------------------ */
/* The core                                                                  */
/* ------------------------------------------------------------------------ */

int cf__completions_init(cf__completions *c, void (*signal)(cf__completions *c, bool ready),
                         void (*attached)(cf__completions *c))
{
    memset(c, 0, sizeof *c);
    if (uv_mutex_init(&c->lock) != 0)
        return CF_ESYSTEM;
    c->ready_tail = &c->ready;
    atomic_init(&c->closed, false);
    c->signal = signal;
    c->attached = attached;
    return 0;
}

void cf__completions_destroy(cf__completions *c)
{
    uv_mutex_destroy(&c->lock);
}

cf__completion *cf__completion_new(void)
{
    return cf__malloc(sizeof(cf__completion));
}

void cf__completion_discard(cf__completion *e)
{
    cf__free(e);
}

/* Release an entry whose callback ran or is dropped. */
static void entry_drop(cf__completion *e)
{
    cf_future_unref(e->future);
    cf__free(e);
}

/* With the lock held: pending -> ready. */
static void make_ready_locked(cf__completions *c, cf__completion *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->pending = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
    bool was_empty = c->ready == NULL;
    *c->ready_tail = e;
    c->ready_tail = &e->next;
    c->nready++;
    if (was_empty)
        c->signal(c, true);
}

/* In the completing thread, with the future's lock held. */
static void entry_notify(cf__listener *l, cf_future *f)
{
    (void)f;
    cf__completion *e = l->data;
    cf__completions *c = e->owner;
    uv_mutex_lock(&c->lock);
    if (!atomic_load_explicit(&c->closed, memory_order_relaxed))
        make_ready_locked(c, e);
    uv_mutex_unlock(&c->lock);
}

void cf__completions_attach(cf__completions *c, cf__completion *e, cf_future *f, cf_done_fn cb,
                            void *userdata)
{
    e->listener = (cf__listener){ .notify = entry_notify, .data = e };
    e->owner = c;
    e->future = cf_future_ref(f);
    e->cb = cb;
    e->userdata = userdata;
    /* On the pending list before it listens: the notify may come at once. */
    uv_mutex_lock(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        uv_mutex_unlock(&c->lock);
        entry_drop(e);
        return;
    }
    e->prev = NULL;
    e->next = c->pending;
    if (e->next)
        e->next->prev = e;
    c->pending = e;
    c->outstanding++;
    if (c->attached)
        c->attached(c);
    uv_mutex_unlock(&c->lock);
    if (!cf__future_listen(f, &e->listener)) { /* already done */
        uv_mutex_lock(&c->lock);
        /* Closed meanwhile: close took e off the pending list, and drops it. */
        if (!atomic_load_explicit(&c->closed, memory_order_relaxed))
            make_ready_locked(c, e);
        uv_mutex_unlock(&c->lock);
    }
}

int cf__completions_add(cf__completions *c, cf_future *f, cf_done_fn cb, void *userdata)
{
    if (!f || !cb)
        return CF_EINVAL;
    cf__completion *e = cf__completion_new();
    if (!e)
        return CF_ENOMEM;
    cf__completions_attach(c, e, f, cb, userdata);
    return 0;
}

size_t cf__completions_outstanding(cf__completions *c)
{
    uv_mutex_lock(&c->lock);
    size_t n = c->outstanding;
    uv_mutex_unlock(&c->lock);
    return n;
}

/* Leave a dispatch or a close: true when this was the last one in a closed
 * core, whose caller then frees it. */
static bool leave(cf__completions *c)
{
    uv_mutex_lock(&c->lock);
    c->dispatching--;
    bool release = atomic_load_explicit(&c->closed, memory_order_relaxed) && c->dispatching == 0;
    uv_mutex_unlock(&c->lock);
    return release;
}

int cf__completions_dispatch(cf__completions *c, bool *release)
{
    *release = false;
    uv_mutex_lock(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed) || !c->ready) {
        uv_mutex_unlock(&c->lock);
        return 0;
    }
    cf__completion *batch = c->ready;
    c->ready = NULL;
    c->ready_tail = &c->ready;
    c->outstanding -= c->nready;
    c->nready = 0;
    c->signal(c, false);
    c->dispatching++;
    uv_mutex_unlock(&c->lock);

    int ran = 0;
    while (batch) {
        cf__completion *e = batch;
        batch = e->next;
        /* A callback may have closed the core: drop the rest. */
        if (!atomic_load_explicit(&c->closed, memory_order_relaxed)) {
            e->cb(e->future, e->userdata);
            ran++;
        }
        entry_drop(e);
    }
    *release = leave(c);
    return ran;
}

bool cf__completions_close(cf__completions *c)
{
    uv_mutex_lock(&c->lock);
    atomic_store_explicit(&c->closed, true, memory_order_relaxed);
    cf__completion *pending = c->pending, *ready = c->ready;
    c->pending = c->ready = NULL;
    c->ready_tail = &c->ready;
    c->nready = c->outstanding = 0;
    c->dispatching++;
    uv_mutex_unlock(&c->lock);

    while (pending) {
        cf__completion *e = pending;
        pending = e->next;
        cf__future_unlisten(e->future, &e->listener); /* waits for a notify under way */
        entry_drop(e);
    }
    while (ready) {
        cf__completion *e = ready;
        ready = e->next;
        entry_drop(e);
    }
    return leave(c);
}

/* ------------------------------------------------------------------------ */
/* cf_completion_queue: the core and an eventfd                              */
/* ------------------------------------------------------------------------ */

struct cf_completion_queue {
    cf__completions core; /* first: the signal gets a pointer to it */
    int fd;
};

/* The eventfd's counter is non-zero exactly while the ready list is not
 * empty: 1 is added when the list fills and read back when it is emptied. */
static void queue_signal(cf__completions *c, bool ready)
{
    cf_completion_queue *q = (cf_completion_queue *)c;
    uint64_t value = 1;
    ssize_t r;
    do
        r = ready ? write(q->fd, &value, sizeof value) : read(q->fd, &value, sizeof value);
    while (r < 0 && errno == EINTR);
    /* Nothing else can fail: the counter stays far below its limit and the
     * descriptor is non-blocking. */
}

cf_completion_queue *cf_completion_queue_new(void)
{
    cf_completion_queue *q = cf__malloc(sizeof *q);
    if (!q)
        return cf__fail(CF_ENOMEM);
    q->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->fd < 0) {
        int err = errno;
        cf__free(q);
        return cf__fail_msg(CF_ESYSTEM, "eventfd: %s", strerror(err));
    }
    if (cf__completions_init(&q->core, queue_signal, NULL) != 0) {
        close(q->fd);
        cf__free(q);
        return cf__fail_msg(CF_ESYSTEM, "the completion queue's mutex could not be made");
    }
    return q;
}

int cf_completion_queue_fd(cf_completion_queue *q)
{
    return q ? q->fd : CF_EINVAL;
}

int cf_completion_queue_add(cf_completion_queue *q, cf_future *f, cf_done_fn cb, void *userdata)
{
    if (!q)
        return CF_EINVAL;
    return cf__completions_add(&q->core, f, cb, userdata);
}

static void queue_destroy(cf_completion_queue *q)
{
    close(q->fd);
    cf__completions_destroy(&q->core);
    cf__free(q);
}

int cf_completion_queue_dispatch(cf_completion_queue *q)
{
    if (!q)
        return CF_EINVAL;
    bool release;
    int ran = cf__completions_dispatch(&q->core, &release);
    if (release)
        queue_destroy(q);
    return ran;
}

void cf_completion_queue_free(cf_completion_queue *q)
{
    if (q && cf__completions_close(&q->core))
        queue_destroy(q);
}
