/* Waiting for many futures: cf_wait and cf_as_completed. Both register a
 * listener on each pending future (as CPython installs a waiter) instead of
 * polling; a listener's notify runs under the future's lock and at most takes
 * the waiter's own lock, so the lock order is future -> waiter.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

/* Whether this thread should run queued tasks while it waits for fs: it is
 * a worker of a thread pool that one of them was submitted to. */
static bool helps(cf_future *const *fs, size_t n)
{
    if (!cf__worker_pool)
        return false;
    for (size_t i = 0; i < n; i++)
        if (cf__wait_helps(fs[i]))
            return true;
    return false;
}

static bool future_failed(cf_future *f)
{
    /* status is written before the state becomes FINISHED, and never again. */
    return cf__future_state(f) == CF__FINISHED && f->status != 0;
}

/* ------------------------------------------------------------------------ */
/* cf_wait                                                                   */
/* ------------------------------------------------------------------------ */

/* Counts the entries done; its event is set once `when` holds, so the waiter
 * wakes once, not at every completion. Each disjunct of wait_satisfied looks
 * at one counter only, so the notifier whose increment makes it true sees it
 * in the value its own increment returned: no lock is needed. */
typedef struct waiter {
    cf__event satisfied;
    cf_return_when when;
    size_t n;
    atomic_size_t done;   /* entries of fs done (duplicates count once per entry) */
    atomic_size_t failed; /* entries finished with an exception */
} waiter;

typedef struct wait_slot {
    cf__listener listener; /* first: notify gets a pointer to it */
    waiter *w;
    bool listening;
} wait_slot;

static bool wait_satisfied(cf_return_when when, size_t done, size_t failed, size_t n)
{
    switch (when) {
    case CF_FIRST_COMPLETED:
        return done > 0;
    case CF_FIRST_EXCEPTION:
        return failed > 0 || done == n;
    case CF_ALL_COMPLETED:
    default:
        return done == n;
    }
}

/* One more entry of fs is done: f. Only the counts our own increments
 * returned matter (see waiter), so a success counts as no failure here. */
static void waiter_count(waiter *w, cf_future *f)
{
    size_t failed = future_failed(f) ? atomic_fetch_add(&w->failed, 1) + 1 : 0;
    size_t done = atomic_fetch_add(&w->done, 1) + 1;
    if (wait_satisfied(w->when, done, failed, w->n))
        cf__event_set(&w->satisfied);
}

static void wait_notify(cf__listener *l, cf_future *f)
{
    waiter_count(((wait_slot *)l)->w, f);
}

/* Stable partition: done futures first. `scratch` holds n pointers.
 * Returns how many are done. */
static size_t move_done_first(cf_future **fs, size_t n, cf_future **scratch)
{
    size_t done = 0, pending = 0;
    for (size_t i = 0; i < n; i++) {
        if (cf_future_done(fs[i]))
            fs[done++] = fs[i];
        else
            scratch[pending++] = fs[i];
    }
    for (size_t i = 0; i < pending; i++)
        fs[done + i] = scratch[i];
    return done;
}

#define WAIT_STACK_SLOTS 8

/* Listen on every pending future and block until `when` holds or the deadline. */
static int wait_blocking(cf_future **fs, size_t n, uint64_t deadline, cf_return_when when,
                         wait_slot *slots)
{
    waiter w = { .when = when, .n = n };
    atomic_init(&w.done, 0);
    atomic_init(&w.failed, 0);
    if (cf__event_init(&w.satisfied) != 0)
        return CF_ESYSTEM;
    for (size_t i = 0; i < n; i++) {
        slots[i] = (wait_slot){ .listener = { .notify = wait_notify }, .w = &w };
        slots[i].listening = cf__future_listen(fs[i], &slots[i].listener);
        if (!slots[i].listening)
            waiter_count(&w, fs[i]);
    }
    /* The caller counts what is done. */
    if (helps(fs, n))
        (void)cf__help_until(&w.satisfied, deadline);
    else
        (void)cf__event_wait(&w.satisfied, deadline);

    /* After this no notify can touch w: unlisten takes each future's lock. */
    for (size_t i = 0; i < n; i++)
        if (slots[i].listening)
            cf__future_unlisten(fs[i], &slots[i].listener);
    cf__event_destroy(&w.satisfied);
    return 0;
}

