/* cf-bench --sweep: how the cost grows with the work. Task size (empty, 1, 10,
 * 100 us of spinning) x workers (1, 2, 4), on both pools. For each cell:
 *   serial  T_s: the same tasks called in a plain loop;
 *   pool    T_p: submit them all, then collect every result;
 *   (each the fastest of --repeat runs: interference only adds time)
 *   p = min(workers, CPUs), the best parallelism the machine allows;
 *   overhead   = (T_p - T_s / p) / n   wall ns per task beyond the ideal;
 *   efficiency = (T_s / p) / T_p       1.0 is perfect scaling.
 * The spin is counted in loop iterations (calibrated once), not in clock
 * time, so a preempted task still does all its work.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <cfutures.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SIZES 4
#define WORKER_COUNTS 3
static const int size_us[SIZES] = { 0, 1, 10, 100 };
static const char *const size_name[SIZES] = { "empty", "1us", "10us", "100us" };
static const int worker_counts[WORKER_COUNTS] = { 1, 2, 4 };

static void *task_spin(void *arg)
{
    bench_spin((uint64_t)(uintptr_t)arg);
    return arg;
}

static size_t tasks_for(int size, bool quick)
{
    static const size_t full[SIZES] = { 50000, 50000, 10000, 1000 };
    return quick ? full[size] / 5 : full[size];
}

static double serial_seconds(uint64_t iters, size_t n)
{
    void *(*volatile fn)(void *) = task_spin; /* called like the pool calls it */
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++)
        fn((void *)(uintptr_t)iters);
    return (double)(bench_now_ns() - t0) / 1e9;
}

/* Seconds to run n spin tasks on ex, or NAN. */
static double pool_seconds(cf_executor *ex, uint64_t iters, size_t n, cf_future **fs)
{
    uint64_t t0 = bench_now_ns();
    size_t submitted = 0;
    for (; submitted < n; submitted++)
        if (!(fs[submitted] = cf_submit(ex, task_spin, (void *)(uintptr_t)iters)))
            break;
    bool ok = submitted == n;
    for (size_t i = 0; i < submitted; i++) {
        if (cf_future_result(fs[i], CF_FOREVER, NULL) != 0)
            ok = false;
        cf_future_unref(fs[i]);
    }
    double dt = (double)(bench_now_ns() - t0) / 1e9;
    return ok ? dt : NAN;
}

typedef struct cell {
    double overhead_ns;
    double efficiency;
} cell;

static double min_of(const double *v, size_t n)
{
    double m = v[0];
    for (size_t i = 1; i < n; i++)
        if (v[i] < m)
            m = v[i];
    return m;
}

