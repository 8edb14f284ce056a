/* A worker stopped with SIGSTOP (a debugger, a job-control accident) does
 * not hang its pool: terminate_workers ends it, and free returns even when
 * an idle worker is stopped (a retired worker that does not go is killed).
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <sys/wait.h>

static void *gated_pid(void *arg)
{
    report_started();
    pass_gate();
    return arg;
}

static void *my_pid(void *arg)
{
    (void)arg;
    return V(getpid());
}

/* Stop a worker and wait until the kernel says it is stopped. */
static void stop_worker(int pid)
{
    CHECK_EQ(kill(pid, SIGSTOP), 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK_EQ(waitid(P_PID, (id_t)pid, &si, WSTOPPED), 0);
    CHECK_EQ(si.si_code, CLD_STOPPED);
}

static void test_terminate_stopped_busy_worker(void)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1 });
    CHECK(ex != NULL);
    cf_future *busy = cf_submit(ex, gated_pid, V(1));
    cf_future *queued = cf_submit(ex, my_pid, NULL);
    CHECK(busy && queued);
    stop_worker(wait_started());
    CHECK_EQ(cf_executor_terminate_workers(ex), 0);
    CHECK_EQ(cf_future_result(busy, CF_FOREVER, NULL), CF_EBROKEN);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(busy, 0, &exc), 0);
    CHECK_EQ(exc->signal, SIGTERM);
    int rc = cf_future_result(queued, CF_FOREVER, NULL);
    CHECK(rc == CF_ECANCELLED || rc == CF_EBROKEN);
    cf_executor_free(ex);
    cf_future_unref(busy);
    cf_future_unref(queued);
}

static void free_with_stopped_idle_worker(double task_timeout)
{
    cf_executor *ex = cf_process_pool_new(
        &(cf_process_pool_opts){ .max_workers = 1, .task_timeout = task_timeout });
    CHECK(ex != NULL);
    cf_future *f = cf_submit(ex, my_pid, NULL);
    int pid = (int)result_of(f);
    cf_future_unref(f);
    stop_worker(pid);
    cf_executor_free(ex); /* returns: the stopped worker is killed */
    CHECK_EQ(count_children(), 0);
}

static void test_free_with_stopped_idle_worker(void)
{
    free_with_stopped_idle_worker(0);
    free_with_stopped_idle_worker(30);
}

int main(void)
{
    make_pipes();
    RUN(test_terminate_stopped_busy_worker);
    RUN(test_free_with_stopped_idle_worker);
    return 0;
}
