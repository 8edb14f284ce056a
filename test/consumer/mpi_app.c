/* A program built against the installed libcfutures-mpi (pkg-config
 * cfutures-mpi, or CMake's cfutures::mpi): it links, and the library answers
 * without MPI being started (an option of a later version is refused before
 * anything collective happens).
 * SPDX-License-Identifier: MIT */
#include <cfutures-mpi.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    cf_mpi_pool_opts later = { .cf_reserved[0] = 1 };
    if (cf_mpi_pool_new(&later) != NULL || cf_last_error() != CF_ENOTSUP ||
        !strstr(cf_last_error_message(), "cf_mpi_pool_opts")) {
        fprintf(stderr, "mpi_app: a reserved word was not refused: %s\n", cf_last_error_message());
        return 1;
    }
    printf("cfutures-mpi %s linked (rank deaths survivable here: %s)\n", cf_version_string(),
           cf_mpi_survives_rank_death() ? "yes" : "no");
    return 0;
}
