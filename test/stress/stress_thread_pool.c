/* Stress: 4 threads submit tasks to one pool, cancelling some at random, while
 * one of them shuts the pool down (cancelling what is queued) part-way.
 * Every accepted future must end exactly once: done-callback count == 1, and
 * finished with its own result or cancelled; none lost, none twice. */
#include "check.h"

#include <cfutures.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

#ifndef PER_THREAD
#ifdef SANITIZED
#define PER_THREAD 50000
#else
#define PER_THREAD 100000
#endif
#endif

#define THREADS 4
#define TOTAL (THREADS * PER_THREAD)

#define V(n) ((void *)(intptr_t)(n))

enum { NOT_SUBMITTED, SUBMITTED };

static cf_executor *ex;
static atomic_int calls[TOTAL];    /* done-callbacks per item */
static atomic_int outcome[TOTAL];  /* 1: finished with its value, 2: cancelled */
static unsigned char state[TOTAL]; /* written by the item's submitting thread */
static atomic_int ran[TOTAL];      /* the task body ran */
static atomic_long submitted_total;
static long shutdown_at;
static atomic_int shutdown_cancel;

static void *task_identity(void *arg)
{
    atomic_fetch_add_explicit(&ran[(intptr_t)arg], 1, memory_order_relaxed);
    return arg;
}

static void on_done(cf_future *f, void *userdata)
{
    intptr_t i = (intptr_t)userdata;
    atomic_fetch_add(&calls[i], 1);
    void *v = NULL;
    int rc = cf_future_result(f, 0, &v);
    if (rc == 0 && (intptr_t)v == i)
        atomic_store(&outcome[i], 1);
    else if (rc == CF_ECANCELLED && cf_future_cancelled(f))
        atomic_store(&outcome[i], 2);
    else
        atomic_store(&outcome[i], 3); /* wrong */
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *submitter(void *arg)
{
    intptr_t t = (intptr_t)arg;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1);
    for (int k = 0; k < PER_THREAD; k++) {
        intptr_t i = t * PER_THREAD + k;
        cf_future *f = cf_submit(ex, task_identity, V(i));
        if (!f) {
            CHECK_EQ(cf_last_error(), CF_ESHUTDOWN);
            continue;
        }
        state[i] = SUBMITTED;
        CHECK_EQ(cf_future_add_done_callback(f, on_done, V(i)), 0);
        uint64_t r = rng_next(&rng);
        if (r % 8 == 0)
            cf_future_cancel(f);
        cf_future_unref(f);
        if (atomic_fetch_add(&submitted_total, 1) + 1 == shutdown_at)
            CHECK_EQ(cf_executor_shutdown(ex, false, atomic_load(&shutdown_cancel)), 0);
    }
    return NULL;
}

static void run_round(int max_workers, long at, bool cancel)
{
    memset(calls, 0, sizeof calls);
    memset(outcome, 0, sizeof outcome);
    memset(ran, 0, sizeof ran);
    memset(state, 0, sizeof state);
    atomic_store(&submitted_total, 0);
    shutdown_at = at;
    atomic_store(&shutdown_cancel, cancel);
    ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = max_workers });
    CHECK(ex);

    pthread_t threads[THREADS];
    for (intptr_t t = 0; t < THREADS; t++)
        CHECK_EQ(pthread_create(&threads[t], NULL, submitter, V(t)), 0);
    for (int t = 0; t < THREADS; t++)
        CHECK_EQ(pthread_join(threads[t], NULL), 0);
    cf_executor_free(ex); /* waits: every accepted future is done now */

    long accepted = 0, finished = 0, cancelled = 0;
    for (long i = 0; i < TOTAL; i++) {
        if (state[i] != SUBMITTED) {
            CHECK_EQ(atomic_load(&calls[i]), 0);
            CHECK_EQ(atomic_load(&ran[i]), 0);
            continue;
        }
        accepted++;
        if (atomic_load(&calls[i]) != 1)
            fprintf(stderr, "item %ld: %d callbacks\n", i, atomic_load(&calls[i]));
        CHECK_EQ(atomic_load(&calls[i]), 1);
        int o = atomic_load(&outcome[i]);
        CHECK(o == 1 || o == 2);
        CHECK_EQ(atomic_load(&ran[i]), o == 1 ? 1 : 0);
        finished += o == 1;
        cancelled += o == 2;
    }
    CHECK_EQ(accepted, atomic_load(&submitted_total));
    CHECK(accepted >= (at < TOTAL ? at : TOTAL));
    fprintf(stderr,
            "workers %d, shutdown after %ld (cancel %d): %ld accepted, %ld finished, "
            "%ld cancelled\n",
            max_workers, at, cancel, accepted, finished, cancelled);
}

int main(void)
{
    run_round(4, TOTAL / 2, true);
    run_round(2, TOTAL * 3 / 4, false);
    run_round(8, TOTAL / 10, true);
    run_round(3, TOTAL + 1, false); /* no shutdown until free */
    fprintf(stderr, "stress_thread_pool: all passed\n");
    return 0;
}
