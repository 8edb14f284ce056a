/* cf-bench: the five workloads on libuv's uv_queue_work, written the way a
 * libuv user would, without futures: requests carry their argument and result,
 * the after-work callbacks run on the loop thread and collect the results, and
 * uv_run returns when the batch is done.
 *
 * libuv's threadpool size (UV_THREADPOOL_SIZE) is read once per process, so
 * the parent runs each workload in a child cf-bench ("--uv-child") with the
 * size that workload needs.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#define SYSTEM "libuv-thread"

typedef struct request {
    uv_work_t req;
    intptr_t arg;
    intptr_t result;
    size_t count;  /* map chunk: items from arg */
    uint64_t *out; /* map chunk: results */
} request;

/* What the loop thread collects in the after-work callbacks. */
typedef struct collector {
    size_t done;
    uint64_t sum;
} collector;

static void work_identity(uv_work_t *req)
{
    request *r = (request *)req;
    r->result = r->arg;
}
static void work_cpu(uv_work_t *req)
{
    request *r = (request *)req;
    r->result = (intptr_t)bench_cpu_loop((int)r->arg);
}
static void work_sleep(uv_work_t *req)
{
    bench_sleep_ms((int)((request *)req)->arg);
}
static void work_square_chunk(uv_work_t *req)
{
    request *r = (request *)req;
    for (size_t i = 0; i < r->count; i++) {
        uint64_t x = (uint64_t)r->arg + i;
        r->out[i] = x * x;
    }
}

static void after_sum_result(uv_work_t *req, int status)
{
    request *r = (request *)req;
    collector *c = req->loop->data;
    if (status == 0) {
        c->done++;
        c->sum += (uint64_t)r->result;
    }
}

static void after_sum_chunk(uv_work_t *req, int status)
{
    request *r = (request *)req;
    collector *c = req->loop->data;
    if (status == 0) {
        c->done++;
        for (size_t i = 0; i < r->count; i++)
            c->sum += r->out[i];
    }
}

/* Queue n requests and run the loop until every one is collected; *sum (if
 * not NULL) gets what the after-work callbacks added up. */
static bool run_batch(uv_loop_t *loop, request *reqs, size_t n, uv_work_cb work,
                      uv_after_work_cb after, uint64_t *sum)
{
    collector c = { 0, 0 };
    loop->data = &c;
    bool queued = true;
    for (size_t i = 0; queued && i < n; i++)
        queued = uv_queue_work(loop, &reqs[i].req, work, after) == 0;
    uv_run(loop, UV_RUN_DEFAULT); /* also when one failed: collect the queued ones */
    loop->data = NULL;            /* c ends here */
    if (sum)
        *sum = c.sum;
    return queued && c.done == n;
}

