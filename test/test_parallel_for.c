/* cf_parallel_for: every item once, in place, in chunks of the grain; the
 * caller takes part (alone when no worker is free), workers too; a chunk
 * that raises stops the loop; bad arguments. (Process pools:
 * test_process_parallel_for.c.) */
#include "check.h"

#include <cfutures.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

static cf_executor *pool(int max_workers)
{
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = max_workers });
    CHECK(ex);
    return ex;
}

/* ------------------------------------------------------------------------ */

typedef struct visit_ctx {
    size_t n, grain;
    const int *in;
    long long *out;
    unsigned char *visits; /* one writer per item: a chunk overlap is a race */
    atomic_int chunks;
    atomic_int bad;
} visit_ctx;

static void visit(void *ctx, const cf_range *r)
{
    visit_ctx *c = ctx;
    atomic_fetch_add(&c->chunks, 1);
    if (r->begin >= r->end || r->end > c->n || r->in != c->in + r->begin ||
        r->out != c->out + r->begin || (r->end - r->begin != c->grain && r->end != c->n) ||
        r->begin % c->grain != 0)
        atomic_fetch_add(&c->bad, 1);
    const int *in = r->in;
    long long *out = r->out;
    for (size_t i = 0; i < r->end - r->begin; i++) {
        out[i] = 3LL * in[i];
        c->visits[r->begin + i]++;
    }
}

static void check_visits(cf_executor *ex, size_t n, size_t grain)
{
    int *in = malloc((n ? n : 1) * sizeof *in);
    long long *out = malloc((n ? n : 1) * sizeof *out);
    visit_ctx c = { .n = n, .in = in, .out = out, .visits = calloc(n ? n : 1, 1) };
    CHECK(in && out && c.visits);
    for (size_t i = 0; i < n; i++) {
        in[i] = (int)i - 5;
        out[i] = -1;
    }
    cf_parallel_opts opts = {
        .grain = grain, .in = in, .in_size = sizeof *in, .out = out, .out_size = sizeof *out
    };
    c.grain = grain;
    if (grain == 0) /* chosen: learn it from the first range */
        c.grain = n;
    int rc = cf_parallel_for(ex, n, visit, &c, &opts);
    CHECK_EQ(rc, 0);
    if (grain == 0) {
        CHECK(atomic_load(&c.chunks) >= 1 || n == 0);
    } else {
        CHECK_EQ(atomic_load(&c.bad), 0);
        CHECK_EQ(atomic_load(&c.chunks), (n + grain - 1) / grain);
    }
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(c.visits[i], 1);
        CHECK_EQ(out[i], 3LL * ((long long)i - 5));
    }
    free(in);
    free(out);
    free(c.visits);
}

/* Each item exactly once, with the chunks cut at multiples of the grain. */
static void test_every_item_once(void)
{
    cf_executor *ex = pool(2);
    size_t sizes[] = { 0, 1, 7, 1000, 100003 };
    size_t grains[] = { 0, 1, 7, 1000, 200000 };
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t g = 0; g < sizeof grains / sizeof *grains; g++)
            check_visits(ex, sizes[s], grains[g]);
    cf_executor_free(ex);

    ex = pool(1);
    check_visits(ex, 5000, 10);
    cf_executor_free(ex);
    ex = pool(8);
    check_visits(ex, 5000, 3);
    cf_executor_free(ex);
}

/* ------------------------------------------------------------------------ */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

typedef struct thread_ctx {
    pthread_t caller;
    atomic_int on_caller, elsewhere;
    bool wait_for_other; /* the first chunk waits until another thread runs one */
    atomic_bool first_taken;
    bool other_seen;
} thread_ctx;

static void record_thread(void *ctx, const cf_range *r)
{
    (void)r;
    thread_ctx *c = ctx;
    bool mine = pthread_equal(pthread_self(), c->caller);
    atomic_fetch_add(mine ? &c->on_caller : &c->elsewhere, 1);
    bool first = !atomic_exchange(&c->first_taken, true);
    pthread_mutex_lock(&lock);
    if (!first)
        c->other_seen = true;
    pthread_cond_broadcast(&cond);
    if (first && c->wait_for_other) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 30; /* a hang fails instead of stalling */
        while (!c->other_seen)
            CHECK(pthread_cond_timedwait(&cond, &lock, &deadline) == 0);
    }
    pthread_mutex_unlock(&lock);
}

