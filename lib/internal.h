/* What the files of lib/ share. Never installed.
 * SPDX-License-Identifier: MIT */
#ifndef CF_INTERNAL_H
#define CF_INTERNAL_H

#include "cfutures.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define CF_INTERNAL __attribute__((visibility("hidden")))

/* ------------------------------------------------------------------------ */
/* alloc.c: the allocator hook and the per-thread last error                 */
/* ------------------------------------------------------------------------ */

void *cf__malloc(size_t size);
void *cf__calloc(size_t count, size_t size); /* overflow-checked */
void *cf__realloc(void *p, size_t size);
void cf__free(void *p);
/* Whether the hooks are malloc, realloc and free (cf_set_alloc_funcs not
 * called, or reset). */
bool cf__alloc_is_default(void);
char *cf__strdup(const char *s);
/* printf into a new string; NULL when out of memory. */
char *cf__vformat(const char *fmt, va_list ap);
char *cf__format(const char *fmt, ...) CF_PRINTF(1, 2);

/* Blocks aligned to `align` (a power of two above alignof(max_align_t)),
 * zeroed, on top of the allocator hook; free them with cf__aligned_free. */
void *cf__aligned_calloc(size_t size, size_t align);
void cf__aligned_free(void *p);

/* The last error: its code, and a message (cf_strerror(code), or the
 * formatted one; "" for 0). Messages longer than CF__MESSAGE_MAX are cut. */
#define CF__MESSAGE_MAX 512
void cf__set_last_error(int code);
void cf__set_last_error_msg(int code, const char *fmt, ...) CF_PRINTF(2, 3);
void cf__vset_last_error_msg(int code, const char *fmt, va_list ap);
/* Set the last error and return NULL, for `return cf__fail(CF_EINVAL);`. */
void *cf__fail(int code);
void *cf__fail_msg(int code, const char *fmt, ...) CF_PRINTF(2, 3);

/* ------------------------------------------------------------------------ */
/* version.c: the reserved words of the public structs                       */
/* ------------------------------------------------------------------------ */

/* 0 when all n reserved words of a `type` struct (its name, for the message)
 * are zero; else CF_ENOTSUP with the last error's message saying which one. */
int cf__check_reserved(const uint64_t *words, size_t n, const char *type);
#define CF__CHECK_RESERVED(opts, type)                                                             \
    cf__check_reserved((opts)->cf_reserved,                                                        \
                       sizeof(opts)->cf_reserved / sizeof(opts)->cf_reserved[0], type)

/* ------------------------------------------------------------------------ */
/* clock.c: deadlines in uv_hrtime() nanoseconds                             */
/* ------------------------------------------------------------------------ */

#define CF__NO_DEADLINE UINT64_MAX
/* timeout < 0: CF__NO_DEADLINE; else now + timeout. */
uint64_t cf__deadline(double timeout);

/* Wait on cond (mutex held) until signalled or the deadline: false when the
 * deadline had already passed (nothing waited), true otherwise. Wake-ups may
 * be spurious: the caller loops on its own condition, which it checks first. */
bool cf__cond_wait_until(uv_cond_t *cond, uv_mutex_t *mutex, uint64_t deadline);

/* A one-shot wake-up another thread can wait on with a deadline. `set` is
 * written under the mutex and may be read without it. */
typedef struct cf__event {
    uv_mutex_t mutex;
    uv_cond_t cond;
    atomic_bool set;
    bool kicked; /* under the mutex: a thread pool wants the waiter (cf__help_until) */
} cf__event;
int cf__event_init(cf__event *ev); /* 0 or CF_ESYSTEM */
void cf__event_destroy(cf__event *ev);
void cf__event_set(cf__event *ev);
/* 0 once set (it stays set), CF_ETIMEDOUT when the deadline passed first. */
int cf__event_wait(cf__event *ev, uint64_t deadline);

/* ------------------------------------------------------------------------ */
/* task.c: running a task in the current thread                              */
/* ------------------------------------------------------------------------ */

/* What one call of a task produced. */
typedef struct cf__outcome {
    int status;    /* 0: returned; CF_ETASK: raised (or another code, see future.c) */
    void *value;   /* the returned value; == copy when the result is a copy */
    void *copy;    /* cf_return_copy bytes (cf__malloc'd, owned), else NULL */
    size_t size;   /* bytes in copy */
    int code;      /* raised: the task's code */
    char *message; /* raised: cf__malloc'd message, or NULL (then cf_strerror(code)) */
} cf__outcome;

