/* The remote-pool core: cf_parallel_for. Each chunk is a task of its own
 * (cf__range_call): its input slice crosses with it, and its result is the
 * output slice, copied into the caller's array as the chunk completes. The
 * pool's dispatch hands the chunks out as it hands out any task (idle
 * workers first, then a few ahead), so a slower worker simply takes fewer.
 * The caller does not run chunks itself: they run in worker processes, as a
 * process pool's tasks do, so that a crash costs one chunk, never the
 * caller. As in cf_map, the first failing chunk (in the loop's order) is
 * reported, and the chunks that had not started are cancelled.
 * SPDX-License-Identifier: MIT */
#include "remote_core.h"

#include <string.h>

/* The task for chunk c: its range and a copy of its input slice. */
static cf__range_call *make_range(const cf__loop *loop, size_t c)
{
    size_t begin = c * loop->grain;
    size_t end = loop->n - begin > loop->grain ? begin + loop->grain : loop->n;
    size_t in_bytes = loop->in ? (end - begin) * loop->in_size : 0;
    cf__range_call *rc = cf__malloc(sizeof *rc + in_bytes);
    if (!rc)
        return NULL;
    *rc = (cf__range_call){
        .fn = loop->fn,
        .ctx = loop->ctx,
        .begin = begin,
        .end = end,
        .in_size = loop->in ? loop->in_size : 0,
        .out_size = loop->out ? loop->out_size : 0,
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

/* Chunk c is done: copy its output slice where it belongs. False when the
 * worker's reply does not have the slice's size (a garbled reply). */
static bool take_output(cf__loop *loop, size_t c, cf_future *f)
{
    if (!loop->out)
        return true;
    size_t begin = c * loop->grain;
    size_t end = loop->n - begin > loop->grain ? begin + loop->grain : loop->n;
    size_t bytes = (end - begin) * loop->out_size;
    void *v = NULL;
    if (cf_future_result(f, 0, &v) != 0 || cf_future_result_size(f) != bytes || !v)
        return false;
    memcpy(loop->out + begin * loop->out_size, v, bytes);
    return true;
}

/* Submit every chunk: how many were, with *rc the error that stopped it
 * (and this thread's last error saying why). */
static size_t submit_chunks(cf__remote *r, cf__loop *loop, cf_future **fs, int *rc)
{
    *rc = 0;
    for (size_t c = 0; c < loop->chunks; c++) {
        cf__call call = { .range = make_range(loop, c) };
        if (!call.range) {
            *rc = CF_ENOMEM;
            return c;
        }
        size_t bytes = cf__wire_call_data_size(&call);
        if (bytes > r->max_message) { /* chunk 0 is the largest: nothing ran */
            cf__call_clear(&call);
            *rc = CF_ETOOBIG;
            cf__set_last_error_msg(CF_ETOOBIG,
                                   "a chunk's slice of %zu bytes exceeds the pool's message "
                                   "limit of %zu bytes: give a smaller grain",
                                   bytes, r->max_message);
            return c;
        }
        if (!(fs[c] = cf__submit_call(&r->base, &call))) {
            *rc = cf_last_error();
            return c;
        }
    }
    return loop->chunks;
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
    cf_future **fs = cf__calloc(loop->chunks, sizeof *fs);
    if (!fs)
        return CF_ENOMEM;
    int rc;
    size_t submitted = submit_chunks(r, loop, fs, &rc);
    /* The failed submit's message, kept across the waits below (which may
     * set this thread's last error) to be this call's again at the end. */
    char *why = rc != 0 ? cf__strdup(cf_last_error_message()) : NULL;
    bool stop = rc != 0; /* cancel whatever has not started */
    for (size_t c = 0; c < submitted; c++) {
        if (stop)
            cf_future_cancel(fs[c]);
        int status = cf_future_result(fs[c], CF_FOREVER, NULL);
        if (status == 0 && !take_output(loop, c, fs[c]))
            status = CF_EBROKEN;
        /* Once stopped, the cancels are ours; before, a cancelled chunk was
         * cancelled by someone else (a shutdown with cancel_futures): the
         * loop did not complete either. */
        if (status != 0 && !stop) {
            record_failure(loop, fs[c], status);
            stop = true;
        }
        cf_future_unref(fs[c]);
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
