/* The root of an MPI pool: the core's transport (remote.h) over MPI ranks.
 *
 * A worker record is one rank of the pool's communicator; ranks never
 * restart, so once every rank has served, start says CF_ENOTSUP ("no more
 * workers, ever") and the pool shrinks instead. Frames go out as MPI_Isend
 * of what the core queued (one send in flight per rank, pieces of at most
 * CF__MPI_MAX_PIECE bytes), and come in through matched probes from any
 * rank, received straight into the core's read buffer when they fit.
 *
 * MPI gives the loop no descriptor. While anything is outstanding (a send,
 * a task in flight, a rank starting or stopping) the loop polls MPI: in a
 * uv_idle on every iteration for HOT_NS after the last event (a stream of
 * short tasks, a round trip), then from a 1 ms timer (long tasks: the next
 * one is already queued at the rank, so a late reply costs nothing); with
 * nothing outstanding it does not poll MPI at all. While ranks answer
 * within QUICK_GAP_NS (the mean time from our last word to a rank's
 * answer), the hot spell lasts twice that mean longer: an idle rank that
 * backed off to sleeping answers late once, and the reply must not then
 * wait for the timer, or both sides would settle at their slow pace. Only
 * this thread calls MPI while the pool exists.
 *
 * A rank's death is learnt from its liveness connection (mpi_liveness.c):
 * its end, with no BYE message from the rank within GRACE_NS (a BYE and the
 * connection's end race each other on two channels), is a death. The same
 * connection carries a rank's word that it sleeps (we ring it when we send
 * it something) and that it replied after a long task (we poll at once);
 * see mpi_serve.c.
 * SPDX-License-Identifier: MIT */
#include "mpi_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HOT_NS 300000ull               /* poll on every loop iteration this long after an event */
#define QUICK_GAP_NS 1000000ull        /* ranks answering faster than this keep the loop hot */
#define GRACE_NS 250000000ull          /* after a liveness connection ended, wait this for a BYE */
#define MESSAGES_PER_POLL 256          /* then let the loop run */
#define KEEP_BUF ((size_t)1024 * 1024) /* larger send buffers are freed once sent */

typedef enum rank_state {
    R_FREE,      /* serving, never given work: waits for INIT or EXIT */
    R_ACTIVE,    /* a worker record's */
    R_ABANDONED, /* told to go, its record's exit reported or due: waiting for its BYE */
    R_DONE,      /* stopped serving (its BYE came) */
    R_DEAD,      /* its liveness connection ended without a BYE */
} rank_state;

typedef struct mpi_pool mpi_pool;

typedef struct mpi_rank {
    mpi_pool *pool;
    int rank;
    rank_state state;
    cf__rworker *w;   /* while a worker record has it */
    bool exit_due;    /* abandoned: report its record's exit at the next poll */
    bool exit_queued; /* an EXIT frame was queued for it */
    bool exit_static; /* ... and, out of memory, must go out on its own */
    bool bye;
    int bye_status;
    cf__buf out;    /* what the send in flight is sending from */
    size_t out_off; /* bytes of out sent */
    size_t piece;   /* bytes of the send in flight (0: the static EXIT frame) */
    bool sending;
    int live_fd;
    uv_poll_t live;
    bool live_watched, live_eof;
    uint64_t eof_at;
    uint64_t last_word;                     /* when we last sent to it or heard from it */
    uint32_t sent_msgs;                     /* DATA messages sent to it */
    bool asleep;                            /* it said it sleeps: ring it with the next message */
    unsigned char live_in[CF__LIVE_RECORD]; /* a record arriving */
    size_t live_len;
    const cf__mpi_ident *id;
} mpi_rank;

struct mpi_pool {
    cf__mpi_root m;
    mpi_rank *ranks;
    MPI_Request *reqs; /* per rank: its send in flight, else MPI_REQUEST_NULL */
    int *done;         /* MPI_Testsome's indices */
    int nsending;
    bool loop_ready;
    uv_idle_t idle;
    uv_timer_t timer;
    bool idle_on, timer_on;
    uint64_t last_event;
    unsigned char *stage; /* a message larger than the room the core offered */
    size_t stage_cap;
    uint64_t gap_ns; /* mean time a rank takes to answer (see the top) */
    bool any_dead;
};

typedef struct mpi_worker {
    mpi_rank *rank;
} mpi_worker;

/* {u32 length 9, u8 EXIT, u64 id 0}, as wire.h lays a frame out (native
 * byte order), for when the core's buffer cannot take one. */