/* Call fn(arg) with cf_raise / cf_return_copy bound to `out`. */
void cf__run_call(cf_fn fn, void *arg, cf__outcome *out);
/* Free what an outcome owns (copy, message), leaving it zeroed. */
void cf__outcome_clear(cf__outcome *out);

typedef struct cf__chunk_result cf__chunk_result;

/* What a future asks an executor to run. Embedded in the future: a submit
 * makes no allocation beyond the future (and the copied bytes, if any). */
typedef struct cf__call {
    cf_fn fn;
    void *arg;          /* one call: a value, or (arg_size > 0) arg_size owned bytes.
                           A chunk: the owned block items or item_bytes point into,
                           or NULL when items is the caller's own array (executors
                           whose tasks run in this process) */
    size_t arg_size;    /* 0: arg (or each item) is a value */
    size_t count;       /* 0: one call fn(arg). > 0: a map chunk of `count` items */
    void *const *items; /* chunk: count values, or (arg_size > 0) NULL and... */
    union {
        unsigned char *item_bytes; /* ...count * arg_size bytes */
        /* A chunk of values (arg_size 0): where its results go, one reference
         * to a header of its map's cf__chunk_block; NULL: a block of its own. */
        cf__chunk_result *into;
        /* One call (count 0): a chunk of a parallel loop to run elsewhere
         * (owned; fn, arg and arg_size unused), or NULL for fn(arg). */
        struct cf__range_call *range;
    };
} cf__call;

/* Chunks of cf_parallel_for for an executor whose tasks run in another
 * process: the range function, its ctx (a value there), the items and the
 * input slice, copied. It runs as one task, calling fn on each chunk of
 * `grain` items from begin on (the last may be shorter), and its result is
 * the output slice ((end - begin) * out_size bytes, copied to dest). */
typedef struct cf__range_call {
    cf_range_fn fn;
    void *ctx;
    size_t begin, end;
    size_t grain; /* >= 1 */
    size_t in_size, out_size;
    /* Where the output slice goes in the caller's array (or NULL): the
     * reply's bytes are copied there as they are read, never on the wire. */
    unsigned char *dest;
    unsigned char in[]; /* (end - begin) * in_size bytes */
} cf__range_call;

/* The chunk of `all` that starts at item `begin` and holds up to `items`
 * items (fewer at the end of `all`), with its slices of all's arrays of
 * in_size and out_size bytes per item. */
static inline cf_range cf__range_part(const cf_range *all, size_t begin, size_t items,
                                      size_t in_size, size_t out_size)
{
    size_t k = begin - all->begin;
    return (cf_range){
        .begin = begin,
        .end = all->end - begin > items ? begin + items : all->end,
        .in = all->in ? (const unsigned char *)all->in + k * in_size : NULL,
        .out = all->out ? (unsigned char *)all->out + k * out_size : NULL,
    };
}

/* Call fn(ctx, r) with cf_raise bound to `out` (a cf_return_copy made there
 * is dropped): returns out->status, 0 or CF_ETASK with out->code and
 * out->message set. */
int cf__run_range(cf_range_fn fn, void *ctx, const cf_range *r, cf__outcome *out);

/* Free what a call owns (the copied argument bytes, the chunk's block). */
void cf__call_clear(cf__call *call);

typedef struct cf__chunk_block cf__chunk_block;

/* The result of a map chunk: items run in order until one fails. */
struct cf__chunk_result {
    size_t capacity;        /* items the chunk has room for */
    size_t count;           /* items that returned (the whole chunk, or up to the failure) */
    void **values;          /* count results; a copy result points at its bytes */
    size_t *sizes;          /* NULL, or count sizes: cf_return_copy bytes, else 0 ... */
    unsigned char *is_copy; /* ...and NULL, or count flags: values[i] is owned bytes */
    int fail_status;        /* 0, or what item `count` failed with (CF_ETASK, CF_EBROKEN ...) */
    cf_exception fail;      /* its exception when fail_status != 0; .message points at
                               fail_message, or at a static string when that is NULL */
    char *fail_message;     /* owned, or NULL */
    cf__chunk_block *block; /* NULL: values are allocated with it; else it is a
                               header of this shared block (and values too) */
};

/* A map's chunk results in one allocation (thread pools, buffersize 0): a
 * header per chunk, then the values of every chunk. One block instead of a
 * few kilobytes per chunk keeps malloc from trimming and refaulting its heap
 * as chunks come and go. The map holds a reference and each chunk's call
 * another, which goes with the chunk's result; the last one frees it. */
