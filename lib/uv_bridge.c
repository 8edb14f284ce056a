/* cf_uv_bridge: the completion core (completion_queue.h) woken by a
 * uv_async_t, so that callbacks run on the loop's thread inside uv_run.
 *
 * Liveness: the async handle is referenced exactly while entries are
 * outstanding, so the bridge keeps the loop alive only as long as it has
 * work. uv_ref and uv_unref touch the loop and may only be called on its
 * thread: an add from another thread wakes the loop instead, and the loop
 * thread settles the reference after each dispatch.
 *
 * Latency: a loop asleep in epoll_wait takes a wake-up to notice the async
 * handle, 10-20 us on a virtual machine, far more than a thread-pool task
 * takes. So, as a future's waiter does (future.c), the loop thread first
 * polls for the wake-up for a short while (a prepare handle, run just before
 * the loop blocks) when callbacks are outstanding; then the loop's poll
 * finds the eventfd already readable and does not sleep. The spin ends at
 * once when other I/O is ready or a timer is due, and is given up while
 * completions take longer than it lasts (re-tried once one comes within
 * that time again).
 * SPDX-License-Identifier: MIT */
#include "cfutures-uv.h"

#include "completion_queue.h"

#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>

#define SPIN_PAUSE_NS 2000u /* busy-wait with a CPU pause... */
#define SPIN_MAX_NS 50000u  /* ...then poll and yield until this much has passed */

struct cf_uv_bridge {
    cf__completions core; /* first: the signal gets a pointer to it */
    uv_async_t async;
    uv_prepare_t prepare;
    uv_thread_t loop_thread;
    atomic_bool woken; /* uv_async_send has returned; on_async not yet run */
    /* Loop thread only. */
    bool spin;           /* spinning before the loop blocks pays off */
    uint64_t blocked_at; /* uv_hrtime() when the loop last went to block for us */
    int open_handles;    /* the bridge goes when both handles have closed */
};

/* Under the core's lock, in any thread. uv_async_send is async-signal-safe
 * and coalesces: the loop runs on_async once for any number of sends. */
static void bridge_signal(cf__completions *c, bool ready)
{
    cf_uv_bridge *b = (cf_uv_bridge *)c;
    if (!ready)
        return;
    uv_async_send(&b->async);
    atomic_store_explicit(&b->woken, true, memory_order_release);
}

/* Under the core's lock, when an entry was added: from another thread, wake
 * the loop, whose on_async takes the loop's reference. Here, not after the
 * add: once the entry is in, a callback may close the bridge and free it. */
static void bridge_attached(cf__completions *c)
{
    cf_uv_bridge *b = (cf_uv_bridge *)c;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &b->loop_thread))
        uv_async_send(&b->async);
}

/* On the loop's thread: keep the loop alive exactly while work is outstanding. */
static void settle_ref(cf_uv_bridge *b)
{
    if (cf__completions_outstanding(&b->core) > 0)
        uv_ref((uv_handle_t *)&b->async);
    else
        uv_unref((uv_handle_t *)&b->async);
}

static void on_async(uv_async_t *handle)
{
    cf_uv_bridge *b = handle->data;
    atomic_store_explicit(&b->woken, false, memory_order_relaxed);
    /* The loop slept and a completion came soon after: spinning would have
     * caught it. */
    if (!b->spin && uv_hrtime() - b->blocked_at < SPIN_MAX_NS)
        b->spin = true;
    bool release; /* the bridge is freed by on_closed, never here */
    cf__completions_dispatch(&b->core, &release);
    if (!atomic_load_explicit(&b->core.closed, memory_order_relaxed))
        settle_ref(b);
}

typedef enum spin_end { SPIN_WOKEN, SPIN_OTHER_IO, SPIN_TIMEOUT } spin_end;

/* Wait a little, without sleeping, for a completion's wake-up. */
static spin_end spin_for_wakeup(cf_uv_bridge *b)
{
    int backend = uv_backend_fd(b->async.loop);
    uint64_t start = uv_hrtime();
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (atomic_load_explicit(&b->woken, memory_order_acquire))
                return SPIN_WOKEN;
            cf__cpu_relax();
        }
        uint64_t elapsed = uv_hrtime() - start;
        if (elapsed >= SPIN_MAX_NS)
            return SPIN_TIMEOUT;
        if (elapsed >= SPIN_PAUSE_NS) {
            /* The loop has something else to do: let it. */
            struct pollfd p = { .fd = backend, .events = POLLIN };
            if (backend >= 0 && poll(&p, 1, 0) > 0)
                return SPIN_OTHER_IO;
            sched_yield();
        }
    }
}

