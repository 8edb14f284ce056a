/* Process pool: what a thread pool does, the same way (submit, copies, raise,
 * map, shutdown, cancel, initializer), plus process-only behaviour that needs
 * no crash: reuse of one process, message limits, creation among threads.
 *
 * Synchronisation with tasks goes through pipes created before the pool (so
 * the workers inherit them): a task reports "started" by writing to one and
 * waits at a "gate" by reading another, which the test opens by writing.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* --- tasks (static on purpose: they travel by build-id + offset) --- */

static void *twice(void *arg)
{
    return V(I(arg) * 2);
}

static void *square(void *arg)
{
    return V(I(arg) * I(arg));
}

static void *get_pid(void *arg)
{
    (void)arg;
    return V(getpid());
}

static void *gated(void *arg)
{
    report_started();
    pass_gate();
    return V(I(arg) + 1);
}

static void *sum_bytes(void *arg)
{
    const unsigned char *p = arg;
    size_t n = p[0] | (size_t)p[1] << 8; /* the first two bytes give the size */
    long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += p[i];
    return V(sum);
}

typedef struct pair {
    int a, b;
} pair;

static void *swap_pair(void *arg)
{
    const pair *in = arg;
    pair out = { in->b, in->a };
    return cf_return_copy(&out, sizeof out);
}

static void *raise_if_odd(void *arg)
{
    if (I(arg) % 2)
        return cf_raise(42, "odd: %d", (int)I(arg));
    return arg;
}

static void *make_string(void *arg)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "item-%d", (int)I(arg));
    return cf_return_copy(buf, (size_t)n + 1);
}

/* Larger than a pipe holds (64 KiB by default), so that both the frame and
 * the reply are written in several parts. */
#define LARGE_WORDS ((size_t)1 << 19) /* 4 MiB of uint64_t */

/* The words reversed, each plus one: every byte of the copy is checked. */
static void *reverse_words(void *arg)
{
    const uint64_t *in = arg;
    uint64_t *out = malloc(LARGE_WORDS * sizeof *out);
    if (!out)
        return cf_raise(CF_ENOMEM, "malloc");
    for (size_t i = 0; i < LARGE_WORDS; i++)
        out[i] = in[LARGE_WORDS - 1 - i] + 1;
    void *ret = cf_return_copy(out, LARGE_WORDS * sizeof *out);
    free(out);
    return ret;
}

/* --- helpers --- */

static cf_executor *pool_new(int workers)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = workers });
    CHECK(ex != NULL);
    return ex;
}

/* --- tests --- */

static void test_submit_result(void)
{
    cf_executor *ex = pool_new(2);
    cf_future *fs[20];
    for (int i = 0; i < 20; i++)
        fs[i] = cf_submit(ex, twice, V(i));
    for (int i = 0; i < 20; i++) {
        CHECK(fs[i] != NULL);
        CHECK_EQ(result_of(fs[i]), 2 * i);
        CHECK(cf_future_done(fs[i]));
        cf_future_unref(fs[i]);
    }
    cf_executor_free(ex);
}

static void test_values_are_integers(void)
{
    cf_executor *ex = pool_new(1);
    intptr_t vals[] = { 0, -1, INTPTR_MAX / 2, -123456789, 1 };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        cf_future *f = cf_submit(ex, twice, V(vals[i]));
        CHECK_EQ(result_of(f), vals[i] * 2);
        cf_future_unref(f);
    }
    cf_executor_free(ex);
}

