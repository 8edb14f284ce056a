/* Process pool, parent side.
 *
 * A manager thread owns a uv_loop. Submitters queue futures under `lock` and
 * wake it with uv_async_send. Once per loop iteration (a uv_check handle) the
 * manager hands queued work to the workers: idle workers first, then a few
 * tasks ahead per worker (more when tasks are short, so small tasks stream
 * without a round trip each; few when they are long, so the rest stays
 * cancellable), all frames for one worker in one write. Workers are started
 * lazily with uv_spawn (worker.c), one socket pair each; replies are read with
 * uv_read_start and complete the futures in order.
 *
 * A worker's death is learnt from its exit_cb: the task it was running (the
 * oldest unanswered one) fails with CF_EBROKEN, the tasks queued behind it go
 * back to the front of the queue, and the worker is replaced when there is
 * work. task_timeout is a uv_timer per worker, restarted whenever a new task
 * reaches the head. A garbled reply fails the head task and kills the worker.
 *
 * Lists of futures go through f->queue_next: a future is in exactly one of
 * pending (shared, under lock), retry (manager: already running, to be sent
 * again) or one worker's in-flight list.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include "fnref.h"
#include "wire.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Tasks a worker may hold (running + queued ahead), by mean task run time. */
static unsigned window_for(uint64_t avg_ns, bool known)
{
    if (!known)
        return 2;
    if (avg_ns < 20000)
        return 64;
    if (avg_ns < 200000)
        return 8;
    if (avg_ns < 2000000)
        return 3;
    return 2;
}
#define BYTES_AHEAD ((size_t)16 * 1024 * 1024) /* unsent bytes per worker before we hold back */
#define FNCACHE_SLOTS 64u
#define KEEP_BUF ((size_t)1024 * 1024) /* larger I/O buffers are freed once empty */

typedef struct fqueue {
    cf_future *head, *tail;
    size_t n;
} fqueue;

static void fq_push(fqueue *q, cf_future *f)
{
    f->queue_next = NULL;
    if (q->tail)
        q->tail->queue_next = f;
    else
        q->head = f;
    q->tail = f;
    q->n++;
}

static cf_future *fq_pop(fqueue *q)
{
    cf_future *f = q->head;
    if (f) {
        q->head = f->queue_next;
        if (!q->head)
            q->tail = NULL;
        f->queue_next = NULL;
        q->n--;
    }
    return f;
}

/* Put all of `front` before q's items (front is left empty). */
static void fq_prepend(fqueue *q, fqueue *front)
{
    if (!front->head)
        return;
    front->tail->queue_next = q->head;
    if (!q->tail)
        q->tail = front->tail;
    q->head = front->head;
    q->n += front->n;
    *front = (fqueue){ 0 };
}

typedef enum wstate {
    W_STARTING, /* INIT sent, waiting for READY */
    W_READY,
    W_RETIRING, /* told to exit (its pipe closed), waiting for exit_cb */
    W_EXITED,   /* exit_cb seen; handles closing */
} wstate;

typedef struct pool pool;

typedef struct worker {
    pool *pool;
    struct worker *next;
    uv_process_t proc;
    uv_pipe_t pipe;
    uv_timer_t timer;
    int open_handles;
    wstate state;
    bool pipe_closed;
    bool lost; /* its tasks were dealt with (garbled, timed out): only waiting to exit */
    fqueue inflight; /* sent, unanswered; the head is running */
    uint64_t sent;   /* tasks sent over its life */
    unsigned char *rbuf; /* bytes read, not yet handled */
    size_t rlen, rcap;
    cf__buf wbuf;    /* frames waiting to be written */
    cf__buf writing; /* frames a uv_write is sending */
    bool write_busy;
    uv_write_t wreq;
} worker;

typedef struct fncache_entry {
    cf_fn fn;
    unsigned char *ref;
    size_t len;
} fncache_entry;

struct pool {
    cf_executor base;
    /* Fixed at creation. */
    int max_workers;
    int max_tasks;
    double task_timeout;
    uint64_t timeout_ms;
    size_t max_message, frame_limit;
    unsigned char *init_ref;
    size_t init_ref_len;
    uint64_t initarg;
    char *exepath;

    /* Shared, under lock. broken and broken_message are written by the
     * manager only (pool_break), so the manager reads them without the lock. */
    uv_mutex_t lock;
    uv_cond_t cond;
    fqueue pending;
    bool shutdown;
    bool broken;
    char *broken_message;
    int signal_req;
    uint64_t signal_gen_req, signal_gen_done;
    bool manager_alive; /* the async handle may be sent to */

    /* Manager thread only. */
    uv_loop_t loop;
    uv_async_t async;
    uv_check_t check;
    uv_thread_t thread;
    worker *workers;
    int nworkers;  /* processes not yet exited (any state) */
    int nstarting; /* of which W_STARTING */
    fqueue retry;
    uint64_t next_id;
    uint64_t avg_ns;
    bool avg_known;
    bool terminating;
    bool finishing;
    bool orphaned; /* cf_executor_free from a done-callback: we free the pool */
    fncache_entry fncache[FNCACHE_SLOTS];

