/* cf-bench: the five workloads on cfutures' thread pool and process pool.
 * Pool creation and start-up of the workers are not timed: a warm-up makes
 * every worker exist before the clock starts (as for every other system).
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <cfutures.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Tasks take and return values only, so they run on both pools. */
static void *task_identity(void *arg) { return arg; }
static void *task_cpu(void *arg) { return (void *)(uintptr_t)bench_cpu_loop((int)(intptr_t)arg); }
static void *task_sleep(void *arg)
{
    bench_sleep_ms((int)(intptr_t)arg);
    return arg;
}
static void *task_square(void *arg)
{
    intptr_t x = (intptr_t)arg;
    return (void *)(x * x);
}

const char *bench_cf_system(bool process) { return process ? "cfutures-process" : "cfutures-thread"; }

static void fail_note(bool process, const char *what, int code)
{
    bench_note("%s: %s failed: %s (%s)", bench_cf_system(process), what, cf_err_name(code),
               cf_strerror(code));
}

/* Every worker busy at once for a moment, so that all of them are started. */
static int warm_up(cf_executor *ex, int workers)
{
    cf_future *fs[64];
    int n = workers < 64 ? workers : 64;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        fs[i] = cf_submit(ex, task_sleep, (void *)(intptr_t)2);
        if (!fs[i]) {
            rc = cf_last_error();
            n = i;
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        int r = cf_future_result(fs[i], CF_FOREVER, NULL);
        if (r && !rc)
            rc = r;
        cf_future_unref(fs[i]);
    }
    return rc;
}

cf_executor *bench_cf_pool(bool process, int workers, int *code)
{
    cf_executor *ex;
    if (process)
        ex = cf_process_pool_new(&(cf_process_pool_opts){.max_workers = workers});
    else
        ex = cf_thread_pool_new(
            &(cf_thread_pool_opts){.max_workers = workers, .thread_name_prefix = "cf-bench"});
    if (!ex) {
        *code = cf_last_error();
        return NULL;
    }
    int rc = warm_up(ex, workers);
    if (rc) {
        *code = rc;
        cf_executor_free(ex);
        return NULL;
    }
    *code = 0;
    return ex;
}

/* ------------------------------------------------------------------------ */
/* One run of each workload: the figure, or NAN after a note on failure.     */
/* ------------------------------------------------------------------------ */

static double run_empty(bool process, cf_executor *ex, const bench_params *p)
{
    size_t n = p->empty_tasks;
    cf_future **fs = malloc(n * sizeof *fs);
    if (!fs)
        return NAN;
    double value = NAN;
    size_t submitted = 0;
    uint64_t t0 = bench_now_ns();
    for (; submitted < n; submitted++) {
        fs[submitted] = cf_submit(ex, task_identity, (void *)(intptr_t)submitted);
        if (!fs[submitted]) {
            fail_note(process, "cf_submit", cf_last_error());
            break;
        }
    }
    bool ok = submitted == n;
    for (size_t i = 0; i < submitted; i++) {
        void *v = NULL;
        int rc = cf_future_result(fs[i], CF_FOREVER, &v);
        if (ok && (rc != 0 || (intptr_t)v != (intptr_t)i)) {
            fail_note(process, "empty_throughput result", rc ? rc : CF_EINVALIDSTATE);
            ok = false;
        }
        cf_future_unref(fs[i]);
    }
    uint64_t dt = bench_now_ns() - t0;
    if (ok)
        value = (double)n / ((double)dt / 1e9);
    free(fs);
    return value;
}

static double run_roundtrip(bool process, cf_executor *ex, const bench_params *p)
{
    size_t n = p->roundtrips;
    double *us = malloc(n * sizeof *us);
    if (!us)
        return NAN;
    double value = NAN;
    size_t i = 0;
    for (; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        cf_future *f = cf_submit(ex, task_identity, (void *)(intptr_t)i);
        void *v = NULL;
        int rc = f ? cf_future_result(f, CF_FOREVER, &v) : cf_last_error();
        uint64_t dt = bench_now_ns() - t0;
        cf_future_unref(f);
        if (rc != 0 || (intptr_t)v != (intptr_t)i) {
            fail_note(process, "roundtrip_latency", rc ? rc : CF_EINVALIDSTATE);
            break;
        }
        us[i] = (double)dt / 1e3;
    }
    if (i == n)
        value = bench_median(us, n);
    free(us);
    return value;
}

static double run_cpu(bool process, cf_executor *ex, const bench_params *p)
{
    size_t n = p->cpu_calls;
    void **args = malloc(n * sizeof *args);
    if (!args)
        return NAN;
    for (size_t i = 0; i < n; i++)
        args[i] = (void *)(intptr_t)p->cpu_num;

    uint64_t expect = 0;
    uint64_t serial = bench_cpu_serial(p, &expect);

    double value = NAN;
    uint64_t t0 = bench_now_ns();
    cf_map_iter *it = cf_map(ex, task_cpu, args, n, &(cf_map_opts){.chunksize = 1});
    size_t got = 0;
    int rc = it ? 0 : cf_last_error();
    void *v;
    while (it && (rc = cf_map_next(it, &v)) == 1) {
        if ((uint64_t)(uintptr_t)v != expect)
            break;
        got++;
    }
    uint64_t pooled = bench_now_ns() - t0;
    cf_map_free(it);
    if (rc == 0 && got == n)
        value = (double)serial / (double)pooled;
    else
        fail_note(process, "cpu_speedup map", rc < 0 ? rc : CF_EINVALIDSTATE);
    free(args);
    return value;
}

