/* What the files of the remote-pool core share (remote_pool.c: lifecycle,
 * manager thread and executor ops; remote_dispatch.c: handing out work;
 * remote_worker.c: worker records, replies and loss). Transports see only
 * remote.h. Never installed.
 * SPDX-License-Identifier: MIT */
#ifndef CF_REMOTE_CORE_H
#define CF_REMOTE_CORE_H

#include "remote.h"

#define CF__FNCACHE_SLOTS 64u

typedef struct cf__fncache_entry {
    uintptr_t fn; /* the code's address */
    unsigned char *ref;
    size_t len;
} cf__fncache_entry;

struct cf__remote {
    cf_executor base;
    const cf__transport_ops *ops;
    void *transport;

    /* Fixed at creation. */
    int max_workers;
    int max_tasks;
    double task_timeout;
    uint64_t timeout_ms;
    size_t max_message, frame_limit;
    unsigned char *init_ref;
    size_t init_ref_len;
    uint64_t initarg;

    /* Submitted futures not handed out yet (remote_queue.c): the inbox, a
     * lock-free stack submitters push onto, and `queued`, the manager's FIFO,
     * under queue_lock. */
    atomic_uintptr_t inbox;
    uv_mutex_t queue_lock;
    cf__fqueue queued;
    /* The manager polls its loop (see run_loop): a submit need not wake it. */
    atomic_bool polling;
    atomic_bool shutdown;
    /* Broken: queued and later submits fail with CF_EBROKEN. Set once, by
     * the manager (cf__remote_break), after the broken_* fields. */
    atomic_bool broken;
    char *broken_message;
    int broken_signal, broken_exit_status; /* of the worker that broke it */

    /* Shared, under lock: requests to signal the workers, and whether the
     * manager's async handle may still be sent to. */
    uv_mutex_t lock;
    uv_cond_t cond;
    int signal_req;
    uint64_t signal_gen_req, signal_gen_done;
    bool manager_alive;

    /* The manager's state below (and the loop's handles): held by the manager
     * thread while it runs its loop, done-callbacks included, and let go
     * around its yields while it polls, when a submitting thread may take it
     * to hand out work itself (cf__remote_dispatch_direct). Submitters only
     * ever try it, so a callback that submits never waits for it. */
    uv_mutex_t core_lock;

    /* Manager thread only (or whoever holds core_lock). */
    uv_loop_t loop;
    uv_async_t async;
    uv_check_t check;
    uv_pipe_t stdio_probe; /* see start_manager */
    uv_thread_t thread;
    cf__rworker *workers;
    int nworkers;  /* records not yet exited (any state) */
    int nstarting; /* of which STARTING */
    cf__fqueue retry;
    uint64_t next_id;
    uint64_t avg_ns;
    bool avg_known;
    bool terminating;
    bool finishing;
    bool orphaned;     /* cf_executor_free from a done-callback: the manager frees the pool */
    bool may_poll;     /* more than one CPU: polling after activity pays */
    uint64_t activity; /* bumped by every reply read and task sent (see run_loop) */
    cf__fncache_entry fncache[CF__FNCACHE_SLOTS];

    /* Statistics: written by the manager only (and `cancelled` by shutdown's
     * cancel), read by cf_executor_stats_get from any thread. */
    struct {
        atomic_size_t workers, idle, running, ahead; /* cf__remote_publish_stats */
        atomic_ullong completed, failed, cancelled, replaced;
    } stats;

    cf__event done; /* the manager thread has ended */
};

/* remote_pool.c */
/* Whether this thread is r's manager thread (done-callbacks run there). */
bool cf__remote_on_manager(const cf__remote *r);
/* Mark the pool broken: queued and later submits fail with CF_EBROKEN, this
 * message, and the signal / exit status of the worker that broke it. */
void cf__remote_break(cf__remote *r, const char *why, int sig, int exit_status);

/* The gauges of cf_executor_stats_get from the manager's own state: workers
 * alive, idle, running a task, and the tasks held beyond those running (sent
 * ahead, or to be sent again). Once per loop iteration, and before a future
 * completes, so that whoever sees it done sees the pool as it is then. */
void cf__remote_publish_stats(cf__remote *r);
/* Count one more of a statistic (see cf__remote.stats). */
#define CF__REMOTE_COUNT(r, field)                                                                 \
    atomic_fetch_add_explicit(&(r)->stats.field, 1, memory_order_relaxed)

/* remote_queue.c: see there */
bool cf__rqueue_push(cf__remote *r, cf_future *f); /* false: closed */
void cf__rqueue_close(cf__remote *r);
bool cf__rqueue_empty(cf__remote *r);
/* Up to `want` futures, oldest first, appended to out; returns how many are
 * left (roughly: 1 for a non-empty inbox). */
size_t cf__rqueue_take(cf__remote *r, cf__fqueue *out, size_t want);
void cf__rqueue_take_all(cf__remote *r, cf__fqueue *out);
void cf__rqueue_take_cancelled(cf__remote *r, cf__fqueue *out);
void cf__rqueue_count(cf__remote *r, size_t *pending, size_t *cancelled);
/* Until f's submit is done with the pool. */
void cf__rqueue_wait_submitted(cf_future *f);

/* remote_dispatch.c */
/* Hand out queued work, start workers for what waits (manager thread). */
void cf__remote_dispatch(cf__remote *r);
/* From a submitting thread holding core_lock: hand queued work to idle
 * workers only, and only once every worker is up. Starts no worker and
 * fails no future (one that cannot be sent waits in `retry` for the
 * manager), so no task or callback code runs here (allocator hooks may:
 * a cancelled future taken from the queue is freed). */
void cf__remote_dispatch_direct(cf__remote *r);
/* Take the cancelled futures out of the queue (they would wait for a place). */
void cf__remote_drop_cancelled(cf__remote *r);
/* Finish a future the executor holds with a failure, or as cancelled, and
 * drop the executor's hold on it. */
void cf__remote_fail_future(cf__remote *r, cf_future *f, int status, int code, const char *message,
                            int sig, int exit_status);
void cf__remote_fail_all(cf__remote *r, cf__fqueue *q, int status, int code, const char *message);
void cf__remote_cancel_queued(cf__remote *r, cf_future *f);
/* The encoded reference of the code at addr, cf__malloc'd: 0, CF_EINVAL
 * (in no loaded object) or CF_ENOMEM. */
int cf__remote_fnref_new(uintptr_t addr, unsigned char **ref, size_t *len);
void cf__remote_fncache_clear(cf__remote *r);

/* remote_parallel.c: cf_parallel_for, its chunks as tasks */
int cf__remote_parallel_for(cf_executor *ex, cf__loop *loop);

/* remote_worker.c */
/* A new worker, started and sent its INIT: 0 or the start's code (with the
 * cause in why). */
int cf__rworker_spawn(cf__remote *r, char *why, size_t cap);
/* Tell an idle worker to go. */
void cf__rworker_retire(cf__rworker *w);
/* Signal a worker that has not exited. */
void cf__rworker_kill(cf__rworker *w, int sig);
/* Hand w's queued frames to the transport. */
void cf__rworker_flush(cf__rworker *w);
/* A task reached the head of w's queue, or left it: (re)start its timeout. */
void cf__rworker_head_changed(cf__rworker *w);

#endif /* CF_REMOTE_CORE_H */