    cf__event done; /* the manager thread has ended */
};

static _Thread_local pool *manager_of; /* set in the manager thread */


static void worker_flush(worker *w);
static void on_timeout(uv_timer_t *t);
static void worker_lost(worker *w, int status, int code, const char *message, int sig,
                        int exit_status);
static void dispatch(pool *p);

/* ------------------------------------------------------------------------ */
/* Completing futures                                                        */
/* ------------------------------------------------------------------------ */

static void fail_future(cf_future *f, int status, int code, const char *message, int sig,
                        int exit_status)
{
    cf__call_clear(&f->call);
    cf__future_set_failure(f, status, code, message, sig, exit_status);
    cf_future_unref(f); /* the executor's reference */
}

/* Cancel a future that never left the queue (cancel_futures, or the pool
 * was terminated) and drop the executor's hold on it. */
static void cancel_queued(cf_future *f)
{
    cf_future_cancel(f);
    cf__call_clear(&f->call);
    cf_future_unref(f);
}

static void fail_all(fqueue *q, int status, int code, const char *message)
{
    cf_future *f;
    while ((f = fq_pop(q)))
        fail_future(f, status, code, message, 0, -1);
}

/* Mark the pool broken (a worker's initializer failed, or a worker could not
 * start): queued and later submits fail with CF_EBROKEN. */
static void pool_break(pool *p, const char *why)
{
    uv_mutex_lock(&p->lock);
    if (!p->broken) {
        p->broken = true;
        p->broken_message = cf__strdup(why);
    }
    uv_mutex_unlock(&p->lock);
}

/* ------------------------------------------------------------------------ */
/* Functions by reference                                                    */
/* ------------------------------------------------------------------------ */

/* The encoded reference to the code at addr, cf__malloc'd: 0, CF_EINVAL
 * (addr is in no loaded object) or CF_ENOMEM. */
static int fnref_new(uintptr_t addr, unsigned char **ref, size_t *len)
{
    unsigned char buf[CF__FNREF_MAX];
    int n = cf__fnref_encode(addr, buf, sizeof buf);
    if (n <= 0)
        return CF_EINVAL;
    *ref = cf__malloc((size_t)n);
    if (!*ref)
        return CF_ENOMEM;
    memcpy(*ref, buf, (size_t)n);
    *len = (size_t)n;
    return 0;
}

/* fn's cache entry, encoded on a miss: 0, CF_EINVAL or CF_ENOMEM. */
static int fn_lookup(pool *p, cf_fn fn, fncache_entry **out)
{
    fncache_entry *e = &p->fncache[((uintptr_t)fn >> 4) % FNCACHE_SLOTS];
    if (!e->ref || e->fn != fn) {
        unsigned char *ref;
        size_t len;
        int rc = fnref_new((uintptr_t)fn, &ref, &len);
        if (rc != 0)
            return rc;
        cf__free(e->ref);
        *e = (fncache_entry){ .fn = fn, .ref = ref, .len = len };
    }
    *out = e;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Worker lifecycle                                                          */
/* ------------------------------------------------------------------------ */

static void worker_handle_closed(uv_handle_t *h)
{
    worker *w = h->data;
    if (--w->open_handles > 0)
        return;
    cf__free(w->rbuf);
    cf__buf_free(&w->wbuf);
    cf__buf_free(&w->writing);
    cf__free(w);
}

static void worker_close_pipe(worker *w)
{
    if (w->pipe_closed)
        return;
    w->pipe_closed = true;
    uv_close((uv_handle_t *)&w->pipe, worker_handle_closed);
}

static void worker_unlink(worker *w)
{
    pool *p = w->pool;
    for (worker **pp = &p->workers; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    p->nworkers--;
}

/* Tell an idle worker to go: closing our end gives it EOF and it exits. */
static void worker_retire(worker *w)
{
    if (w->state != W_READY && w->state != W_STARTING)
        return;
    if (w->state == W_STARTING)
        w->pool->nstarting--;
    w->state = W_RETIRING;
    worker_close_pipe(w);
}

static void worker_kill(worker *w, int sig)
{
    if (w->state != W_EXITED)
        uv_process_kill(&w->proc, sig);
}

/* (Re)start the timeout of the task at the head of the worker's queue. */
static void worker_head_changed(worker *w)
{
    pool *p = w->pool;
    if (!p->timeout_ms)
        return;
    if (w->inflight.head && !w->lost && w->state != W_EXITED)
        uv_timer_start(&w->timer, on_timeout, p->timeout_ms, 0);
    else if (w->state != W_EXITED)
        uv_timer_stop(&w->timer);
}

static void describe_exit(char *buf, size_t cap, int64_t exit_status, int term_signal)
{
    if (term_signal)
        snprintf(buf, cap, "worker died: killed by signal %d (%s)", term_signal,
                 strsignal(term_signal));
    else
        snprintf(buf, cap, "worker died: exited with status %d", (int)exit_status);
}

static void process_frames(worker *w);

/* Make room in rbuf for the next read: false when out of memory. */
static bool rbuf_make_room(worker *w)
{
    size_t want = cf__wire_read_room(w->rbuf, w->rlen, w->pool->frame_limit);
    if (w->rcap >= want)
        return true;
    unsigned char *b = cf__realloc(w->rbuf, want);
    if (!b)
        return false;
    w->rbuf = b;
    w->rcap = want;
    return true;
}

/* Read what the dead worker wrote before dying: its last replies count. */
static void worker_drain(worker *w)
{
    if (w->pipe_closed || w->lost)
        return;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&w->pipe, &fd) != 0)
        return;
    for (int rounds = 0; rounds < 1024 && !w->lost; rounds++) {
        if (!rbuf_make_room(w))
            return;
        ssize_t n = read(fd, w->rbuf + w->rlen, w->rcap - w->rlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        w->rlen += (size_t)n;
        process_frames(w);
    }
}

static void on_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    worker *w = proc->data;
    pool *p = w->pool;
    worker_drain(w);
    bool starting = w->state == W_STARTING;
    if (starting)
        p->nstarting--;
    w->state = W_EXITED;
    char why[256];
    describe_exit(why, sizeof why, exit_status, term_signal);
    if (starting && !p->terminating && !w->lost) {
        /* Python: a worker that dies while starting breaks the pool. Also
         * keeps a program that cannot start workers from trying forever. */
        char msg[320];
        snprintf(msg, sizeof msg, "a worker could not start (%s)", why);
        pool_break(p, msg);
    }
    worker_lost(w, CF_EBROKEN, CF_EBROKEN, why, term_signal,
                term_signal ? -1 : (int)exit_status);
    worker_unlink(w);
    if (p->timeout_ms)
        uv_close((uv_handle_t *)&w->timer, worker_handle_closed);
    worker_close_pipe(w);
    uv_close((uv_handle_t *)&w->proc, worker_handle_closed);
    dispatch(p); /* a replacement, if there is work */
}