struct cf__chunk_block {
    atomic_size_t refs;
    size_t chunks;
    cf__chunk_result *results; /* `chunks` headers, zeroed but for values,
                                  capacity and block */
};
/* For n items in chunks of chunksize (> 0), one reference; NULL when out of
 * memory or too big. */
cf__chunk_block *cf__chunk_block_new(size_t n, size_t chunksize);
/* Chunk k's header, with one more reference (for its call). */
cf__chunk_result *cf__chunk_block_take(cf__chunk_block *b, size_t k);
void cf__chunk_block_unref(cf__chunk_block *b); /* NULL-safe */

/* Run a chunk call (call->count > 0) in this thread; the call's `into`
 * reference, if any, goes with the result. NULL when out of memory. */
cf__chunk_result *cf__run_chunk(cf__call *call);
/* Zeroed but for values, which is allocated with it (one block) and written
 * up to count. NULL when out of memory. */
cf__chunk_result *cf__chunk_result_new(size_t capacity);
/* Free a cf__chunk_result (or, for a header of a block, what it owns and
 * its reference to the block). */
void cf__chunk_result_free(void *chunk);
/* Record that item `count` failed; takes `message` (may be NULL: cf_strerror(code)). */
void cf__chunk_result_fail(cf__chunk_result *chunk, int status, int code, char *message, int signal,
                           int exit_status);
/* Append one result (count < capacity). add_copy takes `bytes` (owned copy of
 * `size` bytes): 0, or CF_ENOMEM with bytes freed and nothing appended. */
void cf__chunk_result_add_value(cf__chunk_result *chunk, void *value);
int cf__chunk_result_add_copy(cf__chunk_result *chunk, void *bytes, size_t size);

/* ------------------------------------------------------------------------ */
/* future.c                                                                  */
/* ------------------------------------------------------------------------ */

/* How cf__future_wait_done spins before parking on a condition variable
 * (waking from one costs 5-15 us, more than most thread-pool tasks). */
enum {
    CF__SPIN_NONE = 0,  /* futures made by cf_future_new: completed by anyone */
    CF__SPIN_PAUSE = 1, /* thread pool: completions come within microseconds
                           from another CPU; busy-wait briefly, then park */
    CF__SPIN_YIELD = 2, /* process pool: completions come after a pipe round
                           trip through the manager thread; only yield */
};

typedef enum cf__state {
    CF__PENDING,
    CF__RUNNING,
    CF__CANCELLED,
    CF__CANCELLED_NOTIFIED,
    CF__FINISHED,
} cf__state;

/* Something waiting on a future (cf_wait, as_completed, map, result). Its
 * notify runs in the completing thread WITH the future's lock held: it must be
 * short, must not block and must not call into that future. The future unlinks
 * the listener before notifying it. */
typedef struct cf__listener cf__listener;
struct cf__listener {
    cf__listener *prev, *next;
    bool linked;
    void (*notify)(cf__listener *l, cf_future *f);
    void *data;
};

typedef struct cf__callback cf__callback;
struct cf__callback {
    cf__callback *next;
    cf_done_fn fn;
    void *userdata;
};

struct cf_future {
    uv_mutex_t lock;
    atomic_int state; /* cf__state; see future.c on who changes it how */
    atomic_int refs;
    int status;                  /* finished: 0, CF_ETASK, CF_EBROKEN or CF_ETIMEDOUT */
    unsigned char spin_wait;     /* how a waiter spins before it blocks (CF__SPIN_*),
                                    set by the backend that will complete it */
    atomic_bool submit_returned; /* thread pool: its submit is done with the pool */
    bool recyclable;             /* from libc's malloc: may go to future_cache.c */
    void *value;
    void *owned; /* freed with owned_free when the future goes */
    void (*owned_free)(void *);
    size_t result_size;      /* cf_future_result_size */
    cf_exception *exception; /* when status != 0 */
    cf_done_fn first_fn;     /* inline: most futures have at most one callback */
    void *first_userdata;
    cf__callback *callbacks; /* the rest, in order (first_fn set first) */
    cf__listener *listeners; /* doubly linked, unordered */

    /* Executor side: what to run, and the backend's links. */
    cf__call call;
    cf_future *queue_next; /* intrusive queue link, backend-owned */
    cf_future *queue_prev; /* thread pool: the FIFO is linked both ways */
    uint64_t backend_id;   /* backend-owned (process pool: task id; thread
                              pool: the pool, see cf__wait_helps) */
};

