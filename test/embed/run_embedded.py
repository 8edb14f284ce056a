#!/usr/bin/env python3
"""Run a program that embeds cfutures and check what it printed.

    run_embedded.py [--stdin TEXT | --stdin-open] [--once LINE]... [--expect LINE]...
                    [--skip-unless-preload LIB]... -- PROGRAM [ARGS...]

--stdin TEXT    feed TEXT on the program's stdin, then close it
--stdin-open    give it a pipe that stays open and empty until it exits (a
                worker that read the parent's stdin would wait forever)
--once LINE     LINE must appear exactly once on stdout (a worker re-running
                main would print it again)
--expect LINE   LINE must appear on stdout
--expect-prefix TEXT  a line starting with TEXT must appear on stdout
--status N      the program must exit with status N (default 0)
--through-loader  run PROGRAM by naming its ELF interpreter (ld.so PROGRAM)
Exits 0 when the program exited as expected and every check held; 77 (skip) when a
sanitizer runtime that must be preloaded (for an interpreter) is missing.
"""
import os
import struct
import subprocess
import sys


def interpreter(path):
    """The PT_INTERP of an ELF64 little-endian program."""
    with open(path, "rb") as f:
        data = f.read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode()
    sys.exit(f"{path} has no interpreter")


def main(argv):
    stdin_text, stdin_open, once, expect, loader = None, False, [], [], False
    prefixes, status = [], 0
    i = 0
    while i < len(argv) and argv[i] != "--":
        opt = argv[i]
        if opt == "--stdin":
            stdin_text = argv[i + 1]
            i += 2
        elif opt == "--stdin-open":
            stdin_open = True
            i += 1
        elif opt == "--once":
            once.append(argv[i + 1])
            i += 2
        elif opt == "--through-loader":
            loader = True
            i += 1
        elif opt == "--expect":
            expect.append(argv[i + 1])
            i += 2
        elif opt == "--expect-prefix":
            prefixes.append(argv[i + 1])
            i += 2
        elif opt == "--status":
            status = int(argv[i + 1])
            i += 2
        else:
            sys.exit(f"run_embedded.py: unknown option {opt!r}")
    command = argv[i + 1:]
    if loader:
        command = [interpreter(command[0])] + command
    stdin = subprocess.PIPE if (stdin_text is not None or stdin_open) else subprocess.DEVNULL
    proc = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        if stdin_text is not None:
            out, err = proc.communicate(stdin_text, timeout=120)
        else:
            out, err = proc.communicate(timeout=120)  # --stdin-open: never written
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        print(f"TIMEOUT: {command}\n--- stdout\n{out}\n--- stderr\n{err}")
        return 1
    lines = out.splitlines()
    failures = []
    if proc.returncode != status:
        failures.append(f"exit status {proc.returncode}, not {status}")
    for text in prefixes:
        if not any(line.startswith(text) for line in lines):
            failures.append(f"no line starting with {text!r}")
    for line in once:
        n = lines.count(line)
        if n != 1:
            failures.append(f"{line!r} printed {n} times, not once")
    for line in expect:
        if line not in lines:
            failures.append(f"{line!r} not printed")
    sys.stdout.write(out)
    sys.stderr.write(err)
    for f in failures:
        print(f"FAILED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
