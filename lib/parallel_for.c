/* cf_parallel_for: a loop over [0, n) in chunks. The executor's op starts
 * helpers on its workers; the caller and the helpers all run cf__loop_work,
 * which takes the next chunks from a shared counter until none is left
 * (dynamic scheduling: a thread on a slower CPU takes fewer chunks).
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdint.h>

/* Chunks per CPU when the caller leaves the grain to us: enough for a fast
 * CPU to make up for a slow one, few enough that taking one costs nothing. */
#define CHUNKS_PER_CPU 8
#define CLAIM_MAX 8      /* chunks taken at once, at most... */
#define CLAIM_DIVISOR 16 /* ...and at most this fraction of those left */

/* Run chunk c; false when it failed (the first failure is kept). */
static bool run_chunk(cf__loop *loop, size_t c)
{
    const cf_range all = { .begin = 0, .end = loop->n, .in = loop->in, .out = loop->out };
    cf_range r = cf__range_part(&all, c * loop->grain, loop->grain, loop->in_size, loop->out_size);
    cf__outcome out;
    if (cf__run_range(loop->fn, loop->ctx, &r, &out) == 0)
        return true;
    if (!atomic_exchange_explicit(&loop->failed, true, memory_order_relaxed)) {
        loop->fail_status = out.status;
        loop->fail_code = out.code;
        loop->fail_message = out.message;
        out.message = NULL;
    }
    cf__outcome_clear(&out);
    return false;
}

/* How many chunks to take at once: a few while many are left, so that the
 * threads do not meet on `next` for every chunk, and one at a time towards
 * the end, so that a slow thread holds up at most a few chunks. */
static size_t chunks_to_take(size_t left)
{
    size_t take = left / CLAIM_DIVISOR;
    return take < 1 ? 1 : take > CLAIM_MAX ? CLAIM_MAX : take;
}

bool cf__loop_work_some(cf__loop *loop)
{
    /* The load first: `next` then passes `chunks` by at most CLAIM_MAX per
     * thread, far from wrapping (n <= SIZE_MAX / 2). */
    size_t first = atomic_load_explicit(&loop->next, memory_order_relaxed);
    if (first >= loop->chunks || atomic_load_explicit(&loop->failed, memory_order_relaxed))
        return false;
    size_t take = chunks_to_take(loop->chunks - first);
    first = atomic_fetch_add_explicit(&loop->next, take, memory_order_relaxed);
    if (first >= loop->chunks)
        return false;
    size_t end = loop->chunks - first > take ? first + take : loop->chunks;
    for (size_t c = first; c < end; c++)
        if ((c > first && atomic_load_explicit(&loop->failed, memory_order_relaxed)) ||
            !run_chunk(loop, c))
            return false;
    return true;
}

void cf__loop_work(cf__loop *loop)
{
    while (cf__loop_work_some(loop))
        ;
}

/* An array of n items of `size` bytes: both or neither, and addressable. */
static bool valid_array(const void *p, size_t size, size_t n)
{
    if (!p || size == 0)
        return !p && size == 0;
    return n <= SIZE_MAX / size;
}

static size_t chosen_grain(size_t n)
{
    size_t chunks = (size_t)cf__cpu_count() * CHUNKS_PER_CPU;
    size_t grain = n / chunks + (n % chunks != 0);
    return grain ? grain : 1;
}

/* The first failing chunk's status, with its code and message as this
 * thread's last error. */
static int report_failure(cf__loop *loop)
{
    if (loop->fail_message)
        cf__set_last_error_msg(loop->fail_code, "%s", loop->fail_message);
    else
        cf__set_last_error(loop->fail_code);
    cf__free(loop->fail_message);
    loop->fail_message = NULL;
    return loop->fail_status;
}

int cf_parallel_for(cf_executor *ex, size_t n, cf_range_fn fn, void *ctx,
                    const cf_parallel_opts *opts)
{
    static const cf_parallel_opts defaults;
    if (!opts)
        opts = &defaults;
    if (!ex || !fn || n > SIZE_MAX / 2 || !valid_array(opts->in, opts->in_size, n) ||
        !valid_array(opts->out, opts->out_size, n))
        return CF_EINVAL;
    if (CF__CHECK_RESERVED(opts, "cf_parallel_opts") != 0)
        return CF_ENOTSUP;
    if (!ex->ops->parallel_for)
        return CF_ENOTSUP;
    if (cf__executor_forked(ex))
        return CF_EBROKEN;
    if (n == 0)
        return 0;

    cf__loop loop = {
        .fn = fn,
        .ctx = ctx,
        .n = n,
        .grain = opts->grain ? opts->grain : chosen_grain(n),
        .in = opts->in,
        .in_size = opts->in_size,
        .out = opts->out,
        .out_size = opts->out_size,
    };
    loop.chunks = n / loop.grain + (n % loop.grain != 0);
    atomic_init(&loop.next, 0);
    atomic_init(&loop.failed, false);
    int rc = ex->ops->parallel_for(ex, &loop);
    if (rc == 0 && loop.fail_status != 0)
        return report_failure(&loop);
    cf__free(loop.fail_message);
    return rc;
}
