/* cf_parallel_for on a process pool: its chunks run in the workers (never in
 * the caller), each item once, with its slice of `in` and the results back in
 * `out`; ctx travels as a value; a chunk that raises or whose worker dies
 * fails the loop (the pool goes on); slices over the message limit fail with
 * CF_ETOOBIG before anything runs; chunks cancelled by a shutdown fail the
 * loop; a shut-down pool and a done-callback of the pool itself are refused.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <sched.h>
#include <sys/mman.h>

static cf_executor *pool(int max_workers)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = max_workers });
    CHECK(ex);
    return ex;
}

typedef struct item_out {
    uint64_t value; /* in + ctx */
    uint64_t index; /* the item's index, as the chunk saw it */
    uint64_t chunk; /* the begin and end of the chunk that ran it */
    uint64_t chunk_end;
    int32_t pid; /* the process that ran it */
    int32_t in_was_null;
} item_out;

/* out[i] = { in[i] + ctx, i, getpid() }; in may be absent. */
static void add_ctx(void *ctx, const cf_range *r)
{
    const uint64_t *in = r->in;
    item_out *out = r->out;
    for (size_t i = r->begin; i < r->end; i++) {
        size_t k = i - r->begin;
        out[k] = (item_out){
            .value = (in ? in[k] : 0) + (uint64_t)I(ctx),
            .index = i,
            .chunk = r->begin,
            .chunk_end = r->end,
            .pid = (int32_t)getpid(),
            .in_was_null = in == NULL,
        };
    }
}

static void check_loop(cf_executor *ex, size_t n, size_t grain, bool with_in)
{
    uint64_t *in = calloc(n, sizeof *in);
    item_out *out = calloc(n + 1, sizeof *out);
    CHECK(in && out);
    for (size_t i = 0; i < n; i++)
        in[i] = i * 3 + 1;
    out[n].value = 0xfeedu; /* past the end: must stay as it is */
    cf_parallel_opts o = {
        .grain = grain,
        .in = with_in ? in : NULL,
        .in_size = with_in ? sizeof *in : 0,
        .out = out,
        .out_size = sizeof *out,
    };
    CHECK_EQ(cf_parallel_for(ex, n, add_ctx, V(1000), &o), 0);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(out[i].index, i);
        CHECK_EQ(out[i].value, (with_in ? in[i] : 0) + 1000);
        CHECK_EQ(out[i].in_was_null, !with_in);
        CHECK(out[i].pid != 0 && out[i].pid != getpid()); /* a worker ran it */
        if (grain) { /* chunks of grain items, as on a thread pool, however they travel */
            CHECK_EQ(out[i].chunk, i - i % grain);
            CHECK_EQ(out[i].chunk_end, out[i].chunk + grain < n ? out[i].chunk + grain : n);
        }
    }
    CHECK_EQ(out[n].value, 0xfeedu);
    free(in);
    free(out);
}

static void test_every_item_once(void)
{
    cf_executor *ex = pool(2);
    check_loop(ex, 1, 0, true);
    check_loop(ex, 1000, 0, true);    /* grain chosen */
    check_loop(ex, 1000, 7, true);    /* a short last chunk */
    check_loop(ex, 1000, 1000, true); /* one chunk */
    check_loop(ex, 1000, 5000, true); /* a grain larger than the loop */
    check_loop(ex, 100000, 0, false); /* out only */
    check_loop(ex, 100000, 10, true); /* many chunks: several travel in one task */
    check_loop(ex, 6000, 2000, true); /* chunks over the byte limit of a batch: one a task */
    CHECK_EQ(cf_parallel_for(ex, 0, add_ctx, NULL, NULL), 0);
    cf_executor_free(ex);
}

/* Items land where they belong when the chunks finish out of order: of two
 * chunks on two workers, chunk 0 goes on only once chunk 1 has completed. */
static void hold_first_chunk(void *ctx, const cf_range *r)
{
    (void)ctx;
    if (r->begin == 0)
        pass_gate();
    uint32_t *out = r->out;
    for (size_t i = r->begin; i < r->end; i++)
        out[i - r->begin] = (uint32_t)(i * 7);
}

static void *open_gate_after_one(void *arg)
{
    cf_executor_stats st;
    do { /* a condition polled, not a sleep: the stats say when */
        sched_yield();
        CHECK_EQ(cf_executor_stats_get(arg, &st), 0);
    } while (st.completed < 1);
    open_gate(1);
    return NULL;
}

