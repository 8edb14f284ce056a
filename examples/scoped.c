/* scoped.c: CF_WITH and cf_autoptr, the C spelling of Python's `with`.
 *
 *     with ThreadPoolExecutor() as ex:      CF_WITH(cf_executor, ex, cf_thread_pool_new(NULL)) {
 *         ...                                   ...
 *                                           }
 *
 * Leaving a `with` block shuts the executor down and waits for its work,
 * however the block is left. CF_WITH does the same when the block ends, and
 * also on `break` and on `return` from inside it. cf_autoptr(T) declares a
 * variable that is released when it goes out of scope: an executor is shut
 * down (waiting) and freed, a future unreferenced, a map iterator or an
 * as_completed iterator freed. Both use the cleanup attribute of GCC and
 * Clang; every cfutures call works without them too.
 *
 * Run: ./scoped  (fast: --quick is accepted and changes nothing)
 *
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h> /* uv_sleep */

static atomic_int started, finished; /* how many slow_square calls began / ended */

static void *slow_square(void *arg)
{
    intptr_t x = (intptr_t)arg;
    atomic_fetch_add(&started, 1);
    uv_sleep(10); /* pretend to work */
    atomic_fetch_add(&finished, 1);
    return (void *)(x * x);
}

/* 1. The plain `with`.
 *
 *     with ThreadPoolExecutor(max_workers=2) as ex:
 *         f = ex.submit(slow_square, 7)
 *         print(f.result())
 */
static int with_block(void)
{
    int rc = -1;
    CF_WITH(cf_executor, ex, cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 })) {
        if (!ex) /* creation can fail: the body still runs once, with NULL */
            break;
        cf_autoptr(cf_future) f = cf_submit(ex, slow_square, (void *)7);
        void *value;
        rc = cf_future_result(f, CF_FOREVER, &value); /* CF_EINVAL if f is NULL */
        if (rc == 0)
            printf("1. with: slow_square(7) = %ld\n", (long)(intptr_t)value);
    } /* here: f unreferenced, then ex shut down (waiting) and freed */
    return rc;
}

/* 2. An early return from inside the block.
 *
 *     def first_square_over(limit):
 *         with ThreadPoolExecutor(max_workers=2) as ex:
 *             for square in ex.map(slow_square, range(10)):
 *                 if square > limit:
 *                     return square
 *         return -1
 *
 * The return leaves the map iterator first: cf_map_free cancels the items
 * that have not started (Python's map generator does the same when it is
 * closed). Then the executor is shut down, which waits for the items that
 * had started. So when the function returns, no task is still running.
 */
static intptr_t first_square_over(intptr_t limit)
{
    void *args[10];
    for (intptr_t i = 0; i < 10; i++)
        args[i] = (void *)i;

    CF_WITH(cf_executor, ex, cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 })) {
        if (!ex)
            return -1;
        cf_autoptr(cf_map_iter) squares = cf_map(ex, slow_square, args, 10, NULL);
        void *square;
        while (squares && cf_map_next(squares, &square) == 1)
            if ((intptr_t)square > limit)
                return (intptr_t)square; /* frees squares, then ex, then returns */
    }
    return -1;
}

/* 3. cf_autoptr for a whole function's scope, no block needed.
 *
 *     ex = ThreadPoolExecutor()      # and its shutdown when the function ends
 *     fs = [ex.submit(slow_square, i) for i in range(4)]
 *     total = sum(f.result() for f in as_completed(fs))
 */
static intptr_t sum_as_completed(void)
{
    cf_autoptr(cf_executor) ex = cf_thread_pool_new(NULL);
    if (!ex)
        return -1;
    cf_future *fs[4] = { NULL };
    for (intptr_t i = 0; i < 4; i++)
        fs[i] = cf_submit(ex, slow_square, (void *)i);

    intptr_t total = 0;
    {
        cf_autoptr(cf_as_completed) it = cf_as_completed_new(fs, 4, CF_FOREVER);
        cf_future *f;
        void *value;
        while (it && cf_as_completed_next(it, &f) == 1)
            if (cf_future_result(f, 0, &value) == 0)
                total += (intptr_t)value;
    } /* it freed here: it held its own references to the futures */

    for (int i = 0; i < 4; i++)
        cf_future_unref(fs[i]);
    return total; /* ex shut down (waiting) and freed after the return value is computed */
}

/* 4. A process pool in a `with`: the same shape.
 *
 *     with ProcessPoolExecutor(max_workers=2) as ex:
 *         print(ex.submit(slow_square, 9).result())
 */
static int process_with_block(void)
{
    int rc = -1;
    CF_WITH(cf_executor, ex, cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 })) {
        if (!ex && cf_last_error() == CF_ENOTSUP) {
            printf("NOTE: process pool not available in this build (CF_ENOTSUP): "
                   "skipping part 4\n");
            rc = 0;
            break;
        }
        if (!ex)
            break;
        cf_autoptr(cf_future) f = cf_submit(ex, slow_square, (void *)9);
        void *value;
        rc = cf_future_result(f, CF_FOREVER, &value);
        if (rc == 0)
            printf("4. process pool: slow_square(9) = %ld\n", (long)(intptr_t)value);
    }
    return rc;
}

int main(void)
{
    if (with_block() != 0)
        return 1;

    atomic_store(&started, 0);
    atomic_store(&finished, 0);
    intptr_t first = first_square_over(10);
    int now_started = atomic_load(&started), now_finished = atomic_load(&finished);
    printf("2. early return: first square over 10 is %ld; %d tasks started, %d finished, "
           "none still running\n",
           (long)first, now_started, now_finished);
    if (first != 16 || now_started != now_finished)
        return 1;

    intptr_t total = sum_as_completed();
    printf("3. autoptr + as_completed: 0 + 1 + 4 + 9 = %ld\n", (long)total);
    if (total != 14)
        return 1;

    if (process_with_block() != 0)
        return 1;
    printf("every scope cleaned up after itself\n");
    return 0;
}
