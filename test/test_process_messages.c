/* Failures name their cause, and the pool touches nothing of the program's:
 * - the program's file deleted or replaced since it started: workers still
 *   start (from the running image);
 * - too few descriptors allowed: creation or the tasks fail with the errno's
 *   words, nothing hangs;
 * - a worker that dies while starting: its exit status is in the exception;
 * - cf_raise with an empty message arrives empty, on both pools;
 * - no helper to start workers from: creation fails and says where it looked;
 * - the program's environment, a CF_WORKER=production included, is its own,
 *   in main and in workers; a program whose arguments look like a worker's
 *   runs its main as usual.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <sys/resource.h>
#include <sys/wait.h>

#define WAIT 60.0

static void *twice(void *arg)
{
    return V(I(arg) * 2);
}

static int run_twice(cf_executor *ex, int n)
{
    cf_future *f = cf_submit(ex, twice, V(n));
    CHECK(f != NULL);
    void *v = NULL;
    int rc = cf_future_result(f, WAIT, &v);
    cf_future_unref(f);
    return rc == 0 ? (int)I(v) : rc;
}

/* Run this program again with arguments; its exit status. */
static int rerun(const char *self, const char *a1, const char *a2)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execl(self, self, a1, a2, (char *)NULL);
        _exit(127);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    CHECK(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        CHECK(fwrite(buf, 1, n, out) == n);
    CHECK(fclose(in) == 0 && fclose(out) == 0);
    CHECK_EQ(chmod(to, 0755), 0);
}

/* In a copy of this program: remove (or replace) our own file, then use a
 * pool. */
static int gone_program(const char *self, const char *how)
{
    if (strcmp(how, "deleted") == 0) {
        CHECK_EQ(unlink(self), 0);
    } else {
        char other[256];
        snprintf(other, sizeof other, "%s.other", self);
        FILE *f = fopen(other, "w");
        CHECK(f && fputs("#!/bin/sh\nexit 99\n", f) >= 0 && fclose(f) == 0);
        CHECK_EQ(chmod(other, 0755), 0);
        CHECK_EQ(rename(other, self), 0);
    }
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 });
    CHECK(ex != NULL);
    for (int i = 0; i < 6; i++)
        CHECK_EQ(run_twice(ex, i), 2 * i);
    cf_executor_free(ex);
    if (strcmp(how, "replaced") == 0)
        CHECK_EQ(unlink(self), 0);
    return 0;
}

static void test_program_file_gone(const char *self)
{
    const char *hows[] = { "deleted", "replaced" };
    for (int i = 0; i < 2; i++) {
        char copy[] = "/tmp/cftest-gone-XXXXXX";
        int fd = mkstemp(copy);
        CHECK(fd >= 0);
        close(fd);
        copy_file(self, copy);
        fprintf(stderr, "   program file %s\n", hows[i]);
        CHECK_EQ(rerun(copy, "--gone", hows[i]), 0);
        unlink(copy); /* already gone, normally */
    }
}

static int open_fds(void)
{
    return count_fds();
}

/* With the descriptor limit just above what is open, k more allowed: every
 * outcome is a success or a failure that says "Too many open files". */
static int fd_limit_case(void)
{
    struct rlimit old;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    int base = open_fds();
    int failures = 0;
    for (int k = 0; k <= 16; k++) {
        struct rlimit rl = { (rlim_t)(base + k), old.rlim_max };
        CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
        cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1 });
        if (!ex) {
            fprintf(stderr, "   %d allowed: no pool: %s\n", base + k, cf_last_error_message());
            CHECK(strstr(cf_last_error_message(), "Too many open files") != NULL);
            failures++;
            continue;
        }
        cf_future *f = cf_submit(ex, twice, V(k));
        CHECK(f != NULL);
        void *v = NULL;
        int rc = cf_future_result(f, WAIT, &v);
        if (rc == 0) {
            CHECK_EQ(I(v), 2 * k);
        } else {
            const cf_exception *exc = NULL;
            CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
            fprintf(stderr, "   %d allowed: %s: %s\n", base + k, cf_err_name(rc), exc->message);
            CHECK_EQ(rc, CF_EBROKEN);
            CHECK(strstr(exc->message, "Too many open files") != NULL);
            failures++;
        }
        cf_future_unref(f);
        cf_executor_free(ex);
    }
    CHECK(failures > 0); /* the limit did bite */
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    return 0;
}

