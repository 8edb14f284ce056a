/* The remote-pool core: creation, the manager thread and its shutdown, and
 * the executor ops (see remote.h for the whole picture).
 *
 * Submitters queue futures (remote_queue.c, lock-free) and wake the manager
 * with uv_async_send unless it polls; once per loop iteration (a uv_check
 * handle) the manager hands out work (remote_dispatch.c). While it polls, a
 * submit that finds the manager between two iterations (core_lock free) and
 * a worker idle writes its task to that worker itself, where the transport
 * allows it (flush_any_thread). Shutdown: once nothing waits and no task
 * runs, the workers are retired; once they have exited, the loop's own
 * handles close and uv_run returns.
 * SPDX-License-Identifier: MIT */
#include "remote_core.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>

/* Descriptors libuv's first loop makes (its signal lock pipe, the loop's
 * epoll, signal pipe and eventfd, a spare for accept()), and a margin. */
#define LOOP_FDS 8
/* How long the manager polls its loop after the last activity (run_loop). */
#define POLL_NS 50000u

static _Thread_local cf__remote *manager_of; /* set in the manager thread */

void cf__remote_forget_manager(void)
{
    manager_of = NULL;
}

bool cf__remote_on_manager(const cf__remote *r)
{
    return manager_of == r;
}

uv_loop_t *cf__remote_loop(cf__remote *r)
{
    return &r->loop;
}

void *cf__remote_transport(cf__remote *r)
{
    return r->transport;
}

void cf__remote_break(cf__remote *r, const char *why, int sig, int exit_status)
{
    if (atomic_load_explicit(&r->broken, memory_order_relaxed))
        return;
    r->broken_message = cf__strdup(why);
    r->broken_signal = sig;
    r->broken_exit_status = exit_status;
    atomic_store_explicit(&r->broken, true, memory_order_release);
    cf__rqueue_close(r); /* later submits fail at once */
}

/* ------------------------------------------------------------------------ */
/* The manager thread                                                        */
/* ------------------------------------------------------------------------ */

static void on_closed_quiet(uv_handle_t *h)
{
    (void)h;
}

static bool any_task_held(const cf__remote *r)
{
    if (r->retry.head)
        return true;
    for (const cf__rworker *w = r->workers; w; w = w->next)
        if (w->inflight.head)
            return true;
    return false;
}

/* Shut down: once nothing waits and no task runs, workers go; once they
 * have exited, the loop's own handles close and uv_run returns. */
static void maybe_finish(cf__remote *r)
{
    if (r->finishing || !atomic_load_explicit(&r->shutdown, memory_order_acquire))
        return;
    bool idle = cf__rqueue_empty(r);
    bool busy = any_task_held(r);
    if (!idle && !busy) { /* no worker would skip the cancelled ones soon */
        cf__remote_drop_cancelled(r);
        idle = cf__rqueue_empty(r);
    }
    if (!idle || r->retry.head)
        return;
    for (cf__rworker *w = r->workers; w; w = w->next)
        if (!w->inflight.head)
            cf__rworker_retire(w);
    if (r->nworkers > 0)
        return;
    r->finishing = true;
    uv_mutex_lock(&r->lock);
    r->manager_alive = false;
    uv_cond_broadcast(&r->cond);
    uv_mutex_unlock(&r->lock);
    if (r->ops->finish)
        r->ops->finish(r);
    uv_close((uv_handle_t *)&r->async, on_closed_quiet);
    uv_close((uv_handle_t *)&r->check, on_closed_quiet);
}

/* cf_executor_terminate_workers / kill_workers, on the manager thread. */
static void signal_all(cf__remote *r, int sig)
{
    r->terminating = true;
    for (cf__rworker *w = r->workers; w; w = w->next)
        cf__rworker_kill(w, sig);
    cf__remote_fail_all(r, &r->retry, CF_EBROKEN, CF_EBROKEN, "the pool's workers were terminated");
}

static void on_async(uv_async_t *a)
{
    cf__remote *r = a->data;
    uv_mutex_lock(&r->lock);
    int sig = r->signal_req;
    uint64_t gen = r->signal_gen_req;
    r->signal_req = 0;
    uv_mutex_unlock(&r->lock);
    if (sig) {
        signal_all(r, sig);
        uv_mutex_lock(&r->lock);
        r->signal_gen_done = gen;
        uv_cond_broadcast(&r->cond);
        uv_mutex_unlock(&r->lock);
    }
    /* The work itself is handed out in on_check, once per loop iteration. */
}

