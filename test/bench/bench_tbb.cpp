// cf-bench: the workloads on oneTBB, written the way a TBB user would: a
// tbb::task_arena of p->workers threads (the thread that calls execute() is
// one of them, TBB's own worker the other), a tbb::task_group for single
// tasks and for nested fib, tbb::parallel_for over a blocked_range with a
// simple_partitioner for map_chunked. Built only when meson finds a C++
// compiler and tbb; cf-bench calls it through bench_tbb_run (extern "C").
// SPDX-License-Identifier: MIT
#include "bench.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <vector>

namespace
{

const char *const SYSTEM = "tbb-thread";

// What nested_fib's runs took, for the note after its figure.
struct fib_times {
    std::vector<double> pool_us, serial_us; // per fib(n)
    std::vector<double> speedup;            // per run: serial time / pooled time
};

// Every thread of the arena busy at once for a moment, so that TBB's worker
// has joined it before the clock starts.
void warm_up(int workers)
{
    tbb::task_group tg;
    for (int i = 0; i < workers; i++)
        tg.run([] { bench_sleep_ms(2); });
    tg.wait();
}

double run_empty(const bench_params *p)
{
    size_t n = p->empty_tasks;
    std::vector<intptr_t> results(n);
    intptr_t *out = results.data();
    uint64_t t0 = bench_now_ns();
    tbb::task_group tg;
    for (size_t i = 0; i < n; i++)
        tg.run([out, i] { out[i] = static_cast<intptr_t>(i); });
    tg.wait();
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += static_cast<uint64_t>(out[i]);
    uint64_t dt = bench_now_ns() - t0;
    if (sum != static_cast<uint64_t>(n) * (n - 1) / 2)
        return NAN;
    return static_cast<double>(n) / (static_cast<double>(dt) / 1e9);
}

// The waiting thread usually runs the task itself (it is first in its own
// deque): that is how TBB answers "run one and wait".
double run_roundtrip(const bench_params *p)
{
    size_t n = p->roundtrips;
    std::vector<double> us(n);
    tbb::task_group tg;
    for (size_t i = 0; i < n; i++) {
        intptr_t result = -1;
        uint64_t t0 = bench_now_ns();
        tg.run([&result, i] { result = static_cast<intptr_t>(i); });
        tg.wait();
        uint64_t dt = bench_now_ns() - t0;
        if (result != static_cast<intptr_t>(i))
            return NAN;
        us[i] = static_cast<double>(dt) / 1e3;
    }
    return bench_median(us.data(), n);
}

double run_map(const bench_params *p)
{
    size_t n = p->map_items;
    uint64_t *out = bench_out_array(n);
    if (!out)
        return NAN;
    uint64_t t0 = bench_now_ns();
    tbb::parallel_for(
        tbb::blocked_range<size_t>(0, n, p->map_chunksize),
        [out](const tbb::blocked_range<size_t> &r) {
            for (size_t i = r.begin(); i != r.end(); i++)
                out[i] = static_cast<uint64_t>(i) * i;
        },
        tbb::simple_partitioner());
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += out[i];
    uint64_t dt = bench_now_ns() - t0;
    if (sum != bench_square_sum(n))
        return NAN;
    return static_cast<double>(n) / (static_cast<double>(dt) / 1e9);
}

// Above the cutoff, both halves are tasks of a task_group this call waits on
// (while it waits, its thread runs tasks: TBB's nested parallelism).
uint64_t fib_nested(int n, int cutoff)
{
    if (n <= cutoff)
        return bench_fib(n);
    uint64_t a = 0, b = 0;
    tbb::task_group tg;
    tg.run([&a, n, cutoff] { a = fib_nested(n - 1, cutoff); });
    tg.run([&b, n, cutoff] { b = fib_nested(n - 2, cutoff); });
    tg.wait();
    return a + b;
}

double run_fib(const bench_params *p, fib_times *times)
{
    uint64_t expect = bench_fib(p->fib_n);
    uint64_t serial = bench_fib_serial(p);
    uint64_t t0 = bench_now_ns();
    bool ok = true;
    for (size_t r = 0; r < p->fib_rounds; r++)
        ok = fib_nested(p->fib_n, p->fib_cutoff) == expect && ok;
    uint64_t pooled = bench_now_ns() - t0;
    if (!ok || pooled == 0)
        return NAN;
    double rounds = static_cast<double>(p->fib_rounds);
    times->pool_us.push_back(static_cast<double>(pooled) / 1e3 / rounds);
    times->serial_us.push_back(static_cast<double>(serial) / 1e3 / rounds);
    times->speedup.push_back(static_cast<double>(serial) / static_cast<double>(pooled));
    double calls = rounds * (2.0 * static_cast<double>(bench_fib(p->fib_n + 1)) - 1);
    return calls / (static_cast<double>(pooled) / 1e9); // calls of fib per second
}

} // namespace

extern "C" {

// One run in a fresh arena, as every system gets a fresh pool per run.
static double run_once(bench_workload w, const bench_params *p, void *ctx) noexcept
{
    try {
        tbb::task_arena arena(p->workers);
        return arena.execute([&]() -> double {
            warm_up(p->workers);
            switch (w) {
            case BENCH_EMPTY_THROUGHPUT:
                return run_empty(p);
            case BENCH_ROUNDTRIP_LATENCY:
                return run_roundtrip(p);
            case BENCH_MAP_CHUNKED:
                return run_map(p);
            case BENCH_NESTED_FIB:
                return run_fib(p, static_cast<fib_times *>(ctx));
            case BENCH_CPU_SPEEDUP:       // not in its workloads (bench_peers.c)
            case BENCH_SLEEP_CONCURRENCY: // likewise
            case BENCH_LOOP_ROUNDTRIP:    // likewise
            case BENCH_WORKLOAD_COUNT:
                break;
            }
            return NAN;
        });
    } catch (const std::exception &e) {
        bench_note("%s: %s: %s", SYSTEM, bench_workload_name(w), e.what());
        return NAN;
    }
}

bool bench_tbb_run(bench_workload w, const bench_params *p)
{
    fib_times times;
    bool ok = bench_repeat(SYSTEM, w, p, run_once, &times);
    if (ok && w == BENCH_NESTED_FIB) {
        bench_note("%s nested_fib: one fib(%d) in %.1f us, %.1f us serially (medians)", SYSTEM,
                   p->fib_n, bench_median(times.pool_us.data(), times.pool_us.size()),
                   bench_median(times.serial_us.data(), times.serial_us.size()));
        bench_report_runs(SYSTEM, "nested_fib_speedup", times.speedup.data(), times.speedup.size(),
                          "x");
    }
    return ok;
}

} // extern "C"
