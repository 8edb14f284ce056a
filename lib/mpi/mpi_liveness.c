/* The liveness connections. MPI (Open MPI 4.1 without ULFM) never tells
 * that a rank died: under mpiexec --enable-recovery a receive from the dead
 * rank simply never completes. So each worker rank keeps one TCP connection
 * to the root for the pool's life; the kernel closes it when the rank dies,
 * and the root's loop sees the end (mpi_transport.c); a worker sees the
 * root's death the same way (mpi_serve.c).
 *
 * The root listens only while the ranks meet, on loopback when every rank
 * is on its host. A connection counts only once it has sent the pool's
 * secret (16 random bytes the root sent every rank over MPI) and a rank
 * number not yet taken; anything else is dropped.
 * SPDX-License-Identifier: MIT */
#include "mpi_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HELLO_LEN (CF__MPI_SECRET_LEN + 4) /* secret, then the rank (u32) */
#define MAX_UNPROVEN 64                    /* connections that have not sent the secret yet */

/* fd itself when above 2, else a close-on-exec copy above 2 (fd closed): a
 * program whose standard descriptors are closed must not find ours there. */
static int above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int err = errno;
    close(fd);
    errno = err;
    return copy;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cf__live_listen(bool local, uint16_t *port, char *why, size_t cap)
{
    int fd = above_stdio(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd < 0) {
        snprintf(why, cap, "cannot make the root's liveness socket: socket: %s", strerror(errno));
        return -1;
    }
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(local ? INADDR_LOOPBACK : INADDR_ANY);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        snprintf(why, cap, "cannot listen for the worker ranks: %s", strerror(errno));
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Constant time, so the secret cannot be guessed a byte at a time. */
static bool same_secret(const unsigned char *a, const unsigned char *b)
{
    unsigned char d = 0;
    for (size_t i = 0; i < CF__MPI_SECRET_LEN; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

typedef struct unproven {
    int fd;
    size_t got;
    unsigned char hello[HELLO_LEN];
} unproven;

/* A SETUP message from a worker rank: it cannot connect; why it says. */
static bool setup_failed(MPI_Comm comm, char *why, size_t cap)
{
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, CF__MPI_TAG_SETUP, comm, &flag, &st) != MPI_SUCCESS || !flag)
        return false;
    char text[256] = "";
    int n = 0;
    MPI_Get_count(&st, MPI_CHAR, &n);
    if (n < 0 || n >= (int)sizeof text)
        n = (int)sizeof text - 1;
    MPI_Recv(text, n, MPI_CHAR, st.MPI_SOURCE, CF__MPI_TAG_SETUP, comm, MPI_STATUS_IGNORE);
    text[n] = '\0';
    snprintf(why, cap, "rank %d cannot reach the root: %s", st.MPI_SOURCE, text);
    return true;
}

/* Read what an unproven connection sent: 1 proven (its rank in *rank), 0
 * not yet, -1 drop it. */
static int read_hello(unproven *u, const unsigned char *secret, int size, const int *fds, int *rank)
{
    ssize_t n = recv(u->fd, u->hello + u->got, HELLO_LEN - u->got, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    u->got += (size_t)n;
    if (u->got < HELLO_LEN)
        return 0;
    uint32_t r;
    memcpy(&r, u->hello + CF__MPI_SECRET_LEN, 4);
    if (!same_secret(u->hello, secret) || r >= (uint32_t)size || fds[r] != -1)
        return -1;
    *rank = (int)r;
    return 1;
}

/* Read what the unproven connections with revents sent: a worker whose
 * hello is complete and right takes its place in fds; a wrong one is
 * dropped. Returns how many workers arrived. */
static int take_hellos(unproven *u, int *nu, const struct pollfd *p, const unsigned char *secret,
                       int size, int root, int *fds)
{
    int arrived = 0;
    for (int i = *nu - 1; i >= 0; i--) {
        if (!p[i].revents)
            continue;
        int rank = -1, got = read_hello(&u[i], secret, size, fds, &rank);
        if (got == 0)
            continue;
        if (got > 0 && rank != root) {
            fds[rank] = u[i].fd;
            arrived++;
        } else {
            close(u[i].fd); /* not one of ours */
        }
        u[i] = u[--*nu];
    }
    return arrived;
}

int cf__live_accept(int listener, const unsigned char *secret, MPI_Comm comm, int root, int *fds,
                    double deadline_s, char *why, size_t cap)
{
    int size = 0;
    MPI_Comm_size(comm, &size);
    int missing = size - 1;
    unproven u[MAX_UNPROVEN];
    int nu = 0;
    double end = now_s() + deadline_s;
    int rc = 0;
    while (missing > 0) {
        if (setup_failed(comm, why, cap)) {
            rc = CF_ESYSTEM;
            break;
        }
        if (now_s() > end) {
            snprintf(why, cap,
                     "%d worker rank(s) did not connect to the root's liveness port "
                     "within %.0f s",
                     missing, deadline_s);
            rc = CF_ESYSTEM;
            break;
        }
        struct pollfd p[MAX_UNPROVEN + 1];
        p[0] = (struct pollfd){ .fd = listener, .events = POLLIN };
        for (int i = 0; i < nu; i++)
            p[i + 1] = (struct pollfd){ .fd = u[i].fd, .events = POLLIN };
        if (poll(p, (nfds_t)nu + 1, 10) < 0 && errno != EINTR) {
            snprintf(why, cap, "poll: %s", strerror(errno));
            rc = CF_ESYSTEM;
            break;
        }
        missing -= take_hellos(u, &nu, p + 1, secret, size, root, fds);
        if (p[0].revents & POLLIN) {
            int fd = above_stdio(accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK));
            if (fd >= 0 && nu == MAX_UNPROVEN) { /* a flood: an unproven one makes room */
                close(u[0].fd);
                u[0] = u[--nu];
            }
            if (fd >= 0)
                u[nu++] = (unproven){ .fd = fd };
        }
    }
    for (int i = 0; i < nu; i++)
        close(u[i].fd);
    close(listener);
    if (rc != 0)
        for (int i = 0; i < size; i++)
            if (fds[i] >= 0) {
                close(fds[i]);
                fds[i] = -1;
            }
    return rc;
}

int cf__live_connect(const char *host, uint16_t port, const unsigned char *secret, int rank,
                     char *why, size_t cap)
{
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
    struct addrinfo *list = NULL;
    int g = getaddrinfo(host, service, &hints, &list);
    if (g != 0) {
        snprintf(why, cap, "cannot resolve the root's host %s: %s", host, gai_strerror(g));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *a = list; a && fd < 0; a = a->ai_next) {
        fd = above_stdio(socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(list);
    if (fd < 0) {
        snprintf(why, cap, "cannot connect to the root's liveness port %s:%u: %s", host,
                 (unsigned)port, strerror(err));
        return -1;
    }
    unsigned char hello[HELLO_LEN];
    memcpy(hello, secret, CF__MPI_SECRET_LEN);
    uint32_t r = (uint32_t)rank;
    memcpy(hello + CF__MPI_SECRET_LEN, &r, 4);
    size_t off = 0;
    while (off < sizeof hello) {
        ssize_t n = send(fd, hello + off, sizeof hello - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, cap, "cannot write to the root's liveness port: %s", strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    return fd;
}
