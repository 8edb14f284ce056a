/* Task functions that live in a shared library, for test_process_dso: one
 * exported, one static (reached through a getter), so that both travel to a
 * worker by (build-id, offset) rather than by name. Built twice as a module
 * too (DSO_VARIANT 1 and 2): two builds of one source, different build-ids.
 * SPDX-License-Identifier: MIT */
#include <stdint.h>

typedef void *(*task_fn)(void *);

#ifndef DSO_VARIANT
#define DSO_VARIANT 0
#endif

__attribute__((visibility("default"))) void *dso_square(void *arg);
__attribute__((visibility("default"))) task_fn dso_static_task(void);
__attribute__((visibility("default"))) void *mod_task(void *arg);

void *dso_square(void *arg)
{
    intptr_t n = (intptr_t)arg;
    return (void *)(n * n);
}

static void *add_variant(void *arg)
{
    return (void *)((intptr_t)arg + 1000 * DSO_VARIANT + 7);
}

task_fn dso_static_task(void)
{
    return add_variant;
}

void *mod_task(void *arg)
{
    return (void *)((intptr_t)arg + 1000 * DSO_VARIANT);
}
