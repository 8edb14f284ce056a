/* cf_executor_stats_get on both pools: exact figures with workers blocked
 * on a gate (workers, idle, running, pending), after cancels, raises and
 * completions, and on a process pool after a worker crashed.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#define WAIT 60.0

static void *gated(void *arg)
{
    report_started();
    pass_gate();
    return arg;
}

static void *raises(void *arg)
{
    (void)arg;
    return cf_raise(5, "no");
}

static void *die(void *arg)
{
    (void)arg;
    kill(getpid(), SIGKILL);
    return NULL;
}

static cf_executor_stats stats_of(cf_executor *ex)
{
    cf_executor_stats s;
    memset(&s, 0xff, sizeof s);
    CHECK_EQ(cf_executor_stats_get(ex, &s), 0);
    return s;
}

static void check_blocked_then_done(cf_executor *ex, bool process)
{
    CHECK(ex != NULL);
    cf_executor_stats s = stats_of(ex);
    CHECK_EQ(s.workers, 0); /* workers start on demand */
    CHECK_EQ(s.pending + s.running + s.completed + s.failed + s.cancelled, 0);

    enum { N = 5 };
    cf_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK((fs[i] = cf_submit(ex, gated, V(i))) != NULL);
    wait_started();
    wait_started(); /* both workers run a task; three wait */
    s = stats_of(ex);
    CHECK_EQ(s.workers, 2);
    CHECK_EQ(s.idle, 0);
    CHECK_EQ(s.running, 2);
    CHECK_EQ(s.pending, 3);
    CHECK_EQ(s.completed, 0);

    /* The last one is still queued (a process pool sends at most a few
     * ahead): cancelling it counts, and it is no longer pending. */
    CHECK(cf_future_cancel(fs[N - 1]));
    s = stats_of(ex);
    CHECK_EQ(s.cancelled, 1);
    CHECK_EQ(s.pending, 2);

    open_gate(N - 1);
    for (int i = 0; i < N - 1; i++) {
        CHECK_EQ(result_of(fs[i]), i);
        cf_future_unref(fs[i]);
    }
    for (int i = 2; i < N - 1; i++)
        wait_started(); /* the reports of the two that waited */
    cf_future_unref(fs[N - 1]);
    cf_future *r = cf_submit(ex, raises, NULL);
    CHECK_EQ(cf_future_result(r, WAIT, NULL), CF_ETASK);
    cf_future_unref(r);
    s = stats_of(ex);
    CHECK_EQ(s.completed, N); /* four results and the raise */
    CHECK_EQ(s.failed, 1);
    CHECK_EQ(s.cancelled, 1);
    CHECK_EQ(s.pending, 0);
    CHECK_EQ(s.running, 0);
    CHECK_EQ(s.workers, 2);
    CHECK_EQ(s.idle, 2);
    CHECK_EQ(s.workers_replaced, 0);

    if (process) {
        cf_future *d = cf_submit(ex, die, NULL);
        CHECK_EQ(cf_future_result(d, WAIT, NULL), CF_EBROKEN);
        cf_future_unref(d);
        s = stats_of(ex);
        CHECK_EQ(s.completed, N + 1);
        CHECK_EQ(s.failed, 2);
        CHECK_EQ(s.workers_replaced, 1);
        CHECK_EQ(s.workers, 1); /* no work since: not replaced yet */
    }
    cf_executor_free(ex);
}

static void test_thread_pool(void)
{
    check_blocked_then_done(cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 }), false);
}

static void test_process_pool(void)
{
    check_blocked_then_done(cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 }), true);
}

static void *twice(void *arg)
{
    return V(I(arg) * 2);
}

/* max_tasks_per_child recycles workers: each one counts as replaced. */
static void test_recycled(void)
{
    cf_executor *ex =
        cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1, .max_tasks_per_child = 1 });
    CHECK(ex != NULL);
    for (int i = 0; i < 3; i++) {
        cf_future *f = cf_submit(ex, twice, V(i));
        CHECK_EQ(result_of(f), 2 * i);
        cf_future_unref(f);
    }
    cf_executor_free(ex); /* the last worker's exit is counted by then */
}

/* A worker killed for task_timeout died: it counts as replaced, also when
 * a shutdown right after the timeout retires it before its end is seen. */
static void *overrun(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void test_timeout_replaced(void)
{
    for (int i = 0; i < 5; i++) {
        cf_executor *ex =
            cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1, .task_timeout = 0.05 });
        CHECK(ex != NULL);
        cf_future *f = cf_submit(ex, overrun, NULL);
        CHECK_EQ(cf_future_result(f, WAIT, NULL), CF_ETIMEDOUT);
        CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
        cf_executor_stats s;
        CHECK_EQ(cf_executor_stats_get(ex, &s), 0);
        CHECK_EQ(s.workers_replaced, 1);
        CHECK_EQ(s.failed, 1);
        cf_future_unref(f);
        cf_executor_free(ex);
    }
}

/* cf_parallel_for's helpers are the pool's own: they count nowhere, on the
 * thread pool as on the process pool (whose chunks are tasks: counted). */
static void empty_range(void *ctx, const cf_range *r)
{
    (void)ctx;
    (void)r;
}

static void test_parallel_for_not_counted(void)
{
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 4 });
    CHECK(ex != NULL);
    for (int i = 0; i < 50; i++)
        CHECK_EQ(cf_parallel_for(ex, 1000, empty_range, NULL, &(cf_parallel_opts){ .grain = 1 }),
                 0);
    cf_executor_stats st;
    CHECK_EQ(cf_executor_stats_get(ex, &st), 0);
    CHECK_EQ(st.completed, 0u);
    CHECK_EQ(st.cancelled, 0u);
    CHECK_EQ(st.failed, 0u);
    CHECK_EQ(st.pending, 0u);
    CHECK_EQ(st.running, 0u);
    cf_executor_free(ex);
}

static void test_bad_arguments(void)
{
    cf_executor_stats s;
    CHECK_EQ(cf_executor_stats_get(NULL, &s), CF_EINVAL);
    cf_executor *ex = cf_thread_pool_new(NULL);
    CHECK(ex != NULL);
    CHECK_EQ(cf_executor_stats_get(ex, NULL), CF_EINVAL);
    cf_executor_free(ex);
}

int main(void)
{
    make_pipes();
    let_workers_crash();
    RUN(test_thread_pool);
    RUN(test_process_pool);
    RUN(test_recycled);
    RUN(test_timeout_replaced);
    RUN(test_parallel_for_not_counted);
    RUN(test_bad_arguments);
    return 0;
}
