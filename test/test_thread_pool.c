/* Thread pool executor: CONFORMANCE.md "Executor" for threads.
 * Tasks that must still be running block on a gate future the test opens;
 * nothing sleeps to synchronise. */
#include "check.h"

#include <cfutures.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define V(n) ((void *)(intptr_t)(n))

/* ------------------------------------------------------------------------ */
/* Helpers: a gate tasks wait on, a counter the test can wait for            */
/* ------------------------------------------------------------------------ */

static cf_future *gate;

static pthread_mutex_t started_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t started_cond = PTHREAD_COND_INITIALIZER;
static int started;

static void started_reset(void)
{
    pthread_mutex_lock(&started_lock);
    started = 0;
    pthread_mutex_unlock(&started_lock);
}

static void started_add(void)
{
    pthread_mutex_lock(&started_lock);
    started++;
    pthread_cond_broadcast(&started_cond);
    pthread_mutex_unlock(&started_lock);
}

static void started_wait(int n)
{
    pthread_mutex_lock(&started_lock);
    while (started < n)
        pthread_cond_wait(&started_cond, &started_lock);
    pthread_mutex_unlock(&started_lock);
}

static void gate_new(void)
{
    gate = cf_future_new();
    CHECK(gate);
    started_reset();
}

static void gate_open(void)
{
    CHECK_EQ(cf_future_set_result(gate, NULL), 0);
}

static void gate_free(void)
{
    cf_future_unref(gate);
    gate = NULL;
}

/* Says it started, then waits for the gate; returns its arg. */
static void *task_blocked(void *arg)
{
    started_add();
    CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    return arg;
}

static void *task_square(void *arg)
{
    intptr_t x = (intptr_t)arg;
    return V(x * x);
}

static void *task_tid(void *arg)
{
    (void)arg;
    return V(gettid());
}

/* The thread's id; blocks on the gate so that every such task holds a thread. */
static void *task_tid_blocked(void *arg)
{
    (void)arg;
    started_add();
    CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    return V(gettid());
}

static cf_executor *pool(int max_workers)
{
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = max_workers });
    CHECK(ex);
    return ex;
}

