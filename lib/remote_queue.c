/* The remote-pool core: futures submitted and not handed out yet.
 *
 * Submitters push onto a lock-free stack, the inbox (as the thread pool
 * does), so that a submit never waits for the manager: its low bit closes it
 * (shutdown, a broken pool). The manager takes the whole inbox at once and
 * appends it, oldest first, to `queued`, from which it hands work out; the
 * lock of `queued` is taken by the manager and, rarely, by shutdown's cancel
 * and the statistics, never by a submit.
 *
 * A submit still uses the pool after its push (it may wake the manager):
 * whoever takes a future out of the queue waits until its submit is done
 * with the pool (submit_returned), so the manager cannot finish, and the
 * pool cannot go, under a submit's feet.
 * SPDX-License-Identifier: MIT */
#include "remote_core.h"

#include <sched.h>

#define INBOX_CLOSED ((uintptr_t)1)

bool cf__rqueue_push(cf__remote *r, cf_future *f)
{
    uintptr_t head = atomic_load_explicit(&r->inbox, memory_order_relaxed);
    do {
        if (head & INBOX_CLOSED)
            return false;
        f->queue_next = (cf_future *)head;
    } while (!atomic_compare_exchange_weak_explicit(&r->inbox, &head, (uintptr_t)f,
                                                    memory_order_seq_cst, memory_order_relaxed));
    return true;
}

void cf__rqueue_close(cf__remote *r)
{
    atomic_fetch_or_explicit(&r->inbox, INBOX_CLOSED, memory_order_seq_cst);
}

void cf__rqueue_wait_submitted(cf_future *f)
{
    for (unsigned i = 0; !atomic_load_explicit(&f->submit_returned, memory_order_acquire); i++) {
        if (i < 64)
            cf__cpu_relax();
        else
            sched_yield(); /* the submitter may share our CPU */
    }
}

/* Move the inbox, oldest first, to the end of queued (queue_lock held). */
static void take_inbox_locked(cf__remote *r)
{
    uintptr_t head = atomic_load_explicit(&r->inbox, memory_order_relaxed);
    while ((head & ~INBOX_CLOSED) != 0 &&
           !atomic_compare_exchange_weak_explicit(&r->inbox, &head, head & INBOX_CLOSED,
                                                  memory_order_acquire, memory_order_relaxed))
        ;
    cf_future *list = (cf_future *)(head & ~INBOX_CLOSED);
    cf__fqueue fifo = { 0 };
    while (list) { /* reverse: the inbox is newest first */
        cf_future *next = list->queue_next;
        list->queue_next = fifo.head;
        fifo.head = list;
        if (!fifo.tail)
            fifo.tail = list;
        fifo.n++;
        list = next;
    }
    if (!fifo.head)
        return;
    if (r->queued.tail)
        r->queued.tail->queue_next = fifo.head;
    else
        r->queued.head = fifo.head;
    r->queued.tail = fifo.tail;
    r->queued.n += fifo.n;
}

static bool inbox_empty(cf__remote *r)
{
    return (atomic_load_explicit(&r->inbox, memory_order_seq_cst) & ~INBOX_CLOSED) == 0;
}

bool cf__rqueue_empty(cf__remote *r)
{
    if (!inbox_empty(r))
        return false;
    uv_mutex_lock(&r->queue_lock);
    bool empty = r->queued.head == NULL;
    uv_mutex_unlock(&r->queue_lock);
    return empty && inbox_empty(r);
}

size_t cf__rqueue_take(cf__remote *r, cf__fqueue *out, size_t want)
{
    uv_mutex_lock(&r->queue_lock);
    if (r->queued.n < want)
        take_inbox_locked(r);
    cf_future *f;
    while (out->n < want && (f = cf__fq_pop(&r->queued)))
        cf__fq_push(out, f);
    size_t left = r->queued.n;
    uv_mutex_unlock(&r->queue_lock);
    for (f = out->head; f; f = f->queue_next)
        cf__rqueue_wait_submitted(f);
    return left + !inbox_empty(r);
}

void cf__rqueue_take_all(cf__remote *r, cf__fqueue *out)
{
    uv_mutex_lock(&r->queue_lock);
    take_inbox_locked(r);
    *out = r->queued;
    r->queued = (cf__fqueue){ 0 };
    uv_mutex_unlock(&r->queue_lock);
    for (cf_future *f = out->head; f; f = f->queue_next)
        cf__rqueue_wait_submitted(f);
}

void cf__rqueue_take_cancelled(cf__remote *r, cf__fqueue *out)
{
    cf__fqueue keep = { 0 };
    cf_future *f;
    uv_mutex_lock(&r->queue_lock);
    take_inbox_locked(r);
    while ((f = cf__fq_pop(&r->queued)))
        cf__fq_push(cf_future_cancelled(f) ? out : &keep, f);
    r->queued = keep;
    uv_mutex_unlock(&r->queue_lock);
    for (f = out->head; f; f = f->queue_next)
        cf__rqueue_wait_submitted(f);
}

void cf__rqueue_count(cf__remote *r, size_t *pending, size_t *cancelled)
{
    uv_mutex_lock(&r->queue_lock); /* the inbox only grows at its head meanwhile */
    cf_future *lists[2] = {
        r->queued.head,
        (cf_future *)(atomic_load_explicit(&r->inbox, memory_order_acquire) & ~INBOX_CLOSED),
    };
    for (int i = 0; i < 2; i++) {
        for (cf_future *f = lists[i]; f; f = f->queue_next) {
            if (cf_future_cancelled(f))
                (*cancelled)++;
            else
                (*pending)++;
        }
    }
    uv_mutex_unlock(&r->queue_lock);
}