void cf__remote_publish_stats(cf__remote *r)
{
    size_t idle = 0, running = 0, ahead = r->retry.n;
    for (const cf__rworker *w = r->workers; w; w = w->next) {
        if (w->lost)
            continue;
        if (w->inflight.head) {
            running++;
            ahead += w->inflight.n - 1;
        } else if (w->state == CF__W_READY) {
            idle++;
        }
    }
    atomic_store_explicit(&r->stats.workers, (size_t)r->nworkers, memory_order_relaxed);
    atomic_store_explicit(&r->stats.idle, idle, memory_order_relaxed);
    atomic_store_explicit(&r->stats.running, running, memory_order_relaxed);
    atomic_store_explicit(&r->stats.ahead, ahead, memory_order_relaxed);
}

static void on_check(uv_check_t *c)
{
    cf__remote *r = c->data;
    cf__remote_dispatch(r);
    maybe_finish(r);
    cf__remote_publish_stats(r);
}

/* While it polls, the manager lets go of core_lock as it yields, so a
 * submit can hand its task to an idle worker itself (the caller's write
 * instead of two context switches to reach the manager: remote_submit). It
 * takes the lock back by trying, so the submit's unlock wakes nobody. */
static void yield_core(cf__remote *r)
{
    uv_mutex_unlock(&r->core_lock);
    sched_yield(); /* a worker or the waiter may need this CPU */
    while (uv_mutex_trylock(&r->core_lock) != 0)
        sched_yield();
}

/* The manager's loop. Waking a thread that sleeps in epoll costs 5-60 us on
 * these machines, more than a small task's whole round trip: so after any
 * activity (a reply read, a task sent) the manager polls its loop for a
 * while before it blocks again, and a submit made while it polls does not
 * wake it (it sees the work in its next iteration). Once it stops polling it
 * hands out work once more, so that no submit that saw it polling is left
 * waiting. */
static void run_loop(cf__remote *r)
{
    while (uv_run(&r->loop, UV_RUN_ONCE)) {
        if (!r->may_poll)
            continue;
        bool more;
        do {
            atomic_store_explicit(&r->polling, true, memory_order_relaxed);
            uint64_t seen = r->activity, last = uv_hrtime();
            for (;;) {
                if (!uv_run(&r->loop, UV_RUN_NOWAIT)) {
                    atomic_store_explicit(&r->polling, false, memory_order_seq_cst);
                    return; /* nothing left: the pool finished */
                }
                uint64_t now = uv_hrtime();
                if (r->activity != seen) {
                    seen = r->activity;
                    last = now;
                } else if (now - last >= POLL_NS) {
                    break;
                }
                yield_core(r);
            }
            /* A submit pushes, then reads `polling`; we clear it, then hand
             * out work once more, which looks at the inbox (sequentially
             * consistent, with the fence): one of us sees the other. Poll on
             * only if that pass sent something: tasks waiting for a place
             * behind busy workers are no activity (polling for them would
             * take a CPU from the workers for as long as they compute). */
            atomic_store_explicit(&r->polling, false, memory_order_seq_cst);
            atomic_thread_fence(memory_order_seq_cst);
            uint64_t before = r->activity;
            if (!uv_run(&r->loop, UV_RUN_NOWAIT))
                return;
            more = r->activity != before;
        } while (more);
    }
}

static void manager_main(void *arg)
{
    cf__remote *r = arg;
    manager_of = r;
    /* Signals are for the program's own threads; a write to a dead worker
     * must give EPIPE here, not kill the program with SIGPIPE. Workers
     * started from this thread begin with every signal blocked and unblock
     * them once their dispositions are reset (worker_entry.c). */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    uv_mutex_lock(&r->core_lock);
    run_loop(r);
    uv_mutex_unlock(&r->core_lock);
    uv_loop_close(&r->loop);
    manager_of = NULL;
    if (r->orphaned) { /* nobody joins us: see remote_release */
        pthread_detach(pthread_self());
        cf__executor_unhold(&r->base); /* the user's hold, left to us */
        return;
    }
    cf__event_set(&r->done);
}

