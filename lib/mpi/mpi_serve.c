/* A worker rank: the core's serve loop (worker.c) over MPI, and how a
 * spawned rank becomes a worker before main.
 *
 * Reading: a matched probe (MPI_Improbe) for the root's next DATA message,
 * received straight into the serve loop's buffer when it fits, else into a
 * staging buffer handed out in pieces. MPI gives no descriptor to sleep on,
 * so an idle rank spins on the probe for SPIN_NS after its last message
 * (tasks streaming in never wait on a sleep), then says on its liveness
 * connection that it sleeps, with the count of messages it has received,
 * and sleeps in ppoll() on that connection for a time that doubles up to
 * MAX_SLEEP_NS: a bounded back-off. The root rings (one byte on the
 * connection) when it sends to a sleeping rank, or at once when it had sent
 * more than the rank had received, so a sleeping rank answers within a
 * wake-up, not a back-off; the root's death (the connection's end) wakes it
 * too.
 * Writing: MPI_Isend of each reply, completed before the next task runs
 * (the serve loop reuses its buffer), watching the connection meanwhile.
 * A reply after a long task also wakes the root's loop, which has stopped
 * polling MPI on every iteration by then (mpi_transport.c).
 * SPDX-License-Identifier: MIT */
#include "mpi_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SPIN_NS 100000ull /* spin on the probe this long after a message */
#define MIN_SLEEP_NS 16000ull
#define MAX_SLEEP_NS 20000000ull   /* only a lost ring waits this long */
#define WAKE_ROOT_NS 250000ull     /* replies after a task this long wake the root */
#define FIN_GRACE_NS 1000000000ull /* after the root closed our connection, FIN may still come */

typedef struct mpi_server {
    MPI_Comm comm;
    int root;
    int live_fd;
    bool root_gone;
    bool announced;       /* said it sleeps, and nothing came since */
    uint32_t received;    /* DATA messages received */
    unsigned char *stage; /* a message larger than the room the loop offered */
    size_t stage_len, stage_off, stage_cap;
    uint64_t last_message; /* when the last message came or went */
    int failed;            /* 0, or why this rank stopped serving (CF__WORKER_EXIT_*) */
} mpi_server;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One record to the root; false when it cannot go now (then we sleep for
 * a bounded time instead). */
