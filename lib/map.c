/* cf_map: Python's Executor.map (3.14) with chunking, buffersize, a timeout
 * from the call, and an unordered mode.
 *
 * Each task in flight has a slot, linked in submission order. In order, the
 * iterator waits on the oldest slot's future; unordered, a listener on each
 * future moves its slot to a ready list as it completes. The values of the
 * task being yielded (one value, or a chunk's values) sit in `values` so that
 * cf_map_next inside a chunk is an index increment.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdint.h>
#include <string.h>

typedef struct map_slot map_slot;
struct map_slot {
    map_slot *prev, *next;  /* in flight, submission order (iterating thread only) */
    map_slot *ready_next;   /* unordered: completion order, under it->lock */
    cf_future *f;           /* NULL when the submit failed... */
    int error;              /* ...with this code */
    cf__listener listener;  /* unordered */
    cf_map_iter *it;
};

struct cf_map_iter {
    /* The fast path: values of the task being yielded. */
    void **values;
    size_t pos, count;
    void *one; /* values for a one-item task */

    cf_executor *ex;
    cf_fn fn;
    size_t chunksize; /* > 1: chunked tasks */
    size_t buffersize;
    size_t arg_size;
    bool unordered;
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

    cf_future *cur;                  /* the future whose values are being yielded */
    int cur_fail;                    /* its chunk failed after `count` values with this */
    const cf_exception *cur_fail_exc;
    cf_future *failed;               /* keeps exc alive */
    const cf_exception *exc;         /* cf_map_exception */
    bool done;

