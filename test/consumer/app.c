/* A program using cfutures the way one built outside this tree does:
 * installed (pkg-config, CMake) or as a Meson subproject. Its header and its
 * library must be the same version, and both pools must work: the process
 * pool re-runs this program, which shows that the worker entry comes along
 * also when libcfutures is linked statically. With --helper, a process pool
 * started from the cfutures-worker helper can also be made: the helper was
 * found where it was installed, relative to libcfutures.so.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void *square(void *arg)
{
    intptr_t n = (intptr_t)arg;
    return (void *)(n * n);
}

static int run(cf_executor *ex, const char *what, intptr_t n)
{
    if (!ex) {
        fprintf(stderr, "app: %s: %s\n", what, cf_last_error_message());
        return 1;
    }
    cf_future *f = cf_submit(ex, square, (void *)n);
    void *v = NULL;
    int rc = f ? cf_future_result(f, CF_FOREVER, &v) : cf_last_error();
    cf_future_unref(f);
    cf_executor_free(ex);
    if (rc != 0 || (intptr_t)v != n * n) {
        fprintf(stderr, "app: %s: square(%ld) gave %s, %ld\n", what, (long)n, cf_err_name(rc),
                (long)(intptr_t)v);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (strcmp(cf_version_string(), CFUTURES_VERSION_STRING) != 0 ||
        cf_version() != (unsigned)CFUTURES_VERSION_HEX) {
        fprintf(stderr, "app: header %s, library %s\n", CFUTURES_VERSION_STRING,
                cf_version_string());
        return 1;
    }
    if (run(cf_thread_pool_new(NULL), "thread pool", 7) ||
        run(cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1 }), "process pool", 9))
        return 1;
    if (argc > 1 && strcmp(argv[1], "--helper") == 0) {
        cf_executor *ex = cf_process_pool_new(
            &(cf_process_pool_opts){ .max_workers = 1, .start_method = CF_START_HELPER });
        if (!ex) {
            fprintf(stderr, "app: helper start: %s\n", cf_last_error_message());
            return 1;
        }
        cf_executor_free(ex);
    }
    printf("app: cfutures %s, all results right\n", cf_version_string());
    return 0;
}
