/* A program linked with libcfutures, run through the dynamic loader by name
 * (`ld.so ./loader_app`): its workers must be started the same way.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <stdint.h>
#include <stdio.h>

static void *twice(void *arg)
{
    return (void *)((intptr_t)arg * 2);
}

int main(void)
{
    printf("loader_app: main ran\n");
    fflush(stdout);
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 });
    if (!ex) {
        printf("loader_app: no pool: %s\n", cf_last_error_message());
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < 10; i++) {
        cf_future *f = cf_submit(ex, twice, (void *)(intptr_t)i);
        void *v = NULL;
        int rc = cf_future_result(f, 60, &v);
        if (rc != 0 || (intptr_t)v != 2 * i) {
            const cf_exception *exc = NULL;
            cf_future_exception(f, 0, &exc);
            printf("loader_app: task %d: %s %s\n", i, cf_err_name(rc), exc ? exc->message : "");
            bad = 1;
        }
        cf_future_unref(f);
    }
    cf_executor_free(ex);
    printf("loader_app: %s\n", bad ? "FAILED" : "all results right");
    return bad;
}
