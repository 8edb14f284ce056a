/* <cfutures-uv.h> compiles alone, at the strictest warnings, as C99 and as
 * C11 (test/meson.build builds this file both ways with -Werror), and the
 * Python names work: loop.run_in_executor is cf_uv_run_in_executor.
 * SPDX-License-Identifier: MIT */
#include <cfutures-uv.h> /* first, so it must stand on its own */

#include <stdint.h>

#include "check.h"

static void *triple(void *arg)
{
    return (void *)((intptr_t)arg * 3);
}

static intptr_t got;

static void on_done(cf_future *f, void *userdata)
{
    void *value = NULL;
    CHECK_EQ(cf_future_result(f, 0, &value), 0);
    got = (intptr_t)value;
    CHECK(userdata == &got);
    cf_future_unref(f);
}

int main(void)
{
    KEEP_STDIO_OPEN();
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    cf_uv_bridge *b = cf_uv_bridge_new(&loop);
    cf_executor *ex = cf_thread_pool_new(NULL);
    CHECK(b != NULL && ex != NULL);
    CHECK(cf_uv_run_in_executor(b, ex, triple, (void *)(intptr_t)14, on_done, &got) != NULL);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(got, 42);
    cf_uv_bridge_close(b);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ(uv_loop_close(&loop), 0);
    cf_executor_free(ex);
    return 0;
}
