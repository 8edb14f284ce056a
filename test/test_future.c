/* Futures on their own, as Python's Future: the five states, cancel, result
 * and exception, set_*, set_running_or_notify_cancel, done-callbacks and
 * waiters in other threads. Futures are made with cf_future_new and
 * completed by the test, from this thread or threads it starts. */
#include <cfutures.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

#define V(n) ((void *)(intptr_t)(n))

/* ------------------------------------------------------------------------ */
/* An allocator that can fail on demand (installed before any other call)    */
/* ------------------------------------------------------------------------ */

static _Thread_local int fail_allocs; /* fail this many allocations in this thread */

static void *test_malloc(size_t n)
{
    if (fail_allocs > 0) {
        fail_allocs--;
        return NULL;
    }
    return malloc(n);
}

static void *test_realloc(void *p, size_t n)
{
    if (fail_allocs > 0) {
        fail_allocs--;
        return NULL;
    }
    return realloc(p, n);
}

/* ------------------------------------------------------------------------ */
/* The five states                                                           */
/* ------------------------------------------------------------------------ */

enum { PENDING, RUNNING, CANCELLED, CANCELLED_NOTIFIED, FINISHED, FAILED, NSTATES };
static const char *const state_names[NSTATES] = {
    "pending", "running", "cancelled", "cancelled-and-notified", "finished", "failed",
};

static cf_future *make_future(int state)
{
    cf_future *f = cf_future_new();
    CHECK(f != NULL);
    switch (state) {
    case RUNNING:
        CHECK(cf_future_set_running_or_notify_cancel(f));
        break;
    case CANCELLED:
        CHECK(cf_future_cancel(f));
        break;
    case CANCELLED_NOTIFIED:
        CHECK(cf_future_cancel(f));
        CHECK(!cf_future_set_running_or_notify_cancel(f));
        break;
    case FINISHED:
        CHECK_EQ(cf_future_set_result(f, V(42)), 0);
        break;
    case FAILED:
        CHECK_EQ(cf_future_set_exception(f, 7, "boom %d", 7), 0);
        break;
    default:
        break;
    }
    return f;
}

static void test_truth_tables(void)
{
    /*                              pending running cancelled notified finished failed */
    static const bool cancelled[] = { 0, 0, 1, 1, 0, 0 };
    static const bool running[] = { 0, 1, 0, 0, 0, 0 };
    static const bool done[] = { 0, 0, 1, 1, 1, 1 };
    for (int s = 0; s < NSTATES; s++) {
        fprintf(stderr, "   %s\n", state_names[s]);
        cf_future *f = make_future(s);
        CHECK_EQ(cf_future_cancelled(f), cancelled[s]);
        CHECK_EQ(cf_future_running(f), running[s]);
        CHECK_EQ(cf_future_done(f), done[s]);
        cf_future_unref(f);
    }
}

static void test_cancel(void)
{
    /* pending -> true and cancelled */
    cf_future *f = make_future(PENDING);
    CHECK(cf_future_cancel(f));
    CHECK(cf_future_cancelled(f));
    CHECK(cf_future_done(f));
    /* already cancelled -> true, no change */
    CHECK(cf_future_cancel(f));
    CHECK(cf_future_cancelled(f));
    cf_future_unref(f);

    /* cancelled-and-notified -> true, stays notified (notifying again is an error) */
    f = make_future(CANCELLED_NOTIFIED);
    CHECK(cf_future_cancel(f));
    CHECK(cf_future_cancelled(f));
    CHECK(!cf_future_set_running_or_notify_cancel(f));
    CHECK_EQ(cf_last_error(), CF_EINVALIDSTATE);
    cf_future_unref(f);

    /* running, finished, failed -> false, unchanged */
    int no[] = { RUNNING, FINISHED, FAILED };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        f = make_future(no[i]);
        CHECK(!cf_future_cancel(f));
        CHECK(!cf_future_cancelled(f));
        CHECK_EQ(cf_future_running(f), no[i] == RUNNING);
        CHECK_EQ(cf_future_done(f), no[i] != RUNNING);
        cf_future_unref(f);
    }
}

