/* A queue of futures in the order they complete, for cf_as_completed and the
 * unordered cf_map: a listener on each watched future appends its item as
 * the future completes, and one thread pops them, waiting with a deadline.
 *
 * The queue is built on a cf__event: its mutex guards the list, and `set`
 * says the list is not empty, so that a wait for the next item is a wait for
 * the event. Notify runs under the future's lock and takes the event's mutex
 * (lock order future -> queue, as for every listener).
 * SPDX-License-Identifier: MIT */
#include "internal.h"

int cf__done_queue_init(cf__done_queue *q)
{
    q->head = q->tail = NULL;
    return cf__event_init(&q->ready);
}

void cf__done_queue_destroy(cf__done_queue *q)
{
    cf__event_destroy(&q->ready);
}

/* With the event's mutex held. */
static void append_locked(cf__done_queue *q, cf__done_item *item)
{
    item->next = NULL;
    if (q->tail)
        q->tail->next = item;
    else
        q->head = item;
    q->tail = item;
    atomic_store_explicit(&q->ready.set, true, memory_order_release);
}

static void append(cf__done_queue *q, cf__done_item *item)
{
    uv_mutex_lock(&q->ready.mutex);
    append_locked(q, item);
    /* Under the lock: the popping thread may free the queue as soon as it
     * has seen the item and the lock is released. */
    uv_cond_signal(&q->ready.cond);
    uv_mutex_unlock(&q->ready.mutex);
}

static void notify_done(cf__listener *l, cf_future *f)
{
    (void)f;
    append(l->data, (cf__done_item *)l);
}

void cf__done_queue_watch(cf__done_queue *q, cf__done_item *item, cf_future *f)
{
    item->next = NULL;
    item->listener = (cf__listener){ .notify = notify_done, .data = q };
    if (!f || !cf__future_listen(f, &item->listener))
        append(q, item); /* done already (or no future): ready at once */
}

void cf__done_queue_unwatch(cf__done_item *item, cf_future *f)
{
    if (f) /* a no-op once it fired, or if it was never registered */
        cf__future_unlisten(f, &item->listener);
}

int cf__done_queue_pop(cf__done_queue *q, uint64_t deadline, bool help, cf__done_item **item)
{
    int rc = 0;
    if (help) /* until the list is not empty, running queued tasks meanwhile */
        (void)cf__help_until(&q->ready, deadline);
    uv_mutex_lock(&q->ready.mutex);
    while (!q->head) {
        if (!cf__cond_wait_until(&q->ready.cond, &q->ready.mutex, deadline)) {
            rc = CF_ETIMEDOUT;
            break;
        }
    }
    cf__done_item *first = q->head;
    if (first) {
        q->head = first->next;
        if (!q->head) {
            q->tail = NULL;
            atomic_store_explicit(&q->ready.set, false, memory_order_relaxed);
        }
        first->next = NULL;
    }
    uv_mutex_unlock(&q->ready.mutex);
    *item = first;
    return rc;
}

void cf__done_queue_clear(cf__done_queue *q)
{
    uv_mutex_lock(&q->ready.mutex);
    q->head = q->tail = NULL;
    atomic_store_explicit(&q->ready.set, false, memory_order_relaxed);
    uv_mutex_unlock(&q->ready.mutex);
}