/* ------------------------------------------------------------------------ */
/* The ops                                                                   */
/* ------------------------------------------------------------------------ */

/* A submit that finds the manager polling, between two iterations, and a
 * worker idle hands its future to that worker itself: its write instead of
 * the manager's, which would first need a CPU (on two CPUs the manager often
 * shares one with the waiter or the worker). stats.idle says whether a
 * worker was idle when the manager last looked: without one there is
 * nothing to do, and a stream of submits would pay for the lock each. Once
 * it holds core_lock the manager cannot finish, so f counts as submitted
 * (we take it ourselves). Whether it did (then f is done with the pool). */
static bool submit_direct(cf__remote *r, cf_future *f)
{
    if (!r->ops->flush_any_thread || !atomic_load_explicit(&r->stats.idle, memory_order_relaxed) ||
        cf__remote_on_manager(r) || uv_mutex_trylock(&r->core_lock) != 0)
        return false;
    atomic_store_explicit(&f->submit_returned, true, memory_order_release);
    cf__remote_dispatch_direct(r);
    uv_mutex_unlock(&r->core_lock); /* the last access */
    return true;
}

static int remote_submit(cf_executor *ex, cf_future *f)
{
    cf__remote *r = (cf__remote *)ex;
    if (cf__wire_call_data_size(&f->call) > r->max_message)
        return CF_ETOOBIG;
    f->spin_wait = CF__SPIN_YIELD;
    if (!cf__rqueue_push(r, f))
        return atomic_load_explicit(&r->broken, memory_order_acquire) ? CF_EBROKEN : CF_ESHUTDOWN;
    /* The manager is alive: it cannot finish before it has taken f, which it
     * does only once we are done (see remote_queue.c). If it polls, it sees
     * f by itself (run_loop), unless we hand f out first. */
    if (!atomic_load_explicit(&r->polling, memory_order_seq_cst))
        uv_async_send(&r->async);
    else if (submit_direct(r, f))
        return 0;
    atomic_store_explicit(&f->submit_returned, true, memory_order_release); /* the last access */
    return 0;
}

/* Refuse new work and wake the manager; with cancel_futures, move what is
 * queued to *cancel (its callbacks run when the caller cancels them). */
static void close_queue(cf__remote *r, bool cancel_futures, cf__fqueue *cancel)
{
    atomic_store_explicit(&r->shutdown, true, memory_order_release);
    cf__rqueue_close(r);
    if (cancel_futures)
        cf__rqueue_take_all(r, cancel);
    uv_mutex_lock(&r->lock);
    if (r->manager_alive)
        uv_async_send(&r->async);
    uv_mutex_unlock(&r->lock);
}

static void cancel_all(cf__remote *r, cf__fqueue *cancel)
{
    cf_future *f;
    while ((f = cf__fq_pop(cancel)))
        cf__remote_cancel_queued(r, f);
}

static int remote_shutdown(cf_executor *ex, bool wait, bool cancel_futures)
{
    cf__remote *r = (cf__remote *)ex;
    cf__fqueue cancel = { 0 };
    close_queue(r, cancel_futures, &cancel);
    cancel_all(r, &cancel);
    if (wait && !cf__remote_on_manager(r)) /* never wait for ourselves */
        cf__event_wait(&r->done, CF__NO_DEADLINE);
    return 0;
}

/* The signals go before the cancels: a cancelled future's done-callback may
 * free the pool, which waits for the running tasks, which the signals end. */
static int remote_signal_workers(cf_executor *ex, int signum)
{
    cf__remote *r = (cf__remote *)ex;
    cf__fqueue cancel = { 0 };
    close_queue(r, true, &cancel);
    if (cf__remote_on_manager(r)) { /* from a done-callback: at once */
        signal_all(r, signum);
        cancel_all(r, &cancel);
        return 0;
    }
    uv_mutex_lock(&r->lock);
    uint64_t gen = ++r->signal_gen_req;
    r->signal_req = signum;
    if (r->manager_alive)
        uv_async_send(&r->async);
    /* Once the signals are sent. */
    while (r->manager_alive && r->signal_gen_done < gen)
        uv_cond_wait(&r->cond, &r->lock);
    uv_mutex_unlock(&r->lock);
    cancel_all(r, &cancel);
    return 0;
}