/* The worker will not finish its tasks: fail the running one with this
 * outcome, send the ones queued behind it again (or fail them when the pool
 * is being terminated), and make sure the process goes. */
static void worker_lost(worker *w, int status, int code, const char *message, int sig,
                        int exit_status)
{
    pool *p = w->pool;
    if (w->lost)
        return;
    w->lost = true;
    if (p->timeout_ms && w->state != W_EXITED)
        uv_timer_stop(&w->timer);
    cf_future *f = fq_pop(&w->inflight);
    if (f)
        fail_future(f, status, code, message, sig, exit_status);
    if (p->terminating || p->broken)
        fail_all(&w->inflight, CF_EBROKEN, CF_EBROKEN,
                 "the worker holding this task was terminated before it ran");
    else
        fq_prepend(&p->retry, &w->inflight);
    worker_kill(w, SIGKILL);
    worker_close_pipe(w);
}

static void on_timeout(uv_timer_t *t)
{
    worker *w = t->data;
    char msg[128];
    snprintf(msg, sizeof msg, "task ran longer than task_timeout (%g s); its worker was killed",
             w->pool->task_timeout);
    worker_lost(w, CF_ETIMEDOUT, CF_ETIMEDOUT, msg, SIGKILL, -1);
}

static void on_write(uv_write_t *req, int status)
{
    worker *w = req->data;
    w->write_busy = false;
    w->writing.len = 0;
    if (w->writing.cap > KEEP_BUF)
        cf__buf_free(&w->writing);
    if (status != 0) { /* the worker is gone or going: its exit_cb tells */
        if (!w->pipe_closed)
            worker_kill(w, SIGKILL);
        return;
    }
    if (!w->pipe_closed)
        worker_flush(w);
}

/* Write what wbuf holds: synchronously when the socket takes it all (the
 * common case: no allocation, one system call), else through uv_write. */
