/* Thread pool backend: Python's ThreadPoolExecutor.
 *
 * Queue: submitters push futures (linked through f->queue_next) onto a
 * lock-free stack, the inbox; a worker that finds its FIFO empty takes the
 * whole inbox at once and reverses it into the shared FIFO (under pop_lock,
 * which only workers take). Submitters and workers thus never share a lock,
 * and workers look at the inbox (the submitters' cache line) only when the
 * FIFO is empty.
 *
 * Submit takes no lock either: shutdown (and a failed initializer) closes
 * the inbox by setting its low bit, after which no push succeeds, so every
 * accepted future is in the queue before shutdown drains or cancels it. Only
 * submits made before every thread runs take submit_lock (they may start
 * one); they count themselves in `growing` first, and shutdown waits for them
 * so that the thread count it joins is final.
 *
 * A pool freed from one of its own tasks (orphaned) must not go while a
 * submit still touches it after its push (the submit that queued that very
 * task may not have returned yet): each submit marks its future once it is
 * done with the pool, and whoever takes a future off the queue waits for that
 * mark before it lets go of it (drop_future), so once the queue is drained
 * and the last worker ends, no submit is still under way.
 *
 * Wake-ups: one worker with nothing to do polls the queue briefly (only one:
 * more would take CPU from submitters and tasks), the others count themselves
 * in `sleepers` and park on a semaphore. A submit posts the semaphore only
 * when nobody polls and it claims a sleeper, so no system call is made while
 * workers are awake; a worker that takes an item passes a wake-up on if more
 * work is queued, so a burst wakes as many workers as it needs.
 * (Both sides use sequentially consistent operations: a push followed by a
 * load of `sleepers`, against an increment of `sleepers` followed by a load of
 * the queue; at least one of them sees the other.)
 *
 * Threads start lazily, as in Python's _adjust_thread_count: a submit starts
 * one only if no worker is idle and fewer than max_workers run.
 *
 * Tasks that submit tasks (once every thread runs): the future goes to the
 * submitting worker's own deque instead, which that worker takes newest
 * first and idle workers steal from oldest first, as TBB does; a recursion
 * then stays on its worker, and the workers do not all meet on the inbox
 * and pop_lock for every task. A deque push checks the inbox's closed bit
 * under the deque's lock, so shutdown, which closes the inbox first, finds
 * every accepted future in a deque or the queue.
 *
 * Nested waits (API.md "Nested parallelism"): a task that waits for a
 * future of its own pool runs the pool's queued tasks meanwhile, newest
 * first (its deque's newest, else the inbox's head, else the FIFO's tail:
 * the FIFO is linked both ways; else it steals), so a recursion that waits
 * for its halves needs no free worker and its stack grows with the
 * recursion's depth. With nothing left to run, it parks on the event of
 * what it waits for, listed in `parked`; a submit that finds no polling or
 * sleeping worker kicks one of them (the same seq_cst pairing as for
 * `sleepers`, on `helpers_parked`).
 *
 * Never is a pool lock held while user code runs or a future completes.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEFAULT_WORKERS 32
#define THREAD_NAME_MAX 15          /* Linux: 16 bytes with the NUL */
#define SPIN_NS 30000u              /* how long an idle worker polls before parking */
#define LOOP_LINGER_NS 1000000u     /* ...and after a parallel loop (see spin_for_work) */
#define DEQUE_SLOTS_MAX 1024        /* workers beyond these submit to the inbox */
#define INBOX_CLOSED ((uintptr_t)1) /* low bit of inbox: no more pushes */
#define HELP_PAUSE_NS 2000u         /* a waiting task with nothing to run busy-waits... */
#define HELP_SPIN_NS 50000u         /* ...then yields the CPU until this much has passed */

typedef struct thread_pool {
    /* Read-mostly: polled by idle workers. */
    cf_executor base;
    int max_workers;
    char *name_prefix;
    int (*initializer)(void *initarg);
    void *initarg;
    bool spin;               /* more than one CPU: polling can pay off */
    atomic_bool stopping;    /* set by shutdown: workers exit once the queue is empty */
    atomic_bool all_started; /* nthreads == max_workers: no need to count idle workers */
    atomic_bool broken;      /* an initializer failed (set before the inbox closes) */
    atomic_bool orphaned;    /* freed from one of its own threads (see orphan()) */
    atomic_int next_name;    /* n of "<prefix>_<n>" */

    /* Starting threads, under submit_lock. */
    alignas(64) uv_mutex_t submit_lock;
    int nthreads;
    int threads_cap;
    uv_thread_t *threads;
    struct worker_stats **wstats; /* one per thread, threads_cap slots */
    /* What no worker counts: futures failed by a broken pool, cancelled by
     * shutdown (rare paths, so shared counters). */
    atomic_ullong failed_unrun, cancelled_unrun;

    /* Shutdown: join once, whoever waits. */
    uv_mutex_t join_lock;
    int joined;
    /* Threads started and not yet ended: once the pool is orphaned (see the
     * top of the file), the last to end frees it. */
    atomic_int live;

    /* Submitters: a LIFO stack of cf_future * (INBOX_CLOSED: closed), and
     * the submits that may start a thread (see the top of the file). */
    alignas(64) atomic_uintptr_t inbox;
    atomic_int growing;

    alignas(64) atomic_int sleepers; /* workers parked (or about to) on wake */
    atomic_int spinning;             /* workers polling the queue (usually 0 or 1) */
    atomic_int helpers_parked;       /* waiting tasks parked in `parked` */
    uv_sem_t wake;
    uv_mutex_t helper_lock; /* guards `parked` */
    struct parked_helper *parked;

    alignas(64) atomic_int idle;        /* workers looking for work, not claimed by a submit */
    atomic_uint_least64_t linger_until; /* uv_hrtime(): poll until then (loops) */

    alignas(64) atomic_bool pop_lock; /* a spin lock, workers only: held for a few loads */
    _Atomic(cf_future *) fifo;        /* FIFO, changed under pop_lock */
    cf_future *fifo_tail;             /* under pop_lock */

    /* Workers' deques: deque_slots slots, each set once by its worker. */
    alignas(64) struct worker_deque *_Atomic *deques;
    atomic_int ndeques; /* slots claimed, never more than deque_slots */
    int deque_slots;    /* min(max_workers, DEQUE_SLOTS_MAX) */
} thread_pool;

/* A worker's queue of the tasks its own tasks submit: it pushes and takes at
 * the newest end, idle workers steal at the oldest (queue_next points to the
 * newer neighbour, queue_prev to the older). */
