/* io_bound.c: tasks that mostly wait, run one after another and on a thread pool.
 *
 * The lesson of the Python posts (seeds 000 and 004): a thread that waits
 * for I/O releases the GIL, so even in Python threads pay off when the work
 * is waiting (network, disk, sleep): while one thread waits, the others run.
 *
 * That lesson holds in C unchanged, and it holds for any number of CPUs:
 * a waiting thread uses none. Ten workers wait ten times at once, so the
 * pool finishes in about a tenth of the serial time. (A process pool would
 * too, but a process per waiting task costs far more than a thread.)
 *
 * Run: ./io_bound          20 downloads of 100 ms each
 *      ./io_bound --quick  the same with 5 ms each, for the tests
 *
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h> /* uv_hrtime, uv_sleep */

enum { TASKS = 20, WORKERS = 10 };

static unsigned latency_ms = 100;

/* A pretend download: the time goes to waiting for the network, as a real
 * program waits in recv() or read(). Returns the page's size in bytes. */
static void *fetch_page(void *arg)
{
    intptr_t page = (intptr_t)arg;
    uv_sleep(latency_ms);
    return (void *)(1000 + page);
}

static double seconds_since(uint64_t start_ns)
{
    return (double)(uv_hrtime() - start_ns) / 1e9;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--quick") == 0)
        latency_ms = 5;
    intptr_t expected = 0;
    for (intptr_t page = 0; page < TASKS; page++)
        expected += 1000 + page;

    /* Serial: for page in range(20): total += fetch_page(page) */
    uint64_t t0 = uv_hrtime();
    intptr_t serial_total = 0;
    for (intptr_t page = 0; page < TASKS; page++)
        serial_total += (intptr_t)fetch_page((void *)page);
    double serial_secs = seconds_since(t0);

    /* with ThreadPoolExecutor(max_workers=10) as ex:
     *     futures = [ex.submit(fetch_page, page) for page in range(20)]
     *     total = sum(f.result() for f in futures)                        */
    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = WORKERS });
    if (!ex) {
        fprintf(stderr, "thread pool: %s\n", cf_strerror(cf_last_error()));
        return 1;
    }
    t0 = uv_hrtime();
    cf_future *futures[TASKS];
    for (intptr_t page = 0; page < TASKS; page++) {
        futures[page] = cf_submit(ex, fetch_page, (void *)page);
        if (!futures[page]) {
            fprintf(stderr, "submit: %s\n", cf_strerror(cf_last_error()));
            return 1;
        }
    }
    intptr_t pool_total = 0;
    for (int i = 0; i < TASKS; i++) {
        void *size;
        int rc = cf_future_result(futures[i], CF_FOREVER, &size);
        if (rc != 0) {
            fprintf(stderr, "page %d: %s\n", i, cf_strerror(rc));
            return 1;
        }
        pool_total += (intptr_t)size;
        cf_future_unref(futures[i]); /* cf_submit gave us one reference */
    }
    double pool_secs = seconds_since(t0);
    cf_executor_free(ex);

    printf("%d downloads of %u ms each\n", TASKS, latency_ms);
    printf("one after another:          %6.3f s\n", serial_secs);
    printf("thread pool of %d workers:  %6.3f s  (%.1fx faster)\n", WORKERS, pool_secs,
           serial_secs / pool_secs);
    if (serial_total != expected || pool_total != expected) {
        fprintf(stderr, "wrong total: %ld and %ld, expected %ld\n", (long)serial_total,
                (long)pool_total, (long)expected);
        return 1;
    }
    printf("both fetched %ld bytes\n", (long)pool_total);
    return 0;
}
