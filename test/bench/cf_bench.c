/* cf-bench: cfutures' performance figures, and (--compare) the same workloads
 * on Python's concurrent.futures and the peers of bench_peers.c (GLib's
 * GThreadPool, libuv's uv_queue_work, ...), side by side. See
 * test/bench/README.md.
 *
 * Every figure is one line `system workload value unit`; notes start with '#'.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

typedef struct options {
    bool quick, compare, sweep, memory, startup;
    bool thread, process, mpi; /* which cfutures pools (mpi: only when asked) */
    int repeat;
    int workload; /* -1: all */
    bool uv_child;
} options;

static void usage(FILE *out)
{
    fprintf(out, "usage: cf-bench [--quick] [--repeat N] [--system thread|process|mpi]\n"
                 "                [--workload NAME] [--sweep] [--memory] [--startup]\n"
                 "                [--compare]\n"
                 "  --quick          fewer iterations (what `meson test --benchmark` runs)\n"
                 "  --repeat N       each figure is the median of N runs (default 5)\n"
                 "  --system S       only cfutures' thread, process or MPI pool (mpi: run only\n"
                 "                   when asked; under mpiexec -n N the other ranks are the\n"
                 "                   workers, alone it spawns 2)\n"
                 "  --workload NAME  only empty_throughput, roundtrip_latency, cpu_speedup,\n"
                 "                   map_chunked, sleep_concurrency, nested_fib or\n"
                 "                   loop_roundtrip\n"
                 "  --sweep          task size x workers: per-task overhead and efficiency\n"
                 "  --memory         bytes per pending future (1,000,000 of them) and per\n"
                 "                   item of a chunked map (10,000,000 items)\n"
                 "  --startup        a process pool's first result per start method (exec,\n"
                 "                   helper, fork): what starting a worker costs\n"
                 "  --compare        also Python and the peers (GLib, libuv, ... when built),\n"
                 "                   the sweep, memory and startup, then a table of ratios to\n"
                 "                   cfutures and the targets\n");
}

static int parse_workload(const char *name)
{
    for (int w = 0; w < BENCH_WORKLOAD_COUNT; w++)
        if (strcmp(name, bench_workload_name((bench_workload)w)) == 0)
            return w;
    return -1;
}

static bool parse_options(int argc, char **argv, options *o)
{
    *o = (options){ .thread = true, .process = true, .repeat = 5, .workload = -1 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0)
            o->quick = true;
        else if (strcmp(a, "--compare") == 0)
            o->compare = true;
        else if (strcmp(a, "--sweep") == 0)
            o->sweep = true;
        else if (strcmp(a, "--memory") == 0)
            o->memory = true;
        else if (strcmp(a, "--startup") == 0)
            o->startup = true;
        else if (strcmp(a, "--uv-child") == 0)
            o->uv_child = true;
        else if (strcmp(a, "--repeat") == 0 && next) {
            o->repeat = atoi(next);
            i++;
            if (o->repeat < 1)
                return false;
        } else if (strcmp(a, "--system") == 0 && next) {
            o->thread = strcmp(next, "thread") == 0;
            o->process = strcmp(next, "process") == 0;
            o->mpi = strcmp(next, "mpi") == 0;
            i++;
            if (!o->thread && !o->process && !o->mpi)
                return false;
        } else if (strcmp(a, "--workload") == 0 && next) {
            o->workload = parse_workload(next);
            i++;
            if (o->workload < 0)
                return false;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else {
            return false;
        }
    }
    /* --compare is the whole picture, unless one workload was asked for. */
    if (o->compare && o->workload < 0)
        o->sweep = o->memory = o->startup = true;
    return !o->uv_child || o->workload >= 0;
}

/* ------------------------------------------------------------------------ */
/* The side-by-side table                                                    */
/* ------------------------------------------------------------------------ */

static bool is_cfutures(const char *system)
{
    return strncmp(system, "cfutures-", 9) == 0;
}

static bool is_floor(const char *system)
{
    const bench_peer *peer = bench_peer_find(system);
    return peer && peer->what;
}

/* The cfutures system a figure is compared with: the peer's pool kind, else
 * the part of the name after the last '-' ("python-thread"). */
