/* A thread level too low for the pool fails it on every rank with
 * CF_ENOTSUP and a message naming the level needed: the root's manager
 * thread calls MPI beside the program's threads (MPI_THREAD_MULTIPLE).
 * SPDX-License-Identifier: MIT */
#include <cfutures-mpi.h>

#include "../check.h"

int main(int argc, char **argv)
{
    int provided, rank;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    cf_executor *ex = cf_mpi_pool_new(NULL);
    CHECK(ex == NULL);
    if (provided >= MPI_THREAD_MULTIPLE) { /* the MPI gave more than asked */
        MPI_Finalize();
        return 77;
    }
    CHECK_EQ(cf_last_error(), CF_ENOTSUP);
    CHECK(strstr(cf_last_error_message(), "MPI_THREAD_MULTIPLE"));
    if (rank == 0)
        printf("refused on every rank: %s\n", cf_last_error_message());
    MPI_Finalize();
    return 0;
}
