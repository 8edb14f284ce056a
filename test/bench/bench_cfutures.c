/* cf-bench: the workloads on cfutures' thread pool and process pool.
 * Pool creation and start-up of the workers are not timed: a warm-up makes
 * every worker exist before the clock starts (as for every other system).
 *
 * map_chunked uses the fastest honest entry point: cf_parallel_for (each
 * chunk squares its items into its slice of an out array; on a process pool
 * the slice comes back over the pipe), or cf_map + cf_map_next_batch on an
 * executor without a parallel loop. cf_map's figure is map_chunked_per_item.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <cfutures.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Tasks take and return values only, so they run on both pools. */
static void *task_identity(void *arg)
{
    return arg;
}
static void *task_cpu(void *arg)
{
    return (void *)(uintptr_t)bench_cpu_loop((int)(intptr_t)arg);
}
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

const char *bench_cf_system(bool process)
{
    return process ? "cfutures-process" : "cfutures-thread";
}

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
        ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = workers });
    else
        ex = cf_thread_pool_new(
            &(cf_thread_pool_opts){ .max_workers = workers, .thread_name_prefix = "cf-bench" });
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
    cf_map_iter *it = cf_map(ex, task_cpu, args, n, &(cf_map_opts){ .chunksize = 1 });
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

/* The sum of i^2 for i < n, which every map_chunked run must give. */
static uint64_t sum_of_squares(size_t n)
{
    uint64_t m = n;
    return m ? (m - 1) * m * (2 * m - 1) / 6 : 0;
}

/* cf_map over the args, the results taken a task's worth at a time. */
static double run_map_batches(bool process, cf_executor *ex, const bench_params *p,
                              void *const *args)
{
    size_t n = p->map_items;
    uint64_t sum = 0;
    uint64_t t0 = bench_now_ns();
    cf_map_iter *it =
        cf_map(ex, task_square, args, n, &(cf_map_opts){ .chunksize = p->map_chunksize });
    int rc = it ? 0 : cf_last_error();
    void *const *values;
    size_t count;
    while (it && (rc = cf_map_next_batch(it, &values, &count)) == 1)
        for (size_t i = 0; i < count; i++)
            sum += (uint64_t)(uintptr_t)values[i];
    uint64_t dt = bench_now_ns() - t0;
    cf_map_free(it);
    if (rc == 0 && sum == sum_of_squares(n))
        return (double)n / ((double)dt / 1e9);
    fail_note(process, "map_chunked (cf_map)", rc < 0 ? rc : CF_EINVALIDSTATE);
    return NAN;
}

/* The integers are the item numbers, as in GLib's and libuv's loops. */
static void range_square(void *ctx, const cf_range *r)
{
    (void)ctx;
    uint64_t *out = r->out;
    for (size_t i = 0, n = r->end - r->begin; i < n; i++) {
        uint64_t x = r->begin + i;
        out[i] = x * x;
    }
}

/* cf_parallel_for into the out array every system fills (bench_out_array),
 * then the same sum. NAN with *unsupported set when the executor has no
 * parallel loop. */
static double run_loop(bool process, cf_executor *ex, const bench_params *p, bool *unsupported)
{
    size_t n = p->map_items;
    uint64_t *out = bench_out_array(n);
    if (!out)
        return NAN;
    uint64_t t0 = bench_now_ns();
    cf_parallel_opts opts = { .grain = p->map_chunksize, .out = out, .out_size = sizeof *out };
    int rc = cf_parallel_for(ex, n, range_square, NULL, &opts);
    uint64_t sum = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        sum += out[i];
    uint64_t dt = bench_now_ns() - t0;
    *unsupported = rc == CF_ENOTSUP;
    if (rc == 0 && sum == sum_of_squares(n))
        return (double)n / ((double)dt / 1e9);
    if (!*unsupported)
        fail_note(process, "map_chunked (cf_parallel_for)", rc < 0 ? rc : CF_EINVALIDSTATE);
    return NAN;
}

/* cf_map's input, made once: the data a program maps over exists before it
 * maps (and a fresh 8 MB array per run would only measure page faults). */
static void *const *map_args(const bench_params *p)
{
    static void **args;
    static size_t n;
    if (n != p->map_items) {
        free(args);
        n = 0;
        if (!(args = malloc(p->map_items * sizeof *args)))
            return NULL;
        n = p->map_items;
        for (size_t i = 0; i < n; i++)
            args[i] = (void *)(intptr_t)i;
    }
    return args;
}