static void test_timeout_zero_each_state(void)
{
    for (int s = 0; s < NSTATES; s++) {
        fprintf(stderr, "   %s\n", state_names[s]);
        cf_future *f = make_future(s);
        void *value = V(-1);
        const cf_exception *exc = (const cf_exception *)&value; /* not NULL: must be set */
        int r = cf_future_result(f, 0, &value);
        int e = cf_future_exception(f, 0, &exc);
        switch (s) {
        case PENDING:
        case RUNNING:
            CHECK_EQ(r, CF_ETIMEDOUT);
            CHECK_EQ(e, CF_ETIMEDOUT);
            CHECK(value == V(-1)); /* set only on success */
            break;
        case CANCELLED:
        case CANCELLED_NOTIFIED:
            CHECK_EQ(r, CF_ECANCELLED);
            CHECK_EQ(e, CF_ECANCELLED);
            CHECK(value == V(-1));
            break;
        case FINISHED:
            CHECK_EQ(r, 0);
            CHECK(value == V(42));
            CHECK_EQ(e, 0);
            CHECK(exc == NULL);
            CHECK_EQ(cf_future_result_size(f), 0);
            break;
        case FAILED:
            CHECK_EQ(r, CF_ETASK);
            CHECK(value == V(-1));
            CHECK_EQ(e, 0);
            CHECK(exc != NULL);
            CHECK_EQ(exc->code, 7);
            CHECK_STR(exc->message, "boom 7");
            CHECK_EQ(exc->signal, 0);
            CHECK_EQ(exc->exit_status, -1);
            CHECK_EQ(cf_future_result_size(f), 0);
            break;
        }
        /* value NULL just waits */
        CHECK_EQ(cf_future_result(f, 0, NULL), r);
        cf_future_unref(f);
    }
}

static void test_timeout_nonzero(void)
{
    cf_future *f = make_future(RUNNING);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_result(f, 0.02, NULL), CF_ETIMEDOUT);
    CHECK_EQ(cf_future_exception(f, 0.01, &exc), CF_ETIMEDOUT);
    CHECK(!cf_future_done(f));
    cf_future_unref(f);
}

static void test_exception_status_and_message(void)
{
    struct {
        int code;
        int status;
    } cases[] = {
        { 7, CF_ETASK },
        { CF_EINVAL, CF_ETASK },
        { CF_ECANCELLED, CF_ETASK },
        { CF_EBROKEN, CF_EBROKEN },
        { CF_ETIMEDOUT, CF_ETIMEDOUT },
        { 0, CF_ETASK },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cf_future *f = cf_future_new();
        CHECK_EQ(cf_future_set_exception(f, cases[i].code, "case %zu: %s", i, "text"), 0);
        CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), cases[i].status);
        const cf_exception *exc = NULL;
        CHECK_EQ(cf_future_exception(f, CF_FOREVER, &exc), 0);
        CHECK(exc != NULL);
        CHECK_EQ(exc->code, cases[i].code);
        char want[64];
        snprintf(want, sizeof want, "case %zu: text", i);
        CHECK_STR(exc->message, want);
        cf_future_unref(f);
    }

    /* NULL format: the code's description */
    cf_future *f = cf_future_new();
    CHECK_EQ(cf_future_set_exception(f, CF_EBROKEN, NULL), 0);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    CHECK_STR(exc->message, cf_strerror(CF_EBROKEN));
    CHECK_EQ(exc->signal, 0);
    CHECK_EQ(exc->exit_status, -1);
    cf_future_unref(f);

    f = cf_future_new();
    CHECK_EQ(cf_future_set_exception(f, 12345, NULL), 0);
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    CHECK(exc->message != NULL);
    CHECK_EQ(exc->code, 12345);
    cf_future_unref(f);

    /* A long message is kept whole. */
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    f = cf_future_new();
    CHECK_EQ(cf_future_set_exception(f, 1, "%s", big), 0);
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    CHECK_STR(exc->message, big);
    cf_future_unref(f);
}

