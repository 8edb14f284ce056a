/* cf_completion_queue: futures' callbacks on the caller's own loop.
 *
 * What a loop relies on: the descriptor is readable exactly while callbacks
 * are ready (poll(fd, 0) says so before and after); callbacks run only inside
 * cf_completion_queue_dispatch, on the dispatching thread, each once, for
 * thread-pool and process-pool futures, for futures done before they were
 * added and for cancelled ones; freeing the queue drops what has not run and
 * releases its futures, also those that complete afterwards. Driven by epoll,
 * poll and (when glib was found) GLib's main loop.
 *
 * Tasks that must not finish yet block on a gate future (thread pool) or on
 * the FIFO gate of test_process_util.h (process pool); nothing sleeps.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_counting_alloc.h"
#include "test_process_util.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

#ifdef CFTEST_HAVE_GLIB
#include <glib-unix.h>
#include <glib.h>
#endif

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* Whether fd is readable right now. */
static bool readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int n = poll(&p, 1, 0);
    CHECK(n >= 0);
    return n == 1 && (p.revents & POLLIN);
}

/* The callbacks' view: which thread may run them, and whether a dispatch is
 * under way there. Atomics, so that a callback on a wrong thread is caught
 * by a CHECK rather than reported as a data race. */
static pthread_t dispatcher;
static atomic_bool dispatching;

static int dispatch(cf_completion_queue *q)
{
    atomic_store(&dispatching, true);
    int ran = cf_completion_queue_dispatch(q);
    atomic_store(&dispatching, false);
    CHECK(ran >= 0);
    return ran;
}

/* One callback per index: counts its calls and checks where it runs. */
typedef struct tally {
    size_t n;
    atomic_int *calls; /* per index */
    intptr_t *results; /* per index, -1 until called */
    atomic_int total;
} tally;

static void tally_init(tally *t, size_t n)
{
    t->n = n;
    t->calls = calloc(n, sizeof *t->calls);
    t->results = malloc(n * sizeof *t->results);
    CHECK(t->calls && t->results);
    for (size_t i = 0; i < n; i++)
        t->results[i] = -1;
    atomic_init(&t->total, 0);
}

static void tally_free(tally *t)
{
    free(t->calls);
    free(t->results);
}

/* userdata: an index into the_tally. */
static tally the_tally;

static void check_where(void)
{
    CHECK(pthread_equal(pthread_self(), dispatcher));
    CHECK(atomic_load(&dispatching));
}

static void on_done(cf_future *f, void *userdata)
{
    check_where();
    size_t i = (size_t)(uintptr_t)userdata;
    CHECK(i < the_tally.n);
    CHECK(cf_future_done(f));
    CHECK_EQ(atomic_fetch_add(&the_tally.calls[i], 1), 0); /* once */
    void *v = NULL;
    if (cf_future_result(f, 0, &v) == 0)
        the_tally.results[i] = I(v);
    else
        the_tally.results[i] = -2; /* cancelled or failed */
    atomic_fetch_add(&the_tally.total, 1);
}

static void must_not_run(cf_future *f, void *userdata)
{
    (void)f;
    (void)userdata;
    CHECK(!"a dropped callback ran");
}

/* A gate thread-pool tasks wait on, and a count of those at the gate. */
static cf_future *gate;
static pthread_mutex_t gated_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gated_cond = PTHREAD_COND_INITIALIZER;
static int gated_started;

static void gate_new(void)
{
    gate = cf_future_new();
    CHECK(gate);
    pthread_mutex_lock(&gated_lock);
    gated_started = 0;
    pthread_mutex_unlock(&gated_lock);
}

/* Until n tasks wait at the gate (their workers are busy). */
static void gate_wait_started(int n)
{
    pthread_mutex_lock(&gated_lock);
    while (gated_started < n)
        pthread_cond_wait(&gated_cond, &gated_lock);
    pthread_mutex_unlock(&gated_lock);
}

static void *square(void *arg)
{
    return V(I(arg) * I(arg));
}

static void *gated_square(void *arg)
{
    pthread_mutex_lock(&gated_lock);
    gated_started++;
    pthread_cond_broadcast(&gated_cond);
    pthread_mutex_unlock(&gated_lock);
    CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    return square(arg);
}

