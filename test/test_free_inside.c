/* cf_executor_free called from inside the executor: from one of its own
 * tasks or done-callbacks it shuts down without waiting and the executor
 * frees itself once its last thread ends; the work already accepted still
 * completes. A free nested in a free (a done-callback that a cancel runs)
 * is absorbed by the outer one. Run under valgrind / ASan / TSan, this is
 * the test that no memory is used after it was freed.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <sched.h>
#include <stdatomic.h>

#define WAIT 30.0

static void *ident(void *arg)
{
    return arg;
}

/* A done-callback that frees the executor it is given. */
static void free_executor_cb(cf_future *f, void *userdata)
{
    (void)f;
    cf_executor_free(userdata);
}

static void test_thread_pool_free_from_callback(void)
{
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 });
    CHECK(ex != NULL);
    cf_future *first = cf_submit(ex, ident, V(1));
    CHECK(first != NULL);
    /* More work behind it: accepted before the free, so it completes. */
    cf_future *more[50];
    for (int i = 0; i < 50; i++)
        CHECK((more[i] = cf_submit(ex, ident, V(i))) != NULL);
    CHECK_EQ(cf_future_add_done_callback(first, free_executor_cb, ex), 0);
    CHECK_EQ(result_of(first), 1);
    for (int i = 0; i < 50; i++) {
        CHECK_EQ(result_of(more[i]), i);
        cf_future_unref(more[i]);
    }
    cf_future_unref(first);
}

/* A task that frees its own pool (handed to it as the argument). */
static void *free_own_pool(void *arg)
{
    cf_executor_free(arg);
    return V(7);
}

static void test_thread_pool_free_from_task(void)
{
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1 });
    CHECK(ex != NULL);
    cf_future *f = cf_submit(ex, free_own_pool, ex);
    CHECK(f != NULL);
    CHECK_EQ(result_of(f), 7);
    cf_future_unref(f);
}

/* The process pool's callbacks run on its manager thread. */
static void test_process_pool_free_from_callback(void)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 });
    CHECK(ex != NULL);
    cf_future *first = cf_submit(ex, ident, V(3));
    cf_future *more[20];
    for (int i = 0; i < 20; i++)
        CHECK((more[i] = cf_submit(ex, ident, V(i))) != NULL);
    CHECK(first != NULL);
    CHECK_EQ(cf_future_add_done_callback(first, free_executor_cb, ex), 0);
    CHECK_EQ(result_of(first), 3);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(result_of(more[i]), i);
        cf_future_unref(more[i]);
    }
    cf_future_unref(first);
}

/* shutdown(wait=true) from a callback does not wait for itself either. */
static atomic_int shutdown_rc = 1;
static void shutdown_wait_cb(cf_future *f, void *userdata)
{
    (void)f;
    atomic_store(&shutdown_rc, cf_executor_shutdown(userdata, true, false));
}

static void test_shutdown_wait_from_callback(void)
{
    cf_executor *pools[2] = {
        cf_thread_pool_new(NULL),
        cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1 }),
    };
    for (int k = 0; k < 2; k++) {
        CHECK(pools[k] != NULL);
        atomic_store(&shutdown_rc, 1);
        cf_future *f = cf_submit(pools[k], ident, V(k));
        CHECK(f != NULL);
        CHECK_EQ(cf_future_add_done_callback(f, shutdown_wait_cb, pools[k]), 0);
        CHECK_EQ(result_of(f), k);
        cf_executor_free(pools[k]); /* waits until the callback is over */
        CHECK_EQ(atomic_load(&shutdown_rc), 0);
        cf_future_unref(f);
    }
}

/* The shutdown's own cancel runs the callback, which frees the pool while
 * that shutdown is under way. */
static void *wait_for_gate(void *arg)
{
    report_started();
    pass_gate();
    return arg;
}

static void open_gate_and_free_cb(cf_future *f, void *userdata)
{
    (void)f;
    open_gate(1); /* the free below waits for the task behind the gate */
    cf_executor_free(userdata);
}

static void test_nested_free_during_cancel(void)
{
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1 });
    CHECK(ex != NULL);
    cf_future *busy = cf_submit(ex, wait_for_gate, V(1));
    cf_future *queued = cf_submit(ex, ident, V(2));
    CHECK(busy && queued);
    wait_started(); /* `queued` stays queued behind it */
    CHECK_EQ(cf_future_add_done_callback(queued, open_gate_and_free_cb, ex), 0);
    /* cancel_futures cancels `queued` in this thread: its callback frees ex
     * while this shutdown is still under way. */
    CHECK_EQ(cf_executor_shutdown(ex, false, true), 0);
    CHECK(cf_future_cancelled(queued));
    CHECK_EQ(result_of(busy), 1);
    cf_future_unref(busy);
    cf_future_unref(queued);
}

/* terminate_workers cancels what is queued: a cancelled future's callback
 * frees the pool, which waits for the running task. The signals go first,
 * so that wait ends: the task behind the gate dies of SIGTERM. */
static void test_free_during_terminate(void)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1 });
    CHECK(ex != NULL);
    cf_future *busy = cf_submit(ex, wait_for_gate, V(1));
    CHECK(busy != NULL);
    wait_started();
    /* A worker holds at most 2 tasks while run times are unknown: the
     * second of these stays queued. */
    cf_future *ahead = cf_submit(ex, ident, V(2));
    cf_future *queued = cf_submit(ex, ident, V(3));
    CHECK(ahead && queued);
    while (!cf_future_running(ahead)) /* sent to the worker */
        sched_yield();
    CHECK_EQ(cf_future_add_done_callback(queued, free_executor_cb, ex), 0);
    CHECK_EQ(cf_executor_terminate_workers(ex), 0);
    CHECK(cf_future_cancelled(queued));
    CHECK_EQ(cf_future_result(busy, WAIT, NULL), CF_EBROKEN);
    CHECK_EQ(cf_future_result(ahead, WAIT, NULL), CF_EBROKEN);
    cf_future_unref(busy);
    cf_future_unref(ahead);
    cf_future_unref(queued);
}

int main(void)
{
    make_pipes();
    RUN(test_thread_pool_free_from_callback);
    RUN(test_thread_pool_free_from_task);
    RUN(test_process_pool_free_from_callback);
    RUN(test_shutdown_wait_from_callback);
    RUN(test_nested_free_during_cancel);
    RUN(test_free_during_terminate);
    return 0;
}
