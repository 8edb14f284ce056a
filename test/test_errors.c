/* Error codes: every code of CF_ERROR_MAP has its own name and description,
 * unknown codes get the fallbacks, and cf_last_error reports the failure of
 * a pointer-returning call per thread. */
#include <cfutures.h>

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "check.h"

typedef struct code_entry {
    int code;
    const char *name;
    const char *text;
} code_entry;

static const code_entry codes[] = {
#define ENTRY(name, value, text) { CF_##name, "CF_" #name, text },
    CF_ERROR_MAP(ENTRY)
#undef ENTRY
};
#define NCODES (sizeof codes / sizeof codes[0])

static void test_every_code_named(void)
{
    for (size_t i = 0; i < NCODES; i++) {
        const code_entry *e = &codes[i];
        fprintf(stderr, "   %s\n", e->name);
        CHECK(e->code < 0);
        CHECK_STR(cf_err_name(e->code), e->name);
        CHECK_STR(cf_strerror(e->code), e->text);
        CHECK(strlen(cf_strerror(e->code)) > 0);
        CHECK(strcmp(cf_strerror(e->code), "unknown error") != 0);
        for (size_t j = 0; j < i; j++) {
            CHECK(codes[j].code != e->code);
            CHECK(strcmp(cf_err_name(codes[j].code), cf_err_name(e->code)) != 0);
            CHECK(strcmp(cf_strerror(codes[j].code), cf_strerror(e->code)) != 0);
        }
    }
    /* the documented codes are all there */
    int documented[] = { CF_EINVAL, CF_ENOMEM,  CF_ETIMEDOUT,     CF_ECANCELLED, CF_ESHUTDOWN,
                         CF_ETASK,  CF_EBROKEN, CF_EINVALIDSTATE, CF_ETOOBIG,    CF_ENOTSUP };
    for (size_t i = 0; i < sizeof documented / sizeof documented[0]; i++)
        CHECK(strcmp(cf_err_name(documented[i]), "CF_UNKNOWN") != 0);
}

static void test_ok_and_unknown_codes(void)
{
    CHECK_STR(cf_err_name(0), "CF_OK");
    CHECK(cf_strerror(0) != NULL);
    CHECK(strcmp(cf_strerror(0), "unknown error") != 0);
    int unknown[] = { 1, 42, -12, -1000, INT_MIN, INT_MAX };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK_STR(cf_err_name(unknown[i]), "CF_UNKNOWN");
        CHECK_STR(cf_strerror(unknown[i]), "unknown error");
    }
}

static void *dummy_task(void *arg)
{
    return arg;
}

typedef struct thread_result {
    int initial;
    int after;
} thread_result;

static void *other_thread(void *p)
{
    thread_result *r = p;
    r->initial = cf_last_error(); /* the main thread's failures are not ours */
    CHECK(cf_submit(NULL, dummy_task, NULL) == NULL);
    r->after = cf_last_error();
    return NULL;
}

static void test_last_error(void)
{
    CHECK_EQ(cf_last_error(), 0); /* nothing failed yet */

    CHECK(cf_submit(NULL, dummy_task, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);

    /* Successful calls do not reset it. */
    cf_future *f = cf_future_new();
    CHECK(f != NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    cf_future_unref(f);

    /* Per thread. */
    thread_result r = { -100, -100 };
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, other_thread, &r), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(r.initial, 0);
    CHECK_EQ(r.after, CF_EINVAL);

    CHECK(cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = -1 }) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);

    cf_executor *ex = cf_thread_pool_new(NULL);
    CHECK(ex != NULL);
    CHECK(cf_submit(ex, NULL, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_submit_copy(ex, dummy_task, NULL, 4) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK_EQ(cf_executor_shutdown(ex, true, false), 0);
    CHECK(cf_submit(ex, dummy_task, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_ESHUTDOWN);
    cf_executor_free(ex);

    /* cf_raise outside a task only sets the last error. */
    CHECK(cf_raise(1234, "not in a task") == NULL);
    CHECK_EQ(cf_last_error(), 1234);
    CHECK(cf_return_copy("x", 1) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);

    CHECK(cf_as_completed_new(NULL, 3, 0) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
}

static void *message_in_thread(void *arg)
{
    *(const char **)arg = cf_last_error_message();
    return NULL;
}

static void test_last_error_message(void)
{
    /* "" in a thread where nothing failed. */
    const char *fresh = NULL;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, message_in_thread, &fresh), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(fresh != NULL);
    CHECK_STR(fresh, "");

    CHECK(cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = -1 }) == NULL);
    CHECK_STR(cf_last_error_message(), cf_strerror(CF_EINVAL));

    /* A failure with a cause of its own says it. */
    CHECK(cf_raise(CF_ETASK, "outside a task: %d", 42) == NULL);
    CHECK_EQ(cf_last_error(), CF_ETASK);
    CHECK_STR(cf_last_error_message(), "outside a task: 42");

    /* The message follows the code. */
    CHECK(cf_as_completed_new(NULL, 3, 0) == NULL);
    CHECK_STR(cf_last_error_message(), cf_strerror(CF_EINVAL));
}

static void test_status_returning_calls(void)
{
    CHECK_EQ(cf_executor_shutdown(NULL, true, false), CF_EINVAL);
    CHECK_EQ(cf_executor_terminate_workers(NULL), CF_EINVAL);
    CHECK_EQ(cf_executor_kill_workers(NULL), CF_EINVAL);
    cf_executor *ex = cf_thread_pool_new(NULL);
    CHECK(ex != NULL);
    CHECK_EQ(cf_executor_terminate_workers(ex), CF_ENOTSUP);
    CHECK_EQ(cf_executor_kill_workers(ex), CF_ENOTSUP);
    cf_executor_free(ex);
    cf_executor_free(NULL);
    /* partial allocator hooks are refused */
    CHECK_EQ(cf_set_alloc_funcs(malloc, NULL, NULL), CF_EINVAL);
    CHECK_EQ(cf_set_alloc_funcs(NULL, NULL, NULL), 0);
}

int main(void)
{
    RUN(test_every_code_named);
    RUN(test_ok_and_unknown_codes);
    RUN(test_last_error);
    RUN(test_last_error_message);
    RUN(test_status_returning_calls);
    return 0;
}
