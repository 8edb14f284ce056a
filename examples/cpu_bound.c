/* cpu_bound.c: CPU-bound work on one thread, a thread pool and a process pool.
 *
 * The lesson of the Python post (seed 004): because of the GIL,
 *
 *     with ThreadPoolExecutor(max_workers=10) as ex:
 *         results = list(ex.map(cpu_bound_func, nums))
 *
 * is no faster than a plain loop (22.7 s against 21.4 s there), and only a
 * ProcessPoolExecutor runs the loops in parallel (16.0 s).
 *
 * C has no GIL. Each thread of a cfutures thread pool runs on its own core,
 * so here BOTH pools scale with the number of CPUs. A process pool is for
 * isolation (see crash_isolation.c), not for getting around a lock.
 *
 * Run: ./cpu_bound          the real lesson (about a second per column)
 *      ./cpu_bound --quick  a few milliseconds, for the tests
 *
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h> /* uv_hrtime, uv_available_parallelism */

/* The seed's function, unchanged but for the types:
 *
 *     def cpu_bound_func(num):
 *         numbers = range(1, num)
 *         total = 1
 *         for i in numbers:
 *             for j in numbers:
 *                 for k in numbers:
 *                     total *= i * j * k
 *         return total
 *
 * In C the product wraps modulo 2^64 (Python's int would grow without
 * bound); it collects more than 64 factors of two, so every call returns 0.
 * The work is what we measure; the program still checks that every backend
 * returns the same values as the plain loop.
 *
 * A task takes and returns a void *. Numbers travel as pointer-sized
 * integers, so the same function runs on a thread pool and on a process
 * pool, as in Python. */
static void *cpu_bound_func(void *arg)
{
    uint64_t num = (uint64_t)(uintptr_t)arg;
    uint64_t total = 1;
    for (uint64_t i = 1; i < num; i++)
        for (uint64_t j = 1; j < num; j++)
            for (uint64_t k = 1; k < num; k++)
                total *= i * j * k;
    return (void *)(uintptr_t)total;
}

enum { MAX_TASKS = 100, WORKERS = 10 };

static double seconds_since(uint64_t start_ns)
{
    return (double)(uv_hrtime() - start_ns) / 1e9;
}

/* results = list(executor.map(cpu_bound_func, nums)). Returns 0 or a CF_E* code. */
static int map_all(cf_executor *ex, void *const *nums, size_t n, uintptr_t *results)
{
    cf_map_iter *it = cf_map(ex, cpu_bound_func, nums, n, NULL);
    if (!it)
        return cf_last_error();
    void *value;
    size_t i = 0;
    int rc;
    while ((rc = cf_map_next(it, &value)) == 1)
        results[i++] = (uintptr_t)value;
    cf_map_free(it);
    return rc; /* 0 at the end, or the error of the first failing item */
}

static void print_row(const char *mode, int workers, double secs, double serial_secs)
{
    printf("%-16s %7d %9.3f %8.2fx\n", mode, workers, secs, serial_secs / secs);
}

static int check_same(const char *mode, const uintptr_t *got, const uintptr_t *want, size_t n)
{
    if (memcmp(got, want, n * sizeof *got) != 0) {
        fprintf(stderr, "%s: results differ from the plain loop\n", mode);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    /* nums = [30] * 100 in the seed; 30 takes ~1 ms in C, so scale it up. */
    uintptr_t num = quick ? 60 : 210;
    size_t n = quick ? 20 : MAX_TASKS;

    void *nums[MAX_TASKS];
    for (size_t i = 0; i < n; i++)
        nums[i] = (void *)num;
    uintptr_t serial[MAX_TASKS], threads[MAX_TASKS], procs[MAX_TASKS];

    printf("cpu_bound_func(%zu) x %zu on a machine with %u CPUs\n", (size_t)num, n,
           uv_available_parallelism());
    printf("%-16s %7s %9s %9s\n", "mode", "workers", "seconds", "speedup");

    /* 1. Single process, single thread: results = [cpu_bound_func(n) for n in nums] */
    uint64_t t0 = uv_hrtime();
    for (size_t i = 0; i < n; i++)
        serial[i] = (uintptr_t)cpu_bound_func(nums[i]);
    double serial_secs = seconds_since(t0);
    print_row("single thread", 1, serial_secs, serial_secs);

    /* 2. executor = ThreadPoolExecutor(max_workers=10) */
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = WORKERS });
    if (!ex) {
        fprintf(stderr, "thread pool: %s\n", cf_strerror(cf_last_error()));
        return 1;
    }
    t0 = uv_hrtime();
    int rc = map_all(ex, nums, n, threads);
    double thread_secs = seconds_since(t0);
    cf_executor_free(ex); /* the end of Python's `with` block: wait, then free */
    if (rc != 0) {
        fprintf(stderr, "thread pool map: %s\n", cf_strerror(rc));
        return 1;
    }
    print_row("thread pool", WORKERS, thread_secs, serial_secs);
    if (check_same("thread pool", threads, serial, n))
        return 1;

    /* 3. executor = ProcessPoolExecutor(max_workers=10). Worker processes
     * start on demand, so the first tasks also pay for starting them. */
    ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = WORKERS });
    if (!ex && cf_last_error() == CF_ENOTSUP) {
        printf("NOTE: process pool not available in this build (CF_ENOTSUP): "
               "skipping the process part\n");
    } else if (!ex) {
        fprintf(stderr, "process pool: %s\n", cf_strerror(cf_last_error()));
        return 1;
    } else {
        t0 = uv_hrtime();
        rc = map_all(ex, nums, n, procs);
        double proc_secs = seconds_since(t0);
        cf_executor_free(ex);
        if (rc != 0) {
            fprintf(stderr, "process pool map: %s\n", cf_strerror(rc));
            return 1;
        }
        print_row("process pool", WORKERS, proc_secs, serial_secs);
        if (check_same("process pool", procs, serial, n))
            return 1;
    }

    printf("results agree: every backend returned %zu x %#zx\n", n, (size_t)serial[0]);
    printf("In C there is no GIL: the thread pool scales with the CPUs like the "
           "process pool does.\n");
    unsigned ncpu = uv_available_parallelism();
    double ideal = ncpu < WORKERS ? ncpu : WORKERS;
    if (!quick && ncpu > 1 && serial_secs / thread_secs < 0.6 * ideal)
        printf("(Here the thread pool was %.1fx faster, where %.0fx is possible: other "
               "programs are probably using the CPUs.)\n",
               serial_secs / thread_secs, ideal);
    return 0;
}