static void test_copies_cross(void)
{
    cf_executor *ex = pool_new(2);
    unsigned char buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 7);
    buf[0] = (unsigned char)(sizeof buf & 0xff);
    buf[1] = (unsigned char)(sizeof buf >> 8);
    long want = 0;
    for (size_t i = 0; i < sizeof buf; i++)
        want += buf[i];
    cf_future *f = cf_submit_copy(ex, sum_bytes, buf, sizeof buf);
    memset(buf, 0, sizeof buf); /* the caller may reuse its buffer at once */
    CHECK_EQ(result_of(f), want);
    cf_future_unref(f);

    pair in = { 3, 4 };
    f = cf_submit_copy(ex, swap_pair, &in, sizeof in);
    void *v = NULL;
    CHECK_EQ(cf_future_result(f, CF_FOREVER, &v), 0);
    CHECK_EQ(cf_future_result_size(f), sizeof(pair));
    CHECK_EQ(((pair *)v)->a, 4);
    CHECK_EQ(((pair *)v)->b, 3);
    cf_future_unref(f);

    f = cf_submit(ex, make_string, V(77));
    CHECK_EQ(cf_future_result(f, CF_FOREVER, &v), 0);
    CHECK_STR((const char *)v, "item-77");
    CHECK_EQ(cf_future_result_size(f), 8);
    cf_future_unref(f);
    cf_executor_free(ex);
}

/* Several large copies at once each way, on two workers: whatever the pipes
 * do not take at once is written later, and nothing is lost or mixed up. */
static void test_large_copies_cross(void)
{
    cf_executor *ex = pool_new(2);
    enum { N = 6 };
    uint64_t *in = malloc(LARGE_WORDS * sizeof *in);
    CHECK(in != NULL);
    cf_future *fs[N];
    for (int k = 0; k < N; k++) {
        for (size_t i = 0; i < LARGE_WORDS; i++)
            in[i] = (uint64_t)k << 32 | i;
        CHECK((fs[k] = cf_submit_copy(ex, reverse_words, in, LARGE_WORDS * sizeof *in)) != NULL);
    }
    free(in);
    for (int k = 0; k < N; k++) {
        void *v = NULL;
        CHECK_EQ(cf_future_result(fs[k], 30, &v), 0); /* fails, not hangs, if bytes go missing */
        CHECK_EQ(cf_future_result_size(fs[k]), LARGE_WORDS * sizeof(uint64_t));
        const uint64_t *out = v;
        size_t bad = 0;
        for (size_t i = 0; i < LARGE_WORDS; i++)
            bad += out[i] != ((uint64_t)k << 32 | (LARGE_WORDS - 1 - i)) + 1;
        CHECK_EQ(bad, 0);
        cf_future_unref(fs[k]);
    }
    cf_executor_free(ex);
}

static void test_raise(void)
{
    cf_executor *ex = pool_new(1);
    cf_future *f = cf_submit(ex, raise_if_odd, V(7));
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), CF_ETASK);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(f, CF_FOREVER, &exc), 0);
    CHECK(exc != NULL);
    CHECK_EQ(exc->code, 42);
    CHECK_STR(exc->message, "odd: 7");
    CHECK_EQ(exc->signal, 0);
    CHECK_EQ(exc->exit_status, -1);
    cf_future_unref(f);
    /* the worker survives a raise */
    f = cf_submit(ex, raise_if_odd, V(8));
    CHECK_EQ(result_of(f), 8);
    cf_future_unref(f);
    cf_executor_free(ex);
}

static void test_idle_worker_reused(void)
{
    cf_executor *ex = pool_new(4);
    intptr_t pids[3];
    for (int i = 0; i < 3; i++) {
        cf_future *f = cf_submit(ex, get_pid, NULL);
        pids[i] = result_of(f);
        cf_future_unref(f);
    }
    CHECK(pids[0] != getpid());
    CHECK_EQ(pids[0], pids[1]);
    CHECK_EQ(pids[1], pids[2]);
    CHECK_EQ(count_children(), 1); /* workers start lazily */
    cf_executor_free(ex);
}

static void test_never_more_than_max_workers(void)
{
    cf_executor *ex = pool_new(2);
    cf_future *fs[6];
    for (int i = 0; i < 6; i++)
        fs[i] = cf_submit(ex, gated, V(i));
    int a = wait_started(), b = wait_started();
    CHECK(a != b);
    CHECK_EQ(count_children(), 2);
    open_gate(6);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(result_of(fs[i]), i + 1);
        cf_future_unref(fs[i]);
    }
    for (int i = 2; i < 6; i++) {
        int pid = wait_started();
        CHECK(pid == a || pid == b);
    }
    cf_executor_free(ex);
}