/* A new pending future with `refs` references (the caller's, plus the
 * executor's). NULL when out of memory. */
cf_future *cf__future_new(int refs);

/* future_cache.c: freed futures kept per thread, their lock initialised,
 * while the allocator is the default (cf__alloc_is_default). A cached
 * future of this thread, or NULL; keep f (recyclable, its lock initialised,
 * nothing else to free) or free it. */
cf_future *cf__future_cache_take(void);
void cf__future_cache_put(cf_future *f);
/* Register l unless the future is already done: true if added, false if done. */
bool cf__future_listen(cf_future *f, cf__listener *l);
/* Remove l if it is still linked (safe after it fired). */
void cf__future_unlisten(cf_future *f, cf__listener *l);

/* Finish a running (or pending) future. All return 0 or CF_EINVALIDSTATE;
 * all take ownership of what they are given, also on failure. */
int cf__future_set_outcome(cf_future *f, cf__outcome *out);
/* Result = value, plus `owned` to free with owned_free when the future goes
 * (a chunk result, or copy bytes with result_size). */
int cf__future_set_owned(cf_future *f, void *value, void *owned, void (*owned_free)(void *),
                         size_t result_size);
/* Exception with `status` as what cf_future_result reports (CF_ETASK,
 * CF_EBROKEN, CF_ETIMEDOUT). `message` is copied (NULL: cf_strerror(code)). */
int cf__future_set_failure(cf_future *f, int status, int code, const char *message, int signal,
                           int exit_status);
/* Wait (spinning briefly first) until done or deadline: 0 or CF_ETIMEDOUT. */
int cf__future_wait_done(cf_future *f, uint64_t deadline);

static inline cf__state cf__future_state(cf_future *f)
{
    return (cf__state)atomic_load_explicit(&f->state, memory_order_acquire);
}
static inline bool cf__state_done(cf__state s)
{
    return s == CF__FINISHED || s == CF__CANCELLED || s == CF__CANCELLED_NOTIFIED;
}

/* ------------------------------------------------------------------------ */
/* thread_pool.c: nested waits (API.md "Nested parallelism")                 */
/* ------------------------------------------------------------------------ */

/* The thread pool whose worker this thread is, or NULL. */
extern _Thread_local cf_executor *cf__worker_pool __attribute__((tls_model("initial-exec")));

/* Whether this thread, waiting for f, should run queued tasks meanwhile: it
 * is a worker of the thread pool f was submitted to. (Only the thread pool
 * spins with CF__SPIN_PAUSE, and it stores itself in backend_id.) */
static inline bool cf__wait_helps(const cf_future *f)
{
    cf_executor *pool = cf__worker_pool;
    return pool && f->spin_wait == CF__SPIN_PAUSE && f->backend_id == (uintptr_t)pool;
}

/* In a fork() child: the forking thread is no worker of a pool any more
 * (fork.c): its waits must not run the parent's copied queue. */
void cf__thread_pool_forget_worker(void);
/* The same for a process pool's manager thread (remote_pool.c). */
void cf__remote_forget_manager(void);

/* In a worker of a thread pool: run the newest of the pool's queued tasks;
 * false when none is queued. */
bool cf__help_once(void);
/* In a worker of a thread pool: run the pool's queued tasks, newest first,
 * until ev is set or the deadline passes (a task already started runs to
 * its end); then 0 if ev is set, else CF_ETIMEDOUT, as cf__event_wait. */
int cf__help_until(cf__event *ev, uint64_t deadline);

/* ------------------------------------------------------------------------ */
/* done_queue.c: futures in completion order (as_completed, unordered map)   */
/* ------------------------------------------------------------------------ */

typedef struct cf__done_queue cf__done_queue;

/* One watched future's place in the queue; embed it in your own record.
 * (listener.data is the queue, set by cf__done_queue_watch.) */
typedef struct cf__done_item cf__done_item;
struct cf__done_item {
    cf__listener listener; /* first: the notified listener is the item */
    cf__done_item *next;   /* in the queue, under its lock */
};

struct cf__done_queue {
    cf__event ready; /* its mutex guards the list; `set` while the list is not empty */
    cf__done_item *head, *tail;
};

int cf__done_queue_init(cf__done_queue *q); /* 0 or CF_ESYSTEM */
/* Every watched item must have been unwatched (or popped) first. */
void cf__done_queue_destroy(cf__done_queue *q);
/* Append `item` once f is done: at once when it is done already or f is
 * NULL, else from the thread that completes it. */
