/* cf_map / cf_map_source: CONFORMANCE.md "Executor" map lines, on threads. */
#include "check.h"

#include <cfutures.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define V(n) ((void *)(intptr_t)(n))
#define I(p) ((intptr_t)(p))

static cf_future *gate;
static atomic_int ran;

static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t count_cond = PTHREAD_COND_INITIALIZER;
static int started;

static void started_add(void)
{
    pthread_mutex_lock(&count_lock);
    started++;
    pthread_cond_broadcast(&count_cond);
    pthread_mutex_unlock(&count_lock);
}

static void started_wait(int n)
{
    pthread_mutex_lock(&count_lock);
    while (started < n)
        pthread_cond_wait(&count_cond, &count_lock);
    pthread_mutex_unlock(&count_lock);
}

static void started_reset(void)
{
    pthread_mutex_lock(&count_lock);
    started = 0;
    pthread_mutex_unlock(&count_lock);
}

static cf_executor *pool(int max_workers)
{
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = max_workers });
    CHECK(ex);
    return ex;
}

static void *task_square(void *arg)
{
    atomic_fetch_add(&ran, 1);
    intptr_t x = (intptr_t)arg;
    return V(x * x);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------------ */

static void check_equals_loop(cf_executor *ex, size_t n, const cf_map_opts *opts)
{
    void **args = calloc(n ? n : 1, sizeof *args);
    CHECK(args);
    for (size_t i = 0; i < n; i++)
        args[i] = V(i);
    cf_map_iter *it = cf_map(ex, task_square, args, n, opts);
    CHECK(it);
    void *v;
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ((intptr_t)v, (intptr_t)(i * i));
    }
    CHECK_EQ(cf_map_next(it, &v), 0);
    CHECK_EQ(cf_map_next(it, &v), 0);
    CHECK(cf_map_exception(it) == NULL);
    cf_map_free(it);
    free(args);
}

static void test_map_equals_loop(void)
{
    cf_executor *ex = pool(3);
    size_t sizes[] = { 1, 2, 10, 101 };
    size_t chunks[] = { 0, 1, 3, 1000 };
    for (size_t s = 0; s < 4; s++)
        for (size_t c = 0; c < 4; c++) {
            check_equals_loop(ex, sizes[s], &(cf_map_opts){ .chunksize = chunks[c] });
            check_equals_loop(ex, sizes[s],
                              &(cf_map_opts){ .chunksize = chunks[c], .buffersize = 2 });
        }
    check_equals_loop(ex, 50, NULL);
    cf_executor_free(ex);
}

static void test_empty(void)
{
    cf_executor *ex = pool(2);
    size_t chunks[] = { 0, 5 };
    for (int c = 0; c < 2; c++) {
        cf_map_iter *it =
            cf_map(ex, task_square, NULL, 0, &(cf_map_opts){ .chunksize = chunks[c] });
        CHECK(it);
        void *v;
        CHECK_EQ(cf_map_next(it, &v), 0);
        CHECK_EQ(cf_map_next(it, &v), 0);
        cf_map_free(it);
    }
    cf_executor_free(ex);
}

/* Item 3 raises; item 4 holds the only worker until the test saw the error,
 * so items 5.. are still queued and must be cancelled. */
static void *task_fail_at_3(void *arg)
{
    intptr_t i = (intptr_t)arg;
    atomic_fetch_add(&ran, 1);
    if (i == 3)
        return cf_raise(77, "item %d failed", (int)i);
    if (i == 4) {
        started_add();
        CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    }
    return V(i * 10);
}

