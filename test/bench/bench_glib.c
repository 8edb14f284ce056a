/* cf-bench: the five workloads on GLib's GThreadPool, written the way a GLib
 * user would, without futures: each job carries its argument and result, and
 * the submitter waits on a counter + condition variable for the batch.
 * Built only when meson finds glib-2.0.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <glib.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define SYSTEM "glib-thread"

/* A batch of jobs: the last one to finish wakes the submitter. */
typedef struct batch {
    GMutex lock;
    GCond cond;
    gint remaining; /* atomic */
    gboolean done;  /* under lock */
} batch;

typedef struct job job;
struct job {
    void (*fn)(job *j);
    batch *batch;
    intptr_t arg;
    intptr_t result;
    size_t count;  /* map chunk: items from arg */
    uint64_t *out; /* map chunk: results */
};

static void batch_init(batch *b, int jobs)
{
    g_mutex_init(&b->lock);
    g_cond_init(&b->cond);
    g_atomic_int_set(&b->remaining, jobs);
    b->done = FALSE;
}

static void batch_clear(batch *b)
{
    g_mutex_clear(&b->lock);
    g_cond_clear(&b->cond);
}

static void batch_wait(batch *b)
{
    g_mutex_lock(&b->lock);
    while (!b->done)
        g_cond_wait(&b->cond, &b->lock);
    g_mutex_unlock(&b->lock);
}

static void pool_func(gpointer data, gpointer user_data)
{
    (void)user_data;
    job *j = data;
    j->fn(j);
    batch *b = j->batch;
    if (g_atomic_int_dec_and_test(&b->remaining)) {
        g_mutex_lock(&b->lock);
        b->done = TRUE;
        g_cond_signal(&b->cond);
        g_mutex_unlock(&b->lock);
    }
}

static void job_identity(job *j)
{
    j->result = j->arg;
}
static void job_cpu(job *j)
{
    j->result = (intptr_t)bench_cpu_loop((int)j->arg);
}
static void job_sleep(job *j)
{
    bench_sleep_ms((int)j->arg);
}
static void job_square_chunk(job *j)
{
    for (size_t i = 0; i < j->count; i++) {
        uint64_t x = (uint64_t)j->arg + i;
        j->out[i] = x * x;
    }
}

static void run_batch(GThreadPool *pool, job *jobs, size_t n, batch *b)
{
    batch_init(b, (int)n);
    for (size_t i = 0; i < n; i++) {
        jobs[i].batch = b;
        g_thread_pool_push(pool, &jobs[i], NULL);
    }
    batch_wait(b);
    batch_clear(b);
}

static void warm_up(GThreadPool *pool, int workers)
{
    job jobs[64];
    size_t n = workers < 64 ? (size_t)workers : 64;
    batch b;
    for (size_t i = 0; i < n; i++)
        jobs[i] = (job){ .fn = job_sleep, .arg = 2 };
    run_batch(pool, jobs, n, &b);
}

static double run_once(bench_workload w, const bench_params *p, void *ctx)
{
    (void)ctx;
    int workers = w == BENCH_SLEEP_CONCURRENCY ? p->sleep_workers : p->workers;
    GThreadPool *pool = g_thread_pool_new(pool_func, NULL, workers, TRUE, NULL);
    if (!pool)
        return NAN;
    warm_up(pool, workers);
    double value = NAN;
    batch b;
    switch (w) {
    case BENCH_EMPTY_THROUGHPUT: {
        size_t n = p->empty_tasks;
        job *jobs = malloc(n * sizeof *jobs);
        if (!jobs)
            break;
        uint64_t t0 = bench_now_ns();
        for (size_t i = 0; i < n; i++)
            jobs[i] = (job){ .fn = job_identity, .arg = (intptr_t)i };
        run_batch(pool, jobs, n, &b);
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += (uint64_t)jobs[i].result;
        uint64_t dt = bench_now_ns() - t0;
        if (sum == (uint64_t)n * (n - 1) / 2)
            value = (double)n / ((double)dt / 1e9);
        free(jobs);
        break;
    }
    case BENCH_ROUNDTRIP_LATENCY: {
        size_t n = p->roundtrips;
        double *us = malloc(n * sizeof *us);
        if (!us)
            break;
        for (size_t i = 0; i < n; i++) {
            uint64_t t0 = bench_now_ns();
            job j = { .fn = job_identity, .arg = (intptr_t)i };
            run_batch(pool, &j, 1, &b);
            us[i] = (double)(bench_now_ns() - t0) / 1e3;
        }
        value = bench_median(us, n);
        free(us);
        break;
    }
    case BENCH_CPU_SPEEDUP: {
        size_t n = p->cpu_calls;
        job *jobs = malloc(n * sizeof *jobs);
        if (!jobs)
            break;
        uint64_t expect = 0;
        uint64_t serial = bench_cpu_serial(p, &expect);
        uint64_t t0 = bench_now_ns();
        for (size_t i = 0; i < n; i++)
            jobs[i] = (job){ .fn = job_cpu, .arg = p->cpu_num };
        run_batch(pool, jobs, n, &b);
        uint64_t pooled = bench_now_ns() - t0;
        bool ok = true;
        for (size_t i = 0; i < n; i++)
            ok = ok && (uint64_t)jobs[i].result == expect;
        if (ok)
            value = (double)serial / (double)pooled;
        free(jobs);
        break;
    }
    case BENCH_MAP_CHUNKED: {
        size_t n = p->map_items, cs = p->map_chunksize;
        size_t chunks = (n + cs - 1) / cs;
        job *jobs = malloc(chunks * sizeof *jobs);
        if (!jobs)
            break;
        uint64_t *out = bench_out_array(n);
        uint64_t t0 = bench_now_ns();
        if (out) {
            for (size_t c = 0; c < chunks; c++) {
                size_t start = c * cs;
                jobs[c] = (job){ .fn = job_square_chunk,
                                 .arg = (intptr_t)start,
                                 .count = start + cs <= n ? cs : n - start,
                                 .out = out + start };
            }
            run_batch(pool, jobs, chunks, &b);
            uint64_t sum = 0;
            for (size_t i = 0; i < n; i++)
                sum += out[i];
            uint64_t dt = bench_now_ns() - t0;
            if (sum == bench_square_sum(n))
                value = (double)n / ((double)dt / 1e9);
        }
        free(jobs);
        break;
    }
    case BENCH_SLEEP_CONCURRENCY: {
        size_t n = p->sleep_tasks;
        job *jobs = malloc(n * sizeof *jobs);
        if (!jobs)
            break;
        uint64_t t0 = bench_now_ns();
        for (size_t i = 0; i < n; i++)
            jobs[i] = (job){ .fn = job_sleep, .arg = p->sleep_ms };
        run_batch(pool, jobs, n, &b);
        value = (double)(bench_now_ns() - t0) / 1e6;
        free(jobs);
        break;
    }
    case BENCH_LOOP_ROUNDTRIP: /* bench_loop.c */
    case BENCH_NESTED_FIB:     /* not in its workloads (bench_peers.c) */
    case BENCH_WORKLOAD_COUNT:
        break;
    }
    g_thread_pool_free(pool, FALSE, TRUE);
    return value;
}

bool bench_glib_run(bench_workload w, const bench_params *p)
{
    return bench_repeat(SYSTEM, w, p, run_once, NULL);
}
