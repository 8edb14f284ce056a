/* cf-bench: the thread pool's floor of roundtrip_latency, no executor: an
 * 8-byte ping-pong between two threads through two shared words (the echo
 * thread answers ping + 1), both spinning: a cache line there and back.
 * Each run starts its thread, warms up, then times p->roundtrips round trips;
 * the figure is their median, as for the pools.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

enum { WARM_UP_ROUNDTRIPS = 100 };

#define SPIN_STOP UINT64_MAX

/* Each word on a cache line of its own: one line goes each way. */
typedef struct spin_pair {
    _Alignas(64) _Atomic uint64_t ping; /* written by the timing thread */
    _Alignas(64) _Atomic uint64_t pong; /* written by the echo thread: ping + 1 */
} spin_pair;

static void *spin_echo(void *arg)
{
    spin_pair *s = arg;
    uint64_t last = 0, v;
    for (;;) {
        while ((v = atomic_load_explicit(&s->ping, memory_order_acquire)) == last) {
        }
        if (v == SPIN_STOP)
            return NULL;
        last = v;
        atomic_store_explicit(&s->pong, v + 1, memory_order_release);
    }
}

static double spin_once(bench_workload w, const bench_params *p, void *ctx)
{
    (void)ctx;
    if (w != BENCH_ROUNDTRIP_LATENCY)
        return NAN;
    size_t n = p->roundtrips;
    double *us = malloc(n * sizeof *us);
    spin_pair *s = aligned_alloc(64, sizeof *s);
    pthread_t t;
    if (!us || !s) {
        free(us);
        free(s);
        return NAN;
    }
    atomic_init(&s->ping, 0);
    atomic_init(&s->pong, 0);
    if (pthread_create(&t, NULL, spin_echo, s) != 0) {
        free(us);
        free(s);
        return NAN;
    }
    for (uint64_t i = 1; i <= WARM_UP_ROUNDTRIPS + n; i++) {
        uint64_t t0 = bench_now_ns();
        atomic_store_explicit(&s->ping, i, memory_order_release);
        while (atomic_load_explicit(&s->pong, memory_order_acquire) != i + 1) {
        }
        uint64_t dt = bench_now_ns() - t0;
        if (i > WARM_UP_ROUNDTRIPS)
            us[i - WARM_UP_ROUNDTRIPS - 1] = (double)dt / 1e3;
    }
    atomic_store_explicit(&s->ping, SPIN_STOP, memory_order_release);
    pthread_join(t, NULL);
    double value = bench_median(us, n);
    free(us);
    free(s);
    return value;
}

bool bench_spin_run(bench_workload w, const bench_params *p)
{
    return bench_repeat("spin", w, p, spin_once, NULL);
}