static bool sweep_pool(bool process, const bench_params *p, uint64_t per_us,
                       cell cells[WORKER_COUNTS][SIZES])
{
    const char *system = bench_cf_system(process);
    int cpus = bench_cpu_count();
    size_t repeat = (size_t)p->repeat;
    cf_future **fs = malloc(tasks_for(0, p->quick) * sizeof *fs);
    double *serial = malloc(repeat * sizeof *serial);
    double *pooled = malloc(repeat * sizeof *pooled);
    bool ok = fs && serial && pooled;
    for (int wi = 0; ok && wi < WORKER_COUNTS; wi++) {
        int workers = worker_counts[wi];
        double par = workers < cpus ? workers : cpus;
        for (int s = 0; ok && s < SIZES; s++) {
            size_t n = tasks_for(s, p->quick);
            uint64_t iters = (uint64_t)size_us[s] * per_us;
            for (size_t r = 0; ok && r < repeat; r++) {
                int code;
                cf_executor *ex = bench_cf_pool(process, workers, &code);
                if (!ex) {
                    if (code == CF_ENOTSUP)
                        bench_note("%s: not available yet (CF_ENOTSUP): sweep skipped", system);
                    else
                        bench_note("%s: sweep: creating the pool failed: %s", system,
                                   cf_err_name(code));
                    ok = false;
                    break;
                }
                /* The serial loop right before the pool, so both see the same
                 * machine (others may be using it). */
                serial[r] = serial_seconds(iters, n);
                pooled[r] = pool_seconds(ex, iters, n, fs);
                cf_executor_free(ex);
                if (isnan(pooled[r])) {
                    bench_note("%s: sweep: a task failed", system);
                    ok = false;
                }
            }
            if (!ok)
                break;
            /* Interference only ever adds time, and a ratio of two noisy
             * medians can even exceed 1: the sweep takes the fastest run of
             * each, the machine's undisturbed figure. */
            double t_serial = min_of(serial, repeat), t_pool = min_of(pooled, repeat);
            /* On a VM a virtual CPU may run at half speed for a while (a
             * busy hyperthread sibling on the host): say so when the serial
             * loop was much slower than the calibration promised. */
            double expected = (double)n * size_us[s] * 1e-6;
            if (s > 0 && t_serial > 1.25 * expected)
                bench_note("noisy: %s sweep_%s_w%d: the serial loop ran at %.0f%% of the "
                           "calibrated speed; efficiency is unreliable",
                           system, size_name[s], workers, 100 * expected / t_serial);
            double spread = (bench_median(pooled, repeat) - t_pool) / t_pool;
            if (spread > 0.20)
                bench_note("noisy: %s sweep_%s_w%d: median pool run %.0f%% above the fastest",
                           system, size_name[s], workers, spread * 100);
            cell *c = &cells[wi][s];
            c->overhead_ns = (t_pool - t_serial / par) / (double)n * 1e9;
            c->efficiency = s == 0 ? NAN : (t_serial / par) / t_pool;
            char name[48];
            snprintf(name, sizeof name, "sweep_%s_w%d_overhead", size_name[s], workers);
            bench_report(system, name, c->overhead_ns, "ns/task");
            if (s > 0) {
                snprintf(name, sizeof name, "sweep_%s_w%d_efficiency", size_name[s], workers);
                bench_report(system, name, c->efficiency, "ratio");
            }
        }
    }
    free(fs);
    free(serial);
    free(pooled);
    return ok;
}

static void print_table(const char *system, cell cells[WORKER_COUNTS][SIZES])
{
    printf("# %s sweep: overhead ns/task (efficiency vs the serial loop)\n", system);
    printf("#   %-8s", "workers");
    for (int s = 0; s < SIZES; s++)
        printf(" %18s", size_name[s]);
    printf("\n");
    for (int wi = 0; wi < WORKER_COUNTS; wi++) {
        printf("#   %-8d", worker_counts[wi]);
        for (int s = 0; s < SIZES; s++) {
            char buf[40];
            if (s == 0)
                snprintf(buf, sizeof buf, "%.0f", cells[wi][s].overhead_ns);
            else
                snprintf(buf, sizeof buf, "%.0f (%.2f)", cells[wi][s].overhead_ns,
                         cells[wi][s].efficiency);
            printf(" %18s", buf);
        }
        printf("\n");
    }
    fflush(stdout);
}

void bench_sweep(const bench_params *p, bool want_thread, bool want_process)
{
    uint64_t per_us = bench_spin_calibrate();
    bench_note("sweep: %llu spin iterations per us, %d CPUs, fastest of %d runs",
               (unsigned long long)per_us, bench_cpu_count(), p->repeat);
    for (int s = 0; s < SIZES; s++) {
        char name[48];
        snprintf(name, sizeof name, "sweep_%s_task", size_name[s]);
        size_t n = tasks_for(s, p->quick);
        bench_report("serial", name,
                     serial_seconds((uint64_t)size_us[s] * per_us, n) / (double)n * 1e9, "ns/task");
    }
    cell cells[WORKER_COUNTS][SIZES];
    for (int k = 0; k < 2; k++) {
        bool process = k == 1;
        if ((process && !want_process) || (!process && !want_thread))
            continue;
        if (sweep_pool(process, p, per_us, cells))
            print_table(bench_cf_system(process), cells);
    }
}
