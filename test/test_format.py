#!/usr/bin/env python3
"""Every C and C++ source of the tree is formatted as .clang-format says.

usage: test_format.py CLANG_FORMAT SOURCE_ROOT

Runs `clang-format --dry-run --Werror` over include/, lib/, test/ and
examples/ (*.c, *.h, *.cpp; not subprojects/). Another major version of
clang-format formats differently: with one other than 14 (Debian 12's), the
test is skipped (exit 77) rather than failing on the tool. To fix a failure:
`clang-format -i FILE...`. Comments, which .clang-format never reflows, are
also held to its 100 columns here.
SPDX-License-Identifier: MIT
"""
import os
import re
import subprocess
import sys

DIRS = ("include", "lib", "test", "examples")
SUFFIXES = (".c", ".h", ".cpp")
WANTED_MAJOR = 14
COLUMNS = 100  # .clang-format's ColumnLimit


def long_lines(files, root):
    """file:line for every line over COLUMNS characters."""
    found = []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if len(line.rstrip("\n")) > COLUMNS:
                    found.append(f"{os.path.relpath(path, root)}:{number}")
    return found


def sources(root):
    for d in DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, d)):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(SUFFIXES):
                    yield os.path.join(dirpath, name)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    tool, root = argv
    version = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version (\d+)\.", version)
    if not m or int(m.group(1)) != WANTED_MAJOR:
        print(f"skipped: {version.strip() or tool} is not clang-format {WANTED_MAJOR}")
        return 77
    files = list(sources(root))
    r = subprocess.run([tool, "--dry-run", "--Werror", "--style=file"] + files,
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.stdout.write(r.stderr[-20000:])
        bad = sorted({line.split(":", 1)[0] for line in r.stderr.splitlines()
                      if line.startswith("/") and ": error:" in line})
        print(f"{len(bad)} file(s) not formatted; fix with: clang-format -i " +
              " ".join(os.path.relpath(b, root) for b in bad))
        return 1
    too_long = long_lines(files, root)
    if too_long:
        print(f"lines over {COLUMNS} columns (a comment, most likely): " + " ".join(too_long))
        return 1
    print(f"{len(files)} files formatted as .clang-format says")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
