/* cf_wait and cf_as_completed, as Python's wait() and as_completed(): the
 * three return_when conditions, timeouts that return the partial split,
 * reordering, duplicates, completion order, and futures from different
 * executors together. Most futures are made with cf_future_new and completed
 * by the test or by a thread it starts. */
#include <cfutures.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "check.h"

#define V(n) ((void *)(intptr_t)(n))

static cf_future *new_future(void)
{
    cf_future *f = cf_future_new();
    CHECK(f != NULL);
    return f;
}

static cf_future *done_future(intptr_t value)
{
    cf_future *f = new_future();
    CHECK_EQ(cf_future_set_result(f, V(value)), 0);
    return f;
}

static cf_future *failed_future(int code)
{
    cf_future *f = new_future();
    CHECK_EQ(cf_future_set_exception(f, code, "failed with %d", code), 0);
    return f;
}

static void unref_all(cf_future **fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cf_future_unref(fs[i]);
}

/* A thread that completes futures one after the other. */
typedef struct completer {
    pthread_t thread;
    cf_future **fs;
    size_t n;
    int how; /* per future: see complete_one */
    const int *hows;
} completer;

enum { SET_RESULT, SET_EXCEPTION, CANCEL, CANCEL_AND_NOTIFY };

static void complete_one(cf_future *f, int how, intptr_t value)
{
    switch (how) {
    case SET_RESULT:
        CHECK_EQ(cf_future_set_result(f, V(value)), 0);
        break;
    case SET_EXCEPTION:
        CHECK_EQ(cf_future_set_exception(f, 5, "task %d failed", (int)value), 0);
        break;
    case CANCEL:
        CHECK(cf_future_cancel(f));
        break;
    case CANCEL_AND_NOTIFY:
        CHECK(cf_future_cancel(f));
        CHECK(!cf_future_set_running_or_notify_cancel(f));
        break;
    }
}

static void *completer_main(void *p)
{
    completer *c = p;
    for (size_t i = 0; i < c->n; i++)
        complete_one(c->fs[i], c->hows ? c->hows[i] : c->how, (intptr_t)i);
    return NULL;
}

/* Complete fs[0..n) in that order from a new thread. The futures must stay
 * alive until completer_join. */
static void completer_start(completer *c, cf_future **fs, size_t n, int how, const int *hows)
{
    c->fs = fs;
    c->n = n;
    c->how = how;
    c->hows = hows;
    CHECK_EQ(pthread_create(&c->thread, NULL, completer_main, c), 0);
}

static void completer_join(completer *c)
{
    CHECK_EQ(pthread_join(c->thread, NULL), 0);
}

/* ------------------------------------------------------------------------ */
/* cf_wait                                                                   */
/* ------------------------------------------------------------------------ */

