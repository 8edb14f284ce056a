/* What the process-pool tests share. Tasks synchronise with the test through
 * two FIFOs in a directory the test makes before its pools, named by the
 * environment variable CFTEST_SYNC_DIR (workers inherit the environment but
 * no descriptor, and do not run main): a task writes its pid to "started"
 * when it starts and reads a byte from "gate" before going on; the test reads
 * the pids and opens the gate. Each process opens the FIFOs once, read-write
 * (so that opening never blocks), on first use.
 * SPDX-License-Identifier: MIT */
#ifndef CF_TEST_PROCESS_UTIL_H
#define CF_TEST_PROCESS_UTIL_H

#include "check.h"

#include <cfutures.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define V(n) ((void *)(intptr_t)(n))
#define I(p) ((intptr_t)(p))

/* The value of a future that must succeed. */
static inline intptr_t result_of(cf_future *f)
{
    void *v = NULL;
    CHECK(f != NULL);
    CHECK_EQ(cf_future_result(f, CF_FOREVER, &v), 0);
    return I(v);
}

#define SYNC_DIR_VAR "CFTEST_SYNC_DIR"

/* This process's descriptors of the two FIFOs ("started", "gate"), opened
 * on first use; reopened in a process forked off one that had them. */
static inline int sync_fd(int which)
{
    static int fds[2] = { -1, -1 };
    static pid_t owner;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* thread-pool tasks too */
    pthread_mutex_lock(&lock);
    if (owner != getpid()) {
        const char *dir = getenv(SYNC_DIR_VAR);
        CHECK(dir != NULL);
        char path[512];
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, i == 0 ? "started" : "gate");
            fds[i] = open(path, O_RDWR | O_CLOEXEC);
            CHECK(fds[i] >= 0);
        }
        owner = getpid();
    }
    int fd = fds[which];
    pthread_mutex_unlock(&lock);
    return fd;
}

static char sync_dir_path[64];

static inline void remove_sync_dir(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/started", sync_dir_path);
    unlink(path);
    snprintf(path, sizeof path, "%s/gate", sync_dir_path);
    unlink(path);
    rmdir(sync_dir_path);
}

/* In the test's main, before any pool: make the FIFOs (removed at exit). */
static inline void make_pipes(void)
{
    snprintf(sync_dir_path, sizeof sync_dir_path, "/tmp/cftest-sync-XXXXXX");
    CHECK(mkdtemp(sync_dir_path) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/started", sync_dir_path);
    CHECK(mkfifo(path, 0600) == 0);
    snprintf(path, sizeof path, "%s/gate", sync_dir_path);
    CHECK(mkfifo(path, 0600) == 0);
    CHECK(setenv(SYNC_DIR_VAR, sync_dir_path, 1) == 0);
    atexit(remove_sync_dir);
}

static inline void open_gate(int n)
{
    for (int i = 0; i < n; i++)
        CHECK(write(sync_fd(1), "g", 1) == 1);
}

/* In a task: say so (with our pid). */
static inline void report_started(void)
{
    int pid = getpid();
    CHECK(write(sync_fd(0), &pid, sizeof pid) == (ssize_t)sizeof pid);
}

/* In a task: wait until the test opens the gate. */
static inline void pass_gate(void)
{
    char c;
    CHECK(read(sync_fd(1), &c, 1) == 1);
}

/* In the test: the pid of the next task that started. */
static inline int wait_started(void)
{
    int pid = 0;
    CHECK(read(sync_fd(0), &pid, sizeof pid) == (ssize_t)sizeof pid);
    return pid;
}

/* The state letter of a process from /proc/<pid>/stat ('R', 'S', 'Z'...),
 * or 0 when there is no such process. */
static inline char process_state(int pid, int *ppid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (k <= 0)
        return 0;
    buf[k] = '\0';
    char *rp = strrchr(buf, ')');
    char state = 0;
    int pp = 0;
    if (!rp || sscanf(rp + 1, " %c %d", &state, &pp) != 2)
        return 0;
    if (ppid)
        *ppid = pp;
    return state;
}

/* Children of this process (workers), from /proc. */
static inline int count_children(void)
{
    DIR *d = opendir("/proc");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        int ppid = 0;
        if (process_state(atoi(e->d_name), &ppid) && ppid == getpid())
            n++;
    }
    closedir(d);
    return n;
}

/* Open file descriptors of this process. */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own fd */
}

/* Workers that crash must die of their signal: no sanitizer handler (which
 * would exit(1) instead) and no core dump. Workers inherit this. */
static inline void let_workers_crash(void)
{
    const char *names[] = { "ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS" };
    for (size_t i = 0; i < 3; i++) {
        const char *old = getenv(names[i]);
        char buf[1024];
        snprintf(buf, sizeof buf,
                 "%s%shandle_segv=0:handle_abort=0:handle_sigbus=0:"
                 "disable_coredump=1",
                 old ? old : "", old && *old ? ":" : "");
        CHECK(setenv(names[i], buf, 1) == 0);
    }
    struct rlimit no_core = { 0, 0 };
    setrlimit(RLIMIT_CORE, &no_core);
}

#endif
