/* Nested parallelism (API.md): a task that waits for futures of its own
 * thread pool runs the pool's queued tasks meanwhile, newest first, so a
 * recursion that submits its halves and waits never deadlocks, even on one
 * worker: through cf_future_result, cf_wait, cf_as_completed_next,
 * cf_map_next (ordered and unordered) and cf_parallel_for inside a task. */
#include "check.h"

#include <cfutures.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define V(n) ((void *)(intptr_t)(n))
#define I(p) ((intptr_t)(p))

/* A hang fails the test instead of stalling it. */
#define WAIT 60.0

#define FIB_N 17
#define CUTOFF 6 /* below this, serial */

static cf_executor *ex; /* the pool every level submits to */

static intptr_t fib_serial(intptr_t n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

/* Each way of waiting: submit (or map) fib(n-1) and fib(n-2), wait, add. */
typedef enum { BY_RESULT, BY_WAIT, BY_AS_COMPLETED, BY_MAP, BY_MAP_UNORDERED, BY_LOOP } how;
static how mode;

static void *fib_task(void *arg);

static intptr_t two_results(cf_future *f[2])
{
    void *a = NULL, *b = NULL;
    CHECK_EQ(cf_future_result(f[0], WAIT, &a), 0);
    CHECK_EQ(cf_future_result(f[1], WAIT, &b), 0);
    return I(a) + I(b);
}

static intptr_t fib_by_futures(intptr_t n)
{
    cf_future *f[2] = { cf_submit(ex, fib_task, V(n - 1)), cf_submit(ex, fib_task, V(n - 2)) };
    CHECK(f[0] && f[1]);
    intptr_t sum = 0;
    if (mode == BY_RESULT) {
        sum = two_results(f);
    } else if (mode == BY_WAIT) {
        cf_future *fs[2] = { f[0], f[1] };
        CHECK_EQ(cf_wait(fs, 2, WAIT, CF_ALL_COMPLETED), 2);
        sum = two_results(f);
    } else {
        cf_as_completed *it = cf_as_completed_new(f, 2, WAIT);
        CHECK(it);
        cf_future *done;
        for (int i = 0; i < 2; i++) {
            CHECK_EQ(cf_as_completed_next(it, &done), 1);
            void *v = NULL;
            CHECK_EQ(cf_future_result(done, 0, &v), 0);
            sum += I(v);
        }
        CHECK_EQ(cf_as_completed_next(it, &done), 0);
        cf_as_completed_free(it);
    }
    cf_future_unref(f[0]);
    cf_future_unref(f[1]);
    return sum;
}

static intptr_t fib_by_map(intptr_t n, bool unordered)
{
    void *args[2] = { V(n - 1), V(n - 2) };
    cf_map_iter *it =
        cf_map(ex, fib_task, args, 2, &(cf_map_opts){ .timeout = WAIT, .unordered = unordered });
    CHECK(it);
    intptr_t sum = 0;
    void *v;
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        sum += I(v);
    }
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);
    return sum;
}

static intptr_t fib_by_loop(intptr_t n);

static intptr_t fib(intptr_t n)
{
    if (n < CUTOFF)
        return fib_serial(n);
    switch (mode) {
    case BY_MAP:
        return fib_by_map(n, false);
    case BY_MAP_UNORDERED:
        return fib_by_map(n, true);
    case BY_LOOP:
        return fib_by_loop(n);
    default:
        return fib_by_futures(n);
    }
}

static void *fib_task(void *arg)
{
    return V(fib(I(arg)));
}

/* A loop of two items, each one half of the recursion. */
static void fib_halves(void *ctx, const cf_range *r)
{
    intptr_t n = *(const intptr_t *)ctx;
    intptr_t *out = r->out;
    for (size_t i = r->begin; i < r->end; i++)
        out[i - r->begin] = fib(n - 1 - (intptr_t)i);
}

static intptr_t fib_by_loop(intptr_t n)
{
    intptr_t halves[2];
    CHECK_EQ(cf_parallel_for(
                 ex, 2, fib_halves, &n,
                 &(cf_parallel_opts){ .grain = 1, .out = halves, .out_size = sizeof *halves }),
             0);
    return halves[0] + halves[1];
}

static void check_fib(int workers, how m)
{
    ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = workers });
    CHECK(ex);
    mode = m;
    cf_future *top = cf_submit(ex, fib_task, V(FIB_N));
    CHECK(top);
    void *v = NULL;
    CHECK_EQ(cf_future_result(top, WAIT, &v), 0);
    CHECK_EQ(I(v), fib_serial(FIB_N));
    cf_future_unref(top);
    cf_executor_free(ex);
    ex = NULL;
}

static void test_fib(void)
{
    static const char *const names[] = { "cf_future_result",        "cf_wait",
                                         "cf_as_completed_next",    "cf_map_next",
                                         "cf_map_next (unordered)", "cf_parallel_for" };
    for (int workers = 1; workers <= 2; workers++)
        for (how m = BY_RESULT; m <= BY_LOOP; m++) {
            fprintf(stderr, "   %d worker(s), %s\n", workers, names[m]);
            check_fib(workers, m);
        }
}