static void *result_of(cf_future *f)
{
    void *v = NULL;
    CHECK(f);
    CHECK_EQ(cf_future_result(f, CF_FOREVER, &v), 0);
    return v;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void test_submit_result(void)
{
    cf_executor *ex = cf_thread_pool_new(NULL);
    CHECK(ex);
    cf_future *f = cf_submit(ex, task_square, V(7));
    CHECK_EQ((intptr_t)result_of(f), 49);
    CHECK(cf_future_done(f));
    CHECK(!cf_future_cancelled(f));
    cf_future_unref(f);
    cf_executor_free(ex);
}

static atomic_int ran;

static void *task_count(void *arg)
{
    for (volatile int i = 0; i < 1000; i++)
        ;
    atomic_fetch_add(&ran, 1);
    return arg;
}

static void test_shutdown_wait_waits_for_all(void)
{
    enum { N = 200 };
    cf_executor *ex = pool(4);
    cf_future *fs[N];
    atomic_store(&ran, 0);
    for (int i = 0; i < N; i++)
        CHECK(fs[i] = cf_submit(ex, task_count, V(i)));
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    CHECK_EQ(atomic_load(&ran), N);
    for (int i = 0; i < N; i++) {
        CHECK(cf_future_done(fs[i]));
        void *v;
        CHECK_EQ(cf_future_result(fs[i], 0, &v), 0);
        CHECK_EQ((intptr_t)v, i);
        cf_future_unref(fs[i]);
    }
    cf_executor_free(ex);
}

static void test_shutdown_twice_and_submit_after(void)
{
    cf_executor *ex = pool(2);
    cf_future *f = cf_submit(ex, task_square, V(3));
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    CHECK_EQ(cf_executor_shutdown(ex, false, true), 0);
    CHECK_EQ((intptr_t)result_of(f), 9);
    cf_future_unref(f);

    CHECK(cf_submit(ex, task_square, V(3)) == NULL);
    CHECK_EQ(cf_last_error(), CF_ESHUTDOWN);
    int data = 5;
    CHECK(cf_submit_copy(ex, task_square, &data, sizeof data) == NULL);
    CHECK_EQ(cf_last_error(), CF_ESHUTDOWN);
    cf_executor_free(ex);

    /* Shut down before any thread started. */
    ex = pool(2);
    CHECK_EQ(cf_executor_shutdown(ex, true, true), 0);
    CHECK(cf_submit(ex, task_square, V(3)) == NULL);
    CHECK_EQ(cf_last_error(), CF_ESHUTDOWN);
    cf_executor_free(ex);
}

static void test_shutdown_cancel_futures(void)
{
    enum { WORKERS = 2, QUEUED = 6 };
    cf_executor *ex = pool(WORKERS);
    gate_new();
    cf_future *running[WORKERS], *queued[QUEUED];
    for (int i = 0; i < WORKERS; i++)
        CHECK(running[i] = cf_submit(ex, task_blocked, V(i)));
    started_wait(WORKERS); /* every worker is busy: the rest stays queued */
    atomic_store(&ran, 0);
    for (int i = 0; i < QUEUED; i++)
        CHECK(queued[i] = cf_submit(ex, task_count, V(i)));

    CHECK_EQ(cf_executor_shutdown(ex, false, true), 0);
    for (int i = 0; i < QUEUED; i++) {
        CHECK(cf_future_cancelled(queued[i]));
        CHECK_EQ(cf_future_result(queued[i], 0, NULL), CF_ECANCELLED);
    }
    for (int i = 0; i < WORKERS; i++) {
        CHECK(cf_future_running(running[i]));
        CHECK(!cf_future_cancel(running[i]));
    }
    gate_open();
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    for (int i = 0; i < WORKERS; i++) {
        CHECK_EQ((intptr_t)result_of(running[i]), i);
        cf_future_unref(running[i]);
    }
    for (int i = 0; i < QUEUED; i++)
        cf_future_unref(queued[i]);
    CHECK_EQ(atomic_load(&ran), 0);
    cf_executor_free(ex);
    gate_free();
}

static void test_shutdown_nowait(void)
{
    enum { N = 4 };
    cf_executor *ex = pool(1);
    gate_new();
    cf_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK(fs[i] = cf_submit(ex, task_blocked, V(i)));
    started_wait(1);
    /* Returns although every task is still blocked... */
    CHECK_EQ(cf_executor_shutdown(ex, false, false), 0);
    CHECK(!cf_future_done(fs[0]));
    CHECK(cf_submit(ex, task_square, V(1)) == NULL);
    CHECK_EQ(cf_last_error(), CF_ESHUTDOWN);
    /* ...and the work still completes. */
    gate_open();
    for (int i = 0; i < N; i++) {
        CHECK_EQ((intptr_t)result_of(fs[i]), i);
        cf_future_unref(fs[i]);
    }
    cf_executor_free(ex);
    gate_free();
}

static void test_bad_max_workers(void)
{
    CHECK(cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = -1 }) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
}

static int cpu_count(void)
{
    cpu_set_t set;
    CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

static int distinct(const intptr_t *ids, int n)
{
    int count = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= ids[j] == ids[i];
        count += !seen;
    }
    return count;
}

/* Default max_workers = min(32, ncpu + 4): that many tasks run at once, on
 * that many threads, and one more task runs on one of them. */
static void test_default_max_workers(void)
{
    int expected = cpu_count() + 4 < 32 ? cpu_count() + 4 : 32;
    cf_executor *ex = cf_thread_pool_new(NULL);
    CHECK(ex);
    gate_new();
    cf_future *fs[33];
    for (int i = 0; i <= expected; i++)
        CHECK(fs[i] = cf_submit(ex, task_tid_blocked, NULL));
    started_wait(expected); /* all of them at once: at least `expected` threads */
    gate_open();
    intptr_t ids[33];
    for (int i = 0; i <= expected; i++) {
        ids[i] = (intptr_t)result_of(fs[i]);
        cf_future_unref(fs[i]);
    }
    CHECK_EQ(distinct(ids, expected + 1), expected); /* and not one more */
    cf_executor_free(ex);
    gate_free();
}