static void test_bad_options(void)
{
    CHECK(cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = -1 }) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_process_pool_new(&(cf_process_pool_opts){ .max_tasks_per_child = -1 }) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_process_pool_new(&(cf_process_pool_opts){ .task_timeout = -1 }) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    cf_executor *ex = cf_process_pool_new(NULL); /* defaults */
    CHECK(ex != NULL);
    cf_future *f = cf_submit(ex, twice, V(21));
    CHECK_EQ(result_of(f), 42);
    cf_future_unref(f);
    CHECK(cf_submit(ex, NULL, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    cf_executor_free(ex);
}

static void check_map(cf_executor *ex, size_t chunksize)
{
    enum { N = 50 };
    void *args[N];
    for (int i = 0; i < N; i++)
        args[i] = V(i);
    cf_map_iter *it = cf_map(ex, square, args, N, &(cf_map_opts){ .chunksize = chunksize });
    CHECK(it != NULL);
    void *v;
    for (int i = 0; i < N; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ(I(v), i * i);
    }
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);

    /* The same through cf_map_next_batch: a task's results at a time. */
    it = cf_map(ex, square, args, N, &(cf_map_opts){ .chunksize = chunksize });
    CHECK(it != NULL);
    void *const *values;
    size_t count, got = 0;
    while (cf_map_next_batch(it, &values, &count) == 1) {
        CHECK(count >= 1 && count <= (chunksize > 1 ? chunksize : 1));
        for (size_t k = 0; k < count; k++)
            CHECK_EQ(I(values[k]), (intptr_t)((got + k) * (got + k)));
        got += count;
    }
    CHECK_EQ(got, N);
    cf_map_free(it);
}

static void test_map(void)
{
    cf_executor *ex = pool_new(2);
    check_map(ex, 1);
    check_map(ex, 3);
    check_map(ex, 1000);

    /* copies in and out of chunks */
    pair ps[10];
    void *args[10];
    for (int i = 0; i < 10; i++) {
        ps[i] = (pair){ i, -i };
        args[i] = &ps[i];
    }
    cf_map_iter *it =
        cf_map(ex, swap_pair, args, 10, &(cf_map_opts){ .chunksize = 4, .arg_size = sizeof(pair) });
    CHECK(it != NULL);
    void *v;
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ(((pair *)v)->a, -i);
        CHECK_EQ(((pair *)v)->b, i);
    }
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);

    /* an error in item k: the items before it, then the error */
    void *nums[9];
    for (int i = 0; i < 9; i++)
        nums[i] = V(i == 5 ? 5 : 2 * i);
    it = cf_map(ex, raise_if_odd, nums, 9, &(cf_map_opts){ .chunksize = 3 });
    CHECK(it != NULL);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ(I(v), 2 * i);
    }
    CHECK_EQ(cf_map_next(it, &v), CF_ETASK);
    const cf_exception *exc = cf_map_exception(it);
    CHECK(exc != NULL);
    CHECK_EQ(exc->code, 42);
    CHECK_STR(exc->message, "odd: 5");
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);
    cf_executor_free(ex);
}

static void test_too_big(void)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_message = 1024 });
    CHECK(ex != NULL);
    unsigned char buf[2048] = { 0 };
    CHECK(cf_submit_copy(ex, sum_bytes, buf, 1025) == NULL);
    CHECK_EQ(cf_last_error(), CF_ETOOBIG);
    void *args[200];
    for (int i = 0; i < 200; i++)
        args[i] = V(i);
    /* 200 items of 8 bytes in one chunk exceed 1024 bytes */
    CHECK(cf_map(ex, square, args, 200, &(cf_map_opts){ .chunksize = 200 }) == NULL);
    CHECK_EQ(cf_last_error(), CF_ETOOBIG);
    CHECK_EQ(count_children(), 0); /* nothing was sent: no worker even started */
    buf[0] = 0x00;
    buf[1] = 0x04; /* 1024 bytes: exactly the limit */
    cf_future *f = cf_submit_copy(ex, sum_bytes, buf, 1024);
    CHECK(f != NULL);
    CHECK_EQ(result_of(f), 4);
    cf_future_unref(f);
    cf_executor_free(ex);
}

