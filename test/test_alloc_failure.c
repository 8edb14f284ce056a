/* Every allocation the library makes may fail, one at a time, and the library
 * copes: each call either succeeds or reports its documented code (NULL with
 * cf_last_error() == CF_ENOMEM, a CF_ENOMEM status, or a task that fails with
 * CF_ETASK and exception code CF_ENOMEM), nothing crashes or hangs, and
 * nothing leaks.
 *
 * The allocator hook counts the allocations of one run of a scenario that
 * touches the whole API and fails the n-th; n goes 1, 2, ... until a run
 * completes without reaching its n-th allocation. After each run every
 * allocation made through the hook must have been freed.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

/* Seconds any wait may take: a hang fails the test (CF_ETIMEDOUT) instead of
 * stalling it. The work itself takes microseconds. */
#define WAIT 10.0

/* ------------------------------------------------------------------------ */
/* The counting, failing allocator                                           */
/* ------------------------------------------------------------------------ */

static atomic_long alloc_calls;    /* malloc and realloc calls in this run */
static atomic_long alloc_live;     /* blocks allocated and not yet freed */
static atomic_long alloc_fail_at;  /* fail the call with this number (1-based); 0: none */
static atomic_bool alloc_injected; /* the failure happened in this run */

static bool should_fail(void)
{
    long n = atomic_fetch_add(&alloc_calls, 1) + 1;
    if (n != atomic_load(&alloc_fail_at))
        return false;
    atomic_store(&alloc_injected, true);
    return true;
}

static void *counting_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(&alloc_live, 1);
    return p;
}

static void *counting_realloc(void *p, size_t size)
{
    if (should_fail())
        return NULL; /* p stays valid, as with realloc */
    void *q = realloc(p, size);
    if (q && !p)
        atomic_fetch_add(&alloc_live, 1);
    return q;
}

static void counting_free(void *p)
{
    if (p)
        atomic_fetch_sub(&alloc_live, 1);
    free(p);
}

static void start_run(long fail_at)
{
    atomic_store(&alloc_calls, 0);
    atomic_store(&alloc_fail_at, fail_at);
    atomic_store(&alloc_injected, false);
}

/* ------------------------------------------------------------------------ */
/* What a failure may look like                                              */
/* ------------------------------------------------------------------------ */

static int nomem_seen; /* out-of-memory outcomes seen in this run */

static bool ptr_ok(const void *p, const char *what, int line)
{
    if (p)
        return true;
    if (cf_last_error() != CF_ENOMEM) {
        fprintf(stderr, "%s:%d: %s returned NULL with %s, expected CF_ENOMEM\n", __FILE__, line,
                what, cf_err_name(cf_last_error()));
        exit(1);
    }
    nomem_seen++;
    return false;
}
/* p is non-NULL (true), or NULL with cf_last_error() CF_ENOMEM (false). */
#define PTR_OK(p) ptr_ok((p), #p, __LINE__)

static bool status_ok(int rc, const char *what, int line)
{
    if (rc == 0)
        return true;
    if (rc != CF_ENOMEM) {
        fprintf(stderr, "%s:%d: %s returned %s, expected 0 or CF_ENOMEM\n", __FILE__, line, what,
                cf_err_name(rc));
        exit(1);
    }
    nomem_seen++;
    return false;
}
/* rc is 0 (true), or CF_ENOMEM (false). */
#define STATUS_OK(rc) status_ok((rc), #rc, __LINE__)

/* A task whose result should have been a copy failed for want of memory. */
static void check_copy_failed(cf_future *f)
{
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    CHECK(exc != NULL);
    CHECK_EQ(exc->code, CF_ENOMEM);
    CHECK(exc->message != NULL);
    nomem_seen++;
}

/* ------------------------------------------------------------------------ */
/* Tasks                                                                     */
/* ------------------------------------------------------------------------ */

static void *square(void *arg)
{
    intptr_t v = (intptr_t)arg;
    return (void *)(v * v);
}

#define NUMBERS 8
static void *sum_numbers(void *arg)
{
    const int *numbers = arg;
    intptr_t sum = 0;
    for (int i = 0; i < NUMBERS; i++)
        sum += numbers[i];
    return (void *)sum;
}

static const char TEXT[] = "forty-two";
static void *copy_text(void *arg)
{
    (void)arg;
    return cf_return_copy(TEXT, sizeof TEXT);
}

static void *fail_task(void *arg)
{
    return cf_raise(42, "task %d failed", (int)(intptr_t)arg);
}

static void *add_three(void *arg)
{
    return (void *)(intptr_t)(*(const int *)arg + 3);
}

static void *copy_square(void *arg)
{
    int v = *(const int *)arg;
    v *= v;
    return cf_return_copy(&v, sizeof v);
}

static atomic_int callbacks_run;
static void count_callback(cf_future *f, void *userdata)
{
    (void)f;
    (void)userdata;
    atomic_fetch_add(&callbacks_run, 1);
}

/* ------------------------------------------------------------------------ */
/* The scenario                                                              */
/* ------------------------------------------------------------------------ */

enum { SQUARE, SUM, COPY, RAISE, KINDS };