static void cfutures_of(const char *system, char *out, size_t size)
{
    const bench_peer *peer = bench_peer_find(system);
    const char *dash = strrchr(system, '-');
    if (peer)
        snprintf(out, size, "%s", bench_cf_system(peer->process));
    else
        snprintf(out, size, "cfutures-%s", dash ? dash + 1 : system);
}

static void print_table_row(const char *workload)
{
    for (size_t i = 0; i < bench_figure_count(); i++) {
        const bench_figure *f = bench_figure_at(i);
        if (strcmp(f->workload, workload) != 0 || is_floor(f->system))
            continue;
        char cf_name[48];
        cfutures_of(f->system, cf_name, sizeof cf_name);
        const bench_figure *cf = bench_figure_find(cf_name, f->workload);
        char ratio[32] = "-", better[32] = "-";
        if (cf && cf->value != 0 && f->value != 0) {
            double q = f->value / cf->value;
            bool hib = bench_figure_higher_is_better(f->workload);
            snprintf(ratio, sizeof ratio, "%.3g", q);
            if (!is_cfutures(f->system))
                snprintf(better, sizeof better, "%.3g", hib ? 1 / q : q);
        }
        printf("# %-22s %-18s %14.4g %-12s %8s %11s\n", f->workload, f->system, f->value, f->unit,
               ratio, better);
    }
}

/* The floors (no executor: the transport alone) beside the cfutures figure
 * they bound. */
static void print_floors(void)
{
    bool any = false;
    for (size_t i = 0; i < bench_figure_count(); i++) {
        const bench_figure *f = bench_figure_at(i);
        const bench_peer *peer = bench_peer_find(f->system);
        if (!peer || !peer->what)
            continue;
        if (!any)
            printf("#\n# floors: no executor, only the transport a pool's round trip goes over;\n"
                   "# '/ floor' = that cfutures pool's figure / the floor (1: no overhead)\n"
                   "# %-22s %-12s %10s %-4s %-18s %8s  %s\n",
                   "workload", "system", "value", "unit", "cfutures", "/ floor", "what it is");
        any = true;
        const char *cf_name = bench_cf_system(peer->process);
        const bench_figure *cf = bench_figure_find(cf_name, f->workload);
        char over[32] = "-";
        if (cf && f->value != 0)
            snprintf(over, sizeof over, "%.3g", cf->value / f->value);
        printf("# %-22s %-12s %10.4g %-4s %-18s %8s  %s\n", f->workload, f->system, f->value,
               f->unit, cf_name, over, peer->what);
    }
}

/* The rows of the side-by-side table: every workload, and the figures some
 * give beside their own. */
static const char *const table_rows[] = {
    "empty_throughput",     "roundtrip_latency",     "cpu_speedup",        "map_chunked",
    "map_chunked_per_item", "sleep_concurrency",     "loop_roundtrip",     "nested_fib",
    "nested_fib_speedup",   "pending_future_memory", "map_chunked_memory",
};

static void print_compare_table(void)
{
    printf("#\n# side by side: ratio = figure / cfutures' figure for the same pool kind;\n"
           "# 'cfutures x' = how many times better cfutures is (>1: cfutures wins)\n");
    printf("# %-22s %-18s %14s %-12s %8s %11s\n", "workload", "system", "value", "unit", "ratio",
           "cfutures x");
    for (size_t r = 0; r < sizeof table_rows / sizeof table_rows[0]; r++)
        print_table_row(table_rows[r]);
    print_floors();
}

/* ------------------------------------------------------------------------ */
/* Targets (issues "Foundation", "cf-bench side by side" and 10)            */
/* ------------------------------------------------------------------------ */

typedef struct target {
    const char *system, *workload;
    const char *versus; /* NULL: absolute bound; else a ratio to this system's figure */
    double bound;
    bool at_least; /* figure >= bound (else <=) */
    const char *text;
    const char *versus_workload; /* NULL: the same workload */
} target;

