/* cf-bench --memory: what a pending future costs. A pool with one worker is
 * held on a gate (its first task waits), then 1,000,000 tasks are submitted;
 * the growth of VmRSS (/proc/self/status) divided by their number is the
 * figure, in bytes per pending future. The array of future pointers is
 * allocated and touched before the first reading, so it is not counted.
 *   thread pool:  the gate task waits on a future the benchmark completes;
 *   process pool: the gate task (in the worker) opens a FIFO for reading,
 *                 which blocks until the benchmark opens it for writing.
 *
 * map_chunked_memory: what a chunked cf_map holds per item at its peak, when
 * every task has run and no result has been taken yet: 10,000,000 items
 * (1,000,000 with --quick) in chunks of 1000 on a thread pool of 2 workers,
 * the growth of VmRSS from before cf_map to then, divided by the items. The
 * args array is the caller's (allocated and touched before), so it is not
 * counted.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <cfutures.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A field of /proc/self/status in bytes ("VmRSS", "VmHWM"), or 0. */
static size_t proc_status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    size_t len = strlen(field), kib = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            kib = strtoull(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib * 1024;
}

static void *task_identity(void *arg)
{
    return arg;
}

static void *task_wait_gate(void *arg)
{
    cf_future_result((cf_future *)arg, CF_FOREVER, NULL);
    return NULL;
}

static void *task_wait_fifo(void *arg)
{
    int fd = open((const char *)arg, O_RDONLY);
    if (fd < 0)
        return cf_raise(CF_ESYSTEM, "open fifo: %s", strerror(errno));
    close(fd);
    return NULL;
}

/* Open the process pool's gate: succeeds once the worker waits in open(). */
static bool open_fifo_gate(const char *path, cf_future *gate_task)
{
    for (;;) {
        int fd = open(path, O_WRONLY | O_NONBLOCK);
        if (fd >= 0) {
            close(fd);
            return true;
        }
        if (errno != ENXIO || cf_future_done(gate_task))
            return false;
        bench_sleep_ms(1); /* the worker has not reached open() yet */
    }
}

static void measure(bool process, size_t n)
{
    const char *system = bench_cf_system(process);
    int code;
    cf_executor *ex = bench_cf_pool(process, 1, &code);
    if (!ex) {
        if (code == CF_ENOTSUP)
            bench_note("%s: not available yet (CF_ENOTSUP): memory skipped", system);
        else
            bench_note("%s: memory: creating the pool failed: %s", system, cf_err_name(code));
        return;
    }
    cf_future **fs = malloc(n * sizeof *fs);
    if (!fs) {
        cf_executor_free(ex);
        return;
    }
    memset(fs, 0, n * sizeof *fs);

    char fifo[64] = "";
    cf_future *gate = NULL, *gate_task = NULL;
    if (process) {
        snprintf(fifo, sizeof fifo, "/tmp/cf-bench-gate-%ld", (long)getpid());
        if (mkfifo(fifo, 0600) == 0)
            gate_task = cf_submit_copy(ex, task_wait_fifo, fifo, strlen(fifo) + 1);
    } else {
        gate = cf_future_new();
        if (gate)
            gate_task = cf_submit(ex, task_wait_gate, gate);
    }
    if (!gate_task) {
        bench_note("%s: memory: no gate: %s", system, cf_err_name(cf_last_error()));
        goto out;
    }

    size_t rss_before = proc_status_bytes("VmRSS");
    size_t submitted = 0;
    for (; submitted < n; submitted++)
        if (!(fs[submitted] = cf_submit(ex, task_identity, (void *)(intptr_t)submitted)))
            break;
    size_t rss_after = proc_status_bytes("VmRSS");
    size_t hwm = proc_status_bytes("VmHWM");

    if (submitted < n)
        bench_note("%s: memory: submit %zu failed: %s", system, submitted,
                   cf_err_name(cf_last_error()));
    else if (rss_before == 0 || rss_after == 0)
        bench_note("%s: memory: /proc/self/status unreadable", system);
    else {
        bench_note("%s: %zu pending futures: VmRSS %zu -> %zu KiB, VmHWM %zu KiB", system, n,
                   rss_before / 1024, rss_after / 1024, hwm / 1024);
        double per = rss_after > rss_before ? (double)(rss_after - rss_before) / (double)n : 0;
        bench_report(system, "pending_future_memory", per, "bytes/future");
    }

    if (process) {
        if (!open_fifo_gate(fifo, gate_task)) {
            bench_note("%s: memory: could not open the gate; killing the worker", system);
            cf_executor_kill_workers(ex);
        }
    } else {
        cf_future_set_result(gate, NULL);
    }
    for (size_t i = 0; i < submitted; i++) {
        cf_future_result(fs[i], CF_FOREVER, NULL);
        cf_future_unref(fs[i]);
    }
out:
    cf_future_unref(gate_task);
    cf_executor_free(ex);
    cf_future_unref(gate);
    if (fifo[0])
        unlink(fifo);
    free(fs);
}