static void test_out_of_order(void)
{
    cf_executor *ex = pool(2);
    enum { N = 64 };
    uint32_t out[N] = { 0 };
    pthread_t opener;
    CHECK_EQ(pthread_create(&opener, NULL, open_gate_after_one, ex), 0);
    cf_parallel_opts o = { .grain = N / 2, .out = out, .out_size = sizeof *out };
    CHECK_EQ(cf_parallel_for(ex, N, hold_first_chunk, NULL, &o), 0);
    CHECK_EQ(pthread_join(opener, NULL), 0);
    for (size_t i = 0; i < N; i++)
        CHECK_EQ(out[i], i * 7);
    cf_executor_free(ex);
}

static void raise_at_30(void *ctx, const cf_range *r)
{
    (void)ctx;
    if (r->begin <= 30 && 30 < r->end)
        cf_raise(42, "item 30 is bad");
}

static void crash_at_50(void *ctx, const cf_range *r)
{
    (void)ctx;
    if (r->begin <= 50 && 50 < r->end)
        raise(SIGSEGV);
}

static void *twice(void *arg)
{
    return V(I(arg) * 2);
}

/* A chunk that raises or whose worker dies fails the loop; the pool goes on. */
static void test_failure(void)
{
    cf_executor *ex = pool(2);
    CHECK_EQ(cf_parallel_for(ex, 100, raise_at_30, NULL, &(cf_parallel_opts){ .grain = 10 }),
             CF_ETASK);
    CHECK_EQ(cf_last_error(), 42);
    CHECK_STR(cf_last_error_message(), "item 30 is bad");
    /* The same inside a task of several chunks (1000 chunks of one item). */
    CHECK_EQ(cf_parallel_for(ex, 1000, raise_at_30, NULL, &(cf_parallel_opts){ .grain = 1 }),
             CF_ETASK);
    CHECK_EQ(cf_last_error(), 42);
    CHECK_STR(cf_last_error_message(), "item 30 is bad");

    CHECK_EQ(cf_parallel_for(ex, 100, crash_at_50, NULL, &(cf_parallel_opts){ .grain = 10 }),
             CF_EBROKEN);
    CHECK_EQ(cf_last_error(), CF_EBROKEN);
    CHECK(strstr(cf_last_error_message(), "signal") != NULL);

    cf_future *f = cf_submit(ex, twice, V(21)); /* the pool goes on */
    CHECK_EQ(result_of(f), 42);
    cf_future_unref(f);
    check_loop(ex, 500, 0, true);
    cf_executor_free(ex);
}

/* Whether p lies in the worker's mapping of the memory its pool shares
 * with it ("/memfd:cfutures-slices" in /proc/self/maps). */
static bool in_shared_slot(const void *p)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        if (strstr(line, "cfutures-slices") && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
            found = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    }
    fclose(maps);
    return found;
}

/* out[i] = i * 5 + (1 when the chunk wrote its output slice in place in the
 * shared memory, else 0) << 40. */
static void mark_where(void *ctx, const cf_range *r)
{
    (void)ctx;
    uint64_t shared = in_shared_slot(r->out) ? (uint64_t)1 << 40 : 0;
    uint64_t *out = r->out;
    for (size_t i = r->begin; i < r->end; i++)
        out[i - r->begin] = i * 5 + shared;
}

static void mark_then_raise(void *ctx, const cf_range *r)
{
    mark_where(ctx, r);
    cf_raise(7, "no");
}

/* How many items of a loop over n ran with their output in shared memory;
 * every value must be right either way. */
static size_t loop_in_shared_memory(cf_executor *ex, size_t n)
{
    uint64_t *out = calloc(n, sizeof *out);
    CHECK(out);
    cf_parallel_opts o = { .grain = 1000, .out = out, .out_size = sizeof *out };
    CHECK_EQ(cf_parallel_for(ex, n, mark_where, NULL, &o), 0);
    size_t shared = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(out[i] & (((uint64_t)1 << 40) - 1), i * 5);
        shared += out[i] >> 40;
    }
    free(out);
    return shared;
}

/* A task's output slice is written in place in memory the worker shares
 * with the pool (a slot), not copied through the channel; with every slot
 * taken a slice travels in the reply instead. A chunk that raised gives its
 * slot back: one worker, more failed one-task loops than it has slots, and
 * a loop after them still uses one. */
static void test_output_in_shared_memory(void)
{
    int probe = memfd_create("probe", MFD_CLOEXEC);
    if (probe < 0) { /* the slices travel in the replies, as the other tests check */
        fprintf(stderr, "memfd_create refused here: skipping the shared-memory checks\n");
        return;
    }
    close(probe);
    cf_executor *ex = pool(1);
    CHECK(loop_in_shared_memory(ex, 200000) > 0);
    uint64_t out[10];
    cf_parallel_opts o = { .grain = 10, .out = out, .out_size = sizeof *out };
    for (int k = 0; k < 40; k++)
        CHECK_EQ(cf_parallel_for(ex, 10, mark_then_raise, NULL, &o), CF_ETASK);
    CHECK(loop_in_shared_memory(ex, 200000) > 0);
    cf_executor_free(ex);
}

