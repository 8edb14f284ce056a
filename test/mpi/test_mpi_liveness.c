/* The root's liveness port lets in only the pool's own ranks: connections
 * with a wrong secret, with the root's own rank, with a rank already
 * taken, or silent ones, are dropped; the worker rank's connection is the
 * one kept. White-box (lib/mpi/mpi_liveness.c), under mpiexec -n 2.
 * SPDX-License-Identifier: MIT */
#include "mpi_internal.h"

#include "../check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static int intruder(uint16_t port, const unsigned char *secret, uint32_t rank, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    unsigned char hello[CF__MPI_SECRET_LEN + 4];
    memcpy(hello, secret, CF__MPI_SECRET_LEN);
    memcpy(hello + CF__MPI_SECRET_LEN, &rank, 4);
    if (len)
        CHECK_EQ(send(fd, hello, len, 0), (ssize_t)len);
    return fd;
}

/* The root closed it: EOF (or a reset). */
static bool dropped(int fd)
{
    char c;
    return recv(fd, &c, 1, 0) <= 0;
}

int main(int argc, char **argv)
{
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK_EQ(size, 2);
    unsigned char secret[CF__MPI_SECRET_LEN];
    for (int i = 0; i < CF__MPI_SECRET_LEN; i++)
        secret[i] = (unsigned char)(i * 37 + 11);
    char why[256] = "";
    uint16_t port = 0;
    int listener = -1;
    if (rank == 0) {
        listener = cf__live_listen(true, &port, why, sizeof why);
        CHECK(listener >= 0);
    }
    MPI_Bcast(&port, 1, MPI_UINT16_T, 0, MPI_COMM_WORLD);
    if (rank == 1) {
        int fd = cf__live_connect("127.0.0.1", port, secret, 1, why, sizeof why);
        CHECK(fd >= 0);
        MPI_Barrier(MPI_COMM_WORLD); /* the root has accepted us */
        close(fd);
        MPI_Finalize();
        return 0;
    }
    /* Before the root accepts: the intruders wait in the listen queue. */
    unsigned char wrong[CF__MPI_SECRET_LEN];
    memcpy(wrong, secret, sizeof wrong);
    wrong[5] ^= 1;
    int bad[4] = {
        intruder(port, wrong, 1, sizeof wrong + 4),   /* wrong secret */
        intruder(port, secret, 0, sizeof secret + 4), /* the root's own rank */
        intruder(port, secret, 7, sizeof secret + 4), /* no such rank */
        intruder(port, secret, 1, 3),                 /* silent after 3 bytes */
    };
    int fds[2] = { -1, -1 };
    int rc = cf__live_accept(listener, secret, MPI_COMM_WORLD, 0, fds, 30.0, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "accept: %s\n", why);
    CHECK_EQ(rc, 0);
    CHECK_EQ(fds[0], -1);
    CHECK(fds[1] >= 0);
    for (int i = 0; i < 4; i++) {
        CHECK(dropped(bad[i]));
        close(bad[i]);
    }
    /* The listener is closed: nobody else gets in. */
    int late = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(late, (struct sockaddr *)&a, sizeof a) != 0);
    close(late);
    MPI_Barrier(MPI_COMM_WORLD);
    close(fds[1]);
    printf("4 intruders dropped, the worker rank's connection kept\n");
    MPI_Finalize();
    return 0;
}