/* clang-format off: the bytes as the frame lays them out */
static const unsigned char exit_frame_bytes[CF__WIRE_HEAD] = {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    0,
    0,
    0,
    9,
#else
    9,
    0,
    0,
    0,
#endif
    CF__MSG_EXIT,
};
/* clang-format on */

static const unsigned char *exit_frame(void)
{
    return exit_frame_bytes;
}

static mpi_pool *pool_of(cf__rworker *w)
{
    return cf__remote_transport(w->pool);
}

static mpi_rank *rank_of(cf__rworker *w)
{
    return ((mpi_worker *)cf__rworker_data(w))->rank;
}

static void schedule(mpi_pool *t);

/* ------------------------------------------------------------------------ */
/* Reporting a rank's end to the core                                        */
/* ------------------------------------------------------------------------ */

static void describe(const mpi_rank *k, char *buf, size_t cap)
{
    snprintf(buf, cap, "rank %d (pid %lld on %.64s)", k->rank, (long long)k->id->pid, k->id->host);
}

/* The record's worker ended: tell the core (which then calls close). */
static void report_exit(mpi_rank *k, int exit_status, const char *fmt, const char *detail)
{
    cf__rworker *w = k->w;
    if (!w)
        return;
    k->exit_due = false;
    char who[128];
    describe(k, who, sizeof who);
    cf__worker_exit e = { .signal = 0, .exit_status = exit_status };
    snprintf(e.why, sizeof e.why, fmt, who, detail);
    cf__rworker_exited(w, &e);
}

static void rank_died(mpi_pool *t, mpi_rank *k)
{
    rank_state was = k->state;
    k->state = R_DEAD;
    t->any_dead = true;
    if (was == R_ACTIVE || k->exit_due)
        report_exit(k, -1, "worker died: %s is gone (its connection to the root closed%s)", "");
}

static void got_bye(mpi_rank *k, int status)
{
    /* Its answer, after everything else we sent it (MPI keeps the order):
     * the rank drops our DATA until this comes. Empty, so it goes at once. */
    MPI_Send(NULL, 0, MPI_BYTE, k->rank, CF__MPI_TAG_FIN, k->pool->m.comm);
    k->bye = true;
    k->bye_status = status;
    rank_state was = k->state;
    k->state = R_DONE;
    if (was != R_ACTIVE && !k->exit_due)
        return;
    if (status == 0)
        report_exit(k, 0, "worker %s stopped serving%s", "");
    else {
        char detail[48];
        snprintf(detail, sizeof detail, " with status %d", status);
        report_exit(k, status, "worker died: %s stopped serving%s", detail);
    }
}

/* Give up on a rank the core still has: it is told to stop once its task
 * returns, and its record's exit is reported at the next poll. */
static void abandon(mpi_pool *t, mpi_rank *k);

/* ------------------------------------------------------------------------ */
/* Sending                                                                   */
/* ------------------------------------------------------------------------ */

