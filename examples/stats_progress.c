/* stats_progress.c: a progress display for a long map, driven by the
 * executor's statistics on a timer.
 *
 *     with ProcessPoolExecutor() as ex:
 *         results = ex.map(cpu_bound_func, nums, chunksize=4)
 *         # ...and a timer that shows how far it got
 *
 * Python has no way to ask an executor how far it is; cf_executor_stats_get
 * gives a snapshot (completed, running, pending, workers) at any moment, from
 * any thread, at no cost to the work. Here a libuv timer on the main thread
 * reads it ten times a second while the process pool works through the map,
 * then the results are read and checked against a plain loop.
 *
 * On a terminal it redraws one progress bar; when stdout is a pipe or a file
 * it prints a plain line each time the count changes.
 *
 * Run: ./stats_progress          about two seconds of work
 *      ./stats_progress --quick  a fraction of a second, for the tests
 *
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

/* The seeds' cpu_bound_func (see cpu_bound.c): a triple loop. */
static void *cpu_bound_func(void *arg)
{
    uint64_t num = (uint64_t)(uintptr_t)arg;
    uint64_t total = 1;
    for (uint64_t i = 1; i < num; i++)
        for (uint64_t j = 1; j < num; j++)
            for (uint64_t k = 1; k < num; k++)
                total = total * (i * j * k) + 1; /* +1: the value stays interesting */
    return (void *)(uintptr_t)total;
}

enum { CHUNK = 4 };

typedef struct progress {
    cf_executor *ex;
    unsigned long long chunks; /* tasks the map made */
    unsigned long long shown;  /* completed at the last line printed */
    bool tty;
    int lines;
} progress;

static void show(progress *p, const cf_executor_stats *s)
{
    unsigned pct = (unsigned)(100 * s->completed / p->chunks);
    if (p->tty) {
        char bar[41];
        unsigned fill = pct * 40 / 100;
        memset(bar, '#', fill);
        memset(bar + fill, '.', 40 - fill);
        bar[40] = '\0';
        printf("\r[%s] %3u%%  %zu running, %zu pending, %zu workers", bar, pct, s->running,
               s->pending, s->workers);
        fflush(stdout);
    } else if (s->completed != p->shown || p->lines == 0) {
        printf("progress: %3u%% (%llu of %llu chunks done, %zu running, %zu pending, "
               "%zu workers)\n",
               pct, s->completed, p->chunks, s->running, s->pending, s->workers);
        p->lines++;
    }
    p->shown = s->completed;
}

static void on_tick(uv_timer_t *t)
{
    progress *p = t->data;
    cf_executor_stats s;
    if (cf_executor_stats_get(p->ex, &s) != 0)
        return;
    show(p, &s);
    if (s.completed >= p->chunks) { /* the map is done: so are we */
        if (p->tty)
            printf("\n");
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
    }
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    size_t n = quick ? 24 : 96;
    uintptr_t num = quick ? 120 : 220;

    void *args[96];
    for (size_t i = 0; i < n; i++)
        args[i] = (void *)(num + i % 7);

    cf_executor *ex = cf_process_pool_new(NULL);
    if (!ex) {
        fprintf(stderr, "no process pool: %s\n", cf_last_error_message());
        return 1;
    }
    /* The map submits every chunk now and returns: the work goes on while
     * the loop below shows how far it got. */
    cf_map_iter *it = cf_map(ex, cpu_bound_func, args, n, &(cf_map_opts){ .chunksize = CHUNK });
    if (!it) {
        fprintf(stderr, "cf_map: %s\n", cf_last_error_message());
        cf_executor_free(ex);
        return 1;
    }
    progress p = { .ex = ex, .chunks = (n + CHUNK - 1) / CHUNK, .tty = isatty(1) };
    uv_loop_t loop;
    uv_timer_t tick;
    if (uv_loop_init(&loop) != 0)
        return 1;
    uv_timer_init(&loop, &tick);
    tick.data = &p;
    uv_timer_start(&tick, on_tick, 0, quick ? 20 : 100);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    /* Every chunk is done: the results are there to read, in order. */
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        void *v;
        if (cf_map_next(it, &v) != 1 || v != cpu_bound_func(args[i]))
            bad++;
    }
    cf_map_free(it);
    cf_executor_stats s;
    cf_executor_stats_get(ex, &s);
    printf("done: %zu items in %llu chunks, %llu failed, %s\n", n, s.completed, s.failed,
           bad ? "WRONG RESULTS" : "every result checked against a plain loop");
    cf_executor_free(ex);
    return bad ? 1 : 0;
}
