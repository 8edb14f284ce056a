/* cpu_bound_anywhere.c: the seeds' CPU-bound work (seed 004, see
 * cpu_bound.c) on a thread pool, a process pool or an MPI pool, chosen on
 * the command line. The task and the cf_map call are the same for all
 * three: only the line that makes the executor changes.
 *
 *   ./cpu_bound_anywhere thread                      threads of this process
 *   ./cpu_bound_anywhere process                     worker processes
 *   mpiexec -n 3 ./cpu_bound_anywhere mpi            MPI ranks: 0 maps, 1-2 work
 *   mpiexec --hostfile hosts -n 17 ./cpu_bound_anywhere mpi   ... on a cluster
 *   ./cpu_bound_anywhere mpi --spawn 2               no mpiexec: spawn 2 ranks
 *
 * Add --quick for a run of a few milliseconds (the tests do).
 * SPDX-License-Identifier: MIT */
#include <cfutures-mpi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h> /* uv_hrtime */

/* def cpu_bound_func(num): the seed's triple loop, wrapping in 64 bits. */
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

enum { MAX_TASKS = 100 };

int main(int argc, char **argv)
{
    const char *kind = argc > 1 ? argv[1] : "";
    bool quick = false;
    int spawn = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--spawn") == 0 && i + 1 < argc)
            spawn = atoi(argv[++i]);
    }
    bool mpi = strcmp(kind, "mpi") == 0;
    if (!mpi && strcmp(kind, "thread") != 0 && strcmp(kind, "process") != 0) {
        fprintf(stderr, "usage: %s thread|process|mpi [--quick] [--spawn N]\n", argv[0]);
        return 2;
    }
    uintptr_t num = quick ? 60 : 210;
    size_t n = quick ? 20 : MAX_TASKS;
    void *nums[MAX_TASKS];
    for (size_t i = 0; i < n; i++)
        nums[i] = (void *)num;

    /* The one line that differs. */
    cf_executor *ex = mpi ? cf_mpi_pool_new(&(cf_mpi_pool_opts){ .spawn = spawn })
                      : strcmp(kind, "thread") == 0 ? cf_thread_pool_new(NULL)
                                                    : cf_process_pool_new(NULL);
    if (!ex && mpi && cf_last_error() == 0)
        return 0; /* a worker rank: it served rank 0's tasks until rank 0 was done */
    if (!ex) {
        fprintf(stderr, "%s pool: %s\n", kind, cf_last_error_message());
        return 1;
    }

    uint64_t t0 = uv_hrtime();
    cf_map_iter *it = cf_map(ex, cpu_bound_func, nums, n, NULL);
    void *value;
    size_t got = 0;
    int rc;
    uintptr_t first = 0;
    while ((rc = cf_map_next(it, &value)) == 1) {
        if (got == 0)
            first = (uintptr_t)value;
        if ((uintptr_t)value != first) {
            fprintf(stderr, "results differ\n");
            return 1;
        }
        got++;
    }
    cf_map_free(it);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    cf_executor_free(ex); /* on an MPI pool, this also lets the worker ranks go */
    if (rc != 0 || got != n || first != (uintptr_t)cpu_bound_func(nums[0])) {
        fprintf(stderr, "%s pool: map failed: %s\n", kind, cf_strerror(rc));
        return 1;
    }
    printf("%s pool: cpu_bound_func(%zu) x %zu in %.3f s, every result %#zx\n", kind, (size_t)num,
           n, secs, (size_t)first);
    return 0;
}
