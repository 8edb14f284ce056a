/* The remote-pool core: cf_parallel_for. Consecutive chunks travel in
 * tasks of up to BATCH_MAX chunks (cf__range_call), fewer towards the end:
 * a task's input slice crosses with it, its worker calls fn on each chunk
 * in turn, and its result is the output slice, which the manager thread
 * copies straight into the caller's array, from the reply or from the slot
 * of shared memory the reply names (process workers: process_pool.c). A
 * reply of another size is garbled: its worker is replaced, the task fails.
 * The array outlives every task: the caller waits for each before it returns.
 * Batching divides what a message costs (the system calls, the manager's
 * handling, a future) among its chunks: a process-pool loop of 1000-item
 * chunks ran 1.2-1.5x faster with up to 8 a task. The pool's dispatch
 * hands the tasks out as it hands out any (idle workers first, then a few
 * ahead), so a slower worker simply takes fewer, and the small tasks at the
 * end even the finish out.
 * The caller does not run chunks itself: they run in worker processes, as a
 * process pool's tasks do, so that a crash costs one task, never the
 * caller. As in cf_map, the first failing chunk (in the loop's order) is
 * reported, and the chunks that had not started are cancelled.
 * SPDX-License-Identifier: MIT */
#include "remote_core.h"

#include <string.h>

/* Chunks per task, at most; the share of the chunks left (per worker) that
 * one task may take (with 2 workers, 8 while 64 or more are left); and the
 * most slice bytes a task gathers (what the manager reads at once: larger
 * tasks ran slower, not faster). */
#define BATCH_MAX 8
#define BATCH_DIVISOR 4
#define BATCH_BYTES (64u * 1024u)

/* Chunks [c, c + k) are the items [chunk_begin(c), chunks_end(c, k)). */
static size_t chunk_begin(const cf__loop *loop, size_t c)
{
    return c * loop->grain;
}

static size_t chunks_end(const cf__loop *loop, size_t c, size_t k)
{
    size_t begin = chunk_begin(loop, c);
    size_t left = loop->n - begin;
    return k > left / loop->grain ? loop->n : begin + k * loop->grain; /* no overflow */
}

/* How many chunks the task starting at chunk c takes: a share of those
 * left, within BATCH_MAX and the pool's message limit (never below one:
 * a chunk too big on its own fails at submit). */
static size_t chunks_per_task(const cf__remote *r, const cf__loop *loop, size_t c)
{
    size_t left = loop->chunks - c;
    size_t workers = r->max_workers > 0 ? (size_t)r->max_workers : 1;
    size_t take = left / (BATCH_DIVISOR * workers);
    take = take < 1 ? 1 : take > BATCH_MAX ? BATCH_MAX : take;
    size_t item_bytes = loop->in_size > loop->out_size ? loop->in_size : loop->out_size;
    size_t grain = loop->grain < loop->n ? loop->grain : loop->n;
    size_t chunk_bytes = item_bytes * grain; /* <= n * size: checked by cf_parallel_for */
    size_t bytes = r->max_message < BATCH_BYTES ? r->max_message : BATCH_BYTES;
    if (chunk_bytes > 0 && take > bytes / chunk_bytes)
        take = bytes / chunk_bytes;
    return take < 1 ? 1 : take;
}

/* The task for chunks [c, c + k): its range and a copy of its input slice. */
static cf__range_call *make_range(const cf__loop *loop, size_t c, size_t k)
{
    size_t begin = chunk_begin(loop, c);
    size_t end = chunks_end(loop, c, k);
    size_t in_bytes = loop->in ? (end - begin) * loop->in_size : 0;
    cf__range_call *rc = cf__malloc(sizeof *rc + in_bytes);
    if (!rc)
        return NULL;
    *rc = (cf__range_call){
        .fn = loop->fn,
        .ctx = loop->ctx,
        .begin = begin,
        .end = end,
        .grain = loop->grain,
        .in_size = loop->in ? loop->in_size : 0,
        .out_size = loop->out ? loop->out_size : 0,
        .dest = loop->out ? loop->out + begin * loop->out_size : NULL,
    };
    if (in_bytes)
        memcpy(rc->in, loop->in + begin * loop->in_size, in_bytes);
    return rc;
}

