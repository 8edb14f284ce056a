/* cf-bench --memory: what a pending future costs. A pool with one worker is
 * held on a gate (its first task waits), then 1,000,000 tasks are submitted;
 * the growth of VmRSS (/proc/self/status) divided by their number is the
 * figure, in bytes per pending future. The array of future pointers is
 * allocated and touched before the first reading, so it is not counted.
 *   thread pool:  the gate task waits on a future the benchmark completes;
 *   process pool: the gate task (in the worker) opens a FIFO for reading,
 *                 which blocks until the benchmark opens it for writing.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <cfutures.h>
#include <errno.h>
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

static void *task_identity(void *arg) { return arg; }

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

void bench_memory(const bench_params *p, bool want_thread, bool want_process)
{
    size_t n = p->quick ? 100000 : 1000000;
    if (want_thread)
        measure(false, n);
    if (want_process)
        measure(true, n);
}
