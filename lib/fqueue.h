/* An intrusive FIFO of futures, linked through f->queue_next (a future is
 * in at most one such queue at a time). Not thread-safe: its owner locks.
 * Never installed.
 * SPDX-License-Identifier: MIT */
#ifndef CF_FQUEUE_H
#define CF_FQUEUE_H

#include "internal.h"

typedef struct cf__fqueue {
    cf_future *head, *tail;
    size_t n;
} cf__fqueue;

static inline void cf__fq_push(cf__fqueue *q, cf_future *f)
{
    f->queue_next = NULL;
    if (q->tail)
        q->tail->queue_next = f;
    else
        q->head = f;
    q->tail = f;
    q->n++;
}

static inline cf_future *cf__fq_pop(cf__fqueue *q)
{
    cf_future *f = q->head;
    if (f) {
        q->head = f->queue_next;
        if (!q->head)
            q->tail = NULL;
        f->queue_next = NULL;
        q->n--;
    }
    return f;
}

/* Put all of `front` before q's items (front is left empty). */
static inline void cf__fq_prepend(cf__fqueue *q, cf__fqueue *front)
{
    if (!front->head)
        return;
    front->tail->queue_next = q->head;
    if (!q->tail)
        q->tail = front->tail;
    q->head = front->head;
    q->n += front->n;
    *front = (cf__fqueue){ 0 };
}

#endif /* CF_FQUEUE_H */