static void test_wait_arguments(void)
{
    cf_future *f = new_future();
    cf_future *fs[2] = { f, NULL };
    CHECK_EQ(cf_wait(NULL, 0, 0, CF_ALL_COMPLETED), 0);
    CHECK_EQ(cf_wait(fs, 0, CF_FOREVER, CF_ALL_COMPLETED), 0); /* n = 0: nothing to wait for */
    CHECK_EQ(cf_wait(NULL, 1, 0, CF_ALL_COMPLETED), CF_EINVAL);
    CHECK_EQ(cf_wait(fs, 2, 0, CF_ALL_COMPLETED), CF_EINVAL);
    CHECK_EQ(cf_wait(fs, 1, 0, (cf_return_when)42), CF_EINVAL);
    CHECK_EQ(cf_wait(fs, 1, 0, (cf_return_when)-1), CF_EINVAL);
    CHECK_EQ(cf_wait(fs, 1, 0, CF_ALL_COMPLETED), 0); /* timeout 0 polls */
    /* A NaN timeout is refused, not waited on forever (nor converted). */
    CHECK_EQ(cf_wait(fs, 1, NAN, CF_ALL_COMPLETED), CF_EINVAL);
    CHECK_EQ(cf_future_result(f, NAN, NULL), CF_EINVAL);
    const cf_exception *exc;
    CHECK_EQ(cf_future_exception(f, NAN, &exc), CF_EINVAL);
    CHECK(cf_as_completed_new(fs, 1, NAN) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    cf_future_unref(f);
}

static void test_wait_all_completed(void)
{
    /* already done: returns at once */
    cf_future *fs[3] = { done_future(1), failed_future(2), new_future() };
    CHECK(cf_future_cancel(fs[2]));
    CHECK_EQ(cf_wait(fs, 3, CF_FOREVER, CF_ALL_COMPLETED), 3);
    unref_all(fs, 3);

    /* completed by another thread, every kind of completion */
    enum { N = 6 };
    cf_future *gs[N];
    for (int i = 0; i < N; i++)
        gs[i] = new_future();
    static const int hows[N] = { SET_RESULT,        SET_EXCEPTION, CANCEL,
                                 CANCEL_AND_NOTIFY, SET_RESULT,    SET_EXCEPTION };
    cf_future *copy[N];
    memcpy(copy, gs, sizeof gs);
    completer c;
    completer_start(&c, copy, N, 0, hows);
    CHECK_EQ(cf_wait(gs, N, CF_FOREVER, CF_ALL_COMPLETED), N);
    for (int i = 0; i < N; i++)
        CHECK(cf_future_done(gs[i]));
    completer_join(&c);
    unref_all(gs, N);
}

static void test_wait_first_completed(void)
{
    cf_future *fs[3] = { new_future(), new_future(), new_future() };
    cf_future *third = fs[2];
    completer c;
    completer_start(&c, &third, 1, SET_RESULT, NULL);
    CHECK_EQ(cf_wait(fs, 3, CF_FOREVER, CF_FIRST_COMPLETED), 1);
    completer_join(&c);
    CHECK(fs[0] == third); /* moved to the front */
    CHECK(!cf_future_done(fs[1]));
    CHECK(!cf_future_done(fs[2]));
    /* already one done: at once */
    CHECK_EQ(cf_wait(fs, 3, CF_FOREVER, CF_FIRST_COMPLETED), 1);
    CHECK(fs[0] == third);
    /* a cancel counts as completed */
    cf_future *rest[2] = { fs[1], fs[2] };
    completer_start(&c, &rest[1], 1, CANCEL, NULL);
    CHECK_EQ(cf_wait(rest, 2, CF_FOREVER, CF_FIRST_COMPLETED), 1);
    completer_join(&c);
    CHECK(cf_future_cancelled(rest[0]));
    unref_all(fs, 3);
}

typedef struct wait_thread_arg {
    cf_future **fs;
    size_t n;
    cf_return_when when;
    int rc;
} wait_thread_arg;

static void *wait_thread(void *p)
{
    wait_thread_arg *a = p;
    a->rc = cf_wait(a->fs, a->n, CF_FOREVER, a->when);
    return NULL;
}

static void test_wait_first_exception(void)
{
    /* one had already failed: at once, although others stay pending */
    cf_future *fs[3] = { new_future(), failed_future(3), new_future() };
    cf_future *failed = fs[1];
    CHECK_EQ(cf_wait(fs, 3, CF_FOREVER, CF_FIRST_EXCEPTION), 1);
    CHECK(fs[0] == failed);
    unref_all(fs, 3);

    /* a result, then a failure, from another thread: returns at the failure */
    cf_future *gs[3] = { new_future(), new_future(), new_future() };
    cf_future *order[2] = { gs[2], gs[0] };
    static const int hows[2] = { SET_RESULT, SET_EXCEPTION };
    completer c;
    completer_start(&c, order, 2, 0, hows);
    CHECK_EQ(cf_wait(gs, 3, CF_FOREVER, CF_FIRST_EXCEPTION), 2);
    completer_join(&c);
    CHECK(cf_future_done(gs[0]) && cf_future_done(gs[1]));
    CHECK(!cf_future_done(gs[2]));
    CHECK_EQ(cf_future_result(order[1], 0, NULL), CF_ETASK);
    unref_all(gs, 3);

    /* none fails: returns when all are done */
    enum { N = 5 };
    cf_future *hs[N];
    for (int i = 0; i < N; i++)
        hs[i] = new_future();
    cf_future *copy[N];
    memcpy(copy, hs, sizeof hs);
    completer_start(&c, copy, N, SET_RESULT, NULL);
    CHECK_EQ(cf_wait(hs, N, CF_FOREVER, CF_FIRST_EXCEPTION), N);
    completer_join(&c);
    unref_all(hs, N);

    /* a cancel is not an exception: the wait goes on to the end */
    cf_future *ks[3] = { new_future(), new_future(), new_future() };
    cf_future *kcopy[3] = { ks[0], ks[1], ks[2] };
    static const int khows[3] = { CANCEL, CANCEL_AND_NOTIFY, SET_RESULT };
    completer_start(&c, kcopy, 3, 0, khows);
    CHECK_EQ(cf_wait(ks, 3, CF_FOREVER, CF_FIRST_EXCEPTION), 3);
    completer_join(&c);
    unref_all(ks, 3);

    /* Same, with the waiter surely blocked when the cancel comes: it must
     * still be waiting for the last future. */
    cf_future *ws[2] = { new_future(), new_future() };
    cf_future *wcopy[2] = { ws[0], ws[1] };
    wait_thread_arg a = { .fs = ws, .n = 2, .when = CF_FIRST_EXCEPTION, .rc = -100 };
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, wait_thread, &a), 0);
    CHECK(cf_future_cancel(wcopy[0]));
    /* Not a synchronisation: time for a wrong wait to return early. The
     * test passes either way when cf_wait is right. */
    CHECK_EQ(cf_future_result(wcopy[1], 0.03, NULL), CF_ETIMEDOUT);
    CHECK_EQ(cf_future_set_result(wcopy[1], V(1)), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(a.rc, 2);
    unref_all(wcopy, 2);

    /* CF_EBROKEN and CF_ETIMEDOUT failures count as exceptions too */
    cf_future *ms[2] = { new_future(), failed_future(CF_EBROKEN) };
    CHECK_EQ(cf_wait(ms, 2, CF_FOREVER, CF_FIRST_EXCEPTION), 1);
    unref_all(ms, 2);
    cf_future *ns[2] = { new_future(), failed_future(CF_ETIMEDOUT) };
    CHECK_EQ(cf_wait(ns, 2, CF_FOREVER, CF_FIRST_EXCEPTION), 1);
    unref_all(ns, 2);
}