static void worker_flush(worker *w)
{
    if (w->wbuf.len == 0 || w->write_busy || w->pipe_closed)
        return;
    size_t off = 0;
    uv_buf_t b = uv_buf_init((char *)w->wbuf.data, (unsigned)w->wbuf.len);
    int n = uv_try_write((uv_stream_t *)&w->pipe, &b, 1);
    if (n > 0)
        off = (size_t)n;
    else if (n != UV_EAGAIN) {
        w->wbuf.len = 0;
        worker_kill(w, SIGKILL);
        return;
    }
    if (off == w->wbuf.len) {
        w->wbuf.len = 0;
        if (w->wbuf.cap > KEEP_BUF)
            cf__buf_free(&w->wbuf);
        return;
    }
    /* Hand the rest to uv_write; new frames collect in the other buffer. */
    cf__buf tmp = w->writing;
    w->writing = w->wbuf;
    w->wbuf = tmp;
    w->wbuf.len = 0;
    memmove(w->writing.data, w->writing.data + off, w->writing.len - off);
    w->writing.len -= off;
    b = uv_buf_init((char *)w->writing.data, (unsigned)w->writing.len);
    w->wreq.data = w;
    if (uv_write(&w->wreq, (uv_stream_t *)&w->pipe, &b, 1, on_write) == 0)
        w->write_busy = true;
    else
        worker_kill(w, SIGKILL);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    worker *w = h->data;
    if (!rbuf_make_room(w)) {
        *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
        return;
    }
    size_t room = w->rcap - w->rlen;
    *buf = uv_buf_init((char *)w->rbuf + w->rlen, room > UINT_MAX ? UINT_MAX : (unsigned)room);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    worker *w = s->data;
    if (nread > 0) {
        w->rlen += (size_t)nread;
        process_frames(w);
        return;
    }
    if (nread == 0)
        return;
    if (nread == UV_ENOBUFS) {
        worker_lost(w, CF_EBROKEN, CF_ENOMEM, "out of memory reading from the worker", 0, -1);
        return;
    }
    /* EOF or error: the worker is gone or going; its exit_cb does the rest. */
    uv_read_stop(s);
    worker_kill(w, SIGKILL);
}

static int spawn_worker(pool *p)
{
    worker *w = cf__calloc(1, sizeof *w);
    if (!w)
        return CF_ENOMEM;
    w->pool = p;
    w->proc.data = w->pipe.data = w->timer.data = w;

    /* The environment: ours, plus the marker. */
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = cf__calloc(n + 2, sizeof *env);
    if (!env) {
        cf__free(w);
        return CF_ENOMEM;
    }
    char marker[64];
    snprintf(marker, sizeof marker, "%s=3:%ld", cf__worker_marker(), (long)getpid());
    if (uv_pipe_init(&p->loop, &w->pipe, 0) != 0) {
        cf__free(env);
        cf__free(w);
        return CF_ESYSTEM;
    }
    w->open_handles = 1;
    size_t k = 0, mlen = strlen(cf__worker_marker());
    for (size_t i = 0; i < n; i++)
        if (!(strncmp(environ[i], cf__worker_marker(), mlen) == 0 && environ[i][mlen] == '='))
            env[k++] = environ[i];
    env[k++] = marker;
    env[k] = NULL;

    uv_stdio_container_t stdio[4] = {
        { .flags = UV_INHERIT_FD, .data.fd = 0 },
        { .flags = UV_INHERIT_FD, .data.fd = 1 },
        { .flags = UV_INHERIT_FD, .data.fd = 2 },
        { .flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE,
          .data.stream = (uv_stream_t *)&w->pipe },
    };
    char *args[] = { p->exepath, NULL };
    uv_process_options_t opts = {
        .exit_cb = on_exit,
        .file = p->exepath,
        .args = args,
        .env = env,
        .stdio_count = 4,
        .stdio = stdio,
    };
    int rc = uv_spawn(&p->loop, &w->proc, &opts);
    cf__free(env);
    if (rc != 0) {
        w->proc.data = w;
        w->open_handles++;
        uv_close((uv_handle_t *)&w->proc, worker_handle_closed);
        worker_close_pipe(w);
        return CF_ESYSTEM;
    }
    w->open_handles++;
    if (p->timeout_ms) {
        uv_timer_init(&p->loop, &w->timer);
        w->open_handles++;
    }
    w->state = W_STARTING;
    w->next = p->workers;
    p->workers = w;
    p->nworkers++;
    p->nstarting++;
    if (cf__wire_put_init(&w->wbuf, p->max_message, p->initarg, p->init_ref,
                          p->init_ref_len) != 0 ||
        uv_read_start((uv_stream_t *)&w->pipe, on_alloc, on_read) != 0) {
        worker_kill(w, SIGKILL); /* its exit_cb cleans up */
        return 0;
    }
    worker_flush(w);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Replies                                                                   */
/* ------------------------------------------------------------------------ */

static void garbled(worker *w, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, "worker sent %s; it was killed", what);
    worker_lost(w, CF_EBROKEN, CF_EBROKEN, msg, 0, -1);
}

static void note_run_time(pool *p, uint64_t ns)
{
    if (!p->avg_known) {
        p->avg_ns = ns;
        p->avg_known = true;
    } else {
        p->avg_ns = p->avg_ns - p->avg_ns / 8 + ns / 8;
    }
}

