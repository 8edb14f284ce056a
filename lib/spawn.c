/* Starting a worker process, without libuv's uv_spawn: uv_spawn takes SIGCHLD
 * over for the loop's life (and leaves it at SIG_DFL after), which breaks
 * programs that block, ignore or handle SIGCHLD themselves. Here a worker is
 * made with clone(CLONE_PIDFD), so its pool learns of its end from a pidfd
 * (and its channel closing), whatever the program does with SIGCHLD.
 *
 * exec: clone(CLONE_VM | CLONE_VFORK), as posix_spawn does: the child shares
 * our memory until it execs, so nothing is copied, and it only makes system
 * calls (no libc state, no sanitizer interceptors) before execve. An exec
 * error comes back through a close-on-exec pipe. (Under ThreadSanitizer,
 * whose clone interceptor treats every clone as a fork and would update its
 * state in the shared memory, the child gets a copy instead.)
 * fork: glibc's fork() (its fork handlers keep malloc and stdio sane in the
 * child), then pidfd_open.
 *
 * The child's descriptors: 0 is /dev/null, 1 and 2 are ours (or /dev/null
 * where we have none), 3 and 4 are its ends of the channel (the pipe it
 * reads frames from, the pipe it replies on), 5 the memory it shares with
 * its pool where there is one, and nothing else survives: exec children mark
 * everything above those close-on-exec, fork children close it.
 * SPDX-License-Identifier: MIT */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define CHILD_STACK ((size_t)64 * 1024)

/* What the exec child reads: prepared in full by the parent. */
typedef struct exec_plan {
    const cf__spawn *s;
    bool stdio_open[3]; /* the parent has these */
    int errpipe;        /* write end, >= 4, close-on-exec */
    int fd_limit;       /* for the close-on-exec loop if close_range is missing */
} exec_plan;

/* Runs in the clone(CLONE_VM | CLONE_VFORK) child, on its own stack, sharing
 * the parent's memory: raw system calls only (syscall() is not intercepted by
 * the sanitizers), nothing instrumented. */
__attribute__((no_sanitize("address", "thread", "undefined"))) static int exec_child(void *arg)
{
    const exec_plan *plan = arg;
    const cf__spawn *s = plan->s;
    syscall(SYS_dup3, s->devnull, 0, 0);
    for (int fd = 1; fd <= 2; fd++) {
        if (plan->stdio_open[fd])
            syscall(SYS_fcntl, fd, F_SETFD, 0);
        else
            syscall(SYS_dup3, s->devnull, fd, 0);
    }
    /* Every source is at CF__SPAWN_FD_FIRST or above: no dup3 overwrites
     * another's source. */
    syscall(SYS_dup3, s->channel_in, CF__SPAWN_FD_IN, 0);
    syscall(SYS_dup3, s->channel_out, CF__SPAWN_FD_OUT, 0);
    if (s->shm >= 0)
        syscall(SYS_dup3, s->shm, CF__SPAWN_FD_SHM, 0);
    int first = s->shm >= 0 ? CF__SPAWN_FD_FIRST : CF__SPAWN_FD_SHM;
    if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        for (int fd = first; fd < plan->fd_limit; fd++)
            syscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
    syscall(SYS_execve, s->path, s->argv, s->envp);
    int err = errno;
    syscall(SYS_write, plan->errpipe, &err, sizeof err);
    syscall(SYS_exit_group, 127);
    return 0;
}

static int fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536)
        return 65536;
    return (int)rl.rlim_cur;
}

/* A pipe for the exec error, its write end above the child's own
 * descriptors (which the child places before it execs). */
static int make_errpipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    p[1] = cf__fd_at_least(p[1], CF__SPAWN_FD_FIRST);
    p[0] = cf__fd_above_stdio(p[0]);
    if (p[0] < 0 || p[1] < 0) {
        if (p[0] >= 0)
            close(p[0]);
        if (p[1] >= 0)
            close(p[1]);
        return -1;
    }
    return 0;
}

/* Reap a child whose exec failed. */
static void reap(int pidfd)
{
    siginfo_t si;
    while (syscall(SYS_waitid, P_PIDFD, pidfd, &si, WEXITED | __WALL, NULL) != 0 && errno == EINTR)
        ;
}

/* The child's pidfd moved above 0-2 (it may have landed there when the
 * program closed its standard descriptors): 0, or CF_ESYSTEM with why after
 * the child was killed and reaped (nothing could watch it). */
static int keep_pidfd(cf__spawn *s, pid_t pid, int pidfd, char *why, size_t cap)
{
    int fd = cf__fd_above_stdio(pidfd);
    if (fd < 0) { /* pidfd is closed: the pid is ours to reap, nobody else's */
        int err = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, __WALL);
        snprintf(why, cap, "cannot keep the worker's pidfd above 0-2: %s", strerror(err));
        return CF_ESYSTEM;
    }
    s->pid = pid;
    s->pidfd = fd;
    return 0;
}

static int spawn_exec(cf__spawn *s, char *why, size_t cap)
{
    exec_plan plan = { .s = s, .fd_limit = fd_limit() };
    for (int fd = 1; fd <= 2; fd++)
        plan.stdio_open[fd] = cf__fd_is_open(fd);
    int errpipe[2];
    if (make_errpipe(errpipe) != 0) {
        snprintf(why, cap, "cannot make a pipe: %s", strerror(errno));
        return CF_ESYSTEM;
    }
    plan.errpipe = errpipe[1];
    void *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        snprintf(why, cap, "cannot map a stack to start it on: %s", strerror(errno));
        close(errpipe[0]);
        close(errpipe[1]);
        return CF_ESYSTEM;
    }
    int pidfd = -1;
    int flags = CLONE_PIDFD | SIGCHLD;
