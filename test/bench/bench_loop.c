/* cf-bench: loop_roundtrip, a task submitted from a libuv loop whose callback
 * comes back on the loop, p->roundtrips times in sequence (each callback
 * submits the next): the median microseconds per round trip, for cfutures'
 * thread pool through cf_uv_run_in_executor and for libuv's own uv_queue_work
 * (system "libuv"), both with p->workers threads.
 *
 * libuv's threadpool size is read once per process, so its figure comes
 * from a child cf-bench ("--uv-child --workload loop_roundtrip"), as in
 * bench_uv.c.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <cfutures-uv.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CF_SYSTEM "cfutures-thread"
#define UV_SYSTEM "libuv"
#define WORKLOAD "loop_roundtrip"

/* The state of one chain of round trips, on the loop thread only. */
typedef struct chain {
    size_t n, i; /* round trips wanted, done */
    double *us;  /* each one's time */
    uint64_t t0; /* when the current one was submitted */
    bool failed;
    cf_uv_bridge *bridge;
    cf_executor *ex;
    uv_loop_t *loop; /* libuv */
    uv_work_t req;   /* libuv: the one request, reused */
    intptr_t arg, result;
} chain;

static bool chain_init(chain *c, const bench_params *p)
{
    *c = (chain){ .n = p->roundtrips };
    c->us = malloc(c->n * sizeof *c->us);
    return c->us != NULL;
}

/* Record the round trip that just ended with `got`: false when the chain is
 * over (all done, or a wrong result). */
static bool chain_step(chain *c, intptr_t got)
{
    uint64_t now = bench_now_ns();
    if (got != (intptr_t)c->i) {
        c->failed = true;
        return false;
    }
    c->us[c->i] = (double)(now - c->t0) / 1e3;
    return ++c->i < c->n;
}

/* The chain's median, or NAN when it did not complete. */
static double chain_median(chain *c)
{
    double v = !c->failed && c->i == c->n ? bench_median(c->us, c->n) : NAN;
    free(c->us);
    return v;
}

/* ------------------------------------------------------------------------ */
/* cfutures: cf_uv_run_in_executor on a thread pool                          */
/* ------------------------------------------------------------------------ */

static void *task_identity(void *arg)
{
    return arg;
}

static void futures_submit_next(chain *c);

static void futures_done(cf_future *f, void *userdata)
{
    chain *c = userdata;
    void *v = NULL;
    int rc = cf_future_result(f, 0, &v);
    cf_future_unref(f);
    if (rc != 0) {
        bench_note("%s: %s: %s", CF_SYSTEM, WORKLOAD, cf_strerror(rc));
        c->failed = true;
        return;
    }
    if (chain_step(c, (intptr_t)v))
        futures_submit_next(c);
}

static void futures_submit_next(chain *c)
{
    c->t0 = bench_now_ns();
    if (!cf_uv_run_in_executor(c->bridge, c->ex, task_identity, (void *)(intptr_t)c->i,
                               futures_done, c)) {
        bench_note("%s: cf_uv_run_in_executor: %s", CF_SYSTEM, cf_strerror(cf_last_error()));
        c->failed = true;
    }
}

static double futures_run_once(const bench_params *p)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return NAN;
    int code = 0;
    chain c;
    double value = NAN;
    if (chain_init(&c, p)) {
        c.bridge = cf_uv_bridge_new(&loop);
        c.ex = bench_cf_pool(false, p->workers, &code); /* all workers started */
        if (c.bridge && c.ex) {
            futures_submit_next(&c);
            uv_run(&loop, UV_RUN_DEFAULT); /* returns when the chain ends */
        } else {
            bench_note("%s: %s: set-up failed: %s", CF_SYSTEM, WORKLOAD,
                       cf_strerror(c.bridge ? code : cf_last_error()));
            c.failed = true;
        }
        cf_uv_bridge_close(c.bridge);
        uv_run(&loop, UV_RUN_NOWAIT); /* the bridge's handle closes */
        cf_executor_free(c.ex);
        value = chain_median(&c);
    }
    uv_loop_close(&loop);
    return value;
}

