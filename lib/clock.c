/* Deadlines and a one-shot event to wait on with one.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

uint64_t cf__deadline(double timeout)
{
    if (!(timeout >= 0)) /* negative: forever; NaN too (callers refuse it first) */
        return CF__NO_DEADLINE;
    uint64_t now = uv_hrtime();
    double ns = timeout * 1e9;
    if (ns >= (double)(CF__NO_DEADLINE - now))
        return CF__NO_DEADLINE;
    return now + (uint64_t)ns;
}

int cf__event_init(cf__event *ev)
{
    atomic_init(&ev->set, false);
    ev->kicked = false;
    if (uv_mutex_init(&ev->mutex) != 0)
        return CF_ESYSTEM;
    if (uv_cond_init(&ev->cond) != 0) {
        uv_mutex_destroy(&ev->mutex);
        return CF_ESYSTEM;
    }
    return 0;
}

void cf__event_destroy(cf__event *ev)
{
    uv_cond_destroy(&ev->cond);
    uv_mutex_destroy(&ev->mutex);
}

void cf__event_set(cf__event *ev)
{
    uv_mutex_lock(&ev->mutex);
    atomic_store_explicit(&ev->set, true, memory_order_release);
    uv_cond_signal(&ev->cond);
    uv_mutex_unlock(&ev->mutex);
}

bool cf__cond_wait_until(uv_cond_t *cond, uv_mutex_t *mutex, uint64_t deadline)
{
    if (deadline == CF__NO_DEADLINE) {
        uv_cond_wait(cond, mutex);
        return true;
    }
    uint64_t now = uv_hrtime();
    if (now >= deadline)
        return false;
    (void)uv_cond_timedwait(cond, mutex, deadline - now);
    return true;
}

int cf__event_wait(cf__event *ev, uint64_t deadline)
{
    int rc = 0;
    uv_mutex_lock(&ev->mutex);
    while (!atomic_load_explicit(&ev->set, memory_order_relaxed)) {
        if (!cf__cond_wait_until(&ev->cond, &ev->mutex, deadline)) {
            rc = CF_ETIMEDOUT; /* a set racing the deadline was seen above */
            break;
        }
    }
    uv_mutex_unlock(&ev->mutex);
    return rc;
}