static void check_outcome(cf_future *f, int kind)
{
    void *value = NULL;
    int rc = cf_future_result(f, WAIT, &value);
    CHECK(rc != CF_ETIMEDOUT); /* a hang */
    switch (kind) {
    case SQUARE:
        CHECK_EQ(rc, 0);
        CHECK_EQ((intptr_t)value, 49);
        break;
    case SUM:
        CHECK_EQ(rc, 0);
        CHECK_EQ((intptr_t)value, NUMBERS * (NUMBERS + 1) / 2);
        break;
    case COPY:
        if (rc == 0) {
            CHECK_EQ(cf_future_result_size(f), sizeof TEXT);
            CHECK_STR((const char *)value, TEXT);
        } else {
            CHECK_EQ(rc, CF_ETASK);
            check_copy_failed(f);
        }
        break;
    case RAISE: {
        CHECK_EQ(rc, CF_ETASK);
        const cf_exception *exc = NULL;
        CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
        CHECK(exc != NULL);
        CHECK(exc->message != NULL);
        if (exc->code == CF_ENOMEM) { /* no memory for the exception record */
            nomem_seen++;
            break;
        }
        CHECK_EQ(exc->code, 42);
        /* Without memory for the message, the code's description stands in. */
        CHECK(strcmp(exc->message, "task 42 failed") == 0 ||
              strcmp(exc->message, cf_strerror(42)) == 0);
        break;
    }
    }
}

/* A map's iteration stopped with rc after `got` of its n results: at its
 * end with every result, or on an item that failed, which only a lack of
 * memory may explain; after a failure the iteration has ended. */
static void check_map_end(cf_map_iter *it, int rc, size_t got, size_t n)
{
    if (rc == 0) {
        CHECK_EQ(got, n);
        return;
    }
    if (rc == CF_ETASK) {
        const cf_exception *exc = cf_map_exception(it);
        CHECK(exc != NULL);
        CHECK_EQ(exc->code, CF_ENOMEM);
        nomem_seen++;
    } else {
        STATUS_OK(rc);
    }
    void *value;
    CHECK_EQ(cf_map_next(it, &value), 0);
}

/* Iterate a map to its end and check each result against `expect`. */
static void check_map(cf_executor *ex, cf_fn fn, void *const *args, const int *expect, size_t n,
                      const cf_map_opts *opts, bool copies)
{
    cf_map_iter *it = cf_map(ex, fn, args, n, opts);
    if (!PTR_OK(it))
        return;
    size_t i = 0;
    void *value = NULL;
    int rc;
    while ((rc = cf_map_next(it, &value)) == 1) {
        CHECK(i < n);
        int got = copies ? *(const int *)value : (int)(intptr_t)value;
        CHECK_EQ(got, expect[i]);
        i++;
    }
    check_map_end(it, rc, i, n);
    cf_map_free(it);
}

/* The same through cf_map_next_batch. */
static void check_map_batches(cf_executor *ex, cf_fn fn, void *const *args, const int *expect,
                              size_t n, const cf_map_opts *opts)
{
    cf_map_iter *it = cf_map(ex, fn, args, n, opts);
    if (!PTR_OK(it))
        return;
    size_t i = 0, count = 0;
    void *const *values = NULL;
    int rc;
    while ((rc = cf_map_next_batch(it, &values, &count)) == 1) {
        CHECK(count >= 1 && i + count <= n);
        for (size_t k = 0; k < count; k++)
            CHECK_EQ((int)(intptr_t)values[k], expect[i + k]);
        i += count;
    }
    check_map_end(it, rc, i, n);
    cf_map_free(it);
}

static void run_maps(cf_executor *ex)
{
    enum { N = 5 };
    int numbers[N], squares[N], plus_three[N];
    void *values[N], *pointers[N];
    for (int i = 0; i < N; i++) {
        numbers[i] = i + 1;
        squares[i] = (i + 1) * (i + 1);
        plus_three[i] = i + 4;
        values[i] = (void *)(intptr_t)numbers[i];
        pointers[i] = &numbers[i];
    }
    /* Values in chunks of 2 (the last chunk is short). */
    check_map(ex, square, values, squares, N, &(cf_map_opts){ .chunksize = 2, .timeout = WAIT },
              false);
    check_map_batches(ex, square, values, squares, N,
                      &(cf_map_opts){ .chunksize = 2, .timeout = WAIT });
    /* Copied arguments, one task each. */
    check_map(ex, add_three, pointers, plus_three, N,
              &(cf_map_opts){ .arg_size = sizeof(int), .timeout = WAIT }, false);
    /* Copied arguments in chunks, copied results. */
    check_map(ex, copy_square, pointers, squares, N,
              &(cf_map_opts){ .chunksize = 2, .arg_size = sizeof(int), .timeout = WAIT }, true);
}

static void fill_range(void *ctx, const cf_range *r)
{
    (void)ctx;
    int *out = r->out;
    for (size_t i = r->begin; i < r->end; i++)
        out[i - r->begin] = (int)i;
}

static void raise_in_range(void *ctx, const cf_range *r)
{
    (void)ctx;
    if (r->begin == 50)
        cf_raise(42, "range %zu failed", r->begin);
}

