/* cf_uv_bridge: futures' callbacks on a libuv loop, inside uv_run.
 *
 * What a libuv program relies on: every callback runs on the loop thread,
 * inside uv_run, exactly once (10,000 thread-pool tasks, a chain of tasks
 * each submitted by the previous callback, process-pool tasks, futures done
 * before they were added, cancelled ones, adds from another thread); the
 * bridge keeps the loop alive while work is outstanding and not after, so
 * uv_run(UV_RUN_DEFAULT) returns by itself; closing drops what has not run
 * (also from inside a callback), and then uv_loop_close returns 0.
 *
 * Tasks that must not finish yet block on a gate future; nothing sleeps.
 * SPDX-License-Identifier: MIT */
#include <cfutures-uv.h>

#include "check.h"
#include "test_counting_alloc.h"
#include "test_process_util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static pthread_t loop_thread;
static atomic_bool in_uv_run;

/* uv_run(DEFAULT) on the loop thread: it must return by itself. */
static void run_loop(uv_loop_t *loop)
{
    atomic_store(&in_uv_run, true);
    uv_run(loop, UV_RUN_DEFAULT);
    atomic_store(&in_uv_run, false);
}

/* Close the bridge, let its handle close, and close the loop: 0 means
 * nothing was left open. */
static void close_all(uv_loop_t *loop, cf_uv_bridge *b)
{
    cf_uv_bridge_close(b);
    uv_run(loop, UV_RUN_NOWAIT);
    CHECK_EQ(uv_loop_close(loop), 0);
}

static void check_where(void)
{
    CHECK(pthread_equal(pthread_self(), loop_thread));
    CHECK(atomic_load(&in_uv_run));
}

static void *square(void *arg)
{
    return V(I(arg) * I(arg));
}

static cf_future *gate;
static void *gated_square(void *arg)
{
    CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    return square(arg);
}

static atomic_int tasks_run;
static void *counted_square(void *arg)
{
    atomic_fetch_add(&tasks_run, 1);
    return square(arg);
}

static void must_not_run(cf_future *f, void *userdata)
{
    (void)f;
    (void)userdata;
    CHECK(!"a dropped callback ran");
}

/* Per-index calls and results. */
enum { MANY = 10000 };
static int calls[MANY];
static intptr_t results[MANY];
static int total;

static void reset_tally(void)
{
    memset(calls, 0, sizeof calls);
    memset(results, 0, sizeof results);
    total = 0;
}

/* Record the result and release the caller's reference (the future that
 * cf_uv_run_in_executor returned). */
