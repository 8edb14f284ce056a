/* The five-state future: reference counting, completion, done-callbacks and
 * the listeners that cf_future_result, cf_wait and as_completed block on.
 *
 * Lock order: the future's lock, then a listener's own lock; never the
 * reverse. State changes by compare-and-swap: to a done state under the
 * lock, from PENDING to RUNNING (and CANCELLED to CANCELLED_NOTIFIED)
 * without it, since those wake nobody; it is read lock-free with acquire
 * order. The outcome fields (status, value, exception)
 * are written before the state becomes FINISHED and never change after, so a
 * reader that saw FINISHED may read them without the lock.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* An exception and the message it may own (the message is either owned
 * bytes or a static cf_strerror string). */
typedef struct exception_box {
    cf_exception exc; /* first: f->exception points here */
    char *owned_message;
} exception_box;

/* Used when even the exception record cannot be allocated. The future still
 * reports its status; its exception says why the details are missing. */
static const cf_exception out_of_memory_exception = {
    .code = CF_ENOMEM,
    .message = "out of memory (the task's exception was lost)",
    .signal = 0,
    .exit_status = -1,
};

/* Takes `message` (NULL: cf_strerror(code)). Never returns NULL. */
static cf_exception *exception_new(int code, char *message, int signal, int exit_status)
{
    exception_box *box = cf__malloc(sizeof *box);
    if (!box) {
        cf__free(message);
        return (cf_exception *)&out_of_memory_exception; /* never written through */
    }
    box->owned_message = message;
    box->exc.code = code;
    box->exc.message = message ? message : cf_strerror(code);
    box->exc.signal = signal;
    box->exc.exit_status = exit_status;
    return &box->exc;
}

static void exception_free(cf_exception *exc)
{
    if (!exc || exc == &out_of_memory_exception)
        return;
    exception_box *box = (exception_box *)exc;
    cf__free(box->owned_message);
    cf__free(box);
}

/* ------------------------------------------------------------------------ */
/* Life cycle                                                                */
/* ------------------------------------------------------------------------ */

/* Everything after the lock, which a cached future keeps initialised. */
#define AFTER_LOCK offsetof(cf_future, state)
_Static_assert(offsetof(cf_future, lock) == 0, "the lock comes first in cf_future");

cf_future *cf__future_new(int refs)
{
    bool recyclable = cf__alloc_is_default();
    cf_future *f = recyclable ? cf__future_cache_take() : NULL;
    if (f) {
        memset((unsigned char *)f + AFTER_LOCK, 0, sizeof *f - AFTER_LOCK);
    } else {
        /* A recyclable future comes from libc itself: it is freed there,
         * whatever the hooks are by then. */
        if (!(f = recyclable ? calloc(1, sizeof *f) : cf__calloc(1, sizeof *f)))
            return cf__fail(CF_ENOMEM);
        if (uv_mutex_init(&f->lock) != 0) {
            (recyclable ? free : cf__free)(f);
            return cf__fail(CF_ESYSTEM);
        }
    }
    atomic_init(&f->state, CF__PENDING);
    atomic_init(&f->refs, refs);
    f->recyclable = recyclable;
    return f;
}

cf_future *cf_future_new(void)
{
    return cf__future_new(1);
}