static double run_map(bool process, cf_executor *ex, const bench_params *p)
{
    size_t n = p->map_items;
    void **args = malloc(n * sizeof *args);
    if (!args)
        return NAN;
    for (size_t i = 0; i < n; i++)
        args[i] = (void *)(intptr_t)i;

    double value = NAN;
    uint64_t sum = 0;
    uint64_t t0 = bench_now_ns();
    cf_map_iter *it =
        cf_map(ex, task_square, args, n, &(cf_map_opts){.chunksize = p->map_chunksize});
    int rc = it ? 0 : cf_last_error();
    void *v;
    while (it && (rc = cf_map_next(it, &v)) == 1)
        sum += (uint64_t)(uintptr_t)v;
    uint64_t dt = bench_now_ns() - t0;
    cf_map_free(it);
    uint64_t m = n;
    uint64_t expect = m ? (m - 1) * m * (2 * m - 1) / 6 : 0; /* sum of i^2, i < n */
    if (rc == 0 && sum == expect)
        value = (double)n / ((double)dt / 1e9);
    else
        fail_note(process, "map_chunked", rc < 0 ? rc : CF_EINVALIDSTATE);
    free(args);
    return value;
}

static double run_sleep(bool process, cf_executor *ex, const bench_params *p)
{
    size_t n = p->sleep_tasks;
    cf_future **fs = malloc(n * sizeof *fs);
    if (!fs)
        return NAN;
    size_t submitted = 0;
    int rc = 0;
    uint64_t t0 = bench_now_ns();
    for (; submitted < n; submitted++) {
        fs[submitted] = cf_submit(ex, task_sleep, (void *)(intptr_t)p->sleep_ms);
        if (!fs[submitted]) {
            rc = cf_last_error();
            break;
        }
    }
    for (size_t i = 0; i < submitted; i++) {
        int r = cf_future_result(fs[i], CF_FOREVER, NULL);
        if (r && !rc)
            rc = r;
        cf_future_unref(fs[i]);
    }
    uint64_t dt = bench_now_ns() - t0;
    free(fs);
    if (rc) {
        fail_note(process, "sleep_concurrency", rc);
        return NAN;
    }
    return (double)dt / 1e6;
}

/* One run of a workload on any cfutures executor (bench_mpi.c's pool). */
double bench_cf_run_once(cf_executor *ex, bench_workload w, const bench_params *p)
{
    switch (w) {
    case BENCH_EMPTY_THROUGHPUT: return run_empty(true, ex, p);
    case BENCH_ROUNDTRIP_LATENCY: return run_roundtrip(true, ex, p);
    case BENCH_CPU_SPEEDUP: return run_cpu(true, ex, p);
    case BENCH_MAP_CHUNKED: return run_map(true, ex, p);
    case BENCH_SLEEP_CONCURRENCY: return run_sleep(true, ex, p);
    default: return NAN;
    }
}

int bench_cf_warm_up(cf_executor *ex, int workers)
{
    return warm_up(ex, workers);
}

/* ------------------------------------------------------------------------ */

/* nested_fib needs tasks that submit tasks and wait for them without holding
 * a worker each (nested parallelism). When cfutures has it: add
 * BENCH_BIT(BENCH_NESTED_FIB) here and a run_nested_fib to the switch below
 * (bench_tbb.cpp shows the workload; the table and README need nothing). */
unsigned bench_cfutures_workloads(bool process)
{
    (void)process;
    return BENCH_CLASSIC_FIVE;
}

bool bench_cfutures_run(bool process, bench_workload w, const bench_params *p)
{
    static bool unavailable[2];
    if (unavailable[process])
        return false;
    int workers = w == BENCH_SLEEP_CONCURRENCY ? p->sleep_workers : p->workers;
    double *values = malloc((size_t)p->repeat * sizeof *values);
    if (!values)
        return false;
    size_t got = 0;
    for (int r = 0; r < p->repeat; r++) {
        int code;
        cf_executor *ex = bench_cf_pool(process, workers, &code);
        if (!ex) {
            if (code == CF_ENOTSUP) {
                bench_note("%s: not available yet (CF_ENOTSUP): skipped", bench_cf_system(process));
                unavailable[process] = true;
            } else {
                fail_note(process, "creating the pool", code);
            }
            break;
        }
        double v = NAN;
        switch (w) {
        case BENCH_EMPTY_THROUGHPUT: v = run_empty(process, ex, p); break;
        case BENCH_ROUNDTRIP_LATENCY: v = run_roundtrip(process, ex, p); break;
        case BENCH_CPU_SPEEDUP: v = run_cpu(process, ex, p); break;
        case BENCH_MAP_CHUNKED: v = run_map(process, ex, p); break;
        case BENCH_SLEEP_CONCURRENCY: v = run_sleep(process, ex, p); break;
        case BENCH_LOOP_ROUNDTRIP: /* bench_loop.c */
        case BENCH_NESTED_FIB: /* not in bench_cfutures_workloads() yet */
        case BENCH_WORKLOAD_COUNT: break;
        }
        cf_executor_free(ex);
        if (isnan(v))
            break;
        values[got++] = v;
    }
    bool ok = got == (size_t)p->repeat;
    if (ok)
        bench_report_runs(bench_cf_system(process), bench_workload_name(w), values, got,
                          bench_workload_unit(w));
    free(values);
    return ok;
}