static bool tell_root(mpi_server *s, unsigned char type, uint32_t value)
{
    unsigned char rec[CF__LIVE_RECORD] = { type };
    memcpy(rec + 1, &value, 4);
    return send(s->live_fd, rec, sizeof rec, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof rec;
}

/* Read what the root wrote (rings): false once the connection ended. */
static bool drain_rings(mpi_server *s)
{
    unsigned char buf[64];
    for (;;) {
        ssize_t n = recv(s->live_fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            s->root_gone = true;
            return false;
        }
        return true;
    }
}

/* Wait a while for the next message: spin first, then sleep on the
 * connection until rung. False once the root is gone. */
static bool wait_a_while(mpi_server *s, uint64_t *sleep_ns)
{
    if (now_ns() - s->last_message < SPIN_NS)
        return true; /* the caller probes again at once */
    if (!s->announced)
        s->announced = tell_root(s, CF__LIVE_SLEEP, s->received);
    struct timespec ts = { .tv_sec = (time_t)(*sleep_ns / 1000000000ull),
                           .tv_nsec = (long)(*sleep_ns % 1000000000ull) };
    struct pollfd p = { .fd = s->live_fd, .events = POLLIN };
    int n = ppoll(&p, 1, &ts, NULL);
    if (n > 0) {
        if (!drain_rings(s))
            return false;
        s->last_message = now_ns(); /* rung: a message is coming, spin for it */
        s->announced = false;
        *sleep_ns = MIN_SLEEP_NS;
        return true;
    }
    if (*sleep_ns < MAX_SLEEP_NS)
        *sleep_ns *= 2;
    return true;
}

static ptrdiff_t hand_out(mpi_server *s, void *buf, size_t cap)
{
    size_t n = s->stage_len - s->stage_off;
    if (n > cap)
        n = cap;
    memcpy(buf, s->stage + s->stage_off, n);
    s->stage_off += n;
    return (ptrdiff_t)n;
}

static ptrdiff_t mpi_read(void *ctx, void *buf, size_t cap)
{
    mpi_server *s = ctx;
    if (s->stage_off < s->stage_len)
        return hand_out(s, buf, cap);
    uint64_t sleep_ns = MIN_SLEEP_NS;
    for (;;) {
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        if (MPI_Improbe(s->root, CF__MPI_TAG_DATA, s->comm, &flag, &msg, &st) != MPI_SUCCESS) {
            s->failed = CF__WORKER_EXIT_IO;
            return -1;
        }
        if (!flag) {
            if (!wait_a_while(s, &sleep_ns))
                return 0;
            continue;
        }
        s->last_message = now_ns();
        s->received++;
        s->announced = false;
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        if (count <= 0) { /* nothing in it: receive and go on */
            MPI_Mrecv(NULL, 0, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
            continue;
        }
        if ((size_t)count <= cap) {
            if (MPI_Mrecv(buf, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
                s->failed = CF__WORKER_EXIT_IO;
                return -1;
            }
            return count;
        }
        if (s->stage_cap < (size_t)count) {
            unsigned char *p = cf__realloc(s->stage, (size_t)count);
            if (!p) { /* the matched message is received all the same, and lost */
                MPI_Mrecv(NULL, 0, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
                s->failed = CF__WORKER_EXIT_NOMEM;
                return -1;
            }
            s->stage = p;
            s->stage_cap = (size_t)count;
        }
        if (MPI_Mrecv(s->stage, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            s->failed = CF__WORKER_EXIT_IO;
            return -1;
        }
        s->stage_len = (size_t)count;
        s->stage_off = 0;
        return hand_out(s, buf, cap);
    }
}

/* Send and complete one message; false when the root is gone or MPI failed. */
static bool send_message(mpi_server *s, const void *buf, size_t len, int tag)
{
    MPI_Request req;
    if (MPI_Isend(buf, (int)len, MPI_BYTE, s->root, tag, s->comm, &req) != MPI_SUCCESS)
        return false;
    uint64_t sleep_ns = MIN_SLEEP_NS;
    for (;;) {
        int done = 0;
        if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return false;
        if (done)
            break;
        if (!wait_a_while(s, &sleep_ns)) {
            MPI_Cancel(&req);
            MPI_Request_free(&req);
            return false;
        }
    }
    s->last_message = now_ns();
    return true;
}

static int mpi_write(void *ctx, const void *buf, size_t len)
{
    mpi_server *s = ctx;
    bool wake = now_ns() - s->last_message > WAKE_ROOT_NS;
    const unsigned char *p = buf;
    while (len > 0) {
        size_t n = len < CF__MPI_MAX_PIECE ? len : CF__MPI_MAX_PIECE;
        if (!send_message(s, p, n, CF__MPI_TAG_DATA))
            return -1;
        p += n;
        len -= n;
    }
    if (wake)
        tell_root(s, CF__LIVE_WAKE_ROOT, 0);
    return 0;
}

/* After our BYE: receive and drop what the root sent until its FIN, its
 * last message to us (see mpi_internal.h). The root closes our liveness
 * connection once it has our BYE, after sending FIN: that end only bounds
 * how long we wait for FIN still on its way. */
static void drain_until_fin(mpi_server *s)
{
    uint64_t sleep_ns = MIN_SLEEP_NS, closed_at = 0;
    for (;;) {
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        if (MPI_Improbe(s->root, MPI_ANY_TAG, s->comm, &flag, &msg, &st) != MPI_SUCCESS)
            return;
        if (!flag) {
            if (closed_at == 0 && !wait_a_while(s, &sleep_ns))
                closed_at = now_ns();
            if (closed_at != 0) {
                if (now_ns() - closed_at > FIN_GRACE_NS)
                    return;
                struct timespec ts = { .tv_nsec = 10000 };
                nanosleep(&ts, NULL);
            }
            continue;
        }
        s->last_message = now_ns();
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        if (count > 0 && (size_t)count > s->stage_cap) {
            unsigned char *p = cf__realloc(s->stage, (size_t)count);
            if (!p)
                return;
            s->stage = p;
            s->stage_cap = (size_t)count;
        }
        if (MPI_Mrecv(count > 0 ? s->stage : NULL, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE) !=
                MPI_SUCCESS ||
            st.MPI_TAG == CF__MPI_TAG_FIN)
            return;
    }
}

int cf__mpi_serve(MPI_Comm comm, int root, int live_fd)
{
    mpi_server s = { .comm = comm, .root = root, .live_fd = live_fd, .last_message = now_ns() };
    cf__serve_io io = { .ctx = &s, .read = mpi_read, .write = mpi_write };
    int status = cf__serve(&io);
    if (status == 0 && s.failed) /* not the root's EXIT: this rank gave up */
        status = s.failed;
    bool said_bye = false;
    if (!s.root_gone && drain_rings(&s)) {
        int32_t st = status;
        said_bye = send_message(&s, &st, sizeof st, CF__MPI_TAG_BYE);
        if (said_bye)
            drain_until_fin(&s); /* the pool has ended for us either way */
    }
    cf__free(s.stage);
    close(live_fd);
    return said_bye ? status : CF_EBROKEN;
}

/* ------------------------------------------------------------------------ */
/* Spawned ranks                                                             */
/* ------------------------------------------------------------------------ */

/* The program re-run by MPI_Comm_spawn with argv[1] CF__MPI_WORKER_FLAG:
 * worker_entry.c calls this instead of main, after the program's static
 * initialisers. Joins the parent, serves, and ends. */
static int spawned_worker(int argc, char **argv, char **envp)
{
    (void)envp;
    int provided = MPI_THREAD_SINGLE;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return CF__WORKER_EXIT_SETUP;
    MPI_Comm parent = MPI_COMM_NULL, merged = MPI_COMM_NULL;
    MPI_Comm_get_parent(&parent);
    if (parent == MPI_COMM_NULL) {
        fprintf(stderr, "%s: %s is for ranks an MPI pool spawns, and this one was not\n", argv[0],
                CF__MPI_WORKER_FLAG);
        MPI_Finalize();
        return CF__WORKER_EXIT_SETUP;
    }
    int status = CF__WORKER_EXIT_SETUP;
    if (MPI_Intercomm_merge(parent, 1, &merged) == MPI_SUCCESS) {
        MPI_Comm_set_errhandler(merged, MPI_ERRORS_RETURN);
        cf__mpi_meet(merged, parent, 0, NULL, &status);
        MPI_Comm_free(&merged);
    }
    if (status == CF_EBROKEN) /* the root died: do not wait for it */
        MPI_Comm_free(&parent);
    else
        MPI_Comm_disconnect(&parent);
    MPI_Finalize();
    return status < 0 ? CF__WORKER_EXIT_IO : status;
}

__attribute__((constructor)) static void register_spawned_worker(void)
{
    cf__worker_entry_register(CF__MPI_WORKER_FLAG, spawned_worker);
}
