/* main_demo.c: a one-screen tour of cfutures.
 *
 *   1. submit and result        f = ex.submit(fn, x); f.result()
 *   2. map                      list(ex.map(fn, xs))
 *   3. as_completed             for f in as_completed(fs): ...
 *   4. a crash, contained       a worker process dies; only its task fails
 *   5. threads vs processes     CPU-bound work: in C both scale (no GIL)
 *
 * Each part prints the Python line it ports. The other examples take each
 * part further; see the README's "Examples" table.
 *
 * Run: ./main_demo          about two seconds
 *      ./main_demo --quick  less CPU work, for the tests
 *
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h> /* uv_hrtime, uv_sleep, uv_available_parallelism */

/* ---- the tasks: one signature, void *fn(void *), for every backend ----- */

static void *square(void *arg)
{
    intptr_t x = (intptr_t)arg;
    return (void *)(x * x);
}

static void *sleep_ms(void *arg) /* returns how long it slept */
{
    uv_sleep((unsigned)(intptr_t)arg);
    return arg;
}

static void *crash_if_13(void *arg)
{
    if ((intptr_t)arg == 13)
        raise(SIGSEGV); /* kills the worker process that runs it */
    return arg;
}

static void *cpu_bound_func(void *arg) /* the triple loop of seed 004 */
{
    uint64_t num = (uint64_t)(uintptr_t)arg, total = 1;
    for (uint64_t i = 1; i < num; i++)
        for (uint64_t j = 1; j < num; j++)
            for (uint64_t k = 1; k < num; k++)
                total *= i * j * k;
    return (void *)(uintptr_t)total;
}

/* ---- helpers ------------------------------------------------------------ */

static int failures;

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "unexpected: %s\n", what);
        failures++;
    }
}

/* results = list(ex.map(fn, args)); returns the seconds it took, or -1. */
static double timed_map(cf_executor *ex, cf_fn fn, void *const *args, size_t n, void **results)
{
    uint64_t t0 = uv_hrtime();
    cf_map_iter *it = cf_map(ex, fn, args, n, NULL);
    size_t i = 0;
    while (it && i < n && cf_map_next(it, &results[i]) == 1)
        i++;
    cf_map_free(it);
    return i == n ? (double)(uv_hrtime() - t0) / 1e9 : -1.0;
}

/* ---- the tour ----------------------------------------------------------- */

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int ncpu = (int)uv_available_parallelism();

    cf_executor *threads = cf_thread_pool_new(NULL); /* ThreadPoolExecutor() */
    if (!threads) {
        fprintf(stderr, "thread pool: %s\n", cf_strerror(cf_last_error()));
        return 1;
    }

    printf("1. f = ex.submit(square, 7); f.result()\n");
    cf_future *f = cf_submit(threads, square, (void *)7);
    void *value = NULL;
    int rc = cf_future_result(f, CF_FOREVER, &value);
    cf_future_unref(f);
    printf("   -> %ld\n", (long)(intptr_t)value);
    expect(rc == 0 && (intptr_t)value == 49, "square(7) == 49");

    printf("2. list(ex.map(square, range(10)))\n   ->");
    void *args[10], *squares[10];
    for (intptr_t i = 0; i < 10; i++)
        args[i] = (void *)i;
    expect(timed_map(threads, square, args, 10, squares) >= 0, "map succeeds");
    for (int i = 0; i < 10; i++) {
        printf(" %ld", (long)(intptr_t)squares[i]);
        expect((intptr_t)squares[i] == (intptr_t)i * i, "map yields in input order");
    }
    printf("\n");

    printf("3. for f in as_completed([ex.submit(sleep_ms, ms) for ms in (60, 20, 40)])\n   ->");
    cf_future *naps[3];
    intptr_t ms[3] = { 60, 20, 40 };
    for (int i = 0; i < 3; i++)
        naps[i] = cf_submit(threads, sleep_ms, (void *)ms[i]);
    cf_as_completed *it = cf_as_completed_new(naps, 3, CF_FOREVER);
    int yielded = 0;
    while (it && cf_as_completed_next(it, &f) == 1) {
        cf_future_result(f, 0, &value);
        printf(" %ld ms", (long)(intptr_t)value);
        yielded++;
    }
    printf("  (shortest first)\n");
    cf_as_completed_free(it);
    for (int i = 0; i < 3; i++)
        cf_future_unref(naps[i]);
    expect(yielded == 3, "as_completed yields each future once");

    printf("4. a crash, contained: ex = ProcessPoolExecutor()\n"
           "   [ex.submit(crash_if_13, x) for x in (12, 13, 14)]\n");
    cf_executor *procs = cf_process_pool_new(NULL); /* ProcessPoolExecutor() */
    if (!procs && cf_last_error() == CF_ENOTSUP) {
        printf("NOTE: process pool not available in this build (CF_ENOTSUP): "
               "skipping parts 4 and 5's process column\n");
    } else if (!procs) {
        expect(0, "process pool created");
    } else {
        /* Submits rather than map: a map stops at its first failure, as in Python. */
        for (intptr_t x = 12; x <= 14; x++) {
            cf_future *g = cf_submit(procs, crash_if_13, (void *)x);
            const cf_exception *exc = NULL;
            rc = cf_future_result(g, CF_FOREVER, &value);
            cf_future_exception(g, CF_FOREVER, &exc);
            if (rc == 0)
                printf("   crash_if_13(%ld) -> %ld\n", (long)x, (long)(intptr_t)value);
            else
                printf("   crash_if_13(%ld) -> %s: %s\n", (long)x, cf_err_name(rc),
                       exc ? exc->message : cf_strerror(rc));
            expect(x == 13 ? rc == CF_EBROKEN : rc == 0, "only the crashing task fails");
            cf_future_unref(g);
        }
        printf("   the worker was replaced; the program and the other tasks carry on\n");
    }

    uintptr_t num = quick ? 40 : 300;
    size_t n = 16;
    printf("5. cpu_bound_func(%zu) x %zu, %d workers on %d CPUs (seed 004: threads did not help "
           "in Python)\n",
           (size_t)num, n, ncpu, ncpu);
    void *nums[16], *serial[16], *out[16];
    for (size_t i = 0; i < n; i++)
        nums[i] = (void *)num;
    uint64_t t0 = uv_hrtime();
    for (size_t i = 0; i < n; i++)
        serial[i] = cpu_bound_func(nums[i]);
    double serial_secs = (double)(uv_hrtime() - t0) / 1e9;
    printf("   single thread  %6.3f s\n", serial_secs);

    cf_executor *cpu_threads = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = ncpu });
    double secs = cpu_threads ? timed_map(cpu_threads, cpu_bound_func, nums, n, out) : -1;
    cf_executor_free(cpu_threads);
    expect(secs >= 0 && memcmp(out, serial, n * sizeof *out) == 0, "thread pool agrees");
    printf("   thread pool    %6.3f s  (%.1fx)\n", secs, serial_secs / secs);

    if (procs) {
        cf_executor_free(procs); /* a fresh pool of ncpu workers */
        procs = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = ncpu });
        secs = procs ? timed_map(procs, cpu_bound_func, nums, n, out) : -1;
        expect(secs >= 0 && memcmp(out, serial, n * sizeof *out) == 0, "process pool agrees");
        printf("   process pool   %6.3f s  (%.1fx, including starting the workers)\n", secs,
               serial_secs / secs);
    }

    cf_executor_free(procs);
    cf_executor_free(threads);
    if (failures) {
        fprintf(stderr, "%d unexpected results\n", failures);
        return 1;
    }
    printf("tour complete: every result as expected\n");
    return 0;
}