static const target targets[] = {
    { "cfutures-thread", "empty_throughput", NULL, 3.5e6, true, ">= 3.5 M tasks/s", NULL },
    { "cfutures-thread", "roundtrip_latency", NULL, 5, false, "<= 5 us", NULL },
    { "cfutures-thread", "cpu_speedup", NULL, 1.9, true, ">= 1.9 x", NULL },
    { "cfutures-thread", "map_chunked", NULL, 1e9, true, ">= 1 G items/s", NULL },
    { "cfutures-thread", "sleep_concurrency", NULL, 105, false, "<= 105 ms", NULL },
    { "cfutures-thread", "empty_throughput", "glib-thread", 2, true, ">= 2 x GLib", NULL },
    { "cfutures-thread", "empty_throughput", "python-thread", 50, true, ">= 50 x Python", NULL },
    { "cfutures-thread", "roundtrip_latency", "glib-thread", 0.2, false, "<= 1/5 of GLib", NULL },
    { "cfutures-thread", "pending_future_memory", NULL, 256, false, "<= 256 bytes/future", NULL },
    { "cfutures-thread", "loop_roundtrip", "libuv", 0.5, false, "<= 1/2 of libuv", NULL },
    /* issue 10: the parallel loop and the map at the peers' speed */
    { "cfutures-thread", "map_chunked", "tbb-thread", 1, true, ">= TBB parallel_for", NULL },
    { "cfutures-thread", "map_chunked", "pthreadpool-thread", 0.9, true, ">= 0.9 x pthreadpool",
      NULL },
    { "cfutures-thread", "map_chunked_per_item", "glib-thread", 1, true, ">= GLib's hand loop",
      "map_chunked" },
    { "cfutures-thread", "map_chunked_memory", NULL, 24, false, "<= 24 bytes/item", NULL },
    { "cfutures-process", "empty_throughput", NULL, 250e3, true, ">= 250 k tasks/s", NULL },
    { "cfutures-process", "roundtrip_latency", NULL, 30, false, "<= 30 us", NULL },
    { "cfutures-process", "cpu_speedup", NULL, 1.9, true, ">= 1.9 x", NULL },
    { "cfutures-process", "map_chunked", NULL, 100e6, true, ">= 100 M items/s", NULL },
    { "cfutures-process", "empty_throughput", "python-process", 20, true, ">= 20 x Python", NULL },
    { "cfutures-process", "roundtrip_latency", "python-process", 0.2, false, "<= 1/5 of Python",
      NULL },
    /* issue 10: the process pool near the pipe floor */
    { "cfutures-process", "roundtrip_latency", "pipe-poll", 3, false, "<= 3 x pipe floor", NULL },
    { "cfutures-process", "map_chunked", "glib-thread", 0.5, true, ">= 0.5 x GLib", NULL },
    { "cfutures-process", "empty_throughput", "python-process", 200, true, ">= 200 x Python",
      NULL },
    { "cfutures-mpi", "empty_throughput", NULL, 1e6, true, ">= 1 M tasks/s", NULL },
    { "cfutures-mpi", "roundtrip_latency", NULL, 5, false, "<= 5 us", NULL },
    { "cfutures-mpi", "cpu_speedup", NULL, 1.9, true, ">= 1.9 x", NULL },
    { "cfutures-mpi", "empty_throughput", "python-mpi", 200, true, ">= 200 x mpi4py", NULL },
};

static void print_targets(bool quick)
{
    printf("#\n# targets%s\n", quick ? " (--quick figures: indicative only)" : "");
    printf("# %-17s %-22s %-20s %12s  %s\n", "system", "workload", "target", "measured", "verdict");
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        const target *t = &targets[i];
        const bench_figure *f = bench_figure_find(t->system, t->workload);
        const bench_figure *v =
            t->versus ? bench_figure_find(t->versus,
                                          t->versus_workload ? t->versus_workload : t->workload)
                      : NULL;
        if (!f || (t->versus && !v))
            continue;
        double measured = t->versus ? (v->value != 0 ? f->value / v->value : NAN) : f->value;
        bool met = t->at_least ? measured >= t->bound : measured <= t->bound;
        char shown[32];
        if (t->versus)
            snprintf(shown, sizeof shown, "%.3g x", measured);
        else
            snprintf(shown, sizeof shown, "%.4g", measured);
        printf("# %-17s %-22s %-20s %12s  %s\n", t->system, t->workload, t->text, shown,
               met ? "met" : "MISSED");
    }
}

/* ------------------------------------------------------------------------ */

/* Other programs running skew every figure: say how busy the machine was,
 * and how much of it other programs took while cf-bench ran (from
 * /proc/stat, minus what this process and its children used). */