/* Just before the loop polls (and perhaps blocks). */
static void on_prepare(uv_prepare_t *handle)
{
    cf_uv_bridge *b = handle->data;
    if (cf__completions_outstanding(&b->core) == 0)
        return;
    if (b->spin && cf__cpu_count() > 1 && !atomic_load_explicit(&b->woken, memory_order_acquire) &&
        uv_backend_timeout(b->async.loop) != 0) {
        spin_end end = spin_for_wakeup(b);
        if (end != SPIN_TIMEOUT)
            return;
        b->spin = false; /* completions take longer than a spin */
    }
    b->blocked_at = uv_hrtime();
}

static void on_closed(uv_handle_t *handle)
{
    cf_uv_bridge *b = handle->data;
    if (--b->open_handles > 0)
        return;
    cf__completions_destroy(&b->core);
    cf__free(b);
}

cf_uv_bridge *cf_uv_bridge_new(uv_loop_t *loop)
{
    if (!loop)
        return cf__fail(CF_EINVAL);
    cf_uv_bridge *b = cf__malloc(sizeof *b);
    if (!b)
        return cf__fail(CF_ENOMEM);
    if (cf__completions_init(&b->core, bridge_signal, bridge_attached) != 0) {
        cf__free(b);
        return cf__fail_msg(CF_ESYSTEM, "the bridge's mutex could not be made");
    }
    atomic_init(&b->woken, false);
    b->spin = true;
    b->blocked_at = 0;
    b->loop_thread = uv_thread_self();
    int held[3];
    cf__stdio_hold(held); /* the loop's first async handle makes an eventfd */
    int rc = uv_async_init(loop, &b->async, on_async); /* may fail */
    cf__stdio_release(held);
    if (rc != 0) {
        cf__completions_destroy(&b->core);
        cf__free(b);
        return cf__fail_msg(CF_ESYSTEM, "uv_async_init: %s", strerror(-rc));
    }
    /* On Unix a prepare handle cannot fail to start. */
    uv_prepare_init(loop, &b->prepare);
    uv_prepare_start(&b->prepare, on_prepare);
    b->async.data = b->prepare.data = b;
    b->open_handles = 2;
    uv_unref((uv_handle_t *)&b->async);   /* nothing outstanding yet */
    uv_unref((uv_handle_t *)&b->prepare); /* never keeps the loop alive */
    return b;
}

static void attach(cf_uv_bridge *b, cf__completion *e, cf_future *f, cf_done_fn cb, void *userdata)
{
    uv_thread_t self = uv_thread_self();
    bool on_loop = uv_thread_equal(&self, &b->loop_thread);
    /* From another thread, attach wakes the loop (bridge_attached), and b is
     * not ours to touch afterwards: a callback may have closed it. */
    cf__completions_attach(&b->core, e, f, cb, userdata);
    if (on_loop && !atomic_load_explicit(&b->core.closed, memory_order_relaxed))
        uv_ref((uv_handle_t *)&b->async); /* only this thread closes the bridge */
}

int cf_uv_add_done_callback(cf_uv_bridge *b, cf_future *f, cf_done_fn cb, void *userdata)
{
    if (!b || !f || !cb)
        return CF_EINVAL;
    cf__completion *e = cf__completion_new();
    if (!e)
        return CF_ENOMEM;
    attach(b, e, f, cb, userdata);
    return 0;
}

cf_future *cf_uv_run_in_executor(cf_uv_bridge *b, cf_executor *ex, cf_fn fn, void *arg,
                                 cf_done_fn cb, void *userdata)
{
    if (!b || !ex || !fn || !cb)
        return cf__fail(CF_EINVAL);
    /* The entry first: once submitted, nothing may fail. */
    cf__completion *e = cf__completion_new();
    if (!e)
        return cf__fail(CF_ENOMEM);
    cf_future *f = cf_submit(ex, fn, arg);
    if (!f) {
        cf__completion_discard(e); /* cf_last_error() is cf_submit's */
        return NULL;
    }
    attach(b, e, f, cb, userdata);
    return f;
}

void cf_uv_bridge_close(cf_uv_bridge *b)
{
    if (!b)
        return;
    /* No dispatch can outlive this: they all run on this thread, in
     * on_async, and on_closed comes after any of them returned. */
    (void)cf__completions_close(&b->core);
    uv_close((uv_handle_t *)&b->async, on_closed);
    uv_close((uv_handle_t *)&b->prepare, on_closed);
}