/* ------------------------------------------------------------------------ */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int order[3], ran_count;

static void *record(void *arg)
{
    pthread_mutex_lock(&lock);
    order[ran_count++] = (int)I(arg);
    pthread_mutex_unlock(&lock);
    return arg;
}

/* One worker, busy with this task: waiting for the oldest of three queued
 * tasks runs them newest first. */
static void *submit_three_wait_oldest(void *arg)
{
    (void)arg;
    cf_future *f[3];
    for (int i = 0; i < 3; i++)
        CHECK((f[i] = cf_submit(ex, record, V(i))) != NULL);
    CHECK_EQ(cf_future_result(f[0], WAIT, NULL), 0);
    for (int i = 0; i < 3; i++)
        cf_future_unref(f[i]);
    return NULL;
}

static void test_newest_first(void)
{
    ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1 });
    CHECK(ex);
    ran_count = 0;
    cf_future *top = cf_submit(ex, submit_three_wait_oldest, NULL);
    CHECK(top);
    CHECK_EQ(cf_future_result(top, WAIT, NULL), 0);
    CHECK_EQ(ran_count, 3);
    CHECK_EQ(order[0], 2);
    CHECK_EQ(order[1], 1);
    CHECK_EQ(order[2], 0);
    cf_future_unref(top);
    cf_executor_free(ex);
    ex = NULL;
}

/* ------------------------------------------------------------------------ */

static cf_future *gate, *started, *waiting;

static void *blocked_task(void *arg)
{
    cf_future_set_result(started, NULL);
    CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    return arg;
}

static void *identity(void *arg)
{
    return arg;
}

static void *wait_for_blocked(void *arg)
{
    cf_future *b = arg;
    cf_future_set_result(waiting, NULL);
    void *v = NULL;
    CHECK_EQ(cf_future_result(b, WAIT, &v), 0);
    return v;
}

/* Two workers: one holds a task on a gate, the other waits for that task
 * (with nothing queued it parks). Work submitted now can only run on the
 * waiting one: the submit wakes it, and it runs the work before the gate
 * opens. A wait with a timeout still times out when nothing comes. */
static void test_parked_waiter_runs_new_work(void)
{
    ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 });
    gate = cf_future_new();
    started = cf_future_new();
    waiting = cf_future_new();
    CHECK(ex && gate && started && waiting);
    cf_future *b = cf_submit(ex, blocked_task, V(7));
    CHECK(b);
    CHECK_EQ(cf_future_result(started, WAIT, NULL), 0);
    cf_future *a = cf_submit(ex, wait_for_blocked, b);
    CHECK(a);
    CHECK_EQ(cf_future_result(waiting, WAIT, NULL), 0);
    for (int i = 0; i < 20; i++) {
        cf_future *c = cf_submit(ex, identity, V(i));
        CHECK(c);
        void *v = NULL;
        CHECK_EQ(cf_future_result(c, WAIT, &v), 0);
        CHECK_EQ(I(v), i);
        cf_future_unref(c);
    }
    CHECK(!cf_future_done(b));
    CHECK(!cf_future_done(a));
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    void *v = NULL;
    CHECK_EQ(cf_future_result(a, WAIT, &v), 0);
    CHECK_EQ(I(v), 7);
    cf_future_unref(a);
    cf_future_unref(b);
    cf_future_unref(gate);
    cf_future_unref(started);
    cf_future_unref(waiting);
    cf_executor_free(ex);
    ex = NULL;
}

static void *wait_with_timeout(void *arg)
{
    cf_future *b = arg;
    return V(cf_future_result(b, 0.05, NULL));
}

static void test_timeout_while_helping(void)
{
    ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 });
    gate = cf_future_new();
    started = cf_future_new();
    CHECK(ex && gate && started);
    cf_future *b = cf_submit(ex, blocked_task, V(1));
    CHECK(b);
    CHECK_EQ(cf_future_result(started, WAIT, NULL), 0);
    cf_future *a = cf_submit(ex, wait_with_timeout, b);
    CHECK(a);
    void *v = NULL;
    CHECK_EQ(cf_future_result(a, WAIT, &v), 0);
    CHECK_EQ(I(v), CF_ETIMEDOUT);
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    CHECK_EQ(cf_future_result(b, WAIT, NULL), 0);
    cf_future_unref(a);
    cf_future_unref(b);
    cf_future_unref(gate);
    cf_future_unref(started);
    cf_executor_free(ex);
    ex = NULL;
}

/* ------------------------------------------------------------------------ */
/* Tasks that submit tasks and do not wait for them: the tasks go to the     */
/* submitting worker's own queue; other workers take them from there.        */
/* ------------------------------------------------------------------------ */

