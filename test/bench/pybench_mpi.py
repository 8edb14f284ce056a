#!/usr/bin/env python3
"""cf-bench's workloads on mpi4py.futures, for the side-by-side table.

Run as  mpiexec -n 3 --oversubscribe python3 -m mpi4py.futures pybench_mpi.py
(rank 0 runs this script; MPIPoolExecutor's workers are the other ranks,
the same shape as cf-bench's `--system mpi`). Prints `python-mpi workload
value unit` lines and `# ...` notes, as pybench.py does. The CPU task is
pybench.py's (num = 30, modular): compare speedups, not times.
SPDX-License-Identifier: MIT
"""
import argparse
import os
import statistics
import sys
import time

from mpi4py.futures import MPIPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pybench import cpu_task, identity, report, sleep_ms, square  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workload", help="only this workload")
    args = parser.parse_args()
    q = args.quick
    print(f"# python {sys.version.split()[0]}, mpi4py.futures, {os.cpu_count()} CPUs")
    with MPIPoolExecutor() as ex:
        list(ex.map(sleep_ms, [2] * 8))  # every worker up before the clock starts

        def empty():
            n = 2000 if q else 20000
            t0 = time.perf_counter()
            fs = [ex.submit(identity, i) for i in range(n)]
            assert sum(f.result() for f in fs) == n * (n - 1) // 2
            return n / (time.perf_counter() - t0)

        def roundtrip():
            times = []
            for i in range(500 if q else 5000):
                t0 = time.perf_counter()
                assert ex.submit(identity, i).result() == i
                times.append(time.perf_counter() - t0)
            return statistics.median(times) * 1e6

        def cpu():
            calls = 10 if q else 100
            t0 = time.perf_counter()
            expect = [cpu_task(30) for _ in range(calls)]
            serial = time.perf_counter() - t0
            t0 = time.perf_counter()
            assert list(ex.map(cpu_task, [30] * calls)) == expect
            return serial / (time.perf_counter() - t0)

        def chunked():
            n = 100000 if q else 1000000
            t0 = time.perf_counter()
            assert sum(ex.map(square, range(n), chunksize=1000)) == (n - 1) * n * (2 * n - 1) // 6
            return n / (time.perf_counter() - t0)

        for workload, unit, run in (("empty_throughput", "tasks/s", empty),
                                    ("roundtrip_latency", "us", roundtrip),
                                    ("cpu_speedup", "x", cpu),
                                    ("map_chunked", "items/s", chunked)):
            if args.workload and workload != args.workload:
                continue
            report("python-mpi", workload, [run() for _ in range(args.repeat)], unit)


if __name__ == "__main__":
    main()
