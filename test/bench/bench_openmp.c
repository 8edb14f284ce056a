/* cf-bench: map_chunked with OpenMP, the way its users write it: a
 * `parallel for` with schedule(dynamic, 1000) and 2 threads (the thread that
 * meets the pragma is one of the team). Built only when meson finds OpenMP
 * (gcc's libgomp or clang's libomp, -fopenmp).
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

#define SYSTEM "openmp-thread"

static double run_map(const bench_params *p)
{
    const size_t n = p->map_items, chunk = p->map_chunksize;
    const int threads = p->workers;
    uint64_t *out = bench_out_array(n);
    if (!out)
        return NAN;
    uint64_t t0 = bench_now_ns();
#pragma omp parallel for schedule(dynamic, chunk) num_threads(threads)
    for (size_t i = 0; i < n; i++)
        out[i] = (uint64_t)i * i;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += out[i];
    uint64_t dt = bench_now_ns() - t0;
    return sum == bench_square_sum(n) ? (double)n / ((double)dt / 1e9) : NAN;
}

static double run_once(bench_workload w, const bench_params *p, void *ctx)
{
    (void)ctx;
    /* The team's threads are created at the first parallel region and kept:
     * one region of the same size first, every thread busy for a moment. */
    const int threads = p->workers;
#pragma omp parallel num_threads(threads)
    bench_sleep_ms(2);
    return w == BENCH_MAP_CHUNKED ? run_map(p) : NAN;
}

bool bench_openmp_run(bench_workload w, const bench_params *p)
{
    return bench_repeat(SYSTEM, w, p, run_once, NULL);
}
