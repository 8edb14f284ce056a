/* An allocator hook for tests that must see what the library keeps: it
 * counts the blocks the library holds (so a test can check that everything
 * went back, e.g. that an object released its references to futures), and
 * it can fail the next allocation made by the calling thread. Install it in
 * main before any other cfutures call: counting_alloc_install().
 * SPDX-License-Identifier: MIT */
#ifndef CF_TEST_COUNTING_ALLOC_H
#define CF_TEST_COUNTING_ALLOC_H

#include "check.h"

#include <cfutures.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

static atomic_long counting_alloc_live_blocks;
static _Thread_local bool counting_alloc_fail_next_here;

static inline void *counting_alloc_malloc(size_t size)
{
    if (counting_alloc_fail_next_here) {
        counting_alloc_fail_next_here = false;
        return NULL;
    }
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(&counting_alloc_live_blocks, 1);
    return p;
}

static inline void *counting_alloc_realloc(void *p, size_t size)
{
    if (counting_alloc_fail_next_here) {
        counting_alloc_fail_next_here = false;
        return NULL;
    }
    void *q = realloc(p, size);
    if (q && !p)
        atomic_fetch_add(&counting_alloc_live_blocks, 1);
    return q;
}

static inline void counting_alloc_free(void *p)
{
    if (p)
        atomic_fetch_sub(&counting_alloc_live_blocks, 1);
    free(p);
}

static inline void counting_alloc_install(void)
{
    CHECK_EQ(cf_set_alloc_funcs(counting_alloc_malloc, counting_alloc_realloc, counting_alloc_free),
             0);
}

/* Blocks the library holds now. */
static inline long counting_alloc_live(void)
{
    return atomic_load(&counting_alloc_live_blocks);
}

/* The next allocation the library makes in this thread fails. */
static inline void counting_alloc_fail_next(void)
{
    counting_alloc_fail_next_here = true;
}

#endif
