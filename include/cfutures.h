/** @file cfutures.h
 * @brief cfutures: Python's concurrent.futures for C.
 *
 * One header, the whole public API. Names follow Python's module:
 * @verbatim
   ThreadPoolExecutor  -> cf_thread_pool_new      Future.result() -> cf_future_result
   ProcessPoolExecutor -> cf_process_pool_new     executor.map()  -> cf_map
   executor.submit()   -> cf_submit               wait()          -> cf_wait
   with ... as ex:     -> CF_WITH / cf_autoptr    as_completed()  -> cf_as_completed_new
   @endverbatim
 *
 * @par Conventions
 * - Status: 0 is success, failures are negative CF_E* codes (cf_strerror names them).
 * - Functions returning a pointer return NULL on failure; cf_last_error() then
 *   gives the code (per thread, like errno).
 * - Timeouts are double seconds: CF_FOREVER (negative) waits without limit, 0 polls;
 *   NaN is refused with CF_EINVAL.
 * - Every destructor (cf_future_unref, cf_executor_free, cf_map_free,
 *   cf_as_completed_free, cf_completion_queue_free) accepts NULL.
 * - Every function is thread-safe unless its comment says otherwise: futures and
 *   executors may be shared between threads; one iterator (cf_map_iter,
 *   cf_as_completed) is used by one thread at a time.
 * - Option structs (and cf_executor_stats) end with `uint64_t cf_reserved[8]`,
 *   from which later versions take new fields without changing the struct's
 *   size. Leave it zero: designated initializers, `= {0}` or memset do. A
 *   non-zero word is an option this library does not know: CF_ENOTSUP.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CFUTURES_H
#define CFUTURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfutures-version.h" /* generated from meson.build; see "Version" below */

