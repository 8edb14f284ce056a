/* A future's memory is reused after its last reference (lib/future_cache.c):
 * a new future never shows anything of the one before it, futures freed on
 * threads that exit are not lost, and once cf_set_alloc_funcs installs hooks
 * every future goes through them again.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <stdatomic.h>
#include <stdint.h>

#include "check.h"
#include "test_counting_alloc.h"

#define WAIT 10.0
#define ROUNDS 200 /* more than a thread keeps */

static atomic_int callbacks_run;

static void count_callback(cf_future *f, void *userdata)
{
    (void)f;
    (void)userdata;
    atomic_fetch_add(&callbacks_run, 1);
}

/* A future that went through everything a future can hold: two callbacks,
 * an exception with a message, or a result. */
static void use_and_drop(int i)
{
    cf_future *f = cf_future_new();
    CHECK(f != NULL);
    CHECK_EQ(cf_future_add_done_callback(f, count_callback, NULL), 0);
    CHECK_EQ(cf_future_add_done_callback(f, count_callback, NULL), 0);
    if (i % 2)
        CHECK_EQ(cf_future_set_exception(f, CF_EINVAL, "round %d", i), 0);
    else
        CHECK_EQ(cf_future_set_result(f, (void *)(intptr_t)(i + 1)), 0);
    cf_future_unref(f);
}

/* A new future is pending with nothing left of an earlier one. */
static void check_fresh(cf_future *f)
{
    CHECK(f != NULL);
    CHECK(!cf_future_done(f));
    CHECK(!cf_future_running(f));
    CHECK(!cf_future_cancelled(f));
    void *v = (void *)1;
    CHECK_EQ(cf_future_result(f, 0, &v), CF_ETIMEDOUT);
    CHECK(v == (void *)1);
    CHECK_EQ(cf_future_result_size(f), 0u);
}

static void test_new_future_is_fresh(void)
{
    for (int i = 0; i < ROUNDS; i++) {
        int before = atomic_load(&callbacks_run);
        use_and_drop(i);
        CHECK_EQ(atomic_load(&callbacks_run), before + 2);
        cf_future *f = cf_future_new();
        check_fresh(f);
        /* No callback of the earlier future fires on this one. */
        CHECK(cf_future_set_running_or_notify_cancel(f));
        CHECK_EQ(cf_future_set_result(f, (void *)(intptr_t)7), 0);
        CHECK_EQ(atomic_load(&callbacks_run), before + 2);
        const cf_exception *exc = (const cf_exception *)1;
        CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
        CHECK(exc == NULL);
        void *v = NULL;
        CHECK_EQ(cf_future_result(f, 0, &v), 0);
        CHECK(v == (void *)(intptr_t)7);
        cf_future_unref(f);
    }
}

static void *identity(void *arg)
{
    return arg;
}

/* Futures made and freed by a pool's workers, which exit with the pool: the
 * leak checkers (ASan's, valgrind) see that none is lost. */
static void test_futures_of_exiting_threads(void)
{
    for (int round = 0; round < 3; round++) {
        cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 });
        CHECK(ex != NULL);
        cf_future *fs[ROUNDS];
        for (int i = 0; i < ROUNDS; i++)
            CHECK((fs[i] = cf_submit(ex, identity, (void *)(intptr_t)i)) != NULL);
        for (int i = 0; i < ROUNDS; i++) {
            void *v = NULL;
            CHECK_EQ(cf_future_result(fs[i], WAIT, &v), 0);
            CHECK(v == (void *)(intptr_t)i);
            cf_future_unref(fs[i]);
        }
        cf_executor_free(ex);
    }
}

/* Futures freed before the hooks are kept (none is alive, as
 * cf_set_alloc_funcs asks); after it each new future is the hooks' own. */
static void test_hooks_see_every_future(void)
{
    for (int i = 0; i < ROUNDS; i++)
        use_and_drop(i);
    counting_alloc_install();
    for (int i = 0; i < ROUNDS; i++) {
        cf_future *f = cf_future_new();
        CHECK(f != NULL);
        CHECK_EQ(counting_alloc_live(), 1); /* the hooks' block, not a kept one */
        cf_future_unref(f);
        CHECK_EQ(counting_alloc_live(), 0);
    }
    CHECK_EQ(cf_set_alloc_funcs(NULL, NULL, NULL), 0);
}

int main(void)
{
    RUN(test_new_future_is_fresh);
    RUN(test_futures_of_exiting_threads);
    RUN(test_hooks_see_every_future);
    return 0;
}
