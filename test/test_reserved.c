/* The reserved words at the end of every options struct and of
 * cf_executor_stats (README "ABI policy"): they are the struct's last
 * member, zero by designated initializers; any non-zero word makes the call
 * that reads the struct fail with CF_ENOTSUP and a message saying which word,
 * and nothing is made; cf_executor_stats_get zeroes them.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <stdint.h>
#include <stdio.h>

#include "check.h"

#define NRESERVED 8
#define UNKNOWN_OPTION "an option this libcfutures does not know"

static void *square(void *arg)
{
    intptr_t n = (intptr_t)arg;
    return (void *)(n * n);
}

static bool next_item(void *userdata, void **arg)
{
    int *left = userdata;
    if (*left == 0)
        return false;
    *arg = (void *)(intptr_t)(*left)--;
    return true;
}

/* The call that read the struct failed with CF_ENOTSUP, naming word i. */
static void check_refused(const char *type, size_t i)
{
    CHECK_EQ(cf_last_error(), CF_ENOTSUP);
    const char *msg = cf_last_error_message();
    char word[64];
    snprintf(word, sizeof word, "%s.cf_reserved[%zu]", type, i);
    if (!strstr(msg, UNKNOWN_OPTION) || !strstr(msg, word)) {
        fprintf(stderr, "message \"%s\" lacks \"%s\" or \"%s\"\n", msg, UNKNOWN_OPTION, word);
        CHECK(0);
    }
}

#define CHECK_RESERVED_LAST(type)                                                                  \
    do {                                                                                           \
        type probe_;                                                                               \
        CHECK_EQ(sizeof probe_.cf_reserved, NRESERVED * sizeof(uint64_t));                         \
        CHECK_EQ(offsetof(type, cf_reserved) + sizeof probe_.cf_reserved, sizeof(type));           \
    } while (0)

static void test_layout(void)
{
    CHECK_RESERVED_LAST(cf_thread_pool_opts);
    CHECK_RESERVED_LAST(cf_process_pool_opts);
    CHECK_RESERVED_LAST(cf_map_opts);
    CHECK_RESERVED_LAST(cf_parallel_opts);
    CHECK_RESERVED_LAST(cf_executor_stats);
    cf_map_opts m = { .chunksize = 3 }; /* what users write */
    for (size_t i = 0; i < NRESERVED; i++)
        CHECK_EQ(m.cf_reserved[i], 0);
}

static void test_thread_pool_opts(void)
{
    for (size_t i = 0; i < NRESERVED; i++) {
        cf_thread_pool_opts o = { .max_workers = 1 };
        o.cf_reserved[i] = i == NRESERVED - 1 ? UINT64_MAX : 1;
        CHECK(cf_thread_pool_new(&o) == NULL);
        check_refused("cf_thread_pool_opts", i);
    }
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1 });
    CHECK(ex != NULL);
    cf_executor_free(ex);
}

static void test_process_pool_opts(void)
{
    for (size_t i = 0; i < NRESERVED; i++) {
        cf_process_pool_opts o = { .max_workers = 1 };
        o.cf_reserved[i] = (uint64_t)1 << (8 * i);
        CHECK(cf_process_pool_new(&o) == NULL);
        check_refused("cf_process_pool_opts", i);
    }
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1 });
    CHECK(ex != NULL);
    cf_executor_free(ex); /* workers start on demand: none was started */
}

static void test_map_opts(void)
{
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 });
    CHECK(ex != NULL);
    void *args[] = { (void *)1, (void *)2, (void *)3 };
    for (size_t i = 0; i < NRESERVED; i++) {
        cf_map_opts o = { .chunksize = 2 };
        o.cf_reserved[i] = 2;
        CHECK(cf_map(ex, square, args, 3, &o) == NULL);
        check_refused("cf_map_opts", i);
        int left = 3;
        CHECK(cf_map_source(ex, square, next_item, &left, &o) == NULL);
        check_refused("cf_map_opts", i);
        CHECK_EQ(left, 3); /* refused before the source was read */
    }
    /* The executor is untouched: the same map with zero words works. */
    cf_map_iter *it = cf_map(ex, square, args, 3, &(cf_map_opts){ .chunksize = 2 });
    CHECK(it != NULL);
    void *v;
    for (intptr_t n = 1; n <= 3; n++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ((intptr_t)v, n * n);
    }
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);
    cf_executor_stats st;
    CHECK_EQ(cf_executor_stats_get(ex, &st), 0);
    CHECK_EQ(st.completed, 2); /* two chunks: the refused maps submitted nothing */
    cf_executor_free(ex);
}

static void count_range(void *ctx, const cf_range *r)
{
    *(size_t *)ctx += r->end - r->begin; /* one worker: no race */
}

static void test_parallel_opts(void)
{
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1 });
    CHECK(ex != NULL);
    size_t items = 0;
    for (size_t i = 0; i < NRESERVED; i++) {
        cf_parallel_opts o = { .grain = 4 };
        o.cf_reserved[i] = 3;
        CHECK_EQ(cf_parallel_for(ex, 10, count_range, &items, &o), CF_ENOTSUP);
        check_refused("cf_parallel_opts", i);
        CHECK_EQ(items, 0); /* refused before any chunk ran */
    }
    cf_executor_free(ex);
}

static void test_stats_zeroed(void)
{
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1 });
    CHECK(ex != NULL);
    cf_future *f = cf_submit(ex, square, (void *)5);
    CHECK(f != NULL);
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), 0);
    cf_future_unref(f);
    cf_executor_stats st;
    memset(&st, 0xa5, sizeof st); /* what an older library would leave there */
    CHECK_EQ(cf_executor_stats_get(ex, &st), 0);
    for (size_t i = 0; i < NRESERVED; i++)
        CHECK_EQ(st.cf_reserved[i], 0);
    CHECK_EQ(st.completed, 1);
    cf_executor_free(ex);
}

int main(void)
{
    RUN(test_layout);
    RUN(test_thread_pool_opts);
    RUN(test_process_pool_opts);
    RUN(test_map_opts);
    RUN(test_parallel_opts);
    RUN(test_stats_zeroed);
    return 0;
}