static void test_wait_timeout_partial_split(void)
{
    cf_future *p1 = new_future(), *p2 = new_future();
    cf_future *d1 = done_future(1), *d2 = failed_future(2);
    cf_future *fs[4] = { p1, d1, p2, d2 };
    for (int poll = 0; poll < 2; poll++) {
        fs[0] = p1, fs[1] = d1, fs[2] = p2, fs[3] = d2;
        CHECK_EQ(cf_wait(fs, 4, poll ? 0 : 0.02, CF_ALL_COMPLETED), 2);
        /* done first, each part in its original order */
        CHECK(fs[0] == d1);
        CHECK(fs[1] == d2);
        CHECK(fs[2] == p1);
        CHECK(fs[3] == p2);
    }
    /* FIRST_EXCEPTION: d2 had failed, so at once, with the same split */
    fs[0] = p1, fs[1] = d1, fs[2] = p2, fs[3] = d2;
    CHECK_EQ(cf_wait(fs, 4, CF_FOREVER, CF_FIRST_EXCEPTION), 2);
    CHECK(fs[0] == d1 && fs[1] == d2 && fs[2] == p1 && fs[3] == p2);
    /* FIRST_EXCEPTION with nothing failed and a timeout */
    cf_future *gs[3] = { p1, d1, p2 };
    CHECK_EQ(cf_wait(gs, 3, 0.01, CF_FIRST_EXCEPTION), 1);
    CHECK(gs[0] == d1 && gs[1] == p1 && gs[2] == p2);
    /* FIRST_COMPLETED with none done and a timeout */
    cf_future *hs[2] = { p1, p2 };
    CHECK_EQ(cf_wait(hs, 2, 0.01, CF_FIRST_COMPLETED), 0);
    CHECK(hs[0] == p1 && hs[1] == p2);
    CHECK(!cf_future_done(p1) && !cf_future_done(p2));
    cf_future_unref(p1);
    cf_future_unref(p2);
    cf_future_unref(d1);
    cf_future_unref(d2);
}

static void test_wait_duplicates(void)
{
    cf_future *f = new_future(), *d = done_future(1);
    cf_future *fs[4] = { f, d, f, d };
    CHECK_EQ(cf_wait(fs, 4, 0, CF_ALL_COMPLETED), 2);
    CHECK(fs[0] == d && fs[1] == d && fs[2] == f && fs[3] == f);

    cf_future *single = f;
    completer c;
    completer_start(&c, &single, 1, SET_RESULT, NULL);
    cf_future *gs[3] = { f, f, f };
    CHECK_EQ(cf_wait(gs, 3, CF_FOREVER, CF_ALL_COMPLETED), 3);
    completer_join(&c);
    cf_future_unref(f);
    cf_future_unref(d);
}

