#!/usr/bin/env python3
"""The shared libraries' ABI against the stored baseline (libabigail).

    check_abi.py ABIDW ABIDIFF HEADERS_DIR BASELINE_DIR LIB...        check
    check_abi.py --update ABIDW ABIDIFF HEADERS_DIR BASELINE_DIR LIB... rewrite

Each LIB is compared with BASELINE_DIR/<its soname>.abi (made by abidw from
the public headers' view of the library, so internal types do not count).
Anything removed or changed fails (a function or variable gone, a public
struct or enum whose size or layout changed, a changed signature: abidiff
calls most of these "changes" rather than incompatible, so they are counted
here from its summary); additions pass with their report printed. A change
made on purpose within one soname (a reserved word taken by a new option, as
the policy allows) is accepted by recording the baseline again with
--update, a diff that review sees. A library whose soname has
no baseline fails too: after an intended break, bump soversion in meson.build
and record the new baseline with --update (README, "Versions and ABI
policy"). BASELINE_DIR/private.suppr (libabigail suppressions) names what is
not ABI: the companion calls between the project's own libraries. Exit 77
(skipped) when the library has no debug information, without
which abidiff sees only symbol names.
"""
import os
import re
import subprocess
import sys

ABIDIFF_ERROR = 1
ABIDIFF_USAGE_ERROR = 2
ABIDIFF_ABI_INCOMPATIBLE_CHANGE = 8


def soname(lib):
    """The DT_SONAME of lib, read with readelf (binutils, as nm is)."""
    out = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if "(SONAME)" in line:
            return line.split("[", 1)[1].split("]", 1)[0]
    sys.exit(f"{lib}: no SONAME")


def has_debug_info(lib):
    out = subprocess.run(["readelf", "-S", lib], capture_output=True, text=True, check=True).stdout
    return ".debug_info" in out


def abidw(tool, headers, lib, out):
    subprocess.run([tool, "--headers-dir", headers, "--no-corpus-path", "--out-file", out, lib],
                   check=True)


def removed_or_changed(report):
    """How many functions, variables and symbols abidiff's summary lines count
    as removed or changed (additions are not)."""
    n = 0
    for line in report.splitlines():
        if "summary:" in line:
            n += sum(int(k) for k in re.findall(r"(\d+) (?:Removed|Changed)", line))
    return n


def main(argv):
    update = argv[:1] == ["--update"]
    if update:
        argv = argv[1:]
    if len(argv) < 5:
        sys.exit(__doc__)
    abidw_tool, abidiff_tool, headers, baseline_dir, libs = argv[0], argv[1], argv[2], argv[3], argv[4:]
    failed = False
    for lib in libs:
        if not has_debug_info(lib):
            print(f"{lib}: no debug information (build with -g): nothing to compare")
            return 77
        name = soname(lib)
        baseline = os.path.join(baseline_dir, name + ".abi")
        if update:
            abidw(abidw_tool, headers, lib, baseline)
            print(f"{baseline}: written")
            continue
        if not os.path.isfile(baseline):
            print(f"{lib}: no baseline {baseline} for soname {name}. After an intended ABI\n"
                  f"break (soversion bumped in meson.build), record it with\n"
                  f"  {sys.argv[0]} --update {' '.join(argv)}")
            failed = True
            continue
        cmd = [abidiff_tool, "--headers-dir2", headers]
        suppressions = os.path.join(baseline_dir, "private.suppr")
        if os.path.isfile(suppressions):
            cmd += ["--suppressions", suppressions]
        r = subprocess.run(cmd + [baseline, lib], capture_output=True, text=True)
        if r.returncode & (ABIDIFF_ERROR | ABIDIFF_USAGE_ERROR):
            print(f"{lib}: abidiff failed ({r.returncode}):\n{r.stdout}{r.stderr}")
            failed = True
        elif r.returncode & ABIDIFF_ABI_INCOMPATIBLE_CHANGE or removed_or_changed(r.stdout):
            print(f"{lib}: the ABI differs from {baseline} (soname {name}):\n{r.stdout}\n"
                  "A program built against the baseline may break. Undo the change; or, for\n"
                  "a break, bump soversion in meson.build and record a new baseline with\n"
                  "--update; or, for a compatible change the policy allows (a reserved word\n"
                  "taken), record the baseline again with --update.")
            failed = True
        elif r.returncode:
            print(f"{lib}: compatible with {baseline}; additions:\n{r.stdout}")
        else:
            print(f"{lib}: the same ABI as {baseline}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