static void check_error_in_item(size_t chunksize)
{
    enum { N = 12 };
    cf_executor *ex = pool(1);
    gate = cf_future_new();
    atomic_store(&ran, 0);
    started_reset();
    void *args[N];
    for (int i = 0; i < N; i++)
        args[i] = V(i);
    cf_map_iter *it = cf_map(ex, task_fail_at_3, args, N, &(cf_map_opts){ .chunksize = chunksize });
    CHECK(it);
    started_wait(1); /* item 4 holds the worker */
    void *v;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ((intptr_t)v, i * 10);
    }
    CHECK_EQ(cf_map_next(it, &v), CF_ETASK);
    const cf_exception *exc = cf_map_exception(it);
    CHECK(exc);
    CHECK_EQ(exc->code, 77);
    CHECK_STR(exc->message, "item 3 failed");
    CHECK_EQ(cf_map_next(it, &v), 0);
    CHECK_EQ(cf_map_next(it, &v), 0);
    CHECK(cf_map_exception(it) == exc); /* still valid */
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    /* Unchunked: 0..4 ran (4 was running), 5.. were cancelled. Chunks of 2:
     * {2,3} stopped at 3, {4,5} was running, {6,7}.. were cancelled. */
    CHECK_EQ(atomic_load(&ran), chunksize <= 1 ? 5 : 6);
    cf_map_free(it);
    cf_executor_free(ex);
    cf_future_unref(gate);
}

static void test_error_in_item(void)
{
    check_error_in_item(1);
    check_error_in_item(2); /* chunks {0,1} {2,3} {4,5}...: 3 fails inside a chunk */
}

static void *task_blocked(void *arg)
{
    started_add();
    CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    return arg;
}

static void *open_gate(void *arg)
{
    (void)arg;
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    return NULL;
}

/* cf_map_free with tasks still held on the gate: on a thread pool it waits
 * for them (they read args in place), so another thread lets them go. */
static void free_while_gate_opens(cf_map_iter *it)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, open_gate, NULL) == 0);
    cf_map_free(it);
    CHECK(pthread_join(t, NULL) == 0);
}

static void *task_sleep(void *arg)
{
    usleep((useconds_t)(intptr_t)arg); /* the work of this task is to take time */
    return NULL;
}

static void test_timeout_from_map_call(void)
{
    const double timeout = 0.4;
    cf_executor *ex = pool(2);
    gate = cf_future_new();
    started_reset();
    void *args[3] = { V(0), V(1), V(2) };
    double t0 = now_s();
    cf_map_iter *it = cf_map(ex, task_blocked, args, 3, &(cf_map_opts){ .timeout = timeout });
    CHECK(it);
    /* Let the deadline pass before the first cf_map_next. */
    cf_executor *other = pool(1);
    cf_future *slow = cf_submit(other, task_sleep, V(500000));
    CHECK_EQ(cf_future_result(slow, CF_FOREVER, NULL), 0);
    cf_future_unref(slow);
    cf_executor_free(other);
    CHECK(now_s() - t0 >= timeout);

    void *v;
    double t1 = now_s();
    CHECK_EQ(cf_map_next(it, &v), CF_ETIMEDOUT);
    /* Measured from cf_map: no fresh `timeout` per call. */
    CHECK(now_s() - t1 < timeout);
    CHECK(cf_map_exception(it) == NULL);
    CHECK_EQ(cf_map_next(it, &v), 0);
    free_while_gate_opens(it);
    cf_executor_free(ex);
    cf_future_unref(gate);

    /* A short timeout with every item blocked. */
    ex = pool(2);
    gate = cf_future_new();
    started_reset();
    t0 = now_s();
    it = cf_map(ex, task_blocked, args, 3, &(cf_map_opts){ .timeout = 0.05 });
    CHECK(it);
    CHECK_EQ(cf_map_next(it, &v), CF_ETIMEDOUT);
    CHECK(now_s() - t0 >= 0.05);
    CHECK_EQ(cf_map_next(it, &v), 0);
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    cf_map_free(it);
    cf_executor_free(ex);
    cf_future_unref(gate);
}

static void test_submits_before_first_next(void)
{
    enum { N = 4 };
    cf_executor *ex = pool(N);
    gate = cf_future_new();
    started_reset();
    void *args[N] = { V(0), V(1), V(2), V(3) };
    cf_map_iter *it = cf_map(ex, task_blocked, args, N, NULL);
    CHECK(it);
    started_wait(N); /* all running, and no cf_map_next yet */
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    void *v;
    for (int i = 0; i < N; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ((intptr_t)v, i);
    }
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);
    cf_executor_free(ex);
    cf_future_unref(gate);
}

