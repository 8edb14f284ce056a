/* A worker rank dies (its task SIGKILLs it) under mpiexec --enable-recovery:
 * only that task fails, with CF_EBROKEN; the 199 others complete (those
 * queued on the dead rank move to the other one); later submits work on
 * the smaller pool, and freeing it returns.
 * SPDX-License-Identifier: MIT */
#include <cfutures-mpi.h>

#include "../check.h"

#include <signal.h>
#include <stdint.h>
#include <unistd.h>

static void *task(void *arg)
{
    intptr_t x = (intptr_t)arg;
    if (x == 57)
        kill(getpid(), SIGKILL);
    return (void *)(x * 3);
}

int main(int argc, char **argv)
{
    int provided, rank;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (!cf_mpi_survives_rank_death()) {
        if (rank == 0)
            printf("needs mpiexec --enable-recovery: skipped\n");
        MPI_Finalize();
        return 77;
    }
    cf_executor *ex = cf_mpi_pool_new(NULL);
    if (!ex) { /* a worker rank, done serving; MPI_Finalize would wait for the dead one */
        CHECK_EQ(cf_last_error(), 0);
        fflush(NULL);
        _exit(0);
    }
    enum { N = 200 };
    cf_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK((fs[i] = cf_submit(ex, task, (void *)(intptr_t)i)));
    int broken = 0, ok = 0;
    for (int i = 0; i < N; i++) {
        void *v;
        int rc = cf_future_result(fs[i], CF_FOREVER, &v);
        if (rc == CF_EBROKEN) {
            CHECK_EQ(i, 57);
            const cf_exception *e;
            cf_future_exception(fs[i], 0, &e);
            CHECK(strstr(e->message, "died"));
            broken++;
        } else {
            CHECK_EQ(rc, 0);
            CHECK_EQ((intptr_t)v, 3 * i);
            ok++;
        }
        cf_future_unref(fs[i]);
    }
    CHECK_EQ(broken, 1);
    CHECK_EQ(ok, N - 1);
    /* The pool goes on with the rank that is left. */
    for (int i = 0; i < 20; i++) {
        cf_future *f = cf_submit(ex, task, (void *)(intptr_t)(1000 + i));
        CHECK(f);
        void *v;
        CHECK_EQ(cf_future_result(f, CF_FOREVER, &v), 0);
        CHECK_EQ((intptr_t)v, 3 * (1000 + i));
        cf_future_unref(f);
    }
    cf_executor_free(ex);
    printf("one task failed with its rank, %d completed, the pool went on\n", ok);
    fflush(stdout);
    /* Open MPI's MPI_Finalize waits for every rank, the dead one too (its
     * own fence): after a death, the ranks leave without it. */
    _exit(0);
}