static void test_wait_many(void)
{
    enum { N = 200 }; /* beyond any small on-stack array */
    cf_future *fs[N], *copy[N];
    for (int i = 0; i < N; i++)
        fs[i] = copy[i] = new_future();
    completer c;
    completer_start(&c, copy, N, SET_RESULT, NULL);
    CHECK_EQ(cf_wait(fs, N, CF_FOREVER, CF_ALL_COMPLETED), N);
    completer_join(&c);
    for (int i = 0; i < N; i++) {
        void *value = NULL;
        CHECK_EQ(cf_future_result(copy[i], 0, &value), 0);
        CHECK(value == V(i));
    }
    /* Half done, polled: the done ones come first, in order. */
    cf_future *half[N];
    for (int i = 0; i < N; i++)
        half[i] = i % 2 ? copy[i] : new_future();
    CHECK_EQ(cf_wait(half, N, 0, CF_ALL_COMPLETED), N / 2);
    for (int i = 0; i < N / 2; i++)
        CHECK(half[i] == copy[2 * i + 1]);
    for (int i = N / 2; i < N; i++)
        CHECK(!cf_future_done(half[i]));
    for (int i = N / 2; i < N; i++)
        cf_future_unref(half[i]);
    unref_all(copy, N);
}

/* Python: set_running_or_notify_cancel on a cancelled future wakes wait(). */
static void test_wait_woken_by_notify_cancel(void)
{
    cf_future *f = new_future();
    cf_future *fs[1] = { f };
    wait_thread_arg a = { .fs = fs, .n = 1, .when = CF_ALL_COMPLETED, .rc = -100 };
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, wait_thread, &a), 0);
    CHECK(cf_future_cancel(f));
    CHECK(!cf_future_set_running_or_notify_cancel(f));
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(a.rc, 1);
    cf_future_unref(f);
}

/* ------------------------------------------------------------------------ */
/* Futures from two thread pools and a hand-made one, together               */
/* ------------------------------------------------------------------------ */

static void *gated_task(void *arg)
{
    cf_future *gate = arg;
    void *value = NULL;
    if (cf_future_result(gate, CF_FOREVER, &value) != 0)
        return cf_raise(1, "gate failed");
    return value;
}

static void *failing_task(void *arg)
{
    (void)arg;
    return cf_raise(77, "task raised");
}

static void test_wait_mixed_executors(void)
{
    cf_executor *a = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 1 });
    cf_executor *b = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 });
    CHECK(a != NULL && b != NULL);
    cf_future *gate = new_future();
    cf_future *own = new_future();
    cf_future *fa = cf_submit(a, gated_task, gate);
    cf_future *fb = cf_submit(b, gated_task, gate);
    cf_future *fail = cf_submit(b, failing_task, NULL);
    CHECK(fa && fb && fail);

    /* The failing task is the only one that can finish before the gate opens. */
    cf_future *fs[4] = { fa, own, fb, fail };
    CHECK_EQ(cf_wait(fs, 4, CF_FOREVER, CF_FIRST_EXCEPTION), 1);
    CHECK(fs[0] == fail);
    CHECK_EQ(cf_future_result(fail, 0, NULL), CF_ETASK);

    CHECK_EQ(cf_future_set_result(gate, V(5)), 0);
    CHECK_EQ(cf_future_set_result(own, V(6)), 0);
    CHECK_EQ(cf_wait(fs, 4, CF_FOREVER, CF_ALL_COMPLETED), 4);
    void *value = NULL;
    CHECK_EQ(cf_future_result(fa, 0, &value), 0);
    CHECK(value == V(5));
    CHECK_EQ(cf_future_result(fb, 0, &value), 0);
    CHECK(value == V(5));

    /* as_completed over the same mix */
    cf_future *gate2 = new_future();
    cf_future *ga = cf_submit(a, gated_task, gate2);
    cf_future *gb = cf_submit(b, gated_task, gate2);
    CHECK(ga && gb);
    cf_future *all[3] = { ga, gb, fail };
    cf_as_completed *it = cf_as_completed_new(all, 3, CF_FOREVER);
    CHECK(it != NULL);
    cf_future *next = NULL;
    CHECK_EQ(cf_as_completed_next(it, &next), 1);
    CHECK(next == fail); /* the only done one */
    CHECK_EQ(cf_future_set_result(gate2, V(8)), 0);
    int seen_a = 0, seen_b = 0;
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(cf_as_completed_next(it, &next), 1);
        seen_a += next == ga;
        seen_b += next == gb;
    }
    CHECK(seen_a == 1 && seen_b == 1);
    CHECK_EQ(cf_as_completed_next(it, &next), 0);
    cf_as_completed_free(it);

    cf_executor_free(a);
    cf_executor_free(b);
    cf_future *done[] = { fa, fb, fail, own, gate, ga, gb, gate2 };
    unref_all(done, sizeof done / sizeof done[0]);
}