static void on_result(cf_future *f, void *userdata)
{
    check_where();
    size_t i = (size_t)(uintptr_t)userdata;
    CHECK(i < MANY);
    CHECK_EQ(++calls[i], 1);
    void *v = NULL;
    results[i] = cf_future_result(f, 0, &v) == 0 ? I(v) : -1;
    total++;
    cf_future_unref(f);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void test_bad_arguments(void)
{
    CHECK(cf_uv_bridge_new(NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    cf_uv_bridge_close(NULL);

    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    cf_uv_bridge *b = cf_uv_bridge_new(&loop);
    cf_executor *ex = cf_thread_pool_new(NULL);
    cf_future *f = cf_future_new();
    CHECK(b && ex && f);
    CHECK_EQ(cf_uv_add_done_callback(NULL, f, must_not_run, NULL), CF_EINVAL);
    CHECK_EQ(cf_uv_add_done_callback(b, NULL, must_not_run, NULL), CF_EINVAL);
    CHECK_EQ(cf_uv_add_done_callback(b, f, NULL, NULL), CF_EINVAL);
    CHECK(cf_uv_run_in_executor(NULL, ex, square, NULL, must_not_run, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_uv_run_in_executor(b, NULL, square, NULL, must_not_run, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_uv_run_in_executor(b, ex, NULL, NULL, must_not_run, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_uv_run_in_executor(b, ex, square, NULL, NULL, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    run_loop(&loop); /* nothing outstanding: returns at once */
    close_all(&loop, b);
    cf_future_unref(f);
    cf_executor_free(ex);
}

/* With nothing outstanding the bridge does not keep the loop alive. */
static void test_idle_bridge_lets_loop_end(void)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    cf_uv_bridge *b = cf_uv_bridge_new(&loop);
    CHECK(b);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK(!uv_loop_alive(&loop));
    close_all(&loop, b);
}

/* 10,000 tasks submitted from the loop thread before uv_run, which returns
 * by itself once every callback ran on the loop thread, each once. */
static void test_ten_thousand_tasks(void)
{
    long live = counting_alloc_live();
    reset_tally();
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    cf_uv_bridge *b = cf_uv_bridge_new(&loop);
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 4 });
    CHECK(b && ex);
    for (size_t i = 0; i < MANY; i++)
        CHECK(cf_uv_run_in_executor(b, ex, square, V(i), on_result, V(i)));
    CHECK_EQ(total, 0); /* only inside uv_run */
    run_loop(&loop);
    CHECK_EQ(total, MANY);
    for (size_t i = 0; i < MANY; i++) {
        CHECK_EQ(calls[i], 1);
        CHECK_EQ(results[i], (intptr_t)(i * i));
    }
    CHECK(!uv_loop_alive(&loop));
    close_all(&loop, b);
    cf_executor_free(ex);
    CHECK_EQ(counting_alloc_live(), live);
}

/* Each callback submits the next task: a chain of round trips through one
 * uv_run, which ends with the chain. */
enum { CHAIN = 2000 };
typedef struct chain {
    cf_uv_bridge *b;
    cf_executor *ex;
    int done;
} chain;

static void chain_step(cf_future *f, void *userdata)
{
    check_where();
    chain *c = userdata;
    CHECK_EQ(result_of(f), (intptr_t)c->done * c->done);
    cf_future_unref(f);
    if (++c->done < CHAIN)
        CHECK(cf_uv_run_in_executor(c->b, c->ex, square, V(c->done), chain_step, c));
}

static void test_chain(void)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    chain c = { cf_uv_bridge_new(&loop), cf_thread_pool_new(NULL), 0 };
    CHECK(c.b && c.ex);
    CHECK(cf_uv_run_in_executor(c.b, c.ex, square, V(0), chain_step, &c));
    run_loop(&loop);
    CHECK_EQ(c.done, CHAIN);
    close_all(&loop, c.b);
    cf_executor_free(c.ex);
}

/* The loop stays alive for tasks still blocked at the gate when the only
 * other callback has run: that callback (of a task on another pool, so that
 * it runs whatever the first pool does) opens the gate. */
static void open_gate_cb(cf_future *f, void *userdata)
{
    check_where();
    (void)userdata;
    CHECK_EQ(result_of(f), 4);
    cf_future_unref(f);
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
}

static void test_keeps_loop_alive(void)
{
    enum { GATED = 50 };
    reset_tally();
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    cf_uv_bridge *b = cf_uv_bridge_new(&loop);
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 3 });
    cf_executor *other = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1 });
    gate = cf_future_new();
    CHECK(b && ex && other && gate);
    for (size_t i = 0; i < GATED; i++)
        CHECK(cf_uv_run_in_executor(b, ex, gated_square, V(i), on_result, V(i)));
    CHECK(cf_uv_run_in_executor(b, other, square, V(2), open_gate_cb, NULL));
    run_loop(&loop);
    CHECK_EQ(total, GATED);
    for (size_t i = 0; i < GATED; i++)
        CHECK_EQ(results[i], (intptr_t)(i * i));
    close_all(&loop, b);
    cf_executor_free(ex);
    cf_executor_free(other);
    cf_future_unref(gate);
}

/* Futures done before they are added, cancelled futures, and a future that
 * is not a pool's: all through uv_run, none inline. */