static atomic_int running_now, running_max;

static void *task_concurrency(void *arg)
{
    int now = atomic_fetch_add(&running_now, 1) + 1;
    int max = atomic_load(&running_max);
    while (now > max && !atomic_compare_exchange_weak(&running_max, &max, now))
        ;
    for (int i = 0; i < 20; i++)
        sched_yield();
    atomic_fetch_sub(&running_now, 1);
    return arg;
}

static void test_never_more_than_max_workers(void)
{
    enum { N = 300, MAX = 3 };
    cf_executor *ex = pool(MAX);
    atomic_store(&running_now, 0);
    atomic_store(&running_max, 0);
    cf_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK(fs[i] = cf_submit(ex, task_concurrency, V(i)));
    for (int i = 0; i < N; i++) {
        CHECK_EQ((intptr_t)result_of(fs[i]), i);
        cf_future_unref(fs[i]);
    }
    CHECK(atomic_load(&running_max) >= 1);
    CHECK(atomic_load(&running_max) <= MAX);
    cf_executor_free(ex);
}

/* Idle workers park; a burst of blocking tasks, more than the workers, must
 * wake every one of them (a lost wake-up hangs here), and the rest waits. */
static void test_parked_workers_wake_up(void)
{
    enum { MAX = 8, N = 3 * MAX, ROUNDS = 20 };
    cf_executor *ex = pool(MAX);
    for (int round = 0; round < ROUNDS; round++) {
        gate_new();
        cf_future *fs[N];
        for (int i = 0; i < N; i++)
            CHECK(fs[i] = cf_submit(ex, task_blocked, V(i)));
        started_wait(MAX); /* MAX at once */
        gate_open();
        for (int i = 0; i < N; i++) {
            CHECK_EQ((intptr_t)result_of(fs[i]), i);
            cf_future_unref(fs[i]);
        }
        gate_free();
        /* Not synchronisation: time for idle workers to stop polling and
         * park, so that the next round goes through the wake-up path. */
        usleep((useconds_t)(round % 3) * 200);
    }
    cf_executor_free(ex);
}

static void test_idle_worker_reused(void)
{
    cf_executor *ex = cf_thread_pool_new(NULL);
    CHECK(ex);
    intptr_t ids[3];
    for (int i = 0; i < 3; i++) {
        cf_future *f = cf_submit(ex, task_tid, NULL);
        ids[i] = (intptr_t)result_of(f);
        cf_future_unref(f);
    }
    CHECK_EQ(ids[0], ids[1]);
    CHECK_EQ(ids[1], ids[2]);
    CHECK(ids[0] != gettid());
    cf_executor_free(ex);
}

static char names[8][16];

static void *task_name(void *arg)
{
    intptr_t i = (intptr_t)arg;
    CHECK_EQ(pthread_getname_np(pthread_self(), names[i], sizeof names[i]), 0);
    started_add();
    CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    return NULL;
}

/* Runs n tasks at once on a pool with `prefix` and checks their names. */
static void check_names(const char *prefix, const char *const *want, int n)
{
    cf_executor *ex = cf_thread_pool_new(
        &(cf_thread_pool_opts){ .max_workers = n, .thread_name_prefix = prefix });
    CHECK(ex);
    gate_new();
    cf_future *fs[8];
    for (int i = 0; i < n; i++)
        CHECK(fs[i] = cf_submit(ex, task_name, V(i)));
    started_wait(n);
    gate_open();
    for (int i = 0; i < n; i++) {
        result_of(fs[i]);
        cf_future_unref(fs[i]);
    }
    for (int w = 0; w < n; w++) { /* each wanted name exactly once */
        int found = 0;
        for (int i = 0; i < n; i++)
            found += strcmp(names[i], want[w]) == 0;
        if (found != 1)
            fprintf(stderr, "thread name %s found %d times\n", want[w], found);
        CHECK_EQ(found, 1);
    }
    cf_executor_free(ex);
    gate_free();
}

