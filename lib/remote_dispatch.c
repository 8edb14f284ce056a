/* The remote-pool core: handing out work (manager thread).
 *
 * Once per loop iteration the manager hands queued work to the workers:
 * idle workers first, then a few tasks ahead per worker (more when tasks are
 * short, so small tasks stream without a round trip each; few when they are
 * long, so the rest stays cancellable), all frames for one worker in one
 * write. Only as many tasks as there are free places leave the queue, so the
 * rest stays cancellable by cf_future_cancel and by shutdown(cancel_futures)
 * until the last moment. Workers start on demand, up to max_workers.
 *
 * A future is in exactly one of the queue (remote_queue.c), retry (manager:
 * already running, to be sent again) or one worker's in-flight list.
 * SPDX-License-Identifier: MIT */
#include "remote_core.h"

#include "fnref.h"

#include <stdio.h>
#include <string.h>

/* Tasks a worker may hold (running + queued ahead), by mean task run time. */
static unsigned window_for(uint64_t avg_ns, bool known)
{
    if (!known)
        return 2;
    if (avg_ns < 20000)
        return 64;
    if (avg_ns < 200000)
        return 8;
    if (avg_ns < 2000000)
        return 3;
    return 2;
}
#define BYTES_AHEAD ((size_t)16 * 1024 * 1024) /* unsent bytes per worker before we hold back */

/* ------------------------------------------------------------------------ */
/* Finishing futures the executor holds                                      */
/* ------------------------------------------------------------------------ */

void cf__remote_fail_future(cf__remote *r, cf_future *f, int status, int code, const char *message,
                            int sig, int exit_status)
{
    CF__REMOTE_COUNT(r, completed);
    CF__REMOTE_COUNT(r, failed);
    cf__call_clear(&f->call);
    cf__future_set_failure(f, status, code, message, sig, exit_status);
    cf_future_unref(f); /* the executor's reference */
}

void cf__remote_cancel_queued(cf__remote *r, cf_future *f)
{
    /* Never sent, so pending or cancelled already: the cancel holds.
     * Counted first, so that whoever sees it cancelled sees it counted. */
    CF__REMOTE_COUNT(r, cancelled);
    cf_future_cancel(f);
    cf__call_clear(&f->call);
    cf_future_unref(f);
}

void cf__remote_fail_all(cf__remote *r, cf__fqueue *q, int status, int code, const char *message)
{
    cf_future *f;
    while ((f = cf__fq_pop(q)))
        cf__remote_fail_future(r, f, status, code, message, 0, -1);
}

/* Start (set running) a future taken from the queue; false and released
 * when it was cancelled meanwhile. */
static bool start_future(cf__remote *r, cf_future *f)
{
    if (cf_future_set_running_or_notify_cancel(f))
        return true;
    CF__REMOTE_COUNT(r, cancelled);
    cf__call_clear(&f->call); /* cancelled before it started */
    cf_future_unref(f);
    return false;
}

void cf__remote_drop_cancelled(cf__remote *r)
{
    cf__fqueue drop = { 0 };
    cf__rqueue_take_cancelled(r, &drop);
    cf_future *f;
    while ((f = cf__fq_pop(&drop)))
        start_future(r, f);
}

/* ------------------------------------------------------------------------ */
/* Functions by reference                                                    */
/* ------------------------------------------------------------------------ */

int cf__remote_fnref_new(uintptr_t addr, unsigned char **ref, size_t *len)
{
    unsigned char buf[CF__FNREF_MAX];
    int n = cf__fnref_encode(addr, buf, sizeof buf);
    if (n <= 0)
        return CF_EINVAL;
    *ref = cf__malloc((size_t)n);
    if (!*ref)
        return CF_ENOMEM;
    memcpy(*ref, buf, (size_t)n);
    *len = (size_t)n;
    return 0;
}

/* fn's cache entry, encoded on a miss: 0, CF_EINVAL or CF_ENOMEM. */
static int fn_lookup(cf__remote *r, uintptr_t fn, cf__fncache_entry **out)
{
    cf__fncache_entry *e = &r->fncache[(fn >> 4) % CF__FNCACHE_SLOTS];
    if (!e->ref || e->fn != fn) {
        unsigned char *ref;
        size_t len;
        int rc = cf__remote_fnref_new(fn, &ref, &len);
        if (rc != 0)
            return rc;
        cf__free(e->ref);
        *e = (cf__fncache_entry){ .fn = fn, .ref = ref, .len = len };
    }
    *out = e;
    return 0;
}

