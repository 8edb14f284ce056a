/* What the files of cf-bench share: the workloads' sizes, the tasks, timing,
 * the median-of-N reporting and the table of figures.
 * SPDX-License-Identifier: MIT */
#ifndef CF_BENCH_H
#define CF_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* bench_tbb.cpp */
#endif

/* ------------------------------------------------------------------------ */
/* Workloads                                                                 */
/* ------------------------------------------------------------------------ */

typedef enum bench_workload {
    BENCH_EMPTY_THROUGHPUT,
    BENCH_ROUNDTRIP_LATENCY,
    BENCH_CPU_SPEEDUP,
    BENCH_MAP_CHUNKED,
    BENCH_SLEEP_CONCURRENCY,
    BENCH_LOOP_ROUNDTRIP, /* bench_loop.c: cfutures and libuv only */
    /* fib(fib_n) where every call at or above fib_cutoff runs its two halves
     * as nested tasks and waits for them (below it: bench_fib, serial):
     * calls of fib per second, and the speedup over serial as a second
     * figure (nested_fib_speedup). Only systems with nested parallelism run
     * it (see bench_cfutures_workloads and bench_peers.c). */
    BENCH_NESTED_FIB,
    BENCH_WORKLOAD_COUNT
} bench_workload;

const char *bench_workload_name(bench_workload w);
const char *bench_workload_unit(bench_workload w);
/* true when a bigger figure is better (tasks/s, x), false for times. */
bool bench_workload_higher_is_better(bench_workload w);
/* The set of workloads a system runs: bit (1u << w) for each. */
#define BENCH_BIT(w) (1u << (w))
#define BENCH_CLASSIC_FIVE                                                                         \
    (BENCH_BIT(BENCH_EMPTY_THROUGHPUT) | BENCH_BIT(BENCH_ROUNDTRIP_LATENCY) |                      \
     BENCH_BIT(BENCH_CPU_SPEEDUP) | BENCH_BIT(BENCH_MAP_CHUNKED) |                                 \
     BENCH_BIT(BENCH_SLEEP_CONCURRENCY))
/* The same for any figure's name: a workload's, or one of the extra figures
 * (map_chunked_per_item, nested_fib_speedup, map_chunked_memory ...). */
bool bench_figure_higher_is_better(const char *name);

/* Sizes of the workloads (the full set, or the smaller --quick one). */
typedef struct bench_params {
    int workers;          /* 2 */
    size_t empty_tasks;   /* 200,000 */
    size_t roundtrips;    /* 20,000 (also loop_roundtrip's) */
    size_t cpu_calls;     /* 100 */
    int cpu_num;          /* 300 */
    size_t map_items;     /* 1,000,000 */
    size_t map_chunksize; /* 1000 */
    size_t sleep_tasks;   /* 100 */
    int sleep_ms;         /* 10 */
    int sleep_workers;    /* 10 */
    int fib_n;            /* 25 */
    int fib_cutoff;       /* 12: calls of fib(n <= 12) run serially */
    size_t fib_rounds;    /* 100 fib(25) per run (each ~0.15 ms serially) */
    int repeat;           /* runs per figure (median) */
    bool quick;
} bench_params;

void bench_params_init(bench_params *p, bool quick, int repeat);

/* ------------------------------------------------------------------------ */
/* Tasks, shared by every system (on a process pool they run in the worker,  */
/* so they take and return values only).                                     */
/* ------------------------------------------------------------------------ */

/* The seed's triple loop: total *= i*j*k over i, j, k in range(1, num),
 * wrapping in uint64_t. */
uint64_t bench_cpu_loop(int num);
/* The cpu_speedup baseline: p->cpu_calls calls of bench_cpu_loop(p->cpu_num)
 * in this thread; returns the nanoseconds taken and sets *expect to the
 * result every pooled call must give. */
uint64_t bench_cpu_serial(const bench_params *p, uint64_t *expect);
/* What map_chunked's results add up to: the sum of i*i for i < n. */
uint64_t bench_square_sum(size_t n);
/* The plain recursive fib(n), and the nested_fib baseline: p->fib_rounds
 * calls of bench_fib(p->fib_n) in this thread; returns the nanoseconds taken
 * (every pooled fib must give bench_fib(p->fib_n)). */
