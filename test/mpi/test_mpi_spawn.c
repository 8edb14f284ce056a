/* Spawn: a program started without mpiexec (an MPI singleton) starts two
 * worker ranks of its own executable; they become workers before main
 * (main never runs in them) and serve until the pool is freed.
 * SPDX-License-Identifier: MIT */
#include <cfutures-mpi.h>

#include "../check.h"

#include <stdint.h>
#include <unistd.h>

static bool in_main; /* a worker that ran main would say so */

static void *whose(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)(in_main ? -1 : getpid());
}

static void *square(void *arg)
{
    intptr_t x = (intptr_t)arg;
    return (void *)(x * x);
}

int main(void)
{
    in_main = true;
    CHECK(!cf_mpi_survives_rank_death());
    /* MPI not initialised: the pool does it (and finalises at exit). */
    cf_executor *ex = cf_mpi_pool_new(&(cf_mpi_pool_opts){ .spawn = 2 });
    if (!ex)
        fprintf(stderr, "%s: %s\n", cf_err_name(cf_last_error()), cf_last_error_message());
    CHECK(ex);
    enum { N = 100 };
    cf_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = cf_submit(ex, i % 2 ? whose : square, (void *)(intptr_t)i);
    for (int i = 0; i < N; i++) {
        void *v;
        CHECK_EQ(cf_future_result(fs[i], CF_FOREVER, &v), 0);
        if (i % 2) {
            CHECK((intptr_t)v > 0);
            CHECK((intptr_t)v != (intptr_t)getpid());
        } else {
            CHECK_EQ((intptr_t)v, (intptr_t)i * i);
        }
        cf_future_unref(fs[i]);
    }
    cf_map_iter *it = cf_map(ex, square, (void *const[]){ (void *)2, (void *)3 }, 2, NULL);
    void *v;
    CHECK_EQ(cf_map_next(it, &v), 1);
    CHECK_EQ((intptr_t)v, 4);
    CHECK_EQ(cf_map_next(it, &v), 1);
    CHECK_EQ((intptr_t)v, 9);
    cf_map_free(it);
    cf_executor_free(ex);
    printf("spawned pool: %d tasks on 2 spawned ranks\n", N + 2);
    return 0;
}