void cf__done_queue_watch(cf__done_queue *q, cf__done_item *item, cf_future *f);
/* Stop watching f (NULL-safe, and safe after the item was appended): after
 * this the queue no longer touches the item on f's behalf. */
void cf__done_queue_unwatch(cf__done_item *item, cf_future *f);
/* The oldest appended item, waiting until the deadline: 0 and *item, or
 * CF_ETIMEDOUT and NULL. Only call it while an item is still to come.
 * help: this thread is a worker of a thread pool the watched futures belong
 * to, and runs its queued tasks while it waits (cf__help_until). */
int cf__done_queue_pop(cf__done_queue *q, uint64_t deadline, bool help, cf__done_item **item);
/* Forget every appended item (unwatch the futures first). */
void cf__done_queue_clear(cf__done_queue *q);

/* ------------------------------------------------------------------------ */
/* parallel_for.c: a loop whose chunks the caller and the workers share     */
/* ------------------------------------------------------------------------ */

/* cf_parallel_for's loop: chunk c covers items [c * grain, min((c + 1) *
 * grain, n)). Whoever takes part calls cf__loop_work, which takes chunks
 * from `next` until none is left, so a slow thread takes fewer. */
typedef struct cf__loop {
    cf_range_fn fn;
    void *ctx;
    size_t n, grain, chunks;
    const unsigned char *in;
    size_t in_size;
    unsigned char *out;
    size_t out_size;
    atomic_bool failed; /* a chunk failed: start no more */
    /* The first failure, written by the thread that set `failed` and read
     * by the caller once every thread has finished with the loop. */
    int fail_status;
    int fail_code;
    char *fail_message; /* owned, or NULL: cf_strerror(fail_code) */
    /* The next chunk to take, on a line of its own: every thread takes from
     * it, and the fields above are read at every chunk. */
    alignas(64) atomic_size_t next;
} cf__loop;

/* Take and run chunks until none is left or one failed. Any thread; a
 * worker may run it as a task. */
void cf__loop_work(cf__loop *loop);
/* One take of cf__loop_work: false when none is left or one failed. */
bool cf__loop_work_some(cf__loop *loop);

/* ------------------------------------------------------------------------ */
/* executor.c: the backend ops and what every backend shares                 */
/* ------------------------------------------------------------------------ */

/* A backend fills one const cf__executor_ops with designated initializers. */
typedef struct cf__executor_ops {
    const char *name;
    /* Tasks run in this process: a call may point into the caller's memory
     * (cf_map's chunks borrow its args array) instead of copying it. */
    bool in_process;
    /* Queue f (f->call says what to run). On success the executor owns one
     * reference to f, counted by the caller, and releases it once the future
     * is done. Must not block on running tasks. Returns 0, CF_ESHUTDOWN,
     * CF_EBROKEN, CF_ENOMEM, CF_ETOOBIG, CF_ESYSTEM; on failure f is untouched. */
    int (*submit)(cf_executor *ex, cf_future *f);
    /* As cf_executor_shutdown (ex not NULL). May block (wait=true) on the
     * running tasks and on joining workers, except when called from one of
     * the executor's own threads, where it never waits. */
    int (*shutdown)(cf_executor *ex, bool wait, bool cancel_futures);
    /* Shut down without waiting and send signum to every worker. NULL: the
     * backend has no workers to signal (CF_ENOTSUP). */
    int (*signal_workers)(cf_executor *ex, int signum);
    /* cf_executor_free's shutdown, called once. From one of the executor's
     * own threads (a task or a done-callback) it must not wait for itself: it
     * shuts down without waiting and returns false; the executor's last
     * thread then calls cf__executor_unhold as it ends. From any other
     * thread: shutdown(wait=true), then true. */
    bool (*release)(cf_executor *ex);
    /* Free the executor: its threads have ended (or are ending: the last
     * one calls this). */
    void (*destroy)(cf_executor *ex);
    /* In a fork() child, whose copy of the executor has none of its threads
     * or workers: free what can be freed without them. Never blocks. */
    void (*forget)(cf_executor *ex);
    /* cf_executor_stats_get (out zeroed): never blocks on tasks. */
    void (*stats)(cf_executor *ex, cf_executor_stats *out);
    /* cf_parallel_for: run the loop (loop->chunks >= 1), in this process
     * with the calling thread taking part (cf__loop_work), or elsewhere with
     * each chunk a task (remote_parallel.c); return once no thread works on
     * it any more. Blocks on the chunks; from one of the executor's own
     * threads it must not deadlock. Returns 0 (a chunk's failure is recorded
     * in the loop), or with this thread's last error set CF_ESHUTDOWN,
     * CF_EBROKEN, CF_ENOMEM, CF_ETOOBIG, CF_EINVALIDSTATE, CF_ESYSTEM.
     * NULL: not supported (CF_ENOTSUP). */
    int (*parallel_for)(cf_executor *ex, cf__loop *loop);
} cf__executor_ops;