/* The head task answered: take it off the worker and complete it. */
static void complete_head(worker *w, const cf__frame *fr)
{
    pool *p = w->pool;
    cf_future *f = w->inflight.head;
    if (!f || f->backend_id != fr->id ||
        (fr->type == CF__MSG_RESULT) != (f->call.count == 0)) {
        garbled(w, "a reply to no task of its own");
        return;
    }
    bool single = fr->type == CF__MSG_RESULT;
    uint64_t run_ns = 0;
    cf__outcome out;
    cf__chunk_result *chunk = NULL;
    int rc = single ? cf__wire_get_result(fr, &out, &run_ns)
                    : cf__wire_get_chunk_result(fr, f->call.count, &chunk, &run_ns);
    if (rc == CF_EINVAL) {
        garbled(w, single ? "a garbled result" : "a garbled chunk result");
        return;
    }
    fq_pop(&w->inflight);
    cf__call_clear(&f->call);
    if (rc != 0)
        cf__future_set_failure(f, CF_ETASK, CF_ENOMEM, "out of memory receiving the result", 0,
                               -1);
    else if (single)
        cf__future_set_outcome(f, &out);
    else
        cf__future_set_owned(f, chunk, chunk, cf__chunk_result_free, 0);
    cf_future_unref(f);
    note_run_time(p, run_ns);
    worker_head_changed(w);
}

static void handle_frame(worker *w, const cf__frame *fr)
{
    pool *p = w->pool;
    switch (fr->type) {
    case CF__MSG_READY: {
        uint64_t pid;
        if (w->state != W_STARTING || cf__wire_get_ready(fr, &pid) != 0) {
            garbled(w, "an unexpected message");
            return;
        }
        w->state = W_READY;
        p->nstarting--;
        break;
    }
    case CF__MSG_INIT_FAIL: {
        int code;
        char *message;
        if (w->state != W_STARTING || cf__wire_get_init_fail(fr, &code, &message) != 0) {
            garbled(w, "an unexpected message");
            return;
        }
        pool_break(p, message ? message : "a worker's initializer failed");
        cf__free(message);
        worker_retire(w);
        break;
    }
    case CF__MSG_RESULT:
    case CF__MSG_CHUNK_RESULT:
        if (w->state != W_READY && w->state != W_RETIRING) {
            garbled(w, "an unexpected message");
            return;
        }
        complete_head(w, fr);
        if (!w->lost && p->max_tasks && w->sent >= (uint64_t)p->max_tasks &&
            !w->inflight.head)
            worker_retire(w); /* max_tasks_per_child: a fresh one replaces it */
        break;
    default:
        garbled(w, "a message of unknown type");
    }
}

/* Whether the header of a frame still arriving can be right: a worker only
 * ever sends READY / INIT_FAIL while starting, then replies to its oldest
 * task. Checked early so that garbage announcing a long frame is caught now,
 * not after waiting for bytes that will never come. */
static bool header_plausible(const worker *w, const unsigned char *buf, size_t len)
{
    if (len < CF__WIRE_HEAD)
        return true;
    uint8_t type = buf[4];
    uint64_t id;
    memcpy(&id, buf + 5, 8);
    if (type == CF__MSG_READY || type == CF__MSG_INIT_FAIL)
        return w->state == W_STARTING && id == 0;
    if (type == CF__MSG_RESULT || type == CF__MSG_CHUNK_RESULT)
        return w->inflight.head && w->inflight.head->backend_id == id;
    return false;
}