static void destroy_sync(cf__remote *r)
{
    uv_mutex_destroy(&r->core_lock);
    cf__event_destroy(&r->done);
    uv_cond_destroy(&r->cond);
    uv_mutex_destroy(&r->lock);
    uv_mutex_destroy(&r->queue_lock);
}

static void free_memory(cf__remote *r)
{
    cf__remote_fncache_clear(r);
    cf__free(r->broken_message);
    cf__free(r->init_ref);
    if (r->ops->destroy)
        r->ops->destroy(r);
    cf__free(r);
}

static void remote_destroy(cf_executor *ex)
{
    cf__remote *r = (cf__remote *)ex;
    if (!r->orphaned) /* else the manager thread is ending, detached */
        uv_thread_join(&r->thread);
    destroy_sync(r);
    free_memory(r);
}

/* From a done-callback (the manager thread) the manager cannot wait for
 * itself: shut down without waiting, and the manager frees the pool once
 * its loop has ended. */
static bool remote_release(cf_executor *ex)
{
    cf__remote *r = (cf__remote *)ex;
    if (cf__remote_on_manager(r)) {
        remote_shutdown(ex, false, false);
        r->orphaned = true;
        return false;
    }
    remote_shutdown(ex, true, false);
    return true;
}

static void remote_stats(cf_executor *ex, cf_executor_stats *out)
{
    cf__remote *r = (cf__remote *)ex;
    size_t pending = 0, cancelled = 0; /* cancelled: not dropped yet */
    cf__rqueue_count(r, &pending, &cancelled);
    out->workers = atomic_load_explicit(&r->stats.workers, memory_order_relaxed);
    out->idle = atomic_load_explicit(&r->stats.idle, memory_order_relaxed);
    out->running = atomic_load_explicit(&r->stats.running, memory_order_relaxed);
    out->pending = pending + atomic_load_explicit(&r->stats.ahead, memory_order_relaxed);
    out->completed = atomic_load_explicit(&r->stats.completed, memory_order_relaxed);
    out->failed = atomic_load_explicit(&r->stats.failed, memory_order_relaxed);
    out->cancelled = cancelled + atomic_load_explicit(&r->stats.cancelled, memory_order_relaxed);
    out->workers_replaced = atomic_load_explicit(&r->stats.replaced, memory_order_relaxed);
}

/* A fork() child's copy: the manager thread and the workers are the
 * parent's (the fork handlers closed our copies of their channels). Only
 * the pool's own block goes; what the manager owned (its loop, the workers'
 * records, the transport's handles) is left as the fork found it. */
static void remote_forget(cf_executor *ex)
{
    cf__remote *r = (cf__remote *)ex;
    cf__free(r->broken_message);
    cf__free(r->init_ref);
    cf__free(r);
}

static const cf__executor_ops remote_ops = {
    .name = "remote",
    .submit = remote_submit,
    .shutdown = remote_shutdown,
    .signal_workers = remote_signal_workers,
    .release = remote_release,
    .destroy = remote_destroy,
    .forget = remote_forget,
    .stats = remote_stats,
    .parallel_for = cf__remote_parallel_for,
};

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */
/* ------------------------------------------------------------------------ */

static void configure(cf__remote *r, const cf__remote_config *cfg)
{
    r->may_poll = cf__cpu_count() > 1;
    r->max_workers = cfg->max_workers;
    r->max_tasks = cfg->max_tasks;
    r->task_timeout = cfg->task_timeout;
    if (cfg->task_timeout > 0) {
        double ms = cfg->task_timeout * 1000.0;
        r->timeout_ms = (uint64_t)ms;
        if ((double)r->timeout_ms < ms || r->timeout_ms == 0)
            r->timeout_ms++; /* round up: never kill early */
    }
    r->max_message = cfg->max_message ? cfg->max_message : CF__WIRE_DEFAULT_MAX_MESSAGE;
    if (r->max_message > CF__WIRE_MAX_MAX_MESSAGE)
        r->max_message = CF__WIRE_MAX_MAX_MESSAGE;
    r->frame_limit = cf__wire_frame_limit(r->max_message);
    r->initarg = (uint64_t)(uintptr_t)cfg->initarg;
}

