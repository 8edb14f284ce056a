/* Running a task in the current thread: cf_raise and cf_return_copy bind to
 * the outcome of the call under way (a thread-local), on every backend.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdint.h>
#include <string.h>

/* initial-exec: a plain %fs-relative load instead of a __tls_get_addr call
 * per task; fine because the library is linked, not dlopen()ed late (glibc
 * keeps spare static TLS for that case too). */
static _Thread_local cf__outcome *current __attribute__((tls_model("initial-exec")));

/* Record a failure in the current outcome; takes `message`. */
static void outcome_raise(cf__outcome *out, int code, char *message)
{
    cf__free(out->message);
    out->status = CF_ETASK;
    out->code = code;
    out->message = message;
}

void *cf_raise(int code, const char *fmt, ...)
{
    if (!current) {
        if (fmt) {
            va_list ap;
            va_start(ap, fmt);
            cf__vset_last_error_msg(code, fmt, ap);
            va_end(ap);
        } else {
            cf__set_last_error(code);
        }
        return NULL;
    }
    char *message = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        message = cf__vformat(fmt, ap); /* NULL when out of memory: cf_strerror(code) */
        va_end(ap);
    }
    outcome_raise(current, code, message);
    return NULL;
}

void *cf_return_copy(const void *data, size_t size)
{
    cf__outcome *out = current;
    if (!out)
        return cf__fail(CF_EINVAL);
    if (!data && size > 0) {
        outcome_raise(out, CF_EINVAL, cf__strdup("cf_return_copy: NULL data"));
        return NULL;
    }
    void *copy = cf__malloc(size);
    if (!copy) {
        outcome_raise(out, CF_ENOMEM, cf__strdup("cf_return_copy: out of memory"));
        return NULL;
    }
    if (size)
        memcpy(copy, data, size);
    cf__free(out->copy); /* only the last copy can be the result */
    out->copy = copy;
    out->size = size;
    return copy;
}

/* After fn returned `ret` with `out` bound: decide what the result is. */
static void outcome_settle(cf__outcome *out, void *ret)
{
    if (out->status != 0) {
        cf__free(out->copy);
        out->copy = NULL;
        out->size = 0;
        out->value = NULL;
    } else if (out->copy && ret != out->copy) {
        /* A copy was made but something else returned: the return wins. */
        cf__free(out->copy);
        out->copy = NULL;
        out->size = 0;
        out->value = ret;
    } else {
        out->value = ret;
    }
}

void cf__run_call(cf_fn fn, void *arg, cf__outcome *out)
{
    memset(out, 0, sizeof *out);
    cf__outcome *outer = current;
    current = out;
    void *ret = fn(arg);
    current = outer;
    outcome_settle(out, ret);
}

int cf__run_range(cf_range_fn fn, void *ctx, const cf_range *r, cf__outcome *out)
{
    memset(out, 0, sizeof *out);
    cf__outcome *outer = current;
    current = out;
    fn(ctx, r);
    current = outer;
    cf__free(out->copy); /* a loop's chunk has no result */
    out->copy = NULL;
    out->size = 0;
    return out->status;
}

void cf__outcome_clear(cf__outcome *out)
{
    cf__free(out->copy);
    cf__free(out->message);
    memset(out, 0, sizeof *out);
}

void cf__call_clear(cf__call *call)
{
    if (call->count > 0 || call->arg_size > 0) /* owned bytes, or a chunk's block */
        cf__free(call->arg);
    if (call->count > 0 && call->arg_size == 0 && call->into) /* it never ran */
        cf__chunk_result_free(call->into);
    if (call->count == 0)
        cf__free(call->range);
    memset(call, 0, sizeof *call);
}

cf__chunk_result *cf__chunk_result_new(size_t capacity)
{
    if (capacity > (SIZE_MAX - sizeof(cf__chunk_result)) / sizeof(void *))
        return NULL;
    /* One block; the values are not zeroed (a chunk writes each one it
     * counts), which saves touching a page per 512 items twice. */
    cf__chunk_result *chunk = cf__malloc(sizeof *chunk + capacity * sizeof(void *));
    if (!chunk)
        return NULL;
    memset(chunk, 0, sizeof *chunk);
    chunk->values = (void **)(chunk + 1);
    chunk->capacity = capacity;
    return chunk;
}

cf__chunk_block *cf__chunk_block_new(size_t n, size_t chunksize)
{
    size_t chunks = n / chunksize + (n % chunksize != 0);
    size_t headers = sizeof(cf__chunk_block) + chunks * sizeof(cf__chunk_result);
    if (chunks > SIZE_MAX / 2 / sizeof(cf__chunk_result) || n > (SIZE_MAX / 2) / sizeof(void *))
        return NULL;
    /* The values are not zeroed: a chunk writes each one it counts. */
    cf__chunk_block *b = cf__malloc(headers + n * sizeof(void *));
    if (!b)
        return NULL;
    memset(b, 0, headers);
    atomic_init(&b->refs, 1);
    b->chunks = chunks;
    b->results = (cf__chunk_result *)(b + 1);
    void **values = (void **)((unsigned char *)b + headers);
    for (size_t k = 0; k < chunks; k++) {
        cf__chunk_result *r = &b->results[k];
        r->values = values + k * chunksize;
        r->capacity = n - k * chunksize < chunksize ? n - k * chunksize : chunksize;
        r->block = b;
    }
    return b;
}