    /* unordered */
    uv_mutex_t lock;
    uv_cond_t cond;
    map_slot *ready_head, *ready_tail;
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
    s->it = it;
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

/* With it->lock held. */
static void slot_ready_locked(cf_map_iter *it, map_slot *s)
{
    s->ready_next = NULL;
    if (it->ready_tail)
        it->ready_tail->ready_next = s;
    else
        it->ready_head = s;
    it->ready_tail = s;
}

static void notify_ready(cf__listener *l, cf_future *f)
{
    (void)f;
    map_slot *s = l->data;
    cf_map_iter *it = s->it;
    uv_mutex_lock(&it->lock);
    slot_ready_locked(it, s);
    uv_cond_signal(&it->cond); /* under the lock: the iterator may go right after */
    uv_mutex_unlock(&it->lock);
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
    if (!it->unordered)
        return;
    s->listener.notify = notify_ready;
    s->listener.data = s;
    if (!s->f || !cf__future_listen(s->f, &s->listener)) {
        uv_mutex_lock(&it->lock);
        slot_ready_locked(it, s);
        uv_mutex_unlock(&it->lock);
    }
}

/* Cancel and release every task in flight. */
static void cancel_rest(cf_map_iter *it)
{
    map_slot *s = it->head;
    while (s) {
        map_slot *next = s->next;
        if (s->f) {
            if (it->unordered) /* first, so the cancel notifies nobody here */
                cf__future_unlisten(s->f, &s->listener);
            cf_future_cancel(s->f);
            cf_future_unref(s->f);
        }
        slot_put(it, s);
        s = next;
    }
    it->head = it->tail = NULL;
    it->ready_head = it->ready_tail = NULL; /* every ready slot was in flight too */
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

/* Build the next task's call: 1 made, 0 no arguments left, < 0 an error. */
static int make_call(cf_map_iter *it, cf__call *call)
{
    memset(call, 0, sizeof *call);
    call->fn = it->fn;
    call->arg_size = it->arg_size;
    void *arg;
    if (it->chunksize <= 1) {
        if (!next_item(it, &arg))
            return 0;
        if (it->arg_size == 0) {
            call->arg = arg;
            return 1;
        }
        if (!arg)
            return CF_EINVAL;
        if (!(call->arg = cf__malloc(it->arg_size)))
            return CF_ENOMEM;
        memcpy(call->arg, arg, it->arg_size);
        return 1;
    }

    size_t cap = it->chunksize;
    if (!it->source && it->n - it->next_arg < cap)
        cap = it->n - it->next_arg;
    if (cap == 0) {
        it->source_end = true;
        return 0;
    }
    size_t item_size = it->arg_size ? it->arg_size : sizeof *call->items;
    if (cap > SIZE_MAX / item_size)
        return CF_ENOMEM;
    if (it->arg_size == 0) { /* not zeroed: every slot up to count is written */
        if (!(call->items = cf__malloc(cap * item_size)))
            return CF_ENOMEM;
        if (!it->source) { /* an array: one copy */
            memcpy(call->items, it->args + it->next_arg, cap * sizeof *call->items);
            it->next_arg += cap;
            call->count = cap;
            return 1;
        }
    } else if (!(call->item_bytes = cf__malloc(cap * item_size))) {
        return CF_ENOMEM;
    }
    size_t k = 0;
    while (k < cap && next_item(it, &arg)) {
        if (it->arg_size == 0) {
            call->items[k++] = arg;
        } else if (!arg) {
            cf__call_clear(call);
            return CF_EINVAL;
        } else {
            memcpy(call->item_bytes + k * it->arg_size, arg, it->arg_size);
            k++;
        }
    }
    if (k == 0) {
        cf__call_clear(call);
        return 0;
    }
    call->count = k;
    return 1;
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
    it->deadline = opts->timeout > 0 ? cf__deadline(opts->timeout) : CF__NO_DEADLINE;

    if (it->unordered) {
        if (uv_mutex_init(&it->lock) != 0) {
            cf__free(it);
            return cf__fail(CF_ESYSTEM);
        }
        if (uv_cond_init(&it->cond) != 0) {
            uv_mutex_destroy(&it->lock);
            cf__free(it);
            return cf__fail(CF_ESYSTEM);
        }
    }

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

cf_map_iter *cf_map(cf_executor *ex, cf_fn fn, void *const *args, size_t n,
                    const cf_map_opts *opts)
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

/* The next slot to yield, waited for, unlinked: 0 and *slot (NULL at the
 * end), or CF_ETIMEDOUT. */
static int next_slot(cf_map_iter *it, map_slot **slot)
{
    map_slot *s;
    if (!it->unordered) {
        s = it->head;
        if (s && s->f) {
            int rc = cf__future_wait_done(s->f, it->deadline);
            if (rc != 0)
                return rc;
        }
    } else {
        int rc = 0;
        uv_mutex_lock(&it->lock);
        while (!it->ready_head && it->head) {
            if (!cf__cond_wait_until(&it->cond, &it->lock, it->deadline)) {
                rc = CF_ETIMEDOUT;
                break;
            }
        }
        s = rc == 0 ? it->ready_head : NULL;
        if (s) {
            it->ready_head = s->ready_next;
            if (!it->ready_head)
                it->ready_tail = NULL;
        }
        uv_mutex_unlock(&it->lock);
        if (rc != 0)
            return rc;
    }
    if (s)
        slot_unlink(it, s);
    *slot = s;
    return 0;
}

/* Kept out of line so that cf_map_next's fast path stays a leaf function. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static int map_next_slow(cf_map_iter *it, void **value)
{
    for (;;) {
        if (it->pos < it->count) {
            void *v = it->values[it->pos++];
            if (value)
                *value = v;
            return 1;
        }
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
        cf_future_unref(it->cur); /* its last value was yielded by the previous call */
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
        cf_future *f = s->f;
        rc = s->error;
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
    }
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

const cf_exception *cf_map_exception(cf_map_iter *it)
{
    return it ? it->exc : NULL;
}

void cf_map_free(cf_map_iter *it)
{
    if (!it)
        return;
    cancel_rest(it);
    cf_future_unref(it->cur);
    cf_future_unref(it->failed);
    map_slot *s = it->free_slots;
    while (s) {
        map_slot *next = s->next;
        cf__free(s);
        s = next;
    }
    if (it->unordered) {
        uv_cond_destroy(&it->cond);
        uv_mutex_destroy(&it->lock);
    }
    cf__free(it);
}