/* A source counting what it handed out; unbounded when limit is 0. */
typedef struct counting_source {
    size_t handed, limit;
} counting_source;

static bool next_counting(void *userdata, void **arg)
{
    counting_source *s = userdata;
    if (s->limit && s->handed == s->limit)
        return false;
    *arg = V(s->handed++);
    return true;
}

static void check_buffersize(size_t b, size_t chunksize)
{
    cf_executor *ex = pool(4);
    counting_source src = { .limit = 60 };
    cf_map_iter *it = cf_map_source(ex, task_square, next_counting, &src,
                                    &(cf_map_opts){ .buffersize = b, .chunksize = chunksize });
    CHECK(it);
    size_t per_task = chunksize > 1 ? chunksize : 1;
    CHECK(src.handed <= b * per_task); /* b tasks submitted up front */
    void *v;
    for (size_t yielded = 0; yielded < src.limit; yielded++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ((intptr_t)v, (intptr_t)(yielded * yielded));
        /* in flight: handed out but not yielded; at most b + 1 tasks */
        CHECK(src.handed - (yielded + 1) <= (b + 1) * per_task);
    }
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);

    /* An unbounded source: take 100, then stop. */
    counting_source endless = { 0 };
    it = cf_map_source(ex, task_square, next_counting, &endless,
                       &(cf_map_opts){ .buffersize = b, .chunksize = chunksize });
    CHECK(it);
    for (size_t i = 0; i < 100; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ((intptr_t)v, (intptr_t)(i * i));
    }
    CHECK(endless.handed <= 100 + (b + 1) * per_task);
    cf_map_free(it);
    cf_executor_free(ex);
}

static void test_buffersize(void)
{
    check_buffersize(1, 0);
    check_buffersize(3, 0);
    check_buffersize(2, 4);
}

static void test_source_without_buffersize(void)
{
    cf_executor *ex = pool(2);
    counting_source src = { .limit = 25 };
    cf_map_iter *it =
        cf_map_source(ex, task_square, next_counting, &src, &(cf_map_opts){ .chunksize = 4 });
    CHECK(it);
    CHECK_EQ(src.handed, 25); /* drained at once */
    void *v;
    for (int i = 0; i < 25; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ((intptr_t)v, i * i);
    }
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);
    cf_executor_free(ex);
}

/* A submit that fails mid-way (the executor shut down) is that item's error. */
static void test_submit_failure_midway(void)
{
    cf_executor *ex = pool(2);
    void *args[10];
    for (int i = 0; i < 10; i++)
        args[i] = V(i);
    cf_map_iter *it = cf_map(ex, task_square, args, 10, &(cf_map_opts){ .buffersize = 2 });
    CHECK(it);
    void *v;
    CHECK_EQ(cf_map_next(it, &v), 1); /* item 2 submitted, 0 yielded */
    CHECK_EQ(cf_executor_shutdown(ex, false, false), 0);
    CHECK_EQ(cf_map_next(it, &v), 1); /* item 1 (item 3 failed to submit) */
    CHECK_EQ((intptr_t)v, 1);
    CHECK_EQ(cf_map_next(it, &v), 1); /* item 2 */
    CHECK_EQ((intptr_t)v, 4);
    CHECK_EQ(cf_map_next(it, &v), CF_ESHUTDOWN);
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);
    cf_executor_free(ex);
}

static void check_unordered(size_t chunksize, size_t buffersize)
{
    enum { N = 200 };
    cf_executor *ex = pool(4);
    void *args[N];
    for (int i = 0; i < N; i++)
        args[i] = V(i);
    cf_map_iter *it = cf_map(
        ex, task_square, args, N,
        &(cf_map_opts){ .unordered = true, .chunksize = chunksize, .buffersize = buffersize });
    CHECK(it);
    int seen[N] = { 0 };
    void *v;
    for (int i = 0; i < N; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        intptr_t x = (intptr_t)v;
        int root = 0;
        while ((intptr_t)root * root < x)
            root++;
        CHECK((intptr_t)root * root == x && root < N);
        seen[root]++;
    }
    CHECK_EQ(cf_map_next(it, &v), 0);
    for (int i = 0; i < N; i++)
        CHECK_EQ(seen[i], 1);
    cf_map_free(it);
    cf_executor_free(ex);
}