static void test_done_and_cancelled(void)
{
    reset_tally();
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    cf_uv_bridge *b = cf_uv_bridge_new(&loop);
    CHECK(b);
    cf_future *done = cf_future_new(), *cancelled = cf_future_new(), *later = cf_future_new();
    CHECK(done && cancelled && later);
    CHECK_EQ(cf_future_set_result(done, V(7)), 0);
    CHECK_EQ(cf_uv_add_done_callback(b, cf_future_ref(done), on_result, V(0)), 0);
    CHECK_EQ(total, 0); /* not inline */
    CHECK_EQ(cf_uv_add_done_callback(b, cf_future_ref(cancelled), on_result, V(1)), 0);
    CHECK(cf_future_cancel(cancelled));
    CHECK_EQ(cf_uv_add_done_callback(b, cf_future_ref(later), on_result, V(2)), 0);
    CHECK_EQ(cf_future_set_result(later, V(9)), 0);
    CHECK_EQ(total, 0);
    run_loop(&loop);
    CHECK_EQ(total, 3);
    CHECK_EQ(results[0], 7);
    CHECK_EQ(results[1], -1);
    CHECK_EQ(results[2], 9);
    close_all(&loop, b);
    cf_future_unref(done);
    cf_future_unref(cancelled);
    cf_future_unref(later);
}

/* An add from another thread while the loop runs (kept alive by a task at
 * the gate): its callback runs on the loop thread too. */
typedef struct foreign {
    cf_uv_bridge *b;
    cf_future *f;
} foreign;

static atomic_int foreign_calls;
static void foreign_cb(cf_future *f, void *userdata)
{
    check_where();
    (void)userdata;
    CHECK_EQ(result_of(f), 11);
    atomic_fetch_add(&foreign_calls, 1);
    CHECK_EQ(cf_future_set_result(gate, NULL), 0); /* now the loop may end */
}

static void *add_from_thread(void *arg)
{
    foreign *fo = arg;
    CHECK_EQ(cf_uv_add_done_callback(fo->b, fo->f, foreign_cb, NULL), 0);
    return NULL;
}

static void test_add_from_another_thread(void)
{
    reset_tally();
    atomic_store(&foreign_calls, 0);
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    cf_uv_bridge *b = cf_uv_bridge_new(&loop);
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1 });
    gate = cf_future_new();
    CHECK(b && ex && gate);
    CHECK(cf_uv_run_in_executor(b, ex, gated_square, V(3), on_result, V(0)));
    foreign fo = { b, cf_future_new() };
    CHECK(fo.f);
    CHECK_EQ(cf_future_set_result(fo.f, V(11)), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, add_from_thread, &fo), 0);
    run_loop(&loop);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(atomic_load(&foreign_calls), 1);
    CHECK_EQ(total, 1);
    CHECK_EQ(results[0], 9);
    close_all(&loop, b);
    cf_executor_free(ex);
    cf_future_unref(fo.f);
    cf_future_unref(gate);
}

/* Close with callbacks outstanding, outside uv_run: ready ones and pending
 * ones are dropped, the loop closes cleanly, the tasks still complete later,
 * and every block goes back. */
static void test_close_with_outstanding(void)
{
    enum { N = 100 };
    long live = counting_alloc_live();
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    cf_uv_bridge *b = cf_uv_bridge_new(&loop);
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 });
    gate = cf_future_new();
    cf_future *done = cf_future_new();
    CHECK(b && ex && gate && done);
    CHECK_EQ(cf_future_set_result(done, NULL), 0);
    CHECK_EQ(cf_uv_add_done_callback(b, done, must_not_run, NULL), 0);
    cf_future *fs[N];
    for (size_t i = 0; i < N; i++)
        CHECK(fs[i] = cf_uv_run_in_executor(b, ex, i % 2 ? gated_square : square, V(i),
                                            must_not_run, NULL));
    cf_uv_bridge_close(b);
    run_loop(&loop); /* only the handle's close is left */
    CHECK_EQ(uv_loop_close(&loop), 0);
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ(result_of(fs[i]), (intptr_t)(i * i));
        cf_future_unref(fs[i]);
    }
    cf_executor_free(ex);
    cf_future_unref(done);
    cf_future_unref(gate);
    CHECK_EQ(counting_alloc_live(), live);
}

/* Close from inside a callback: the rest of its batch and the pending ones
 * are dropped, and uv_run returns. */