/* ------------------------------------------------------------------------ */
/* libuv: uv_queue_work, its after_work_cb on the loop                       */
/* ------------------------------------------------------------------------ */

static void libuv_submit_next(chain *c);

static void libuv_work(uv_work_t *req)
{
    chain *c = req->data;
    c->result = c->arg;
}

static void libuv_after(uv_work_t *req, int status)
{
    chain *c = req->data;
    if (status != 0) {
        c->failed = true;
        return;
    }
    if (chain_step(c, c->result))
        libuv_submit_next(c);
}

static void libuv_submit_next(chain *c)
{
    c->t0 = bench_now_ns();
    c->arg = (intptr_t)c->i;
    c->req.data = c;
    if (uv_queue_work(c->loop, &c->req, libuv_work, libuv_after) != 0)
        c->failed = true;
}

static void libuv_warm_work(uv_work_t *req)
{
    (void)req;
    bench_sleep_ms(2);
}
static void libuv_warm_after(uv_work_t *req, int status)
{
    (void)req, (void)status;
}

static double libuv_run_once(uv_loop_t *loop, const bench_params *p)
{
    /* Every libuv thread busy at once for a moment, so that all are started. */
    uv_work_t warm[64];
    int nwarm = p->workers < 64 ? p->workers : 64;
    for (int i = 0; i < nwarm; i++)
        if (uv_queue_work(loop, &warm[i], libuv_warm_work, libuv_warm_after) != 0)
            return NAN;
    uv_run(loop, UV_RUN_DEFAULT);

    chain c;
    if (!chain_init(&c, p))
        return NAN;
    c.loop = loop;
    libuv_submit_next(&c);
    uv_run(loop, UV_RUN_DEFAULT);
    return chain_median(&c);
}

int bench_loop_uv_child(const bench_params *p)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return 1;
    double *values = malloc((size_t)p->repeat * sizeof *values);
    int r = 0;
    for (; values && r < p->repeat; r++) {
        values[r] = libuv_run_once(&loop, p);
        if (isnan(values[r])) {
            bench_note("%s: %s failed", UV_SYSTEM, WORKLOAD);
            break;
        }
    }
    bool ok = values && r == p->repeat;
    if (ok)
        bench_report_runs(UV_SYSTEM, WORKLOAD, values, (size_t)r,
                          bench_workload_unit(BENCH_LOOP_ROUNDTRIP));
    free(values);
    uv_loop_close(&loop);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------------ */

bool bench_loop_run(const bench_params *p, bool compare)
{
    double *values = malloc((size_t)p->repeat * sizeof *values);
    if (!values)
        return false;
    int r = 0;
    for (; r < p->repeat; r++) {
        values[r] = futures_run_once(p);
        if (isnan(values[r]))
            break;
    }
    bool ok = r == p->repeat;
    if (ok)
        bench_report_runs(CF_SYSTEM, WORKLOAD, values, (size_t)r,
                          bench_workload_unit(BENCH_LOOP_ROUNDTRIP));
    free(values);
    if (compare) {
        char env[64], repeat[16];
        snprintf(env, sizeof env, "UV_THREADPOOL_SIZE=%d", p->workers);
        snprintf(repeat, sizeof repeat, "%d", p->repeat);
        char *argv[] = { "/proc/self/exe",
                         "--uv-child",
                         "--workload",
                         WORKLOAD,
                         "--repeat",
                         repeat,
                         p->quick ? "--quick" : NULL,
                         NULL };
        int status = bench_run_child(argv, env);
        if (status != 0)
            bench_note("%s: %s: child cf-bench failed (status %d)", UV_SYSTEM, WORKLOAD, status);
    }
    return ok;
}