static void test_set_twice(void)
{
    for (int s = 0; s < NSTATES; s++) {
        fprintf(stderr, "   %s\n", state_names[s]);
        bool settable = s == PENDING || s == RUNNING;
        cf_future *f = make_future(s);
        CHECK_EQ(cf_future_set_result(f, V(1)), settable ? 0 : CF_EINVALIDSTATE);
        CHECK_EQ(cf_future_set_result(f, V(2)), CF_EINVALIDSTATE);
        CHECK_EQ(cf_future_set_exception(f, 3, "late %d", 3), CF_EINVALIDSTATE);
        /* the first outcome stays */
        void *value = NULL;
        int r = cf_future_result(f, 0, &value);
        if (settable) {
            CHECK_EQ(r, 0);
            CHECK(value == V(1));
        } else if (s == FINISHED) {
            CHECK_EQ(r, 0);
            CHECK(value == V(42));
        } else if (s == FAILED) {
            CHECK_EQ(r, CF_ETASK);
        } else {
            CHECK_EQ(r, CF_ECANCELLED);
        }
        cf_future_unref(f);

        f = make_future(s);
        CHECK_EQ(cf_future_set_exception(f, 5, "first"), settable ? 0 : CF_EINVALIDSTATE);
        CHECK_EQ(cf_future_set_exception(f, 6, "second"), CF_EINVALIDSTATE);
        CHECK_EQ(cf_future_set_result(f, V(2)), CF_EINVALIDSTATE);
        if (settable) {
            const cf_exception *exc = NULL;
            CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
            CHECK_EQ(exc->code, 5);
            CHECK_STR(exc->message, "first");
        }
        cf_future_unref(f);
    }
}

static void test_set_running_or_notify_cancel(void)
{
    /* pending -> running, true */
    cf_future *f = make_future(PENDING);
    CHECK(cf_future_set_running_or_notify_cancel(f));
    CHECK(cf_future_running(f));
    CHECK(!cf_future_done(f));
    /* running again: an error */
    CHECK(!cf_future_set_running_or_notify_cancel(f));
    CHECK_EQ(cf_last_error(), CF_EINVALIDSTATE);
    CHECK(cf_future_running(f));
    cf_future_unref(f);

    /* cancelled -> cancelled-and-notified, false, last error 0 */
    f = make_future(CANCELLED);
    (void)cf_future_set_running_or_notify_cancel(NULL); /* sets CF_EINVAL */
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(!cf_future_set_running_or_notify_cancel(f));
    CHECK_EQ(cf_last_error(), 0);
    CHECK(cf_future_cancelled(f));
    CHECK(!cf_future_running(f));
    CHECK_EQ(cf_future_result(f, 0, NULL), CF_ECANCELLED);
    cf_future_unref(f);

    /* finished, failed, cancelled-and-notified: an error, unchanged */
    int others[] = { FINISHED, FAILED, CANCELLED_NOTIFIED };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        f = make_future(others[i]);
        CHECK(!cf_future_set_running_or_notify_cancel(f));
        CHECK_EQ(cf_last_error(), CF_EINVALIDSTATE);
        CHECK(cf_future_done(f));
        CHECK(!cf_future_running(f));
        cf_future_unref(f);
    }
}

static void test_null_arguments(void)
{
    const cf_exception *exc = NULL;
    CHECK(cf_future_ref(NULL) == NULL);
    cf_future_unref(NULL);
    CHECK(!cf_future_cancel(NULL));
    CHECK(!cf_future_cancelled(NULL));
    CHECK(!cf_future_running(NULL));
    CHECK(!cf_future_done(NULL));
    CHECK_EQ(cf_future_result(NULL, 0, NULL), CF_EINVAL);
    CHECK_EQ(cf_future_result_size(NULL), 0);
    CHECK_EQ(cf_future_exception(NULL, 0, &exc), CF_EINVAL);
    CHECK_EQ(cf_future_add_done_callback(NULL, NULL, NULL), CF_EINVAL);
    CHECK_EQ(cf_future_set_result(NULL, NULL), CF_EINVAL);
    CHECK_EQ(cf_future_set_exception(NULL, 1, "x"), CF_EINVAL);
    CHECK(!cf_future_set_running_or_notify_cancel(NULL));
    CHECK_EQ(cf_last_error(), CF_EINVAL);

    cf_future *f = cf_future_new();
    CHECK_EQ(cf_future_exception(f, 0, NULL), CF_EINVAL);
    CHECK_EQ(cf_future_add_done_callback(f, NULL, NULL), CF_EINVAL);
    CHECK(!cf_future_done(f)); /* nothing changed */
    cf_future_unref(f);
}

