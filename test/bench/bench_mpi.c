/* cf-bench: cfutures' MPI pool ("cfutures-mpi"), one pool for every
 * workload and repeat (starting ranks takes about a second):
 * - under mpiexec (`mpiexec -n 3 --oversubscribe cf-bench --system mpi`,
 *   how mpi4py.futures is measured): rank 0 is the root and runs cf-bench,
 *   the other ranks serve (over shared memory on one machine);
 * - without: p->workers ranks spawned from cf-bench (MPI_Comm_spawn; Open
 *   MPI then talks to them over TCP, not shared memory: slower).
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <cfutures-mpi.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static cf_executor *pool;
static bool unavailable, static_launch;

static bool under_mpiexec(void)
{
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n)
        n = getenv("PMI_SIZE");
    return n && atoi(n) > 1;
}

bool bench_mpi_begin(void)
{
    if (!under_mpiexec())
        return true;
    int provided;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    static_launch = true;
    pool = cf_mpi_pool_new(NULL);
    if (pool)
        return true;
    int code = cf_last_error();
    MPI_Comm_rank(MPI_COMM_WORLD, &provided);
    if (provided == 0) { /* the root: the pool failed */
        bench_note("cfutures-mpi: cannot make the pool: %s (%s): skipped", cf_err_name(code),
                   cf_last_error_message());
        unavailable = true;
        return true;
    }
    MPI_Finalize(); /* a worker rank, done serving */
    return false;
}

static cf_executor *get_pool(const bench_params *p)
{
    if (unavailable)
        return NULL;
    if (pool && static_launch) { /* made in bench_mpi_begin: warm it up once */
        static_launch = false;
        if (bench_cf_warm_up(pool, p->workers) != 0) {
            bench_note("cfutures-mpi: the warm-up failed: skipped");
            unavailable = true;
            return NULL;
        }
        return pool;
    }
    if (pool)
        return pool;
    pool = cf_mpi_pool_new(&(cf_mpi_pool_opts){ .spawn = p->workers });
    if (!pool) {
        bench_note("cfutures-mpi: cannot make the pool: %s (%s): skipped",
                   cf_err_name(cf_last_error()), cf_last_error_message());
        unavailable = true;
        return NULL;
    }
    if (bench_cf_warm_up(pool, p->workers) != 0) {
        bench_note("cfutures-mpi: the warm-up failed: skipped");
        cf_executor_free(pool);
        pool = NULL;
        unavailable = true;
    }
    return pool;
}

bool bench_mpi_run(bench_workload w, const bench_params *p)
{
    if (!(BENCH_MPI_WORKLOADS & BENCH_BIT(w)))
        return true;
    cf_executor *ex = get_pool(p);
    if (!ex)
        return false;
    double *values = malloc((size_t)p->repeat * sizeof *values);
    if (!values)
        return false;
    size_t got = 0;
    for (int r = 0; r < p->repeat; r++) {
        double v = bench_cf_run_once(ex, w, p);
        if (isnan(v))
            break;
        values[got++] = v;
    }
    bool ok = got == (size_t)p->repeat;
    if (ok)
        bench_report_runs("cfutures-mpi", bench_workload_name(w), values, got,
                          bench_workload_unit(w));
    free(values);
    return ok;
}

void bench_mpi_finish(void)
{
    cf_executor_free(pool);
    pool = NULL;
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized)
        MPI_Finalize();
}

/* mpi4py.futures on the same shape of job: a fresh mpiexec of p->workers + 1
 * ranks running pybench_mpi.py under `python3 -m mpi4py.futures` (with an
 * environment of its own: this cf-bench may itself be an mpiexec rank). */
bool bench_mpi_python_run(const bench_params *p, int workload)
{
    static const char python[] = "/usr/bin/python3"; /* Debian's mpi4py is for it */
    if (access(python, X_OK) != 0) {
        bench_note("python-mpi: no %s: skipped", python);
        return false;
    }
    char path[512], home[512], ranks[16], repeat[16];
    snprintf(path, sizeof path, "PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    snprintf(home, sizeof home, "HOME=%s", getenv("HOME") ? getenv("HOME") : "/");
    snprintf(ranks, sizeof ranks, "%d", p->workers + 1);
    snprintf(repeat, sizeof repeat, "%d", p->repeat);
    char *check[] = { "env", "-i", path, (char *)python, "-c", "import mpi4py.futures", NULL };
    if (bench_run_child(check, NULL) != 0) {
        bench_note("python-mpi: mpi4py is not installed for %s: skipped", python);
        return false;
    }
    char *argv[24] = { "env",
                       "-i",
                       path,
                       home,
                       "OMPI_ALLOW_RUN_AS_ROOT=1",
                       "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
                       "mpiexec",
                       "-n",
                       ranks,
                       "--oversubscribe",
                       (char *)python,
                       "-m",
                       "mpi4py.futures",
                       CF_BENCH_PYBENCH_MPI,
                       "--repeat",
                       repeat };
    int argc = 16;
    if (p->quick)
        argv[argc++] = "--quick";
    if (workload >= 0) {
        argv[argc++] = "--workload";
        argv[argc++] = (char *)bench_workload_name((bench_workload)workload);
    }
    argv[argc] = NULL;
    int status = bench_run_child(argv, NULL);
    if (status != 0)
        bench_note("python-mpi: pybench_mpi.py under mpiexec failed (status %d)", status);
    return status == 0;
}
