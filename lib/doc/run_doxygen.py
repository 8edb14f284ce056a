#!/usr/bin/env python3
"""Build the reference manual: Doxygen, then the man pages made installable.

usage: run_doxygen.py DOXYGEN DOXYFILE OUTDIR CFUTURES_H

Runs DOXYGEN on DOXYFILE (which writes OUTDIR/html, OUTDIR/man3 and
OUTDIR/doxygen-warnings.log), from empty directories, so that no page of a
name since removed stays behind. Then, in man3/:
- drops the pages of struct fields (MAN_LINKS makes one per field: end.3,
  signal.3, ...), which would clash with other packages' man pages once
  installed: a man page is kept only for a name of cfutures (cf_*, CF_*,
  CFUTURES_*, cfutures*) that is not a field;
- removes the line continuations of macro values (CF_ERROR_MAP's table),
  which Doxygen copies unescaped, so that troff would join the lines;
- adds cfutures.3, the overview: `man 3 cfutures` shows cfutures.h(3);
- adds a page for each status code (CF_EINVAL.3, ...), which CF_ERROR_MAP in
  CFUTURES_H makes and Doxygen does not see: a link to the errors area.
Warnings do not fail the build (a newer Doxygen may warn about more); the
'docs' test suite (test/test_docs.py) requires that there are none.
SPDX-License-Identifier: MIT
"""
import os
import re
import shutil
import subprocess
import sys

PUBLIC = re.compile(r"^(cf_|CF_|CFUTURES_|cfutures)")
LINK = re.compile(r"^\.so man3/(.+)\.3\s*$")
CONTINUATION = re.compile(r"\s*(?<!\\)\\$")  # a lone backslash ending the line


def page_kind(path):
    """('link', target) for a .so page, else ('page', None)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    m = LINK.match(text)
    return ("link", m.group(1)) if m and text.count("\n") <= 1 else ("page", None)


def is_area_or_header(target):
    return target.startswith("cfutures_") or target.endswith(".h")


def drop_continuations(path):
    """In the no-fill blocks (.nf ... .fi) of a page, the trailing backslash
    of a macro's continued line goes (with the spaces before it)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    nofill = False
    for i, line in enumerate(lines):
        if line.startswith(".nf"):
            nofill = True
        elif line.startswith(".fi"):
            nofill = False
        elif nofill:
            lines[i] = CONTINUATION.sub("", line)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def error_codes(header):
    """CF_<name> for every X(name, value, text) of CF_ERROR_MAP."""
    with open(header, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"#define CF_ERROR_MAP\(X\)(.*?)\n\s*\n", text, flags=re.S)
    return ["CF_" + n for n in re.findall(r"\bX\((\w+),", m.group(1))] if m else []


def add_error_pages(man3, header):
    for name in error_codes(header):
        path = os.path.join(man3, name + ".3")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(".so man3/cfutures_errors.3\n")


def tidy_man(man3):
    for name in sorted(os.listdir(man3)):
        path = os.path.join(man3, name)
        stem = name[:-2] if name.endswith(".3") else name
        kind, target = page_kind(path)
        # A field's link goes to its struct's page; a function's, a type's
        # or a macro's to its area (a group) or its header.
        field = kind == "link" and not is_area_or_header(target)
        if field or not PUBLIC.match(stem):
            os.remove(path)
        elif kind == "page":
            drop_continuations(path)
    with open(os.path.join(man3, "cfutures.3"), "w") as f:
        f.write(".so man3/cfutures.h.3\n")


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    doxygen, doxyfile, outdir, header = sys.argv[1:]
    for d in ("html", "man3"):
        shutil.rmtree(os.path.join(outdir, d), ignore_errors=True)
    log = os.path.join(outdir, "doxygen-warnings.log")
    if os.path.exists(log):
        os.remove(log)
    rc = subprocess.run([doxygen, os.path.abspath(doxyfile)], cwd=outdir,
                        stdin=subprocess.DEVNULL).returncode
    if rc != 0:
        print(f"{doxygen} exited with {rc}", file=sys.stderr)
        return 1
    if not os.path.exists(log):
        open(log, "w").close()
    tidy_man(os.path.join(outdir, "man3"))
    add_error_pages(os.path.join(outdir, "man3"), header)
    with open(log) as f:
        warnings = f.read()
    if warnings:
        print(f"doxygen warned (the 'docs' tests fail until it does not):\n{warnings}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