typedef struct cpu_sample {
    double busy, total; /* seconds of all CPUs, from /proc/stat */
    double steal;       /* seconds the hypervisor ran something else */
    double own;         /* seconds used by cf-bench and its children */
} cpu_sample;

static bool sample_cpu(cpu_sample *c)
{
    unsigned long long v[8] = { 0 };
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return false;
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                     &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (got < 5)
        return false;
    double hz = (double)sysconf(_SC_CLK_TCK);
    double idle = (double)(v[3] + v[4]);
    double all = 0;
    for (int i = 0; i < 8; i++)
        all += (double)v[i];
    c->total = all / hz;
    c->busy = (all - idle - (double)v[7]) / hz;
    c->steal = (double)v[7] / hz;
    struct rusage self, children;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    c->own = 0;
    const struct rusage *r[2] = { &self, &children };
    for (int i = 0; i < 2; i++)
        c->own += (double)r[i]->ru_utime.tv_sec + (double)r[i]->ru_utime.tv_usec / 1e6 +
                  (double)r[i]->ru_stime.tv_sec + (double)r[i]->ru_stime.tv_usec / 1e6;
    return true;
}

static cpu_sample start_sample;
static bool have_start_sample;

static void print_load(const char *when)
{
    double l1 = 0, l5 = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf", &l1, &l5) == 2)
            bench_note("load average %s: %.2f (1 min), %.2f (5 min)", when, l1, l5);
        fclose(f);
    }
    cpu_sample now;
    if (!have_start_sample) {
        have_start_sample = sample_cpu(&start_sample);
    } else if (sample_cpu(&now) && now.total > start_sample.total) {
        /* Processes that ended during the run and were not our children
         * still count as "others": the figure is an upper bound. */
        double total = now.total - start_sample.total;
        double others = (now.busy - start_sample.busy) - (now.own - start_sample.own);
        double share = others / total;
        double steal = (now.steal - start_sample.steal) / total;
        bench_note("other programs used %.0f%% of the machine's CPU time during this run, "
                   "the hypervisor took %.0f%%%s",
                   share > 0 ? share * 100 : 0, steal * 100,
                   share + steal > 0.10 ? ": expect noisy, pessimistic figures" : "");
    }
}

/* On a virtual machine one virtual CPU may run several times slower than
 * another for minutes (a busy hyperthread sibling on the host), which no load
 * or steal figure shows. Measure each CPU's speed with a pinned thread. */
typedef struct cpu_probe {
    int cpu;
    double per_us; /* spin iterations per microsecond */
} cpu_probe;

static void *probe_cpu(void *arg)
{
    cpu_probe *p = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(p->cpu, &set);
    p->per_us = 0;
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
        return NULL;
    p->per_us = (double)bench_spin_calibrate();
    return NULL;
}

static void print_cpu_speeds(const char *when)
{
    enum { MAX_PROBED = 16 };
    cpu_probe probes[MAX_PROBED];
    int n = 0;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < MAX_PROBED; cpu++) {
        if (!CPU_ISSET(cpu, &allowed))
            continue;
        probes[n].cpu = cpu;
        pthread_t t;
        if (pthread_create(&t, NULL, probe_cpu, &probes[n]) != 0)
            return;
        pthread_join(t, NULL);
        n++;
    }
    char line[256] = "";
    size_t len = 0;
    double lo = 0, hi = 0;
    for (int i = 0; i < n; i++) {
        double v = probes[i].per_us;
        if (i == 0 || v < lo)
            lo = v;
        if (i == 0 || v > hi)
            hi = v;
        int w = snprintf(line + len, sizeof line - len, "%scpu%d %.0f", i ? ", " : "",
                         probes[i].cpu, v);
        if (w < 0 || (size_t)w >= sizeof line - len)
            break;
        len += (size_t)w;
    }
    bench_note("CPU speed %s (spin iterations per us): %s%s", when, line,
               lo > 0 && hi > 1.3 * lo ? ": unequal CPUs, figures unreliable" : "");
}

static void print_machine(const options *o)
{
    struct utsname u;
    char model[128] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                const char *colon = strchr(line, ':');
                if (colon) {
                    snprintf(model, sizeof model, "%s", colon + 2);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        fclose(f);
    }
    if (uname(&u) == 0)
        bench_note("cf-bench on %s %s %s, %d CPUs (%s)", u.sysname, u.release, u.machine,
                   bench_cpu_count(), model);
    bench_note("%s, each figure the median of %d runs", o->quick ? "quick" : "full", o->repeat);
    print_load("before");
    print_cpu_speeds("before");
}