/* In a worker process: wait for the test's FIFO gate. */
static void *process_gated_square(void *arg)
{
    pass_gate();
    return square(arg);
}

/* Run an epoll loop on q's descriptor until `want` callbacks ran. Every
 * wake-up must find something to run: readable means ready. */
static void epoll_until(cf_completion_queue *q, int want)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = q };
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, cf_completion_queue_fd(q), &ev), 0);
    int wakeups = 0;
    while (atomic_load(&the_tally.total) < want) {
        struct epoll_event got;
        int n = epoll_wait(ep, &got, 1, 30000);
        CHECK_EQ(n, 1); /* 30 s without a completion: a hang */
        CHECK(got.data.ptr == q);
        CHECK(dispatch(q) >= 1);
        wakeups++;
    }
    CHECK(wakeups >= 1);
    close(ep);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void test_bad_arguments(void)
{
    CHECK_EQ(cf_completion_queue_fd(NULL), CF_EINVAL);
    CHECK_EQ(cf_completion_queue_dispatch(NULL), CF_EINVAL);
    cf_completion_queue_free(NULL);
    cf_completion_queue *q = cf_completion_queue_new();
    CHECK(q);
    cf_future *f = cf_future_new();
    CHECK(f);
    CHECK_EQ(cf_completion_queue_add(NULL, f, on_done, NULL), CF_EINVAL);
    CHECK_EQ(cf_completion_queue_add(q, NULL, on_done, NULL), CF_EINVAL);
    CHECK_EQ(cf_completion_queue_add(q, f, NULL, NULL), CF_EINVAL);
    CHECK_EQ(cf_completion_queue_dispatch(q), 0); /* nothing ready: returns at once */
    cf_future_unref(f);
    cf_completion_queue_free(q);
}

static void test_descriptor(void)
{
    cf_completion_queue *q = cf_completion_queue_new();
    CHECK(q);
    int fd = cf_completion_queue_fd(q);
    CHECK(fd >= 0);
    CHECK_EQ(cf_completion_queue_fd(q), fd); /* the same for the queue's life */
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    CHECK(!readable(fd));
    cf_completion_queue_free(q);
    CHECK_EQ(fcntl(fd, F_GETFD), -1); /* closed with the queue */
}

/* 1,000 thread-pool futures, added from four threads at once while their
 * tasks wait at the gate, then dispatched from an epoll loop as they
 * complete. */
enum { POOL_TASKS = 1000, ADDERS = 4 };

typedef struct adder {
    cf_completion_queue *q;
    cf_executor *ex;
    size_t first, count;
    cf_future **fs;
} adder;

static void *add_from_thread(void *arg)
{
    adder *a = arg;
    for (size_t i = a->first; i < a->first + a->count; i++) {
        a->fs[i] = cf_submit(a->ex, gated_square, V(i));
        CHECK(a->fs[i]);
        CHECK_EQ(cf_completion_queue_add(a->q, a->fs[i], on_done, V(i)), 0);
    }
    return NULL;
}

static void test_epoll_thread_pool(void)
{
    long live = counting_alloc_live();
    tally_init(&the_tally, POOL_TASKS);
    cf_completion_queue *q = cf_completion_queue_new();
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 4 });
    CHECK(q && ex);
    int fd = cf_completion_queue_fd(q);

    /* Nothing is ready while every task waits at the gate. */
    gate_new();
    cf_future **fs = calloc(POOL_TASKS, sizeof *fs);
    CHECK(fs);
    pthread_t threads[ADDERS];
    adder adders[ADDERS];
    for (size_t t = 0; t < ADDERS; t++) {
        adders[t] = (adder){ q, ex, t * (POOL_TASKS / ADDERS), POOL_TASKS / ADDERS, fs };
        CHECK_EQ(pthread_create(&threads[t], NULL, add_from_thread, &adders[t]), 0);
    }
    for (size_t t = 0; t < ADDERS; t++)
        CHECK_EQ(pthread_join(threads[t], NULL), 0);
    CHECK(!readable(fd));
    CHECK_EQ(dispatch(q), 0);
    CHECK_EQ(atomic_load(&the_tally.total), 0);

    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    epoll_until(q, POOL_TASKS);
    CHECK(!readable(fd)); /* everything ran: nothing is ready */
    CHECK_EQ(dispatch(q), 0);
    for (size_t i = 0; i < POOL_TASKS; i++) {
        CHECK_EQ(atomic_load(&the_tally.calls[i]), 1);
        CHECK_EQ(the_tally.results[i], (intptr_t)(i * i));
        cf_future_unref(fs[i]);
    }
    free(fs);
    cf_future_unref(gate);
    cf_executor_free(ex);
    cf_completion_queue_free(q);
    tally_free(&the_tally);
    CHECK_EQ(counting_alloc_live(), live);
}

