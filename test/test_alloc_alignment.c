/* The allocator hook's alignment contract: blocks aligned only as malloc's
 * are (16 bytes on x86-64) are enough. The hook below returns blocks that
 * are 16-byte aligned and never 32-byte aligned, so a struct the library
 * over-aligns (cache-line members) and allocates straight from the hook
 * would be misaligned, which UBSan reports (the ASan+UBSan build).
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <stdalign.h>
#include <stddef.h>

#define SLACK 64

/* Returns p with p % 32 == 16; the raw block's address sits just below. */
static void *offset_malloc(size_t size)
{
    unsigned char *raw = malloc(size + SLACK + 32);
    if (!raw)
        return NULL;
    uintptr_t p = ((uintptr_t)raw + SLACK + 31) & ~(uintptr_t)31;
    p += 16;
    memcpy((void *)(p - sizeof raw), &raw, sizeof raw);
    memcpy((void *)(p - 2 * sizeof raw), &size, sizeof size);
    return (void *)p;
}

static void offset_free(void *p)
{
    if (!p)
        return;
    void *raw;
    memcpy(&raw, (unsigned char *)p - sizeof raw, sizeof raw);
    free(raw);
}

static void *offset_realloc(void *p, size_t size)
{
    void *q = offset_malloc(size);
    if (!q)
        return NULL;
    if (p) {
        size_t old;
        memcpy(&old, (unsigned char *)p - 2 * sizeof(void *), sizeof old);
        memcpy(q, p, old < size ? old : size);
        offset_free(p);
    }
    return q;
}

static void *square(void *arg)
{
    return V(I(arg) * I(arg));
}

static void *copy_back(void *arg)
{
    return cf_return_copy(arg, 8);
}

static void exercise(cf_executor *ex)
{
    CHECK(ex != NULL);
    cf_future *fs[16];
    for (int i = 0; i < 16; i++)
        CHECK((fs[i] = cf_submit(ex, square, V(i))) != NULL);
    CHECK_EQ(cf_wait(fs, 16, CF_FOREVER, CF_ALL_COMPLETED), 16);
    for (int i = 0; i < 16; i++) {
        CHECK_EQ(result_of(fs[i]), i * i);
        cf_future_unref(fs[i]);
    }
    cf_future *c = cf_submit_copy(ex, copy_back, "12345678", 8);
    void *v;
    CHECK_EQ(cf_future_result(c, CF_FOREVER, &v), 0);
    CHECK(memcmp(v, "12345678", 8) == 0);
    cf_future_unref(c);
    void *args[100];
    for (int i = 0; i < 100; i++)
        args[i] = V(i);
    cf_map_iter *it = cf_map(ex, square, args, 100, &(cf_map_opts){ .chunksize = 7 });
    CHECK(it != NULL);
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ(I(v), i * i);
    }
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);
    cf_executor_free(ex);
}

int main(void)
{
    CHECK_EQ(cf_set_alloc_funcs(offset_malloc, offset_realloc, offset_free), 0);
    void *probe = offset_malloc(1);
    CHECK((uintptr_t)probe % 16 == 0 && (uintptr_t)probe % 32 != 0);
    offset_free(probe);
    RUN_ARG(exercise, cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 }));
    RUN_ARG(exercise, cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 }));
    CHECK_EQ(cf_set_alloc_funcs(NULL, NULL, NULL), 0);
    return 0;
}
