/* The public header compiles alone, at the strictest warnings, as C99 and as
 * C11 (test/meson.build builds this file both ways with -Werror), and its
 * scoped helpers work: cf_autoptr and CF_WITH release what they hold.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h> /* first, so it must stand on its own */

#include <stdint.h>

#include "check.h"

static void *triple(void *arg)
{
    return (void *)((intptr_t)arg * 3);
}

static void test_names(void)
{
    CHECK_STR(cf_err_name(CF_ETIMEDOUT), "CF_ETIMEDOUT");
    CHECK(cf_strerror(CF_ENOMEM) != NULL);
}

static void test_autoptr_future(void)
{
    cf_autoptr(cf_future) f = cf_future_new();
    CHECK(f != NULL);
    CHECK_EQ(cf_future_set_result(f, (void *)(intptr_t)5), 0);
    void *value = NULL;
    CHECK_EQ(cf_future_result(f, 0, &value), 0);
    CHECK_EQ((intptr_t)value, 5);
}

static void test_with_executor(void)
{
    int bodies = 0;
    CF_WITH(cf_executor, ex, cf_thread_pool_new(NULL)) {
        CHECK(ex != NULL);
        cf_autoptr(cf_future) f = cf_submit(ex, triple, (void *)(intptr_t)14);
        CHECK(f != NULL);
        void *value = NULL;
        CHECK_EQ(cf_future_result(f, CF_FOREVER, &value), 0);
        CHECK_EQ((intptr_t)value, 42);
        bodies++;
    }
    CHECK_EQ(bodies, 1);
}

int main(void)
{
    RUN(test_names);
    RUN(test_autoptr_future);
    RUN(test_with_executor);
    return 0;
}