typedef struct worker_deque {
    alignas(64) atomic_bool lock; /* a spin lock, held for a few pointer moves */
    atomic_size_t size;           /* changed under the lock, read without it */
    cf_future *oldest, *newest;
} worker_deque;

/* A task waiting for `ev` with nothing to run, in pool->parked. */
typedef struct parked_helper {
    struct parked_helper *prev, *next;
    cf__event *ev;
    bool listed; /* under helper_lock */
} parked_helper;

static const cf__executor_ops thread_pool_ops;

/* The pool whose worker this thread is (NULL elsewhere): shutdown(wait) from
 * one of the pool's own tasks must not join the thread it runs on, and its
 * waits help (cf__wait_helps). */
_Thread_local cf_executor *cf__worker_pool __attribute__((tls_model("initial-exec")));

/* This worker's deque (NULL elsewhere, or when it could not be made). */
static _Thread_local worker_deque *my_deque __attribute__((tls_model("initial-exec")));

/* What one worker thread counts for cf_executor_stats_get, in a cache line
 * of its own. Only that thread writes it (plain loads and stores: no atomic
 * read-modify-write on the hot path); the stats call sums them. */
typedef struct worker_stats {
    alignas(64) thread_pool *pool;
    atomic_ullong completed, failed, cancelled;
    atomic_size_t running; /* its tasks under way (a waiting task runs nested ones) */
} worker_stats;

static _Thread_local worker_stats *my_stats __attribute__((tls_model("initial-exec")));

void cf__thread_pool_forget_worker(void)
{
    cf__worker_pool = NULL;
    my_deque = NULL;
    my_stats = NULL;
}