/* map_chunked through the fastest entry point. When that is not cf_map
 * (thread pool) and per_item is not NULL, *per_item gets cf_map's figure on a
 * pool of its own, made and warmed up as ex was (else NAN). */
static double run_map(bool process, cf_executor *ex, const bench_params *p, int workers,
                      double *per_item)
{
    void *const *args = map_args(p);
    if (!args)
        return NAN;
    bool unsupported = false;
    double value = run_loop(process, ex, p, &unsupported);
    if (per_item)
        *per_item = NAN;
    if (unsupported) {
        value = run_map_batches(process, ex, p, args);
    } else if (!isnan(value) && per_item) {
        /* Not on ex: after a loop one of its workers keeps polling for the
         * next (up to 1 ms), which would start cf_map warmer than any other
         * system's first run; and waiting for it to park leaves the CPUs
         * idle, which costs the next run about a millisecond on these VMs. */
        int code;
        cf_executor *fresh = bench_cf_pool(process, workers, &code);
        if (!fresh) {
            fail_note(process, "creating the pool for cf_map", code);
            return value;
        }
        *per_item = run_map_batches(process, fresh, p, args);
        cf_executor_free(fresh);
    }
    return value;
}

/* ------------------------------------------------------------------------ */
/* nested_fib: fib(n), every call above the cutoff submitting its two halves */
/* to the same pool and waiting for them (thread pools only).                */
/* ------------------------------------------------------------------------ */

static cf_executor *fib_pool;
static int fib_cutoff;

static uint64_t fib_serial(int n)
{
    return n < 2 ? (uint64_t)n : fib_serial(n - 1) + fib_serial(n - 2);
}

static void *task_fib(void *arg)
{
    int n = (int)(intptr_t)arg;
    if (n < fib_cutoff)
        return (void *)(uintptr_t)fib_serial(n);
    cf_future *a = cf_submit(fib_pool, task_fib, (void *)(intptr_t)(n - 1));
    cf_future *b = a ? cf_submit(fib_pool, task_fib, (void *)(intptr_t)(n - 2)) : NULL;
    void *x = NULL, *y = NULL;
    int rc = b ? cf_future_result(a, CF_FOREVER, &x) : cf_last_error();
    if (rc == 0)
        rc = cf_future_result(b, CF_FOREVER, &y);
    cf_future_unref(a);
    cf_future_unref(b);
    if (rc != 0)
        return cf_raise(rc, "fib(%d): %s", n, cf_err_name(rc));
    return (void *)((uintptr_t)x + (uintptr_t)y);
}

/* Items: the calls of fib in the whole recursion, 2 fib(n + 1) - 1.
 * *speedup: the serial recursion's time (measured just before) over the
 * pool's. */
static double run_fib(bool process, cf_executor *ex, const bench_params *p, double *speedup)
{
    *speedup = NAN;
    volatile int n = p->fib_n; /* read at run time: no constant folding */
    uint64_t expect = fib_serial(n);
    uint64_t t0 = bench_now_ns();
    for (size_t r = 0; r < p->fib_rounds; r++)
        expect = fib_serial(n) == expect ? expect : 0;
    uint64_t serial = bench_now_ns() - t0;
    fib_pool = ex;
    fib_cutoff = p->fib_cutoff;
    t0 = bench_now_ns();
    int rc = 0;
    for (size_t r = 0; r < p->fib_rounds && rc == 0; r++) {
        cf_future *f = cf_submit(ex, task_fib, (void *)(intptr_t)n);
        void *v = NULL;
        rc = f ? cf_future_result(f, CF_FOREVER, &v) : cf_last_error();
        if (rc == 0 && (uint64_t)(uintptr_t)v != expect)
            rc = CF_EINVALIDSTATE;
        cf_future_unref(f);
    }
    uint64_t dt = bench_now_ns() - t0;
    if (rc != 0) {
        fail_note(process, "nested_fib", rc);
        return NAN;
    }
    *speedup = (double)serial / (double)dt;
    double calls = (double)p->fib_rounds * (2.0 * (double)fib_serial(n + 1) - 1);
    return calls / ((double)dt / 1e9);
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
    case BENCH_EMPTY_THROUGHPUT:
        return run_empty(true, ex, p);
    case BENCH_ROUNDTRIP_LATENCY:
        return run_roundtrip(true, ex, p);
    case BENCH_CPU_SPEEDUP:
        return run_cpu(true, ex, p);
    case BENCH_MAP_CHUNKED:
        return run_map(true, ex, p, 0, NULL); /* cf_map's figure: not reported here */
    case BENCH_SLEEP_CONCURRENCY:
        return run_sleep(true, ex, p);
    default:
        return NAN;
    }
}

