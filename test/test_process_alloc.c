/* Process pool under allocation failure: the n-th allocation the library
 * makes (in the caller's thread or the pool's manager thread) fails, for
 * every n of a small run. Whatever fails must fail with a CF_E* code: no
 * crash, no hang, no leak (ASan), no worker left behind.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <stdatomic.h>
#include <sys/wait.h>

static atomic_long allocations;
static atomic_long fail_at; /* 0: never */

static bool should_fail(void)
{
    long n = atomic_fetch_add(&allocations, 1) + 1;
    return n == atomic_load(&fail_at);
}

static void *failing_malloc(size_t size)
{
    return should_fail() ? NULL : malloc(size);
}

static void *failing_realloc(void *p, size_t size)
{
    return should_fail() ? NULL : realloc(p, size);
}

static void *twice(void *arg)
{
    return V(I(arg) * 2);
}

static void *copy_back(void *arg)
{
    return cf_return_copy(arg, 16);
}

static void *square(void *arg)
{
    return V(I(arg) * I(arg));
}

/* One small run; every step may fail, but only with a code. */
static void run_once(void)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 });
    if (!ex) {
        int e = cf_last_error();
        CHECK(e == CF_ENOMEM || e == CF_ESYSTEM);
        return;
    }
    char bytes[16] = "fifteen bytes..";
    cf_future *fs[3] = {
        cf_submit(ex, twice, V(1)),
        cf_submit_copy(ex, copy_back, bytes, sizeof bytes),
        cf_submit(ex, twice, V(3)),
    };
    for (int i = 0; i < 3; i++) {
        if (!fs[i]) {
            int e = cf_last_error();
            CHECK(e == CF_ENOMEM || e == CF_EBROKEN);
            continue;
        }
        void *v = NULL;
        int rc = cf_future_result(fs[i], CF_FOREVER, &v);
        CHECK(rc == 0 || rc == CF_EBROKEN || rc == CF_ETASK);
        if (rc == 0 && i != 1)
            CHECK_EQ(I(v), 2 * (i + 1));
        if (rc == 0 && i == 1)
            CHECK(memcmp(v, bytes, 16) == 0);
        cf_future_unref(fs[i]);
    }
    void *args[6] = { V(0), V(1), V(2), V(3), V(4), V(5) };
    cf_map_iter *it = cf_map(ex, square, args, 6, &(cf_map_opts){ .chunksize = 4 });
    if (it) {
        void *v;
        int rc, k = 0;
        while ((rc = cf_map_next(it, &v)) == 1) {
            CHECK_EQ(I(v), k * k);
            k++;
        }
        CHECK(rc == 0 || rc == CF_EBROKEN || rc == CF_ETASK || rc == CF_ENOMEM);
        cf_map_free(it);
    }
    cf_executor_free(ex);
}

int main(void)
{
    /* a clean run, counting */
    CHECK_EQ(cf_set_alloc_funcs(failing_malloc, failing_realloc, free), 0);
    run_once();
    long clean = atomic_load(&allocations);
    CHECK(clean > 0);
    long limit = clean + clean / 2;
    for (long n = 1; n <= limit; n++) {
        atomic_store(&allocations, 0);
        atomic_store(&fail_at, n);
        run_once();
        errno = 0;
        CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1); /* no worker left behind */
    }
    CHECK_EQ(cf_set_alloc_funcs(NULL, NULL, NULL), 0);
    fprintf(stderr, "%ld allocations in a clean run; failed each of the first %ld in turn\n", clean,
            limit);
    return 0;
}
