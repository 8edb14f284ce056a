#!/usr/bin/env python3
"""A Python program that loads a cfutures plugin through ctypes and runs its
process-pool work, then reads its own stdin (which a worker must never
have read).

    python_host.py PLUGIN [START_METHOD] [--no-stdin]
"""
import ctypes
import sys

args = [a for a in sys.argv[1:] if not a.startswith("--")]
plugin = ctypes.CDLL(args[0])
plugin.plugin_run.argtypes = [ctypes.c_int]
rc = plugin.plugin_run(int(args[1]) if len(args) > 1 else 0)
print(f"python: plugin returned {rc}", flush=True)
if "--no-stdin" not in sys.argv:
    print(f"python: stdin {sys.stdin.read()!r}", flush=True)
sys.exit(rc)
