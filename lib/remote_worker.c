/* The remote-pool core: one worker's record, its replies and its loss
 * (manager thread).
 *
 * Replies complete the worker's in-flight futures in order. A worker's end
 * is reported by its transport: the task it was running (the oldest
 * unanswered one) fails with CF_EBROKEN, the tasks queued behind it go back
 * to the front of the queue, and the worker is replaced when there is work.
 * task_timeout is the worker's timer, restarted whenever a new task reaches
 * the head; the same timer bounds how long a retired worker may take to go
 * (a stopped one never would). A garbled reply fails the head task and kills
 * the worker.
 * SPDX-License-Identifier: MIT */
#include "remote_core.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define KEEP_BUF ((size_t)1024 * 1024) /* larger read buffers are freed once empty */
#define RETIRE_GRACE_MS 1000u          /* a retired worker still there after this is killed */

static void worker_lost(cf__rworker *w, int status, int code, const char *message, int sig,
                        int exit_status);

/* ------------------------------------------------------------------------ */
/* Handles and the record                                                    */
/* ------------------------------------------------------------------------ */

static void handle_closed(uv_handle_t *h)
{
    cf__rworker *w = h->data;
    if (--w->open_handles > 0)
        return;
    if (w->pool->ops->release)
        w->pool->ops->release(w);
    cf__free(w->rbuf);
    cf__buf_free(&w->wbuf);
    cf__free(w);
}

void cf__rworker_handle_opened(cf__rworker *w)
{
    w->open_handles++;
}

void cf__rworker_close_handle(cf__rworker *w, uv_handle_t *h)
{
    h->data = w;
    uv_close(h, handle_closed);
}