static void ring(mpi_rank *k)
{
    static const unsigned char bell = CF__LIVE_RING;
    k->asleep = false;
    if (k->live_fd >= 0) /* a full socket means it has rings to read already */
        (void)!send(k->live_fd, &bell, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* A DATA message to k was posted. */
static void posted(mpi_rank *k)
{
    k->sent_msgs++;
    k->last_word = uv_hrtime();
    if (k->asleep)
        ring(k);
}

static void pump(mpi_pool *t, mpi_rank *k)
{
    if (k->sending || k->state == R_DEAD || k->state == R_DONE)
        return;
    cf__rworker *w = k->w;
    if (k->out_off >= k->out.len) {
        k->out.len = 0;
        k->out_off = 0;
        if (k->out.cap > KEEP_BUF)
            cf__buf_free(&k->out);
        if (w && w->wbuf.len > 0) { /* take the core's frames; it fills the other buffer */
            cf__buf tmp = k->out;
            k->out = w->wbuf;
            w->wbuf = tmp;
        } else if (k->exit_static) {
            k->exit_static = false;
            if (MPI_Isend(exit_frame(), CF__WIRE_HEAD, MPI_BYTE, k->rank, CF__MPI_TAG_DATA,
                          t->m.comm, &t->reqs[k->rank]) == MPI_SUCCESS) {
                k->sending = true;
                k->piece = 0;
                t->nsending++;
                posted(k);
            }
            return;
        } else {
            return;
        }
    }
    size_t left = k->out.len - k->out_off;
    size_t piece = left < CF__MPI_MAX_PIECE ? left : CF__MPI_MAX_PIECE;
    if (MPI_Isend(k->out.data + k->out_off, (int)piece, MPI_BYTE, k->rank, CF__MPI_TAG_DATA,
                  t->m.comm, &t->reqs[k->rank]) != MPI_SUCCESS) {
        k->out.len = k->out_off = 0;
        if (k->state == R_ACTIVE)
            abandon(t, k);
        return;
    }
    k->sending = true;
    k->piece = piece;
    t->nsending++;
    posted(k);
    if (w)
        w->in_transit = left;
}

static void send_done(mpi_pool *t, mpi_rank *k)
{
    k->sending = false;
    t->nsending--;
    k->out_off += k->piece;
    if (k->w)
        k->w->in_transit = k->out.len - k->out_off;
    pump(t, k);
}

static void queue_exit(mpi_pool *t, mpi_rank *k)
{
    if (k->exit_queued)
        return;
    k->exit_queued = true;
    if (!k->w || cf__wire_put_exit(&k->w->wbuf) != 0)
        k->exit_static = true;
    pump(t, k);
}

static void abandon(mpi_pool *t, mpi_rank *k)
{
    if (k->state != R_ACTIVE)
        return;
    queue_exit(t, k);
    k->state = R_ABANDONED;
    k->exit_due = true;
    t->last_event = uv_hrtime();
    schedule(t);
}

/* ------------------------------------------------------------------------ */
/* Receiving                                                                 */
/* ------------------------------------------------------------------------ */

static bool stage_room(mpi_pool *t, size_t n)
{
    if (t->stage_cap >= n)
        return true;
    unsigned char *p = cf__realloc(t->stage, n);
    if (!p)
        return false;
    t->stage = p;
    t->stage_cap = n;
    return true;
}

/* Receive a message nobody wants. */
static void drop(mpi_pool *t, MPI_Message *msg, int count)
{
    if (count > 0 && stage_room(t, (size_t)count))
        MPI_Mrecv(t->stage, count, MPI_BYTE, msg, MPI_STATUS_IGNORE);
    else /* out of memory: take it in small pieces is impossible; truncate */
        MPI_Mrecv(NULL, 0, MPI_BYTE, msg, MPI_STATUS_IGNORE);
}

static void deliver(mpi_pool *t, mpi_rank *k, MPI_Message *msg, int count)
{
    cf__rworker *w = k->w;
    unsigned char *room;
    size_t n;
    if (w->lost || !cf__rworker_read_room(w, &room, &n)) {
        drop(t, msg, count);
        return;
    }
    if ((size_t)count <= n) {
        if (MPI_Mrecv(room, count, MPI_BYTE, msg, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            abandon(t, k);
        else
            cf__rworker_received(w, (size_t)count);
        return;
    }
    if (!stage_room(t, (size_t)count)) {
        drop(t, msg, count);
        abandon(t, k); /* bytes of its stream are lost: so is the worker */
        return;
    }
    if (MPI_Mrecv(t->stage, count, MPI_BYTE, msg, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        abandon(t, k);
        return;
    }
    size_t off = 0;
    while (off < (size_t)count && !w->lost && cf__rworker_read_room(w, &room, &n)) {
        size_t m = (size_t)count - off < n ? (size_t)count - off : n;
        memcpy(room, t->stage + off, m);
        off += m;
        cf__rworker_received(w, m);
    }
}

static void handle_message(mpi_pool *t, MPI_Message *msg, const MPI_Status *st)
{
    int count = 0;
    MPI_Get_count(st, MPI_BYTE, &count);
    int src = st->MPI_SOURCE;
    mpi_rank *k = src >= 0 && src < t->m.size && src != t->m.self ? &t->ranks[src] : NULL;
    if (k && st->MPI_TAG == CF__MPI_TAG_BYE && count == (int)sizeof(int32_t)) {
        int32_t status = 0;
        MPI_Mrecv(&status, count, MPI_BYTE, msg, MPI_STATUS_IGNORE);
        got_bye(k, status);
        return;
    }
    if (k && st->MPI_TAG == CF__MPI_TAG_DATA && k->state == R_ACTIVE && k->w && count > 0) {
        uint64_t now = uv_hrtime();
        t->gap_ns = t->gap_ns - t->gap_ns / 8 + (now - k->last_word) / 8;
        k->last_word = now;
        deliver(t, k, msg, count);
        return;
    }
    drop(t, msg, count); /* a lost or abandoned worker's words, or not ours */
}

/* ------------------------------------------------------------------------ */
/* Polling                                                                   */
/* ------------------------------------------------------------------------ */

static bool rank_busy(const mpi_rank *k)
{
    if (k->sending || k->exit_due)
        return true;
    if (k->live_eof && k->state != R_DONE && k->state != R_DEAD)
        return true;
    if (k->state == R_ABANDONED)
        return true;
    const cf__rworker *w = k->w;
    return k->state == R_ACTIVE && w &&
           (w->inflight.head || w->state == CF__W_STARTING || w->state == CF__W_RETIRING);
}

/* The sends that completed, each rank's next one posted: true if any. */
static bool complete_sends(mpi_pool *t)
{
    if (t->nsending == 0)
        return false;
    int outcount = 0;
    if (MPI_Testsome(t->m.size, t->reqs, &outcount, t->done, MPI_STATUSES_IGNORE) != MPI_SUCCESS ||
        outcount == MPI_UNDEFINED)
        return false;
    for (int i = 0; i < outcount; i++)
        send_done(t, &t->ranks[t->done[i]]);
    return outcount > 0;
}

static void poll_mpi(mpi_pool *t)
{
    bool event = complete_sends(t);
    for (int i = 0; i < MESSAGES_PER_POLL; i++) {
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        if (MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, t->m.comm, &flag, &msg, &st) != MPI_SUCCESS ||
            !flag)
            break;
        handle_message(t, &msg, &st);
        event = true;
    }
    uint64_t now = uv_hrtime();
    for (int i = 0; i < t->m.size; i++) {
        mpi_rank *k = &t->ranks[i];
        if (k->exit_due && k->w) {
            report_exit(k, -1,
                        "worker %s was terminated%s: an MPI rank cannot be signalled, "
                        "so it stops serving once its task returns",
                        "");
            event = true;
        }
        if (k->live_eof && k->state != R_DONE && k->state != R_DEAD && now - k->eof_at > GRACE_NS) {
            rank_died(t, k);
            event = true;
        }
    }
    if (event)
        t->last_event = uv_hrtime();
    schedule(t);
}

static void on_idle(uv_idle_t *h)
{
    poll_mpi(h->data);
}

static void on_timer(uv_timer_t *h)
{
    poll_mpi(h->data);
}

/* Poll on every iteration (hot), from the timer (cold), or not at all. */
static void schedule(mpi_pool *t)
{
    if (!t->loop_ready)
        return;
    bool busy = false;
    for (int i = 0; i < t->m.size && !busy; i++)
        busy = rank_busy(&t->ranks[i]);
    /* Hot for a while after any event, busy or not: what the event changed
     * (a worker now ready) is acted on in this iteration's uv_check, which
     * a blocking poll for I/O would hold up. */
    uint64_t spell = HOT_NS + (t->gap_ns < QUICK_GAP_NS ? 2 * t->gap_ns : 0);
    bool hot = uv_hrtime() - t->last_event < spell;
    bool cold = busy && !hot;
    if (hot != t->idle_on) {
        t->idle_on = hot;
        if (hot)
            uv_idle_start(&t->idle, on_idle);
        else
            uv_idle_stop(&t->idle);
    }
    if (cold != t->timer_on) {
        t->timer_on = cold;
        if (cold)
            uv_timer_start(&t->timer, on_timer, 1, 1);
        else
            uv_timer_stop(&t->timer);
    }
}

/* Read what k wrote on its liveness connection and act on it: false once
 * the connection has ended (or failed). */
static bool read_live(mpi_pool *t, mpi_rank *k)
{
    unsigned char buf[4 * CF__LIVE_RECORD];
    for (;;) {
        ssize_t n = recv(k->live_fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return false;
        if (n < 0)
            return true;
        for (ssize_t i = 0; i < n; i++) {
            k->live_in[k->live_len++] = buf[i];
            if (k->live_len < CF__LIVE_RECORD)
                continue;
            k->live_len = 0;
            uint32_t received;
            memcpy(&received, k->live_in + 1, 4);
            if (k->live_in[0] == CF__LIVE_SLEEP) {
                if (received != k->sent_msgs)
                    ring(k); /* we sent more than it had: it must not sleep */
                else
                    k->asleep = true;
            } else if (k->live_in[0] == CF__LIVE_WAKE_ROOT) {
                t->last_event = uv_hrtime(); /* a reply is there: poll now */
            }
        }
    }
}

static void on_live(uv_poll_t *h, int status, int events)
{
    (void)events;
    mpi_rank *k = h->data;
    mpi_pool *t = k->pool;
    if (status == 0 && read_live(t, k)) {
        if (uv_hrtime() - t->last_event < HOT_NS)
            poll_mpi(t); /* woken: take the reply in this iteration */
        return;
    }
    uv_poll_stop(h);
    k->live_eof = true;
    k->eof_at = uv_hrtime();
    t->last_event = k->eof_at;
    schedule(t);
}

/* The loop's handles, made on the manager thread at the first start. */
static int setup_loop(mpi_pool *t, uv_loop_t *loop, char *why, size_t cap)
{
    uv_idle_init(loop, &t->idle);
    t->idle.data = t;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    t->loop_ready = true;
    for (int i = 0; i < t->m.size; i++) {
        mpi_rank *k = &t->ranks[i];
        if (k->live_fd < 0)
            continue;
        int rc = uv_poll_init(loop, &k->live, k->live_fd);
        if (rc == 0) {
            k->live_watched = true;
            k->live.data = k;
            rc = uv_poll_start(&k->live, UV_READABLE | UV_DISCONNECT, on_live);
        }
        if (rc != 0) {
            snprintf(why, cap, "cannot watch the liveness connection of rank %d: %s", i,
                     uv_strerror(rc));
            return CF_ESYSTEM;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The ops                                                                   */
/* ------------------------------------------------------------------------ */

static int mpi_start(cf__rworker *w, char *why, size_t cap)
{
    mpi_pool *t = pool_of(w);
    if (!t->loop_ready) {
        int rc = setup_loop(t, cf__remote_loop(w->pool), why, cap);
        if (rc != 0)
            return rc;
    }
    int gone = 0;
    for (int i = 0; i < t->m.size; i++) {
        mpi_rank *k = &t->ranks[i];
        if (i == t->m.self)
            continue;
        if (k->state != R_FREE || k->live_eof) {
            gone++;
            continue;
        }
        k->state = R_ACTIVE;
        k->w = w;
        ((mpi_worker *)cf__rworker_data(w))->rank = k;
        w->pid = (long)k->id->pid;
        return 0;
    }
    snprintf(why, cap, "no worker rank is left: all %d have served, died or stopped", gone);
    return CF_ENOTSUP;
}

static void mpi_flush(cf__rworker *w)
{
    mpi_pool *t = pool_of(w);
    pump(t, rank_of(w));
    t->last_event = uv_hrtime();
    schedule(t);
}

static void mpi_retire(cf__rworker *w)
{
    mpi_pool *t = pool_of(w);
    queue_exit(t, rank_of(w));
    schedule(t);
}

static void mpi_kill(cf__rworker *w, int signum)
{
    (void)signum; /* the nearest thing: it stops once its task returns */
    abandon(pool_of(w), rank_of(w));
}

static void mpi_close(cf__rworker *w)
{
    mpi_rank *k = rank_of(w);
    /* Its EXIT may still wait in the record's buffer (queued behind a send
     * in flight), which goes with the record: the static one takes its
     * place, and what was queued before it is not sent at all. */
    if (k->exit_queued && w->wbuf.len > 0)
        k->exit_static = true;
    k->w = NULL;
}

/* Wait for the BYE of every rank still serving (told to stop now if it was
 * never given work), receiving and dropping what else they send; a rank
 * whose liveness connection ends is dead. Blocks for as long as a running
 * task of an abandoned rank takes. */
static void wait_for_byes(mpi_pool *t)
{
    for (int i = 0; i < t->m.size; i++) {
        mpi_rank *k = &t->ranks[i];
        if (i != t->m.self && k->state == R_FREE && !k->live_eof) {
            k->state = R_ABANDONED;
            MPI_Send(exit_frame(), CF__WIRE_HEAD, MPI_BYTE, i, CF__MPI_TAG_DATA, t->m.comm);
            ring(k); /* it is probably asleep */
        }
    }
    long sleep_us = 10;
    for (;;) {
        bool waiting = false;
        for (int i = 0; i < t->m.size; i++) {
            mpi_rank *k = &t->ranks[i];
            if (i == t->m.self || k->state == R_DONE || k->state == R_DEAD)
                continue;
            if (k->live_fd < 0 || k->live_eof || !read_live(t, k)) {
                if (!k->live_eof) {
                    k->live_eof = true;
                    k->eof_at = uv_hrtime();
                }
                if (uv_hrtime() - k->eof_at > GRACE_NS) {
                    rank_died(t, k);
                    continue;
                }
            }
            waiting = true;
        }
        if (!waiting)
            return;
        if (complete_sends(t)) { /* an EXIT may wait behind a send */
            sleep_us = 10;
            continue;
        }
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        if (MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, t->m.comm, &flag, &msg, &st) == MPI_SUCCESS &&
            flag) {
            handle_message(t, &msg, &st);
            sleep_us = 10;
            continue;
        }
        struct timespec ts = { .tv_sec = 0, .tv_nsec = sleep_us * 1000 };
        nanosleep(&ts, NULL);
        if (sleep_us < 1000)
            sleep_us *= 2;
    }
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void mpi_finish(cf__remote *r)
{
    mpi_pool *t = cf__remote_transport(r);
    wait_for_byes(t);
    for (int i = 0; i < t->m.size; i++) {
        mpi_rank *k = &t->ranks[i];
        if (k->sending) { /* to a dead rank: it never completes */
            MPI_Cancel(&t->reqs[i]);
            MPI_Request_free(&t->reqs[i]);
            k->sending = false;
        }
        if (k->live_watched) {
            k->live_watched = false;
            uv_close((uv_handle_t *)&k->live, on_closed);
        }
        if (k->live_fd >= 0) {
            close(k->live_fd);
            k->live_fd = -1;
        }
    }
    if (t->loop_ready) {
        uv_close((uv_handle_t *)&t->idle, on_closed);
        uv_close((uv_handle_t *)&t->timer, on_closed);
    }
    MPI_Comm_free(&t->m.comm);
    if (t->m.inter != MPI_COMM_NULL) {
        if (t->any_dead) /* disconnect would wait for the dead */
            MPI_Comm_free(&t->m.inter);
        else
            MPI_Comm_disconnect(&t->m.inter);
    }
}

static void free_pool(mpi_pool *t)
{
    for (int i = 0; i < t->m.size; i++) {
        if (t->ranks)
            cf__buf_free(&t->ranks[i].out);
        if (t->m.live_fds[i] >= 0 && (!t->ranks || t->ranks[i].live_fd >= 0))
            close(t->m.live_fds[i]);
    }
    cf__free(t->ranks);
    cf__free(t->reqs);
    cf__free(t->done);
    cf__free(t->stage);
    cf__free((void *)t->m.idents);
    cf__free(t->m.live_fds);
    cf__free(t);
}

static void mpi_destroy(cf__remote *r)
{
    mpi_pool *t = cf__remote_transport(r);
    if (t)
        free_pool(t);
}

static const cf__transport_ops mpi_transport = {
    .name = "mpi",
    .worker_size = sizeof(mpi_worker),
    .start = mpi_start,
    .flush = mpi_flush,
    .retire = mpi_retire,
    .kill = mpi_kill,
    .close = mpi_close,
    .finish = mpi_finish,
    .destroy = mpi_destroy,
};

/* ------------------------------------------------------------------------ */

cf_executor *cf__mpi_root_new(cf__mpi_root *root, const cf_mpi_pool_opts *opts)
{
    mpi_pool *t = cf__calloc(1, sizeof *t);
    if (!t) {
        for (int i = 0; i < root->size; i++)
            if (root->live_fds[i] >= 0)
                close(root->live_fds[i]);
        cf__free((void *)root->idents);
        cf__free(root->live_fds);
        return cf__fail(CF_ENOMEM);
    }
    t->m = *root;
    int n = t->m.size;
    t->ranks = cf__calloc((size_t)n, sizeof *t->ranks);
    t->reqs = cf__calloc((size_t)n, sizeof *t->reqs);
    t->done = cf__calloc((size_t)n, sizeof *t->done);
    if (!t->ranks || !t->reqs || !t->done) {
        cf__free(t->ranks);
        t->ranks = NULL;
        free_pool(t);
        return cf__fail(CF_ENOMEM);
    }
    for (int i = 0; i < n; i++) {
        t->ranks[i] =
            (mpi_rank){ .pool = t, .rank = i, .live_fd = t->m.live_fds[i], .id = &t->m.idents[i] };
        t->reqs[i] = MPI_REQUEST_NULL;
    }
    t->ranks[t->m.self].state = R_DONE;
    cf__remote_config cfg = {
        .max_workers = n - 1,
        .max_message = opts->max_message,
        .initializer = (uintptr_t)opts->initializer,
        .initarg = opts->initarg,
    };
    return cf__remote_new(&cfg, &mpi_transport, t);
}
