/* cf-bench --startup: what starting a process pool's worker costs, per
 * start method (cf_start_method). Each run makes a pool of one worker,
 * submits one task and takes its result, then frees the pool: the figure is
 * the time from cf_process_pool_new to the result (workers start on demand,
 * so this is the first task's wait), median of the runs, in microseconds.
 * The task lives in a shared library (bench_start_task.c), so that every
 * method can run it, the helper's included. exec and fork cost more for a
 * larger program: exec loads every library the program links (cf-bench links
 * GLib, TBB, OpenMP...), fork copies its page tables; the helper is the same
 * small program whatever the caller.
 * SPDX-License-Identifier: MIT */
#include "bench.h"
#include "bench_start_task.h"

#include <cfutures.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

static double first_result_us(cf_start_method method)
{
    uint64_t t0 = bench_now_ns();
    cf_executor *ex =
        cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1, .start_method = method });
    if (!ex)
        return NAN;
    cf_future *f = cf_submit(ex, bench_start_echo, (void *)(intptr_t)7);
    void *v = NULL;
    int rc = f ? cf_future_result(f, 30.0, &v) : cf_last_error();
    uint64_t t1 = bench_now_ns();
    cf_future_unref(f);
    cf_executor_free(ex);
    return rc == 0 && (intptr_t)v == 7 ? (double)(t1 - t0) / 1e3 : NAN;
}

void bench_startup(const bench_params *p)
{
    static const struct {
        cf_start_method method;
        const char *figure;
    } methods[] = {
        { CF_START_EXEC, "worker_start_exec" },
        { CF_START_HELPER, "worker_start_helper" },
        { CF_START_FORK, "worker_start_fork" },
    };
    size_t runs = p->quick ? 5 : 21;
    double values[21];
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        size_t n = 0;
        for (size_t r = 0; r < runs; r++) {
            double us = first_result_us(methods[m].method);
            if (isnan(us)) {
                bench_note("cfutures-process %s: failed: %s (%s)", methods[m].figure,
                           cf_err_name(cf_last_error()), cf_last_error_message());
                break;
            }
            values[n++] = us;
        }
        bench_report_runs("cfutures-process", methods[m].figure, values, n, "us");
    }
    bench_note("cfutures-process worker_start_*: cf_process_pool_new to the first task's result "
               "on a new pool of one worker (then freed), median of %zu runs; exec and fork "
               "grow with the program (cf-bench links every peer's library)",
               runs);
}
