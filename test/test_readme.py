#!/usr/bin/env python3
"""Compile (and run) every C snippet of README.md, as a new user would.

    test_readme.py README.md LIBCFUTURES [--uv ARG]... -- CC [CFLAGS...]

The convention, which README.md follows:

  ```c             A complete program if it defines main(): it is compiled,
                   linked against LIBCFUTURES and run; it must exit with 0.
                   Otherwise a fragment at file scope (declarations, function
                   definitions): it is compiled alone (cc -c), so it must
                   include what it uses, <cfutures.h> first of all.
  ```c no-compile  Shown but not compiled (e.g. a signature list with "...").

GitHub only reads the first word of the info string, so every block is
still highlighted as C. Blocks of other languages are ignored.

A program that includes <cfutures-uv.h> calls libuv itself, so it is also
linked with the --uv arguments (e.g. -L<dir> -luv, what pkg-config's
cfutures-uv gives a user); without them (libuv is not the system's) it is
counted as not supported by this build.

A program that fails only because this build has no process pool yet (it
prints cf_strerror(CF_ENOTSUP)) is counted as unsupported: when that is the
only kind of failure, the test reports a skip (exit 77) instead of a failure.
"""
import os
import re
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^```(\S*)[ \t]*(.*)$")
ENOTSUP_TEXT = "operation not supported by this executor"  # cf_strerror(CF_ENOTSUP)


def snippets(text):
    """Yield (line number, info words, code) for each fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(1):
            i += 1
            continue
        lang, words, start = m.group(1), m.group(2).split(), i + 1
        j = start
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        yield start, lang, words, "\n".join(lines[start:j]) + "\n"
        i = j + 1


def parse_args(argv):
    """(readme, lib, uv_args, cc) from the command line."""
    if len(argv) < 2 or "--" not in argv[2:]:
        sys.exit(__doc__)
    readme, lib = argv[0], os.path.abspath(argv[1])
    end = argv.index("--", 2)
    options, cc = argv[2:end], argv[end + 1:]
    if len(options) % 2 or any(o != "--uv" for o in options[::2]) or not cc:
        sys.exit(__doc__)
    return readme, lib, options[1::2], cc


def main(argv):
    readme, lib, uv_args, cc = parse_args(argv)
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    libdir = os.path.dirname(lib)
    failures = programs = fragments = unsupported = 0
    with tempfile.TemporaryDirectory(prefix="cf_readme_") as tmp:
        for line, lang, words, code in snippets(text):
            if lang != "c" or "no-compile" in words:
                continue
            src = os.path.join(tmp, f"snippet_{line}.c")
            with open(src, "w", encoding="utf-8") as f:
                f.write(code)
            is_program = re.search(r"\bint\s+main\s*\(", code) is not None
            uses_uv = re.search(r"#\s*include\s*<cfutures-uv\.h>", code) is not None
            if is_program and uses_uv and not uv_args:
                print(f"README.md:{line}: not supported by this build: no system libuv "
                      "to link the program with")
                unsupported += 1
                continue
            if is_program:
                exe = os.path.join(tmp, f"snippet_{line}")
                cmd = cc + [src, "-o", exe, lib, "-Wl,-rpath," + libdir, "-pthread"]
                if uses_uv:
                    cmd += uv_args
            else:
                cmd = cc + ["-c", src, "-o", src + ".o"]
            build = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
            if build.returncode != 0:
                print(f"README.md:{line}: the snippet does not compile:\n{build.stdout}")
                failures += 1
                continue
            if not is_program:
                fragments += 1
                continue
            try:
                # stdin /dev/null: a README program with its own libuv loop
                # needs descriptors 0-2 open (libuv asserts its are not them).
                run = subprocess.run([exe], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, timeout=60)
            except subprocess.TimeoutExpired:
                print(f"README.md:{line}: the program did not finish within 60 s")
                failures += 1
                continue
            if run.returncode != 0 and ENOTSUP_TEXT in run.stdout:
                print(f"README.md:{line}: not supported by this build:\n{run.stdout}")
                unsupported += 1
                continue
            if run.returncode != 0:
                print(f"README.md:{line}: the program exited with {run.returncode}:\n"
                      f"{run.stdout}")
                failures += 1
                continue
            programs += 1
    print(f"{programs} programs built and run, {fragments} fragments compiled, "
          f"{unsupported} not supported by this build, {failures} failed")
    if programs + fragments + failures + unsupported == 0:
        print("README.md has no ```c snippet: nothing was checked")
        return 1
    if failures:
        return 1
    return 77 if unsupported else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
