/* Freed futures kept for reuse, per thread. A recursive task that submits
 * two halves and waits makes and frees two futures per call; malloc, free
 * and a mutex's init and destroy were a quarter of what such a task cost
 * the library. The thread that drops a future's last reference keeps it (up
 * to CACHE_MAX) with its lock still initialised, and that thread's next
 * cf__future_new takes it back.
 *
 * Only with the default allocator: with cf_set_alloc_funcs' hooks every
 * future is allocated and freed through them, as the hooks' users count on.
 * Under AddressSanitizer a cached future is poisoned, so that a use after
 * its last reference is still caught. A thread's cache is freed when the thread exits (a
 * thread-specific key's destructor) and, for the thread that unloads the
 * library or exits the program, by the library's destructor.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define CF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CF_ASAN 1
#endif
#endif

#ifdef CF_ASAN
#include <sanitizer/asan_interface.h>
#define poison(f) ASAN_POISON_MEMORY_REGION((f), sizeof(cf_future))
#define unpoison(f) ASAN_UNPOISON_MEMORY_REGION((f), sizeof(cf_future))
#else
#define poison(f) ((void)(f))
#define unpoison(f) ((void)(f))
#endif

#define CACHE_MAX 32

typedef struct future_cache {
    unsigned count;
    cf_future *items[CACHE_MAX];
} future_cache;

/* The pointer only: a dlopen'ed library's initial-exec TLS must stay small. */
static _Thread_local future_cache *my_cache __attribute__((tls_model("initial-exec")));
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static atomic_bool key_made;
static atomic_bool unloading; /* no new cache after the library's destructor */

static void free_future(cf_future *f)
{
    unpoison(f);
    uv_mutex_destroy(&f->lock);
    free(f);
}

/* Also the key's destructor, which runs in the exiting thread: a future
 * released after it (by a later destructor) makes a new cache. */
static void cache_free(void *p)
{
    future_cache *c = p;
    my_cache = NULL;
    for (unsigned i = 0; i < c->count; i++)
        free_future(c->items[i]);
    free(c);
}

static void make_key(void)
{
    atomic_store(&key_made, pthread_key_create(&cache_key, cache_free) == 0);
}

/* This thread's cache, made on first use; NULL when none can be. */
static future_cache *cache_of_this_thread(void)
{
    if (my_cache)
        return my_cache;
    if (atomic_load_explicit(&unloading, memory_order_relaxed))
        return NULL;
    (void)pthread_once(&key_once, make_key);
    if (!atomic_load_explicit(&key_made, memory_order_relaxed))
        return NULL;
    future_cache *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    c->count = 0;
    if (pthread_setspecific(cache_key, c) != 0) {
        free(c);
        return NULL;
    }
    return my_cache = c;
}

cf_future *cf__future_cache_take(void)
{
    future_cache *c = my_cache;
    if (!c || c->count == 0)
        return NULL;
    cf_future *f = c->items[--c->count];
    unpoison(f);
    return f;
}

void cf__future_cache_put(cf_future *f)
{
    future_cache *c = cache_of_this_thread();
    if (c && c->count < CACHE_MAX) {
        c->items[c->count++] = f;
        poison(f);
    } else {
        free_future(f);
    }
}

__attribute__((destructor)) static void future_cache_unload(void)
{
    atomic_store(&unloading, true);
    future_cache *c = my_cache;
    if (!atomic_load(&key_made))
        return;
    if (c) {
        (void)pthread_setspecific(cache_key, NULL);
        cache_free(c);
    }
    /* Other threads' caches, if any still run, are theirs until they exit:
     * their destructor must not run from an unloaded library. */
    (void)pthread_key_delete(cache_key);
}
