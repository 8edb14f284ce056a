/* Process pool: a worker's death costs one task. Crashes (signal, exit(),
 * abort()), a kill from outside, task_timeout, max_tasks_per_child and
 * terminate/kill_workers: the task that was running fails with CF_EBROKEN
 * (or CF_ETIMEDOUT) and says how its worker died; every other future
 * completes; the pool goes on (or, terminated, refuses work).
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <sys/wait.h>

static void *twice(void *arg)
{
    return V(I(arg) * 2);
}

static void *get_pid(void *arg)
{
    (void)arg;
    return V(getpid());
}

/* Every 10th item dies of SIGSEGV; the others double their argument. */
static void *segv_every_10th(void *arg)
{
    if (I(arg) % 10 == 9)
        raise(SIGSEGV);
    return V(I(arg) * 2);
}

static void *exit_3(void *arg)
{
    (void)arg;
    exit(3);
}

static void *call_abort(void *arg)
{
    (void)arg;
    abort();
}

static void *gated(void *arg)
{
    report_started();
    pass_gate();
    return arg;
}

static cf_executor *pool_new(cf_process_pool_opts opts)
{
    cf_executor *ex = cf_process_pool_new(&opts);
    CHECK(ex != NULL);
    return ex;
}

static const cf_exception *broken_exception(cf_future *f)
{
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), CF_EBROKEN);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    CHECK(exc != NULL);
    CHECK_EQ(exc->code, CF_EBROKEN);
    return exc;
}

static void test_thousand_tasks_every_10th_segfaults(void)
{
    enum { N = 1000 };
    cf_executor *ex = pool_new((cf_process_pool_opts){ .max_workers = 2 });
    static cf_future *fs[N];
    for (int i = 0; i < N; i++) {
        fs[i] = cf_submit(ex, segv_every_10th, V(i));
        CHECK(fs[i] != NULL);
    }
    int failed = 0, ok = 0;
    for (int i = 0; i < N; i++) {
        if (i % 10 == 9) {
            const cf_exception *exc = broken_exception(fs[i]);
            CHECK_EQ(exc->signal, SIGSEGV);
            CHECK_EQ(exc->exit_status, -1);
            CHECK(strstr(exc->message, "signal 11") != NULL);
            failed++;
        } else {
            CHECK_EQ(result_of(fs[i]), 2 * i);
            ok++;
        }
        cf_future_unref(fs[i]);
    }
    CHECK_EQ(failed, 100);
    CHECK_EQ(ok, 900);
    cf_future *f = cf_submit(ex, twice, V(21)); /* the pool goes on */
    CHECK_EQ(result_of(f), 42);
    cf_future_unref(f);
    cf_executor_free(ex);
}

static void test_exit_and_abort(void)
{
    cf_executor *ex = pool_new((cf_process_pool_opts){ .max_workers = 2 });
    cf_future *a = cf_submit(ex, twice, V(1));
    cf_future *e = cf_submit(ex, exit_3, NULL);
    cf_future *b = cf_submit(ex, call_abort, NULL);
    cf_future *c = cf_submit(ex, twice, V(2));
    const cf_exception *exc = broken_exception(e);
    CHECK_EQ(exc->exit_status, 3);
    CHECK_EQ(exc->signal, 0);
    CHECK(strstr(exc->message, "exited with status 3") != NULL);
    exc = broken_exception(b);
    CHECK_EQ(exc->signal, SIGABRT);
    CHECK_EQ(exc->exit_status, -1);
    CHECK_EQ(result_of(a), 2);
    CHECK_EQ(result_of(c), 4);
    cf_future_unref(a);
    cf_future_unref(b);
    cf_future_unref(c);
    cf_future_unref(e);
    cf_executor_free(ex);
}

static void test_killed_from_outside(void)
{
    cf_executor *ex = pool_new((cf_process_pool_opts){ .max_workers = 1 });
    cf_future *f = cf_submit(ex, gated, V(1));
    int pid = wait_started();
    CHECK(kill(pid, SIGKILL) == 0);
    const cf_exception *exc = broken_exception(f);
    CHECK_EQ(exc->signal, SIGKILL);
    cf_future_unref(f);
    f = cf_submit(ex, get_pid, NULL); /* replaced */
    intptr_t pid2 = result_of(f);
    CHECK(pid2 != pid && pid2 != getpid());
    cf_future_unref(f);
    cf_executor_free(ex);
}