/* 200 process-pool futures; the workers wait at the FIFO gate first. */
enum { PROCESS_TASKS = 200 };

static void test_epoll_process_pool(void)
{
    tally_init(&the_tally, PROCESS_TASKS);
    cf_completion_queue *q = cf_completion_queue_new();
    CHECK(q);
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 });
    CHECK(ex);
    int fd = cf_completion_queue_fd(q);
    cf_future *fs[PROCESS_TASKS];
    for (size_t i = 0; i < PROCESS_TASKS; i++) {
        fs[i] = cf_submit(ex, process_gated_square, V(i));
        CHECK(fs[i]);
        CHECK_EQ(cf_completion_queue_add(q, fs[i], on_done, V(i)), 0);
    }
    CHECK(!readable(fd));
    CHECK_EQ(dispatch(q), 0);
    open_gate(PROCESS_TASKS);
    epoll_until(q, PROCESS_TASKS);
    CHECK(!readable(fd));
    for (size_t i = 0; i < PROCESS_TASKS; i++) {
        CHECK_EQ(atomic_load(&the_tally.calls[i]), 1);
        CHECK_EQ(the_tally.results[i], (intptr_t)(i * i));
        cf_future_unref(fs[i]);
    }
    cf_executor_free(ex);
    cf_completion_queue_free(q);
    tally_free(&the_tally);
}

/* A future done before it is added arrives through dispatch, not inline. */
static void test_done_before_add(void)
{
    tally_init(&the_tally, 2);
    cf_completion_queue *q = cf_completion_queue_new();
    CHECK(q);
    int fd = cf_completion_queue_fd(q);
    cf_future *f = cf_future_new();
    CHECK(f);
    CHECK_EQ(cf_future_set_result(f, V(7)), 0);
    CHECK_EQ(cf_completion_queue_add(q, f, on_done, V(0)), 0);
    CHECK_EQ(atomic_load(&the_tally.total), 0); /* not inline */
    CHECK(readable(fd));
    CHECK(readable(fd)); /* polling does not consume it */
    /* The same future twice: two callbacks, each once. */
    CHECK_EQ(cf_completion_queue_add(q, f, on_done, V(1)), 0);
    cf_future_unref(f); /* the queue holds its own reference */
    CHECK_EQ(dispatch(q), 2);
    CHECK(!readable(fd));
    CHECK_EQ(the_tally.results[0], 7);
    CHECK_EQ(the_tally.results[1], 7);
    CHECK_EQ(dispatch(q), 0);
    cf_completion_queue_free(q);
    tally_free(&the_tally);
}

/* Cancelled futures arrive too: one cancelled by hand, one queued behind a
 * busy worker and cancelled there, one cancelled by shutdown. */
static void test_cancelled(void)
{
    tally_init(&the_tally, 3);
    cf_completion_queue *q = cf_completion_queue_new();
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1 });
    CHECK(q && ex);
    int fd = cf_completion_queue_fd(q);

    cf_future *f = cf_future_new();
    CHECK(f);
    CHECK_EQ(cf_completion_queue_add(q, f, on_done, V(0)), 0);
    CHECK(!readable(fd));
    CHECK(cf_future_cancel(f));
    CHECK(readable(fd));
    CHECK_EQ(dispatch(q), 1);
    CHECK_EQ(the_tally.results[0], -2);

    gate_new();
    cf_future *busy = cf_submit(ex, gated_square, V(3));
    CHECK(busy);
    gate_wait_started(1);
    cf_future *queued = cf_submit(ex, square, V(4));
    cf_future *at_shutdown = cf_submit(ex, square, V(5));
    CHECK(queued && at_shutdown);
    CHECK_EQ(cf_completion_queue_add(q, queued, on_done, V(1)), 0);
    CHECK_EQ(cf_completion_queue_add(q, at_shutdown, on_done, V(2)), 0);
    CHECK(cf_future_cancel(queued));
    CHECK(readable(fd));
    CHECK_EQ(dispatch(q), 1);
    CHECK(!readable(fd));
    CHECK_EQ(cf_executor_shutdown(ex, false, true), 0);
    CHECK(readable(fd));
    CHECK_EQ(dispatch(q), 1);
    CHECK(cf_future_cancelled(at_shutdown));
    CHECK_EQ(the_tally.results[1], -2);
    CHECK_EQ(the_tally.results[2], -2);
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    cf_executor_free(ex);
    CHECK_EQ(result_of(busy), 9);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(atomic_load(&the_tally.calls[i]), 1);
    cf_future_unref(busy);
    cf_future_unref(queued);
    cf_future_unref(at_shutdown);
    cf_future_unref(f);
    cf_future_unref(gate);
    cf_completion_queue_free(q);
    tally_free(&the_tally);
}