/* The code a call runs: its task function, or its loop's range function. */
static uintptr_t call_code(const cf__call *call)
{
    if (call->count == 0 && call->range)
        return (uintptr_t)call->range->fn;
    return (uintptr_t)call->fn;
}

void cf__remote_fncache_clear(cf__remote *r)
{
    for (size_t i = 0; i < CF__FNCACHE_SLOTS; i++) {
        cf__free(r->fncache[i].ref);
        r->fncache[i] = (cf__fncache_entry){ 0 };
    }
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

/* The next task to send: one that lost its worker first, then a new one. */
static cf_future *next_task(cf__remote *r, cf__fqueue *local)
{
    cf_future *f = cf__fq_pop(&r->retry);
    return f ? f : cf__fq_pop(local);
}

/* Send f to w. When it cannot be sent, fail f, or (direct: no callback may
 * run here) leave that to the manager: f waits in retry. */
static void send_task(cf__remote *r, cf__rworker *w, cf_future *f, bool direct)
{
    cf__fncache_entry *e = NULL;
    int rc = fn_lookup(r, call_code(&f->call), &e);
    if (rc == 0) {
        f->backend_id = ++r->next_id;
        if (cf__wire_put_task(&w->wbuf, f->backend_id, e->ref, e->len, &f->call) != 0)
            rc = CF_ENOMEM;
    }
    if (rc != 0 && direct) {
        cf__fq_push(&r->retry, f);
        return;
    }
    if (rc == CF_EINVAL) {
        char msg[96];
        snprintf(msg, sizeof msg, "function %p is in no loaded object: it cannot be sent",
                 (void *)call_code(&f->call));
        cf__remote_fail_future(r, f, CF_ETASK, CF_EINVAL, msg, 0, -1);
        return;
    }
    if (rc != 0) {
        cf__remote_fail_future(r, f, CF_ETASK, CF_ENOMEM, "out of memory sending the task", 0, -1);
        return;
    }
    cf__fq_push(&w->inflight, f);
    w->sent++;
    if (w->inflight.n == 1)
        cf__rworker_head_changed(w);
}

/* How many tasks w may hold now: `window` once every worker is up, else
 * one (see dispatch); never more than its max_tasks_per_child allows. */
static size_t worker_limit(const cf__remote *r, const cf__rworker *w, size_t window)
{
    if (w->state != CF__W_READY || w->lost)
        return 0;
    if (w->inflight.n > 0 && w->wbuf.len + w->in_transit >= BYTES_AHEAD)
        return w->inflight.n; /* enough bytes on their way already */
    size_t limit = window;
    if (r->max_tasks) {
        uint64_t left = (uint64_t)r->max_tasks - w->sent;
        if (w->inflight.n + left < limit)
            limit = w->inflight.n + (size_t)left;
    }
    return limit;
}

/* Fail or cancel everything waiting: the pool is broken or terminated. */
static void dispatch_nothing(cf__remote *r, cf__fqueue *waiting)
{
    bool broken = atomic_load_explicit(&r->broken, memory_order_acquire);
    const char *msg = "the pool's workers were terminated";
    if (broken)
        msg = r->broken_message ? r->broken_message : "the pool is broken";
    int sig = broken ? r->broken_signal : 0;
    int status = broken ? r->broken_exit_status : -1;
    cf_future *f;
    while ((f = cf__fq_pop(&r->retry)))
        cf__remote_fail_future(r, f, CF_EBROKEN, CF_EBROKEN, msg, sig, status);
    while ((f = cf__fq_pop(waiting))) {
        if (broken)
            cf__remote_fail_future(r, f, CF_EBROKEN, CF_EBROKEN, msg, sig, status);
        else /* terminated: shutdown(cancel_futures) cancelled these already */
            cf__remote_cancel_queued(r, f);
    }
}

/* Free places on the workers: how many tasks they may take now. */
static size_t free_places(const cf__remote *r, size_t window)
{
    size_t places = 0;
    for (const cf__rworker *w = r->workers; w; w = w->next) {
        size_t limit = worker_limit(r, w, window);
        if (limit > w->inflight.n)
            places += limit - w->inflight.n;
    }
    return places;
}

/* Take up to `want` futures from the queue into local, setting them
 * running (cancelled ones are dropped and do not count). Returns how many
 * stay queued (roughly: see cf__rqueue_take). */
static size_t take_queued(cf__remote *r, cf__fqueue *local, size_t want)
{
    size_t waiting;
    cf_future *f;
    for (;;) {
        cf__fqueue batch = { 0 };
        waiting = cf__rqueue_take(r, &batch, want - local->n);
        if (!batch.head)
            break;
        while ((f = cf__fq_pop(&batch)))
            if (start_future(r, f))
                cf__fq_push(local, f);
        if (local->n >= want)
            break;
    }
    return waiting;
}

/* Idle workers first (level 0), then one more per worker per level up to
 * the window. Returns how many places it filled. */
static size_t place_tasks(cf__remote *r, cf__fqueue *local, size_t window, bool direct)
{
    size_t placed = 0;
    for (size_t level = 0; level < window; level++) {
        for (cf__rworker *w = r->workers; w; w = w->next) {
            if (w->inflight.n != level || level >= worker_limit(r, w, window))
                continue;
            cf_future *f = next_task(r, local);
            if (!f)
                return placed;
            /* A task sent is activity (see run_loop); tasks that wait for
             * a place are not, or a backlog behind busy workers would keep
             * the manager polling for as long as the workers compute. */
            r->activity++;
            send_task(r, w, f, direct);
            placed++;
        }
    }
    return placed;
}

/* More work than places: start workers, up to max_workers. */
static void grow(cf__remote *r, size_t waiting)
{
    while (waiting > (size_t)r->nstarting && r->nworkers < r->max_workers) {
        char why[256] = "";
        int rc = cf__rworker_spawn(r, why, sizeof why);
        if (rc == CF_ENOTSUP) /* no more workers, ever (remote.h): stop asking */
            r->max_workers = r->nworkers;
        if (rc != 0) {
            if (r->nworkers == 0) {
                char msg[320];
                snprintf(msg, sizeof msg, "cannot start a worker: %s", why);
                cf__remote_break(r, msg, 0, -1);
                cf__remote_dispatch(r); /* fails what waits */
            }
            break;
        }
    }
}

/* Take up to `want` queued futures and place them, up to `window` a worker;
 * what found no worker (only if one went away meanwhile: these are running)
 * waits in retry. Then the gauges, before the tasks can start, and the
 * writes. How many were placed; *waiting: how many stay queued. */
static size_t hand_out(cf__remote *r, size_t want, size_t window, bool direct, size_t *waiting)
{
    cf__fqueue local = { 0 };
    *waiting = take_queued(r, &local, want);
    size_t placed = place_tasks(r, &local, window, direct);
    cf__fq_prepend(&r->retry, &local);
    cf__remote_publish_stats(r);
    for (cf__rworker *w = r->workers; w; w = w->next)
        cf__rworker_flush(w);
    return placed;
}

void cf__remote_dispatch(cf__remote *r)
{
    /* Tasks queue behind a running one only when every worker is up: one
     * that is starting takes them sooner. */
    size_t window = window_for(r->avg_ns, r->avg_known);
    if (r->nworkers < r->max_workers || r->nstarting > 0)
        window = 1;
    size_t places = free_places(r, window);
    size_t want = places > r->retry.n ? places - r->retry.n : 0;

    if (atomic_load_explicit(&r->broken, memory_order_acquire) || r->terminating) {
        cf__fqueue all = { 0 };
        cf__rqueue_take_all(r, &all);
        dispatch_nothing(r, &all);
        return;
    }
    size_t waiting;
    size_t placed = hand_out(r, want, window, false, &waiting);
    size_t spare = places > placed ? places - placed : 0; /* idle places left */
    /* What still waits beyond the free places: a submit that came after we
     * took from the queue goes to an idle worker next time, and must not
     * start another one (three submits in a row would use two workers). */
    size_t need = waiting + r->retry.n;
    grow(r, need > spare ? need - spare : 0);
}

void cf__remote_dispatch_direct(cf__remote *r)
{
    if (atomic_load_explicit(&r->broken, memory_order_acquire) || r->terminating ||
        r->nworkers < r->max_workers || r->nstarting > 0 || r->retry.n > 0)
        return;
    size_t idle = free_places(r, 1);
    size_t waiting;
    if (idle > 0)
        hand_out(r, idle, 1, true, &waiting);
}