static void *task_wait_gate(void *arg)
{
    CHECK_EQ(cf_future_result(arg, CF_FOREVER, NULL), 0);
    return NULL;
}

/* No worker free (the only one waits on a gate): the caller runs every
 * chunk itself, and the call returns. */
static void test_caller_alone(void)
{
    cf_executor *ex = pool(1);
    cf_future *gate = cf_future_new();
    cf_future *blocker = cf_submit(ex, task_wait_gate, gate);
    CHECK(gate && blocker);
    thread_ctx c = { .caller = pthread_self() };
    CHECK_EQ(cf_parallel_for(ex, 100, record_thread, &c, &(cf_parallel_opts){ .grain = 1 }), 0);
    CHECK_EQ(atomic_load(&c.on_caller), 100);
    CHECK_EQ(atomic_load(&c.elsewhere), 0);
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    CHECK_EQ(cf_future_result(blocker, CF_FOREVER, NULL), 0);
    cf_future_unref(blocker);
    cf_future_unref(gate);
    cf_executor_free(ex);
}

/* With a free worker and a second CPU, two threads run chunks at once: the
 * first chunk does not return before another thread has run one. */
static void test_workers_take_part(void)
{
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        fprintf(stderr, "   skipped: one CPU (the caller runs every chunk)\n");
        return;
    }
    cf_executor *ex = pool(2);
    thread_ctx c = { .caller = pthread_self(), .wait_for_other = true };
    CHECK_EQ(cf_parallel_for(ex, 50, record_thread, &c, &(cf_parallel_opts){ .grain = 1 }), 0);
    CHECK_EQ(atomic_load(&c.on_caller) + atomic_load(&c.elsewhere), 50);
    CHECK(atomic_load(&c.elsewhere) >= 1);
    cf_executor_free(ex);
}

/* ------------------------------------------------------------------------ */

static atomic_int ran;

static void raise_at_3(void *ctx, const cf_range *r)
{
    (void)ctx;
    atomic_fetch_add(&ran, 1);
    if (r->begin == 3)
        cf_raise(42, "chunk %zu failed", r->begin);
}

static void raise_no_message(void *ctx, const cf_range *r)
{
    (void)ctx;
    (void)r;
    cf_raise(CF_ETIMEDOUT, NULL);
}

static void copy_and_drop(void *ctx, const cf_range *r)
{
    (void)ctx;
    cf_return_copy(r, sizeof *r); /* dropped: a chunk has no result */
}

/* A chunk that raises: CF_ETASK, its code and message as the last error, and
 * the chunks after it not started (here the caller runs them in order: the
 * only worker is held). */
static void test_failure(void)
{
    cf_executor *ex = pool(1);
    cf_future *gate = cf_future_new();
    cf_future *blocker = cf_submit(ex, task_wait_gate, gate);
    CHECK(gate && blocker);
    atomic_store(&ran, 0);
    CHECK_EQ(cf_parallel_for(ex, 10, raise_at_3, NULL, &(cf_parallel_opts){ .grain = 1 }),
             CF_ETASK);
    CHECK_EQ(cf_last_error(), 42);
    CHECK_STR(cf_last_error_message(), "chunk 3 failed");
    CHECK_EQ(atomic_load(&ran), 4);

    CHECK_EQ(cf_parallel_for(ex, 4, raise_no_message, NULL, NULL), CF_ETASK);
    CHECK_EQ(cf_last_error(), CF_ETIMEDOUT);
    CHECK_STR(cf_last_error_message(), cf_strerror(CF_ETIMEDOUT));
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    CHECK_EQ(cf_future_result(blocker, CF_FOREVER, NULL), 0);

    /* With workers free: still CF_ETASK and the chunk's exception. */
    atomic_store(&ran, 0);
    CHECK_EQ(cf_parallel_for(ex, 1000, raise_at_3, NULL, &(cf_parallel_opts){ .grain = 1 }),
             CF_ETASK);
    CHECK_EQ(cf_last_error(), 42);
    CHECK(atomic_load(&ran) >= 4);

    /* cf_return_copy inside a chunk: dropped, not leaked. */
    CHECK_EQ(cf_parallel_for(ex, 100, copy_and_drop, NULL, &(cf_parallel_opts){ .grain = 3 }), 0);
    /* After the loop, cf_raise is outside a task again: it only sets the error. */
    CHECK(cf_raise(7, "outside") == NULL);
    CHECK_EQ(cf_last_error(), 7);
    cf_future_unref(blocker);
    cf_future_unref(gate);
    cf_executor_free(ex);
}