uint64_t bench_fib(int n);
uint64_t bench_fib_serial(const bench_params *p);
/* Spin for `iters` iterations of a loop the compiler cannot remove;
 * bench_spin_calibrate() tells how many make one microsecond. */
void bench_spin(uint64_t iters);
uint64_t bench_spin_calibrate(void);
void bench_sleep_ms(int ms);

/* ------------------------------------------------------------------------ */
/* Time and statistics                                                       */
/* ------------------------------------------------------------------------ */

uint64_t bench_now_ns(void); /* monotonic */
/* map_chunked's output: one array of n items for every system, allocated and
 * touched on the first call (call it before the clock starts), so that the
 * figure is the loop's and not the kernel's page faults (a fresh 8 MB array
 * per run costs about 1 ms of them, and glibc's malloc hands the first
 * system fresh pages and the later ones reused ones). NULL: out of memory. */
uint64_t *bench_out_array(size_t n);
double bench_median(double *values, size_t n); /* sorts values */
int bench_cpu_count(void);

/* ------------------------------------------------------------------------ */
/* Figures: each printed as `system workload value unit` and kept for the    */
/* side-by-side table.                                                        */
/* ------------------------------------------------------------------------ */

/* Report the median of n runs; prints a `# noisy:` line when the spread
 * (max - min) / median exceeds 20%. Takes over (sorts) values. */
void bench_report_runs(const char *system, const char *workload, double *values, size_t n,
                       const char *unit);
/* Report one figure as it is (e.g. parsed from another program's output). */
void bench_report(const char *system, const char *workload, double value, const char *unit);
/* A `# ...` note line (printed and flushed at once). */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef struct bench_figure {
    char system[32];
    char workload[48];
    char unit[16];
    double value;
} bench_figure;

/* The figures reported so far, in order. */
size_t bench_figure_count(void);
const bench_figure *bench_figure_at(size_t i);
/* The figure of (system, workload), or NULL. */
const bench_figure *bench_figure_find(const char *system, const char *workload);

/* ------------------------------------------------------------------------ */
/* Systems                                                                   */
/* ------------------------------------------------------------------------ */

/* cfutures' thread pool or process pool: the workloads it runs (a system
 * that cannot run a workload does not report it), and one of them run
 * `p->repeat` times and reported; false when the pool is unavailable or a
 * run failed (after a note). */
unsigned bench_cfutures_workloads(bool process);
bool bench_cfutures_run(bool process, bench_workload w, const bench_params *p);

/* The peers of --compare: other executors (and the floors: no executor,
 * the transport alone) on the same workloads, one file each, each built only
 * when meson found what it needs (bench_peers.c lists them). */
typedef struct bench_peer {
    const char *system; /* the system of its figures */
    bool process;       /* compared with cfutures' process pool (else thread) */
    unsigned workloads; /* BENCH_BIT of each workload it runs */
    /* Run one workload `p->repeat` times and report it; false after a note
     * when it failed. NULL when not built. */
    bool (*run)(bench_workload w, const bench_params *p);
    const char *missing; /* run == NULL: what the build did not find */
    const char *what;    /* a floor: what it measures; NULL for an executor */
} bench_peer;

size_t bench_peer_count(void);
const bench_peer *bench_peer_at(size_t i);
/* The peer whose figures are `system`'s, or NULL (cfutures, Python). */
const bench_peer *bench_peer_find(const char *system);

/* How a peer runs a workload: `once` gives the figure of one run (NAN when
 * it failed); bench_repeat calls it `p->repeat` times and reports the median
 * under `system`, or notes the failure and returns false. */
typedef double (*bench_once_fn)(bench_workload w, const bench_params *p, void *ctx);
bool bench_repeat(const char *system, bench_workload w, const bench_params *p, bench_once_fn once,
                  void *ctx);

