/* How a process pool starts its workers (process_start.c). Never installed.
 * SPDX-License-Identifier: MIT */
#ifndef CF_PROCESS_START_H
#define CF_PROCESS_START_H

#include "internal.h"

#define CF__START_PREFIX_MAX 3

/* Everything a worker's start needs, fixed when the pool is made. */
typedef struct cf__start_plan {
    cf_start_method method;             /* never CF_START_AUTO */
    char *path;                         /* exec / helper: the program to execve */
    char *prefix[CF__START_PREFIX_MAX]; /* argv before the worker flag */
    size_t nprefix;
    const char *flag; /* CF__WORKER_FLAG or CF__WORKER_FLAG_EARLY */
    char *library;    /* helper: the libcfutures it loads */
} cf__start_plan;

/* Decide (CF_START_AUTO: exec where the program is linked with libcfutures,
 * else the helper) and find what it needs: 0, or a code with the last error
 * message set (CF_ENOTSUP when the way cannot work here, CF_EINVAL for an
 * unknown method, CF_ENOMEM, CF_ESYSTEM). */
int cf__start_plan_make(cf_start_method method, cf__start_plan *plan);
void cf__start_plan_free(cf__start_plan *plan);

/* A worker's argv into argv[0..cap) (NULL-terminated), with its marker
 * ("<fd>:<pid>"): how many entries, 0 when cap is too small. */
size_t cf__start_argv(const cf__start_plan *plan, char *marker, char **argv, size_t cap);

#endif /* CF_PROCESS_START_H */