/* ------------------------------------------------------------------------ */

static atomic_int called;
static void count_calls(void *ctx, const cf_range *r)
{
    (void)ctx;
    (void)r;
    atomic_fetch_add(&called, 1);
}

static void test_bad_arguments(void)
{
    cf_executor *ex = pool(2);
    int a[4] = { 0 };
    CHECK_EQ(cf_parallel_for(NULL, 4, count_calls, NULL, NULL), CF_EINVAL);
    CHECK_EQ(cf_parallel_for(ex, 4, NULL, NULL, NULL), CF_EINVAL);
    CHECK_EQ(cf_parallel_for(ex, 4, count_calls, NULL, &(cf_parallel_opts){ .in = a }), CF_EINVAL);
    CHECK_EQ(cf_parallel_for(ex, 4, count_calls, NULL, &(cf_parallel_opts){ .in_size = 4 }),
             CF_EINVAL);
    CHECK_EQ(cf_parallel_for(ex, 4, count_calls, NULL, &(cf_parallel_opts){ .out = a }), CF_EINVAL);
    CHECK_EQ(cf_parallel_for(ex, 4, count_calls, NULL, &(cf_parallel_opts){ .out_size = 4 }),
             CF_EINVAL);
    CHECK_EQ(cf_parallel_for(ex, SIZE_MAX / 4, count_calls, NULL,
                             &(cf_parallel_opts){ .out = a, .out_size = 8 }),
             CF_EINVAL);
    CHECK_EQ(cf_parallel_for(ex, SIZE_MAX, count_calls, NULL, NULL), CF_EINVAL);
    CHECK_EQ(atomic_load(&called), 0);

    /* n = 0: nothing runs. */
    CHECK_EQ(cf_parallel_for(ex, 0, count_calls, NULL, NULL), 0);
    CHECK_EQ(atomic_load(&called), 0);
    /* Defaults: opts NULL. */
    CHECK_EQ(cf_parallel_for(ex, 3, count_calls, NULL, NULL), 0);
    CHECK(atomic_load(&called) >= 1);

    /* After shutdown: CF_ESHUTDOWN and nothing runs. */
    atomic_store(&called, 0);
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    CHECK_EQ(cf_parallel_for(ex, 100, count_calls, NULL, NULL), CF_ESHUTDOWN);
    CHECK_EQ(cf_parallel_for(ex, 1, count_calls, NULL, NULL), CF_ESHUTDOWN);
    CHECK_EQ(atomic_load(&called), 0);
    cf_executor_free(ex);
}

static void *task_identity(void *arg)
{
    return arg;
}

static int failing_initializer(void *arg)
{
    (void)arg;
    return 1;
}

/* A broken pool: CF_EBROKEN once it knows (the first submit breaks it). */
static void test_broken_pool(void)
{
    cf_executor *ex = cf_thread_pool_new(
        &(cf_thread_pool_opts){ .max_workers = 1, .initializer = failing_initializer });
    CHECK(ex);
    cf_future *f = cf_submit(ex, task_identity, NULL);
    CHECK(f);
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), CF_EBROKEN);
    cf_future_unref(f);
    atomic_store(&called, 0);
    CHECK_EQ(cf_parallel_for(ex, 10, count_calls, NULL, NULL), CF_EBROKEN);
    CHECK_EQ(atomic_load(&called), 0);
    cf_executor_free(ex);
}

int main(void)
{
    RUN(test_every_item_once);
    RUN(test_caller_alone);
    RUN(test_workers_take_part);
    RUN(test_failure);
    RUN(test_bad_arguments);
    RUN(test_broken_pool);
    fprintf(stderr, "test_parallel_for: all passed\n");
    return 0;
}
