/* crash_isolation.c: tasks that crash their worker process, and the rest
 * completing anyway.
 *
 * The Python posts (seeds 001, 002) list the one thing processes do that
 * threads cannot: "a problem in one process does not affect the others",
 * while "one bad thread takes the whole process down". In C that is the
 * real reason to choose a process pool: a segfault, an abort() or an exit()
 * in a thread ends your program; in a worker process it ends the worker.
 *
 * cfutures goes further than Python here. Python's ProcessPoolExecutor
 * marks the whole pool broken when a worker dies (every pending future gets
 * BrokenProcessPool). A cfutures process pool fails only the task that was
 * running in the dead worker, with CF_EBROKEN and the signal or exit status
 * in its cf_exception, starts a new worker, and goes on with the rest.
 *
 * A task that fails normally (cf_raise, Python's `raise`) is different: its
 * worker lives on, and the future reports CF_ETASK with the task's code and
 * message.
 *
 * Run: ./crash_isolation  (fast: --quick is accepted and changes nothing)
 *
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TASKS = 12 };

/* What task i does. Most return i * i; a few misbehave. */
typedef enum { RETURNS, SEGFAULTS, ABORTS, EXITS, RAISES } behaviour;

static behaviour behaviour_of(intptr_t i)
{
    switch (i) {
    case 2:
        return SEGFAULTS;
    case 5:
        return ABORTS;
    case 8:
        return EXITS;
    case 10:
        return RAISES;
    default:
        return RETURNS;
    }
}

static void *risky_task(void *arg)
{
    intptr_t i = (intptr_t)arg;
    switch (behaviour_of(i)) {
    case SEGFAULTS:
        raise(SIGSEGV);
        break; /* as if it dereferenced a bad pointer */
    case ABORTS:
        abort(); /* a failed assert() does this */
    case EXITS:
        exit(3); /* a library that calls exit() on error */
    case RAISES:
        return cf_raise(42, "bad input %d", (int)i); /* Python's raise */
    case RETURNS:
        break;
    }
    return (void *)(i * i);
}

/* Prints what happened to task i and returns 1 if it is what we expected. */
static int report(intptr_t i, cf_future *f)
{
    void *value = NULL;
    int rc = cf_future_result(f, CF_FOREVER, &value);
    const cf_exception *exc = NULL;
    cf_future_exception(f, CF_FOREVER, &exc);

    printf("task %2d: ", (int)i);
    if (rc == 0) {
        printf("returned %ld\n", (long)(intptr_t)value);
        return behaviour_of(i) == RETURNS && (intptr_t)value == i * i;
    }
    if (rc == CF_ETASK) {
        printf("raised code %d: \"%s\" (%s)\n", exc->code, exc->message, cf_err_name(rc));
        return behaviour_of(i) == RAISES && exc->code == 42;
    }
    if (rc == CF_EBROKEN && exc->signal) {
        printf("its worker was killed by signal %d, %s (%s)\n", exc->signal, strsignal(exc->signal),
               cf_err_name(rc));
    } else if (rc == CF_EBROKEN) {
        printf("its worker exited with status %d (%s)\n", exc->exit_status, cf_err_name(rc));
    } else {
        printf("%s\n", cf_strerror(rc));
        return 0;
    }
    /* A sanitizer build may turn a signal into an exit with an error status. */
    switch (behaviour_of(i)) {
    case SEGFAULTS:
        return exc->signal == SIGSEGV || exc->exit_status > 0;
    case ABORTS:
        return exc->signal == SIGABRT || exc->exit_status > 0;
    case EXITS:
        return exc->exit_status == 3;
    default:
        return 0;
    }
}

int main(void)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 });
    if (!ex && cf_last_error() == CF_ENOTSUP) {
        printf("NOTE: process pool not available in this build (CF_ENOTSUP): "
               "nothing to show yet\n");
        return 0;
    }
    if (!ex) {
        fprintf(stderr, "process pool: %s\n", cf_strerror(cf_last_error()));
        return 1;
    }

    /* futures = [ex.submit(risky_task, i) for i in range(12)] */
    cf_future *futures[TASKS];
    for (intptr_t i = 0; i < TASKS; i++) {
        futures[i] = cf_submit(ex, risky_task, (void *)i);
        if (!futures[i]) {
            fprintf(stderr, "submit: %s\n", cf_strerror(cf_last_error()));
            return 1;
        }
    }

    /* Report in submission order (cf_wait would also do: the crashes do not
     * stop the other futures from completing). */
    int as_expected = 0, completed = 0;
    for (intptr_t i = 0; i < TASKS; i++) {
        as_expected += report(i, futures[i]);
        completed += cf_future_result(futures[i], 0, NULL) == 0;
        cf_future_unref(futures[i]);
    }
    printf("3 workers died and 1 task raised; the other %d tasks completed\n", completed);

    /* The pool replaced its dead workers: new work still runs. */
    cf_future *later = cf_submit(ex, risky_task, (void *)12);
    void *value = NULL;
    int rc = cf_future_result(later, CF_FOREVER, &value);
    cf_future_unref(later);
    cf_executor_free(ex);
    if (rc != 0 || (intptr_t)value != 144) {
        fprintf(stderr, "a task submitted after the crashes failed: %s\n", cf_strerror(rc));
        return 1;
    }
    printf("a task submitted after the crashes returned %ld\n", (long)(intptr_t)value);

    if (as_expected != TASKS || completed != TASKS - 4) {
        fprintf(stderr, "%d of %d tasks did not end as expected\n", TASKS - as_expected, TASKS);
        return 1;
    }
    return 0;
}