static void *task_first_waits(void *arg)
{
    if ((intptr_t)arg == 0)
        CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    return arg;
}

static void test_unordered(void)
{
    check_unordered(0, 0);
    check_unordered(7, 0);
    check_unordered(0, 5);

    /* Completion order: item 0 waits until item 1 came out. */
    cf_executor *ex = pool(2);
    gate = cf_future_new();
    void *args[2] = { V(0), V(1) };
    cf_map_iter *it = cf_map(ex, task_first_waits, args, 2, &(cf_map_opts){ .unordered = true });
    CHECK(it);
    void *v;
    CHECK_EQ(cf_map_next(it, &v), 1);
    CHECK_EQ((intptr_t)v, 1);
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    CHECK_EQ(cf_map_next(it, &v), 1);
    CHECK_EQ((intptr_t)v, 0);
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);

    /* Freed early, with a task still running and others queued. */
    cf_future_unref(gate);
    gate = cf_future_new();
    void *more[6] = { V(0), V(1), V(2), V(3), V(4), V(5) };
    it = cf_map(ex, task_first_waits, more, 6, &(cf_map_opts){ .unordered = true });
    CHECK(it);
    CHECK_EQ(cf_map_next(it, &v), 1);
    free_while_gate_opens(it);
    cf_executor_free(ex);
    cf_future_unref(gate);
}

typedef struct point {
    int x, y;
} point;

static void *task_point_sum(void *arg)
{
    const point *p = arg;
    return V(p->x + p->y);
}

static void *task_point_address(void *arg)
{
    return arg;
}

/* Thread pool: a task reads its item where the caller keeps it, with or
 * without chunks: with arg_size it receives args[i] itself. */
static void test_arg_size_in_place(void)
{
    enum { N = 20 };
    cf_executor *ex = pool(2);
    size_t chunks[] = { 0, 4 };
    for (int c = 0; c < 2; c++) {
        point pts[N];
        void *args[N];
        for (int i = 0; i < N; i++) {
            pts[i] = (point){ i, 100 * i };
            args[i] = &pts[i];
        }
        cf_map_opts opts = { .arg_size = sizeof(point), .chunksize = chunks[c] };
        cf_map_iter *it = cf_map(ex, task_point_sum, args, N, &opts);
        CHECK(it);
        void *v;
        for (int i = 0; i < N; i++) {
            CHECK_EQ(cf_map_next(it, &v), 1);
            CHECK_EQ((intptr_t)v, 101 * i);
        }
        CHECK_EQ(cf_map_next(it, &v), 0);
        cf_map_free(it);

        it = cf_map(ex, task_point_address, args, N, &opts);
        CHECK(it);
        for (int i = 0; i < N; i++) {
            CHECK_EQ(cf_map_next(it, &v), 1);
            CHECK(v == &pts[i]); /* not a copy */
        }
        cf_map_free(it);
    }
    cf_executor_free(ex);
}

/* A source may reuse its buffer: its bytes are copied when it yields them. */
typedef struct point_source {
    point buf;
    int next, n;
} point_source;

static bool next_point(void *userdata, void **arg)
{
    point_source *src = userdata;
    if (src->next == src->n)
        return false;
    src->buf = (point){ src->next, 100 * src->next };
    src->next++;
    *arg = &src->buf;
    return true;
}