static void *big_result(void *arg)
{
    static char buf[4096];
    return cf_return_copy(buf, (size_t)I(arg));
}

static void test_result_too_big(void)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_message = 1024 });
    CHECK(ex != NULL);
    cf_future *f = cf_submit(ex, big_result, V(2048));
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), CF_ETASK);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    CHECK_EQ(exc->code, CF_ETOOBIG);
    cf_future_unref(f);
    f = cf_submit(ex, big_result, V(1024)); /* the limit itself is fine */
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), 0);
    CHECK_EQ(cf_future_result_size(f), 1024);
    cf_future_unref(f);
    cf_executor_free(ex);
}

/* Done-callbacks of a process pool run in its manager thread: they may
 * submit to the same pool, and even shut it down, without a deadlock. */
typedef struct chain {
    cf_executor *ex;
    cf_future *next;
    int done[2]; /* the callback writes a byte here when it is done */
} chain;

static void submit_more(cf_future *f, void *userdata)
{
    chain *c = userdata;
    void *v = NULL;
    CHECK_EQ(cf_future_result(f, 0, &v), 0);
    c->next = cf_submit(c->ex, twice, v);
    CHECK(c->next != NULL);
    cf_future_unref(f); /* a callback may release its future */
    CHECK(write(c->done[1], "d", 1) == 1);
}

static void shut_down_from_callback(cf_future *f, void *userdata)
{
    (void)f;
    cf_executor *ex = userdata;
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0); /* does not wait for itself */
    CHECK_EQ(cf_executor_kill_workers(ex), 0);
}

static void test_callbacks(void)
{
    cf_executor *ex = pool_new(1);
    chain c = { .ex = ex };
    CHECK(pipe(c.done) == 0);
    cf_future *f = cf_submit(ex, twice, V(5));
    CHECK_EQ(cf_future_add_done_callback(cf_future_ref(f), submit_more, &c), 0);
    CHECK_EQ(result_of(f), 10);
    cf_future_unref(f);
    char byte;
    CHECK(read(c.done[0], &byte, 1) == 1); /* the callback has run */
    close(c.done[0]);
    close(c.done[1]);
    CHECK(c.next != NULL);
    CHECK_EQ(result_of(c.next), 20);
    cf_future_unref(c.next);
    cf_executor_free(ex);

    ex = pool_new(1);
    f = cf_submit(ex, twice, V(1));
    CHECK_EQ(cf_future_add_done_callback(f, shut_down_from_callback, ex), 0);
    CHECK_EQ(result_of(f), 2);
    cf_future_unref(f);
    cf_executor_free(ex);
    CHECK_EQ(count_children(), 0);
}

static void test_cancel_queued(void)
{
    cf_executor *ex = pool_new(1);
    cf_future *running = cf_submit(ex, gated, V(0));
    wait_started();
    cf_future *fs[20];
    for (int i = 0; i < 20; i++)
        fs[i] = cf_submit(ex, twice, V(i));
    for (int i = 10; i < 20; i++)
        CHECK(cf_future_cancel(fs[i]));
    CHECK(!cf_future_cancel(running));
    CHECK(cf_future_running(running));
    open_gate(1);
    CHECK_EQ(result_of(running), 1);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(result_of(fs[i]), 2 * i);
    for (int i = 10; i < 20; i++)
        CHECK_EQ(cf_future_result(fs[i], 0, NULL), CF_ECANCELLED);
    for (int i = 0; i < 20; i++)
        cf_future_unref(fs[i]);
    cf_future_unref(running);
    cf_executor_free(ex);
}

