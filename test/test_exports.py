#!/usr/bin/env python3
"""The shared library exports exactly the public API.

usage: test_exports.py [--mpi] NM LIBCFUTURES_SO HEADER...

--mpi: the library is libcfutures-mpi, HEADER cfutures-mpi.h (CF_MPI_API).

HEADER: every installed header whose CF_API functions libcfutures defines
(cfutures.h, cfutures-uv.h). Fails when the library exports a symbol that is
not `cf_*` (a missing `static`, an internal `cf__*` name leaking out, other
than the companion ABI of lib/companion.h), when a
function a header declares with CF_API is not exported (declared but never
defined, or hidden), or when an exported `cf_*` name is in no header.
SPDX-License-Identifier: MIT
"""
import re
import subprocess
import sys

# What the toolchain itself may put in .dynsym; never ours.
LINKER_SYMBOLS = {"_init", "_fini", "_edata", "_end", "__bss_start"}
# Exported on purpose, though not API (lib/worker_entry.c says why): the
# process-pool worker's entry before main, and the helper program's entry.
WORKER_ENTRIES = {"__libc_start_main", "cf__worker_main"}
# The companion ABI (lib/companion.h): internal functions exported for the
# project's own other libraries (libcfutures-mpi), which must be of the same
# version. Each must be exported, and no other cf__ name.
COMPANION = {
    "cf__malloc", "cf__calloc", "cf__realloc", "cf__free",
    "cf__set_last_error", "cf__set_last_error_msg", "cf__fail", "cf__fail_msg",
    "cf__check_reserved",
    "cf__buf_reserve", "cf__buf_free", "cf__wire_put_exit",
    "cf__remote_new", "cf__remote_loop", "cf__remote_transport",
    "cf__rworker_handle_opened", "cf__rworker_close_handle", "cf__rworker_read_room",
    "cf__rworker_received", "cf__rworker_exited",
    "cf__serve", "cf__worker_entry_register", "cf__worker_entry_interposed",
}


def exported(nm, lib):
    out = subprocess.run([nm, "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            names.add(fields[-1].split("@")[0])  # drop symbol versions
    return names


API_MACRO = "CF_API"  # CF_MPI_API for libcfutures-mpi (--mpi)


def declared(header):
    with open(header) as f:
        text = f.read()
    return set(re.findall(r"\b" + API_MACRO + r"\b[^;{(]*?\b(cf_\w+)\s*\(", text))


def declared_in(headers):
    """{name: header} for every CF_API function of the headers."""
    where = {}
    for header in headers:
        for name in declared(header):
            where.setdefault(name, header)
    return where


def main():
    global API_MACRO
    args = sys.argv[1:]
    mpi = args[:1] == ["--mpi"]
    if mpi:  # libcfutures-mpi: only its own API, no entries, no companion ABI
        API_MACRO = "CF_MPI_API"
        args = args[1:]
    if len(args) < 3:
        sys.exit(__doc__)
    nm, lib, headers = args[0], args[1], args[2:]
    names = exported(nm, lib)
    where = declared_in(headers)
    api = set(where)
    for header in headers:
        if not declared(header):
            print(f"no CF_API declaration found in {header}: parser broken?")
            return 1
    if len(api) < (2 if mpi else 20):
        print(f"only {len(api)} CF_API declarations found in {' '.join(headers)}: parser broken?")
        return 1
    allowed = LINKER_SYMBOLS if mpi else LINKER_SYMBOLS | WORKER_ENTRIES | COMPANION
    stray = sorted(n for n in names - allowed
                   if not n.startswith("cf_") or n.startswith("cf__"))
    missing = sorted(api - names)
    for n in sorted(set() if mpi else COMPANION - names):
        print(f"companion ABI function not exported: {n}")
        missing.append(n)
    extra = sorted(n for n in names if n.startswith("cf_") and not n.startswith("cf__")
                   and n not in api)
    for n in stray:
        print(f"exported but not public: {n}")
    for n in missing:
        print(f"declared CF_API in {where[n]} but not exported: {n}")
    for n in extra:
        print(f"exported cf_ name not declared CF_API in any header: {n}")
    print(f"{len(names)} exported symbols, {len(api)} declared")
    return 1 if stray or missing or extra else 0


if __name__ == "__main__":
    sys.exit(main())
