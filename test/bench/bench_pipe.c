/* cf-bench: the process pool's floors of roundtrip_latency, no executor,
 * only the transport its round trip goes over (two pipe messages between two
 * processes): an 8-byte message to a child process over one pipe and back
 * over another (the child sends it back plus one).
 *   pipe-poll:  both sides read non-blocking in a loop, never sleeping;
 *   pipe-block: both sides block in read(), the kernel wakes them.
 * Each run forks its child, warms up, then times p->roundtrips round trips;
 * the figure is their median, as for the pools.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { WARM_UP_ROUNDTRIPS = 100 };

/* Read one message; with `poll` the descriptor is non-blocking and an empty
 * pipe is read again at once. False at end of file or on an error. */
static bool read_message(int fd, uint64_t *v, bool poll)
{
    char *b = (char *)v;
    size_t got = 0;
    while (got < sizeof *v) {
        ssize_t r = read(fd, b + got, sizeof *v - got);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || (errno != EINTR && !(poll && errno == EAGAIN)))
            return false;
    }
    return true;
}

static bool write_message(int fd, uint64_t v)
{
    const char *b = (const char *)&v;
    size_t put = 0;
    while (put < sizeof v) {
        ssize_t r = write(fd, b + put, sizeof v - put);
        if (r > 0)
            put += (size_t)r;
        else if (r < 0 && errno != EINTR)
            return false;
    }
    return true;
}

/* The child: async-signal-safe calls only (it is forked from a process with
 * threads). Ends when the parent closes its end. */
static _Noreturn void echo_child(int in, int out, bool poll)
{
    uint64_t v;
    while (read_message(in, &v, poll) && write_message(out, v + 1)) {
    }
    _exit(0);
}

static double pipe_once(bench_workload w, const bench_params *p, void *ctx)
{
    bool poll = *(const bool *)ctx;
    if (w != BENCH_ROUNDTRIP_LATENCY)
        return NAN;
    size_t n = p->roundtrips;
    double *us = malloc(n * sizeof *us);
    int down[2], up[2]; /* parent -> child, child -> parent */
    if (!us || pipe(down) != 0) {
        free(us);
        return NAN;
    }
    if (pipe(up) != 0) {
        close(down[0]);
        close(down[1]);
        free(us);
        return NAN;
    }
    if (poll) {
        fcntl(down[0], F_SETFL, fcntl(down[0], F_GETFL) | O_NONBLOCK);
        fcntl(up[0], F_SETFL, fcntl(up[0], F_GETFL) | O_NONBLOCK);
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        echo_child(down[0], up[1], poll);
    }
    close(down[0]);
    close(up[1]);
    double value = NAN;
    if (pid > 0) {
        size_t i = 0;
        uint64_t v = 0;
        for (; i < WARM_UP_ROUNDTRIPS + n; i++) {
            uint64_t t0 = bench_now_ns();
            if (!write_message(down[1], i) || !read_message(up[0], &v, poll) || v != i + 1)
                break;
            uint64_t dt = bench_now_ns() - t0;
            if (i >= WARM_UP_ROUNDTRIPS)
                us[i - WARM_UP_ROUNDTRIPS] = (double)dt / 1e3;
        }
        if (i == WARM_UP_ROUNDTRIPS + n)
            value = bench_median(us, n);
    }
    close(down[1]); /* the child reads end of file and exits */
    close(up[0]);
    while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    free(us);
    return value;
}

/* A child that died would make the next write raise SIGPIPE: ignore it for
 * the run, so that the write fails and the run reports the failure. */
static bool pipe_run(const char *system, bench_workload w, const bench_params *p, bool poll)
{
    struct sigaction ignore, old;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    bool restore = sigaction(SIGPIPE, &ignore, &old) == 0;
    bool ok = bench_repeat(system, w, p, pipe_once, &poll);
    if (restore)
        sigaction(SIGPIPE, &old, NULL);
    return ok;
}

bool bench_pipe_poll_run(bench_workload w, const bench_params *p)
{
    return pipe_run("pipe-poll", w, p, true);
}

bool bench_pipe_block_run(bench_workload w, const bench_params *p)
{
    return pipe_run("pipe-block", w, p, false);
}