cf__chunk_result *cf__chunk_block_take(cf__chunk_block *b, size_t k)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return &b->results[k];
}

void cf__chunk_block_unref(cf__chunk_block *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        cf__free(b);
}

void cf__chunk_result_free(void *p)
{
    cf__chunk_result *chunk = p;
    if (!chunk)
        return;
    if (chunk->is_copy) {
        for (size_t i = 0; i < chunk->count; i++)
            if (chunk->is_copy[i])
                cf__free(chunk->values[i]);
    }
    cf__free(chunk->sizes);
    cf__free(chunk->is_copy);
    cf__free(chunk->fail_message);
    if (chunk->block)
        cf__chunk_block_unref(chunk->block);
    else
        cf__free(chunk);
}

void cf__chunk_result_fail(cf__chunk_result *chunk, int status, int code, char *message, int signal,
                           int exit_status)
{
    cf__free(chunk->fail_message);
    chunk->fail_status = status;
    chunk->fail_message = message;
    chunk->fail.code = code;
    chunk->fail.message = message ? message : cf_strerror(code);
    chunk->fail.signal = signal;
    chunk->fail.exit_status = exit_status;
}

void cf__chunk_result_add_value(cf__chunk_result *chunk, void *value)
{
    chunk->values[chunk->count++] = value;
}

int cf__chunk_result_add_copy(cf__chunk_result *chunk, void *bytes, size_t size)
{
    if (!chunk->is_copy) { /* the first copy: make the per-item flags and sizes */
        chunk->sizes = cf__calloc(chunk->capacity, sizeof *chunk->sizes);
        chunk->is_copy = cf__calloc(chunk->capacity, sizeof *chunk->is_copy);
        if (!chunk->sizes || !chunk->is_copy) {
            cf__free(chunk->sizes);
            cf__free(chunk->is_copy);
            chunk->sizes = NULL;
            chunk->is_copy = NULL;
            cf__free(bytes);
            return CF_ENOMEM;
        }
    }
    chunk->values[chunk->count] = bytes;
    chunk->sizes[chunk->count] = size;
    chunk->is_copy[chunk->count] = 1;
    chunk->count++;
    return 0;
}

/* One item of a chunk went beyond a plain value (it raised or made a copy):
 * record it. Returns false when the chunk stops here. */
static bool chunk_settle_item(cf__chunk_result *chunk, cf__outcome *out, void *ret)
{
    outcome_settle(out, ret);
    bool go_on = true;
    if (out->status != 0) {
        cf__chunk_result_fail(chunk, out->status, out->code, out->message, 0, -1);
        out->message = NULL;
        go_on = false; /* as Python: the rest of a failed chunk does not run */
    } else if (!out->copy) {
        cf__chunk_result_add_value(chunk, out->value);
    } else {
        void *copy = out->copy;
        out->copy = NULL;
        if (cf__chunk_result_add_copy(chunk, copy, out->size) != 0) {
            cf__chunk_result_fail(chunk, CF_ETASK, CF_ENOMEM,
                                  cf__strdup("out of memory storing a chunk result"), 0, -1);
            go_on = false;
        }
    }
    cf__outcome_clear(out);
    return go_on;
}

/* Items from i on of a chunk of values, while each returns a plain value:
 * each result goes to values[i]. Returns where it stopped: n, or the item
 * that raised or made a copy (its return value in values[i], not yet
 * counted). Apart from the call, so that the loop keeps its pointers in
 * registers: only the outcome is read back after each call. */
static size_t run_plain_items(cf_fn fn, void *const *items, void **values, size_t i, size_t n,
                              const cf__outcome *out)
{
    for (; i < n; i++) {
        values[i] = fn(items[i]);
        if (__builtin_expect(out->status != 0 || out->copy != NULL, 0))
            break;
    }
    return i;
}

/* The outcome stays bound for the whole chunk and is looked at only when an
 * item raised or made a copy: the plain path costs one call and one store. */
cf__chunk_result *cf__run_chunk(cf__call *call)
{
    cf__chunk_result *chunk;
    if (call->arg_size == 0 && call->into) {
        chunk = call->into; /* its map's: the reference goes with the result */
        call->into = NULL;
    } else if (!(chunk = cf__chunk_result_new(call->count))) {
        return NULL;
    }
    cf__outcome out;
    memset(&out, 0, sizeof out);
    cf__outcome *outer = current;
    current = &out;
    size_t n = call->count, arg_size = call->arg_size, k = 0;
    while (k < n) {
        void *ret;
        if (arg_size == 0) {
            k = run_plain_items(call->fn, call->items, chunk->values, k, n, &out);
            if (k == n)
                break;
            ret = chunk->values[k];
        } else {
            ret = call->fn((void *)(call->item_bytes + k * arg_size));
            if (__builtin_expect(out.status == 0 && !out.copy, 1)) {
                chunk->values[k++] = ret;
                continue;
            }
        }
        /* Each item before k added one value; item k settles (or stops). */
        chunk->count = k;
        bool go_on = chunk_settle_item(chunk, &out, ret);
        k = chunk->count;
        if (!go_on)
            break;
    }
    chunk->count = k;
    current = outer;
    return chunk;
}