/* A parallel loop: its helpers are tasks, and one that cannot be made
 * leaves its chunks to the others, so the loop itself never fails for it. */
static void run_loops(cf_executor *ex)
{
    enum { LOOP = 1000 };
    static int out[LOOP];
    memset(out, 0xff, sizeof out);
    int rc =
        cf_parallel_for(ex, LOOP, fill_range, NULL,
                        &(cf_parallel_opts){ .grain = 10, .out = out, .out_size = sizeof *out });
    if (STATUS_OK(rc))
        for (int i = 0; i < LOOP; i++)
            CHECK_EQ(out[i], i);
    rc = cf_parallel_for(ex, LOOP, raise_in_range, NULL, &(cf_parallel_opts){ .grain = 10 });
    CHECK_EQ(rc, CF_ETASK);
    CHECK_EQ(cf_last_error(), 42);
    CHECK(strcmp(cf_last_error_message(), "range 50 failed") == 0 ||
          strcmp(cf_last_error_message(), cf_strerror(42)) == 0);
}

static void scenario(void)
{
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 });
    if (!PTR_OK(ex))
        return;

    int numbers[NUMBERS];
    for (int i = 0; i < NUMBERS; i++)
        numbers[i] = i + 1;

    cf_future *fs[KINDS];
    int kinds[KINDS];
    size_t n = 0;
    cf_future *f;
    if (PTR_OK(f = cf_submit(ex, square, (void *)(intptr_t)7)))
        fs[n] = f, kinds[n++] = SQUARE;
    if (PTR_OK(f = cf_submit_copy(ex, sum_numbers, numbers, sizeof numbers)))
        fs[n] = f, kinds[n++] = SUM;
    memset(numbers, 0, sizeof numbers); /* the copy was taken at submit */
    if (PTR_OK(f = cf_submit(ex, copy_text, NULL)))
        fs[n] = f, kinds[n++] = COPY;
    if (PTR_OK(f = cf_submit(ex, fail_task, (void *)(intptr_t)42)))
        fs[n] = f, kinds[n++] = RAISE;

    /* Two callbacks on every future: the second needs a list node. */
    int callbacks_added = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++)
            if (STATUS_OK(cf_future_add_done_callback(fs[i], count_callback, NULL)))
                callbacks_added++;

    cf_future *waited[KINDS]; /* cf_wait reorders its array; fs stays in step with kinds */
    memcpy(waited, fs, n * sizeof *fs);
    int done = cf_wait(waited, n, WAIT, CF_ALL_COMPLETED);
    if (done >= 0)
        CHECK_EQ(done, n);
    else
        STATUS_OK(done);

    cf_as_completed *it = cf_as_completed_new(fs, n, WAIT);
    if (PTR_OK(it)) {
        size_t yielded = 0;
        cf_future *g = NULL;
        int rc;
        while ((rc = cf_as_completed_next(it, &g)) == 1) {
            CHECK(cf_future_done(g));
            yielded++;
        }
        CHECK_EQ(rc, 0);
        CHECK_EQ(yielded, n);
        cf_as_completed_free(it);
    }

    run_maps(ex);
    run_loops(ex);

    cf_executor_free(ex); /* joins the workers: every callback has run */
    CHECK_EQ(atomic_load(&callbacks_run), callbacks_added);
    atomic_store(&callbacks_run, 0);

    for (size_t i = 0; i < n; i++) {
        check_outcome(fs[i], kinds[i]);
        cf_future_unref(fs[i]);
    }
}

int main(void)
{
    CHECK_EQ(cf_set_alloc_funcs(counting_malloc, counting_realloc, counting_free), 0);

    /* A clean run first: the hook sees the library's allocations. */
    start_run(0);
    scenario();
    CHECK_EQ(nomem_seen, 0);
    CHECK_EQ(atomic_load(&alloc_live), 0);
    long clean_calls = atomic_load(&alloc_calls);
    CHECK(clean_calls > 0);

    /* How many allocations a run makes varies a little with thread timing
     * (e.g. whether a second worker starts), so go on until n is past the
     * most any run has made. */
    long most_calls = clean_calls, n;
    for (n = 1;; n++) {
        CHECK(n < 100000); /* the scenario's allocations are finite */
        nomem_seen = 0;
        start_run(n);
        scenario();
        long live = atomic_load(&alloc_live);
        if (live != 0) {
            fprintf(stderr, "failing allocation %ld leaked %ld block(s)\n", n, live);
            return 1;
        }
        long calls = atomic_load(&alloc_calls);
        if (calls > most_calls)
            most_calls = calls;
        if (!atomic_load(&alloc_injected)) {
            CHECK_EQ(nomem_seen, 0); /* nothing failed, so nothing may report it */
            if (n > most_calls)
                break;
        }
    }
    fprintf(stderr,
            "%ld allocations in a clean run (at most %ld); failed each of the first %ld "
            "in turn\n",
            clean_calls, most_calls, n - 1);
    CHECK_EQ(cf_set_alloc_funcs(NULL, NULL, NULL), 0);
    return 0;
}
