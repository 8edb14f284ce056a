/* The allocator hook (so tests can fail the n-th allocation) and the
 * per-thread last error of pointer-returning calls.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*alloc_malloc)(size_t) = malloc;
static void *(*alloc_realloc)(void *, size_t) = realloc;
static void (*alloc_free)(void *) = free;

static _Thread_local int last_error;

int cf_set_alloc_funcs(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                       void (*free_fn)(void *))
{
    if (!malloc_fn && !realloc_fn && !free_fn) {
        malloc_fn = malloc;
        realloc_fn = realloc;
        free_fn = free;
    }
    if (!malloc_fn || !realloc_fn || !free_fn)
        return CF_EINVAL;
    alloc_malloc = malloc_fn;
    alloc_realloc = realloc_fn;
    alloc_free = free_fn;
    return 0;
}

void *cf__malloc(size_t size)
{
    return alloc_malloc(size ? size : 1);
}

void *cf__calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = cf__malloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *cf__realloc(void *p, size_t size)
{
    return alloc_realloc(p, size ? size : 1);
}

void cf__free(void *p)
{
    if (p)
        alloc_free(p);
}

char *cf__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = cf__malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

char *cf__vformat(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = n < 0 ? NULL : cf__malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

char *cf__format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = cf__vformat(fmt, ap);
    va_end(ap);
    return s;
}

void cf__set_last_error(int code)
{
    last_error = code;
}

void *cf__fail(int code)
{
    last_error = code;
    return NULL;
}

int cf_last_error(void)
{
    return last_error;
}