static cf_uv_bridge *closing_bridge;
static atomic_int closer_calls;
static void close_bridge_cb(cf_future *f, void *userdata)
{
    check_where();
    (void)f;
    (void)userdata;
    atomic_fetch_add(&closer_calls, 1);
    cf_uv_bridge_close(closing_bridge);
}

static void test_close_from_callback(void)
{
    long live = counting_alloc_live();
    atomic_store(&closer_calls, 0);
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    closing_bridge = cf_uv_bridge_new(&loop);
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1 });
    gate = cf_future_new();
    cf_future *first = cf_future_new(), *second = cf_future_new();
    CHECK(closing_bridge && ex && gate && first && second);
    CHECK_EQ(cf_future_set_result(first, NULL), 0);
    CHECK_EQ(cf_future_set_result(second, NULL), 0);
    CHECK_EQ(cf_uv_add_done_callback(closing_bridge, first, close_bridge_cb, NULL), 0);
    CHECK_EQ(cf_uv_add_done_callback(closing_bridge, second, must_not_run, NULL), 0);
    cf_future *pending =
        cf_uv_run_in_executor(closing_bridge, ex, gated_square, V(5), must_not_run, NULL);
    CHECK(pending);
    run_loop(&loop);
    CHECK_EQ(atomic_load(&closer_calls), 1);
    CHECK_EQ(uv_loop_close(&loop), 0);
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    CHECK_EQ(result_of(pending), 25);
    cf_future_unref(pending);
    cf_executor_free(ex);
    cf_future_unref(first);
    cf_future_unref(second);
    cf_future_unref(gate);
    CHECK_EQ(counting_alloc_live(), live);
}

/* Process-pool futures: completed on the pool's manager thread, called back
 * on the loop thread. */
static void test_process_pool(void)
{
    enum { N = 200 };
    reset_tally();
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    cf_uv_bridge *b = cf_uv_bridge_new(&loop);
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 });
    CHECK(b && ex);
    for (size_t i = 0; i < N; i++)
        CHECK(cf_uv_run_in_executor(b, ex, square, V(i), on_result, V(i)));
    run_loop(&loop);
    CHECK_EQ(total, N);
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ(calls[i], 1);
        CHECK_EQ(results[i], (intptr_t)(i * i));
    }
    close_all(&loop, b);
    cf_executor_free(ex);
}

/* Failures: nothing is submitted, no callback runs, the loop is not kept
 * alive. */
static void test_failures(void)
{
    long live = counting_alloc_live();
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    counting_alloc_fail_next();
    CHECK(cf_uv_bridge_new(&loop) == NULL);
    CHECK_EQ(cf_last_error(), CF_ENOMEM);
    cf_uv_bridge *b = cf_uv_bridge_new(&loop);
    cf_executor *ex = cf_thread_pool_new(NULL);
    cf_future *f = cf_future_new();
    CHECK(b && ex && f);
    atomic_store(&tasks_run, 0);
    counting_alloc_fail_next();
    CHECK(cf_uv_run_in_executor(b, ex, counted_square, V(1), must_not_run, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_ENOMEM);
    counting_alloc_fail_next();
    CHECK_EQ(cf_uv_add_done_callback(b, f, must_not_run, NULL), CF_ENOMEM);
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    CHECK(cf_uv_run_in_executor(b, ex, counted_square, V(1), must_not_run, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_ESHUTDOWN);
    CHECK_EQ(cf_future_set_result(f, NULL), 0);
    run_loop(&loop); /* nothing outstanding: returns at once */
    close_all(&loop, b);
    cf_executor_free(ex);
    CHECK_EQ(atomic_load(&tasks_run), 0);
    cf_future_unref(f);
    CHECK_EQ(counting_alloc_live(), live);
}

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
    loop_thread = pthread_self();
    RUN(test_bad_arguments);
    RUN(test_idle_bridge_lets_loop_end);
    RUN(test_ten_thousand_tasks);
    RUN(test_chain);
    RUN(test_keeps_loop_alive);
    RUN(test_done_and_cancelled);
    RUN(test_add_from_another_thread);
    RUN(test_close_with_outstanding);
    RUN(test_close_from_callback);
    RUN(test_process_pool);
    RUN(test_failures);
    return 0;
}
