/* cf_map: Python's Executor.map (3.14) with chunking, buffersize, a timeout
 * from the call, and an unordered mode.
 *
 * Each task in flight has a slot, linked in submission order. In order, the
 * iterator waits on the oldest slot's future; unordered, a done queue gets
 * each slot as its future completes. The values of the task being yielded
 * (one value, or a chunk's values) sit in `values` so that cf_map_next
 * inside a chunk is an index increment, and cf_map_next_batch hands them out
 * at once.
 *
 * On a thread pool nothing is copied: a chunk reads its items in the
 * caller's args array (so cf_map_free waits for the tasks still running),
 * and with buffersize 0 the chunks write their results into one block the
 * map shares with them (cf__chunk_block). A process pool's items are copied
 * when their task is made, since they cross the pipe.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <sched.h>
#include <stdint.h>
#include <string.h>

typedef struct map_slot map_slot;
struct map_slot {
    cf__done_item done;    /* first (a popped item is its slot); unordered only */
    map_slot *prev, *next; /* in flight, submission order (iterating thread only) */
    cf_future *f;          /* NULL when the submit failed... */
    int error;             /* ...with this code */
};

struct cf_map_iter {
    /* The fast path: values of the task being yielded. */
    void *const *values;
    size_t pos, count;
    void *one; /* values for a one-item task */

    cf_executor *ex;
    cf_fn fn;
    size_t chunksize; /* > 1: chunked tasks */
    size_t buffersize;
    size_t arg_size;
    bool unordered;
    bool in_process;          /* the executor's tasks run in this process */
    cf__chunk_block *results; /* the chunks' results, or NULL: one block each */
    uint64_t deadline;

    /* Where the arguments come from: an array, or a source. */
    void *const *args;
    size_t n, next_arg;
    cf_arg_source source;
    void *userdata;
    bool source_end;   /* no more arguments */
    bool submit_ended; /* a submit failed: submit no more */
    int last_error;    /* an error to report after the tasks in flight */

    map_slot *head, *tail; /* in flight */
    map_slot *free_slots;
    map_slot *running; /* stopped early, but already running: they read args */

    cf_future *cur; /* the future whose values are being yielded */
    int cur_fail;   /* its chunk failed after `count` values with this */
    const cf_exception *cur_fail_exc;
    cf_future *failed;       /* keeps exc alive */
    const cf_exception *exc; /* cf_map_exception */
    bool done;

    cf__done_queue ready; /* unordered: the slots in completion order */
};

/* ------------------------------------------------------------------------ */
/* Slots                                                                     */
/* ------------------------------------------------------------------------ */

static map_slot *slot_get(cf_map_iter *it)
{
    map_slot *s = it->free_slots;
    if (s)
        it->free_slots = s->next;
    else if (!(s = cf__malloc(sizeof *s)))
        return NULL;
    memset(s, 0, sizeof *s);
    return s;
}

static void slot_put(cf_map_iter *it, map_slot *s)
{
    s->next = it->free_slots;
    it->free_slots = s;
}

static void slot_unlink(cf_map_iter *it, map_slot *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        it->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        it->tail = s->prev;
    s->prev = s->next = NULL;
}

/* Append a slot for future f (or for a failed submit: f NULL, error). */
static void slot_append(cf_map_iter *it, map_slot *s)
{
    s->prev = it->tail;
    if (it->tail)
        it->tail->next = s;
    else
        it->head = s;
    it->tail = s;
    if (it->unordered)
        cf__done_queue_watch(&it->ready, &s->done, s->f);
}

/* Whether the task gets the caller's own pointer rather than a copy: on an
 * executor whose tasks run in this process, for array arguments (which the
 * caller keeps valid until cf_map_free). A source's bytes are copied at once:
 * it may reuse its buffer. */
static bool borrows(const cf_map_iter *it)
{
    return it->in_process && !it->source;
}