static void test_refcount(void)
{
    cf_future *f = cf_future_new();
    CHECK(cf_future_ref(f) == f);
    CHECK(cf_future_ref(f) == f);
    cf_future_unref(f);
    cf_future_unref(f);
    CHECK_EQ(cf_future_set_result(f, V(1)), 0); /* still alive: one reference left */
    cf_future_unref(f);                         /* freed (ASan / valgrind would tell) */
}

/* ------------------------------------------------------------------------ */
/* Waiters in other threads                                                  */
/* ------------------------------------------------------------------------ */

typedef struct waiter_arg {
    cf_future *f;
    bool use_exception; /* block in cf_future_exception instead of result */
    atomic_bool started;
    int rc;
    void *value;
    const cf_exception *exc;
} waiter_arg;

static void *waiter_main(void *p)
{
    waiter_arg *a = p;
    atomic_store(&a->started, true);
    if (a->use_exception)
        a->rc = cf_future_exception(a->f, CF_FOREVER, &a->exc);
    else
        a->rc = cf_future_result(a->f, CF_FOREVER, &a->value);
    return NULL;
}

enum { BY_RESULT, BY_EXCEPTION, BY_CANCEL };

static void waiters_wake(int how)
{
    enum { NWAITERS = 4 };
    cf_future *f = cf_future_new();
    waiter_arg args[NWAITERS];
    pthread_t threads[NWAITERS];
    for (int i = 0; i < NWAITERS; i++) {
        args[i] = (waiter_arg){ .f = f, .use_exception = i % 2 == 1, .value = V(-1) };
        atomic_init(&args[i].started, false);
        CHECK_EQ(pthread_create(&threads[i], NULL, waiter_main, &args[i]), 0);
    }
    for (int i = 0; i < NWAITERS; i++)
        while (!atomic_load(&args[i].started))
            sched_yield();
    /* Not a synchronisation: a chance for the waiters to block for real
     * (past their spin). The test is correct either way. */
    CHECK_EQ(cf_future_result(f, 0.02, NULL), CF_ETIMEDOUT);

    switch (how) {
    case BY_RESULT:
        CHECK_EQ(cf_future_set_result(f, V(99)), 0);
        break;
    case BY_EXCEPTION:
        CHECK_EQ(cf_future_set_exception(f, 11, "bad %s", "luck"), 0);
        break;
    case BY_CANCEL:
        CHECK(cf_future_cancel(f));
        break;
    }
    for (int i = 0; i < NWAITERS; i++) {
        CHECK_EQ(pthread_join(threads[i], NULL), 0);
        waiter_arg *a = &args[i];
        switch (how) {
        case BY_RESULT:
            if (a->use_exception) {
                CHECK_EQ(a->rc, 0);
                CHECK(a->exc == NULL);
            } else {
                CHECK_EQ(a->rc, 0);
                CHECK(a->value == V(99));
            }
            break;
        case BY_EXCEPTION:
            if (a->use_exception) {
                CHECK_EQ(a->rc, 0);
                CHECK(a->exc != NULL);
                CHECK_EQ(a->exc->code, 11);
                CHECK_STR(a->exc->message, "bad luck");
            } else {
                CHECK_EQ(a->rc, CF_ETASK);
                CHECK(a->value == V(-1));
            }
            break;
        case BY_CANCEL:
            CHECK_EQ(a->rc, CF_ECANCELLED);
            break;
        }
    }
    cf_future_unref(f);
}