/* ------------------------------------------------------------------------ */
/* Running the systems                                                       */
/* ------------------------------------------------------------------------ */

/* A workload a pool does not run is not reported: a note says so. */
static bool run_cfutures(bool process, bench_workload w, const bench_params *p)
{
    if (!(bench_cfutures_workloads(process) & BENCH_BIT(w))) {
        bench_note("%s: %s: not supported yet: not run", bench_cf_system(process),
                   bench_workload_name(w));
        return true;
    }
    return bench_cfutures_run(process, w, p);
}

/* A peer compared with a pool that is not asked for (--system) does not run. */
static bool peer_wanted(const options *o, const bench_peer *peer)
{
    return peer->process ? o->process : o->thread;
}

static void note_missing_peers(const options *o)
{
    for (size_t i = 0; i < bench_peer_count(); i++) {
        const bench_peer *peer = bench_peer_at(i);
        if (!peer->run && peer_wanted(o, peer))
            bench_note("%s: %s: skipped", peer->system, peer->missing);
    }
}

static void run_peers(const options *o, bench_workload w, const bench_params *p)
{
    for (size_t i = 0; i < bench_peer_count(); i++) {
        const bench_peer *peer = bench_peer_at(i);
        if (peer->run && peer_wanted(o, peer) && (peer->workloads & BENCH_BIT(w)))
            peer->run(w, p);
    }
}

int main(int argc, char **argv)
{
    options o;
    if (!parse_options(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    bench_params p;
    bench_params_init(&p, o.quick, o.repeat);
    if (o.uv_child)
        return o.workload == BENCH_LOOP_ROUNDTRIP ? bench_loop_uv_child(&p)
                                                  : bench_uv_child((bench_workload)o.workload, &p);

#ifdef CF_BENCH_HAVE_MPI
    if (o.mpi && !bench_mpi_begin())
        return 0; /* a worker rank under mpiexec: it served the root */
#endif
    print_machine(&o);
    if (o.compare)
        note_missing_peers(&o);
    bool ok = true;
    for (int w = 0; w < BENCH_WORKLOAD_COUNT; w++) {
        if (o.workload >= 0 && w != o.workload)
            continue;
        if (w == BENCH_LOOP_ROUNDTRIP) { /* a thread pool on a libuv loop, and libuv */
            if (o.thread)
                ok &= bench_loop_run(&p, o.compare);
            continue;
        }
        if (o.thread)
            ok &= run_cfutures(false, (bench_workload)w, &p);
        if (o.process)
            run_cfutures(true, (bench_workload)w, &p); /* may be unavailable */
#ifdef CF_BENCH_HAVE_MPI
        if (o.mpi)
            ok &= bench_mpi_run((bench_workload)w, &p);
#endif
        if (o.compare)
            run_peers(&o, (bench_workload)w, &p);
    }
    if (o.compare && (o.workload < 0 || (BENCH_CLASSIC_FIVE & BENCH_BIT(o.workload))))
        bench_python_run(&p, false, o.workload,
                         o.thread && o.process ? NULL
                         : o.thread            ? "thread"
                                               : "process");
    if (o.sweep)
        bench_sweep(&p, o.thread, o.process);
    if (o.startup && o.process)
        bench_startup(&p);
    if (o.memory) {
        bench_memory(&p, o.thread, o.process);
        if (o.compare)
            bench_python_run(&p, true, -1, NULL);
    }
#ifdef CF_BENCH_HAVE_MPI
    bench_mpi_finish();
    if (o.mpi && o.compare && (o.workload < 0 || (BENCH_MPI_WORKLOADS & BENCH_BIT(o.workload))))
        bench_mpi_python_run(&p, o.workload);
#else
    if (o.mpi)
        bench_note("cfutures-mpi: libcfutures-mpi was not built (no MPI found): skipped");
#endif
    if (o.compare)
        print_compare_table();
    print_targets(o.quick);
    print_cpu_speeds("after");
    print_load("after");
    return ok ? 0 : 1;
}