/* Every backend's executor struct starts with this. */
struct cf_executor {
    const cf__executor_ops *ops;
    unsigned fork_generation; /* cf__fork_generation() when made */
    atomic_bool releasing;    /* cf_executor_free has begun */
    /* The user's hold, plus one per shutdown or signal_workers under way,
     * which may run done-callbacks that free the executor: the last one to
     * let go destroys it. */
    atomic_int holds;
};

/* Whether ex was made before this process was fork()ed off its parent: its
 * threads and workers stayed there (calls fail with CF_EBROKEN). */
bool cf__executor_forked(const cf_executor *ex);

/* Drop a hold (see struct cf_executor); the last one destroys ex. */
void cf__executor_unhold(cf_executor *ex);

/* Fill the common part; 0, or CF_ESYSTEM when the fork handlers cannot be
 * installed. */
int cf__executor_init(cf_executor *ex, const cf__executor_ops *ops);

/* Create a future for `call` and submit it to ex; NULL with last error.
 * Takes ownership of the call's owned memory (also on failure). */
cf_future *cf__submit_call(cf_executor *ex, cf__call *call);

/* ------------------------------------------------------------------------ */
/* fork.c: executors and descriptors across fork()                           */
/* ------------------------------------------------------------------------ */

/* Install the fork handlers (once per process): 0 or CF_ESYSTEM. */
int cf__fork_init(void);
/* How many times this process's ancestors forked it off since the library
 * was loaded: an executor whose generation differs is a fork() child's copy. */
unsigned cf__fork_generation(void);
/* Descriptors a fork() child closes at once: register one while it is open
 * (0 or CF_ENOMEM), and close it with cf__fork_close_fd, which unregisters
 * and closes under one lock (close_fn(arg) closes it; NULL: close(fd)). */
int cf__fork_register_fd(int fd);
void cf__fork_close_fd(int fd, void (*close_fn)(void *arg), void *arg);

/* ------------------------------------------------------------------------ */
/* fd.c and objfile.c: descriptors, and the files code comes from            */
/* ------------------------------------------------------------------------ */

/* fd itself when it is not 0, 1 or 2; else a close-on-exec copy above 2 (fd
 * is closed): -1 with errno when that fails. */
int cf__fd_above_stdio(int fd);
/* The same with min for 3: fd, or its close-on-exec copy at min or above. */
int cf__fd_at_least(int fd, int min);
bool cf__fd_is_open(int fd);
/* Whether n more descriptors (up to 16) can be opened now: 0, or -1 with
 * errno (libuv aborts when its first loop cannot make its descriptors). */
int cf__fd_check_room(int n);
/* fd is about to be closed where the sanitizers cannot see it (by libuv). */
void cf__fd_closing_unseen(int fd);
/* Occupy the standard descriptors that are closed (with /dev/null) while
 * descriptors that must not take their numbers are made, then let go. */
void cf__stdio_hold(int held[3]);
void cf__stdio_release(const int held[3]);

#define CF__OBJECT_PATH_MAX 4096
typedef struct cf__object_file {
    char path[CF__OBJECT_PATH_MAX]; /* absolute */
    dev_t dev;
    ino_t ino;
    bool deleted; /* the file was removed since it was mapped */
} cf__object_file;
/* The file mapped at addr: 0, CF_EINVAL (no file there), CF_ESYSTEM; errno
 * says why on failure. */
int cf__object_file_of(uintptr_t addr, cf__object_file *out);
/* Whether f->path still names the file that was mapped. */
bool cf__object_file_current(const cf__object_file *f);

/* Number of CPUs this process may use (>= 1); asked once, then cached. */
int cf__cpu_count(void);

/* Tell the CPU we are busy-waiting (cheaper for the sibling hyper-thread). */
static inline void cf__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

#endif /* CF_INTERNAL_H */
