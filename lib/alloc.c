/* The allocator hook (so tests can fail the n-th allocation), aligned blocks
 * on top of it, and the per-thread last error (code and message) of
 * pointer-returning calls.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*alloc_malloc)(size_t) = malloc;
static void *(*alloc_realloc)(void *, size_t) = realloc;
static void (*alloc_free)(void *) = free;

static _Thread_local int last_error;
/* The message of the last failure: formatted in place, so that reporting an
 * out-of-memory failure needs no memory. */
static _Thread_local char last_message[CF__MESSAGE_MAX];

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

bool cf__alloc_is_default(void)
{
    return alloc_malloc == malloc && alloc_realloc == realloc && alloc_free == free;
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

void *cf__aligned_calloc(size_t size, size_t align)
{
    /* The hook promises alignof(max_align_t) only: over-allocate, and keep
     * the block's own address just below the aligned start. */
    if (size > SIZE_MAX - align - sizeof(void *))
        return NULL;
    unsigned char *raw = cf__malloc(size + align + sizeof(void *));
    if (!raw)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + sizeof(void *) + align - 1) & ~(uintptr_t)(align - 1);
    unsigned char *p = (unsigned char *)start;
    memcpy(p - sizeof(void *), &raw, sizeof raw);
    memset(p, 0, size);
    return p;
}

void cf__aligned_free(void *p)
{
    if (!p)
        return;
    void *raw;
    memcpy(&raw, (unsigned char *)p - sizeof(void *), sizeof raw);
    cf__free(raw);
}

void cf__set_last_error(int code)
{
    last_error = code;
    if (code == 0)
        last_message[0] = '\0';
    else
        snprintf(last_message, sizeof last_message, "%s", cf_strerror(code));
}

void *cf__fail(int code)
{
    cf__set_last_error(code);
    return NULL;
}

void cf__vset_last_error_msg(int code, const char *fmt, va_list ap)
{
    last_error = code;
    vsnprintf(last_message, sizeof last_message, fmt, ap);
}

void cf__set_last_error_msg(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cf__vset_last_error_msg(code, fmt, ap);
    va_end(ap);
}

void *cf__fail_msg(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cf__vset_last_error_msg(code, fmt, ap);
    va_end(ap);
    return NULL;
}

int cf_last_error(void)
{
    return last_error;
}

const char *cf_last_error_message(void)
{
    return last_message;
}