static void bump(atomic_ullong *counter)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void add_running(worker_stats *ws, size_t delta)
{
    atomic_store_explicit(&ws->running,
                          atomic_load_explicit(&ws->running, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

static void *loop_helper(void *loop);

/* cf_parallel_for's helpers are the pool's own tasks, not the program's:
 * the statistics leave them out. (Ask before the call is cleared.) */
static bool counted(const cf_future *f)
{
    return !(f->call.count == 0 && f->call.fn == loop_helper);
}

static bool is_worker_of(const thread_pool *pool)
{
    return cf__worker_pool == &pool->base;
}

static const char broken_message[] =
    "A thread initializer failed, the thread pool is not usable anymore";

/* ------------------------------------------------------------------------ */
/* Queue                                                                     */
/* ------------------------------------------------------------------------ */

/* The pop lock and the deques' locks guard a few pointer moves (and,
 * amortised, the reversal of a batch); a futex-based mutex would put
 * contending workers to sleep. */
static void spin_lock(atomic_bool *lock)
{
    while (atomic_exchange_explicit(lock, true, memory_order_acquire)) {
        for (int i = 0; atomic_load_explicit(lock, memory_order_relaxed); i++) {
            cf__cpu_relax();
            if (i == 64) { /* the holder may have been preempted */
                sched_yield();
                i = 0;
            }
        }
    }
}

static void spin_unlock(atomic_bool *lock)
{
    atomic_store_explicit(lock, false, memory_order_release);
}

static void pop_lock(thread_pool *pool)
{
    spin_lock(&pool->pop_lock);
}

static void pop_unlock(thread_pool *pool)
{
    spin_unlock(&pool->pop_lock);
}

/* Push f unless the inbox is closed: true if pushed. */
static bool inbox_push(thread_pool *pool, cf_future *f)
{
    uintptr_t head = atomic_load_explicit(&pool->inbox, memory_order_relaxed);
    do {
        if (head & INBOX_CLOSED) {
            f->queue_next = NULL;
            return false;
        }
        f->queue_next = (cf_future *)head;
    } while (!atomic_compare_exchange_weak_explicit(&pool->inbox, &head, (uintptr_t)f,
                                                    memory_order_seq_cst, memory_order_relaxed));
    return true;
}

static void inbox_close(thread_pool *pool)
{
    atomic_fetch_or_explicit(&pool->inbox, INBOX_CLOSED, memory_order_seq_cst);
}

/* The FIFO first: it is the workers' own line, the inbox the submitters'. */
static bool shared_nonempty(thread_pool *pool, memory_order order)
{
    return atomic_load_explicit(&pool->fifo, order) != NULL ||
           (atomic_load_explicit(&pool->inbox, order) & ~INBOX_CLOSED) != 0;
}

static bool deques_nonempty(thread_pool *pool, memory_order order)
{
    int n = atomic_load_explicit(&pool->ndeques, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        worker_deque *d = atomic_load_explicit(&pool->deques[i], memory_order_acquire);
        if (d && atomic_load_explicit(&d->size, order) != 0)
            return true;
    }
    return false;
}

/* Whether any work is queued, in the shared queue or a deque. */
static bool queue_nonempty(thread_pool *pool, memory_order order)
{
    return shared_nonempty(pool, order) || deques_nonempty(pool, order);
}

/* Take the inbox (keeping its closed bit) and return it in submission order,
 * linked both ways; *tail gets the newest. */
static cf_future *inbox_take_fifo(thread_pool *pool, cf_future **tail)
{
    uintptr_t head = atomic_load_explicit(&pool->inbox, memory_order_relaxed);
    while ((head & ~INBOX_CLOSED) != 0 &&
           !atomic_compare_exchange_weak_explicit(&pool->inbox, &head, head & INBOX_CLOSED,
                                                  memory_order_acquire, memory_order_relaxed))
        ;
    cf_future *list = (cf_future *)(head & ~INBOX_CLOSED); /* newest first */
    cf_future *fifo = NULL;
    *tail = list;
    while (list) {
        cf_future *next = list->queue_next;
        list->queue_next = fifo;
        if (fifo)
            fifo->queue_prev = list;
        fifo = list;
        list = next;
    }
    if (fifo)
        fifo->queue_prev = NULL;
    return fifo;
}

/* The oldest future of the shared queue, or NULL. */
static cf_future *queue_pop(thread_pool *pool)
{
    if (!shared_nonempty(pool, memory_order_acquire))
        return NULL;
    pop_lock(pool);
    cf_future *f = atomic_load_explicit(&pool->fifo, memory_order_relaxed);
    if (!f)
        f = inbox_take_fifo(pool, &pool->fifo_tail);
    if (f) {
        cf_future *next = f->queue_next;
        atomic_store_explicit(&pool->fifo, next, memory_order_relaxed);
        if (next)
            next->queue_prev = NULL;
        else
            pool->fifo_tail = NULL;
    }
    pop_unlock(pool);
    if (f)
        f->queue_next = NULL;
    return f;
}

/* The inbox's head (its newest), under pop_lock, or NULL. Submitters only
 * push, and only pop_lock's holder removes (grow()'s take-back runs where
 * no worker exists), so the head seen stays in place until the CAS. */
static cf_future *inbox_pop_newest(thread_pool *pool)
{
    uintptr_t head = atomic_load_explicit(&pool->inbox, memory_order_acquire);
    for (;;) {
        cf_future *f = (cf_future *)(head & ~INBOX_CLOSED);
        if (!f)
            return NULL;
        uintptr_t rest = (uintptr_t)f->queue_next | (head & INBOX_CLOSED);
        if (atomic_compare_exchange_weak_explicit(&pool->inbox, &head, rest, memory_order_acquire,
                                                  memory_order_acquire))
            return f;
    }
}

/* The newest future of the shared queue, or NULL. The inbox holds the
 * newest; the FIFO's items are all older, its tail newest. */
static cf_future *queue_pop_newest(thread_pool *pool)
{
    if (!shared_nonempty(pool, memory_order_acquire))
        return NULL;
    pop_lock(pool);
    cf_future *f = inbox_pop_newest(pool);
    if (!f && (f = pool->fifo_tail) != NULL) {
        pool->fifo_tail = f->queue_prev;
        if (f->queue_prev)
            f->queue_prev->queue_next = NULL;
        else
            atomic_store_explicit(&pool->fifo, NULL, memory_order_relaxed);
    }
    pop_unlock(pool);
    if (f)
        f->queue_next = f->queue_prev = NULL;
    return f;
}

/* ------------------------------------------------------------------------ */
/* Workers' deques                                                           */
/* ------------------------------------------------------------------------ */

/* Push f onto this worker's deque unless the pool is closed: true if pushed.
 * The closed bit is read under the lock (see the top of the file). */
static bool deque_push(thread_pool *pool, worker_deque *d, cf_future *f)
{
    spin_lock(&d->lock);
    if (atomic_load_explicit(&pool->inbox, memory_order_seq_cst) & INBOX_CLOSED) {
        spin_unlock(&d->lock);
        return false;
    }
    f->queue_next = NULL;
    f->queue_prev = d->newest;
    if (d->newest)
        d->newest->queue_next = f;
    else
        d->oldest = f;
    d->newest = f;
    /* seq_cst: paired with a sleeper's count and check, as a push on the inbox. */
    atomic_store_explicit(&d->size, atomic_load_explicit(&d->size, memory_order_relaxed) + 1,
                          memory_order_seq_cst);
    spin_unlock(&d->lock);
    return true;
}

/* Unlink the newest (newest = true: the owner) or the oldest (a thief). */
static cf_future *deque_take(worker_deque *d, bool newest)
{
    if (atomic_load_explicit(&d->size, memory_order_acquire) == 0)
        return NULL;
    spin_lock(&d->lock);
    cf_future *f = newest ? d->newest : d->oldest;
    if (f) {
        if (newest) {
            d->newest = f->queue_prev;
            if (d->newest)
                d->newest->queue_next = NULL;
            else
                d->oldest = NULL;
        } else {
            d->oldest = f->queue_next;
            if (d->oldest)
                d->oldest->queue_prev = NULL;
            else
                d->newest = NULL;
        }
        atomic_store_explicit(&d->size, atomic_load_explicit(&d->size, memory_order_relaxed) - 1,
                              memory_order_relaxed);
    }
    spin_unlock(&d->lock);
    if (f)
        f->queue_next = f->queue_prev = NULL;
    return f;
}

/* The oldest future of another worker's deque, or NULL. */
static cf_future *steal(thread_pool *pool)
{
    int n = atomic_load_explicit(&pool->ndeques, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        worker_deque *d = atomic_load_explicit(&pool->deques[i], memory_order_acquire);
        cf_future *f = d && d != my_deque ? deque_take(d, false) : NULL;
        if (f)
            return f;
    }
    return NULL;
}

/* Work for a worker: its own newest, else the shared queue's oldest, else
 * another worker's oldest. */
static cf_future *take_work(thread_pool *pool)
{
    cf_future *f = my_deque ? deque_take(my_deque, true) : NULL;
    if (!f && !(f = queue_pop(pool)))
        f = steal(pool);
    return f;
}

/* Work for a waiting task: the newest it can find, then a stolen one. */
static cf_future *take_help(thread_pool *pool)
{
    cf_future *f = my_deque ? deque_take(my_deque, true) : NULL;
    if (!f && !(f = queue_pop_newest(pool)))
        f = steal(pool);
    return f;
}

/* A deque's futures, oldest first, leaving it empty; *tail gets its last. */
static cf_future *deque_take_all(worker_deque *d, cf_future **tail)
{
    spin_lock(&d->lock);
    cf_future *head = d->oldest;
    *tail = d->newest;
    d->oldest = d->newest = NULL;
    atomic_store_explicit(&d->size, 0, memory_order_relaxed);
    spin_unlock(&d->lock);
    return head;
}

/* Everything queued, leaving the queue and the deques empty: the shared
 * queue in order, then each deque oldest first. */
static cf_future *queue_take_all(thread_pool *pool)
{
    pop_lock(pool);
    cf_future *head = atomic_load_explicit(&pool->fifo, memory_order_relaxed);
    atomic_store_explicit(&pool->fifo, NULL, memory_order_relaxed);
    pool->fifo_tail = NULL;
    cf_future *rest_tail;
    cf_future *rest = inbox_take_fifo(pool, &rest_tail);
    pop_unlock(pool);
    cf_future *tail = head;
    while (tail && tail->queue_next)
        tail = tail->queue_next;
    if (tail)
        tail->queue_next = rest;
    else
        head = rest;
    if (rest)
        tail = rest_tail;
    int n = atomic_load_explicit(&pool->ndeques, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        worker_deque *d = atomic_load_explicit(&pool->deques[i], memory_order_acquire);
        cf_future *d_tail, *d_head = d ? deque_take_all(d, &d_tail) : NULL;
        if (!d_head)
            continue;
        if (tail)
            tail->queue_next = d_head;
        else
            head = d_head;
        tail = d_tail;
    }
    return head;
}

/* ------------------------------------------------------------------------ */
/* Idle workers and wake-ups                                                 */
/* ------------------------------------------------------------------------ */

/* Decrement *counter if it is positive; true if it was. */
static bool take_one(atomic_int *counter)
{
    int n = atomic_load_explicit(counter, memory_order_seq_cst);
    while (n > 0)
        if (atomic_compare_exchange_weak_explicit(counter, &n, n - 1, memory_order_seq_cst,
                                                  memory_order_seq_cst))
            return true;
    return false;
}

static void kick_helper(thread_pool *pool);

/* Wake a parked worker, if any (also while another polls: see
 * thread_pool_parallel_for): true if one was. */
static inline bool wake_parked(thread_pool *pool)
{
    if (atomic_load_explicit(&pool->sleepers, memory_order_seq_cst) == 0 ||
        !take_one(&pool->sleepers))
        return false;
    uv_sem_post(&pool->wake);
    return true;
}

/* After a push: wake a parked worker unless one is polling the queue; with
 * none parked, a waiting task parked with nothing to run. */
static void wake_one(thread_pool *pool)
{
    if (atomic_load_explicit(&pool->spinning, memory_order_seq_cst) != 0)
        return;
    if (!wake_parked(pool) && atomic_load_explicit(&pool->helpers_parked, memory_order_seq_cst) > 0)
        kick_helper(pool);
}

static void wake_all(thread_pool *pool)
{
    while (wake_parked(pool))
        ;
}

/* After taking a future: if more work is queued and someone may be parked
 * (a submit may have left its wake-up to us, see wake_one), pass one on.
 * The parked counts first: they are read-mostly, the queues are not, and a
 * worker about to park checks the queues itself after counting itself. */
static void pass_wake_on(thread_pool *pool)
{
    if ((atomic_load_explicit(&pool->sleepers, memory_order_seq_cst) > 0 ||
         atomic_load_explicit(&pool->helpers_parked, memory_order_seq_cst) > 0) &&
        queue_nonempty(pool, memory_order_seq_cst))
        wake_one(pool);
}

static bool should_stop(thread_pool *pool)
{
    return atomic_load_explicit(&pool->stopping, memory_order_seq_cst);
}

/* Poll the queue for a while: true if work (or the stop) came. Programs run
 * parallel loops back to back, and waking a parked worker can take longer
 * than a loop (hundreds of microseconds on a virtual machine): after a loop
 * the poller keeps going longer, as TBB's and pthreadpool's workers do. */
static bool spin_for_work(thread_pool *pool)
{
    uint64_t start = uv_hrtime();
    uint64_t until = start + SPIN_NS;
    uint64_t linger = atomic_load_explicit(&pool->linger_until, memory_order_relaxed);
    if (linger > until)
        until = linger;
    for (;;) {
        for (int i = 0; i < 32; i++) {
            if (queue_nonempty(pool, memory_order_relaxed) || should_stop(pool))
                return true;
            cf__cpu_relax();
        }
        if (uv_hrtime() >= until)
            return false;
        sched_yield(); /* let a producer sharing this CPU run */
    }
}

/* Block until the queue may hold work or the pool stops. One idle worker
 * polls, the others park: more pollers would only take CPU from submitters
 * and tasks. While one polls, submits wake nobody; whoever takes an item
 * then wakes a parked worker if more work is queued. */
static void wait_for_work(thread_pool *pool)
{
    if (pool->spin && atomic_load_explicit(&pool->spinning, memory_order_relaxed) == 0) {
        atomic_fetch_add_explicit(&pool->spinning, 1, memory_order_seq_cst);
        bool found = spin_for_work(pool);
        atomic_fetch_sub_explicit(&pool->spinning, 1, memory_order_seq_cst);
        if (found)
            return;
    }
    atomic_fetch_add_explicit(&pool->sleepers, 1, memory_order_seq_cst);
    if (queue_nonempty(pool, memory_order_seq_cst) || should_stop(pool)) {
        /* Withdraw, unless a submit already claimed a sleeper: then its post
         * is ours to consume. */
        if (take_one(&pool->sleepers))
            return;
    }
    uv_sem_wait(&pool->wake);
}

/* ------------------------------------------------------------------------ */
/* Workers                                                                   */
/* ------------------------------------------------------------------------ */

/* Whether a worker counts in `idle`. Each submit (before all threads run)
 * either claims an idle worker or starts one, and pushes after that; a
 * worker starts CLAIMED, for the future its starter is about to push, so
 * that it does not count itself idle (a second time) if it finds the queue
 * empty before that push. */
typedef enum worker_idle {
    WORKER_CLAIMED, /* started for a future not taken yet: not counted */
    WORKER_BUSY,    /* not counted */
    WORKER_IDLE,    /* counted in pool->idle (unless a submit took it off) */
} worker_idle;

/* Count this worker idle (while that matters: not all threads started yet).
 * A worker does so just BEFORE it completes a future, so that a submit made
 * by whoever saw that future complete finds it idle, and reuses it. */
static void become_idle(thread_pool *pool, worker_idle *state)
{
    if (state && *state == WORKER_BUSY &&
        !atomic_load_explicit(&pool->all_started, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&pool->idle, 1, memory_order_seq_cst);
        *state = WORKER_IDLE;
    }
}

/* This worker took a future. */
static void stop_being_idle(thread_pool *pool, worker_idle *state)
{
    if (*state == WORKER_IDLE)
        take_one(&pool->idle); /* unless a submit claimed us already */
    *state = WORKER_BUSY;
}

/* Release the executor's reference to a future taken from the queue, once
 * its submit is done with the pool (see the top of the file): usually long
 * ago, at worst a few instructions ago. */
static void drop_future(cf_future *f)
{
    for (unsigned i = 0; !atomic_load_explicit(&f->submit_returned, memory_order_acquire); i++) {
        if (i < 64)
            cf__cpu_relax();
        else
            sched_yield(); /* the submitter may share our CPU */
    }
    cf_future_unref(f);
}

/* A task this worker ran is over: counted before its future completes, so
 * that whoever sees it done sees it counted. */
static void count_done(worker_stats *ws, bool failed)
{
    bump(&ws->completed);
    if (failed)
        bump(&ws->failed);
    add_running(ws, (size_t)-1);
}

/* Run a future taken off the queue. idle_state: the worker's, or NULL for a
 * waiting task that helps (it stays busy). */
static void run_future(thread_pool *pool, cf_future *f, worker_idle *idle_state)
{
    worker_stats *ws = my_stats;
    bool count = counted(f);
    if (cf_future_set_running_or_notify_cancel(f)) {
        cf__call *call = &f->call;
        if (count)
            add_running(ws, 1);
        if (call->count == 0) {
            cf__outcome out;
            cf__run_call(call->fn, call->arg, &out);
            cf__call_clear(call);
            if (count)
                count_done(ws, out.status != 0);
            become_idle(pool, idle_state);
            cf__future_set_outcome(f, &out);
        } else {
            cf__chunk_result *chunk = cf__run_chunk(call);
            cf__call_clear(call);
            count_done(ws, !chunk || chunk->fail_status != 0);
            become_idle(pool, idle_state);
            if (chunk)
                cf__future_set_owned(f, chunk, chunk, cf__chunk_result_free, 0);
            else
                cf__future_set_failure(f, CF_ETASK, CF_ENOMEM, NULL, 0, -1);
        }
    } else {
        cf__call_clear(&f->call); /* cancelled before it started */
        if (count)
            bump(&ws->cancelled);
    }
    drop_future(f);
}

/* Fail every queued future: the pool is broken. Every push that succeeded
 * came before the close, so queue_take_all finds it. */
static void pool_break(thread_pool *pool)
{
    atomic_store_explicit(&pool->broken, true, memory_order_seq_cst);
    inbox_close(pool);
    cf_future *f = queue_take_all(pool);
    while (f) {
        cf_future *next = f->queue_next;
        f->queue_next = NULL;
        if (counted(f))
            atomic_fetch_add_explicit(&pool->failed_unrun, 1, memory_order_relaxed);
        cf__call_clear(&f->call);
        cf__future_set_failure(f, CF_EBROKEN, CF_EBROKEN, broken_message, 0, -1);
        drop_future(f);
        f = next;
    }
}

static void set_thread_name(thread_pool *pool)
{
    int n = atomic_fetch_add_explicit(&pool->next_name, 1, memory_order_relaxed);
    char name[64];
    snprintf(name, sizeof name, "%s_%d", pool->name_prefix, n);
    name[THREAD_NAME_MAX] = '\0';
    pthread_setname_np(pthread_self(), name);
}

static void worker_loop(thread_pool *pool)
{
    if (pool->initializer && pool->initializer(pool->initarg) != 0) {
        pool_break(pool);
        return;
    }
    worker_idle idle_state = WORKER_CLAIMED;
    for (;;) {
        cf_future *f = take_work(pool);
        if (f) {
            stop_being_idle(pool, &idle_state);
            /* More work queued: a submit may have left it to the poller (or
             * to us), so pass a wake-up on before running this one. */
            pass_wake_on(pool);
            run_future(pool, f, &idle_state);
            continue;
        }
        /* Every push happened before `stopping` was set: seeing it set and
         * the queue empty afterwards means there is no more work. */
        if (should_stop(pool)) {
            f = take_work(pool);
            if (!f)
                break;
            run_future(pool, f, &idle_state);
            continue;
        }
        become_idle(pool, &idle_state);
        wait_for_work(pool);
    }
}

/* Claim a deque slot (one per thread started) and fill it; without a slot
 * left or memory for it, this worker's tasks submit to the inbox. */
static void make_deque(thread_pool *pool)
{
    int slot = atomic_load_explicit(&pool->ndeques, memory_order_relaxed);
    do {
        if (slot >= pool->deque_slots)
            return;
    } while (!atomic_compare_exchange_weak_explicit(&pool->ndeques, &slot, slot + 1,
                                                    memory_order_acq_rel, memory_order_relaxed));
    worker_deque *d = cf__aligned_calloc(sizeof *d, alignof(worker_deque));
    if (d)
        atomic_store_explicit(&pool->deques[slot], d, memory_order_release);
    my_deque = d;
}

static void worker_main(void *arg)
{
    my_stats = arg;
    thread_pool *pool = my_stats->pool;
    cf__worker_pool = &pool->base;
    make_deque(pool);
    set_thread_name(pool);
    worker_loop(pool);
    cf__worker_pool = NULL;
    my_deque = NULL;
    my_stats = NULL;
    /* The last access to the pool: after it, a joiner may free it. The
     * thread that orphaned the pool stored `orphaned` before its own
     * decrement, so whoever ends last sees it. */
    if (atomic_fetch_sub_explicit(&pool->live, 1, memory_order_seq_cst) == 1 &&
        atomic_load_explicit(&pool->orphaned, memory_order_seq_cst))
        cf__executor_unhold(&pool->base); /* the user's hold, left to us */
}

/* ------------------------------------------------------------------------ */
/* Nested waits: a task waiting for a future of its own pool helps           */
/* ------------------------------------------------------------------------ */

/* Poll for a while: true once ev is set or work is queued. Busy-wait
 * briefly, then yield: other tasks of the recursion come within
 * microseconds, and a kick costs the submitter a system call. */
static bool spin_for_help(thread_pool *pool, cf__event *ev, uint64_t deadline)
{
    if (!pool->spin)
        return false;
    uint64_t start = uv_hrtime();
    for (;;) {
        for (int i = 0; i < 32; i++) {
            if (atomic_load_explicit(&ev->set, memory_order_acquire) ||
                queue_nonempty(pool, memory_order_relaxed))
                return true;
            cf__cpu_relax();
        }
        uint64_t now = uv_hrtime();
        if (now >= deadline || now - start >= HELP_SPIN_NS)
            return false;
        if (now - start >= HELP_PAUSE_NS)
            sched_yield();
    }
}

static void unlist_locked(thread_pool *pool, parked_helper *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        pool->parked = h->next;
    if (h->next)
        h->next->prev = h->prev;
    h->listed = false;
    atomic_fetch_sub_explicit(&pool->helpers_parked, 1, memory_order_seq_cst);
}

/* Block until ev is set, a submit kicks us, or the deadline. Listed before
 * the queue is checked (seq_cst both sides): a push either sees us in
 * helpers_parked or is seen here. */
static void park_helper(thread_pool *pool, cf__event *ev, uint64_t deadline)
{
    parked_helper h = { .ev = ev, .listed = true };
    uv_mutex_lock(&pool->helper_lock);
    h.next = pool->parked;
    if (h.next)
        h.next->prev = &h;
    pool->parked = &h;
    atomic_fetch_add_explicit(&pool->helpers_parked, 1, memory_order_seq_cst);
    uv_mutex_unlock(&pool->helper_lock);

    uv_mutex_lock(&ev->mutex);
    if (!queue_nonempty(pool, memory_order_seq_cst))
        while (!atomic_load_explicit(&ev->set, memory_order_relaxed) && !ev->kicked &&
               cf__cond_wait_until(&ev->cond, &ev->mutex, deadline))
            ;
    ev->kicked = false;
    uv_mutex_unlock(&ev->mutex);

    uv_mutex_lock(&pool->helper_lock); /* after this, no kick touches ev */
    if (h.listed)
        unlist_locked(pool, &h);
    uv_mutex_unlock(&pool->helper_lock);
}

/* Work was queued and no worker is free: wake a parked waiting task. */
static void kick_helper(thread_pool *pool)
{
    uv_mutex_lock(&pool->helper_lock);
    parked_helper *h = pool->parked;
    if (h) {
        unlist_locked(pool, h);
        uv_mutex_lock(&h->ev->mutex);
        h->ev->kicked = true;
        uv_cond_signal(&h->ev->cond);
        uv_mutex_unlock(&h->ev->mutex);
    }
    uv_mutex_unlock(&pool->helper_lock);
}

bool cf__help_once(void)
{
    thread_pool *pool = (thread_pool *)cf__worker_pool;
    cf_future *f = take_help(pool);
    if (!f)
        return false;
    pass_wake_on(pool); /* as a worker does */
    run_future(pool, f, NULL);
    return true;
}

int cf__help_until(cf__event *ev, uint64_t deadline)
{
    thread_pool *pool = (thread_pool *)cf__worker_pool;
    for (;;) {
        if (atomic_load_explicit(&ev->set, memory_order_acquire))
            return 0;
        if (deadline != CF__NO_DEADLINE && uv_hrtime() >= deadline)
            return CF_ETIMEDOUT;
        if (!cf__help_once() && !spin_for_help(pool, ev, deadline))
            park_helper(pool, ev, deadline);
    }
}

/* Start one more worker; called with submit_lock held. */
static int start_worker(thread_pool *pool)
{
    if (pool->nthreads == pool->threads_cap) {
        int cap = pool->threads_cap ? pool->threads_cap * 2 : 4;
        if (pool->threads_cap > pool->max_workers / 2 || cap > pool->max_workers)
            cap = pool->max_workers;
        uv_thread_t *threads = cf__realloc(pool->threads, (size_t)cap * sizeof *threads);
        if (!threads)
            return CF_ENOMEM;
        pool->threads = threads;
        worker_stats **wstats = cf__realloc(pool->wstats, (size_t)cap * sizeof *wstats);
        if (!wstats)
            return CF_ENOMEM;
        pool->wstats = wstats;
        pool->threads_cap = cap;
    }
    worker_stats *ws = cf__aligned_calloc(sizeof *ws, alignof(worker_stats));
    if (!ws)
        return CF_ENOMEM;
    ws->pool = pool;
    atomic_fetch_add_explicit(&pool->live, 1, memory_order_seq_cst);
    if (uv_thread_create(&pool->threads[pool->nthreads], worker_main, ws) != 0) {
        atomic_fetch_sub_explicit(&pool->live, 1, memory_order_seq_cst);
        cf__aligned_free(ws);
        return CF_ESYSTEM;
    }
    pool->wstats[pool->nthreads] = ws;
    if (++pool->nthreads == pool->max_workers)
        atomic_store_explicit(&pool->all_started, true, memory_order_relaxed);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Ops                                                                       */
/* ------------------------------------------------------------------------ */

static int closed_code(thread_pool *pool)
{
    return atomic_load_explicit(&pool->broken, memory_order_seq_cst) ? CF_EBROKEN : CF_ESHUTDOWN;
}

/* After pushing f while not all threads run (under submit_lock): reuse an
 * idle worker, else start one. If no worker exists and none can start, f is
 * taken back: nobody else pushed meanwhile (every submit that could runs
 * this path, under the same lock) and no worker exists to pop it. */
static int grow(thread_pool *pool, cf_future *f)
{
    if (take_one(&pool->idle) || pool->nthreads == pool->max_workers)
        return 0;
    int rc = start_worker(pool);
    if (rc == 0 || pool->nthreads > 0)
        return 0; /* the running workers will get to it */
    uintptr_t head = (uintptr_t)f;
    uintptr_t rest = (uintptr_t)f->queue_next;
    /* Only shutdown's close may have changed the inbox: keep its bit. Under
     * pop_lock, as every removal: the statistics walk the inbox under it. */
    pop_lock(pool);
    while (!atomic_compare_exchange_weak_explicit(&pool->inbox, &head, rest | (head & INBOX_CLOSED),
                                                  memory_order_seq_cst, memory_order_relaxed))
        ;
    pop_unlock(pool);
    f->queue_next = NULL;
    return rc;
}

static int thread_pool_submit(cf_executor *ex, cf_future *f)
{
    thread_pool *pool = (thread_pool *)ex;
    f->spin_wait = CF__SPIN_PAUSE;
    f->backend_id = (uintptr_t)pool; /* whose waits help with it (cf__wait_helps) */
    if (atomic_load_explicit(&pool->all_started, memory_order_relaxed)) {
        bool local = my_deque && is_worker_of(pool); /* a task of ours submits */
        if (!(local ? deque_push(pool, my_deque, f) : inbox_push(pool, f)))
            return closed_code(pool);
    } else {
        /* Counted first, so that shutdown waits for a thread we start. The
         * push comes before the worker starts, as in Python: a pool whose
         * initializer fails still accepts the first submit, whose future
         * then fails with CF_EBROKEN. */
        atomic_fetch_add_explicit(&pool->growing, 1, memory_order_seq_cst);
        uv_mutex_lock(&pool->submit_lock);
        int rc = inbox_push(pool, f) ? grow(pool, f) : closed_code(pool);
        uv_mutex_unlock(&pool->submit_lock);
        atomic_fetch_sub_explicit(&pool->growing, 1, memory_order_seq_cst);
        if (rc != 0)
            return rc;
    }
    wake_one(pool);
    /* Our last access to the pool: from here it may go (see the top). */
    atomic_store_explicit(&f->submit_returned, true, memory_order_release);
    return 0;
}

static int thread_pool_shutdown(cf_executor *ex, bool wait, bool cancel_futures)
{
    thread_pool *pool = (thread_pool *)ex;
    inbox_close(pool);
    /* A submit that pushed before the close and may start a thread counted
     * itself in `growing` before its push: wait for it to finish. */
    while (atomic_load_explicit(&pool->growing, memory_order_seq_cst) != 0)
        sched_yield();
    uv_mutex_lock(&pool->submit_lock);
    int nthreads = pool->nthreads; /* final: no submit starts a thread now */
    uv_mutex_unlock(&pool->submit_lock);

    if (cancel_futures) {
        cf_future *f = queue_take_all(pool);
        while (f) {
            cf_future *next = f->queue_next;
            f->queue_next = NULL;
            /* Queued, so pending or cancelled already: the cancel holds.
             * Counted first, so that whoever sees it cancelled sees it
             * counted. */
            if (counted(f))
                atomic_fetch_add_explicit(&pool->cancelled_unrun, 1, memory_order_relaxed);
            cf__call_clear(&f->call);
            cf_future_cancel(f);
            drop_future(f);
            f = next;
        }
    }
    atomic_store_explicit(&pool->stopping, true, memory_order_seq_cst);
    wake_all(pool);

    if (wait && !is_worker_of(pool)) {
        uv_mutex_lock(&pool->join_lock);
        for (; pool->joined < nthreads; pool->joined++)
            uv_thread_join(&pool->threads[pool->joined]);
        uv_mutex_unlock(&pool->join_lock);
    }
    return 0;
}

static void free_deques(thread_pool *pool)
{
    int n = atomic_load_explicit(&pool->ndeques, memory_order_acquire);
    for (int i = 0; i < n; i++)
        cf__aligned_free(atomic_load_explicit(&pool->deques[i], memory_order_relaxed));
    cf__free((void *)pool->deques);
}

static void free_worker_stats(thread_pool *pool)
{
    for (int i = 0; i < pool->nthreads; i++)
        cf__aligned_free(pool->wstats[i]);
    cf__free(pool->wstats);
}

static void thread_pool_destroy(cf_executor *ex)
{
    thread_pool *pool = (thread_pool *)ex;
    free_deques(pool);
    free_worker_stats(pool);
    uv_mutex_destroy(&pool->submit_lock);
    uv_mutex_destroy(&pool->join_lock);
    uv_mutex_destroy(&pool->helper_lock);
    uv_sem_destroy(&pool->wake);
    cf__free(pool->threads);
    cf__free(pool->name_prefix);
    cf__aligned_free(pool);
}

/* cf_executor_free from a task or callback running on one of our threads:
 * that thread cannot join itself, and the others may still be finishing
 * work. Nobody joins them now; the last to end frees the pool. */
static void orphan(thread_pool *pool)
{
    thread_pool_shutdown(&pool->base, false, false);
    uv_mutex_lock(&pool->submit_lock);
    int nthreads = pool->nthreads; /* final after shutdown */
    uv_mutex_unlock(&pool->submit_lock);
    uv_mutex_lock(&pool->join_lock);
    for (; pool->joined < nthreads; pool->joined++)
        pthread_detach(pool->threads[pool->joined]);
    uv_mutex_unlock(&pool->join_lock);
    atomic_store_explicit(&pool->orphaned, true, memory_order_seq_cst);
}

static bool thread_pool_release(cf_executor *ex)
{
    thread_pool *pool = (thread_pool *)ex;
    if (is_worker_of(pool)) {
        orphan(pool);
        return false;
    }
    thread_pool_shutdown(ex, true, false);
    return true;
}

/* A fork() child's copy: its threads exist only in the parent. What is
 * queued stays where it is (the child's futures never complete). */
static void thread_pool_forget(cf_executor *ex)
{
    thread_pool *pool = (thread_pool *)ex;
    free_deques(pool);
    free_worker_stats(pool);
    cf__free(pool->threads);
    cf__free(pool->name_prefix);
    cf__aligned_free(pool);
}

/* ------------------------------------------------------------------------ */
/* Parallel loops                                                            */
/* ------------------------------------------------------------------------ */

#define LOOP_STACK_HELPERS 16

static void *loop_helper(void *loop)
{
    cf__loop_work(loop);
    return NULL;
}

/* Workers to ask for help: one per chunk beyond the caller's first, up to
 * the pool's size (less the caller, when it is one of them) and to the CPUs
 * the caller leaves free: more threads than CPUs only take turns. */
static size_t loop_helpers(thread_pool *pool, const cf__loop *loop)
{
    size_t n = loop->chunks - 1;
    size_t workers = (size_t)pool->max_workers - is_worker_of(pool);
    size_t cpus = (size_t)cf__cpu_count() - 1;
    if (n > workers)
        n = workers;
    return n < cpus ? n : cpus;
}

static bool any_started(cf_future *const *fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cf__future_state(fs[i]) != CF__PENDING)
            return true;
    return false;
}

/* The helpers are tasks: a cancel takes back the ones that have not started
 * (when the loop is over, they would find nothing to do), and the caller
 * waits for the others, which are finishing their last chunk. A helper that
 * cannot be made leaves more for the others and for the caller. */
static int thread_pool_parallel_for(cf_executor *ex, cf__loop *loop)
{
    thread_pool *pool = (thread_pool *)ex;
    if (atomic_load_explicit(&pool->inbox, memory_order_acquire) & INBOX_CLOSED)
        return closed_code(pool);
    cf_future *on_stack[LOOP_STACK_HELPERS];
    cf_future **helpers = on_stack;
    size_t want = loop_helpers(pool, loop);
    if (want > LOOP_STACK_HELPERS && !(helpers = cf__malloc(want * sizeof *helpers))) {
        helpers = on_stack;
        want = LOOP_STACK_HELPERS;
    }
    size_t started = 0;
    int rc = 0;
    while (started < want) {
        cf__call call = { .fn = loop_helper, .arg = loop };
        if (!(helpers[started] = cf__submit_call(ex, &call))) {
            rc = cf_last_error();
            break;
        }
        started++;
    }
    if (started > 0 || (rc != CF_ESHUTDOWN && rc != CF_EBROKEN)) {
        rc = 0;
        /* The polling worker that the submits counted on may share this
         * thread's CPU (the scheduler often puts a woken waiter beside its
         * waker): it would start only once the caller is done, with the
         * other CPU idle. So if no helper has started after the caller's
         * first take, wake a parked worker as well. */
        if (cf__loop_work_some(loop) && started > 0 && !any_started(helpers, started))
            (void)wake_parked(pool);
        cf__loop_work(loop);
    }
    for (size_t i = 0; i < started; i++) {
        /* The loop lives in the caller's frame: no helper may outlast it,
         * not even when the wait cannot block (CF_ESYSTEM). */
        if (!cf_future_cancel(helpers[i]))
            while (cf__future_wait_done(helpers[i], CF__NO_DEADLINE) != 0)
                sched_yield();
        cf_future_unref(helpers[i]);
    }
    if (helpers != on_stack)
        cf__free(helpers);
    atomic_store_explicit(&pool->linger_until, uv_hrtime() + LOOP_LINGER_NS, memory_order_relaxed);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Statistics                                                                */
/* ------------------------------------------------------------------------ */

static void count_list(cf_future *f, size_t *pending, size_t *cancelled)
{
    for (; f; f = f->queue_next) {
        if (!counted(f))
            continue;
        if (cf_future_cancelled(f))
            (*cancelled)++;
        else
            (*pending)++;
    }
}

/* Queued futures: the FIFO under pop_lock (the inbox only grows at its head
 * meanwhile, which we read once), each deque under its own lock. */
static void count_queued(thread_pool *pool, size_t *pending, size_t *cancelled)
{
    pop_lock(pool);
    count_list(atomic_load_explicit(&pool->fifo, memory_order_relaxed), pending, cancelled);
    count_list(
        (cf_future *)(atomic_load_explicit(&pool->inbox, memory_order_acquire) & ~INBOX_CLOSED),
        pending, cancelled);
    pop_unlock(pool);
    int n = atomic_load_explicit(&pool->ndeques, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        worker_deque *d = atomic_load_explicit(&pool->deques[i], memory_order_acquire);
        if (!d)
            continue;
        spin_lock(&d->lock);
        count_list(d->oldest, pending, cancelled);
        spin_unlock(&d->lock);
    }
}

static void thread_pool_stats(cf_executor *ex, cf_executor_stats *out)
{
    thread_pool *pool = (thread_pool *)ex;
    size_t busy = 0, queued_cancelled = 0;
    uv_mutex_lock(&pool->submit_lock);
    for (int i = 0; i < pool->nthreads; i++) {
        worker_stats *ws = pool->wstats[i];
        size_t running = atomic_load_explicit(&ws->running, memory_order_relaxed);
        out->running += running;
        busy += running > 0;
        out->completed += atomic_load_explicit(&ws->completed, memory_order_relaxed);
        out->failed += atomic_load_explicit(&ws->failed, memory_order_relaxed);
        out->cancelled += atomic_load_explicit(&ws->cancelled, memory_order_relaxed);
    }
    uv_mutex_unlock(&pool->submit_lock);
    count_queued(pool, &out->pending, &queued_cancelled);
    int live = atomic_load_explicit(&pool->live, memory_order_relaxed);
    out->workers = live > 0 ? (size_t)live : 0;
    out->idle = out->workers > busy ? out->workers - busy : 0;
    unsigned long long unrun = atomic_load_explicit(&pool->failed_unrun, memory_order_relaxed);
    out->failed += unrun;
    out->completed += unrun;
    out->cancelled +=
        queued_cancelled + atomic_load_explicit(&pool->cancelled_unrun, memory_order_relaxed);
}

static const cf__executor_ops thread_pool_ops = {
    .name = "thread",
    .in_process = true,
    .submit = thread_pool_submit,
    .shutdown = thread_pool_shutdown,
    .signal_workers = NULL, /* threads cannot be killed: CF_ENOTSUP */
    .release = thread_pool_release,
    .destroy = thread_pool_destroy,
    .forget = thread_pool_forget,
    .parallel_for = thread_pool_parallel_for,
    .stats = thread_pool_stats,
};

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */
/* ------------------------------------------------------------------------ */

static char *default_prefix(void)
{
    static atomic_int counter; /* Python's ThreadPoolExecutor-<k> */
    int k = atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
    return cf__format("ThreadPoolExecutor-%d", k);
}

cf_executor *cf_thread_pool_new(const cf_thread_pool_opts *opts)
{
    cf_thread_pool_opts o = { 0 };
    if (opts)
        o = *opts;
    if (CF__CHECK_RESERVED(&o, "cf_thread_pool_opts") != 0)
        return NULL; /* the last error says which word */
    if (o.max_workers < 0)
        return cf__fail(CF_EINVAL);
    int ncpu = cf__cpu_count();
    if (o.max_workers == 0)
        o.max_workers = ncpu + 4 < MAX_DEFAULT_WORKERS ? ncpu + 4 : MAX_DEFAULT_WORKERS;

    /* Aligned: the hot counters sit on cache lines of their own. */
    thread_pool *pool = cf__aligned_calloc(sizeof *pool, alignof(thread_pool));
    if (!pool)
        return cf__fail(CF_ENOMEM);
    if (cf__executor_init(&pool->base, &thread_pool_ops) != 0) {
        cf__aligned_free(pool);
        return cf__fail(CF_ESYSTEM);
    }
    pool->max_workers = o.max_workers;
    pool->initializer = o.initializer;
    pool->initarg = o.initarg;
    pool->spin = ncpu > 1;
    /* As Python: an empty prefix means the default one. */
    pool->name_prefix = o.thread_name_prefix && *o.thread_name_prefix
                            ? cf__strdup(o.thread_name_prefix)
                            : default_prefix();
    /* max_workers is a bound, not a cost (as in Python): the table is not
     * sized by it beyond DEQUE_SLOTS_MAX. */
    pool->deque_slots = pool->max_workers < DEQUE_SLOTS_MAX ? pool->max_workers : DEQUE_SLOTS_MAX;
    pool->deques = cf__calloc((size_t)pool->deque_slots, sizeof *pool->deques);
    if (!pool->name_prefix || !pool->deques) {
        cf__free(pool->name_prefix);
        cf__free((void *)pool->deques);
        cf__aligned_free(pool);
        return cf__fail(CF_ENOMEM);
    }

    if (uv_mutex_init(&pool->submit_lock) != 0)
        goto fail_prefix;
    if (uv_mutex_init(&pool->join_lock) != 0)
        goto fail_submit_lock;
    if (uv_mutex_init(&pool->helper_lock) != 0)
        goto fail_join_lock;
    if (uv_sem_init(&pool->wake, 0) != 0)
        goto fail_helper_lock;
    return &pool->base;

fail_helper_lock:
    uv_mutex_destroy(&pool->helper_lock);
fail_join_lock:
    uv_mutex_destroy(&pool->join_lock);
fail_submit_lock:
    uv_mutex_destroy(&pool->submit_lock);
fail_prefix:
    cf__free(pool->name_prefix);
    cf__free((void *)pool->deques);
    cf__aligned_free(pool);
    return cf__fail(CF_ESYSTEM);
}