/* Record the loop's first failure: chunk f failed with status rc. */
static void record_failure(cf__loop *loop, cf_future *f, int rc)
{
    const cf_exception *exc = NULL;
    if (cf_future_exception(f, 0, &exc) != 0)
        exc = NULL;
    atomic_store_explicit(&loop->failed, true, memory_order_relaxed);
    loop->fail_status = rc;
    loop->fail_code = exc ? exc->code : rc;
    loop->fail_message = exc ? cf__strdup(exc->message) : NULL;
}

/* Submit every chunk, in tasks, into fs: 0, or the error that stopped it
 * (with this thread's last error saying why); *tasks counts those
 * submitted. */
static int submit_chunks(cf__remote *r, cf__loop *loop, cf_future **fs, size_t *tasks)
{
    *tasks = 0;
    for (size_t c = 0; c < loop->chunks;) {
        size_t k = chunks_per_task(r, loop, c);
        cf__call call = { .range = make_range(loop, c, k) };
        if (!call.range)
            return CF_ENOMEM;
        size_t bytes = cf__wire_call_data_size(&call);
        if (bytes > r->max_message) { /* only a first chunk can be: nothing ran */
            cf__call_clear(&call);
            cf__set_last_error_msg(CF_ETOOBIG,
                                   "a chunk's slice of %zu bytes exceeds the pool's message "
                                   "limit of %zu bytes: give a smaller grain",
                                   bytes, r->max_message);
            return CF_ETOOBIG;
        }
        if (!(fs[*tasks] = cf__submit_call(&r->base, &call)))
            return cf_last_error();
        ++*tasks;
        c += k;
    }
    return 0;
}

int cf__remote_parallel_for(cf_executor *ex, cf__loop *loop)
{
    cf__remote *r = (cf__remote *)ex;
    if (cf__remote_on_manager(r)) {
        /* A done-callback runs on the thread that delivers the chunks'
         * results: waiting there would wait for itself. */
        cf__set_last_error_msg(CF_EINVALIDSTATE,
                               "cf_parallel_for on a %s from its own done-callback would "
                               "wait for itself",
                               ex->ops->name);
        return CF_EINVALIDSTATE;
    }
    cf_future **fs = cf__calloc(loop->chunks, sizeof *fs); /* at most a task per chunk */
    if (!fs)
        return CF_ENOMEM;
    size_t tasks;
    int rc = submit_chunks(r, loop, fs, &tasks);
    /* The failed submit's message, kept across the waits below (which may
     * set this thread's last error) to be this call's again at the end. */
    char *why = rc != 0 ? cf__strdup(cf_last_error_message()) : NULL;
    bool stop = rc != 0; /* cancel whatever has not started */
    for (size_t t = 0; t < tasks; t++) {
        cf_future *f = fs[t];
        if (stop)
            cf_future_cancel(f);
        int status = cf_future_result(f, CF_FOREVER, NULL); /* 0: its out slice is in place */
        /* Once stopped, the cancels are ours; before, a cancelled task was
         * cancelled by someone else (a shutdown with cancel_futures): the
         * loop did not complete either. */
        if (status != 0 && !stop) {
            record_failure(loop, f, status);
            stop = true;
        }
        cf_future_unref(f);
    }
    cf__free(fs);
    if (rc != 0) { /* the loop did not complete: the submit's error is its */
        cf__free(loop->fail_message);
        loop->fail_message = NULL;
        loop->fail_status = 0;
        if (why && *why)
            cf__set_last_error_msg(rc, "%s", why);
        else
            cf__set_last_error(rc);
    }
    cf__free(why);
    return rc;
}