static atomic_size_t items_run;

static void *task_count_square(void *arg)
{
    atomic_fetch_add_explicit(&items_run, 1, memory_order_relaxed);
    uintptr_t x = (uintptr_t)arg;
    return (void *)(x * x);
}

static void measure_map(size_t n, size_t chunksize)
{
    const char *system = bench_cf_system(false);
    int code;
    cf_executor *ex = bench_cf_pool(false, 2, &code);
    void **args = malloc(n * sizeof *args);
    if (!ex || !args) {
        bench_note("%s: map memory: no pool or no memory (%s)", system, cf_err_name(code));
        cf_executor_free(ex);
        free(args);
        return;
    }
    for (size_t i = 0; i < n; i++)
        args[i] = (void *)(uintptr_t)(i & 0xffff);
    atomic_store(&items_run, 0);
    size_t rss_before = proc_status_bytes("VmRSS");
    cf_map_iter *it =
        cf_map(ex, task_count_square, args, n, &(cf_map_opts){ .chunksize = chunksize });
    if (!it) {
        bench_note("%s: map memory: cf_map failed: %s", system, cf_err_name(cf_last_error()));
    } else {
        /* Every chunk's result block exists once its first item has run. */
        while (atomic_load(&items_run) < n)
            bench_sleep_ms(1);
        size_t rss_after = proc_status_bytes("VmRSS");
        uint64_t sum = 0, expect = 0;
        for (size_t i = 0; i < n; i++)
            expect += (uint64_t)(i & 0xffff) * (i & 0xffff);
        void *const *values;
        size_t count;
        int rc;
        while ((rc = cf_map_next_batch(it, &values, &count)) == 1)
            for (size_t i = 0; i < count; i++)
                sum += (uint64_t)(uintptr_t)values[i];
        if (rc != 0 || sum != expect)
            bench_note("%s: map memory: wrong results (%s)", system, cf_err_name(rc));
        else if (rss_before == 0 || rss_after == 0)
            bench_note("%s: map memory: /proc/self/status unreadable", system);
        else {
            bench_note("%s: %zu-item map in chunks of %zu: VmRSS %zu -> %zu KiB", system, n,
                       chunksize, rss_before / 1024, rss_after / 1024);
            double per = rss_after > rss_before ? (double)(rss_after - rss_before) / (double)n : 0;
            bench_report(system, "map_chunked_memory", per, "bytes/item");
        }
        cf_map_free(it);
    }
    cf_executor_free(ex);
    free(args);
}

void bench_memory(const bench_params *p, bool want_thread, bool want_process)
{
    size_t n = p->quick ? 100000 : 1000000;
    if (want_thread)
        measure(false, n);
    if (want_process)
        measure(true, n);
    if (want_thread)
        measure_map(p->quick ? 1000000 : 10000000, p->map_chunksize);
}