static void test_waiter_wakes_on_set_result(void)
{
    waiters_wake(BY_RESULT);
}
static void test_waiter_wakes_on_set_exception(void)
{
    waiters_wake(BY_EXCEPTION);
}
static void test_waiter_wakes_on_cancel(void)
{
    waiters_wake(BY_CANCEL);
}

/* A completing thread and a waiter meet many times: no lost wake-up. */
static void *complete_main(void *p)
{
    CHECK_EQ(cf_future_set_result(p, p), 0);
    return NULL;
}

static void test_ping_pong(void)
{
    for (int i = 0; i < 300; i++) {
        cf_future *f = cf_future_new();
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, complete_main, f), 0);
        void *value = NULL;
        CHECK_EQ(cf_future_result(f, CF_FOREVER, &value), 0);
        CHECK(value == f);
        CHECK_EQ(pthread_join(t, NULL), 0);
        cf_future_unref(f);
    }
}

/* ------------------------------------------------------------------------ */
/* Done-callbacks                                                            */
/* ------------------------------------------------------------------------ */

typedef struct record {
    int calls[16];
    int ncalls;
    pthread_t thread[16];
    cf_future *seen[16];
} record;

static record rec;

static void reset_record(void)
{
    memset(&rec, 0, sizeof rec);
}

static void recording_cb(cf_future *f, void *userdata)
{
    CHECK(rec.ncalls < 16);
    CHECK(cf_future_done(f)); /* callbacks see a done future */
    rec.thread[rec.ncalls] = pthread_self();
    rec.seen[rec.ncalls] = f;
    rec.calls[rec.ncalls++] = (int)(intptr_t)userdata;
}

static void test_callbacks_order_and_once(void)
{
    reset_record();
    cf_future *f = cf_future_new();
    for (int i = 1; i <= 5; i++)
        CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(i)), 0);
    CHECK_EQ(rec.ncalls, 0); /* not before completion */
    CHECK_EQ(cf_future_set_result(f, V(1)), 0);
    CHECK_EQ(rec.ncalls, 5);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(rec.calls[i], i + 1);
        CHECK(rec.seen[i] == f);
    }
    /* Never again, whatever happens next. */
    CHECK_EQ(cf_future_set_result(f, V(2)), CF_EINVALIDSTATE);
    CHECK(!cf_future_cancel(f));
    CHECK_EQ(rec.ncalls, 5);
    cf_future_unref(f);
    CHECK_EQ(rec.ncalls, 5);
}

static void test_callback_on_done_future_runs_at_once(void)
{
    for (int s = CANCELLED; s < NSTATES; s++) {
        reset_record();
        cf_future *f = make_future(s);
        CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(7)), 0);
        CHECK_EQ(rec.ncalls, 1);
        CHECK_EQ(rec.calls[0], 7);
        CHECK(pthread_equal(rec.thread[0], pthread_self()));
        cf_future_unref(f);
    }
}

static void test_callbacks_on_cancel_and_exception(void)
{
    reset_record();
    cf_future *f = cf_future_new();
    CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(1)), 0);
    CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(2)), 0);
    CHECK(cf_future_cancel(f));
    CHECK_EQ(rec.ncalls, 2);
    CHECK(cf_future_cancel(f)); /* already cancelled: no second call */
    CHECK(!cf_future_set_running_or_notify_cancel(f));
    CHECK_EQ(rec.ncalls, 2);
    cf_future_unref(f);

    reset_record();
    f = cf_future_new();
    CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(3)), 0);
    CHECK_EQ(cf_future_set_exception(f, 1, "x"), 0);
    CHECK_EQ(rec.ncalls, 1);
    CHECK_EQ(rec.calls[0], 3);
    cf_future_unref(f);

    /* Never completed: the callbacks are released with the future, not run. */
    reset_record();
    f = cf_future_new();
    for (int i = 0; i < 3; i++)
        CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(i)), 0);
    cf_future_unref(f);
    CHECK_EQ(rec.ncalls, 0);
}

static void *set_result_thread(void *p)
{
    CHECK_EQ(cf_future_set_result(p, V(5)), 0);
    return NULL;
}

