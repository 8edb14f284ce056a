/* Programs that handle SIGCHLD themselves. Whether SIGCHLD is blocked (for
 * sigwait or a signalfd), ignored, or handled by a reaper that calls
 * waitpid(-1), a worker that dies is noticed (its task fails with CF_EBROKEN
 * and, where the kernel still has it, its signal), the pool goes on, free
 * returns, and the program's disposition, handler and mask are as it left
 * them, its own children still its own. Each case runs in a fresh process
 * (the test re-runs itself with the case's name), its signal state its own.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#define WAIT 60.0

static void *twice(void *arg)
{
    return V(I(arg) * 2);
}

static void *die(void *arg)
{
    (void)arg;
    kill(getpid(), SIGKILL);
    return NULL;
}

/* A worker dies; the others' work completes; the pool still takes work.
 * `maybe_unknown`: where the program reaps every child, the status may be
 * gone (kernels before 6.15): then the message must say so. */
static void crash_one_worker(bool maybe_unknown)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 });
    CHECK(ex != NULL);
    cf_future *fs[10];
    for (int i = 0; i < 10; i++)
        CHECK((fs[i] = cf_submit(ex, twice, V(i))) != NULL);
    cf_future *dead = cf_submit(ex, die, NULL);
    CHECK(dead != NULL);
    CHECK_EQ(cf_future_result(dead, WAIT, NULL), CF_EBROKEN);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(dead, 0, &exc), 0);
    CHECK(exc != NULL);
    fprintf(stderr, "   the dead worker's task: %s\n", exc->message);
    if (!maybe_unknown || exc->signal != 0)
        CHECK_EQ(exc->signal, SIGKILL);
    else
        CHECK(strstr(exc->message, "reaped") != NULL);
    cf_future_unref(dead);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(result_of(fs[i]), 2 * i);
        cf_future_unref(fs[i]);
    }
    cf_future *after = cf_submit(ex, twice, V(21));
    CHECK_EQ(result_of(after), 42);
    cf_future_unref(after);
    cf_executor_free(ex);
}

/* A child of the program's own, that exits with `status`. */
static pid_t own_child(int status)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(status);
    return pid;
}

static void block_sigchld(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    CHECK_EQ(sigprocmask(SIG_BLOCK, set, NULL), 0);
}

static bool sigchld_blocked(void)
{
    sigset_t now;
    CHECK_EQ(sigprocmask(SIG_BLOCK, NULL, &now), 0);
    return sigismember(&now, SIGCHLD);
}

static void case_blocked(void)
{
    sigset_t set;
    block_sigchld(&set);
    crash_one_worker(false);
    CHECK(sigchld_blocked());
    pid_t pid = own_child(3);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
}

static void case_signalfd(void)
{
    sigset_t set;
    block_sigchld(&set);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    CHECK(sfd >= 0);
    crash_one_worker(false);
    pid_t pid = own_child(4);
    /* Our workers' ends arrive here too (they are children): read until
     * the program's own child has ended. */
    int status = -1;
    for (int rounds = 0; rounds < 100 && status < 0; rounds++) {
        struct pollfd p = { .fd = sfd, .events = POLLIN };
        CHECK_EQ(poll(&p, 1, (int)(WAIT * 1000)), 1);
        struct signalfd_siginfo si;
        CHECK_EQ(read(sfd, &si, sizeof si), (ssize_t)sizeof si);
        CHECK_EQ(si.ssi_signo, SIGCHLD);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            status = st;
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 4);
    CHECK(sigchld_blocked());
    close(sfd);
}

static void case_ignored(void)
{
    CHECK(signal(SIGCHLD, SIG_IGN) != SIG_ERR);
    crash_one_worker(true);
    struct sigaction now;
    CHECK_EQ(sigaction(SIGCHLD, NULL, &now), 0);
    CHECK(now.sa_handler == SIG_IGN); /* not left at SIG_DFL */
    CHECK_EQ(count_children(), 0);    /* no zombie */
    pid_t pid = own_child(0);
    errno = 0;
    CHECK_EQ(waitpid(pid, NULL, 0), -1); /* the kernel reaped it, as asked */
    CHECK_EQ(errno, ECHILD);
}

/* A reaper: takes every child that ends, ours included, and writes each
 * (pid, status) to a pipe for the test to read. */
static int reaped_pipe[2];
static void reaper(int sig)
{
    (void)sig;
    int saved = errno, st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        int rec[2] = { pid, st };
        (void)!write(reaped_pipe[1], rec, sizeof rec);
    }
    errno = saved;
}

static void case_reaper(void)
{
    CHECK_EQ(pipe(reaped_pipe), 0);
    struct sigaction sa = { .sa_handler = reaper, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGCHLD, &sa, NULL), 0);
    crash_one_worker(true);
    pid_t pid = own_child(5);
    int status = -1;
    while (status < 0) { /* the reaper reports workers too: find our child */
        struct pollfd p = { .fd = reaped_pipe[0], .events = POLLIN };
        int n;
        while ((n = poll(&p, 1, (int)(WAIT * 1000))) < 0 && errno == EINTR)
            ; /* the reaper ran */
        CHECK_EQ(n, 1);
        int rec[2];
        CHECK_EQ(read(reaped_pipe[0], rec, sizeof rec), (ssize_t)sizeof rec);
        if (rec[0] == pid)
            status = rec[1];
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 5);
    struct sigaction now;
    CHECK_EQ(sigaction(SIGCHLD, NULL, &now), 0);
    CHECK(now.sa_handler == reaper);
}

/* A handler that does not reap: called for the program's own child, still
 * installed after the pool; the program reaps its child itself. */
static volatile sig_atomic_t handler_calls;
static void counting_handler(int sig)
{
    (void)sig;
    handler_calls++;
}

static void case_handler(void)
{
    struct sigaction sa = { .sa_handler = counting_handler };
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGCHLD, &sa, NULL), 0);
    crash_one_worker(false);
    struct sigaction now;
    CHECK_EQ(sigaction(SIGCHLD, NULL, &now), 0);
    CHECK(now.sa_handler == counting_handler);
    sig_atomic_t before = handler_calls;
    pid_t pid = own_child(6);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 6);
    /* The only thread left: the signal, raised when the child ended, was
     * delivered to it before waitpid returned. */
    CHECK(handler_calls > before);
}

static const struct {
    const char *name;
    void (*run)(void);
} cases[] = {
    { "blocked", case_blocked }, { "signalfd", case_signalfd }, { "ignored", case_ignored },
    { "reaper", case_reaper },   { "handler", case_handler },
};

int main(int argc, char **argv)
{
    let_workers_crash();
    size_t ncases = sizeof cases / sizeof cases[0];
    if (argc == 2) {
        for (size_t i = 0; i < ncases; i++) {
            if (strcmp(argv[1], cases[i].name) == 0) {
                cases[i].run();
                return 0;
            }
        }
        return 2;
    }
    for (size_t i = 0; i < ncases; i++) {
        fprintf(stderr, "-- SIGCHLD %s\n", cases[i].name);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            execl(argv[0], argv[0], cases[i].name, (char *)NULL);
            _exit(127);
        }
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFEXITED(status));
        CHECK_EQ(WEXITSTATUS(status), 0);
    }
    return 0;
}