/* The peers' entry points (bench_<peer>.c). */
bool bench_glib_run(bench_workload w, const bench_params *p);
/* libuv's threadpool size is fixed at first use, so libuv figures come from a
 * child cf-bench per pool size (bench_uv_child runs inside it). */
bool bench_uv_run(bench_workload w, const bench_params *p);
int bench_uv_child(bench_workload w, const bench_params *p);
/* loop_roundtrip: cfutures' thread pool through cf_uv_run_in_executor, and
 * (compare) libuv's uv_queue_work from a child cf-bench, which runs
 * bench_loop_uv_child. */
bool bench_loop_run(const bench_params *p, bool compare);
int bench_loop_uv_child(const bench_params *p);
bool bench_tbb_run(bench_workload w, const bench_params *p); /* bench_tbb.cpp */
bool bench_pthreadpool_run(bench_workload w, const bench_params *p);
bool bench_openmp_run(bench_workload w, const bench_params *p);
/* The floors: pipe-poll, pipe-block and socket-poll (bench_pipe.c), spin
 * (bench_spin.c). */
bool bench_pipe_poll_run(bench_workload w, const bench_params *p);
bool bench_pipe_block_run(bench_workload w, const bench_params *p);
bool bench_socket_poll_run(bench_workload w, const bench_params *p);
bool bench_spin_run(bench_workload w, const bench_params *p);

/* Python's concurrent.futures through pybench.py: the five workloads (or only
 * `workload` when >= 0; only `pool` "thread" or "process" when not NULL), or
 * the memory figure. False if python3 is missing or the script failed. */
bool bench_python_run(const bench_params *p, bool memory, int workload, const char *pool);

/* Run argv (argv[0] searched in PATH) with extra environment `env_assign`
 * ("NAME=value" or NULL), pass its `#` lines through, and report each
 * `system workload value unit` line. Returns the exit status, or -1. */
int bench_run_child(char *const argv[], const char *env_assign);

/* cfutures helpers for the sweep and memory files: a pool with `workers`
 * workers, all of them started (NULL with a note when unavailable; *code gets
 * cf_last_error()), and the name of its system. */
typedef struct cf_executor cf_executor;
cf_executor *bench_cf_pool(bool process, int workers, int *code);
const char *bench_cf_system(bool process);

/* One run of workload w on ex, any cfutures executor: its figure, or NAN
 * after a note; and the warm-up that starts `workers` workers of ex. */
double bench_cf_run_once(cf_executor *ex, bench_workload w, const bench_params *p);
int bench_cf_warm_up(cf_executor *ex, int workers);

/* cfutures' MPI pool (bench_mpi.c, when libcfutures-mpi is built): one pool
 * for the whole run (the ranks of mpiexec, else p->workers spawned ranks),
 * made at the first workload; bench_mpi_finish frees it. The first four workloads
 * (sleep_concurrency's 10 workers would oversubscribe the machine). */
#define BENCH_MPI_WORKLOADS                                                                        \
    (BENCH_BIT(BENCH_EMPTY_THROUGHPUT) | BENCH_BIT(BENCH_ROUNDTRIP_LATENCY) |                      \
     BENCH_BIT(BENCH_CPU_SPEEDUP) | BENCH_BIT(BENCH_MAP_CHUNKED))
bool bench_mpi_run(bench_workload w, const bench_params *p);
void bench_mpi_finish(void);
/* Under mpiexec, every rank calls this first: false on a worker rank once
 * it has served (cf-bench then exits), true on the root. */
bool bench_mpi_begin(void);
/* mpi4py.futures (system python-mpi) through pybench_mpi.py, when mpi4py is
 * installed: the MPI workloads (or only `workload` when >= 0). */
bool bench_mpi_python_run(const bench_params *p, int workload);

/* The sweep (task size x workers, both pools) and the memory figure. */
void bench_sweep(const bench_params *p, bool want_thread, bool want_process);
void bench_memory(const bench_params *p, bool want_thread, bool want_process);
/* --startup: a process pool's first result, per start method (bench_startup.c). */
void bench_startup(const bench_params *p);

#ifdef __cplusplus
}
#endif

#endif