/* ------------------------------------------------------------------------ */
/* cf_as_completed                                                           */
/* ------------------------------------------------------------------------ */

static void test_as_completed_arguments(void)
{
    cf_future *f = new_future();
    cf_future *fs[2] = { f, NULL };
    CHECK(cf_as_completed_new(NULL, 1, 0) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_as_completed_new(fs, 2, 0) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    cf_future *out = NULL;
    CHECK_EQ(cf_as_completed_next(NULL, &out), CF_EINVAL);
    cf_as_completed *it = cf_as_completed_new(fs, 1, 0);
    CHECK(it != NULL);
    CHECK_EQ(cf_as_completed_next(it, NULL), CF_EINVAL);
    cf_as_completed_free(it);
    cf_as_completed_free(NULL);

    /* n = 0: nothing to yield */
    it = cf_as_completed_new(NULL, 0, CF_FOREVER);
    CHECK(it != NULL);
    CHECK_EQ(cf_as_completed_next(it, &out), 0);
    CHECK_EQ(cf_as_completed_next(it, &out), 0);
    cf_as_completed_free(it);
    cf_future_unref(f);
}

static void test_as_completed_order(void)
{
    cf_future *a = new_future(), *b = done_future(2), *c = new_future(), *d = failed_future(4);
    cf_future *e = new_future();
    CHECK(cf_future_cancel(e));
    cf_future *fs[5] = { a, b, c, d, e };
    cf_as_completed *it = cf_as_completed_new(fs, 5, CF_FOREVER);
    CHECK(it != NULL);
    /* completed after creation, before the first next: completion order */
    CHECK_EQ(cf_future_set_result(c, V(3)), 0);
    CHECK(cf_future_cancel(a));
    cf_future *want[5] = { b, d, e, c, a }; /* done ones in input order, then c, a */
    for (int i = 0; i < 5; i++) {
        cf_future *got = NULL;
        CHECK_EQ(cf_as_completed_next(it, &got), 1);
        CHECK(got == want[i]);
        CHECK(cf_future_done(got));
    }
    cf_future *got = NULL;
    CHECK_EQ(cf_as_completed_next(it, &got), 0);
    CHECK_EQ(cf_as_completed_next(it, &got), 0);
    cf_as_completed_free(it);
    unref_all(fs, 5);
}

static void test_as_completed_from_thread(void)
{
    enum { N = 50 };
    cf_future *fs[N], *reversed[N];
    for (int i = 0; i < N; i++)
        fs[i] = new_future();
    for (int i = 0; i < N; i++)
        reversed[i] = fs[N - 1 - i];
    cf_as_completed *it = cf_as_completed_new(fs, N, CF_FOREVER);
    CHECK(it != NULL);
    static int hows[N];
    for (int i = 0; i < N; i++)
        hows[i] = i % 3 == 0 ? SET_EXCEPTION : i % 3 == 1 ? CANCEL_AND_NOTIFY : SET_RESULT;
    completer c;
    completer_start(&c, reversed, N, 0, hows);
    for (int i = 0; i < N; i++) {
        cf_future *got = NULL;
        CHECK_EQ(cf_as_completed_next(it, &got), 1);
        CHECK(got == reversed[i]); /* exactly the completion order */
    }
    cf_future *got = NULL;
    CHECK_EQ(cf_as_completed_next(it, &got), 0);
    completer_join(&c);
    cf_as_completed_free(it);
    unref_all(fs, N);
}

static void test_as_completed_each_once(void)
{
    cf_future *a = new_future(), *b = done_future(1);
    cf_future *fs[5] = { a, b, a, b, a };
    cf_as_completed *it = cf_as_completed_new(fs, 5, CF_FOREVER);
    CHECK(it != NULL);
    cf_future *got = NULL;
    CHECK_EQ(cf_as_completed_next(it, &got), 1);
    CHECK(got == b);
    CHECK_EQ(cf_future_set_result(a, V(1)), 0);
    CHECK_EQ(cf_as_completed_next(it, &got), 1);
    CHECK(got == a);
    CHECK_EQ(cf_as_completed_next(it, &got), 0);
    cf_as_completed_free(it);
    cf_future_unref(a);
    cf_future_unref(b);
}

static void test_as_completed_timeout(void)
{
    cf_future *p = new_future(), *d = done_future(1);
    cf_future *fs[2] = { p, d };
    for (int poll = 0; poll < 2; poll++) {
        cf_as_completed *it = cf_as_completed_new(fs, 2, poll ? 0 : 0.02);
        CHECK(it != NULL);
        cf_future *got = NULL;
        CHECK_EQ(cf_as_completed_next(it, &got), 1); /* the done one first */
        CHECK(got == d);
        got = NULL;
        CHECK_EQ(cf_as_completed_next(it, &got), CF_ETIMEDOUT);
        CHECK(got == NULL);
        CHECK_EQ(cf_as_completed_next(it, &got), CF_ETIMEDOUT); /* still */
        cf_as_completed_free(it);
    }
    /* after a timeout, a later call yields what completed since */
    cf_as_completed *it = cf_as_completed_new(fs, 2, 0);
    cf_future *got = NULL;
    CHECK_EQ(cf_as_completed_next(it, &got), 1);
    CHECK_EQ(cf_as_completed_next(it, &got), CF_ETIMEDOUT);
    CHECK_EQ(cf_future_set_result(p, V(2)), 0);
    CHECK_EQ(cf_as_completed_next(it, &got), 1);
    CHECK(got == p);
    CHECK_EQ(cf_as_completed_next(it, &got), 0);
    cf_as_completed_free(it);
    cf_future_unref(p);
    cf_future_unref(d);
}

/* The iterator holds its own references, and freeing it early detaches it
 * from futures that complete later. */
static void test_as_completed_references(void)
{
    cf_future *keep = new_future();
    cf_future *fs[3] = { new_future(), done_future(7), keep };
    cf_future *done = fs[1];
    cf_as_completed *it = cf_as_completed_new(fs, 3, CF_FOREVER);
    CHECK(it != NULL);
    cf_future_unref(fs[0]); /* the iterator keeps these alive */
    cf_future_unref(fs[1]);
    cf_future *got = NULL;
    CHECK_EQ(cf_as_completed_next(it, &got), 1);
    CHECK(got == done);
    void *value = NULL;
    CHECK_EQ(cf_future_result(got, 0, &value), 0);
    CHECK(value == V(7));
    cf_as_completed_free(it); /* frees fs[0] and fs[1]; detaches from keep */
    CHECK_EQ(cf_future_set_result(keep, V(1)), 0);
    cf_future_unref(keep);
}

typedef struct ac_thread_arg {
    cf_as_completed *it;
    int rc;
    cf_future *got;
} ac_thread_arg;

static void *ac_thread(void *p)
{
    ac_thread_arg *a = p;
    a->rc = cf_as_completed_next(a->it, &a->got);
    return NULL;
}

static void test_as_completed_woken_by_notify_cancel(void)
{
    cf_future *f = new_future();
    cf_as_completed *it = cf_as_completed_new(&f, 1, CF_FOREVER);
    CHECK(it != NULL);
    ac_thread_arg a = { .it = it, .rc = -100 };
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, ac_thread, &a), 0);
    CHECK(cf_future_cancel(f));
    CHECK(!cf_future_set_running_or_notify_cancel(f));
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(a.rc, 1);
    CHECK(a.got == f);
    cf_as_completed_free(it);
    cf_future_unref(f);
}

int main(void)
{
    RUN(test_wait_arguments);
    RUN(test_wait_all_completed);
    RUN(test_wait_first_completed);
    RUN(test_wait_first_exception);
    RUN(test_wait_timeout_partial_split);
    RUN(test_wait_duplicates);
    RUN(test_wait_many);
    RUN(test_wait_woken_by_notify_cancel);
    RUN(test_wait_mixed_executors);
    RUN(test_as_completed_arguments);
    RUN(test_as_completed_order);
    RUN(test_as_completed_from_thread);
    RUN(test_as_completed_each_once);
    RUN(test_as_completed_timeout);
    RUN(test_as_completed_references);
    RUN(test_as_completed_woken_by_notify_cancel);
    return 0;
}
