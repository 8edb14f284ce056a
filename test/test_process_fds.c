/* What a process-pool worker inherits: stdin from /dev/null, the program's
 * stdout and stderr, its own channel (two pipes: 3 it reads frames from, 4 it
 * replies on, both close-on-exec, so what a task runs does not inherit them),
 * and no other descriptor of the program (the memory it shares with its pool
 * is mapped, its descriptor closed before any task runs): a pipe's
 * write end the program closes reaches EOF at once, pool or no pool. With
 * the exec and the fork start methods (the helper cannot run functions of
 * the main program, see test_start_methods).
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <poll.h>
#include <sys/stat.h>

#define WAIT 60.0

enum {
    BAD_STDIN = 1,    /* 0 is not /dev/null */
    BAD_CHANNEL = 2,  /* 3 is not a pipe's read end, or 4 not a pipe's write end */
    BAD_CLOEXEC = 4,  /* 3 or 4 is not close-on-exec */
    BAD_EXTRA = 8,    /* some descriptor beyond 0-4 is open */
    BAD_MISSING = 16, /* 1 or 2 is not open */
};

static bool is_pipe_end(int fd, int access)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && fl >= 0 && (fl & O_ACCMODE) == access;
}

static void *inspect_fds(void *arg)
{
    (void)arg;
    int bad = 0;
    struct stat st, null_st;
    if (fstat(0, &st) != 0 || stat("/dev/null", &null_st) != 0 || st.st_rdev != null_st.st_rdev)
        bad |= BAD_STDIN;
    if (fcntl(1, F_GETFD) < 0 || fcntl(2, F_GETFD) < 0)
        bad |= BAD_MISSING;
    if (!is_pipe_end(3, O_RDONLY) || !is_pipe_end(4, O_WRONLY))
        bad |= BAD_CHANNEL;
    if (!(fcntl(3, F_GETFD) & FD_CLOEXEC) || !(fcntl(4, F_GETFD) & FD_CLOEXEC))
        bad |= BAD_CLOEXEC;
    for (int fd = 5; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            bad |= BAD_EXTRA;
    return V(bad);
}

static void check_inheritance(cf_start_method method)
{
    int p[2];
    CHECK_EQ(pipe(p), 0); /* not close-on-exec: ordinary descriptors */
    int extra = open("/dev/null", O_RDONLY);
    CHECK(extra >= 0);
    cf_executor *ex =
        cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2, .start_method = method });
    CHECK(ex != NULL);
    cf_future *fs[4];
    for (int i = 0; i < 4; i++)
        CHECK((fs[i] = cf_submit(ex, inspect_fds, NULL)) != NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(result_of(fs[i]), 0);
        cf_future_unref(fs[i]);
    }
    /* The workers are alive: the pipe's only writer is ours. */
    close(p[1]);
    struct pollfd pfd = { .fd = p[0], .events = POLLIN };
    CHECK_EQ(poll(&pfd, 1, (int)(WAIT * 1000)), 1);
    char c;
    CHECK_EQ(read(p[0], &c, 1), 0); /* EOF */
    close(p[0]);
    close(extra);
    cf_executor_free(ex);
}

static void test_exec(void)
{
    check_inheritance(CF_START_EXEC);
}

static void test_fork(void)
{
    check_inheritance(CF_START_FORK);
}

int main(void)
{
    make_pipes();
    RUN(test_exec);
    RUN(test_fork);
    return 0;
}
