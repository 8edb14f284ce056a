/** @file cfutures-uv.h
 * @brief cfutures-uv: futures' completions on a libuv loop.
 *
 * Python's asyncio meets concurrent.futures through the event loop:
 * @verbatim
   loop.run_in_executor(ex, fn, arg)        -> cf_uv_run_in_executor(b, ex, fn, arg, cb, data)
   asyncio.wrap_future(f) + add_done_callback -> cf_uv_add_done_callback(b, f, cb, data)
   @endverbatim
 * cfutures' done-callbacks run in the thread that completes the future (a
 * pool's worker); a bridge runs them on the loop's thread instead, inside
 * uv_run, as uv_queue_work's after_work_cb runs. Part of libcfutures; build
 * with `pkg-config cfutures-uv` (or the Meson dependency 'cfutures-uv'),
 * which also finds libuv. (With -std=c11 rather than gnu11, `<uv.h>` needs
 * POSIX types: define _POSIX_C_SOURCE 200809L before the first include.)
 *
 * The bridge owns two handles on the loop: a uv_async_t, by which completing
 * threads wake the loop, and a uv_prepare_t. While callbacks are outstanding
 * it keeps the loop alive; with none it does not, so uv_run(loop,
 * UV_RUN_DEFAULT) returns once the work is done.
 *
 * Waking a sleeping loop costs more than a short task takes (10-20 us on a
 * virtual machine). So while callbacks are outstanding, the loop thread polls
 * for the next completion for up to 50 us before it blocks (in the prepare
 * handle; only with more than one CPU), as a future's waiter does. It stops
 * at once when other I/O is ready or a timer is due, and stops trying while
 * completions take longer than that.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CFUTURES_UV_H
#define CFUTURES_UV_H

#include <uv.h>

#include <cfutures.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @addtogroup cfutures_event_loops
 * @{ */

/** A bridge between futures and a libuv loop (see cfutures-uv.h): made by
 * cf_uv_bridge_new, closed by cf_uv_bridge_close. */
typedef struct cf_uv_bridge cf_uv_bridge;

/** A bridge for `loop`, owned by the caller until cf_uv_bridge_close. Call it
 * on the loop's thread (the thread that runs uv_run), with the loop not yet
 * closed. NULL with cf_last_error(): CF_EINVAL (NULL loop), CF_ENOMEM, or
 * CF_ESYSTEM when the uv_async_t or a mutex cannot be made. */
CF_API cf_uv_bridge *cf_uv_bridge_new(uv_loop_t *loop);

/** Run cb(f, userdata) on the loop's thread, inside uv_run, once f is done
 * (finished or cancelled); once. A future already done also waits for the
 * loop: cb never runs inside this call. The bridge holds its own reference to
 * f until cb has returned (or the bridge is closed). Allocates here, so that
 * completing f allocates nothing. Does not block.
 * Called on the loop's thread, it keeps the loop alive from now on until cb
 * has run. Called from another thread it wakes the loop, which keeps itself
 * alive from its next iteration: if the loop has nothing else to do, uv_run
 * may return before that (add from the loop's thread to be sure).
 * Returns 0, CF_EINVAL (NULL b, f or cb) or CF_ENOMEM (then cb will not be
 * called). */
CF_API int cf_uv_add_done_callback(cf_uv_bridge *b, cf_future *f, cf_done_fn cb, void *userdata);

/** cf_submit(ex, fn, arg), then cf_uv_add_done_callback(b, f, cb, userdata):
 * Python's loop.run_in_executor. Returns the future (your reference: release
 * it with cf_future_unref, in cb or later), or NULL with cf_last_error():
 * CF_EINVAL (NULL b, ex, fn or cb), CF_ENOMEM, or what cf_submit returns
 * (CF_ESHUTDOWN, CF_EBROKEN, CF_ESYSTEM); then nothing was submitted and cb
 * will not be called. Never blocks on running tasks. */
CF_API cf_future *cf_uv_run_in_executor(cf_uv_bridge *b, cf_executor *ex, cf_fn fn, void *arg,
                                        cf_done_fn cb, void *userdata);

/** Close the bridge, once, on the loop's thread (also from one of its
 * callbacks). Callbacks not yet run are dropped, never called, and the bridge
 * releases its references to their futures; a future still pending completes
 * later without touching the bridge. Its handle closes in the loop's next
 * iteration (run the loop once more, e.g. uv_run(loop, UV_RUN_NOWAIT)), which
 * frees the bridge; after that uv_loop_close(loop) returns 0 (if nothing else
 * is open). NULL-safe. Does not block. */
CF_API void cf_uv_bridge_close(cf_uv_bridge *b);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* CFUTURES_UV_H */
