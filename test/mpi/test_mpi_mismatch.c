/* A rank running another build of the program refuses the pool on every
 * rank: built twice (VARIANT 1 and 2: two build-ids) and run as
 * mpiexec -n 1 variant1 : -n 2 variant2. Also a thread level too low.
 * SPDX-License-Identifier: MIT */
#include <cfutures-mpi.h>

#include "../check.h"

#ifndef VARIANT
#define VARIANT 1
#endif

const int cftest_variant = VARIANT; /* makes the builds differ */

int main(int argc, char **argv)
{
    int provided, rank;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    cf_executor *ex = cf_mpi_pool_new(NULL);
    CHECK(ex == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(strstr(cf_last_error_message(), "another build of the program"));
    if (rank == 0)
        printf("refused on every rank: %s\n", cf_last_error_message());
    /* The same program on every rank works. */
    MPI_Comm same;
    MPI_Comm_split(MPI_COMM_WORLD, rank == 0 ? 0 : 1, rank, &same);
    if (rank != 0) { /* the two ranks of variant 2 */
        ex = cf_mpi_pool_new(&(cf_mpi_pool_opts){ .comm = same });
        int srank;
        MPI_Comm_rank(same, &srank);
        CHECK_EQ(ex != NULL, srank == 0);
        if (!ex)
            CHECK_EQ(cf_last_error(), 0);
        cf_executor_free(ex);
    }
    MPI_Comm_free(&same);
    MPI_Finalize();
    return 0;
}
