#!/usr/bin/env python3
"""cf-bench's workloads on Python's concurrent.futures.

Prints `system workload value unit` lines (systems python-thread and
python-process) and `# ...` notes, as cf-bench does; cf-bench --compare runs
this script and puts its figures beside cfutures'. Each figure is the median
of --repeat runs. Differences from the C workloads, all for the sake of time:
- the CPU task uses num = 30 and `total = total*i*j*k % (2**61 - 1)` (Python
  integers would grow without bound); compare speedups, not times;
- fewer tasks for empty_throughput and fewer round trips (the figures are
  rates and medians, so they stay comparable);
- map_chunked on the thread pool maps over chunks of 1000 items, because
  ThreadPoolExecutor.map ignores chunksize (ProcessPoolExecutor uses it).
SPDX-License-Identifier: MIT
"""
import argparse
import itertools
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

MOD = 2**61 - 1


def identity(x):
    return x


def square(x):
    return x * x


def square_chunk(chunk):
    return [x * x for x in chunk]


def sleep_ms(ms):
    time.sleep(ms / 1000)
    return ms


def cpu_task(num):
    """The seed's triple loop, kept within 61 bits."""
    total = 1
    numbers = range(1, num)
    for i in numbers:
        for j in numbers:
            for k in numbers:
                total = total * i * j * k % MOD
    return total


def wait_gate(gate):
    gate.wait()


def make_pool(kind, workers):
    ex = (ThreadPoolExecutor if kind == "thread" else ProcessPoolExecutor)(max_workers=workers)
    # Start every worker before the clock starts, as cf-bench does.
    list(ex.map(sleep_ms, [2] * workers))
    return ex


def run_empty(ex, n):
    t0 = time.perf_counter()
    fs = [ex.submit(identity, i) for i in range(n)]
    total = sum(f.result() for f in fs)
    dt = time.perf_counter() - t0
    assert total == n * (n - 1) // 2
    return n / dt


def run_roundtrip(ex, n):
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        r = ex.submit(identity, i).result()
        times.append(time.perf_counter() - t0)
        assert r == i
    return statistics.median(times) * 1e6


def run_cpu(ex, calls, num):
    t0 = time.perf_counter()
    expect = [cpu_task(num) for _ in range(calls)]
    serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = list(ex.map(cpu_task, [num] * calls))
    pooled = time.perf_counter() - t0
    assert got == expect
    return serial / pooled


def run_map(ex, kind, n, chunksize):
    t0 = time.perf_counter()
    if kind == "thread":
        chunks = (range(i, min(i + chunksize, n)) for i in range(0, n, chunksize))
        total = sum(itertools.chain.from_iterable(ex.map(square_chunk, chunks)))
    else:
        total = sum(ex.map(square, range(n), chunksize=chunksize))
    dt = time.perf_counter() - t0
    assert total == (n - 1) * n * (2 * n - 1) // 6
    return n / dt


def run_sleep(ex, tasks, ms):
    t0 = time.perf_counter()
    fs = [ex.submit(sleep_ms, ms) for _ in range(tasks)]
    for f in fs:
        f.result()
    return (time.perf_counter() - t0) * 1e3


def report(system, workload, values, unit):
    values = sorted(values)
    median = statistics.median(values)
    if len(values) > 1 and median and (values[-1] - values[0]) / abs(median) > 0.20:
        print(f"# noisy: {system} {workload} spread "
              f"{(values[-1] - values[0]) / abs(median) * 100:.0f}% over {len(values)} runs "
              f"(min {values[0]:.4g}, max {values[-1]:.4g})")
    if median >= 1e5 or median == int(median):
        shown = f"{median:.0f}"
    elif median >= 100:
        shown = f"{median:.1f}"
    else:
        shown = f"{median:.3g}"
    print(f"{system} {workload} {shown} {unit}", flush=True)


def workloads(args):
    q = args.quick
    kinds = ("thread", "process") if not args.system else (args.system,)
    for kind in kinds:
        system = f"python-{kind}"
        sizes = {
            "empty_throughput": (2, "tasks/s", lambda ex: run_empty(
                ex, (5000 if q else 50000) if kind == "thread" else (2000 if q else 20000))),
            "roundtrip_latency": (2, "us", lambda ex: run_roundtrip(ex, 500 if q else 5000)),
            "cpu_speedup": (2, "x", lambda ex: run_cpu(ex, 10 if q else 100, 30)),
            "map_chunked": (2, "items/s", lambda ex: run_map(
                ex, kind, 100000 if q else 1000000, 1000)),
            "sleep_concurrency": (10, "ms", lambda ex: run_sleep(ex, 100, 10)),
        }
        for workload, (workers, unit, run) in sizes.items():
            if args.workload and workload != args.workload:
                continue
            values = []
            for _ in range(args.repeat):
                with make_pool(kind, workers) as ex:
                    values.append(run(ex))
            report(system, workload, values, unit)


def rss_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def memory(args):
    # 200,000 rather than cf-bench's 1,000,000: a Python future costs about
    # 2 KB, and the figure is per future anyway.
    n = 50000 if args.quick else 200000
    gate = threading.Event()
    fs = [None] * n  # allocated before the first reading, as in cf-bench
    with make_pool("thread", 1) as ex:
        blocker = ex.submit(wait_gate, gate)
        before = rss_bytes("VmRSS")
        for i in range(n):
            fs[i] = ex.submit(identity, i)
        after = rss_bytes("VmRSS")
        hwm = rss_bytes("VmHWM")
        print(f"# python-thread: {n} pending futures: VmRSS {before // 1024} -> "
              f"{after // 1024} KiB, VmHWM {hwm // 1024} KiB")
        report("python-thread", "pending_future_memory", [max(after - before, 0) / n],
               "bytes/future")
        gate.set()
        blocker.result()
        for f in fs:
            f.result()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workloads", action="store_true", help="the five workloads")
    parser.add_argument("--memory", action="store_true", help="bytes per pending future")
    parser.add_argument("--workload", help="only this workload")
    parser.add_argument("--system", choices=("thread", "process"), help="only this pool")
    args = parser.parse_args()
    if not args.workloads and not args.memory:
        args.workloads = True
    print(f"# python {sys.version.split()[0]} on {os.cpu_count()} CPUs")
    if args.workloads:
        workloads(args)
    if args.memory:
        memory(args)


if __name__ == "__main__":
    main()
