/* cf_autoptr and CF_WITH: the object is released at scope exit, on every way
 * out of the scope; for an executor that means its work has completed.
 * A counting allocator shows that everything the library allocated is freed. */
#include "check.h"

#include <cfutures.h>
#include <stdatomic.h>
#include <stdint.h>

#define V(n) ((void *)(intptr_t)(n))

static atomic_long live_allocs;

static void *count_malloc(size_t n)
{
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&live_allocs, 1);
    return p;
}

static void *count_realloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q && !p)
        atomic_fetch_add(&live_allocs, 1);
    return q;
}

static void count_free(void *p)
{
    if (p)
        atomic_fetch_sub(&live_allocs, 1);
    free(p);
}

static atomic_int done_count;

static void on_done(cf_future *f, void *userdata)
{
    (void)f;
    (void)userdata;
    atomic_fetch_add(&done_count, 1);
}

static void *task_slow_square(void *arg)
{
    for (volatile int i = 0; i < 20000; i++)
        ;
    intptr_t x = (intptr_t)arg;
    return V(x * x);
}

/* Submit n tasks whose completion bumps done_count; release our references. */
static void submit_work(cf_executor *ex, int n)
{
    for (int i = 0; i < n; i++) {
        cf_future *f = cf_submit(ex, task_slow_square, V(i));
        CHECK(f);
        CHECK_EQ(cf_future_add_done_callback(f, on_done, NULL), 0);
        cf_future_unref(f);
    }
}

static void begin(void)
{
    atomic_store(&done_count, 0);
    CHECK_EQ(atomic_load(&live_allocs), 0);
}

/* Everything completed and everything freed. */
static void check_after(int submitted)
{
    CHECK_EQ(atomic_load(&done_count), submitted);
    CHECK_EQ(atomic_load(&live_allocs), 0);
}

static void test_autoptr_executor(void)
{
    begin();
    {
        cf_autoptr(cf_executor) ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 });
        CHECK(ex);
        submit_work(ex, 20);
    }
    check_after(20);
}

static void test_autoptr_future_and_map(void)
{
    begin();
    {
        cf_autoptr(cf_executor) ex = cf_thread_pool_new(NULL);
        CHECK(ex);
        {
            cf_autoptr(cf_future) f = cf_submit(ex, task_slow_square, V(6));
            void *v;
            CHECK_EQ(cf_future_result(f, CF_FOREVER, &v), 0);
            CHECK_EQ((intptr_t)v, 36);
        }
        {
            void *args[5] = { V(0), V(1), V(2), V(3), V(4) };
            cf_autoptr(cf_map_iter) it = cf_map(ex, task_slow_square, args, 5, NULL);
            CHECK(it);
            void *v;
            CHECK_EQ(cf_map_next(it, &v), 1); /* leave the rest to the cleanup */
        }
        {
            cf_future *fs[3];
            for (int i = 0; i < 3; i++)
                CHECK(fs[i] = cf_submit(ex, task_slow_square, V(i)));
            cf_autoptr(cf_as_completed) ac = cf_as_completed_new(fs, 3, CF_FOREVER);
            CHECK(ac);
            cf_future *done;
            CHECK_EQ(cf_as_completed_next(ac, &done), 1);
            for (int i = 0; i < 3; i++)
                cf_future_unref(fs[i]); /* the iterator holds its own references */
        }
    }
    check_after(0);
}

static void test_with_normal_end(void)
{
    begin();
    CF_WITH(cf_executor, ex, cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 })) {
        CHECK(ex);
        submit_work(ex, 10);
    }
    check_after(10);
}

static void test_with_break_and_continue(void)
{
    begin();
    int bodies = 0;
    for (int round = 0; round < 3; round++) {
        CF_WITH(cf_executor, ex, cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 })) {
            CHECK(ex);
            bodies++;
            submit_work(ex, 5);
            if (round == 0)
                break;
            if (round == 1)
                continue;
            submit_work(ex, 5);
        }
        CHECK_EQ(atomic_load(&done_count), round < 2 ? 5 * (round + 1) : 20);
        CHECK_EQ(atomic_load(&live_allocs), 0);
    }
    CHECK_EQ(bodies, 3); /* the body runs once per CF_WITH */
    check_after(20);
}

static int with_early_return(void)
{
    CF_WITH(cf_executor, ex, cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 })) {
        CHECK(ex);
        submit_work(ex, 7);
        return 1;
    }
    return 0;
}

static void test_with_early_return(void)
{
    begin();
    CHECK_EQ(with_early_return(), 1);
    check_after(7);
}

static void test_with_null(void)
{
    begin();
    int bodies = 0;
    CF_WITH(cf_executor, ex, cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = -1 })) {
        CHECK(ex == NULL); /* creation failed; the cleanup accepts NULL */
        bodies++;
    }
    CHECK_EQ(bodies, 1);
    check_after(0);
}

int main(void)
{
    CHECK_EQ(cf_set_alloc_funcs(count_malloc, count_realloc, count_free), 0);
    RUN(test_autoptr_executor);
    RUN(test_autoptr_future_and_map);
    RUN(test_with_normal_end);
    RUN(test_with_break_and_continue);
    RUN(test_with_early_return);
    RUN(test_with_null);
    CHECK_EQ(cf_set_alloc_funcs(NULL, NULL, NULL), 0);
    fprintf(stderr, "test_scoped: all passed\n");
    return 0;
}