static void test_fd_limit(const char *self)
{
    CHECK_EQ(rerun(self, "--fd-limit", "x"), 0);
}

static int exit_while_starting(void *arg)
{
    _exit((int)I(arg));
}

static void test_start_failure_status(void)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){
        .max_workers = 1, .initializer = exit_while_starting, .initarg = V(2) });
    CHECK(ex != NULL);
    cf_future *f = cf_submit(ex, twice, V(1));
    CHECK(f != NULL);
    CHECK_EQ(cf_future_result(f, WAIT, NULL), CF_EBROKEN);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    fprintf(stderr, "   %s (exit_status %d)\n", exc->message, exc->exit_status);
    CHECK(strstr(exc->message, "status 2") != NULL);
    CHECK_EQ(exc->exit_status, 2);
    CHECK_EQ(exc->signal, 0);
    cf_future_unref(f);
    cf_executor_free(ex);
}

static void *raise_empty(void *arg)
{
    (void)arg;
    return cf_raise(7, "%s", "");
}

static void *raise_null(void *arg)
{
    (void)arg;
    return cf_raise(8, NULL);
}

static void test_raise_messages(void)
{
    cf_executor *pools[2] = { cf_thread_pool_new(NULL), cf_process_pool_new(NULL) };
    for (int k = 0; k < 2; k++) {
        CHECK(pools[k] != NULL);
        cf_future *f = cf_submit(pools[k], raise_empty, NULL);
        CHECK_EQ(cf_future_result(f, WAIT, NULL), CF_ETASK);
        const cf_exception *exc = NULL;
        CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
        CHECK_EQ(exc->code, 7);
        CHECK_STR(exc->message, "");
        cf_future_unref(f);
        f = cf_submit(pools[k], raise_null, NULL);
        CHECK_EQ(cf_future_result(f, WAIT, NULL), CF_ETASK);
        CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
        CHECK_EQ(exc->code, 8);
        CHECK_STR(exc->message, cf_strerror(8));
        cf_future_unref(f);
        cf_executor_free(pools[k]);
    }
}

static void test_no_helper(void)
{
    CHECK_EQ(setenv("CFUTURES_WORKER_HELPER", "/nonexistent/cfutures-worker", 1), 0);
    CHECK(cf_process_pool_new(&(cf_process_pool_opts){ .start_method = CF_START_HELPER }) == NULL);
    CHECK_EQ(cf_last_error(), CF_ENOTSUP);
    fprintf(stderr, "   %s\n", cf_last_error_message());
    CHECK(strstr(cf_last_error_message(), "/nonexistent/cfutures-worker") != NULL);
    CHECK_EQ(unsetenv("CFUTURES_WORKER_HELPER"), 0);
    CHECK(cf_process_pool_new(&(cf_process_pool_opts){ .start_method = 99 }) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
}

static void *worker_sees_marker(void *arg)
{
    (void)arg;
    const char *v = getenv("CF_WORKER");
    return V(v && strcmp(v, "production") == 0);
}

static void test_environment_untouched(const char *self)
{
    CHECK_EQ(setenv("CF_WORKER", "production", 1), 0);
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1 });
    CHECK(ex != NULL);
    cf_future *f = cf_submit(ex, worker_sees_marker, NULL);
    CHECK_EQ(result_of(f), 1);
    cf_future_unref(f);
    cf_executor_free(ex);
    CHECK_STR(getenv("CF_WORKER"), "production");
    /* Arguments that look like a worker's, from no pool: main runs. */
    CHECK_EQ(rerun(self, "--cfutures-worker", "3:1"), 42);
    CHECK_EQ(rerun(self, "--cfutures-worker", "3:4:-1:1"), 42);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--gone") == 0)
        return gone_program(argv[0], argv[2]);
    if (argc == 3 && strcmp(argv[1], "--fd-limit") == 0)
        return fd_limit_case();
    if (argc == 3 && strcmp(argv[1], "--cfutures-worker") == 0)
        return 42; /* main ran */
    make_pipes();
    RUN_ARG(test_program_file_gone, argv[0]);
    RUN_ARG(test_fd_limit, argv[0]);
    RUN(test_start_failure_status);
    RUN(test_raise_messages);
    RUN(test_no_helper);
    RUN_ARG(test_environment_untouched, argv[0]);
    return 0;
}