#ifdef __cplusplus
extern "C" {
#endif

/** Marks the public functions: exported from libcfutures (whose other symbols
 * are hidden) while it is built, nothing for its users. */
#if defined(CF_BUILDING) && (defined(__GNUC__) || defined(__clang__))
#define CF_API __attribute__((visibility("default")))
#else
#define CF_API
#endif

/** Lets GCC and Clang check the printf-style arguments of cf_raise and
 * cf_future_set_exception (argument `fmt` is the format, `args` the first
 * argument it formats). */
#if defined(__GNUC__) || defined(__clang__)
#define CF_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CF_PRINTF(fmt, args)
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                   */
/* ------------------------------------------------------------------------ */

/** @addtogroup cfutures_executors
 * @par Version
 * The header's version comes from `<cfutures-version.h>`, generated from
 * meson.build: CFUTURES_VERSION_MAJOR, _MINOR, _PATCH, CFUTURES_VERSION_STRING
 * ("0.2.0"), CFUTURES_VERSION_HEX ((major << 16) | (minor << 8) | patch) and
 * CFUTURES_CHECK_VERSION(major, minor, patch), true when the header is at
 * least that version (all usable in `#if`).
 * @{ */

/** The running library's version as CFUTURES_VERSION_HEX: it may differ from
 * the header's when the program runs with another libcfutures of the same
 * soname (README "ABI policy"). Never fails, never blocks. */
CF_API unsigned cf_version(void);
/** The same as a string, e.g.\ "0.2.0": static, never NULL. */
CF_API const char *cf_version_string(void);

/** @} */

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/** @addtogroup cfutures_errors
 * @{ */

/** X(name, value, description): the single table the enum, cf_strerror and
 * cf_err_name are generated from. */
#define CF_ERROR_MAP(X)                                                                            \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(ETIMEDOUT, -3, "timed out")                                                                  \
    X(ECANCELLED, -4, "future was cancelled")                                                      \
    X(ESHUTDOWN, -5, "executor is shut down")                                                      \
    X(ETASK, -6, "task failed")                                                                    \
    X(EBROKEN, -7, "executor is broken or its worker died")                                        \
    X(EINVALIDSTATE, -8, "invalid state for this operation")                                       \
    X(ETOOBIG, -9, "data larger than the executor's message limit")                                \
    X(ENOTSUP, -10, "operation not supported by this executor")                                    \
    X(ESYSTEM, -11, "a system call failed")

/** The status codes: CF_OK (0) is success, the others are failures, negative,
 * each CF_ followed by a name of CF_ERROR_MAP, which gives its value and
 * description (cf_strerror's text): CF_EINVAL, CF_ENOMEM, CF_ETIMEDOUT,
 * CF_ECANCELLED, CF_ESHUTDOWN, CF_ETASK, CF_EBROKEN, CF_EINVALIDSTATE,
 * CF_ETOOBIG, CF_ENOTSUP, CF_ESYSTEM. Each function says which it returns. */
typedef enum cf_error {
    CF_OK = 0, /**< success */
#define CF__ERROR_ENUM(name, value, text) CF_##name = value,
    CF_ERROR_MAP(CF__ERROR_ENUM)
#undef CF__ERROR_ENUM
} cf_error;

/** Human-readable description of a code ("unknown error" for others). Never NULL. */
CF_API const char *cf_strerror(int code);
/** The code's name, e.g.\ "CF_ETIMEDOUT" ("CF_OK" for 0, "CF_UNKNOWN" for others). Never NULL. */
CF_API const char *cf_err_name(int code);
/** The code of the last failure of a pointer-returning cfutures call in this
 * thread (0 if none). Successful calls do not reset it. */
CF_API int cf_last_error(void);
/** The message of that failure, naming its cause where the library knows it
 * (a path, the errno text, the dynamic loader's error): never NULL, "" when
 * there was none. Valid until the next cfutures call in this thread. */
CF_API const char *cf_last_error_message(void);

/** @ingroup cfutures_waiting
 * Wait without limit. */
#define CF_FOREVER (-1.0)

/** Replace the allocator used for every allocation the library makes itself
 * (libuv and libc keep their own). Call it before any other cfutures call, or
 * with no future, executor or iterator alive. NULL for all three restores
 * malloc/realloc/free. The blocks returned need only be aligned as malloc's
 * are (alignof(max_align_t)); the library asks for no stricter alignment.
 * Returns 0, or CF_EINVAL when only some are NULL. Not thread-safe. */
CF_API int cf_set_alloc_funcs(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                              void (*free_fn)(void *));

/** @} */

/* ------------------------------------------------------------------------ */
/* Tasks                                                                     */
/* ------------------------------------------------------------------------ */

/** @addtogroup cfutures_futures
 * @{ */

/** One task type for every backend. On a thread pool, arg and the result are
 * passed as they are; on a process pool they travel as pointer-sized integers
 * (`(void *)(intptr_t)n`), so numeric tasks run unchanged on both. */
typedef void *(*cf_fn)(void *arg);

/** Inside a task: fail it. Records `code` (any int, e.g. a CF_E* or your own)
 * and a printf-formatted message as the task's exception; the future then
 * reports CF_ETASK. Returns NULL so a task can `return cf_raise(...)`.
 * Called outside a task it only sets cf_last_error() to `code` (and
 * cf_last_error_message() to the message). */
CF_API void *cf_raise(int code, const char *fmt, ...) CF_PRINTF(2, 3);

/** Inside a task: `return cf_return_copy(p, n);` makes the result a copy of
 * these n bytes, owned by the future (cf_future_result gives a pointer to it,
 * cf_future_result_size its size). On a process pool the bytes cross the pipe.
 * Returns NULL (and the task fails with code CF_ENOMEM) when out of memory;
 * outside a task returns NULL with cf_last_error() CF_EINVAL. */
CF_API void *cf_return_copy(const void *data, size_t size);

/* ------------------------------------------------------------------------ */
/* Futures                                                                   */
/* ------------------------------------------------------------------------ */

/** A future: the eventual outcome of a task (Python's Future), pending,
 * running, cancelled or finished, with a result or an exception. Opaque and
 * reference-counted (cf_future_ref, cf_future_unref). */
typedef struct cf_future cf_future;
/** A done-callback (cf_future_add_done_callback): called once with the done
 * future and the userdata given with it. */
typedef void (*cf_done_fn)(cf_future *f, void *userdata);

/** How a task failed: what cf_future_exception and cf_map_exception give. */
typedef struct cf_exception {
    int code;            /**< the task's code, or CF_EBROKEN for a dead worker */
    const char *message; /**< human-readable, never NULL */
    int signal;          /**< signal that killed the worker, else 0 */
    int exit_status;     /**< worker exit status when it exited, else -1 */
} cf_exception;

/** @name Reference counting
 * @{ */
/** Reference counting: cf_submit* and cf_future_new hand the caller one
 * reference; every cf_future_ref needs one cf_future_unref. The future is freed
 * (with its result bytes and exception) when the last reference goes.
 * cf_future_ref returns f (NULL for NULL). cf_future_unref accepts NULL. */
CF_API cf_future *cf_future_ref(cf_future *f);
CF_API void cf_future_unref(cf_future *f);
/** @} */

/** Cancel a pending future: true if it is (now) cancelled, false if it is
 * running or finished (or f is NULL). Runs the done-callbacks in this thread. */
CF_API bool cf_future_cancel(cf_future *f);
/** @name State queries
 * @{ */
/** State queries (false for NULL). done: cancelled or finished. */
CF_API bool cf_future_cancelled(cf_future *f);
CF_API bool cf_future_running(cf_future *f);
CF_API bool cf_future_done(cf_future *f);
/** @} */

/** Wait up to `timeout` for the result.
 * @retval 0             done; `*value` is the result (for a cf_return_copy result a
 *                       pointer to bytes that live as long as the future)
 * @retval CF_ETIMEDOUT  the timeout passed, the future is still pending or running;
 *                       also when a process-pool task overran its task_timeout
 * @retval CF_ECANCELLED the future was cancelled
 * @retval CF_ETASK      the task failed (cf_raise): cf_future_exception says how
 * @retval CF_EBROKEN    the executor broke, or the worker running the task died
 * @retval CF_EINVAL     f is NULL, or timeout is NaN
 * @retval CF_ESYSTEM    a mutex or condition variable could not be made to block on
 *
 * `value` may be NULL to just wait. `*value` is set only on success. Blocks. */
CF_API int cf_future_result(cf_future *f, double timeout, void **value);
/** Size in bytes of a cf_return_copy result, else 0. Does not wait. */
CF_API size_t cf_future_result_size(cf_future *f);
/** Wait up to `timeout` for the outcome. Returns 0 when the future finished:
 * `*exc` is NULL on success, else the exception (owned by the future, valid as
 * long as it lives). Returns CF_ETIMEDOUT, CF_ECANCELLED, CF_EINVAL (NULL f
 * or exc, NaN timeout) or CF_ESYSTEM. Blocks. */
CF_API int cf_future_exception(cf_future *f, double timeout, const cf_exception **exc);
/** Call cb(f, userdata) once the future is done (finished or cancelled): in the
 * thread that completes it (a thread pool's worker, a process pool's manager
 * thread, or whoever calls cf_future_cancel / cf_future_set_*), in
 * registration order, or at once in this thread if it is already done.
 * The future keeps no reference to userdata's memory beyond calling cb once.
 * Callbacks must not block for long; they may call any cfutures function,
 * including releasing f. Does not block. Returns 0, CF_EINVAL or CF_ENOMEM
 * (then cb will not be called). */
CF_API int cf_future_add_done_callback(cf_future *f, cf_done_fn cb, void *userdata);

/** @name For executor authors and tests, as in Python.
 * @{ */
/** A new pending future, one reference; NULL with CF_ENOMEM or CF_ESYSTEM. */
CF_API cf_future *cf_future_new(void);
/** pending -> running, returns true. cancelled -> cancelled-and-notified, wakes
 * waiters, returns false. In any other state returns false and sets
 * cf_last_error() to CF_EINVALIDSTATE (it sets it to 0 on the cancelled path). */
CF_API bool cf_future_set_running_or_notify_cancel(cf_future *f);
/** Finish the future with a value: 0, CF_EINVALIDSTATE when already finished or
 * cancelled, CF_EINVAL for NULL. Wakes waiters, then runs the done-callbacks in
 * this thread. */
CF_API int cf_future_set_result(cf_future *f, void *value);
/** Finish the future with an exception (code and printf-style message). The
 * future reports CF_ETASK, except for code CF_EBROKEN or CF_ETIMEDOUT, which it
 * reports as they are. Returns like cf_future_set_result. */
CF_API int cf_future_set_exception(cf_future *f, int code, const char *fmt, ...) CF_PRINTF(3, 4);
/** @} */

/** @} */

/* ------------------------------------------------------------------------ */
/* Executors                                                                 */
/* ------------------------------------------------------------------------ */

/** @addtogroup cfutures_executors
 * @{ */

/** An executor: a thread pool (cf_thread_pool_new) or a process pool
 * (cf_process_pool_new) that runs the tasks given to cf_submit, cf_map and
 * cf_parallel_for. Opaque; the caller's until cf_executor_free. */
typedef struct cf_executor cf_executor;

/** The options of cf_thread_pool_new (Python's ThreadPoolExecutor arguments). */
typedef struct cf_thread_pool_opts {
    int max_workers;                   /**< 0: min(32, ncpu + 4), as Python; < 0: CF_EINVAL */
    const char *thread_name_prefix;    /**< threads are named `"<prefix>_<n>"`, n from 0
                                            (NULL: `"ThreadPoolExecutor-<k>"`); Linux keeps
                                            the first 15 bytes */
    int (*initializer)(void *initarg); /**< runs first in each worker thread;
                                            nonzero return: the pool is broken */
    void *initarg;                     /**< initializer's argument */
    uint64_t cf_reserved[8];           /**< zero (later versions' options); else CF_ENOTSUP */
} cf_thread_pool_opts;

/** How a process pool starts its workers (cf_process_pool_opts.start_method).
 * Whatever the way, a worker reads /dev/null as stdin, writes to the
 * program's stdout and stderr, inherits no other descriptor but its own
 * channel (two pipes, descriptors 3 and 4, close-on-exec, so what a task
 * runs does not inherit them), starts
 * with every signal at its default action and unblocked, and has the
 * program's environment unchanged. */
typedef enum cf_start_method {
    /** CF_START_EXEC where the program is linked with libcfutures, else
     * CF_START_HELPER (libcfutures came in through dlopen: a plugin, a
     * Python or other interpreter's extension). */
    CF_START_AUTO = 0,
    /** Re-run the program's executable (through the dynamic loader again if
     * it was started that way). The worker takes over after the program's
     * static initialisers (C++ globals and std::cout work in a task) and
     * before main, which never runs in a worker. Costs an exec of the
     * program and its initialisers per worker. Needs libcfutures linked into
     * the program (directly, or as a static library); otherwise the worker
     * starts in libcfutures' own constructor, before the program's
     * initialisers have run. Not for a libcfutures that a plugin brought in
     * through dlopen(), which the re-run program would not load before its
     * main: cf_process_pool_new then fails with CF_ENOTSUP and says to use
     * CF_START_HELPER (CF_START_AUTO picks it there). */
    CF_START_EXEC = 1,
    /** Start the cfutures-worker helper installed with the library (in
     * libexecdir, found relative to libcfutures; $CFUTURES_WORKER_HELPER
     * overrides), which loads this very libcfutures and then, by path, each
     * library that holds a task function (checked by build-id). Functions of
     * the main program itself cannot run there (their tasks fail saying so).
     * Costs an exec of a small program plus loading those libraries. */
    CF_START_HELPER = 2,
    /** fork() the pool's manager thread: the worker is a copy of the program
     * as it is at that moment, so any function in it can run, at the cost of
     * copying the process's page tables (and, later, pages it writes). Only
     * the forking thread exists in the child: a task must not rely on locks
     * or state that other threads of the program held at that moment. The
     * program's stdio buffers are flushed before each fork (and stdout's and
     * stderr's emptied in the child), so pending output is written once. The
     * worker is an ordinary child, so a program that reaps every child or
     * ignores SIGCHLD may take its exit status (the exception then says so). */
    CF_START_FORK = 3,
} cf_start_method;

/** The options of cf_process_pool_new (Python's ProcessPoolExecutor arguments). */
typedef struct cf_process_pool_opts {
    int max_workers;                   /**< 0: number of CPUs; < 0: CF_EINVAL */
    int max_tasks_per_child;           /**< 0: unlimited; else the worker is replaced after N tasks;
                                            < 0: CF_EINVAL */
    double task_timeout;               /**< 0: none; else a task running longer is killed with its
                                            worker, fails with CF_ETIMEDOUT (result and exception
                                            code), and the worker is replaced.
                                            < 0 or > 1e9: CF_EINVAL */
    int (*initializer)(void *initarg); /**< runs in each worker; initarg travels as a value */
    void *initarg;                     /**< initializer's argument */
    size_t max_message;                /**< 0: 64 MiB; bigger data fails with CF_ETOOBIG at submit;
                                            values above 1 GiB count as 1 GiB */
    cf_start_method start_method;      /**< 0: CF_START_AUTO; another value: CF_EINVAL */
    uint64_t cf_reserved[8];           /**< zero (later versions' options); else CF_ENOTSUP */
} cf_process_pool_opts;

/** @name Creating a pool
 * @{ */
/** Create a pool (opts may be NULL: all defaults). Workers start lazily, on
 * demand, and idle ones are reused. NULL on failure with cf_last_error() and
 * cf_last_error_message(): CF_EINVAL (bad option), CF_ENOMEM, CF_ESYSTEM (a
 * system call failed: the message gives it and its errno's words),
 * CF_ENOTSUP for a non-zero cf_reserved word (the message: "an option this
 * libcfutures does not know", and which word), and for a process pool
 * CF_ENOTSUP when its start method cannot work here (the message says why,
 * e.g. no cfutures-worker helper was found).
 * A process pool's workers start as start_method says (see cf_start_method;
 * no code is needed in the program); a manager thread owns them. Workers are
 * watched through pidfds (Linux 5.4 and later), never through SIGCHLD: the
 * program's SIGCHLD disposition, handler and mask stay its own. Safe to call
 * from a program that runs threads, whose standard descriptors are closed,
 * or that later fork()s (see cf_executor_free).
 * Once every worker is busy, a process pool sends each a task or more ahead
 * (more the shorter tasks run), so that the next starts without a round
 * trip. A task sent ahead runs after the worker's current one, even if
 * another worker goes idle meanwhile (unlike Python's shared queue): tasks
 * that wait for one another, or for the program to act on their start,
 * should not outnumber the workers. */
CF_API cf_executor *cf_thread_pool_new(const cf_thread_pool_opts *opts);
CF_API cf_executor *cf_process_pool_new(const cf_process_pool_opts *opts);
/** @} */

/** @} */

/** @addtogroup cfutures_loop
 * @par Nested parallelism (thread pools)
 * A task or done-callback running on a
 * thread pool that waits for futures of that same pool (cf_future_result,
 * cf_future_exception, cf_wait, cf_as_completed_next, cf_map_next,
 * cf_map_next_batch, cf_parallel_for) runs the pool's queued tasks in its
 * own thread while it waits, the newest first, as TBB does: a recursive
 * divide-and-conquer that submits its halves and waits never deadlocks,
 * even with max_workers = 1 (Python's ThreadPoolExecutor deadlocks), and
 * its stack grows with the recursion's depth. Hence such a wait may return
 * later than its timeout, by the rest of the task it was running when the
 * timeout passed; and a task that waits while it holds a lock may run,
 * in its thread, another task that takes the same lock. Waiting from any
 * other thread, or for another executor's futures, only blocks. */

/** @addtogroup cfutures_executors
 * @{ */

/** Schedule fn(arg). Returns a new future (one reference, yours to release with
 * cf_future_unref), or NULL with cf_last_error(): CF_EINVAL (NULL ex or fn),
 * CF_ESHUTDOWN, CF_EBROKEN, CF_ENOMEM, CF_ESYSTEM. Never blocks on running tasks. */
CF_API cf_future *cf_submit(cf_executor *ex, cf_fn fn, void *arg);
/** Like cf_submit, but copies `size` bytes of `data` now (the caller may reuse
 * its buffer at once); the task receives a pointer to its copy, valid until the
 * task returns. Also CF_ETOOBIG when size exceeds the executor's message limit,
 * and CF_EINVAL for NULL data with size > 0. */
CF_API cf_future *cf_submit_copy(cf_executor *ex, cf_fn fn, const void *data, size_t size);
/** Stop accepting work. cancel_futures: cancel every task not yet started.
 * wait: block until every started task has finished and the workers exited;
 * from one of the executor's own tasks or done-callbacks it does not wait (a
 * pool cannot wait for itself). Safe to call twice. Returns 0, CF_EINVAL
 * (NULL ex), or CF_EBROKEN on a fork() child's copy. */
CF_API int cf_executor_shutdown(cf_executor *ex, bool wait, bool cancel_futures);
/** @name Stopping the workers
 * @{ */
/** Process pools: shutdown(wait=false, cancel_futures=true), then SIGTERM
 * (terminate: with SIGCONT, so a stopped worker acts on it) or SIGKILL (kill)
 * every worker; the tasks they were running fail with CF_EBROKEN. Returns
 * once the signals are sent: 0, CF_EINVAL, CF_EBROKEN on a fork() child's
 * copy, or CF_ENOTSUP on a thread pool. */
CF_API int cf_executor_terminate_workers(cf_executor *ex);
CF_API int cf_executor_kill_workers(cf_executor *ex);
/** @} */
/** shutdown(wait=true), then free the executor. Futures stay valid (they are
 * reference-counted). NULL-safe.
 * From one of the executor's own tasks or done-callbacks (a thread pool's
 * worker, a process pool's manager thread): it shuts down without waiting
 * and returns; the work already accepted still completes, and the executor
 * is freed when its last thread ends (so threads may outlive this call
 * then). A done-callback that a shutdown's cancel runs (in the thread that
 * called cf_executor_shutdown) may free the executor: that free waits for
 * the running tasks there, as a free from that thread does (as in Python:
 * so a running task must not wait for what the caller does after the
 * shutdown), and the memory goes when that shutdown returns. From
 * terminate_workers / kill_workers the signals go first, so such a free
 * does not wait for a task they end.
 * In a child made by fork() while the executor existed, the child's copy
 * has none of its threads or workers: every call on it fails with
 * CF_EBROKEN (cf_last_error_message says why), its futures never complete,
 * and this frees the copy without touching the parent's workers. What the
 * parent's manager thread owned at the fork (a process pool's loop and
 * worker records) may be mid-change in the copy: it stays allocated in the
 * child, unread (a leak checker in the child reports it). */
CF_API void cf_executor_free(cf_executor *ex);

/** A snapshot of what an executor is doing (cf_executor_stats_get). */
typedef struct cf_executor_stats {
    size_t workers;                      /**< started and alive (threads, or processes: also those
                                              starting or retiring) */
    size_t idle;                         /**< alive and waiting for work */
    size_t pending;                      /**< submitted, not started: queued (cancelled ones not
                                              counted); on a process pool also the few tasks sent
                                              ahead to a busy worker, which cf_future_running
                                              already reports running, as Python does */
    size_t running;                      /**< being run by a worker now */
    unsigned long long completed;        /**< finished with a result or an exception, since
                                              creation (a map chunk counts once) */
    unsigned long long failed;           /**< of those, with an exception or a dead worker
                                              (a chunk with a failed item counts) */
    unsigned long long cancelled;        /**< cancelled before they started, since creation */
    unsigned long long workers_replaced; /**< process and MPI pools: workers that
                                              died or were recycled (max_tasks_per_child) */
    uint64_t cf_reserved[8];             /**< set to zero (later versions' counts) */
} cf_executor_stats;
/** Fill `*out` with a snapshot (every field; cf_reserved zeroed): counts taken
 * while work goes on. Each is exact once the work it counts is still (a
 * pool whose workers are busy or idle, nothing being submitted, cancelled
 * or handed out); a future that moves between states as the snapshot is
 * taken (a cancel being dropped from the queue, a task on its way to a
 * process-pool worker) may be counted twice or not at all in that one
 * snapshot, never in later ones. Costs the
 * executor's hot path nothing (each worker keeps its own counts; this sums
 * them) and never blocks on tasks: it walks the queue of pending work under
 * the queue's lock, so its cost grows with what is pending. The tasks
 * counted are the program's: its submits and its maps' chunks; a
 * cf_parallel_for counts its tasks on a process or MPI pool (one per few
 * chunks, see cf_parallel_for), and none on a thread pool (its helpers are
 * the pool's own).
 * Returns 0, CF_EINVAL (NULL ex or out), or CF_EBROKEN on a fork() child's
 * copy. */
CF_API int cf_executor_stats_get(cf_executor *ex, cf_executor_stats *out);

/** @} */

/* ------------------------------------------------------------------------ */
/* Waiting for many                                                          */
/* ------------------------------------------------------------------------ */

/** @addtogroup cfutures_waiting
 * @{ */

/** When cf_wait returns (Python's return_when). */
typedef enum {
    CF_ALL_COMPLETED,   /**< once every future is done */
    CF_FIRST_COMPLETED, /**< once any is done */
    CF_FIRST_EXCEPTION, /**< once one finishes with an exception (see cf_wait), else all */
} cf_return_when;

/** Wait until `when` holds or the timeout passes. Reorders fs so that the done
 * futures come first and returns how many are done (>= 0); a timeout is not an
 * error, it returns early. FIRST_EXCEPTION returns when a future finishes with
 * an exception (not a cancel), else when all are done. Futures from different
 * executors mix. Returns CF_EINVAL (fs NULL with n > 0, a NULL entry, bad when,
 * NaN timeout),
 * CF_ENOMEM or CF_ESYSTEM. A cancelled future counts as done at once (as
 * Python's documentation says), before any worker notices the cancel. Blocks. */
CF_API int cf_wait(cf_future **fs, size_t n, double timeout, cf_return_when when);

/** An iterator over futures as they complete (Python's as_completed): made by
 * cf_as_completed_new, advanced by cf_as_completed_next, released by
 * cf_as_completed_free. */
typedef struct cf_as_completed cf_as_completed;
/** Iterate over fs as they complete: the futures already done first, then each
 * as it completes; each distinct future once. The timeout counts from this
 * call. The iterator holds its own references. NULL with CF_EINVAL (also for a
 * NaN timeout), CF_ENOMEM or CF_ESYSTEM. */
CF_API cf_as_completed *cf_as_completed_new(cf_future *const *fs, size_t n, double timeout);
/** 1: `*f` is a done future (borrowed; valid while the iterator lives), 0: all
 * yielded, CF_ETIMEDOUT: the deadline passed with futures still pending (a
 * later call yields those that completed since), CF_EINVAL. Blocks. */
CF_API int cf_as_completed_next(cf_as_completed *it, cf_future **f);
/** Release the iterator and its references to the futures (the futures stay
 * valid for their other holders). Does not block. NULL-safe. */
CF_API void cf_as_completed_free(cf_as_completed *it);

/** @} */

/* ------------------------------------------------------------------------ */
/* Map                                                                       */
/* ------------------------------------------------------------------------ */

/** @addtogroup cfutures_map
 * @{ */

/** The options of cf_map and cf_map_source (Python's map arguments). */
typedef struct cf_map_opts {
    size_t chunksize;  /**< 0 or 1: one task per item; else items per task (both backends) */
    double timeout;    /**< 0: none; else seconds from the cf_map call, as Python */
    size_t buffersize; /**< 0: submit everything at once; else at most this many tasks in flight */
    size_t arg_size;   /**< 0: args[i] passed as values; else args[i] points at arg_size
                            bytes (see cf_map for when they are copied) */
    bool unordered;    /**< yield in completion order instead of input order */
    uint64_t cf_reserved[8]; /**< zero (later versions' options); else CF_ENOTSUP */
} cf_map_opts;

/** The iterator over a map's results: made by cf_map or cf_map_source,
 * advanced by cf_map_next and cf_map_next_batch, released by cf_map_free. */
typedef struct cf_map_iter cf_map_iter;
/** fn over args[0..n). Submits every task now (buffersize 0), or buffersize
 * tasks now and one more on each cf_map_next.
 * Lifetime: as Python's map holds its iterable, the iterator uses the args
 * array (and, with arg_size, the bytes args[i] point at) until cf_map_free:
 * keep them valid and unchanged until then, whatever the buffersize. On a
 * thread pool nothing is copied: a task reads its item in the caller's array
 * and, with arg_size, receives args[i] itself (the caller's bytes, not a
 * copy). On a process pool the items are copied when their task is
 * submitted, since they cross to another process.
 * The iterator is the caller's, to release with cf_map_free. NULL with
 * cf_last_error(): CF_EINVAL (NULL ex or fn, args NULL with n > 0, negative
 * timeout, arg_size with NULL args[i]), CF_ENOTSUP (a non-zero cf_reserved
 * word: an option this libcfutures does not know), CF_ESHUTDOWN, CF_EBROKEN,
 * CF_ENOMEM, CF_ETOOBIG, CF_ESYSTEM. Does not block on tasks, except when
 * a submit fails on a thread pool: then, as cf_map_free does, it waits for
 * the tasks it started that are running already (they read the array). */
CF_API cf_map_iter *cf_map(cf_executor *ex, cf_fn fn, void *const *args, size_t n,
                           const cf_map_opts *opts);
/** @name Map over a generator
 * @{ */
/** Like cf_map over a generator: next_arg(userdata, &arg) returns true and sets
 * arg for each item, false at the end (with arg_size, arg points at arg_size
 * bytes, copied at once). next_arg runs in the thread calling cf_map or
 * cf_map_next, never after cf_map_free or once it returned false. Without
 * buffersize the source is drained at once; with buffersize b an unbounded
 * source works. Returns like cf_map (CF_EINVAL also for NULL next_arg). */
typedef bool (*cf_arg_source)(void *userdata, void **arg);
CF_API cf_map_iter *cf_map_source(cf_executor *ex, cf_fn fn, cf_arg_source next_arg, void *userdata,
                                  const cf_map_opts *opts);
/** @} */
/** 1: `*value` is the next result (a cf_return_copy result stays valid until the
 * next call), 0: the end, < 0: that item's error (CF_ETASK, CF_EBROKEN,
 * CF_ECANCELLED, CF_ETIMEDOUT for the map's timeout, CF_ESHUTDOWN, CF_ENOMEM,
 * ...), after which the rest is cancelled and later calls return 0. CF_EINVAL
 * for a NULL iterator. `value` may be NULL. Blocks until the item is done or
 * the map's timeout passes (without buffersize, and outside the pool's own
 * tasks, it may return up to 50 us after the item is done: it sleeps until a
 * later item is done, so that short items wake it once in a while rather
 * than once each); with buffersize, first submits one more item. */
CF_API int cf_map_next(cf_map_iter *it, void **value);
/** The next results in one go, without a call per item: waits as cf_map_next
 * does for the next result, then sets `*values` to an array of `*count >= 1`
 * results in input order (completion order when unordered): that one and
 * the others of the same task (the rest of its chunk) that are not yielded
 * yet. They count as yielded; the next call goes on after them. The array
 * and the cf_return_copy results in it stay valid until the next call on the
 * iterator (cf_map_next, cf_map_next_batch or cf_map_free). Returns 1 with a
 * batch, 0 at the end, or < 0 with the error cf_map_next would return (the
 * iteration then stops as it does there); CF_EINVAL for a NULL argument.
 * `*values` and `*count` are set only when it returns 1. Mixes freely with
 * cf_map_next. Blocks as cf_map_next does. */
CF_API int cf_map_next_batch(cf_map_iter *it, void *const **values, size_t *count);
/** The exception of the item whose error cf_map_next last returned (NULL if
 * none or not a task failure); valid until cf_map_free. */
CF_API const cf_exception *cf_map_exception(cf_map_iter *it);
/** Cancel whatever has not started and release everything (results included).
 * On a thread pool, where the tasks read args in place, it then waits for
 * the tasks still running (there are some only when the iteration stopped
 * early: an error, the map's timeout, or a free before the end), so that
 * args may go as soon as it returns; a task that never ends blocks it. On a
 * process pool it does not wait: running tasks finish on their own and
 * their results are dropped. NULL-safe. */
CF_API void cf_map_free(cf_map_iter *it);

/** @} */

/* ------------------------------------------------------------------------ */
/* Completions on an event loop                                              */
/* ------------------------------------------------------------------------ */

/** @addtogroup cfutures_event_loops
 * @{ */

/** @brief A completion queue: done-callbacks run by the thread that calls
 * cf_completion_queue_dispatch, an event loop's.
 *
 * Done-callbacks run in the thread that completes the future. A program built
 * around an event loop wants them on its loop thread instead, as libuv's
 * uv_queue_work after_work_cb and Python's loop.run_in_executor give them.
 * A completion queue does that for any loop: hand it a future and a callback,
 * watch its descriptor for reading (epoll, poll, select, GLib's
 * g_unix_fd_add), and call cf_completion_queue_dispatch when it is readable:
 * the callbacks of the futures done by then run there, in that thread.
 * libuv programs use `<cfutures-uv.h>` instead, which does the same inside
 * uv_run. */
typedef struct cf_completion_queue cf_completion_queue;

/** A new, empty queue, owned by the caller (cf_completion_queue_free). NULL with
 * cf_last_error(): CF_ENOMEM, or CF_ESYSTEM when no eventfd or mutex can be
 * made (cf_last_error_message() says why). */
CF_API cf_completion_queue *cf_completion_queue_new(void);
/** The queue's descriptor: an eventfd (non-blocking, close-on-exec), readable
 * exactly while callbacks are ready to run. Owned by the queue: do not read,
 * write or close it; it stays the same until cf_completion_queue_free.
 * CF_EINVAL for a NULL q. */
CF_API int cf_completion_queue_fd(cf_completion_queue *q);
/** Run cb(f, userdata) in a later cf_completion_queue_dispatch once f is done
 * (finished or cancelled), once. A future already done when added also waits
 * for a dispatch: cb never runs inside this call. The queue holds its own
 * reference to f until cb has returned (or the queue is freed). Allocates
 * here, so that completing f allocates nothing. Does not block. Returns 0,
 * CF_EINVAL (NULL q, f or cb) or CF_ENOMEM (then cb will not be called). */
CF_API int cf_completion_queue_add(cf_completion_queue *q, cf_future *f, cf_done_fn cb,
                                   void *userdata);
/** Run, in this thread, the callbacks whose futures were done when the call
 * began, in the order they completed (callbacks that become ready meanwhile
 * wait for the next call), and release the queue's references to their
 * futures. Returns how many ran (0 when none was ready), or CF_EINVAL for a
 * NULL q. Never blocks waiting for futures. Several threads may dispatch at
 * once; each runs its own share. A callback may call any cfutures function,
 * including cf_completion_queue_add and cf_completion_queue_free on this
 * queue (then the callbacks not yet run are dropped and the queue goes when
 * the dispatch returns). */
CF_API int cf_completion_queue_dispatch(cf_completion_queue *q);
/** Free the queue and close its descriptor (remove it from your loop first).
 * Callbacks not yet run are dropped, never called, and the queue releases its
 * references to their futures; a future still pending completes later without
 * touching the queue. NULL-safe. Does not block on futures. Not while another
 * thread uses q (a callback of q's own dispatch may call it, see above). */
CF_API void cf_completion_queue_free(cf_completion_queue *q);

/** @} */

/* ------------------------------------------------------------------------ */
/* Parallel loops                                                            */
/* ------------------------------------------------------------------------ */

/** @addtogroup cfutures_loop
 * @{ */

/** One chunk of a parallel loop. */
typedef struct cf_range {
    /**@{*/
    size_t begin, end; /**< items [begin, end) of the loop */
    /**@}*/
    const void *in; /**< item `begin` of opts->in, or NULL */
    void *out;      /**< item `begin` of opts->out, or NULL */
} cf_range;
/** Runs fn(ctx, r) on one chunk; r is valid during the call only. */
typedef void (*cf_range_fn)(void *ctx, const cf_range *r);

/** The options of cf_parallel_for. */
typedef struct cf_parallel_opts {
    size_t grain;            /**< items per chunk; 0: chosen (about 8 chunks per CPU) */
    const void *in;          /**< optional input array: n items of in_size bytes, or NULL */
    size_t in_size;          /**< bytes per item of in (0 when in is NULL) */
    void *out;               /**< optional output array: n items of out_size bytes, or NULL */
    size_t out_size;         /**< bytes per item of out (0 when out is NULL) */
    uint64_t cf_reserved[8]; /**< zero (later versions' options); else CF_ENOTSUP */
} cf_parallel_opts;

/** The C loop people reach for TBB's parallel_for or OpenMP for: runs fn over
 * the items [0, n) in chunks of `grain` items and blocks until every chunk
 * has run. The calling thread takes part: it and the workers take the next
 * chunks from a shared counter in turn (up to 8 at once while many are left,
 * one at a time towards the end), so a slower CPU simply runs fewer.
 * On a thread pool, fn runs in the caller and in up to min(max_workers,
 * CPUs - 1) workers at once (one fewer from inside a task of the pool);
 * in and out are the caller's arrays, which fn reads and writes in place.
 * After a loop, one idle worker polls for the next one for up to 1 ms (as
 * TBB's workers do) instead of sleeping at once.
 * Called from a task of the same pool it does not deadlock, even with one
 * worker: the caller runs every chunk that no worker takes.
 * On a process pool, consecutive chunks travel together as tasks of the
 * pool (up to 8 chunks and 64 KiB of slices a task, fewer towards the end),
 * handed out as tasks are (a worker may hold a few queued behind the one it
 * runs), and the caller only waits: fn runs in the workers once per chunk,
 * ctx travels as a value (as a task's arg does), a task's slice of in is
 * copied to its worker, and its slice of out, which fn fills (it starts
 * zeroed; a process worker writes it in memory it shares with its pool when
 * a slot is free), is copied back into out as the task completes. A task whose
 * worker dies fails the loop with CF_EBROKEN, and the pool goes on. Slices larger than the pool's
 * max_message fail with CF_ETOOBIG (the message says to give a smaller
 * grain) before any chunk runs; from one of the pool's own done-callbacks
 * it returns CF_EINVALIDSTATE (it would wait for itself).
 * opts may be NULL (no arrays, grain chosen). A chunk fails as a task does
 * (cf_raise in fn); a cf_return_copy in fn is dropped.
 * Returns 0 (also for n = 0, without calling fn), CF_EINVAL (NULL ex or fn;
 * in or out NULL with a nonzero size or set with size 0; n times a size
 * overflowing; n > SIZE_MAX / 2), CF_ENOTSUP (a non-zero cf_reserved word),
 * CF_ETOOBIG or CF_EINVALIDSTATE (process pools, see above),
 * CF_ENOMEM, CF_ESHUTDOWN or CF_EBROKEN (when the pool was already shut down
 * or broken at the call, fn did not run; on a process pool shut down during
 * the call, chunks already handed out may have run), or the failing chunk's
 * status (CF_ETASK, CF_EBROKEN, and on a process pool CF_ECANCELLED for a
 * chunk that a shutdown with cancel_futures cancelled) with the rest not
 * started (chunks already running finish); then cf_last_error() /
 * cf_last_error_message() give the chunk's exception code and message.
 * Blocks. */
CF_API int cf_parallel_for(cf_executor *ex, size_t n, cf_range_fn fn, void *ctx,
                           const cf_parallel_opts *opts);

/** @} */

/* ------------------------------------------------------------------------ */
/* Scoped executors (GCC and Clang)                                          */
/* ------------------------------------------------------------------------ */

/** @addtogroup cfutures_scoped
 * @{ */

#if defined(__GNUC__) || defined(__clang__)
/** `cf_autoptr(cf_executor) ex = cf_thread_pool_new(NULL);`  freed at scope exit.
 * Covers cf_executor, cf_future, cf_map_iter and cf_as_completed. */
#define cf_autoptr(T) __attribute__((cleanup(cf__autoptr_cleanup_##T))) T *

static inline void cf__autoptr_cleanup_cf_executor(cf_executor **p)
{
    cf_executor_free(*p);
}
static inline void cf__autoptr_cleanup_cf_future(cf_future **p)
{
    cf_future_unref(*p);
}
static inline void cf__autoptr_cleanup_cf_map_iter(cf_map_iter **p)
{
    cf_map_free(*p);
}
static inline void cf__autoptr_cleanup_cf_as_completed(cf_as_completed **p)
{
    cf_as_completed_free(*p);
}

/** @def CF_WITH(T, var, init)
 * `CF_WITH(cf_executor, ex, cf_process_pool_new(...)) { ... }`
 * Python's `with ... as ex:`. The body runs once (check ex for NULL: creation
 * may fail); the object is released when the body ends, also on break,
 * continue and return. For executors that is shutdown(wait) + free.
 * CF_WITH is a loop of one turn: break and continue inside it end the
 * CF_WITH body, not an enclosing loop (unlike in Python's `with`); to leave
 * that loop too, set a flag, or return. */
#define CF__WITH_CAT2(a, b) a##b
#define CF__WITH_CAT(a, b) CF__WITH_CAT2(a, b)
#define CF_WITH(T, var, init) CF__WITH_(T, var, init, CF__WITH_CAT(cf__with_once_, __LINE__))
#define CF__WITH_(T, var, init, once)                                                              \
    for (int once = 1; once; once = 0)                                                             \
        for (cf_autoptr(T) var = (init); once; once = 0)
#endif

/** @} */

#ifdef __cplusplus
}

#include <exception>

/** @ingroup cfutures_futures
 * C++: a task whose escaping exception fails the task instead of the
 * program. cf_cxx_task<fn> runs fn(arg); an exception that escapes it makes
 * the task fail like cf_raise: the future reports CF_ETASK, and its
 * exception has code CF_ETASK and what() as its message (for an exception
 * that is not a std::exception, a message that says so). Works on every
 * backend (on a process pool the wrapper itself is the function that
 * travels):
 * @code
 *     cf_submit(ex, cf_cxx_task<parse>, arg);
 * @endcode
 * An exception escaping a task that is not wrapped is not caught: it
 * terminates the program on a thread pool (std::terminate), and kills its
 * worker on a process pool (the task fails with CF_EBROKEN, signal SIGABRT). */
template <void *(*Fn)(void *)>
void *cf_cxx_task(void *arg) noexcept
{
    try {
        return Fn(arg);
    } catch (const std::exception &e) {
        return cf_raise(CF_ETASK, "%s", e.what());
    } catch (...) {
        return cf_raise(CF_ETASK, "%s", "a C++ exception that is not a std::exception");
    }
}
#endif

#endif /* CFUTURES_H */