static void test_shutdown(void)
{
    /* wait=true waits for all; twice is harmless; submit after fails */
    cf_executor *ex = pool_new(2);
    cf_future *fs[10];
    for (int i = 0; i < 10; i++)
        fs[i] = cf_submit(ex, twice, V(i));
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    for (int i = 0; i < 10; i++) {
        CHECK(cf_future_done(fs[i]));
        CHECK_EQ(result_of(fs[i]), 2 * i);
        cf_future_unref(fs[i]);
    }
    CHECK_EQ(count_children(), 0); /* the workers exited */
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    CHECK(cf_submit(ex, twice, V(1)) == NULL);
    CHECK_EQ(cf_last_error(), CF_ESHUTDOWN);
    cf_executor_free(ex);

    /* wait=false returns at once and the work still completes;
       cancel_futures cancels only what has not started */
    ex = pool_new(1);
    cf_future *running = cf_submit(ex, gated, V(5));
    wait_started();
    for (int i = 0; i < 10; i++)
        fs[i] = cf_submit(ex, twice, V(i));
    CHECK_EQ(cf_executor_shutdown(ex, false, true), 0);
    int cancelled = 0;
    for (int i = 0; i < 10; i++)
        cancelled += cf_future_cancelled(fs[i]);
    CHECK(cancelled >= 8); /* at most a couple were handed to the worker already */
    open_gate(1);
    CHECK_EQ(result_of(running), 6);
    for (int i = 0; i < 10; i++) {
        int rc = cf_future_result(fs[i], CF_FOREVER, NULL);
        CHECK(rc == CF_ECANCELLED || (rc == 0 && !cf_future_cancelled(fs[i])));
        cf_future_unref(fs[i]);
    }
    cf_future_unref(running);
    cf_executor_free(ex);
}

static int init_value; /* set by the initializer, in each worker */

static int initializer(void *arg)
{
    init_value = (int)I(arg);
    return 0;
}

static int failing_initializer(void *arg)
{
    (void)arg;
    return 3;
}

static void *get_init_value(void *arg)
{
    (void)arg;
    report_started();
    pass_gate();
    return V(init_value);
}

static void test_initializer(void)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){
        .max_workers = 2, .initializer = initializer, .initarg = V(1234) });
    CHECK(ex != NULL);
    cf_future *a = cf_submit(ex, get_init_value, NULL);
    cf_future *b = cf_submit(ex, get_init_value, NULL);
    CHECK(wait_started() != wait_started()); /* two workers... */
    open_gate(2);
    CHECK_EQ(result_of(a), 1234); /* ...and the initializer ran in each */
    CHECK_EQ(result_of(b), 1234);
    CHECK_EQ(init_value, 0); /* not here */
    cf_future_unref(a);
    cf_future_unref(b);
    cf_executor_free(ex);

    ex = cf_process_pool_new(&(cf_process_pool_opts){ .initializer = failing_initializer });
    CHECK(ex != NULL);
    cf_future *f = cf_submit(ex, twice, V(1));
    CHECK(f != NULL);
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), CF_EBROKEN);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    CHECK(exc != NULL);
    CHECK_EQ(exc->code, CF_EBROKEN);
    CHECK(strstr(exc->message, "initializer") != NULL);
    cf_future_unref(f);
    CHECK(cf_submit(ex, twice, V(1)) == NULL);
    CHECK_EQ(cf_last_error(), CF_EBROKEN);
    cf_executor_free(ex);
}

static atomic_bool spin_stop;

static void *spinner(void *arg)
{
    (void)arg;
    while (!atomic_load(&spin_stop)) {
        void *p = malloc(64);
        free(p);
    }
    return NULL;
}