/* Callbacks run in completion order; one added by a callback waits for the
 * next dispatch. */
static cf_completion_queue *order_q;
static int order[4], order_n;
static cf_future *order_late;

static void record_order(cf_future *f, void *userdata)
{
    (void)f;
    check_where();
    order[order_n++] = (int)I(userdata);
    if (I(userdata) == 2) /* the last of the first batch adds one more */
        CHECK_EQ(cf_completion_queue_add(order_q, order_late, record_order, V(3)), 0);
}

static void test_order_and_batches(void)
{
    order_q = cf_completion_queue_new();
    CHECK(order_q);
    cf_future *fs[3];
    for (int i = 0; i < 3; i++) {
        fs[i] = cf_future_new();
        CHECK(fs[i]);
        CHECK_EQ(cf_completion_queue_add(order_q, fs[i], record_order, V(i)), 0);
    }
    order_late = cf_future_new();
    CHECK(order_late);
    CHECK_EQ(cf_future_set_result(order_late, NULL), 0);
    CHECK_EQ(cf_future_set_result(fs[1], NULL), 0);
    CHECK_EQ(cf_future_set_result(fs[0], NULL), 0);
    CHECK_EQ(cf_future_set_result(fs[2], NULL), 0);
    order_n = 0;
    CHECK_EQ(dispatch(order_q), 3);
    CHECK_EQ(order_n, 3);
    CHECK_EQ(order[0], 1);
    CHECK_EQ(order[1], 0);
    CHECK_EQ(order[2], 2);
    CHECK(readable(cf_completion_queue_fd(order_q))); /* the one added by a callback */
    CHECK_EQ(dispatch(order_q), 1);
    CHECK_EQ(order[3], 3);
    for (int i = 0; i < 3; i++)
        cf_future_unref(fs[i]);
    cf_future_unref(order_late);
    cf_completion_queue_free(order_q);
}

/* A plain poll() loop, with the futures completed from another thread. */
typedef struct completer {
    cf_future **fs;
    size_t n;
} completer;

static void *complete_all(void *arg)
{
    completer *c = arg;
    for (size_t i = 0; i < c->n; i++)
        CHECK_EQ(cf_future_set_result(c->fs[i], V(i * i)), 0);
    return NULL;
}

static void test_poll_loop(void)
{
    enum { N = 300 };
    tally_init(&the_tally, N);
    cf_completion_queue *q = cf_completion_queue_new();
    CHECK(q);
    cf_future *fs[N];
    for (size_t i = 0; i < N; i++) {
        fs[i] = cf_future_new();
        CHECK(fs[i]);
        CHECK_EQ(cf_completion_queue_add(q, fs[i], on_done, V(i)), 0);
    }
    pthread_t t;
    completer c = { fs, N };
    CHECK_EQ(pthread_create(&t, NULL, complete_all, &c), 0);
    while (atomic_load(&the_tally.total) < N) {
        struct pollfd p = { .fd = cf_completion_queue_fd(q), .events = POLLIN };
        CHECK_EQ(poll(&p, 1, 30000), 1);
        CHECK(p.revents & POLLIN);
        CHECK(dispatch(q) >= 1);
    }
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(!readable(cf_completion_queue_fd(q)));
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ(the_tally.results[i], (intptr_t)(i * i));
        cf_future_unref(fs[i]);
    }
    cf_completion_queue_free(q);
    tally_free(&the_tally);
}

