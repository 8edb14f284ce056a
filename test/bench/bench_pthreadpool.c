/* cf-bench: map_chunked on pthreadpool, the way its users write it: one
 * pthreadpool_parallelize_1d_tile_1d call over the items, tile 1000, on a
 * pool of 2 threads (pthreadpool counts the calling thread as one of them: it
 * works on the tiles too, and the call returns when all are done).
 * Built only when meson finds libpthreadpool.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <math.h>
#include <pthreadpool.h>
#include <stdint.h>
#include <stdlib.h>

#define SYSTEM "pthreadpool-thread"

static void square_tile(void *ctx, size_t start, size_t count)
{
    uint64_t *out = ctx;
    for (size_t i = start; i < start + count; i++)
        out[i] = (uint64_t)i * i;
}

static void sleep_item(void *ctx, size_t i)
{
    (void)ctx;
    (void)i;
    bench_sleep_ms(2);
}

static double run_map(pthreadpool_t pool, const bench_params *p)
{
    size_t n = p->map_items;
    uint64_t *out = bench_out_array(n);
    if (!out)
        return NAN;
    uint64_t t0 = bench_now_ns();
    pthreadpool_parallelize_1d_tile_1d(pool, square_tile, out, n, p->map_chunksize, 0);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += out[i];
    uint64_t dt = bench_now_ns() - t0;
    return sum == bench_square_sum(n) ? (double)n / ((double)dt / 1e9) : NAN;
}

static double run_once(bench_workload w, const bench_params *p, void *ctx)
{
    (void)ctx;
    pthreadpool_t pool = pthreadpool_create((size_t)p->workers);
    if (!pool)
        return NAN;
    /* Every thread busy at once for a moment: all of them started. */
    pthreadpool_parallelize_1d(pool, sleep_item, NULL, (size_t)p->workers, 0);
    double value = w == BENCH_MAP_CHUNKED ? run_map(pool, p) : NAN;
    pthreadpool_destroy(pool);
    return value;
}

bool bench_pthreadpool_run(bench_workload w, const bench_params *p)
{
    return bench_repeat(SYSTEM, w, p, run_once, NULL);
}