static void test_arg_size_source_copies(void)
{
    cf_executor *ex = pool(2);
    size_t chunks[] = { 0, 3 };
    for (int c = 0; c < 2; c++) {
        point_source src = { .n = 10 };
        cf_map_iter *it =
            cf_map_source(ex, task_point_sum, next_point, &src,
                          &(cf_map_opts){ .arg_size = sizeof(point), .chunksize = chunks[c] });
        CHECK(it);
        void *v;
        for (int i = 0; i < 10; i++) {
            CHECK_EQ(cf_map_next(it, &v), 1);
            CHECK_EQ((intptr_t)v, 101 * i);
        }
        CHECK_EQ(cf_map_next(it, &v), 0);
        cf_map_free(it);
    }
    cf_executor_free(ex);
}

/* cf_map_next_batch: the rest of the current task's results at once, in
 * order, mixed with cf_map_next. */
static void test_next_batch(void)
{
    enum { N = 10 };
    cf_executor *ex = pool(2);
    void *args[N];
    for (int i = 0; i < N; i++)
        args[i] = V(i);
    cf_map_iter *it = cf_map(ex, task_square, args, N, &(cf_map_opts){ .chunksize = 4 });
    CHECK(it);
    void *const *values = NULL;
    size_t count = 0;
    void *v;
    CHECK_EQ(cf_map_next(it, &v), 1); /* item 0 */
    CHECK_EQ((intptr_t)v, 0);
    CHECK_EQ(cf_map_next_batch(it, &values, &count), 1); /* the rest of chunk 0 */
    CHECK_EQ(count, 3);
    for (size_t i = 0; i < count; i++)
        CHECK_EQ((intptr_t)values[i], (intptr_t)((i + 1) * (i + 1)));
    CHECK_EQ(cf_map_next_batch(it, &values, &count), 1); /* chunk 1 */
    CHECK_EQ(count, 4);
    for (size_t i = 0; i < count; i++)
        CHECK_EQ((intptr_t)values[i], (intptr_t)((i + 4) * (i + 4)));
    CHECK_EQ(cf_map_next(it, &v), 1); /* item 8 */
    CHECK_EQ((intptr_t)v, 64);
    CHECK_EQ(cf_map_next_batch(it, &values, &count), 1); /* item 9 */
    CHECK_EQ(count, 1);
    CHECK_EQ((intptr_t)values[0], 81);
    values = NULL;
    CHECK_EQ(cf_map_next_batch(it, &values, &count), 0);
    CHECK(values == NULL); /* untouched at the end */
    CHECK_EQ(cf_map_next_batch(it, &values, &count), 0);
    CHECK_EQ(cf_map_next_batch(NULL, &values, &count), CF_EINVAL);
    CHECK_EQ(cf_map_next_batch(it, NULL, &count), CF_EINVAL);
    CHECK_EQ(cf_map_next_batch(it, &values, NULL), CF_EINVAL);
    cf_map_free(it);

    /* One item per task: batches of one; unordered: every result once. */
    for (int unordered = 0; unordered < 2; unordered++) {
        it = cf_map(ex, task_square, args, N, &(cf_map_opts){ .unordered = unordered });
        CHECK(it);
        int seen[N] = { 0 };
        for (int i = 0; i < N; i++) {
            CHECK_EQ(cf_map_next_batch(it, &values, &count), 1);
            CHECK_EQ(count, 1);
            intptr_t r = (intptr_t)values[0];
            int k = 0;
            while (k < N && k * k != r)
                k++;
            CHECK(k < N);
            if (!unordered)
                CHECK_EQ(k, i);
            seen[k]++;
        }
        CHECK_EQ(cf_map_next_batch(it, &values, &count), 0);
        for (int k = 0; k < N; k++)
            CHECK_EQ(seen[k], 1);
        cf_map_free(it);
    }
    cf_executor_free(ex);
}

static void *task_string(void *arg)
{
    char buf[32];
    snprintf(buf, sizeof buf, "item-%d", (int)(intptr_t)arg);
    return cf_return_copy(buf, strlen(buf) + 1);
}