int cf_wait(cf_future **fs, size_t n, double timeout, cf_return_when when)
{
    if ((!fs && n > 0) || timeout != timeout /* NaN */ ||
        (when != CF_ALL_COMPLETED && when != CF_FIRST_COMPLETED && when != CF_FIRST_EXCEPTION))
        return CF_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return CF_EINVAL;
    if (n == 0)
        return 0;
    uint64_t deadline = cf__deadline(timeout);

    /* One block: n slots, then n scratch pointers for the reordering. */
    struct {
        wait_slot slots[WAIT_STACK_SLOTS];
        cf_future *scratch[WAIT_STACK_SLOTS];
    } on_stack;
    wait_slot *slots = on_stack.slots;
    cf_future **scratch = on_stack.scratch;
    void *heap = NULL;
    if (n > WAIT_STACK_SLOTS) {
        if (n > SIZE_MAX / (sizeof(wait_slot) + sizeof(cf_future *)))
            return CF_ENOMEM;
        heap = cf__malloc(n * (sizeof(wait_slot) + sizeof(cf_future *)));
        if (!heap)
            return CF_ENOMEM;
        slots = heap;
        scratch = (cf_future **)(slots + n);
    }

    size_t done = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (cf_future_done(fs[i])) {
            done++;
            if (future_failed(fs[i]))
                failed++;
        }
    }
    int rc = 0;
    if (!wait_satisfied(when, done, failed, n) &&
        (deadline == CF__NO_DEADLINE || uv_hrtime() < deadline))
        rc = wait_blocking(fs, n, deadline, when, slots);
    if (rc == 0)
        rc = (int)move_done_first(fs, n, scratch);
    cf__free(heap);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* cf_as_completed                                                           */
/* ------------------------------------------------------------------------ */

typedef struct ac_slot {
    cf__done_item item; /* first: a popped item is its slot */
    size_t index;
} ac_slot;

struct cf_as_completed {
    cf__done_queue done;
    bool done_initialised;
    uint64_t deadline;
    size_t n;       /* distinct futures */
    cf_future **fs; /* one reference each */
    ac_slot *slots;
    size_t yielded;
};

/* Copy the distinct futures of fs into it->fs, keeping the first occurrence
 * of each in input order. Uses a small open-addressing pointer set. */
static int ac_collect_distinct(cf_as_completed *it, cf_future *const *fs, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    cf_future **set = cf__calloc(cap, sizeof *set);
    if (!set)
        return CF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t h = ((uintptr_t)fs[i] >> 4) * (size_t)0x9E3779B97F4A7C15ull;
        size_t pos = h & (cap - 1);
        while (set[pos] && set[pos] != fs[i])
            pos = (pos + 1) & (cap - 1);
        if (set[pos])
            continue; /* a duplicate */
        set[pos] = fs[i];
        it->fs[it->n++] = cf_future_ref(fs[i]);
    }
    cf__free(set);
    return 0;
}

static void ac_destroy(cf_as_completed *it)
{
    for (size_t i = 0; i < it->n; i++) {
        if (it->slots)
            cf__done_queue_unwatch(&it->slots[i].item, it->fs[i]);
        cf_future_unref(it->fs[i]);
    }
    if (it->done_initialised)
        cf__done_queue_destroy(&it->done);
    cf__free(it->fs);
    cf__free(it->slots);
    cf__free(it);
}

/* The futures done now come first, in input order; then the others as they
 * complete (also those that complete while we start watching them). */
static void ac_watch_all(cf_as_completed *it)
{
    for (size_t i = 0; i < it->n; i++) {
        it->slots[i].index = i;
        if (cf_future_done(it->fs[i])) /* appended now: listener.data is set */
            cf__done_queue_watch(&it->done, &it->slots[i].item, NULL);
    }
    for (size_t i = 0; i < it->n; i++)
        if (!it->slots[i].item.listener.data) /* zeroed by calloc: not appended yet */
            cf__done_queue_watch(&it->done, &it->slots[i].item, it->fs[i]);
}

cf_as_completed *cf_as_completed_new(cf_future *const *fs, size_t n, double timeout)
{
    if ((!fs && n > 0) || timeout != timeout) /* NaN */
        return cf__fail(CF_EINVAL);
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return cf__fail(CF_EINVAL);
    uint64_t deadline = cf__deadline(timeout);

    cf_as_completed *it = cf__calloc(1, sizeof *it);
    if (!it)
        return cf__fail(CF_ENOMEM);
    it->deadline = deadline;
    it->fs = cf__calloc(n, sizeof *it->fs);
    int rc = it->fs ? ac_collect_distinct(it, fs, n) : CF_ENOMEM;
    if (rc == 0 && !(it->slots = cf__calloc(it->n, sizeof *it->slots)))
        rc = CF_ENOMEM;
    if (rc == 0 && cf__done_queue_init(&it->done) != 0)
        rc = CF_ESYSTEM;
    if (rc != 0) {
        ac_destroy(it);
        return cf__fail(rc);
    }
    it->done_initialised = true;
    ac_watch_all(it);
    return it;
}

int cf_as_completed_next(cf_as_completed *it, cf_future **f)
{
    if (!it || !f)
        return CF_EINVAL;
    if (it->yielded == it->n)
        return 0; /* all yielded */
    cf__done_item *item;
    bool help =
        !atomic_load_explicit(&it->done.ready.set, memory_order_acquire) && helps(it->fs, it->n);
    int rc = cf__done_queue_pop(&it->done, it->deadline, help, &item);
    if (rc != 0)
        return rc;
    it->yielded++;
    *f = it->fs[((ac_slot *)item)->index];
    return 1;
}

void cf_as_completed_free(cf_as_completed *it)
{
    if (it)
        ac_destroy(it);
}