int bench_cf_warm_up(cf_executor *ex, int workers)
{
    return warm_up(ex, workers);
}

/* ------------------------------------------------------------------------ */

/* The workloads cfutures' pools run: nested_fib needs tasks that submit
 * tasks and wait for them without holding a worker each (nested
 * parallelism), which only the thread pool has. */
unsigned bench_cfutures_workloads(bool process)
{
    return BENCH_CLASSIC_FIVE | (process ? 0 : BENCH_BIT(BENCH_NESTED_FIB));
}

/* The second figure some workloads give, or NULL. */
static const char *extra_figure(bench_workload w, const char **unit)
{
    if (w == BENCH_MAP_CHUNKED) {
        *unit = "items/s";
        return "map_chunked_per_item";
    }
    if (w == BENCH_NESTED_FIB) {
        *unit = "x";
        return "nested_fib_speedup";
    }
    return NULL;
}

static void note_entry_points(bool process, bench_workload w)
{
    if (w == BENCH_MAP_CHUNKED)
        bench_note("%s map_chunked: cf_parallel_for (grain 1000, into an out array%s); "
                   "map_chunked_per_item: cf_map (chunksize 1000) + cf_map_next_batch",
                   bench_cf_system(process),
                   process ? ", output slices back through shared memory" : "");
    else if (w == BENCH_NESTED_FIB)
        bench_note("%s nested_fib: fib(25), each call >= 12 submits both halves and waits "
                   "(cf_future_result); items = calls of fib",
                   bench_cf_system(process));
}

bool bench_cfutures_run(bool process, bench_workload w, const bench_params *p)
{
    static bool unavailable[2];
    if (unavailable[process])
        return false;
    if (w == BENCH_NESTED_FIB && process) {
        bench_note("%s nested_fib: skipped (a process pool's tasks cannot submit to it)",
                   bench_cf_system(process));
        return true;
    }
    int workers = w == BENCH_SLEEP_CONCURRENCY ? p->sleep_workers : p->workers;
    double *values = malloc(2 * (size_t)p->repeat * sizeof *values);
    if (!values)
        return false;
    double *extra = values + p->repeat;
    const char *extra_unit = NULL;
    const char *extra_name = extra_figure(w, &extra_unit);
    note_entry_points(process, w);
    size_t got = 0, got_extra = 0;
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
        double v = NAN, second = NAN;
        switch (w) {
        case BENCH_EMPTY_THROUGHPUT:
            v = run_empty(process, ex, p);
            break;
        case BENCH_ROUNDTRIP_LATENCY:
            v = run_roundtrip(process, ex, p);
            break;
        case BENCH_CPU_SPEEDUP:
            v = run_cpu(process, ex, p);
            break;
        case BENCH_MAP_CHUNKED:
            v = run_map(process, ex, p, workers, &second);
            break;
        case BENCH_SLEEP_CONCURRENCY:
            v = run_sleep(process, ex, p);
            break;
        case BENCH_LOOP_ROUNDTRIP: /* bench_loop.c */
        case BENCH_NESTED_FIB:
            v = run_fib(process, ex, p, &second);
            break;
        case BENCH_WORKLOAD_COUNT:
            break;
        }
        cf_executor_free(ex);
        if (isnan(v))
            break;
        values[got++] = v;
        if (!isnan(second))
            extra[got_extra++] = second;
    }
    bool ok = got == (size_t)p->repeat;
    if (ok)
        bench_report_runs(bench_cf_system(process), bench_workload_name(w), values, got,
                          bench_workload_unit(w));
    if (ok && extra_name && got_extra == got)
        bench_report_runs(bench_cf_system(process), extra_name, extra, got_extra, extra_unit);
    free(values);
    return ok;
}