static void process_frames(worker *w)
{
    size_t pos = 0;
    while (!w->lost) {
        cf__frame fr;
        int rc = cf__wire_next_frame(w->rbuf + pos, w->rlen - pos, w->pool->frame_limit, &fr);
        if (rc == 0 && !header_plausible(w, w->rbuf + pos, w->rlen - pos))
            rc = CF_EINVAL;
        if (rc == 0)
            break;
        if (rc < 0) {
            garbled(w, "a garbled frame");
            break;
        }
        handle_frame(w, &fr);
        pos += fr.total;
    }
    if (w->lost) {
        w->rlen = 0;
        return;
    }
    if (pos > 0) {
        memmove(w->rbuf, w->rbuf + pos, w->rlen - pos);
        w->rlen -= pos;
    }
    if (w->rlen == 0 && w->rcap > KEEP_BUF) {
        cf__free(w->rbuf);
        w->rbuf = NULL;
        w->rcap = 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

/* The next task to send: one that lost its worker first, then a new one. */
static cf_future *next_task(pool *p, fqueue *local)
{
    cf_future *f = fq_pop(&p->retry);
    return f ? f : fq_pop(local);
}

/* Start (set running) a future taken from pending; false and released when
 * it was cancelled meanwhile. */
static bool start_future(cf_future *f)
{
    if (cf_future_set_running_or_notify_cancel(f))
        return true;
    cf__call_clear(&f->call); /* cancelled before it started */
    cf_future_unref(f);
    return false;
}

/* Remove the cancelled futures from pending: they would otherwise sit there
 * until a worker has room to skip them. */
static void drop_cancelled(pool *p)
{
    fqueue keep = { 0 }, drop = { 0 };
    cf_future *f;
    uv_mutex_lock(&p->lock);
    while ((f = fq_pop(&p->pending)))
        fq_push(cf_future_cancelled(f) ? &drop : &keep, f);
    p->pending = keep;
    uv_mutex_unlock(&p->lock);
    while ((f = fq_pop(&drop)))
        start_future(f);
}

/* Send f to w, or fail f when it cannot be sent. */
static void send_task(pool *p, worker *w, cf_future *f)
{
    fncache_entry *e = NULL;
    int rc = fn_lookup(p, f->call.fn, &e);
    if (rc == CF_EINVAL) {
        char msg[96];
        snprintf(msg, sizeof msg, "function %p is in no loaded object: it cannot be sent",
                 (void *)(uintptr_t)f->call.fn);
        fail_future(f, CF_ETASK, CF_EINVAL, msg, 0, -1);
        return;
    }
    f->backend_id = ++p->next_id;
    if (rc != 0 || cf__wire_put_task(&w->wbuf, f->backend_id, e->ref, e->len, &f->call) != 0) {
        fail_future(f, CF_ETASK, CF_ENOMEM, "out of memory sending the task", 0, -1);
        return;
    }
    fq_push(&w->inflight, f);
    w->sent++;
    if (w->inflight.n == 1)
        worker_head_changed(w);
}

/* How many tasks w may hold now: `window` once every worker is up, else
 * one (see dispatch); never more than its max_tasks_per_child allows. */
static size_t worker_limit(const pool *p, const worker *w, size_t window)
{
    if (w->state != W_READY || w->lost)
        return 0;
    if (w->inflight.n > 0 && w->wbuf.len + w->writing.len >= BYTES_AHEAD)
        return w->inflight.n; /* enough bytes on their way already */
    size_t limit = window;
    if (p->max_tasks) {
        uint64_t left = (uint64_t)p->max_tasks - w->sent;
        if (w->inflight.n + left < limit)
            limit = w->inflight.n + (size_t)left;
    }
    return limit;
}

/* Fail or cancel everything waiting: the pool is broken or terminated. */
static void dispatch_nothing(pool *p, fqueue *waiting)
{
    const char *msg = "the pool's workers were terminated";
    if (p->broken)
        msg = p->broken_message ? p->broken_message : "the pool is broken";
    fail_all(&p->retry, CF_EBROKEN, CF_EBROKEN, msg);
    cf_future *f;
    while ((f = fq_pop(waiting))) {
        if (p->broken)
            fail_future(f, CF_EBROKEN, CF_EBROKEN, msg, 0, -1);
        else /* terminated: shutdown(cancel_futures) cancelled these already */
            cancel_queued(f);
    }
}

/* Hand out work. Idle workers first (level 0), then one more per worker per
 * level up to the window. Tasks queue behind a running one only when every
 * worker is up: one that is starting takes them sooner. Only as many tasks as
 * there are free places leave `pending`, so the rest stays cancellable by
 * cf_future_cancel and by shutdown(cancel_futures) until the last moment. */
static void dispatch(pool *p)
{
    size_t window = window_for(p->avg_ns, p->avg_known);
    if (p->nworkers < p->max_workers || p->nstarting > 0)
        window = 1;
    size_t free_places = 0;
    for (worker *w = p->workers; w; w = w->next) {
        size_t limit = worker_limit(p, w, window);
        if (limit > w->inflight.n)
            free_places += limit - w->inflight.n;
    }
    size_t want = free_places > p->retry.n ? free_places - p->retry.n : 0;

    fqueue local = { 0 };
    cf_future *f;
    uv_mutex_lock(&p->lock);
    if (p->broken || p->terminating) {
        local = p->pending;
        p->pending = (fqueue){ 0 };
        uv_mutex_unlock(&p->lock);
        dispatch_nothing(p, &local);
        return;
    }
    /* Take as many as there are places; cancelled ones do not count. */
    size_t waiting;
    for (;;) {
        fqueue batch = { 0 };
        while (local.n + batch.n < want && (f = fq_pop(&p->pending)))
            fq_push(&batch, f);
        waiting = p->pending.n;
        uv_mutex_unlock(&p->lock);
        if (!batch.head)
            break;
        while ((f = fq_pop(&batch)))
            if (start_future(f))
                fq_push(&local, f);
        if (local.n >= want)
            break;
        uv_mutex_lock(&p->lock);
    }

    for (size_t level = 0; level < window; level++) {
        for (worker *w = p->workers; w; w = w->next) {
            if (w->inflight.n != level || level >= worker_limit(p, w, window))
                continue;
            if (!(f = next_task(p, &local)))
                goto placed;
            send_task(p, w, f);
        }
    }
placed:
    for (worker *w = p->workers; w; w = w->next)
        worker_flush(w);
    /* Left over only if a worker went away meanwhile: these are running. */
    fq_prepend(&p->retry, &local);
    waiting += p->retry.n;
    /* More work than places: start workers, up to max_workers. */
    while (waiting > (size_t)p->nstarting && p->nworkers < p->max_workers) {
        if (spawn_worker(p) != 0) {
            if (p->nworkers == 0) {
                pool_break(p, "cannot start a worker process");
                dispatch(p); /* fails what waits */
            }
            break;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* The manager thread                                                        */
/* ------------------------------------------------------------------------ */

static void on_closed_quiet(uv_handle_t *h)
{
    (void)h;
}

/* Shut down: once nothing waits and no task runs, workers go; once they
 * have exited, the loop's own handles close and uv_run returns. */
static void maybe_finish(pool *p)
{
    if (p->finishing)
        return;
    uv_mutex_lock(&p->lock);
    bool shutdown = p->shutdown, idle = p->pending.head == NULL;
    uv_mutex_unlock(&p->lock);
    bool busy = p->retry.head != NULL;
    for (worker *w = p->workers; w && !busy; w = w->next)
        busy = w->inflight.head != NULL;
    if (shutdown && !idle && !busy) { /* no worker would skip them soon */
        drop_cancelled(p);
        uv_mutex_lock(&p->lock);
        idle = p->pending.head == NULL;
        uv_mutex_unlock(&p->lock);
    }
    if (!shutdown || !idle || p->retry.head)
        return;
    for (worker *w = p->workers; w; w = w->next)
        if (!w->inflight.head)
            worker_retire(w);
    if (p->nworkers > 0)
        return;
    p->finishing = true;
    uv_mutex_lock(&p->lock);
    p->manager_alive = false;
    uv_cond_broadcast(&p->cond);
    uv_mutex_unlock(&p->lock);
    uv_close((uv_handle_t *)&p->async, on_closed_quiet);
    uv_close((uv_handle_t *)&p->check, on_closed_quiet);
}

static void on_async(uv_async_t *a)
{
    pool *p = a->data;
    uv_mutex_lock(&p->lock);
    int sig = p->signal_req;
    uint64_t gen = p->signal_gen_req;
    p->signal_req = 0;
    uv_mutex_unlock(&p->lock);
    if (sig) {
        p->terminating = true;
        for (worker *w = p->workers; w; w = w->next)
            worker_kill(w, sig);
        fail_all(&p->retry, CF_EBROKEN, CF_EBROKEN, "the pool's workers were terminated");
        uv_mutex_lock(&p->lock);
        p->signal_gen_done = gen;
        uv_cond_broadcast(&p->cond);
        uv_mutex_unlock(&p->lock);
    }
    /* The work itself is handed out in on_check, once per loop iteration. */
}

static void on_check(uv_check_t *c)
{
    pool *p = c->data;
    dispatch(p);
    maybe_finish(p);
}

static void manager_main(void *arg)
{
    pool *p = arg;
    manager_of = p;
    /* Signals are for the program's own threads; a write to a dead worker
     * must give EPIPE here, not kill the program with SIGPIPE. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    uv_loop_close(&p->loop);
    if (p->orphaned) { /* nobody joins us: see pool_release */
        pthread_detach(pthread_self());
        cf__executor_unhold(&p->base); /* the user's hold, left to us */
        return;
    }
    cf__event_set(&p->done);
}

/* ------------------------------------------------------------------------ */
/* The ops                                                                   */
/* ------------------------------------------------------------------------ */

static int pool_submit(cf_executor *ex, cf_future *f)
{
    pool *p = (pool *)ex;
    if (cf__wire_call_data_size(&f->call) > p->max_message)
        return CF_ETOOBIG;
    f->spin_wait = CF__SPIN_YIELD;
    int rc = 0;
    uv_mutex_lock(&p->lock);
    if (p->shutdown) {
        rc = CF_ESHUTDOWN;
    } else if (p->broken) {
        rc = CF_EBROKEN;
    } else {
        fq_push(&p->pending, f);
        uv_async_send(&p->async); /* under the lock: the manager is alive */
    }
    uv_mutex_unlock(&p->lock);
    return rc;
}

static int pool_shutdown(cf_executor *ex, bool wait, bool cancel_futures)
{
    pool *p = (pool *)ex;
    fqueue cancel = { 0 };
    uv_mutex_lock(&p->lock);
    p->shutdown = true;
    if (cancel_futures) {
        cancel = p->pending;
        p->pending = (fqueue){ 0 };
    }
    if (p->manager_alive)
        uv_async_send(&p->async);
    uv_mutex_unlock(&p->lock);
    cf_future *f;
    while ((f = fq_pop(&cancel)))
        cancel_queued(f);
    if (wait && manager_of != p) /* never wait for ourselves from a done-callback */
        cf__event_wait(&p->done, CF__NO_DEADLINE);
    return 0;
}

static int pool_signal_workers(cf_executor *ex, int signum)
{
    pool *p = (pool *)ex;
    pool_shutdown(ex, false, true);
    uv_mutex_lock(&p->lock);
    uint64_t gen = ++p->signal_gen_req;
    p->signal_req = signum;
    if (p->manager_alive)
        uv_async_send(&p->async);
    /* Return once the signals are sent (unless called from a done-callback). */
    while (manager_of != p && p->manager_alive && p->signal_gen_done < gen)
        uv_cond_wait(&p->cond, &p->lock);
    uv_mutex_unlock(&p->lock);
    return 0;
}

static void pool_destroy(cf_executor *ex)
{
    pool *p = (pool *)ex;
    if (!p->orphaned) /* else the manager thread is ending, detached */
        uv_thread_join(&p->thread);
    for (size_t i = 0; i < FNCACHE_SLOTS; i++)
        cf__free(p->fncache[i].ref);
    cf__free(p->broken_message);
    cf__free(p->init_ref);
    cf__free(p->exepath);
    cf__event_destroy(&p->done);
    uv_cond_destroy(&p->cond);
    uv_mutex_destroy(&p->lock);
    cf__free(p);
}

/* From a done-callback (the manager thread) the manager cannot wait for
 * itself: shut down without waiting, and the manager frees the pool once
 * its loop has ended. */
static bool pool_release(cf_executor *ex)
{
    pool *p = (pool *)ex;
    if (manager_of == p) {
        pool_shutdown(ex, false, false);
        p->orphaned = true;
        return false;
    }
    pool_shutdown(ex, true, false);
    return true;
}

/* A fork() child's copy: the manager thread and the workers are the
 * parent's. Only the pool's own block goes; what the manager owned (its
 * loop, the workers' records) is left as the fork found it. */
static void pool_forget(cf_executor *ex)
{
    pool *p = (pool *)ex;
    cf__free(p->broken_message);
    cf__free(p->init_ref);
    cf__free(p->exepath);
    cf__free(p);
}

static const cf__executor_ops process_pool_ops = {
    .name = "process",
    .submit = pool_submit,
    .shutdown = pool_shutdown,
    .signal_workers = pool_signal_workers,
    .release = pool_release,
    .destroy = pool_destroy,
    .forget = pool_forget,
};

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */
/* ------------------------------------------------------------------------ */

static char *exe_path(void)
{
    char buf[4096];
    size_t size = sizeof buf;
    if (uv_exepath(buf, &size) != 0)
        return NULL;
    return cf__strdup(buf);
}

cf_executor *cf_process_pool_new(const cf_process_pool_opts *opts)
{
    cf_process_pool_opts o = opts ? *opts : (cf_process_pool_opts){ 0 };
    if (o.max_workers < 0 || o.max_tasks_per_child < 0 || !(o.task_timeout >= 0) ||
        o.task_timeout > 1e9)
        return cf__fail(CF_EINVAL);
    pool *p = cf__calloc(1, sizeof *p);
    if (!p)
        return cf__fail(CF_ENOMEM);
    if (cf__executor_init(&p->base, &process_pool_ops) != 0) {
        cf__free(p);
        return cf__fail(CF_ESYSTEM);
    }
    p->max_workers = o.max_workers ? o.max_workers : cf__cpu_count();
    p->max_tasks = o.max_tasks_per_child;
    p->task_timeout = o.task_timeout;
    if (o.task_timeout > 0) {
        double ms = o.task_timeout * 1000.0;
        p->timeout_ms = (uint64_t)ms;
        if ((double)p->timeout_ms < ms || p->timeout_ms == 0)
            p->timeout_ms++; /* round up: never kill early */
    }
    p->max_message = o.max_message ? o.max_message : CF__WIRE_DEFAULT_MAX_MESSAGE;
    if (p->max_message > CF__WIRE_MAX_MAX_MESSAGE)
        p->max_message = CF__WIRE_MAX_MAX_MESSAGE;
    p->frame_limit = cf__wire_frame_limit(p->max_message);
    p->initarg = (uint64_t)(uintptr_t)o.initarg;

    int err = 0;
    if (o.initializer)
        err = fnref_new((uintptr_t)o.initializer, &p->init_ref, &p->init_ref_len);
    if (err != 0)
        goto fail_free;
    p->exepath = exe_path();
    if (!p->exepath) {
        err = CF_ESYSTEM;
        goto fail_free;
    }
    err = CF_ESYSTEM;
    if (uv_mutex_init(&p->lock) != 0)
        goto fail_free;
    if (uv_cond_init(&p->cond) != 0)
        goto fail_mutex;
    if (cf__event_init(&p->done) != 0)
        goto fail_cond;
    if (uv_loop_init(&p->loop) != 0)
        goto fail_event;
    if (uv_async_init(&p->loop, &p->async, on_async) != 0)
        goto fail_loop;
    p->async.data = p;
    uv_check_init(&p->loop, &p->check);
    p->check.data = p;
    uv_check_start(&p->check, on_check);
    p->manager_alive = true;
    if (uv_thread_create(&p->thread, manager_main, p) != 0) {
        uv_close((uv_handle_t *)&p->async, NULL);
        uv_close((uv_handle_t *)&p->check, NULL);
        uv_run(&p->loop, UV_RUN_DEFAULT);
        goto fail_loop;
    }
    return &p->base;

fail_loop:
    uv_loop_close(&p->loop);
fail_event:
    cf__event_destroy(&p->done);
fail_cond:
    uv_cond_destroy(&p->cond);
fail_mutex:
    uv_mutex_destroy(&p->lock);
fail_free:
    cf__free(p->exepath);
    cf__free(p->init_ref);
    cf__free(p);
    return cf__fail(err);
}
