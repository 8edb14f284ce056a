/* Process pool lifecycle: no zombie and no leaked file descriptor after
 * cf_executor_free (five times over), and workers that outlive their parent
 * only as long as it takes them to notice it died.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <sys/wait.h>
#include <time.h>

static void *twice(void *arg)
{
    return V(I(arg) * 2);
}

static void *gated(void *arg)
{
    report_started();
    pass_gate();
    return arg;
}

static void run_pool_once(void)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 });
    CHECK(ex != NULL);
    cf_future *fs[20];
    for (int i = 0; i < 20; i++)
        fs[i] = cf_submit(ex, twice, V(i));
    for (int i = 0; i < 20; i++) {
        void *v;
        CHECK_EQ(cf_future_result(fs[i], CF_FOREVER, &v), 0);
        CHECK_EQ(I(v), 2 * i);
        cf_future_unref(fs[i]);
    }
    cf_executor_free(ex);
}

static void test_no_zombie_no_fd_leak(void)
{
    run_pool_once(); /* libuv keeps a few process-wide fds from its first use */
    int fds = count_fds();
    for (int round = 0; round < 5; round++) {
        run_pool_once();
        errno = 0;
        CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1); /* no child left, not even a zombie */
        CHECK_EQ(errno, ECHILD);
        CHECK_EQ(count_fds(), fds);
    }
}

static bool gone(int pid)
{
    char state = process_state(pid, NULL);
    return state == 0 || state == 'Z' || state == 'X';
}

static void test_workers_exit_when_parent_dies(void)
{
    int report[2];
    CHECK(pipe(report) == 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        /* The parent of the pool: start two workers, report them, wait to die. */
        close(report[0]);
        cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 });
        if (!ex)
            _exit(2);
        cf_future *a = cf_submit(ex, gated, V(1));
        cf_future *b = cf_submit(ex, gated, V(2));
        if (!a || !b)
            _exit(3);
        int pids[2] = { wait_started(), wait_started() };
        if (write(report[1], pids, sizeof pids) != (ssize_t)sizeof pids)
            _exit(4);
        for (;;)
            pause();
    }
    close(report[1]);
    int pids[2];
    CHECK(read(report[0], pids, sizeof pids) == (ssize_t)sizeof pids);
    close(report[0]);
    CHECK(!gone(pids[0]) && !gone(pids[1]));
    CHECK(kill(child, SIGKILL) == 0);
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    /* A bounded wait for the outcome (the workers exiting), not a sync. */
    for (int i = 0; i < 1000 && !(gone(pids[0]) && gone(pids[1])); i++)
        nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
    CHECK(gone(pids[0]));
    CHECK(gone(pids[1]));
}

int main(void)
{
    make_pipes();
    RUN(test_workers_exit_when_parent_dies);
    RUN(test_no_zombie_no_fd_leak);
    return 0;
}