#define CHILDREN 10
static cf_future *children[CHILDREN];
static cf_future *children_submitted;
static atomic_int children_ran;
static int after_shutdown_rc;

static void *child(void *arg)
{
    atomic_fetch_add(&children_ran, 1);
    return arg;
}

/* Submit the children, say so, then hold this worker on the gate (a future
 * of no pool: this wait only blocks). */
static void *parent_then_block(void *arg)
{
    (void)arg;
    for (int i = 0; i < CHILDREN; i++)
        CHECK((children[i] = cf_submit(ex, child, V(i))) != NULL);
    cf_future_set_result(children_submitted, NULL);
    CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    cf_future *late = cf_submit(ex, child, V(-1));
    after_shutdown_rc = late ? 0 : cf_last_error();
    cf_future_unref(late);
    return NULL;
}

static pthread_cond_t arrived_cond = PTHREAD_COND_INITIALIZER;
static int arrived, expected;

/* Returns once `expected` of these run at once: each on its own worker. */
static void *meet(void *arg)
{
    pthread_mutex_lock(&lock);
    arrived++;
    pthread_cond_broadcast(&arrived_cond);
    while (arrived < expected)
        pthread_cond_wait(&arrived_cond, &lock);
    pthread_mutex_unlock(&lock);
    return arg;
}

static void start_parent(int workers)
{
    ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = workers });
    gate = cf_future_new();
    children_submitted = cf_future_new();
    CHECK(ex && gate && children_submitted);
    atomic_store(&children_ran, 0);
    /* Every worker started first, so that the children go to the parent's
     * own queue (before that, submits go through the shared one). */
    cf_future *warm[2];
    arrived = 0;
    expected = workers;
    for (int i = 0; i < workers; i++)
        CHECK((warm[i] = cf_submit(ex, meet, V(i))) != NULL);
    for (int i = 0; i < workers; i++) {
        CHECK_EQ(cf_future_result(warm[i], WAIT, NULL), 0);
        cf_future_unref(warm[i]);
    }
}

static void finish_parent(cf_future *parent)
{
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
    CHECK_EQ(cf_future_result(parent, WAIT, NULL), 0);
    cf_future_unref(parent);
    for (int i = 0; i < CHILDREN; i++)
        cf_future_unref(children[i]);
    cf_executor_free(ex);
    ex = NULL;
    cf_future_unref(gate);
    cf_future_unref(children_submitted);
}

/* The parent's worker is held: the other worker takes every child. */
static void test_children_taken_by_another_worker(void)
{
    start_parent(2);
    cf_future *parent = cf_submit(ex, parent_then_block, NULL);
    CHECK(parent);
    CHECK_EQ(cf_future_result(children_submitted, WAIT, NULL), 0);
    for (int i = 0; i < CHILDREN; i++) {
        void *v = NULL;
        CHECK_EQ(cf_future_result(children[i], WAIT, &v), 0);
        CHECK_EQ(I(v), i);
    }
    CHECK(!cf_future_done(parent));
    finish_parent(parent);
}

/* shutdown(cancel_futures) cancels the children not started, wherever they
 * are queued; a submit from a task after shutdown fails. One worker, held by
 * the parent: no child can have started. */
static void test_shutdown_cancels_children(void)
{
    start_parent(1);
    cf_future *parent = cf_submit(ex, parent_then_block, NULL);
    CHECK(parent);
    CHECK_EQ(cf_future_result(children_submitted, WAIT, NULL), 0);
    CHECK_EQ(cf_executor_shutdown(ex, false, true), 0);
    for (int i = 0; i < CHILDREN; i++)
        CHECK(cf_future_cancelled(children[i]));
    after_shutdown_rc = 0;
    finish_parent(parent);
    CHECK_EQ(atomic_load(&children_ran), 0);
    CHECK_EQ(after_shutdown_rc, CF_ESHUTDOWN);
}

/* shutdown(wait) without cancel: every child queued still runs. */
static void test_shutdown_runs_children(void)
{
    start_parent(1);
    cf_future *parent = cf_submit(ex, parent_then_block, NULL);
    CHECK(parent);
    CHECK_EQ(cf_future_result(children_submitted, WAIT, NULL), 0);
    CHECK_EQ(cf_executor_shutdown(ex, false, false), 0);
    after_shutdown_rc = 0;
    finish_parent(parent); /* cf_executor_free waits for the children */
    CHECK_EQ(atomic_load(&children_ran), CHILDREN);
    CHECK_EQ(after_shutdown_rc, CF_ESHUTDOWN);
}

int main(void)
{
    RUN(test_fib);
    RUN(test_newest_first);
    RUN(test_parked_waiter_runs_new_work);
    RUN(test_timeout_while_helping);
    RUN(test_children_taken_by_another_worker);
    RUN(test_shutdown_cancels_children);
    RUN(test_shutdown_runs_children);
    fprintf(stderr, "test_nested: all passed\n");
    return 0;
}
