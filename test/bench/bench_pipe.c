/* cf-bench: the process pool's floors of roundtrip_latency, no executor,
 * only the transport its round trip goes over (two messages between two
 * processes): an 8-byte message to a child process and back (the child
 * sends it back plus one).
 *   pipe-poll:   over one pipe and back over another, both sides reading
 *                non-blocking in a loop, never sleeping;
 *   pipe-block:  the same, both sides blocking in read(), the kernel wakes them;
 *   socket-poll: over one AF_UNIX stream socket pair, both sides polling as
 *                in pipe-poll: what a channel of one socket pair would cost
 *                (a message through a socket costs the kernel more than
 *                through a pipe; the process pool's channel is two pipes).
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
#include <sys/socket.h>
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

typedef struct floor_kind {
    bool poll;   /* non-blocking reads in a loop */
    bool socket; /* one socket pair instead of two pipes */
} floor_kind;

/* The channel: down (parent -> child) and up (child -> parent), [0] the
 * read end, [1] the write end. A socket pair is both ways at once: down[1]
 * and up[0] are then one descriptor, as are down[0] and up[1]. */
static bool open_channel(const floor_kind *k, int down[2], int up[2])
{
    if (k->socket) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            return false;
        down[1] = up[0] = sv[0];
        down[0] = up[1] = sv[1];
    } else {
        if (pipe(down) != 0)
            return false;
        if (pipe(up) != 0) {
            close(down[0]);
            close(down[1]);
            return false;
        }
    }
    /* On a socket pair this makes the writes non-blocking too: an 8-byte
     * message into a socket nobody has filled never has to wait. */
    if (k->poll) {
        fcntl(down[0], F_SETFL, fcntl(down[0], F_GETFL) | O_NONBLOCK);
        fcntl(up[0], F_SETFL, fcntl(up[0], F_GETFL) | O_NONBLOCK);
    }
    return true;
}

/* Close one side's two ends (one descriptor for a socket pair). */
static void close_side(int read_end, int write_end)
{
    close(read_end);
    if (write_end != read_end)
        close(write_end);
}

static double floor_once(bench_workload w, const bench_params *p, void *ctx)
{
    const floor_kind *k = ctx;
    bool poll = k->poll;
    if (w != BENCH_ROUNDTRIP_LATENCY)
        return NAN;
    size_t n = p->roundtrips;
    double *us = malloc(n * sizeof *us);
    int down[2], up[2];
    if (!us || !open_channel(k, down, up)) {
        free(us);
        return NAN;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close_side(up[0], down[1]);
        echo_child(down[0], up[1], poll);
    }
    close_side(down[0], up[1]);
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
    close_side(up[0], down[1]); /* the child reads end of file and exits */
    while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    free(us);
    return value;
}

/* A child that died would make the next write raise SIGPIPE: ignore it for
 * the run, so that the write fails and the run reports the failure. */
static bool floor_run(const char *system, bench_workload w, const bench_params *p, floor_kind kind)
{
    struct sigaction ignore, old;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    bool restore = sigaction(SIGPIPE, &ignore, &old) == 0;
    bool ok = bench_repeat(system, w, p, floor_once, &kind);
    if (restore)
        sigaction(SIGPIPE, &old, NULL);
    return ok;
}

bool bench_pipe_poll_run(bench_workload w, const bench_params *p)
{
    return floor_run("pipe-poll", w, p, (floor_kind){ .poll = true });
}

bool bench_pipe_block_run(bench_workload w, const bench_params *p)
{
    return floor_run("pipe-block", w, p, (floor_kind){ .poll = false });
}

bool bench_socket_poll_run(bench_workload w, const bench_params *p)
{
    return floor_run("socket-poll", w, p, (floor_kind){ .poll = true, .socket = true });
}