static void test_thread_names(void)
{
    check_names("worker", (const char *const[]){ "worker_0", "worker_1", "worker_2" }, 3);
    /* Linux keeps 15 bytes. */
    check_names("averyverylongprefix", (const char *const[]){ "averyverylongpr" }, 1);

    /* Default: ThreadPoolExecutor-<k>_<n>, truncated. */
    cf_executor *ex = cf_thread_pool_new(NULL);
    CHECK(ex);
    gate_new();
    cf_future *f = cf_submit(ex, task_name, V(0));
    started_wait(1);
    gate_open();
    result_of(f);
    cf_future_unref(f);
    CHECK_STR(names[0], "ThreadPoolExecu");
    cf_executor_free(ex);
    gate_free();

    /* An empty prefix is the default one too, as in Python. */
    ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .thread_name_prefix = "" });
    CHECK(ex);
    gate_new();
    f = cf_submit(ex, task_name, V(0));
    started_wait(1);
    gate_open();
    result_of(f);
    cf_future_unref(f);
    CHECK_STR(names[0], "ThreadPoolExecu");
    cf_executor_free(ex);
    gate_free();
}

static atomic_int initialized;
static _Thread_local int thread_initialized;

static int init_ok(void *arg)
{
    CHECK_EQ((intptr_t)arg, 1234);
    atomic_fetch_add(&initialized, 1);
    thread_initialized = 1;
    return 0;
}

static void *task_was_initialized(void *arg)
{
    (void)arg;
    started_add();
    CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    return V(thread_initialized);
}

static void test_initializer_in_every_worker(void)
{
    enum { N = 3 };
    atomic_store(&initialized, 0);
    cf_executor *ex = cf_thread_pool_new(
        &(cf_thread_pool_opts){ .max_workers = N, .initializer = init_ok, .initarg = V(1234) });
    CHECK(ex);
    gate_new();
    cf_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK(fs[i] = cf_submit(ex, task_was_initialized, NULL));
    started_wait(N);
    gate_open();
    for (int i = 0; i < N; i++) {
        CHECK_EQ((intptr_t)result_of(fs[i]), 1);
        cf_future_unref(fs[i]);
    }
    CHECK_EQ(atomic_load(&initialized), N);
    CHECK_EQ(thread_initialized, 0); /* not in the submitting thread */
    cf_executor_free(ex);
    gate_free();
}

static int init_fail(void *arg)
{
    (void)arg;
    return -1;
}

static void test_failing_initializer(void)
{
    enum { N = 5 };
    cf_executor *ex =
        cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1, .initializer = init_fail });
    CHECK(ex); /* creation does not fail */
    cf_future *fs[N];
    int submitted = 0;
    for (int i = 0; i < N; i++) {
        fs[submitted] = cf_submit(ex, task_square, V(i));
        if (fs[submitted])
            submitted++;
        else
            CHECK_EQ(cf_last_error(), CF_EBROKEN); /* the worker broke the pool already */
    }
    CHECK(submitted >= 1);
    for (int i = 0; i < submitted; i++) {
        CHECK_EQ(cf_future_result(fs[i], CF_FOREVER, NULL), CF_EBROKEN);
        const cf_exception *exc = NULL;
        CHECK_EQ(cf_future_exception(fs[i], 0, &exc), 0);
        CHECK(exc);
        CHECK_EQ(exc->code, CF_EBROKEN);
        CHECK(strstr(exc->message, "initializer"));
        cf_future_unref(fs[i]);
    }
    CHECK(cf_submit(ex, task_square, V(1)) == NULL);
    CHECK_EQ(cf_last_error(), CF_EBROKEN);
    cf_executor_free(ex);
}

