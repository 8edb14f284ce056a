/* A program linked without a GNU build-id (-Wl,--build-id=none) cannot
 * have its ranks' builds compared: the pool is refused on every rank with
 * CF_ENOTSUP and a message saying how to link, instead of taking any
 * program for the same one. Run as mpiexec -n 2.
 * SPDX-License-Identifier: MIT */
#include <cfutures-mpi.h>

#include "../check.h"

int main(int argc, char **argv)
{
    int provided, rank;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    cf_executor *ex = cf_mpi_pool_new(NULL);
    CHECK(ex == NULL);
    CHECK_EQ(cf_last_error(), CF_ENOTSUP);
    CHECK(strstr(cf_last_error_message(), "-Wl,--build-id"));
    if (rank == 0)
        printf("refused on every rank: %s\n", cf_last_error_message());
    MPI_Finalize();
    return 0;
}