/* Slices over the message limit: CF_ETOOBIG, naming the grain, before
 * anything runs; a smaller grain works. */
static void test_too_big(void)
{
    cf_executor *ex =
        cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1, .max_message = 4096 });
    CHECK(ex);
    enum { N = 4096 };
    uint64_t *in = calloc(N, sizeof *in);
    item_out *out = calloc(N, sizeof *out);
    CHECK(in && out);
    cf_parallel_opts o = {
        .grain = N, .in = in, .in_size = sizeof *in, .out = out, .out_size = sizeof *out
    };
    CHECK_EQ(cf_parallel_for(ex, N, add_ctx, V(1), &o), CF_ETOOBIG);
    CHECK(strstr(cf_last_error_message(), "grain") != NULL);
    for (size_t i = 0; i < N; i++)
        CHECK_EQ(out[i].pid, 0); /* nothing ran */
    o.grain = 4096 / sizeof *out;
    CHECK_EQ(cf_parallel_for(ex, N, add_ctx, V(1), &o), 0);
    for (size_t i = 0; i < N; i++)
        CHECK_EQ(out[i].value, 1);
    free(in);
    free(out);
    cf_executor_free(ex);
}

/* Another thread shuts the pool down with cancel_futures while the loop
 * runs: the chunks that never ran fail it (CF_ECANCELLED), it does not
 * return 0 with part of out unfilled. */
static void gate_first_chunk(void *ctx, const cf_range *r)
{
    (void)ctx;
    if (r->begin == 0) {
        report_started();
        pass_gate();
    }
    uint32_t *out = r->out;
    for (size_t i = r->begin; i < r->end; i++)
        out[i - r->begin] = 1;
}

static cf_executor *cancel_pool;
static int cancel_rc;
static uint32_t cancel_out[16];

static void *loop_to_cancel(void *arg)
{
    (void)arg;
    cf_parallel_opts o = { .grain = 1, .out = cancel_out, .out_size = sizeof cancel_out[0] };
    cancel_rc = cf_parallel_for(cancel_pool, 16, gate_first_chunk, NULL, &o);
    return NULL;
}

static void test_cancelled_by_shutdown(void)
{
    cancel_pool = pool(1);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, loop_to_cancel, NULL), 0);
    wait_started(); /* chunk 0 runs; most of the others wait in the queue */
    CHECK_EQ(cf_executor_shutdown(cancel_pool, false, true), 0);
    open_gate(1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(cancel_rc, CF_ECANCELLED);
    CHECK_EQ(cancel_out[0], 1u);
    cf_executor_free(cancel_pool);
}

static void test_shut_down(void)
{
    cf_executor *ex = pool(1);
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    uint32_t out[4] = { 0 };
    cf_parallel_opts o = { .out = out, .out_size = sizeof *out };
    CHECK_EQ(cf_parallel_for(ex, 4, hold_first_chunk, NULL, &o), CF_ESHUTDOWN);
    CHECK_EQ(out[1], 0u);
    cf_executor_free(ex);
}

/* A done-callback runs on the thread that delivers results: a loop there
 * would wait for itself, and is refused. */
static cf_executor *callback_pool;
static int callback_rc;

static void loop_in_callback(cf_future *f, void *userdata)
{
    (void)f;
    (void)userdata;
    callback_rc = cf_parallel_for(callback_pool, 10, raise_at_30, NULL, NULL);
}

static void *gated(void *arg)
{
    report_started();
    pass_gate();
    return arg;
}

static void test_in_done_callback(void)
{
    callback_pool = pool(1);
    cf_future *f = cf_submit(callback_pool, gated, V(1));
    CHECK(f);
    wait_started(); /* f runs: its callback will run when it completes */
    CHECK_EQ(cf_future_add_done_callback(f, loop_in_callback, NULL), 0);
    open_gate(1);
    CHECK_EQ(result_of(f), 1);
    cf_future_unref(f);
    cf_executor_free(callback_pool); /* the callback has run: the pool's threads ended */
    CHECK_EQ(callback_rc, CF_EINVALIDSTATE);
}

int main(void)
{
    make_pipes();
    let_workers_crash();
    RUN(test_every_item_once);
    RUN(test_out_of_order);
    RUN(test_failure);
    RUN(test_output_in_shared_memory);
    RUN(test_too_big);
    RUN(test_cancelled_by_shutdown);
    RUN(test_shut_down);
    RUN(test_in_done_callback);
    fprintf(stderr, "test_process_parallel_for: all passed\n");
    return 0;
}