static void *task_echo_bytes(void *arg)
{
    CHECK_EQ(cf_future_result(gate, CF_FOREVER, NULL), 0);
    return cf_return_copy(arg, strlen(arg) + 1);
}

static void *task_is_null(void *arg)
{
    return V(arg == NULL);
}

static void test_submit_copy_and_return_copy(void)
{
    cf_executor *ex = pool(2);
    gate_new();
    char buf[32] = "hello";
    cf_future *f = cf_submit_copy(ex, task_echo_bytes, buf, strlen(buf) + 1);
    CHECK(f);
    memset(buf, 'x', sizeof buf - 1); /* the caller reuses its buffer at once */
    gate_open();
    char *s = result_of(f);
    CHECK_STR(s, "hello");
    CHECK_EQ(cf_future_result_size(f), 6);
    cf_future_unref(f);

    f = cf_submit_copy(ex, task_is_null, NULL, 0);
    CHECK_EQ((intptr_t)result_of(f), 1);
    CHECK_EQ(cf_future_result_size(f), 0);
    cf_future_unref(f);

    f = cf_submit(ex, task_square, V(4)); /* a value result has size 0 */
    CHECK_EQ((intptr_t)result_of(f), 16);
    CHECK_EQ(cf_future_result_size(f), 0);
    cf_future_unref(f);
    cf_executor_free(ex);
    gate_free();
}

static void *task_raise(void *arg)
{
    return cf_raise(42, "bad item %d", (int)(intptr_t)arg);
}

static void test_raise(void)
{
    cf_executor *ex = pool(1);
    cf_future *f = cf_submit(ex, task_raise, V(7));
    CHECK(f);
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), CF_ETASK);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    CHECK(exc);
    CHECK_EQ(exc->code, 42);
    CHECK_STR(exc->message, "bad item 7");
    cf_future_unref(f);
    cf_executor_free(ex);
}

static void test_bad_input(void)
{
    cf_executor *ex = pool(1);
    CHECK(cf_submit(NULL, task_square, V(1)) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_submit(ex, NULL, V(1)) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_submit_copy(ex, task_square, NULL, 5) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_submit_copy(NULL, task_square, "x", 1) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_submit_copy(ex, NULL, "x", 1) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK_EQ(cf_executor_shutdown(NULL, true, false), CF_EINVAL);
    CHECK_EQ(cf_executor_terminate_workers(NULL), CF_EINVAL);
    CHECK_EQ(cf_executor_kill_workers(NULL), CF_EINVAL);
    CHECK_EQ(cf_executor_terminate_workers(ex), CF_ENOTSUP);
    CHECK_EQ(cf_executor_kill_workers(ex), CF_ENOTSUP);
    cf_executor_free(NULL);
    /* The pool still works. */
    cf_future *f = cf_submit(ex, task_square, V(5));
    CHECK_EQ((intptr_t)result_of(f), 25);
    cf_future_unref(f);
    cf_executor_free(ex);
}

/* A counting allocator: what the library still holds. */
static atomic_long live_allocs;

static void *count_malloc(size_t n)
{
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&live_allocs, 1);
    return p;
}

static void *count_realloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q && !p)
        atomic_fetch_add(&live_allocs, 1);
    return q;
}

static void count_free(void *p)
{
    if (p)
        atomic_fetch_sub(&live_allocs, 1);
    free(p);
}

static atomic_int callbacks;

static void on_done(cf_future *f, void *userdata)
{
    (void)userdata;
    CHECK(cf_future_done(f));
    atomic_fetch_add(&callbacks, 1);
}