static void test_created_among_threads(void)
{
    pthread_t th[4];
    atomic_store(&spin_stop, false);
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&th[i], NULL, spinner, NULL) == 0);
    cf_executor *ex = pool_new(2);
    cf_future *fs[20];
    for (int i = 0; i < 20; i++)
        fs[i] = cf_submit(ex, twice, V(i));
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(result_of(fs[i]), 2 * i);
        cf_future_unref(fs[i]);
    }
    cf_executor_free(ex);
    atomic_store(&spin_stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
}

/* Round trips from several threads at once on one pool: each submit may
 * hand its task to an idle worker itself, or take another thread's queued
 * one along, or leave it to the manager; every result comes back to its own
 * future, and the pool counts each task once. */
#define RT_THREADS 4
#define RT_EACH 300

static void *round_trips(void *arg)
{
    cf_executor *ex = arg;
    intptr_t bad = 0;
    for (intptr_t i = 0; i < RT_EACH; i++) {
        cf_future *f = cf_submit(ex, twice, V(i));
        void *v = NULL;
        if (!f || cf_future_result(f, 30, &v) != 0 || I(v) != 2 * i)
            bad++;
        cf_future_unref(f);
    }
    return V(bad);
}

static void test_round_trips_from_threads(void)
{
    cf_executor *ex = pool_new(2);
    pthread_t th[RT_THREADS];
    for (int i = 0; i < RT_THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, round_trips, ex) == 0);
    for (int i = 0; i < RT_THREADS; i++) {
        void *bad = NULL;
        CHECK(pthread_join(th[i], &bad) == 0);
        CHECK_EQ(I(bad), 0);
    }
    cf_executor_stats st;
    CHECK_EQ(cf_executor_stats_get(ex, &st), 0);
    CHECK_EQ(st.completed, (unsigned long long)RT_THREADS * RT_EACH);
    CHECK_EQ(st.failed, 0);
    cf_executor_free(ex);
}

static void test_wait_and_as_completed(void)
{
    cf_executor *ex = pool_new(2);
    cf_executor *threads = cf_thread_pool_new(NULL);
    cf_future *fs[4] = {
        cf_submit(ex, twice, V(1)),
        cf_submit(threads, twice, V(2)),
        cf_submit(ex, raise_if_odd, V(3)),
        cf_submit(ex, twice, V(4)),
    };
    CHECK_EQ(cf_wait(fs, 4, CF_FOREVER, CF_ALL_COMPLETED), 4);
    cf_as_completed *it = cf_as_completed_new(fs, 4, CF_FOREVER);
    cf_future *f;
    int n = 0;
    while (cf_as_completed_next(it, &f) == 1)
        n++;
    CHECK_EQ(n, 4);
    cf_as_completed_free(it);
    for (int i = 0; i < 4; i++)
        cf_future_unref(fs[i]);
    cf_executor_free(threads);
    cf_executor_free(ex);
}

static void test_scoped(void)
{
    intptr_t r = 0;
    CF_WITH(cf_executor, ex, cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 })) {
        CHECK(ex != NULL);
        cf_autoptr(cf_future) f = cf_submit(ex, twice, V(50));
        r = result_of(f);
    }
    CHECK_EQ(r, 100);
    CHECK_EQ(count_children(), 0);
}

int main(void)
{
    make_pipes();
    RUN(test_submit_result);
    RUN(test_values_are_integers);
    RUN(test_copies_cross);
    RUN(test_large_copies_cross);
    RUN(test_raise);
    RUN(test_idle_worker_reused);
    RUN(test_never_more_than_max_workers);
    RUN(test_bad_options);
    RUN(test_map);
    RUN(test_too_big);
    RUN(test_result_too_big);
    RUN(test_callbacks);
    RUN(test_cancel_queued);
    RUN(test_shutdown);
    RUN(test_initializer);
    RUN(test_created_among_threads);
    RUN(test_round_trips_from_threads);
    RUN(test_wait_and_as_completed);
    RUN(test_scoped);
    return 0;
}