/* Cancel every task in flight and release those that have not started or
 * have finished. The others are running; when they read the caller's args
 * in place, they go to it->running for cf_map_free to wait for. */
static void cancel_rest(cf_map_iter *it)
{
    map_slot *s = it->head;
    while (s) {
        map_slot *next = s->next;
        if (s->f) {
            if (it->unordered) /* first, so the cancel notifies nobody here */
                cf__done_queue_unwatch(&s->done, s->f);
            if (!cf_future_cancel(s->f) && borrows(it) && !cf_future_done(s->f)) {
                s->next = it->running;
                it->running = s;
                s = next;
                continue;
            }
            cf_future_unref(s->f);
        }
        slot_put(it, s);
        s = next;
    }
    it->head = it->tail = NULL;
    if (it->unordered) /* every ready slot was in flight too */
        cf__done_queue_clear(&it->ready);
}

/* ------------------------------------------------------------------------ */
/* Making and submitting tasks                                               */
/* ------------------------------------------------------------------------ */

/* The next argument: true and *arg, or false at the end. */
static bool next_item(cf_map_iter *it, void **arg)
{
    if (it->source_end)
        return false;
    if (!it->source) {
        if (it->next_arg < it->n) {
            *arg = it->args[it->next_arg++];
            return true;
        }
    } else if (it->source(it->userdata, arg)) {
        return true;
    }
    it->source_end = true;
    return false;
}

/* A one-item call: 1 made, 0 no arguments left, < 0 an error. */
static int make_one_call(cf_map_iter *it, cf__call *call)
{
    void *arg;
    if (!next_item(it, &arg))
        return 0;
    if (it->arg_size == 0 || borrows(it)) {
        call->arg = arg;
        return 1;
    }
    if (!arg)
        return CF_EINVAL;
    if (!(call->arg = cf__malloc(it->arg_size)))
        return CF_ENOMEM;
    memcpy(call->arg, arg, it->arg_size);
    call->arg_size = it->arg_size;
    return 1;
}

/* A chunk of `cap` items of the args array, which the task reads where it
 * is (in process) or from a copy (the bytes will cross to another process). */
static int make_array_chunk(cf_map_iter *it, cf__call *call, size_t cap)
{
    size_t first = it->next_arg;
    void *const *args = it->args + first;
    it->next_arg += cap;
    call->count = cap;
    if (borrows(it)) {
        call->items = args; /* arg stays NULL: nothing to free */
        if (it->results)
            call->into = cf__chunk_block_take(it->results, first / it->chunksize);
        return 1;
    }
    size_t size = it->arg_size ? it->arg_size : sizeof *args;
    if (cap > SIZE_MAX / size)
        return CF_ENOMEM;
    unsigned char *copy = cf__malloc(cap * size); /* every byte is written */
    if (!copy)
        return CF_ENOMEM;
    call->arg = copy; /* the call owns it */
    if (it->arg_size == 0) {
        memcpy(copy, args, cap * sizeof *args);
        call->items = (void **)copy;
        return 1;
    }
    for (size_t i = 0; i < cap; i++)
        memcpy(copy + i * it->arg_size, args[i], it->arg_size);
    call->item_bytes = copy;
    call->arg_size = it->arg_size;
    return 1;
}

/* A chunk of up to `cap` items from the source, copied (values, or the
 * arg_size bytes each item points at). */
static int make_source_chunk(cf_map_iter *it, cf__call *call, size_t cap)
{
    size_t size = it->arg_size ? it->arg_size : sizeof(void *);
    if (cap > SIZE_MAX / size)
        return CF_ENOMEM;
    unsigned char *copy = cf__malloc(cap * size); /* written up to count */
    if (!copy)
        return CF_ENOMEM;
    void **values = (void **)copy;
    size_t k = 0;
    void *arg;
    while (k < cap && next_item(it, &arg)) {
        if (it->arg_size == 0) {
            values[k++] = arg;
        } else if (!arg) {
            cf__free(copy);
            return CF_EINVAL;
        } else {
            memcpy(copy + k * it->arg_size, arg, it->arg_size);
            k++;
        }
    }
    if (k == 0) {
        cf__free(copy);
        return 0;
    }
    call->count = k;
    call->arg = copy; /* the call owns it */
    if (it->arg_size == 0) {
        call->items = values;
    } else {
        call->item_bytes = copy;
        call->arg_size = it->arg_size;
    }
    return 1;
}

