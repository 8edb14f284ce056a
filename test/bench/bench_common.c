/* cf-bench: workload sizes, tasks, timing, medians and the figure table.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct {
    const char *name;
    const char *unit;
    bool higher_is_better;
} workloads[BENCH_WORKLOAD_COUNT] = {
    [BENCH_EMPTY_THROUGHPUT] = { "empty_throughput", "tasks/s", true },
    [BENCH_ROUNDTRIP_LATENCY] = { "roundtrip_latency", "us", false },
    [BENCH_CPU_SPEEDUP] = { "cpu_speedup", "x", true },
    [BENCH_MAP_CHUNKED] = { "map_chunked", "items/s", true },
    [BENCH_SLEEP_CONCURRENCY] = { "sleep_concurrency", "ms", false },
    [BENCH_LOOP_ROUNDTRIP] = { "loop_roundtrip", "us", false },
    [BENCH_NESTED_FIB] = { "nested_fib", "items/s", true },
};

const char *bench_workload_name(bench_workload w)
{
    return workloads[w].name;
}
const char *bench_workload_unit(bench_workload w)
{
    return workloads[w].unit;
}
bool bench_workload_higher_is_better(bench_workload w)
{
    return workloads[w].higher_is_better;
}

bool bench_figure_higher_is_better(const char *name)
{
    for (int w = 0; w < BENCH_WORKLOAD_COUNT; w++)
        if (strcmp(name, workloads[w].name) == 0)
            return workloads[w].higher_is_better;
    /* Rates and speedups are better bigger; memory and times smaller. */
    return strcmp(name, "map_chunked_per_item") == 0 || strcmp(name, "nested_fib_speedup") == 0;
}

uint64_t *bench_out_array(size_t n)
{
    static uint64_t *out;
    static size_t cap;
    if (n > cap) {
        free(out);
        cap = 0;
        if (!(out = malloc(n * sizeof *out)))
            return NULL;
        cap = n;
    }
    memset(out, 0xff, n * sizeof *out); /* every page touched; no result left from a run */
    return out;
}

void bench_params_init(bench_params *p, bool quick, int repeat)
{
    *p = (bench_params){
        .workers = 2,
        .empty_tasks = quick ? 20000 : 200000,
        .roundtrips = quick ? 2000 : 20000,
        .cpu_calls = quick ? 10 : 100,
        .cpu_num = 300,
        .map_items = quick ? 100000 : 1000000,
        .map_chunksize = 1000,
        .sleep_tasks = 100,
        .sleep_ms = 10,
        .sleep_workers = 10,
        .fib_n = 25,
        .fib_cutoff = 12,
        .fib_rounds = quick ? 10 : 100,
        .repeat = repeat > 0 ? repeat : 5,
        .quick = quick,
    };
}

/* ------------------------------------------------------------------------ */

/* Every result is stored here too: a side effect, so that no compiler (even
 * with LTO) may drop or merge calls whose results look unused or equal. */
static volatile uint64_t cpu_sink;

uint64_t bench_cpu_loop(int num)
{
    uint64_t total = 1;
    uint64_t n = num > 0 ? (uint64_t)num : 0;
    for (uint64_t i = 1; i < n; i++)
        for (uint64_t j = 1; j < n; j++)
            for (uint64_t k = 1; k < n; k++)
                total *= i * j * k;
    cpu_sink = total;
    return total;
}

uint64_t bench_cpu_serial(const bench_params *p, uint64_t *expect)
{
    volatile int num = p->cpu_num; /* read each time: no call is hoisted */
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < p->cpu_calls; i++)
        *expect = bench_cpu_loop(num);
    return bench_now_ns() - t0;
}

uint64_t bench_square_sum(size_t n)
{
    uint64_t m = n;
    return m ? (m - 1) * m * (2 * m - 1) / 6 : 0;
}

uint64_t bench_fib(int n)
{
    if (n < 2)
        return n > 0 ? (uint64_t)n : 0;
    return bench_fib(n - 1) + bench_fib(n - 2);
}

