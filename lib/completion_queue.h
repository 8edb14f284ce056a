/* The core that cf_completion_queue and cf_uv_bridge share: futures handed in
 * with a callback, moved to a ready list by the thread that completes them,
 * and their callbacks run by whoever dispatches. Never installed.
 *
 * Each entry listens on its future (a cf__listener, not a done-callback), so
 * closing the core can take every listener off again: once
 * cf__completions_close returns, no completing thread touches the core or
 * its entries any more, and nothing stays behind for a future that is still
 * pending.
 * SPDX-License-Identifier: MIT */
#ifndef CF_COMPLETION_QUEUE_H
#define CF_COMPLETION_QUEUE_H

#include "internal.h"

/* One future and its callback. Allocated when it is added, so that the
 * completing thread allocates nothing. */
typedef struct cf__completion cf__completion;

typedef struct cf__completions cf__completions;
struct cf__completions {
    uv_mutex_t lock;
    cf__completion *pending; /* doubly linked: futures not yet done */
    cf__completion *ready;   /* FIFO, in completion order: callbacks to run */
    cf__completion **ready_tail;
    size_t nready;      /* entries on the ready list */
    size_t outstanding; /* entries pending or ready (not yet dispatched) */
    int dispatching;    /* dispatch calls under way */
    atomic_bool closed;
    /* Called with the lock held when the ready list becomes non-empty
     * (ready = true) and when a dispatch empties it (false). Must not block;
     * runs in the completing thread (under that future's lock) or in add and
     * dispatch. Never called once cf__completions_close has begun. */
    void (*signal)(cf__completions *c, bool ready);
    /* Or NULL. Called with the lock held when attach has put an entry on
     * the pending list, before its future can make it ready: what the owner
     * does here cannot race with a callback that closes the core. Never
     * called once cf__completions_close has begun. */
    void (*attached)(cf__completions *c);
};

/* 0, or CF_ESYSTEM when the mutex cannot be made. attached may be NULL. */
int cf__completions_init(cf__completions *c, void (*signal)(cf__completions *c, bool ready),
                         void (*attached)(cf__completions *c));
/* Free the mutex (after close). */
void cf__completions_destroy(cf__completions *c);

/* An entry for a later cf__completions_attach: NULL when out of memory. */
cf__completion *cf__completion_new(void);
/* Free an entry that was never attached (NULL-safe). */
void cf__completion_discard(cf__completion *e);
/* Queue cb(f, userdata) for the dispatch after f is done; takes e and a
 * reference to f. Never fails; never runs cb. On a core closed meanwhile
 * (by a callback on another thread) the entry is dropped. */
void cf__completions_attach(cf__completions *c, cf__completion *e, cf_future *f, cf_done_fn cb,
                            void *userdata);
/* new + attach: 0, CF_EINVAL (NULL f or cb) or CF_ENOMEM. */
int cf__completions_add(cf__completions *c, cf_future *f, cf_done_fn cb, void *userdata);

/* Run, in this thread, the callbacks ready when it began; returns how many
 * ran. If the core is closed meanwhile (by a callback), it stops there, and
 * *release tells whether this was the last dispatch under way: its caller
 * then frees the core. */
int cf__completions_dispatch(cf__completions *c, bool *release);
/* Entries pending or ready (a snapshot). */
size_t cf__completions_outstanding(cf__completions *c);

/* Drop every callback not yet run (releasing their futures) and stop
 * listening on pending futures. Returns true when no dispatch is under way
 * (the caller may free the core now); false when a callback of a dispatch
 * called it, which then frees it as it returns (see above). */
bool cf__completions_close(cf__completions *c);

#endif /* CF_COMPLETION_QUEUE_H */
