/* fork() while executors exist. The child's copy of an executor has none of
 * its threads or workers: every call on it fails with CF_EBROKEN and a
 * message that says why, cf_executor_free returns at once without touching
 * the parent's threads or workers, and the parent's pool goes on (and frees)
 * while the child lives. The child can make executors of its own. A task
 * that forks leaves a child that is no worker of the pool.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <sched.h>
#include <sys/wait.h>
#include <time.h>

static void *twice(void *arg)
{
    return V(I(arg) * 2);
}

/* In the child: exit status 0 when the copy refuses work as it should and
 * a fresh pool of its own works. */
static int child_checks(cf_executor *inherited, bool process)
{
    if (cf_submit(inherited, twice, V(1)) != NULL || cf_last_error() != CF_EBROKEN)
        return 2;
    if (!strstr(cf_last_error_message(), "fork"))
        return 3;
    if (cf_map(inherited, twice, (void *[]){ V(1) }, 1, NULL) != NULL)
        return 4;
    if (cf_executor_shutdown(inherited, true, true) != CF_EBROKEN)
        return 5;
    cf_executor_free(inherited); /* returns: nothing to join here */
#if defined(__SANITIZE_THREAD__)
    return 0; /* ThreadSanitizer cannot start threads after a multi-threaded fork */
#endif
    cf_executor *own = process ? cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1 })
                               : cf_thread_pool_new(NULL);
    if (!own)
        return 6;
    cf_future *f = cf_submit(own, twice, V(21));
    void *v = NULL;
    if (!f || cf_future_result(f, 30, &v) != 0 || I(v) != 42)
        return 7;
    cf_future_unref(f);
    cf_executor_free(own);
    return 0;
}

/* Until every worker of ex waits for work: a worker still finishing a task
 * may hold a lock of the allocator, which AddressSanitizer's (unlike glibc's)
 * does not take across fork(), and the child's first malloc would hang. */
static void wait_all_idle(cf_executor *ex)
{
    cf_executor_stats st;
    time_t give_up = time(NULL) + 30;
    do {
        CHECK_EQ(cf_executor_stats_get(ex, &st), 0);
        if (st.workers > 0 && st.idle == st.workers && st.running == 0 && st.pending == 0)
            return;
        sched_yield();
    } while (time(NULL) < give_up);
    CHECK(!"the pool's workers never went idle");
}

static void check_fork(cf_executor *ex, bool process)
{
    CHECK(ex != NULL);
    cf_future *up = cf_submit(ex, twice, V(5));
    CHECK_EQ(result_of(up), 10); /* workers are up */
    cf_future_unref(up);
    wait_all_idle(ex);
    int release[2];
    CHECK(pipe(release) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(release[1]);
        int rc = child_checks(ex, process);
        char c;
        (void)!read(release[0], &c, 1); /* stay alive until the parent is done */
        _exit(rc);
    }
    close(release[0]);
    /* The child is alive and holds copies of whatever it inherited: the
     * pool still works, and freeing it does not wait for the child. */
    cf_future *f = cf_submit(ex, twice, V(8));
    CHECK_EQ(result_of(f), 16);
    cf_future_unref(f);
    cf_executor_free(ex);
    close(release[1]);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

static void test_fork_thread_pool(void)
{
    check_fork(cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 }), false);
}

static void test_fork_process_pool(void)
{
    check_fork(cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 }), true);
}

/* A task of a one-worker thread pool forks while another task waits in the
 * queue behind it: in the child, a wait for that task must not run it from
 * the copied queue (the child's copy completes nothing), however the
 * forking thread was a worker of the pool. */
static cf_future *queued_behind;
static int go_fork[2];

static void *fork_and_wait(void *arg)
{
    (void)arg;
    char c;
    if (read(go_fork[0], &c, 1) != 1) /* queued_behind is set */
        return cf_raise(1, "read");
    pid_t pid = fork();
    if (pid == 0) {
        int rc = cf_future_result(queued_behind, 0.05, NULL);
        _exit(rc == CF_ETIMEDOUT && !cf_future_done(queued_behind) ? 0 : 10 - rc);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return cf_raise(2, "fork or waitpid");
    return V(WEXITSTATUS(status));
}

static void test_fork_inside_task(void)
{
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1 });
    CHECK(ex != NULL);
    CHECK(pipe(go_fork) == 0);
    cf_future *forker = cf_submit(ex, fork_and_wait, NULL);
    CHECK(forker != NULL);
    queued_behind = cf_submit(ex, twice, V(4));
    CHECK(queued_behind != NULL);
    CHECK(write(go_fork[1], "g", 1) == 1);
    CHECK_EQ(result_of(forker), 0);        /* the child's wait timed out */
    CHECK_EQ(result_of(queued_behind), 8); /* and the parent ran it */
    cf_future_unref(forker);
    cf_future_unref(queued_behind);
    cf_executor_free(ex);
    close(go_fork[0]);
    close(go_fork[1]);
}

int main(void)
{
    make_pipes();
    RUN(test_fork_thread_pool);
    RUN(test_fork_process_pool);
    RUN(test_fork_inside_task);
    return 0;
}