static void test_callbacks_run_in_completing_thread(void)
{
    reset_record();
    cf_future *f = cf_future_new();
    CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(1)), 0);
    CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(2)), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, set_result_thread, f), 0);
    CHECK_EQ(pthread_join(t, NULL), 0); /* join orders rec for this thread */
    CHECK_EQ(rec.ncalls, 2);
    CHECK(pthread_equal(rec.thread[0], t));
    CHECK(pthread_equal(rec.thread[1], t));
    CHECK(!pthread_equal(rec.thread[0], pthread_self()));
    cf_future_unref(f);
}

/* Misbehaving callbacks: each does something a callback should not need to,
 * and every other callback still runs, once, in order. */
static void cb_release(cf_future *f, void *userdata)
{
    recording_cb(f, userdata);
    cf_future_unref(f); /* drops the test's only reference */
}

static void cb_result(cf_future *f, void *userdata)
{
    recording_cb(f, userdata);
    void *value = NULL;
    CHECK_EQ(cf_future_result(f, CF_FOREVER, &value), 0);
    CHECK(value == V(77));
    const cf_exception *exc = V(1);
    CHECK_EQ(cf_future_exception(f, CF_FOREVER, &exc), 0);
    CHECK(exc == NULL);
}

static void cb_add_callback(cf_future *f, void *userdata)
{
    recording_cb(f, userdata);
    /* Already done: runs at once, nested, before the next registered one. */
    CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(100)), 0);
}

static void cb_set_again(cf_future *f, void *userdata)
{
    recording_cb(f, userdata);
    CHECK_EQ(cf_future_set_result(f, V(0)), CF_EINVALIDSTATE);
    CHECK(!cf_future_cancel(f));
    CHECK(!cf_future_set_running_or_notify_cancel(f));
}

static void cb_new_work(cf_future *f, void *userdata)
{
    recording_cb(f, userdata);
    /* Start and finish other work (with callbacks of its own) from inside. */
    cf_future *g = cf_future_new();
    CHECK(g != NULL);
    CHECK_EQ(cf_future_add_done_callback(g, recording_cb, V(200)), 0);
    CHECK_EQ(cf_future_set_result(g, V(1)), 0);
    cf_future_unref(g);
}

static void test_misbehaving_callbacks(void)
{
    reset_record();
    cf_future *f = cf_future_new();
    CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(1)), 0);
    CHECK_EQ(cf_future_add_done_callback(f, cb_result, V(2)), 0);
    CHECK_EQ(cf_future_add_done_callback(f, cb_add_callback, V(3)), 0);
    CHECK_EQ(cf_future_add_done_callback(f, cb_set_again, V(4)), 0);
    CHECK_EQ(cf_future_add_done_callback(f, cb_new_work, V(5)), 0);
    CHECK_EQ(cf_future_add_done_callback(f, cb_release, V(6)), 0);
    CHECK_EQ(cf_future_add_done_callback(f, cb_result, V(7)), 0); /* after the release */
    CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(8)), 0);
    CHECK_EQ(cf_future_set_result(f, V(77)), 0);
    /* f is gone now: cb_release dropped the last reference of the test. */
    int want[] = { 1, 2, 3, 100, 4, 5, 200, 6, 7, 8 };
    CHECK_EQ(rec.ncalls, (int)(sizeof want / sizeof want[0]));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK_EQ(rec.calls[i], want[i]);
}

static void test_release_in_callback_on_cancel(void)
{
    reset_record();
    cf_future *f = cf_future_new();
    CHECK_EQ(cf_future_add_done_callback(f, cb_release, V(1)), 0);
    CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(2)), 0);
    CHECK(cf_future_cancel(f)); /* f is gone after this */
    CHECK_EQ(rec.ncalls, 2);
    CHECK_EQ(rec.calls[1], 2);
}

/* ------------------------------------------------------------------------ */
/* Races and out-of-memory                                                   */
/* ------------------------------------------------------------------------ */

static atomic_int race_callbacks;

static void count_cb(cf_future *f, void *userdata)
{
    (void)f;
    (void)userdata;
    atomic_fetch_add(&race_callbacks, 1);
}

