/* A plugin that links libcfutures and runs process-pool work, for hosts that
 * load it with dlopen(): a C program (plugin_host.c) and Python through
 * ctypes (python_host.py). Its task functions are static: they travel by
 * build-id and offset, and a worker finds them by loading this file.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WAIT 60.0

__attribute__((visibility("default"))) int plugin_run(int start_method);

static int initialised; /* set in each worker by the initializer */

static int init_worker(void *arg)
{
    initialised = (int)(intptr_t)arg;
    return 0;
}

static void *cube(void *arg)
{
    intptr_t n = (intptr_t)arg;
    return (void *)(intptr_t)(n * n * n + initialised);
}

static void *shout(void *arg)
{
    char buf[64];
    size_t n = strlen(arg);
    for (size_t i = 0; i < n && i < sizeof buf - 1; i++)
        buf[i] = (char)(((const char *)arg)[i] & ~0x20);
    buf[n < sizeof buf ? n : sizeof buf - 1] = '\0';
    return cf_return_copy(buf, strlen(buf) + 1);
}

static void *worker_pid(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)getpid();
}

/* 0 when every result is right; prints what went wrong otherwise. */
int plugin_run(int start_method)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){
        .max_workers = 2,
        .initializer = init_worker,
        .initarg = (void *)(intptr_t)1000,
        .start_method = (cf_start_method)start_method,
    });
    if (!ex) {
        printf("plugin: no pool: %s (%s)\n", cf_err_name(cf_last_error()), cf_last_error_message());
        return 1;
    }
    int bad = 0;
    void *args[8];
    for (int i = 0; i < 8; i++)
        args[i] = (void *)(intptr_t)i;
    cf_map_iter *it = cf_map(ex, cube, args, 8, &(cf_map_opts){ .chunksize = 3 });
    void *v;
    for (int i = 0; i < 8; i++) {
        int rc = cf_map_next(it, &v);
        if (rc != 1 || (intptr_t)v != i * i * i + 1000) {
            const cf_exception *exc = cf_map_exception(it);
            printf("plugin: cube(%d): %s %s\n", i, cf_err_name(rc), exc ? exc->message : "");
            bad = 1;
            break;
        }
    }
    cf_map_free(it);
    cf_future *f = cf_submit_copy(ex, shout, "quiet", 6);
    if (!f || cf_future_result(f, WAIT, &v) != 0 || strcmp(v, "QUIET") != 0) {
        printf("plugin: shout failed\n");
        bad = 1;
    }
    cf_future_unref(f);
    f = cf_submit(ex, worker_pid, NULL);
    if (!f || cf_future_result(f, WAIT, &v) != 0 || (intptr_t)v == getpid()) {
        printf("plugin: the task did not run in a worker process\n");
        bad = 1;
    }
    cf_future_unref(f);
    cf_executor_free(ex);
    if (!bad)
        printf("plugin: all results right\n");
    fflush(stdout);
    return bad;
}