uint64_t bench_fib_serial(const bench_params *p)
{
    volatile int n = p->fib_n; /* read each time: no call is hoisted */
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < p->fib_rounds; i++)
        cpu_sink = bench_fib(n);
    return bench_now_ns() - t0;
}

void bench_spin(uint64_t iters)
{
    volatile uint64_t sink = 0;
    for (uint64_t i = 0; i < iters; i++)
        sink = sink + i;
}

uint64_t bench_spin_calibrate(void)
{
    /* Best of a few runs of 2M iterations: the machine's undisturbed speed. */
    const uint64_t iters = 2000000;
    uint64_t best = UINT64_MAX;
    for (int r = 0; r < 5; r++) {
        uint64_t t0 = bench_now_ns();
        bench_spin(iters);
        uint64_t dt = bench_now_ns() - t0;
        if (dt < best)
            best = dt;
    }
    uint64_t per_us = best ? iters * 1000 / best : 1000;
    return per_us ? per_us : 1;
}

void bench_sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *values, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(values, n, sizeof *values, compare_doubles);
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

int bench_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* ------------------------------------------------------------------------ */

static bench_figure *figures;
static size_t figure_count, figure_cap;

static void print_value(double value, const char *unit)
{
    if (value >= 1e5 || value == floor(value))
        printf("%.0f %s\n", value, unit);
    else if (value >= 100)
        printf("%.1f %s\n", value, unit);
    else
        printf("%.3g %s\n", value, unit);
}

void bench_report(const char *system, const char *workload, double value, const char *unit)
{
    printf("%s %s ", system, workload);
    print_value(value, unit);
    fflush(stdout);
    if (figure_count == figure_cap) {
        size_t cap = figure_cap ? 2 * figure_cap : 64;
        bench_figure *grown = realloc(figures, cap * sizeof *grown);
        if (!grown)
            return; /* the line is printed; the table just misses it */
        figures = grown;
        figure_cap = cap;
    }
    bench_figure *f = &figures[figure_count++];
    snprintf(f->system, sizeof f->system, "%s", system);
    snprintf(f->workload, sizeof f->workload, "%s", workload);
    snprintf(f->unit, sizeof f->unit, "%s", unit);
    f->value = value;
}

void bench_report_runs(const char *system, const char *workload, double *values, size_t n,
                       const char *unit)
{
    if (n == 0)
        return;
    double median = bench_median(values, n);
    double spread = median != 0 ? (values[n - 1] - values[0]) / fabs(median) : 0;
    if (n > 1 && spread > 0.20)
        bench_note("noisy: %s %s spread %.0f%% over %zu runs (min %.4g, max %.4g)", system,
                   workload, spread * 100, n, values[0], values[n - 1]);
    bench_report(system, workload, median, unit);
}

bool bench_repeat(const char *system, bench_workload w, const bench_params *p, bench_once_fn once,
                  void *ctx)
{
    double *values = malloc((size_t)p->repeat * sizeof *values);
    if (!values)
        return false;
    int r = 0;
    for (; r < p->repeat; r++) {
        values[r] = once(w, p, ctx);
        if (isnan(values[r])) {
            bench_note("%s: %s failed", system, bench_workload_name(w));
            break;
        }
    }
    bool ok = r == p->repeat;
    if (ok)
        bench_report_runs(system, bench_workload_name(w), values, (size_t)r,
                          bench_workload_unit(w));
    free(values);
    return ok;
}

void bench_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}

size_t bench_figure_count(void)
{
    return figure_count;
}
const bench_figure *bench_figure_at(size_t i)
{
    return i < figure_count ? &figures[i] : NULL;
}

const bench_figure *bench_figure_find(const char *system, const char *workload)
{
    for (size_t i = 0; i < figure_count; i++)
        if (strcmp(figures[i].system, system) == 0 && strcmp(figures[i].workload, workload) == 0)
            return &figures[i];
    return NULL;
}