/* Free with callbacks outstanding: ready ones are dropped, pending ones are
 * forgotten, and every future goes back to its other holders only: nothing
 * runs, nothing leaks (the counting allocator sees every block back), also
 * when the pending futures complete afterwards or never. */
static void test_free_with_outstanding(void)
{
    long live = counting_alloc_live();
    cf_completion_queue *q = cf_completion_queue_new();
    CHECK(q);
    cf_future *done = cf_future_new(), *later = cf_future_new(), *never = cf_future_new();
    CHECK(done && later && never);
    CHECK_EQ(cf_future_set_result(done, NULL), 0);
    CHECK_EQ(cf_completion_queue_add(q, done, must_not_run, NULL), 0);
    CHECK_EQ(cf_completion_queue_add(q, later, must_not_run, NULL), 0);
    CHECK_EQ(cf_completion_queue_add(q, never, must_not_run, NULL), 0);
    cf_completion_queue_free(q);
    CHECK_EQ(cf_future_set_result(later, NULL), 0); /* touches nothing freed */
    cf_future_unref(done);
    cf_future_unref(later);
    cf_future_unref(never); /* never completed: the queue kept nothing of it */
    CHECK_EQ(counting_alloc_live(), live);
}

/* The same with pool futures: completing on workers while the queue goes,
 * and all still pending when it goes, completing afterwards. */
static void test_free_while_completing(void)
{
    enum { N = 400, ROUNDS = 20 };
    long live = counting_alloc_live();
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 });
    CHECK(ex);
    cf_future *fs[N];
    for (int round = 0; round < ROUNDS; round++) {
        cf_completion_queue *q = cf_completion_queue_new();
        CHECK(q);
        for (size_t i = 0; i < N; i++) {
            fs[i] = cf_submit(ex, square, V(i));
            CHECK(fs[i]);
            CHECK_EQ(cf_completion_queue_add(q, fs[i], must_not_run, NULL), 0);
        }
        cf_completion_queue_free(q); /* the workers complete them meanwhile */
        for (size_t i = 0; i < N; i++)
            cf_future_unref(fs[i]);
    }

    gate_new();
    cf_completion_queue *q = cf_completion_queue_new();
    CHECK(q);
    for (size_t i = 0; i < N; i++) {
        fs[i] = cf_submit(ex, gated_square, V(i)); /* running at the gate, or queued */
        CHECK(fs[i]);
        CHECK_EQ(cf_completion_queue_add(q, fs[i], must_not_run, NULL), 0);
    }
    cf_completion_queue_free(q);
    CHECK_EQ(cf_future_set_result(gate, NULL), 0); /* now they all complete */
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ(result_of(fs[i]), (intptr_t)(i * i));
        cf_future_unref(fs[i]);
    }
    cf_executor_free(ex);
    cf_future_unref(gate);
    CHECK_EQ(counting_alloc_live(), live);
}

/* A callback may free the queue it runs from: the rest is dropped. */
static cf_completion_queue *self_q;
static atomic_int self_calls;

static void free_my_queue(cf_future *f, void *userdata)
{
    (void)f;
    (void)userdata;
    check_where();
    atomic_fetch_add(&self_calls, 1);
    cf_completion_queue_free(self_q);
}

static void test_free_from_callback(void)
{
    long live = counting_alloc_live();
    self_q = cf_completion_queue_new();
    CHECK(self_q);
    cf_future *fs[3];
    for (int i = 0; i < 3; i++) {
        fs[i] = cf_future_new();
        CHECK(fs[i]);
    }
    CHECK_EQ(cf_future_set_result(fs[0], NULL), 0);
    CHECK_EQ(cf_future_set_result(fs[1], NULL), 0);
    CHECK_EQ(cf_completion_queue_add(self_q, fs[0], free_my_queue, NULL), 0);
    CHECK_EQ(cf_completion_queue_add(self_q, fs[1], must_not_run, NULL), 0); /* same batch */
    CHECK_EQ(cf_completion_queue_add(self_q, fs[2], must_not_run, NULL), 0); /* pending */
    atomic_store(&self_calls, 0);
    CHECK_EQ(dispatch(self_q), 1);
    CHECK_EQ(atomic_load(&self_calls), 1);
    CHECK_EQ(cf_future_set_result(fs[2], NULL), 0);
    for (int i = 0; i < 3; i++)
        cf_future_unref(fs[i]);
    CHECK_EQ(counting_alloc_live(), live);
}