cf_future *cf_future_ref(cf_future *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

static void future_destroy(cf_future *f)
{
    if (f->owned)
        (f->owned_free ? f->owned_free : cf__free)(f->owned);
    exception_free(f->exception);
    cf__callback *cb = f->callbacks; /* left when the future never completed */
    while (cb) {
        cf__callback *next = cb->next;
        cf__free(cb);
        cb = next;
    }
    cf__call_clear(&f->call);
    if (f->recyclable) {
        cf__future_cache_put(f);
        return;
    }
    uv_mutex_destroy(&f->lock);
    cf__free(f);
}

void cf_future_unref(cf_future *f)
{
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        future_destroy(f);
}

/* ------------------------------------------------------------------------ */
/* State queries                                                             */
/* ------------------------------------------------------------------------ */

bool cf_future_cancelled(cf_future *f)
{
    if (!f)
        return false;
    cf__state s = cf__future_state(f);
    return s == CF__CANCELLED || s == CF__CANCELLED_NOTIFIED;
}

bool cf_future_running(cf_future *f)
{
    return f && cf__future_state(f) == CF__RUNNING;
}

bool cf_future_done(cf_future *f)
{
    return f && cf__state_done(cf__future_state(f));
}

/* ------------------------------------------------------------------------ */
/* Listeners and callbacks                                                   */
/* ------------------------------------------------------------------------ */

bool cf__future_listen(cf_future *f, cf__listener *l)
{
    uv_mutex_lock(&f->lock);
    bool added = !cf__state_done(cf__future_state(f));
    if (added) {
        l->prev = NULL;
        l->next = f->listeners;
        if (l->next)
            l->next->prev = l;
        f->listeners = l;
        l->linked = true;
    }
    uv_mutex_unlock(&f->lock);
    return added;
}

void cf__future_unlisten(cf_future *f, cf__listener *l)
{
    uv_mutex_lock(&f->lock);
    if (l->linked) {
        if (l->prev)
            l->prev->next = l->next;
        else
            f->listeners = l->next;
        if (l->next)
            l->next->prev = l->prev;
        l->prev = l->next = NULL;
        l->linked = false;
    }
    uv_mutex_unlock(&f->lock);
}

/* Called with the lock held, after the state became done. Each listener is
 * unlinked before it is notified, so it may go away as soon as it wakes. */
static void notify_listeners_locked(cf_future *f)
{
    cf__listener *l;
    while ((l = f->listeners) != NULL) {
        f->listeners = l->next;
        if (l->next)
            l->next->prev = NULL;
        l->prev = l->next = NULL;
        l->linked = false;
        l->notify(l, f);
    }
}

/* The callbacks taken off a future that just completed. */
typedef struct callback_list {
    cf_done_fn first_fn;
    void *first_userdata;
    cf__callback *rest;
} callback_list;

static callback_list detach_callbacks_locked(cf_future *f)
{
    callback_list list = { f->first_fn, f->first_userdata, f->callbacks };
    f->first_fn = NULL;
    f->first_userdata = NULL;
    f->callbacks = NULL;
    return list;
}

/* Run detached callbacks without the lock. A reference keeps f alive even if
 * a callback drops the last one its owner had. */
static void run_callbacks(cf_future *f, callback_list list)
{
    if (!list.first_fn)
        return;
    cf_future_ref(f);
    list.first_fn(f, list.first_userdata);
    cf__callback *cb = list.rest;
    while (cb) {
        cf__callback *next = cb->next;
        cb->fn(f, cb->userdata);
        cf__free(cb);
        cb = next;
    }
    cf_future_unref(f);
}

int cf_future_add_done_callback(cf_future *f, cf_done_fn cb, void *userdata)
{
    if (!f || !cb)
        return CF_EINVAL;
    uv_mutex_lock(&f->lock);
    if (cf__state_done(cf__future_state(f))) {
        uv_mutex_unlock(&f->lock);
        cb(f, userdata);
        return 0;
    }
    if (!f->first_fn) {
        f->first_fn = cb;
        f->first_userdata = userdata;
    } else {
        cf__callback *node = cf__malloc(sizeof *node);
        if (!node) {
            uv_mutex_unlock(&f->lock);
            return CF_ENOMEM;
        }
        node->next = NULL;
        node->fn = cb;
        node->userdata = userdata;
        cf__callback **tail = &f->callbacks;
        while (*tail)
            tail = &(*tail)->next;
        *tail = node;
    }
    uv_mutex_unlock(&f->lock);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Transitions                                                               */
/* ------------------------------------------------------------------------ */

bool cf_future_cancel(cf_future *f)
{
    if (!f)
        return false;
    uv_mutex_lock(&f->lock);
    int s = CF__PENDING;
    /* A compare-and-swap: set_running may take PENDING without the lock. */
    if (!atomic_compare_exchange_strong_explicit(&f->state, &s, CF__CANCELLED, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        uv_mutex_unlock(&f->lock);
        return s == CF__CANCELLED || s == CF__CANCELLED_NOTIFIED;
    }
    notify_listeners_locked(f);
    callback_list list = detach_callbacks_locked(f);
    uv_mutex_unlock(&f->lock);
    run_callbacks(f, list);
    return true;
}

bool cf_future_set_running_or_notify_cancel(cf_future *f)
{
    if (!f) {
        cf__set_last_error(CF_EINVAL);
        return false;
    }
    /* Without the lock: these two transitions wake no listener and run no
     * callback, and cancel and finish, which hold it, compare-and-swap. */
    int s = CF__PENDING;
    if (atomic_compare_exchange_strong_explicit(&f->state, &s, CF__RUNNING, memory_order_acq_rel,
                                                memory_order_acquire))
        return true;
    /* No listener to wake: cancel woke them, and a done future takes none. */
    if (s == CF__CANCELLED &&
        atomic_compare_exchange_strong_explicit(&f->state, &s, CF__CANCELLED_NOTIFIED,
                                                memory_order_acq_rel, memory_order_acquire)) {
        cf__set_last_error(0);
        return false;
    }
    cf__set_last_error(CF_EINVALIDSTATE);
    return false;
}

/* What a future finishes with. */
typedef struct outcome {
    int status;
    void *value;
    void *owned;
    void (*owned_free)(void *);
    size_t result_size;
    cf_exception *exception;
} outcome;

static void outcome_discard(outcome *o)
{
    if (o->owned)
        (o->owned_free ? o->owned_free : cf__free)(o->owned);
    exception_free(o->exception);
}

/* Pending or running -> finished: store, wake waiters, run callbacks.
 * Takes ownership of what `o` holds, also on failure. */
static int future_finish(cf_future *f, outcome *o)
{
    uv_mutex_lock(&f->lock);
    /* Under the lock no other thread can make f done, but set_running can
     * take it from PENDING to RUNNING: then swap again. */
    int s = atomic_load_explicit(&f->state, memory_order_acquire);
    if (cf__state_done((cf__state)s)) {
        uv_mutex_unlock(&f->lock);
        outcome_discard(o);
        return CF_EINVALIDSTATE;
    }
    f->status = o->status;
    f->value = o->value;
    f->owned = o->owned;
    f->owned_free = o->owned_free;
    f->result_size = o->result_size;
    f->exception = o->exception;
    while (!atomic_compare_exchange_weak_explicit(&f->state, &s, CF__FINISHED, memory_order_acq_rel,
                                                  memory_order_acquire))
        ;
    notify_listeners_locked(f);
    callback_list list = detach_callbacks_locked(f);
    uv_mutex_unlock(&f->lock);
    run_callbacks(f, list);
    return 0;
}

/* What cf_future_result reports for an exception with `code`. */
static int status_for_code(int code)
{
    return code == CF_EBROKEN || code == CF_ETIMEDOUT ? code : CF_ETASK;
}

int cf_future_set_result(cf_future *f, void *value)
{
    if (!f)
        return CF_EINVAL;
    outcome o = { .value = value };
    return future_finish(f, &o);
}

int cf_future_set_exception(cf_future *f, int code, const char *fmt, ...)
{
    if (!f)
        return CF_EINVAL;
    /* Checked first so a doomed call formats nothing; future_finish checks again. */
    if (cf__state_done(cf__future_state(f)))
        return CF_EINVALIDSTATE;
    char *message = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        message = cf__vformat(fmt, ap); /* NULL when out of memory: cf_strerror(code) */
        va_end(ap);
    }
    outcome o = {
        .status = status_for_code(code),
        .exception = exception_new(code, message, 0, -1),
    };
    return future_finish(f, &o);
}

int cf__future_set_owned(cf_future *f, void *value, void *owned, void (*owned_free)(void *),
                         size_t result_size)
{
    outcome o = {
        .value = value,
        .owned = owned,
        .owned_free = owned_free,
        .result_size = result_size,
    };
    return future_finish(f, &o);
}

int cf__future_set_failure(cf_future *f, int status, int code, const char *message, int signal,
                           int exit_status)
{
    char *copy = message ? cf__strdup(message) : NULL;
    outcome o = {
        .status = status < 0 ? status : CF_ETASK,
        .exception = exception_new(code, copy, signal, exit_status),
    };
    return future_finish(f, &o);
}

int cf__future_set_outcome(cf_future *f, cf__outcome *out)
{
    outcome o = { 0 };
    if (out->status == 0) {
        o.value = out->copy ? out->copy : out->value;
        o.owned = out->copy;
        o.owned_free = cf__free;
        o.result_size = out->copy ? out->size : 0;
        cf__free(out->message);
    } else {
        o.status = out->status < 0 ? out->status : CF_ETASK;
        o.exception = exception_new(out->code, out->message, 0, -1);
        cf__free(out->copy);
    }
    memset(out, 0, sizeof *out); /* ownership moved */
    return future_finish(f, &o);
}

/* ------------------------------------------------------------------------ */
/* Waiting                                                                   */
/* ------------------------------------------------------------------------ */

/* A pool's completion usually arrives within microseconds of the request on
 * a multi-core machine; spinning that long is cheaper than parking on a
 * condition variable (two system calls and a wake-up). A thread pool's
 * waiter busy-waits briefly, then parks: yielding in a loop instead kept its
 * CPU from the workers whenever they were all busy (a waiting main thread
 * halved a nested recursion's speed on two CPUs, and made round trips slower
 * too). Process-pool futures only yield, for longer: their completions come
 * after a pipe round trip, and the manager thread and the workers need the
 * CPUs more than we do. */
#define SPIN_PAUSE_NS 2000u  /* thread pool: busy-wait with a CPU pause this long */
#define SPIN_YIELD_NS 50000u /* process pool: yield the CPU until this much has passed */
/* Looks at the state between two clock reads: busy-waiting, 64 (a pause is
 * about 26 ns on AMD EPYC); yielding, 4, because the waiter most often
 * shares its CPU with the manager thread that completes the future, which
 * cannot run while we pause (64 there: process round trip 7.1 us; 4: 5.7 us,
 * cf-bench --system process --workload roundtrip_latency). */
#define SPIN_CHECKS_PAUSE 64
#define SPIN_CHECKS_YIELD 4

static bool spin_until_done(cf_future *f, uint64_t deadline)
{
    if (f->spin_wait == CF__SPIN_NONE || cf__cpu_count() < 2)
        return false;
    bool pause = f->spin_wait == CF__SPIN_PAUSE;
    uint64_t limit = pause ? SPIN_PAUSE_NS : SPIN_YIELD_NS;
    uint64_t start = uv_hrtime();
    for (;;) {
        for (int i = 0, n = pause ? SPIN_CHECKS_PAUSE : SPIN_CHECKS_YIELD; i < n; i++) {
            if (cf__state_done(cf__future_state(f)))
                return true;
            cf__cpu_relax();
        }
        uint64_t now = uv_hrtime();
        if (now >= deadline || now - start >= limit)
            return false;
        if (!pause)
            sched_yield();
    }
}

static void notify_event(cf__listener *l, cf_future *f)
{
    (void)f;
    cf__event_set(l->data);
}

int cf__future_wait_done(cf_future *f, uint64_t deadline)
{
    if (cf__state_done(cf__future_state(f)))
        return 0;
    if (deadline != CF__NO_DEADLINE && uv_hrtime() >= deadline)
        return CF_ETIMEDOUT;
    /* A task of f's own pool runs queued tasks instead, at first without
     * registering anything: f is most often among them. */
    bool help = cf__wait_helps(f);
    if (help) {
        while (!cf__state_done(cf__future_state(f)) && cf__help_once())
            if (deadline != CF__NO_DEADLINE && uv_hrtime() >= deadline)
                return cf__state_done(cf__future_state(f)) ? 0 : CF_ETIMEDOUT;
        if (cf__state_done(cf__future_state(f)))
            return 0;
    } else if (spin_until_done(f, deadline)) {
        return 0;
    }

    cf__event ev;
    int rc = cf__event_init(&ev);
    if (rc != 0)
        return rc;
    cf__listener l = { .notify = notify_event, .data = &ev };
    if (cf__future_listen(f, &l)) {
        rc = help ? cf__help_until(&ev, deadline) : cf__event_wait(&ev, deadline);
        /* Also after it fired: this waits until the notifier let go of ev. */
        cf__future_unlisten(f, &l);
        if (rc == CF_ETIMEDOUT && cf__state_done(cf__future_state(f)))
            rc = 0;
    }
    cf__event_destroy(&ev);
    return rc;
}

int cf_future_result(cf_future *f, double timeout, void **value)
{
    if (!f || timeout != timeout) /* NaN */
        return CF_EINVAL;
    int rc = cf__future_wait_done(f, cf__deadline(timeout));
    if (rc != 0)
        return rc;
    if (cf__future_state(f) != CF__FINISHED)
        return CF_ECANCELLED;
    if (f->status != 0)
        return f->status;
    if (value)
        *value = f->value;
    return 0;
}

size_t cf_future_result_size(cf_future *f)
{
    if (!f || cf__future_state(f) != CF__FINISHED || f->status != 0)
        return 0;
    return f->result_size;
}

int cf_future_exception(cf_future *f, double timeout, const cf_exception **exc)
{
    if (!f || !exc || timeout != timeout) /* NaN */
        return CF_EINVAL;
    int rc = cf__future_wait_done(f, cf__deadline(timeout));
    if (rc != 0)
        return rc;
    if (cf__future_state(f) != CF__FINISHED)
        return CF_ECANCELLED;
    *exc = f->status != 0 ? f->exception : NULL;
    return 0;
}
