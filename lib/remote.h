/* Pools of remote workers: a transport-neutral core, and the transports that
 * reach the workers (processes over pipe pairs; MPI ranks). Never installed.
 *
 * The core owns what does not depend on how a worker is reached: the queue
 * of submitted futures, dispatch and the adaptive window of tasks per worker,
 * in-flight tracking, retry and loss, the frames (wire.c), task timeouts, the
 * function-reference cache, shutdown and the executor ops. It runs a manager
 * thread with a uv_loop; submitters queue under a lock and wake it with a
 * uv_async.
 *
 * A transport fills one const cf__transport_ops. Every member is called on
 * the manager thread, from inside the loop, and must not block except where
 * it says so. A transport tells the core what happened through the
 * cf__rworker_* functions below, also only on the manager thread.
 *
 * A worker's life, as the core sees it: start -> STARTING (the core queues
 * the INIT frame) -> READY (the worker answered) -> RETIRING (told to go) ->
 * EXITED (the transport reported its end) -> closed (every handle closed,
 * then the record is freed).
 * SPDX-License-Identifier: MIT */
#ifndef CF_REMOTE_H
#define CF_REMOTE_H

#include "fqueue.h"
#include "internal.h"
#include "wire.h"

#include <stddef.h>

typedef struct cf__remote cf__remote;
typedef struct cf__rworker cf__rworker;

/* How a worker ended, as the transport learnt it. */
typedef struct cf__worker_exit {
    int signal;      /* the signal that killed it, else 0 */
    int exit_status; /* its exit status when it exited, else -1 */
    char why[256];   /* "worker died: ..." for exceptions and messages */
} cf__worker_exit;

typedef struct cf__transport_ops {
    const char *name;
    /* Bytes the transport keeps in each worker record (cf__rworker_data). */
    size_t worker_size;
    /* Start one worker for w. May block for as long as starting one takes
     * (a fork and an exec). 0: the worker exists, and its bytes (and, in the
     * end, its exit) will be reported; the transport has counted its open
     * handles with cf__rworker_handle_opened. Otherwise a CF_E* code, with
     * the cause written into why[0..cap), and every handle it opened closing
     * through cf__rworker_close_handle (the record goes when they have).
     * CF_ENOTSUP means no worker can ever be started again (MPI: no rank is
     * left): the core stops asking, max_workers becomes the number alive,
     * and the pool breaks only when that is none. */
    int (*start)(cf__rworker *w, char *why, size_t cap);
    /* Write what w->wbuf holds (move it out: the core keeps appending).
     * Never blocks: what cannot be written now goes out later from the loop;
     * keep w->in_transit up to date. A write that fails means the worker is
     * going: make sure it goes, and report its exit as usual. */
    void (*flush)(cf__rworker *w);
    /* The worker is to end once idle (its tasks are done): tell it so.
     * Its exit is then reported as usual. */
    void (*retire)(cf__rworker *w);
    /* Send a signal (process workers), or the nearest thing: SIGKILL must
     * end the worker, whatever state it is in. */
    void (*kill)(cf__rworker *w, int signum);
    /* After the exit was reported: close every handle of the worker, each
     * through cf__rworker_close_handle (or, for one never opened, nothing). */
    void (*close)(cf__rworker *w);
    /* A reply said slot `slot` of w's shared memory holds its len output
     * bytes (the decoder checked slot < CF__SHM_SLOTS and len <=
     * CF__SHM_SLOT_BYTES): copy them to dest and give the slot back to the
     * worker. Never blocks. NULL when the transport never sets w->shm. */
    void (*shm_take)(cf__rworker *w, uint64_t slot, void *dest, size_t len);
    /* The record's last handle closed: free what the transport's part owns.
     * May be NULL. */
    void (*release)(cf__rworker *w);
    /* On the manager thread, as the loop ends (every worker closed): close
     * what the transport shares between workers. May be NULL. */
    void (*finish)(cf__remote *r);
    /* After the manager thread ended, on the thread that frees the pool:
     * free the transport's data (cf__remote_transport). May be NULL. */
    void (*destroy)(cf__remote *r);
    /* flush may also run on a submitting thread (holding the core's lock,
     * with the manager thread out of the loop): it touches nothing but the
     * worker's handles, and a write to a worker that is gone raises no
     * signal. Lets a submit write its task to an idle worker itself. */
    bool flush_any_thread;
} cf__transport_ops;

/* What a remote pool is made with. */
typedef struct cf__remote_config {
    int max_workers;       /* > 0 */
    int max_tasks;         /* per worker, then it is replaced; 0: unlimited */
    double task_timeout;   /* seconds; 0: none */
    size_t max_message;    /* data bytes a task or result may carry */
    uintptr_t initializer; /* the initializer's code address (0: none) */
    void *initarg;         /* travels as a value */
} cf__remote_config;

/* A pool on `ops`, owning `transport` (freed by ops->destroy, also when this
 * fails). NULL with cf_last_error() and a message on failure. */
cf_executor *cf__remote_new(const cf__remote_config *cfg, const cf__transport_ops *ops,
                            void *transport);

/* ------------------------------------------------------------------------ */
/* For transports                                                            */
/* ------------------------------------------------------------------------ */

typedef enum cf__wstate {
    CF__W_STARTING, /* INIT sent, waiting for READY */
    CF__W_READY,
    CF__W_RETIRING, /* told to go, waiting for its exit */
    CF__W_EXITED,   /* its exit was reported; handles closing */
} cf__wstate;

/* One worker. The core's fields first; the transport's part follows. */
struct cf__rworker {
    cf__remote *pool;
    cf__rworker *next;
    cf__wstate state;
    bool lost;           /* its tasks were dealt with: only waiting for its exit */
    bool recycled;       /* retired after max_tasks_per_child tasks */
    int open_handles;    /* the core's timer and the transport's handles */
    cf__fqueue inflight; /* sent, unanswered; the head is running */
    uint64_t sent;       /* tasks sent over its life */
    long pid;            /* process id, 0 when it has none */
    unsigned char *rbuf; /* bytes read, not yet handled */
    size_t rlen, rcap;
    cf__buf wbuf;      /* frames queued by the core, not yet taken by flush */
    size_t in_transit; /* bytes the transport took and has not written yet */
    uv_timer_t timer;  /* task_timeout while a task runs; grace while retiring */
    /* The transport shares memory with the worker (see cf__shm_header):
     * replies may then leave a parallel loop's output slice in a slot. */
    bool shm;
    max_align_t transport[]; /* ops->worker_size bytes */
};

static inline void *cf__rworker_data(cf__rworker *w)
{
    return w->transport;
}

/* The pool's loop and the transport's own data. */
uv_loop_t *cf__remote_loop(cf__remote *r);
void *cf__remote_transport(cf__remote *r);

/* Count a handle of w opened by the transport; close it (when the exit was
 * reported, or on the way) with cf__rworker_close_handle, whose callback the
 * core owns. The record goes when the last of its handles closed. */
void cf__rworker_handle_opened(cf__rworker *w);
void cf__rworker_close_handle(cf__rworker *w, uv_handle_t *h);

/* Reading: where the next bytes go (false when out of memory: the worker is
 * then lost), and how many arrived there. The core handles the frames at
 * once; the worker may be lost when cf__rworker_received returns. */
bool cf__rworker_read_room(cf__rworker *w, unsigned char **buf, size_t *room);
void cf__rworker_received(cf__rworker *w, size_t n);

/* The worker ended. Report every byte it wrote first. */
void cf__rworker_exited(cf__rworker *w, const cf__worker_exit *e);

#endif /* CF_REMOTE_H */