/* Out of memory: new and add fail with CF_ENOMEM, and a failed add never
 * calls back. */
static void test_out_of_memory(void)
{
    long live = counting_alloc_live();
    counting_alloc_fail_next();
    CHECK(cf_completion_queue_new() == NULL);
    CHECK_EQ(cf_last_error(), CF_ENOMEM);
    cf_completion_queue *q = cf_completion_queue_new();
    CHECK(q);
    cf_future *f = cf_future_new();
    CHECK(f);
    CHECK_EQ(cf_future_set_result(f, NULL), 0);
    counting_alloc_fail_next();
    CHECK_EQ(cf_completion_queue_add(q, f, must_not_run, NULL), CF_ENOMEM);
    CHECK(!readable(cf_completion_queue_fd(q)));
    CHECK_EQ(dispatch(q), 0);
    cf_future_unref(f);
    cf_completion_queue_free(q);
    CHECK_EQ(counting_alloc_live(), live);
}

#ifdef CFTEST_HAVE_GLIB
/* GLib's main loop watches the descriptor with g_unix_fd_add. */
typedef struct glib_run {
    cf_completion_queue *q;
    GMainLoop *loop;
    int want;
    int wakeups;
} glib_run;

static gboolean on_queue_readable(gint fd, GIOCondition condition, gpointer data)
{
    glib_run *run = data;
    CHECK_EQ(fd, cf_completion_queue_fd(run->q));
    CHECK(condition & G_IO_IN);
    CHECK(dispatch(run->q) >= 1);
    run->wakeups++;
    if (atomic_load(&the_tally.total) >= run->want) {
        g_main_loop_quit(run->loop);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static void test_glib_main_loop(void)
{
    enum { N = 100 };
    tally_init(&the_tally, N);
    cf_completion_queue *q = cf_completion_queue_new();
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 });
    CHECK(q && ex);
    cf_future *fs[N];
    for (size_t i = 0; i < N; i++) {
        fs[i] = cf_submit(ex, square, V(i));
        CHECK(fs[i]);
        CHECK_EQ(cf_completion_queue_add(q, fs[i], on_done, V(i)), 0);
    }
    GMainLoop *loop = g_main_loop_new(NULL, FALSE);
    glib_run run = { q, loop, N, 0 };
    g_unix_fd_add(cf_completion_queue_fd(q), G_IO_IN, on_queue_readable, &run);
    g_main_loop_run(loop);
    CHECK(run.wakeups >= 1);
    CHECK(!readable(cf_completion_queue_fd(q)));
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ(atomic_load(&the_tally.calls[i]), 1);
        CHECK_EQ(the_tally.results[i], (intptr_t)(i * i));
        cf_future_unref(fs[i]);
    }
    g_main_loop_unref(loop);
    cf_executor_free(ex);
    cf_completion_queue_free(q);
    tally_free(&the_tally);
}
#endif

/* libuv aborts (an assertion in uv__close) when a loop's descriptor is 0, 1
 * or 2, which it gets when the program started with them closed (the suite
 * also runs with stdin closed): keep them taken. */
static void keep_standard_fds_open(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0)
            CHECK(open("/dev/null", O_RDWR) == fd);
}

int main(void)
{
    keep_standard_fds_open();
    make_pipes();
    counting_alloc_install();
    dispatcher = pthread_self();
    RUN(test_bad_arguments);
    RUN(test_descriptor);
    RUN(test_done_before_add);
    RUN(test_order_and_batches);
    RUN(test_cancelled);
    RUN(test_poll_loop);
    RUN(test_epoll_thread_pool);
    RUN(test_epoll_process_pool);
    RUN(test_free_with_outstanding);
    RUN(test_free_while_completing);
    RUN(test_free_from_callback);
    RUN(test_out_of_memory);
#ifdef CFTEST_HAVE_GLIB
    RUN(test_glib_main_loop);
#else
    fprintf(stderr, "-- test_glib_main_loop: glib not found at build time, skipped\n");
#endif
    return 0;
}