#if !defined(__SANITIZE_THREAD__)
    flags |= CLONE_VM | CLONE_VFORK; /* see the top of the file */
#endif
    int pid = clone(exec_child, (char *)stack + CHILD_STACK, flags, &plan, &pidfd);
    int clone_errno = errno;
    munmap(stack, CHILD_STACK);
    close(errpipe[1]);
    if (pid < 0) {
        close(errpipe[0]);
        snprintf(why, cap, "clone: %s", strerror(clone_errno));
        return CF_ESYSTEM;
    }
    int exec_errno = 0;
    ssize_t n;
    do
        n = read(errpipe[0], &exec_errno, sizeof exec_errno);
    while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == (ssize_t)sizeof exec_errno) {
        reap(pidfd);
        close(pidfd);
        snprintf(why, cap, "execve %s: %s", s->path, strerror(exec_errno));
        return CF_ESYSTEM;
    }
    return keep_pidfd(s, pid, pidfd, why, cap);
}

/* In the fork child: the descriptors as the top of the file says. */
static void arrange_fork_child_fds(const cf__spawn *s)
{
    bool out_open[3] = { false, cf__fd_is_open(1), cf__fd_is_open(2) };
    dup2(s->devnull, 0);
    for (int fd = 1; fd <= 2; fd++)
        if (!out_open[fd])
            dup2(s->devnull, fd);
    dup2(s->channel_in, CF__SPAWN_FD_IN); /* sources are above: see exec_child */
    dup2(s->channel_out, CF__SPAWN_FD_OUT);
    if (s->shm >= 0)
        dup2(s->shm, CF__SPAWN_FD_SHM);
    int first = s->shm >= 0 ? CF__SPAWN_FD_FIRST : CF__SPAWN_FD_SHM;
    if (syscall(SYS_close_range, first, ~0U, 0) != 0)
        for (int fd = first, limit = fd_limit(); fd < limit; fd++)
            close(fd);
}

static int spawn_fork(cf__spawn *s, char *why, size_t cap)
{
    /* The child gets a copy of every stdio buffer: empty them first, or the
     * worker would write the program's pending output a second time. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, cap, "fork: %s", strerror(errno));
        return CF_ESYSTEM;
    }
    if (pid == 0) {
        __fpurge(stdout); /* what another thread wrote since the flush above */
        __fpurge(stderr);
        arrange_fork_child_fds(s);
        s->fork_main(CF__SPAWN_FD_IN, CF__SPAWN_FD_OUT, s->shm >= 0 ? CF__SPAWN_FD_SHM : -1);
        _exit(127); /* not reached */
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        int err = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, __WALL);
        snprintf(why, cap, "pidfd_open: %s", strerror(err));
        return CF_ESYSTEM;
    }
    return keep_pidfd(s, pid, pidfd, why, cap);
}

int cf__spawn_worker(cf__spawn *s, char *why, size_t cap)
{
    s->pid = 0;
    s->pidfd = -1;
    return s->fork_main ? spawn_fork(s, why, cap) : spawn_exec(s, why, cap);
}

/* Linux 6.15 keeps a process's exit status for its pidfds, even once
 * someone else reaped it (PIDFD_GET_INFO with PIDFD_INFO_EXIT). */
typedef struct pidfd_info {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code; /* a wait status */
} pidfd_info;
#define PIDFD_INFO_EXIT_ (1UL << 3)
#define PIDFD_GET_INFO_ _IOWR(0xFF, 11, pidfd_info)

static void describe_status(int status, cf__worker_exit *e, const char *note)
{
    if (WIFEXITED(status)) {
        e->exit_status = WEXITSTATUS(status);
        snprintf(e->why, sizeof e->why, "worker died: exited with status %d%s", WEXITSTATUS(status),
                 note);
    } else {
        e->signal = WTERMSIG(status);
        snprintf(e->why, sizeof e->why, "worker died: killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), note);
    }
}

static void exit_reaped_elsewhere(int pidfd, cf__worker_exit *e)
{
    struct sigaction sa;
    bool ignored = sigaction(SIGCHLD, NULL, &sa) == 0 &&
                   (sa.sa_handler == SIG_IGN || (sa.sa_flags & SA_NOCLDWAIT));
    const char *who = ignored ? "the program ignores SIGCHLD, so the kernel reaped it"
                              : "something else in the program (a wait() or waitpid(-1)) "
                                "reaped it";
    pidfd_info info;
    memset(&info, 0, sizeof info);
    info.mask = PIDFD_INFO_EXIT_;
    if (ioctl(pidfd, PIDFD_GET_INFO_, &info) == 0 && (info.mask & PIDFD_INFO_EXIT_)) {
        char note[160];
        snprintf(note, sizeof note, " (%s)", who);
        describe_status(info.exit_code, e, note);
        return;
    }
    snprintf(e->why, sizeof e->why, "worker died; its exit status is unknown: %s", who);
}

int cf__spawn_wait(int pidfd, cf__worker_exit *e)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    do
        rc = (int)syscall(SYS_waitid, P_PIDFD, pidfd, &si, WEXITED | WNOHANG | __WALL, NULL);
    while (rc != 0 && errno == EINTR);
    if ((rc == 0 && si.si_pid == 0) || (rc != 0 && errno == EAGAIN))
        return CF_ETIMEDOUT; /* still running (EAGAIN: a non-blocking pidfd) */
    e->signal = 0;
    e->exit_status = -1;
    if (rc == 0 && si.si_code == CLD_EXITED)
        describe_status(W_EXITCODE(si.si_status, 0), e, "");
    else if (rc == 0) /* CLD_KILLED or CLD_DUMPED */
        describe_status(W_EXITCODE(0, si.si_status), e, "");
    else
        exit_reaped_elsewhere(pidfd, e);
    return 0;
}