static void test_return_copy_through_map(void)
{
    enum { N = 30 };
    cf_executor *ex = pool(2);
    void *args[N];
    for (int i = 0; i < N; i++)
        args[i] = V(i);
    size_t chunks[] = { 0, 4 };
    for (int c = 0; c < 2; c++) {
        cf_map_iter *it =
            cf_map(ex, task_string, args, N, &(cf_map_opts){ .chunksize = chunks[c] });
        CHECK(it);
        void *v;
        for (int i = 0; i < N; i++) {
            CHECK_EQ(cf_map_next(it, &v), 1);
            char want[32];
            snprintf(want, sizeof want, "item-%d", i);
            CHECK_STR((const char *)v, want);
        }
        CHECK_EQ(cf_map_next(it, &v), 0);
        cf_map_free(it);
    }
    cf_executor_free(ex);
}

static void *task_fail_at_5(void *arg)
{
    intptr_t i = (intptr_t)arg;
    if (i == 5)
        return cf_raise(55, "item %d failed", (int)i);
    return V(i);
}

/* A chunk that fails midway: a batch of the items before the failure, then
 * the error, then the end. Copied results stay valid until the next call. */
static void test_next_batch_error_and_copies(void)
{
    enum { N = 9 };
    cf_executor *ex = pool(2);
    void *args[N];
    for (int i = 0; i < N; i++)
        args[i] = V(i);
    cf_map_iter *it = cf_map(ex, task_fail_at_5, args, N, &(cf_map_opts){ .chunksize = 4 });
    CHECK(it);
    void *const *values;
    size_t count;
    CHECK_EQ(cf_map_next_batch(it, &values, &count), 1);
    CHECK_EQ(count, 4);
    CHECK_EQ(cf_map_next_batch(it, &values, &count), 1); /* item 4, before the failure */
    CHECK_EQ(count, 1);
    CHECK_EQ((intptr_t)values[0], 4);
    CHECK_EQ(cf_map_next_batch(it, &values, &count), CF_ETASK);
    CHECK(cf_map_exception(it));
    CHECK_EQ(cf_map_exception(it)->code, 55);
    CHECK_STR(cf_map_exception(it)->message, "item 5 failed");
    CHECK_EQ(cf_map_next_batch(it, &values, &count), 0);
    cf_map_free(it);

    it = cf_map(ex, task_string, args, N, &(cf_map_opts){ .chunksize = 3 });
    CHECK(it);
    for (int i = 0; i < N; i += 3) {
        CHECK_EQ(cf_map_next_batch(it, &values, &count), 1);
        CHECK_EQ(count, 3);
        for (int k = 0; k < 3; k++) {
            char want[32];
            snprintf(want, sizeof want, "item-%d", i + k);
            CHECK_STR((const char *)values[k], want);
        }
    }
    CHECK_EQ(cf_map_next_batch(it, &values, &count), 0);
    cf_map_free(it);
    cf_executor_free(ex);
}

static atomic_int chunk_items_done;

static void *task_first_of_chunk_blocks(void *arg)
{
    if (I(arg) == 0) {
        started_add();
        CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    }
    if (I(arg) < 8) /* chunk 0 */
        atomic_fetch_add(&chunk_items_done, 1);
    return cf_return_copy(&arg, sizeof arg);
}

/* cf_map_free while a chunk runs (held at its first item): free returns only
 * once the running chunk has read its last item, so that the caller may free
 * args at once (ASan and TSan watch the heap array; the chunk writes its
 * results into memory it shares with the map). The gate may open before the
 * cancel, so later chunks may run or not. */
static void test_free_waits_for_running_tasks(void)
{
    enum { N = 40, CHUNK = 8 };
    for (size_t buffersize = 0; buffersize <= 2; buffersize += 2) {
        cf_executor *ex = pool(1);
        gate = cf_future_new();
        started_reset();
        atomic_store(&chunk_items_done, 0);
        void **args = malloc(N * sizeof *args);
        CHECK(args);
        for (int i = 0; i < N; i++)
            args[i] = V(i);
        cf_map_iter *it = cf_map(ex, task_first_of_chunk_blocks, args, N,
                                 &(cf_map_opts){ .chunksize = CHUNK, .buffersize = buffersize });
        CHECK(it);
        started_wait(1); /* chunk 0 is running, held at its first item */
        free_while_gate_opens(it);
        CHECK_EQ(atomic_load(&chunk_items_done), CHUNK); /* chunk 0 has ended */
        free(args);
        cf_executor_free(ex);
        cf_future_unref(gate);
    }
}