static void *worker_like(void *p)
{
    cf_future *f = p;
    if (cf_future_set_running_or_notify_cancel(f))
        CHECK_EQ(cf_future_set_result(f, V(3)), 0);
    return NULL;
}

/* cancel against an executor's set_running_or_notify_cancel + set_result:
 * exactly one side wins and the callback runs exactly once. */
static void test_cancel_race(void)
{
    for (int i = 0; i < 300; i++) {
        atomic_store(&race_callbacks, 0);
        cf_future *f = cf_future_new();
        CHECK_EQ(cf_future_add_done_callback(f, count_cb, NULL), 0);
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, worker_like, f), 0);
        bool cancelled = cf_future_cancel(f);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(atomic_load(&race_callbacks), 1);
        void *value = NULL;
        int rc = cf_future_result(f, 0, &value);
        if (cancelled) {
            CHECK_EQ(rc, CF_ECANCELLED);
            CHECK(cf_future_cancelled(f));
        } else {
            CHECK_EQ(rc, 0);
            CHECK(value == V(3));
        }
        cf_future_unref(f);
    }
}

static void test_out_of_memory(void)
{
    fail_allocs = 1;
    CHECK(cf_future_new() == NULL);
    CHECK_EQ(cf_last_error(), CF_ENOMEM);
    CHECK_EQ(fail_allocs, 0);

    /* The first callback is stored inline; the second needs memory. */
    reset_record();
    cf_future *f = cf_future_new();
    CHECK(f != NULL);
    CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(1)), 0);
    fail_allocs = 1;
    CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(2)), CF_ENOMEM);
    CHECK_EQ(cf_future_add_done_callback(f, recording_cb, V(3)), 0);
    CHECK_EQ(cf_future_set_result(f, NULL), 0);
    CHECK_EQ(rec.ncalls, 2);
    CHECK_EQ(rec.calls[0], 1);
    CHECK_EQ(rec.calls[1], 3);
    cf_future_unref(f);

    /* No memory for the message: the code's description instead. */
    f = cf_future_new();
    fail_allocs = 1;
    CHECK_EQ(cf_future_set_exception(f, CF_EBROKEN, "lost %d", 1), 0);
    CHECK_EQ(cf_future_result(f, 0, NULL), CF_EBROKEN);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    CHECK_EQ(exc->code, CF_EBROKEN);
    CHECK_STR(exc->message, cf_strerror(CF_EBROKEN));
    cf_future_unref(f);

    /* No memory at all: the status survives, the exception says why. */
    f = cf_future_new();
    fail_allocs = 100;
    CHECK_EQ(cf_future_set_exception(f, 9, "lost %d", 2), 0);
    fail_allocs = 0;
    CHECK_EQ(cf_future_result(f, 0, NULL), CF_ETASK);
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    CHECK(exc != NULL);
    CHECK(exc->message != NULL);
    cf_future_unref(f);
}

int main(void)
{
    CHECK_EQ(cf_set_alloc_funcs(test_malloc, test_realloc, free), 0);
    RUN(test_truth_tables);
    RUN(test_cancel);
    RUN(test_timeout_zero_each_state);
    RUN(test_timeout_nonzero);
    RUN(test_exception_status_and_message);
    RUN(test_set_twice);
    RUN(test_set_running_or_notify_cancel);
    RUN(test_null_arguments);
    RUN(test_refcount);
    RUN(test_waiter_wakes_on_set_result);
    RUN(test_waiter_wakes_on_set_exception);
    RUN(test_waiter_wakes_on_cancel);
    RUN(test_ping_pong);
    RUN(test_callbacks_order_and_once);
    RUN(test_callback_on_done_future_runs_at_once);
    RUN(test_callbacks_on_cancel_and_exception);
    RUN(test_callbacks_run_in_completing_thread);
    RUN(test_misbehaving_callbacks);
    RUN(test_release_in_callback_on_cancel);
    RUN(test_cancel_race);
    RUN(test_out_of_memory);
    return 0;
}
