/* What every executor shares: argument checks, making the future for a call,
 * refusing calls on a fork() child's copy, and dispatch to the backend's ops
 * (see cf__executor_ops in internal.h).
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <signal.h>
#include <string.h>

static const char forked_message[] =
    "this executor belongs to the parent process: this process is a fork() child, which "
    "has none of its workers";

bool cf__executor_forked(const cf_executor *ex)
{
    return ex->fork_generation != cf__fork_generation();
}

int cf__executor_init(cf_executor *ex, const cf__executor_ops *ops)
{
    ex->ops = ops;
    atomic_init(&ex->releasing, false);
    atomic_init(&ex->holds, 1);
    int rc = cf__fork_init();
    ex->fork_generation = cf__fork_generation();
    return rc;
}

cf_future *cf__submit_call(cf_executor *ex, cf__call *call)
{
    if (cf__executor_forked(ex)) {
        cf__call_clear(call);
        return cf__fail_msg(CF_EBROKEN, "%s", forked_message);
    }
    cf_future *f = cf__future_new(2); /* the caller's reference and the executor's */
    if (!f) {
        int rc = cf_last_error(); /* CF_ENOMEM or CF_ESYSTEM, set by cf__future_new */
        cf__call_clear(call);
        return cf__fail(rc < 0 ? rc : CF_ENOMEM);
    }
    f->call = *call;
    memset(call, 0, sizeof *call);
    int rc = ex->ops->submit(ex, f);
    if (rc != 0) {
        /* The backend left f untouched: both references are ours to drop,
         * and dropping the last one frees the call's bytes too. */
        cf_future_unref(f);
        cf_future_unref(f);
        return cf__fail(rc);
    }
    return f;
}

cf_future *cf_submit(cf_executor *ex, cf_fn fn, void *arg)
{
    if (!ex || !fn)
        return cf__fail(CF_EINVAL);
    cf__call call = { .fn = fn, .arg = arg };
    return cf__submit_call(ex, &call);
}

cf_future *cf_submit_copy(cf_executor *ex, cf_fn fn, const void *data, size_t size)
{
    if (!ex || !fn || (!data && size > 0))
        return cf__fail(CF_EINVAL);
    cf__call call = { .fn = fn };
    if (size > 0) {
        call.arg = cf__malloc(size);
        if (!call.arg)
            return cf__fail(CF_ENOMEM);
        memcpy(call.arg, data, size);
        call.arg_size = size;
    }
    return cf__submit_call(ex, &call);
}

static void hold(cf_executor *ex)
{
    atomic_fetch_add_explicit(&ex->holds, 1, memory_order_relaxed);
}

void cf__executor_unhold(cf_executor *ex)
{
    if (atomic_fetch_sub_explicit(&ex->holds, 1, memory_order_acq_rel) == 1)
        ex->ops->destroy(ex);
}

int cf_executor_shutdown(cf_executor *ex, bool wait, bool cancel_futures)
{
    if (!ex)
        return CF_EINVAL;
    if (cf__executor_forked(ex))
        return CF_EBROKEN;
    hold(ex); /* a cancel's done-callback may free ex */
    int rc = ex->ops->shutdown(ex, wait, cancel_futures);
    cf__executor_unhold(ex);
    return rc;
}

static int signal_workers(cf_executor *ex, int signum)
{
    if (!ex)
        return CF_EINVAL;
    if (!ex->ops->signal_workers)
        return CF_ENOTSUP;
    if (cf__executor_forked(ex))
        return CF_EBROKEN;
    hold(ex);
    int rc = ex->ops->signal_workers(ex, signum);
    cf__executor_unhold(ex);
    return rc;
}

int cf_executor_terminate_workers(cf_executor *ex)
{
    return signal_workers(ex, SIGTERM);
}

int cf_executor_kill_workers(cf_executor *ex)
{
    return signal_workers(ex, SIGKILL);
}

void cf_executor_free(cf_executor *ex)
{
    if (!ex)
        return;
    /* A done-callback run by this very free (a cancel) may free ex again:
     * the outer call finishes the job. */
    if (atomic_exchange(&ex->releasing, true))
        return;
    if (cf__executor_forked(ex))
        ex->ops->forget(ex);
    else if (ex->ops->release(ex))
        cf__executor_unhold(ex); /* the user's hold */
}

int cf_executor_stats_get(cf_executor *ex, cf_executor_stats *out)
{
    if (!ex || !out)
        return CF_EINVAL;
    if (cf__executor_forked(ex))
        return CF_EBROKEN;
    memset(out, 0, sizeof *out);
    ex->ops->stats(ex, out);
    return 0;
}

int cf__cpu_count(void)
{
    static atomic_int cached; /* asked on every blocking wait: keep it cheap */
    int n = atomic_load_explicit(&cached, memory_order_relaxed);
    if (n == 0) {
        unsigned cpus = uv_available_parallelism();
        n = cpus >= 1 ? (int)cpus : 1;
        atomic_store_explicit(&cached, n, memory_order_relaxed);
    }
    return n;
}