/* Item `blocked_item` waits until the consumer has taken item 0. */
static intptr_t blocked_item;
static cf_future *consumer_took_first;

static void *task_square_unless_blocked(void *arg)
{
    if (I(arg) == blocked_item)
        CHECK_EQ(cf_future_result(consumer_took_first, CF_FOREVER, NULL), 0);
    return V(I(arg) * I(arg));
}

/* A later task that waits for what the consumer does with an earlier value
 * never holds that value back (Python yields each result once it is done;
 * cf_map's batching of its own wake-ups is bounded in time). */
static void test_later_item_waits_for_consumer(void)
{
    for (size_t chunksize = 1; chunksize <= 4; chunksize += 3) {
        size_t n = 24 * chunksize;
        cf_executor *ex = pool(2);
        consumer_took_first = cf_future_new();
        CHECK(consumer_took_first);
        blocked_item = (intptr_t)(16 * chunksize);
        void **args = malloc(n * sizeof *args);
        CHECK(args);
        for (size_t i = 0; i < n; i++)
            args[i] = V(i);
        cf_map_iter *it = cf_map(ex, task_square_unless_blocked, args, n,
                                 &(cf_map_opts){ .chunksize = chunksize });
        CHECK(it);
        void *v;
        for (size_t i = 0; i < n; i++) {
            CHECK_EQ(cf_map_next(it, &v), 1);
            CHECK_EQ(I(v), (intptr_t)(i * i));
            if (i == 0)
                CHECK_EQ(cf_future_set_result(consumer_took_first, NULL), 0);
        }
        CHECK_EQ(cf_map_next(it, &v), 0);
        cf_map_free(it);
        free(args);
        cf_executor_free(ex);
        cf_future_unref(consumer_took_first);
    }
}

static bool no_items(void *userdata, void **arg)
{
    (void)userdata;
    (void)arg;
    return false;
}

static void test_bad_options(void)
{
    cf_executor *ex = pool(1);
    void *args[2] = { V(1), NULL };
    CHECK(cf_map(NULL, task_square, args, 1, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_map(ex, NULL, args, 1, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_map(ex, task_square, NULL, 1, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_map(ex, task_square, args, 1, &(cf_map_opts){ .timeout = -1 }) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    point p = { 1, 2 };
    args[0] = &p;
    CHECK(cf_map(ex, task_point_sum, args, 2, &(cf_map_opts){ .arg_size = sizeof p }) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_map_source(ex, task_square, NULL, NULL, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_map_source(NULL, task_square, no_items, NULL, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK_EQ(cf_map_next(NULL, NULL), CF_EINVAL);
    CHECK(cf_map_exception(NULL) == NULL);
    cf_map_free(NULL);

    /* A shut-down executor. */
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    CHECK(cf_map(ex, task_square, args, 1, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_ESHUTDOWN);
    cf_map_iter *it = cf_map(ex, task_square, NULL, 0, NULL); /* nothing to submit */
    CHECK(it);
    CHECK_EQ(cf_map_next(it, NULL), 0);
    cf_map_free(it);
    cf_executor_free(ex);
}

int main(void)
{
    RUN(test_map_equals_loop);
    RUN(test_empty);
    RUN(test_error_in_item);
    RUN(test_timeout_from_map_call);
    RUN(test_submits_before_first_next);
    RUN(test_buffersize);
    RUN(test_source_without_buffersize);
    RUN(test_submit_failure_midway);
    RUN(test_unordered);
    RUN(test_arg_size_in_place);
    RUN(test_arg_size_source_copies);
    RUN(test_return_copy_through_map);
    RUN(test_next_batch);
    RUN(test_next_batch_error_and_copies);
    RUN(test_free_waits_for_running_tasks);
    RUN(test_later_item_waits_for_consumer);
    RUN(test_bad_options);
    fprintf(stderr, "test_map: all passed\n");
    return 0;
}
