#!/usr/bin/env python3
"""Run one example program and check what it printed.

    check_example.py [--expect REGEX]... [--skip-if REGEX] -- PROGRAM [ARGS...]

The example verifies its own results and exits non-zero on a wrong one; this
wrapper also checks that stdout has a line matching each --expect pattern, so
that a program that silently did nothing cannot pass. If a pattern is missing
but stdout matches --skip-if (the examples print a NOTE when the process pool
is not available on this build), the test is reported as skipped (exit 77)
rather than passed.
"""
import re
import subprocess
import sys


def main(argv):
    expects, skip_if = [], None
    i = 0
    while i < len(argv) and argv[i] != "--":
        if argv[i] == "--expect":
            expects.append(argv[i + 1])
        elif argv[i] == "--skip-if":
            skip_if = argv[i + 1]
        else:
            sys.exit(f"check_example.py: unknown option {argv[i]!r}")
        i += 2
    command = argv[i + 1:]
    if not command:
        sys.exit("check_example.py: no program to run")

    # stdin: /dev/null, whatever ours is (a program with its own libuv loop
    # needs descriptors 0-2 open: libuv asserts its own are not them).
    run = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(run.stdout)
    if run.returncode != 0:
        print(f"FAIL: {command[0]} exited with status {run.returncode}")
        return 1
    missing = [p for p in expects if not re.search(p, run.stdout, re.MULTILINE)]
    if not missing:
        return 0
    if skip_if and re.search(skip_if, run.stdout, re.MULTILINE):
        print(f"SKIP: {', '.join(missing)} not shown, and the program said why")
        return 77
    for p in missing:
        print(f"FAIL: no line of stdout matches {p!r}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