/* The executor keeps no reference to a finished future, argument or result. */
/* Threads of this process, from /proc/self/task. */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    CHECK(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* pthread_join returns once the kernel clears the thread's tid, a moment
 * before it drops the thread from /proc/self/task: wait (at most 5 s) for the
 * kernel's bookkeeping, not for the pool. A thread the pool left running
 * stays listed, and the test fails. */
static int thread_count_settled(int expected)
{
    int n = thread_count();
    for (int i = 0; i < 5000 && n != expected; i++) {
        nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
        n = thread_count();
    }
    return n;
}

/* No worker thread outlives cf_executor_free: neither after a plain free,
 * nor after shutdown(wait=false) with tasks still running. */
static void test_no_thread_outlives_free(void)
{
    enum { N = 4 };
    int before = thread_count();
    for (int round = 0; round < 2; round++) {
        cf_executor *ex = pool(N);
        gate_new();
        started_reset();
        cf_future *fs[N];
        for (int i = 0; i < N; i++)
            CHECK(fs[i] = cf_submit(ex, task_blocked, V(i)));
        started_wait(N); /* N workers run */
        CHECK(thread_count() >= before + N);
        if (round == 1)
            CHECK_EQ(cf_executor_shutdown(ex, false, false), 0); /* returns at once */
        gate_open();
        cf_executor_free(ex);
        CHECK_EQ(thread_count_settled(before), before);
        for (int i = 0; i < N; i++) {
            CHECK(cf_future_done(fs[i])); /* free waited for the work */
            cf_future_unref(fs[i]);
        }
        gate_free();
    }
}

static void test_no_reference_kept(void)
{
    CHECK_EQ(cf_set_alloc_funcs(count_malloc, count_realloc, count_free), 0);
    cf_executor *ex = pool(1);
    cf_future *warm = cf_submit(ex, task_square, V(2)); /* start the worker */
    result_of(warm);
    cf_future_unref(warm);
    /* One more round trip: the worker has let go of `warm` once it ran this. */
    warm = cf_submit(ex, task_square, V(2));
    result_of(warm);
    cf_future_unref(warm);
    gate_new();
    long before = atomic_load(&live_allocs);

    atomic_store(&callbacks, 0);
    char data[64] = "some argument bytes";
    cf_future *f = cf_submit_copy(ex, task_echo_bytes, data, sizeof data);
    CHECK(f);
    CHECK_EQ(cf_future_add_done_callback(f, on_done, NULL), 0);
    cf_future_unref(f); /* only the executor holds it now */
    gate_open();
    /* With one worker, these run after f is done and released. */
    cf_future *g = cf_submit(ex, task_square, V(3));
    CHECK_EQ((intptr_t)result_of(g), 9);
    cf_future_unref(g);
    cf_future *h = cf_submit(ex, task_square, V(4));
    CHECK_EQ((intptr_t)result_of(h), 16);
    cf_future_unref(h);
    CHECK_EQ(atomic_load(&callbacks), 1);
    /* f, its argument, its result and g are gone; h may still be held by the
     * worker for a moment (it drops its reference after completing it). */
    long after = atomic_load(&live_allocs);
    CHECK(after - before <= 1);
    cf_executor_free(ex);
    gate_free();
    CHECK_EQ(atomic_load(&live_allocs), 0);
    CHECK_EQ(cf_set_alloc_funcs(NULL, NULL, NULL), 0);
}

int main(void)
{
    RUN(test_submit_result);
    RUN(test_shutdown_wait_waits_for_all);
    RUN(test_shutdown_twice_and_submit_after);
    RUN(test_shutdown_cancel_futures);
    RUN(test_shutdown_nowait);
    RUN(test_bad_max_workers);
    RUN(test_default_max_workers);
    RUN(test_never_more_than_max_workers);
    RUN(test_parked_workers_wake_up);
    RUN(test_idle_worker_reused);
    RUN(test_thread_names);
    RUN(test_initializer_in_every_worker);
    RUN(test_failing_initializer);
    RUN(test_submit_copy_and_return_copy);
    RUN(test_raise);
    RUN(test_bad_input);
    RUN(test_no_reference_kept);
    RUN(test_no_thread_outlives_free);
    fprintf(stderr, "test_thread_pool: all passed\n");
    return 0;
}