static void unlink_worker(cf__rworker *w)
{
    cf__remote *r = w->pool;
    for (cf__rworker **pp = &r->workers; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    r->nworkers--;
}

void cf__rworker_kill(cf__rworker *w, int sig)
{
    if (w->state != CF__W_EXITED)
        w->pool->ops->kill(w, sig);
}

void cf__rworker_flush(cf__rworker *w)
{
    if (w->state != CF__W_EXITED && w->wbuf.len > 0)
        w->pool->ops->flush(w);
}

static void on_timer(uv_timer_t *t);

void cf__rworker_head_changed(cf__rworker *w)
{
    cf__remote *r = w->pool;
    if (!r->timeout_ms || w->state == CF__W_EXITED || w->state == CF__W_RETIRING)
        return;
    if (w->inflight.head && !w->lost)
        uv_timer_start(&w->timer, on_timer, r->timeout_ms, 0);
    else
        uv_timer_stop(&w->timer);
}

void cf__rworker_retire(cf__rworker *w)
{
    if (w->state != CF__W_READY && w->state != CF__W_STARTING)
        return;
    if (w->state == CF__W_STARTING)
        w->pool->nstarting--;
    w->state = CF__W_RETIRING;
    w->pool->ops->retire(w);
    uv_timer_start(&w->timer, on_timer, RETIRE_GRACE_MS, 0);
}

/* The timer: a task overran task_timeout, or a retired worker overstayed. */
static void on_timer(uv_timer_t *t)
{
    cf__rworker *w = t->data;
    if (w->state == CF__W_RETIRING) {
        cf__rworker_kill(w, SIGKILL); /* stopped, or stuck: it had no task left */
        return;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "task ran longer than task_timeout (%g s); its worker was killed",
             w->pool->task_timeout);
    worker_lost(w, CF_ETIMEDOUT, CF_ETIMEDOUT, msg, SIGKILL, -1);
}

int cf__rworker_spawn(cf__remote *r, char *why, size_t cap)
{
    cf__rworker *w = cf__calloc(1, sizeof *w + r->ops->worker_size);
    if (!w) {
        snprintf(why, cap, "out of memory");
        return CF_ENOMEM;
    }
    w->pool = r;
    if (cf__wire_put_init(&w->wbuf, r->max_message, r->initarg, r->init_ref, r->init_ref_len) !=
        0) {
        cf__free(w);
        snprintf(why, cap, "out of memory");
        return CF_ENOMEM;
    }
    int rc = r->ops->start(w, why, cap);
    if (rc != 0) {
        if (w->open_handles == 0) { /* else the last one to close frees w */
            cf__buf_free(&w->wbuf);
            cf__free(w);
        }
        return rc;
    }
    uv_timer_init(&r->loop, &w->timer);
    w->timer.data = w;
    w->open_handles++;
    w->state = CF__W_STARTING;
    w->next = r->workers;
    r->workers = w;
    r->nworkers++;
    r->nstarting++;
    r->ops->flush(w); /* the INIT frame */
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Loss and exit                                                             */
/* ------------------------------------------------------------------------ */

/* The worker will not finish its tasks: fail the running one with this
 * outcome, send the ones queued behind it again (or fail them when the pool
 * is being terminated), and make sure the worker goes. */
static void worker_lost(cf__rworker *w, int status, int code, const char *message, int sig,
                        int exit_status)
{
    cf__remote *r = w->pool;
    if (w->lost)
        return;
    w->lost = true;
    if (w->state != CF__W_EXITED)
        uv_timer_stop(&w->timer);
    cf_future *f = cf__fq_pop(&w->inflight);
    cf__fqueue unsent = { 0 };
    if (r->terminating || atomic_load_explicit(&r->broken, memory_order_relaxed))
        unsent = w->inflight;
    else
        cf__fq_prepend(&r->retry, &w->inflight);
    w->inflight = (cf__fqueue){ 0 };
    cf__remote_publish_stats(r);
    if (f)
        cf__remote_fail_future(r, f, status, code, message, sig, exit_status);
    cf__remote_fail_all(r, &unsent, CF_EBROKEN, CF_EBROKEN,
                        "the worker holding this task was terminated before it ran");
    cf__rworker_kill(w, SIGKILL);
}

void cf__rworker_exited(cf__rworker *w, const cf__worker_exit *e)
{
    cf__remote *r = w->pool;
    bool starting = w->state == CF__W_STARTING;
    if (starting)
        r->nstarting--;
    /* It died (also when a shutdown had begun to retire it after it was
     * lost: killed for task_timeout, or garbled), or max_tasks_per_child. */
    if (w->state != CF__W_RETIRING || w->recycled || w->lost)
        CF__REMOTE_COUNT(r, replaced);
    w->state = CF__W_EXITED;
    uv_timer_stop(&w->timer);
    if (starting && !r->terminating && !w->lost) {
        /* Python: a worker that dies while starting breaks the pool. Also
         * keeps a program that cannot start workers from trying forever. */
        char msg[320];
        snprintf(msg, sizeof msg, "a worker could not start (%s)", e->why);
        cf__remote_break(r, msg, e->signal, e->exit_status);
    }
    unlink_worker(w); /* first: the stats that its task's failure shows count it gone */
    worker_lost(w, CF_EBROKEN, CF_EBROKEN, e->why, e->signal, e->exit_status);
    cf__rworker_close_handle(w, (uv_handle_t *)&w->timer);
    r->ops->close(w);
    cf__remote_dispatch(r); /* a replacement, if there is work */
}

/* ------------------------------------------------------------------------ */
/* Replies                                                                   */
/* ------------------------------------------------------------------------ */

static void garbled(cf__rworker *w, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, "worker sent %s; it was killed", what);
    worker_lost(w, CF_EBROKEN, CF_EBROKEN, msg, 0, -1);
}

static void note_run_time(cf__remote *r, uint64_t ns)
{
    if (!r->avg_known) {
        r->avg_ns = ns;
        r->avg_known = true;
    } else {
        r->avg_ns = r->avg_ns - r->avg_ns / 8 + ns / 8;
    }
}

/* The head task answered: take it off the worker and complete it. */
static void complete_head(cf__rworker *w, const cf__frame *fr)
{
    cf__remote *r = w->pool;
    cf_future *f = w->inflight.head;
    if (!f || f->backend_id != fr->id || (fr->type == CF__MSG_RESULT) != (f->call.count == 0)) {
        garbled(w, "a reply to no task of its own");
        return;
    }
    bool single = fr->type == CF__MSG_RESULT;
    uint64_t run_ns = 0;
    cf__outcome out;
    cf__chunk_result *chunk = NULL;
    /* A parallel loop's output slice goes straight to the caller's array,
     * from the reply or from a slot of the memory shared with the worker. */
    const cf__range_call *range = single ? f->call.range : NULL;
    void *dest = range ? range->dest : NULL;
    size_t dest_size = dest ? (range->end - range->begin) * range->out_size : 0;
    uint64_t slot = CF__NO_SLOT;
    int rc =
        single ? cf__wire_get_result_into(fr, &out, &run_ns, dest, dest_size, w->shm ? &slot : NULL)
               : cf__wire_get_chunk_result(fr, f->call.count, &chunk, &run_ns);
    if (rc == 0 && slot != CF__NO_SLOT)
        r->ops->shm_take(w, slot, dest, dest_size);
    if (rc == CF_EINVAL) {
        garbled(w, single ? "a garbled result" : "a garbled chunk result");
        return;
    }
    cf__fq_pop(&w->inflight);
    cf__call_clear(&f->call);
    CF__REMOTE_COUNT(r, completed);
    if (rc != 0 || (single ? out.status != 0 : chunk->fail_status != 0))
        CF__REMOTE_COUNT(r, failed);
    cf__remote_publish_stats(r);
    if (rc != 0)
        cf__future_set_failure(f, CF_ETASK, CF_ENOMEM, "out of memory receiving the result", 0, -1);
    else if (single)
        cf__future_set_outcome(f, &out);
    else
        cf__future_set_owned(f, chunk, chunk, cf__chunk_result_free, 0);
    cf_future_unref(f);
    note_run_time(r, run_ns);
    cf__rworker_head_changed(w);
}

static void handle_ready(cf__rworker *w, const cf__frame *fr)
{
    uint64_t pid;
    if (w->state != CF__W_STARTING || cf__wire_get_ready(fr, &pid) != 0) {
        garbled(w, "an unexpected message");
        return;
    }
    w->state = CF__W_READY;
    w->pool->nstarting--;
}

static void handle_init_fail(cf__rworker *w, const cf__frame *fr)
{
    int code;
    char *message;
    if (w->state != CF__W_STARTING || cf__wire_get_init_fail(fr, &code, &message) != 0) {
        garbled(w, "an unexpected message");
        return;
    }
    cf__remote_break(w->pool, message ? message : "a worker's initializer failed", 0, -1);
    cf__free(message);
    cf__rworker_retire(w);
}

static void handle_frame(cf__rworker *w, const cf__frame *fr)
{
    cf__remote *r = w->pool;
    switch (fr->type) {
    case CF__MSG_READY:
        handle_ready(w, fr);
        break;
    case CF__MSG_INIT_FAIL:
        handle_init_fail(w, fr);
        break;
    case CF__MSG_RESULT:
    case CF__MSG_CHUNK_RESULT:
        if (w->state != CF__W_READY && w->state != CF__W_RETIRING) {
            garbled(w, "an unexpected message");
            return;
        }
        complete_head(w, fr);
        if (!w->lost && r->max_tasks && w->sent >= (uint64_t)r->max_tasks && !w->inflight.head) {
            w->recycled = true;
            cf__rworker_retire(w); /* max_tasks_per_child: a fresh one replaces it */
        }
        break;
    default:
        garbled(w, "a message of unknown type");
    }
}

/* Whether the header of a frame still arriving can be right: a worker only
 * ever sends READY / INIT_FAIL while starting, then replies to its oldest
 * task. Checked early so that garbage announcing a long frame is caught now,
 * not after waiting for bytes that will never come. */
static bool header_plausible(const cf__rworker *w, const unsigned char *buf, size_t len)
{
    if (len < CF__WIRE_HEAD)
        return true;
    uint8_t type = buf[4];
    uint64_t id;
    memcpy(&id, buf + 5, 8);
    if (type == CF__MSG_READY || type == CF__MSG_INIT_FAIL)
        return w->state == CF__W_STARTING && id == 0;
    if (type == CF__MSG_RESULT || type == CF__MSG_CHUNK_RESULT)
        return w->inflight.head && w->inflight.head->backend_id == id;
    return false;
}

static void process_frames(cf__rworker *w)
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

bool cf__rworker_read_room(cf__rworker *w, unsigned char **buf, size_t *room)
{
    size_t want = cf__wire_read_room(w->rbuf, w->rlen, w->pool->frame_limit);
    if (w->rcap < want) {
        unsigned char *b = cf__realloc(w->rbuf, want);
        if (!b) {
            worker_lost(w, CF_EBROKEN, CF_ENOMEM, "out of memory reading from the worker", 0, -1);
            return false;
        }
        w->rbuf = b;
        w->rcap = want;
    }
    *buf = w->rbuf + w->rlen;
    *room = w->rcap - w->rlen;
    return true;
}

void cf__rworker_received(cf__rworker *w, size_t n)
{
    if (w->lost) /* what a lost worker still says is ignored */
        return;
    w->pool->activity++; /* see run_loop */
    w->rlen += n;
    process_frames(w);
}