/* Build the next task's call: 1 made, 0 no arguments left, < 0 an error. */
static int make_call(cf_map_iter *it, cf__call *call)
{
    memset(call, 0, sizeof *call);
    call->fn = it->fn;
    if (it->chunksize <= 1)
        return make_one_call(it, call);
    if (it->source)
        return make_source_chunk(it, call, it->chunksize);
    size_t left = it->n - it->next_arg;
    if (left == 0) {
        it->source_end = true;
        return 0;
    }
    return make_array_chunk(it, call, left < it->chunksize ? left : it->chunksize);
}

/* Submit the next task: 1 submitted, 0 no arguments left, < 0 its error
 * (also recorded as a slot, so it comes out in its turn). */
static int submit_next(cf_map_iter *it)
{
    cf__call call;
    map_slot *s = slot_get(it);
    if (!s) { /* no slot to hold the error: it comes out after the rest */
        it->submit_ended = true;
        it->last_error = CF_ENOMEM;
        return CF_ENOMEM;
    }
    int rc = make_call(it, &call);
    if (rc == 0) {
        slot_put(it, s);
        return 0;
    }
    if (rc > 0) {
        s->f = cf__submit_call(it->ex, &call);
        rc = s->f ? 1 : cf_last_error();
        if (rc == 0) /* should not happen: keep the error an error */
            rc = CF_ENOMEM;
    }
    if (rc < 0) {
        s->error = rc;
        it->submit_ended = true;
    }
    slot_append(it, s);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */
/* ------------------------------------------------------------------------ */

static cf_map_iter *map_start(cf_map_iter *it, const cf_map_opts *opts)
{
    it->chunksize = opts->chunksize;
    it->buffersize = opts->buffersize;
    it->arg_size = opts->arg_size;
    it->unordered = opts->unordered;
    it->in_process = it->ex->ops->in_process;
    it->deadline = opts->timeout > 0 ? cf__deadline(opts->timeout) : CF__NO_DEADLINE;

    if (it->unordered && cf__done_queue_init(&it->ready) != 0) {
        cf__free(it);
        return cf__fail(CF_ESYSTEM);
    }
    /* Everything is submitted now: the results may as well share a block
     * (without one, each chunk allocates its own). */
    if (borrows(it) && it->chunksize > 1 && it->buffersize == 0 && it->n > 0)
        it->results = cf__chunk_block_new(it->n, it->chunksize);

    /* Python submits everything now (or buffersize tasks); so do we. */
    for (size_t i = 0; !it->buffersize || i < it->buffersize; i++) {
        int rc = submit_next(it);
        if (rc == 0)
            break;
        if (rc < 0) {
            cf_map_free(it);
            return cf__fail(rc);
        }
    }
    return it;
}

static bool valid_opts(const cf_map_opts *opts)
{
    return opts->timeout >= 0; /* also rejects NaN */
}

cf_map_iter *cf_map(cf_executor *ex, cf_fn fn, void *const *args, size_t n, const cf_map_opts *opts)
{
    static const cf_map_opts defaults;
    if (!opts)
        opts = &defaults;
    if (CF__CHECK_RESERVED(opts, "cf_map_opts") != 0)
        return NULL; /* the last error says which word */
    if (!ex || !fn || (!args && n > 0) || !valid_opts(opts))
        return cf__fail(CF_EINVAL);
    if (opts->arg_size > 0)
        for (size_t i = 0; i < n; i++)
            if (!args[i])
                return cf__fail(CF_EINVAL);
    cf_map_iter *it = cf__calloc(1, sizeof *it);
    if (!it)
        return cf__fail(CF_ENOMEM);
    it->ex = ex;
    it->fn = fn;
    it->args = args;
    it->n = n;
    return map_start(it, opts);
}

cf_map_iter *cf_map_source(cf_executor *ex, cf_fn fn, cf_arg_source next_arg, void *userdata,
                           const cf_map_opts *opts)
{
    static const cf_map_opts defaults;
    if (!opts)
        opts = &defaults;
    if (CF__CHECK_RESERVED(opts, "cf_map_opts") != 0)
        return NULL; /* the last error says which word */
    if (!ex || !fn || !next_arg || !valid_opts(opts))
        return cf__fail(CF_EINVAL);
    cf_map_iter *it = cf__calloc(1, sizeof *it);
    if (!it)
        return cf__fail(CF_ENOMEM);
    it->ex = ex;
    it->fn = fn;
    it->source = next_arg;
    it->userdata = userdata;
    return map_start(it, opts);
}

/* ------------------------------------------------------------------------ */
/* Iteration                                                                 */
/* ------------------------------------------------------------------------ */

/* Stop: the rest is cancelled, later calls return 0. */
static int map_stop(cf_map_iter *it, int rc)
{
    it->done = true;
    cancel_rest(it);
    return rc;
}

/* Ordered, the oldest task not done yet: before waiting for it, wait (for a
 * while) for the one AHEAD places after it, which usually ends after it. The
 * tasks of a map queue in order, so when the oldest is short the later one's
 * end finds it and the AHEAD before it done: one wake-up of this thread for
 * AHEAD tasks instead of one each (a wake-up costs the completing worker a
 * system call, and an idle CPU's wake-up, tens of microseconds on a VM).
 * Bounded by AHEAD_WAIT_NS, so a later task that waits for this consumer, or
 * a long one, delays the oldest's values by no more than that. */
#define AHEAD 16
#define AHEAD_WAIT_NS 50000u

static void wait_ahead(cf_map_iter *it, const map_slot *oldest)
{
    /* Only when every task is submitted (a later yield would delay the next
     * submit) and this thread is not one of the pool's (it helps instead). */
    if (it->buffersize || cf__worker_pool == it->ex)
        return;
    const map_slot *s = oldest;
    for (int i = 0; i < AHEAD && s->next; i++)
        s = s->next;
    if (s == oldest || !s->f)
        return;
    uint64_t until = uv_hrtime() + AHEAD_WAIT_NS;
    (void)cf__future_wait_done(s->f, until < it->deadline ? until : it->deadline);
}

/* The next slot to yield, waited for, unlinked: 0 and *slot (NULL at the
 * end), or CF_ETIMEDOUT. */
static int next_slot(cf_map_iter *it, map_slot **slot)
{
    map_slot *s;
    if (!it->unordered) {
        s = it->head;
        if (s && s->f && !cf_future_done(s->f)) {
            wait_ahead(it, s);
            int rc = cf__future_wait_done(s->f, it->deadline);
            if (rc != 0)
                return rc;
        }
    } else {
        cf__done_item *item = NULL;
        if (it->head) { /* something in flight: it will come */
            /* From a task of the map's own pool: help while waiting. */
            bool help = cf__worker_pool == it->ex;
            int rc = cf__done_queue_pop(&it->ready, it->deadline, help, &item);
            if (rc != 0)
                return rc;
        }
        s = (map_slot *)item;
    }
    if (s)
        slot_unlink(it, s);
    *slot = s;
    return 0;
}

/* The next slot's task is done: make its values the ones to yield (1), or
 * stop with its error. */
static int take_slot(cf_map_iter *it, map_slot *s)
{
    cf_future *f = s->f;
    int rc = s->error;
    slot_put(it, s);
    if (!f)
        return map_stop(it, rc);
    void *v = NULL;
    rc = cf_future_result(f, 0, &v);
    if (rc != 0) {
        const cf_exception *exc = NULL;
        if (cf_future_exception(f, 0, &exc) != 0)
            exc = NULL;
        it->failed = f;
        it->exc = exc;
        return map_stop(it, rc);
    }
    it->cur = f;
    it->pos = 0;
    if (it->chunksize > 1) {
        cf__chunk_result *chunk = v;
        it->values = chunk->values;
        it->count = chunk->count;
        it->cur_fail = chunk->fail_status;
        it->cur_fail_exc = &chunk->fail;
    } else {
        it->one = v;
        it->values = &it->one;
        it->count = 1;
    }
    return 1;
}

/* The values of the current task are all yielded: go on to the next task
 * (1), or report the end (0) or an error. */
static int advance(cf_map_iter *it)
{
    if (it->done)
        return 0;
    if (it->cur_fail) { /* a chunk failed after the values just yielded */
        int rc = it->cur_fail;
        it->failed = it->cur;
        it->exc = it->cur_fail_exc;
        it->cur = NULL;
        it->cur_fail = 0;
        return map_stop(it, rc);
    }
    cf_future_unref(it->cur); /* its last value was yielded before this call */
    it->cur = NULL;
    it->values = NULL;
    it->pos = it->count = 0;

    if (it->buffersize && !it->source_end && !it->submit_ended)
        submit_next(it); /* a failure comes out in its turn */

    map_slot *s;
    int rc = next_slot(it, &s);
    if (rc != 0)
        return map_stop(it, rc);
    if (!s) {
        if (it->last_error)
            return map_stop(it, it->last_error);
        it->done = true;
        return 0;
    }
    return take_slot(it, s);
}

/* Kept out of line so that cf_map_next's fast path stays a leaf function. */
static __attribute__((noinline)) int map_next_slow(cf_map_iter *it, void **value)
{
    int rc;
    do {
        rc = advance(it);
    } while (rc == 1 && it->count == 0); /* a chunk that failed at its first item */
    if (rc != 1)
        return rc;
    void *v = it->values[it->pos++];
    if (value)
        *value = v;
    return 1;
}

int cf_map_next(cf_map_iter *it, void **value)
{
    if (!it)
        return CF_EINVAL;
    if (it->pos < it->count) { /* inside a chunk: stay cheap */
        void *v = it->values[it->pos++];
        if (value)
            *value = v;
        return 1;
    }
    return map_next_slow(it, value);
}

int cf_map_next_batch(cf_map_iter *it, void *const **values, size_t *count)
{
    if (!it || !values || !count)
        return CF_EINVAL;
    if (it->pos == it->count) {
        int rc = map_next_slow(it, NULL);
        if (rc != 1)
            return rc;
        it->pos--; /* that value comes first in the batch */
    }
    *values = it->values + it->pos;
    *count = it->count - it->pos;
    it->pos = it->count;
    return 1;
}

const cf_exception *cf_map_exception(cf_map_iter *it)
{
    return it ? it->exc : NULL;
}

void cf_map_free(cf_map_iter *it)
{
    if (!it)
        return;
    cancel_rest(it);
    /* The caller may free args once we return: no task may still read them.
     * (From a task of the same pool, these waits run queued tasks.) */
    for (map_slot *s = it->running; s; s = it->running) {
        while (cf__future_wait_done(s->f, CF__NO_DEADLINE) != 0)
            sched_yield(); /* the wait could not block (CF_ESYSTEM): poll */
        cf_future_unref(s->f);
        it->running = s->next;
        slot_put(it, s);
    }
    cf_future_unref(it->cur);
    cf_future_unref(it->failed);
    cf__chunk_block_unref(it->results); /* the chunks still running hold their own */
    map_slot *s = it->free_slots;
    while (s) {
        map_slot *next = s->next;
        cf__free(s);
        s = next;
    }
    if (it->unordered)
        cf__done_queue_destroy(&it->ready);
    cf__free(it);
}