static double run_once(bench_workload w, const bench_params *p, void *ctx)
{
    uv_loop_t *loop = ctx;
    int workers = w == BENCH_SLEEP_CONCURRENCY ? p->sleep_workers : p->workers;
    request warm[64];
    size_t nwarm = workers < 64 ? (size_t)workers : 64;
    for (size_t i = 0; i < nwarm; i++)
        warm[i] = (request){ .arg = 2 };
    if (!run_batch(loop, warm, nwarm, work_sleep, after_sum_result, NULL))
        return NAN;

    double value = NAN;
    switch (w) {
    case BENCH_EMPTY_THROUGHPUT: {
        size_t n = p->empty_tasks;
        request *reqs = malloc(n * sizeof *reqs);
        if (!reqs)
            break;
        uint64_t t0 = bench_now_ns();
        for (size_t i = 0; i < n; i++)
            reqs[i] = (request){ .arg = (intptr_t)i };
        uint64_t sum = 0;
        bool ok = run_batch(loop, reqs, n, work_identity, after_sum_result, &sum);
        uint64_t dt = bench_now_ns() - t0;
        if (ok && sum == (uint64_t)n * (n - 1) / 2)
            value = (double)n / ((double)dt / 1e9);
        free(reqs);
        break;
    }
    case BENCH_ROUNDTRIP_LATENCY: {
        size_t n = p->roundtrips;
        double *us = malloc(n * sizeof *us);
        if (!us)
            break;
        size_t i = 0;
        for (; i < n; i++) {
            uint64_t t0 = bench_now_ns();
            request r = { .arg = (intptr_t)i };
            if (!run_batch(loop, &r, 1, work_identity, after_sum_result, NULL))
                break;
            us[i] = (double)(bench_now_ns() - t0) / 1e3;
        }
        if (i == n)
            value = bench_median(us, n);
        free(us);
        break;
    }
    case BENCH_CPU_SPEEDUP: {
        size_t n = p->cpu_calls;
        request *reqs = malloc(n * sizeof *reqs);
        if (!reqs)
            break;
        uint64_t expect = 0;
        uint64_t serial = bench_cpu_serial(p, &expect);
        uint64_t t0 = bench_now_ns();
        for (size_t i = 0; i < n; i++)
            reqs[i] = (request){ .arg = p->cpu_num };
        bool ok = run_batch(loop, reqs, n, work_cpu, after_sum_result, NULL);
        uint64_t pooled = bench_now_ns() - t0;
        for (size_t i = 0; ok && i < n; i++)
            ok = (uint64_t)reqs[i].result == expect;
        if (ok)
            value = (double)serial / (double)pooled;
        free(reqs);
        break;
    }
    case BENCH_MAP_CHUNKED: {
        size_t n = p->map_items, cs = p->map_chunksize;
        size_t chunks = (n + cs - 1) / cs;
        request *reqs = malloc(chunks * sizeof *reqs);
        if (!reqs)
            break;
        uint64_t *out = bench_out_array(n);
        uint64_t t0 = bench_now_ns();
        if (out) {
            for (size_t c = 0; c < chunks; c++) {
                size_t start = c * cs;
                reqs[c] = (request){ .arg = (intptr_t)start,
                                     .count = start + cs <= n ? cs : n - start,
                                     .out = out + start };
            }
            uint64_t sum = 0;
            bool ok = run_batch(loop, reqs, chunks, work_square_chunk, after_sum_chunk, &sum);
            uint64_t dt = bench_now_ns() - t0;
            if (ok && sum == bench_square_sum(n))
                value = (double)n / ((double)dt / 1e9);
        }
        free(reqs);
        break;
    }
    case BENCH_SLEEP_CONCURRENCY: {
        size_t n = p->sleep_tasks;
        request *reqs = malloc(n * sizeof *reqs);
        if (!reqs)
            break;
        uint64_t t0 = bench_now_ns();
        for (size_t i = 0; i < n; i++)
            reqs[i] = (request){ .arg = p->sleep_ms };
        if (run_batch(loop, reqs, n, work_sleep, after_sum_result, NULL))
            value = (double)(bench_now_ns() - t0) / 1e6;
        free(reqs);
        break;
    }
    case BENCH_LOOP_ROUNDTRIP: /* bench_loop.c */
    case BENCH_NESTED_FIB:     /* not in its workloads (bench_peers.c) */
    case BENCH_WORKLOAD_COUNT:
        break;
    }
    return value;
}

int bench_uv_child(bench_workload w, const bench_params *p)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return 1;
    bool ok = bench_repeat(SYSTEM, w, p, run_once, &loop);
    uv_loop_close(&loop);
    return ok ? 0 : 1;
}

bool bench_uv_run(bench_workload w, const bench_params *p)
{
    int workers = w == BENCH_SLEEP_CONCURRENCY ? p->sleep_workers : p->workers;
    char env[64], repeat[16];
    snprintf(env, sizeof env, "UV_THREADPOOL_SIZE=%d", workers);
    snprintf(repeat, sizeof repeat, "%d", p->repeat);
    char *argv[] = { "/proc/self/exe",
                     "--uv-child",
                     "--workload",
                     (char *)bench_workload_name(w),
                     "--repeat",
                     repeat,
                     p->quick ? "--quick" : NULL,
                     NULL };
    int status = bench_run_child(argv, env);
    if (status != 0)
        bench_note("%s: %s: child cf-bench failed (status %d)", SYSTEM, bench_workload_name(w),
                   status);
    return status == 0;
}