static void test_task_timeout(void)
{
    cf_executor *ex = pool_new((cf_process_pool_opts){ .max_workers = 2, .task_timeout = 0.2 });
    cf_future *stuck = cf_submit(ex, gated, V(1)); /* its gate never opens */
    int pid = wait_started();
    cf_future *fs[10];
    for (int i = 0; i < 10; i++)
        fs[i] = cf_submit(ex, twice, V(i));
    CHECK_EQ(cf_future_result(stuck, CF_FOREVER, NULL), CF_ETIMEDOUT);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(stuck, 0, &exc), 0);
    CHECK(exc != NULL);
    CHECK_EQ(exc->code, CF_ETIMEDOUT);
    CHECK(cf_future_done(stuck));
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(result_of(fs[i]), 2 * i);
        cf_future_unref(fs[i]);
    }
    cf_future_unref(stuck);
    /* its worker was killed: the pool goes on with a new one */
    for (int i = 0; i < 3; i++) {
        cf_future *f = cf_submit(ex, get_pid, NULL);
        CHECK(result_of(f) != pid);
        cf_future_unref(f);
    }
    cf_executor_free(ex);
    CHECK(process_state(pid, NULL) == 0); /* killed, and reaped */
}

static void test_max_tasks_per_child(void)
{
    cf_executor *ex =
        pool_new((cf_process_pool_opts){ .max_workers = 1, .max_tasks_per_child = 3 });
    intptr_t pids[9];
    for (int i = 0; i < 9; i++) {
        cf_future *f = cf_submit(ex, get_pid, NULL);
        pids[i] = result_of(f);
        cf_future_unref(f);
    }
    for (int i = 0; i < 9; i++)
        CHECK_EQ(pids[i] == pids[i - i % 3], 1);
    CHECK(pids[0] != pids[3] && pids[3] != pids[6] && pids[0] != pids[6]);
    cf_executor_free(ex);

    /* many at once: nothing lost */
    ex = pool_new((cf_process_pool_opts){ .max_workers = 2, .max_tasks_per_child = 3 });
    cf_future *fs[50];
    for (int i = 0; i < 50; i++)
        fs[i] = cf_submit(ex, twice, V(i));
    for (int i = 0; i < 50; i++) {
        CHECK_EQ(result_of(fs[i]), 2 * i);
        cf_future_unref(fs[i]);
    }
    cf_executor_free(ex);
}

static void check_terminate(int (*stop)(cf_executor *), int sig)
{
    cf_executor *ex = pool_new((cf_process_pool_opts){ .max_workers = 1 });
    cf_future *running = cf_submit(ex, gated, V(1));
    int pid = wait_started();
    cf_future *fs[10];
    for (int i = 0; i < 10; i++)
        fs[i] = cf_submit(ex, twice, V(i));
    CHECK_EQ(stop(ex), 0);
    const cf_exception *exc = broken_exception(running);
    CHECK_EQ(exc->signal, sig);
    for (int i = 0; i < 10; i++) {
        int rc = cf_future_result(fs[i], CF_FOREVER, NULL);
        /* pending work is cancelled; one queued behind the running task
           was handed to the worker already and fails with it */
        CHECK(rc == CF_ECANCELLED || (i < 2 && rc == CF_EBROKEN));
        cf_future_unref(fs[i]);
    }
    CHECK(cf_submit(ex, twice, V(1)) == NULL);
    CHECK_EQ(cf_last_error(), CF_ESHUTDOWN);
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    CHECK(process_state(pid, NULL) == 0); /* gone, and reaped */
    CHECK_EQ(count_children(), 0);
    cf_future_unref(running);
    cf_executor_free(ex);
}

static void test_terminate_and_kill_workers(void)
{
    check_terminate(cf_executor_terminate_workers, SIGTERM);
    check_terminate(cf_executor_kill_workers, SIGKILL);
    cf_executor *threads = cf_thread_pool_new(NULL);
    CHECK_EQ(cf_executor_kill_workers(threads), CF_ENOTSUP);
    cf_executor_free(threads);
}

static void test_chunk_dies(void)
{
    cf_executor *ex = pool_new((cf_process_pool_opts){ .max_workers = 2 });
    void *args[30];
    for (int i = 0; i < 30; i++)
        args[i] = V(i);
    /* chunks of 5: items 0..8 come out, item 9's worker dies */
    cf_map_iter *it = cf_map(ex, segv_every_10th, args, 30, &(cf_map_opts){ .chunksize = 5 });
    CHECK(it != NULL);
    void *v;
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ(I(v), 2 * i);
    }
    CHECK_EQ(cf_map_next(it, &v), CF_EBROKEN);
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);
    cf_executor_free(ex);
}

int main(void)
{
    make_pipes();
    let_workers_crash();
    RUN(test_thousand_tasks_every_10th_segfaults);
    RUN(test_exit_and_abort);
    RUN(test_killed_from_outside);
    RUN(test_task_timeout);
    RUN(test_max_tasks_per_child);
    RUN(test_terminate_and_kill_workers);
    RUN(test_chunk_dies);
    return 0;
}