/* The pool's locks, condition and event: 0 or CF_ESYSTEM. */
static int init_sync(cf__remote *r)
{
    if (uv_mutex_init(&r->queue_lock) != 0)
        return CF_ESYSTEM;
    if (uv_mutex_init(&r->lock) != 0)
        goto fail_queue_lock;
    if (uv_cond_init(&r->cond) != 0)
        goto fail_lock;
    if (cf__event_init(&r->done) != 0)
        goto fail_cond;
    if (uv_mutex_init(&r->core_lock) != 0)
        goto fail_event;
    return 0;
fail_event:
    cf__event_destroy(&r->done);
fail_cond:
    uv_cond_destroy(&r->cond);
fail_lock:
    uv_mutex_destroy(&r->lock);
fail_queue_lock:
    uv_mutex_destroy(&r->queue_lock);
    return CF_ESYSTEM;
}

/* The loop and its handles: 0, or a negated errno (libuv's way). */
static int init_loop(cf__remote *r)
{
    /* libuv aborts the program when the first loop cannot have the
     * descriptors it keeps for the whole process: make sure it can. */
    if (cf__fd_check_room(LOOP_FDS) != 0)
        return -errno;
    /* libuv's descriptors must not land on a closed 0, 1 or 2: it would
     * one day close them as if they were its own, and asserts they are not. */
    int held[3];
    cf__stdio_hold(held);
    int rc = uv_loop_init(&r->loop);
    if (rc == 0 && (rc = uv_async_init(&r->loop, &r->async, on_async)) != 0)
        uv_loop_close(&r->loop);
    if (rc == 0) {
        /* The loop opens one more descriptor with its first stream handle
         * (a spare for accept() when out of descriptors): have it now. */
        uv_pipe_init(&r->loop, &r->stdio_probe, 0);
        uv_close((uv_handle_t *)&r->stdio_probe, NULL);
    }
    cf__stdio_release(held);
    if (rc != 0)
        return rc;
    r->async.data = r;
    uv_check_init(&r->loop, &r->check);
    r->check.data = r;
    uv_check_start(&r->check, on_check);
    return 0;
}

/* The loop, its handles and the manager thread: 0 or CF_ESYSTEM, with the
 * last error message set. */
static int start_manager(cf__remote *r)
{
    if (init_sync(r) != 0) {
        cf__set_last_error_msg(CF_ESYSTEM, "cannot make a mutex or condition for the pool");
        return CF_ESYSTEM;
    }
    int rc = init_loop(r);
    if (rc != 0) {
        cf__set_last_error_msg(CF_ESYSTEM, "cannot make the pool's loop: %s", strerror(-rc));
        destroy_sync(r);
        return CF_ESYSTEM;
    }
    r->manager_alive = true;
    if ((rc = uv_thread_create(&r->thread, manager_main, r)) != 0) {
        uv_close((uv_handle_t *)&r->async, NULL);
        uv_close((uv_handle_t *)&r->check, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
        cf__set_last_error_msg(CF_ESYSTEM, "cannot start the pool's manager thread: %s",
                               strerror(-rc));
        destroy_sync(r);
        return CF_ESYSTEM;
    }
    return 0;
}

cf_executor *cf__remote_new(const cf__remote_config *cfg, const cf__transport_ops *ops,
                            void *transport)
{
    cf__remote *r = cf__calloc(1, sizeof *r);
    if (!r) {
        if (ops->destroy) {
            cf__remote tmp = { .transport = transport };
            ops->destroy(&tmp);
        }
        return cf__fail(CF_ENOMEM);
    }
    r->ops = ops;
    r->transport = transport;
    if (cf__executor_init(&r->base, &remote_ops) != 0) {
        free_memory(r);
        return cf__fail_msg(CF_ESYSTEM, "cannot install the fork() handlers");
    }
    configure(r, cfg);
    if (cfg->initializer) {
        int rc = cf__remote_fnref_new(cfg->initializer, &r->init_ref, &r->init_ref_len);
        if (rc != 0) {
            free_memory(r);
            if (rc == CF_EINVAL)
                return cf__fail_msg(CF_EINVAL, "the initializer %p is in no loaded object",
                                    (void *)cfg->initializer);
            return cf__fail(rc);
        }
    }
    if (start_manager(r) != 0) {
        free_memory(r);
        return NULL; /* the last error says why */
    }
    return &r->base;
}
