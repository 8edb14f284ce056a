#!/usr/bin/env python3
"""Without libuv's sources at hand, the libuv fallback fails at once, saying
what to do, instead of retrying a download for minutes.

usage: libuv_offline.py MESON SOURCE_ROOT

Configures SOURCE_ROOT alone (no tests, no examples) with the fallback forced
and downloads forbidden, and checks that meson fails within a bounded time
with the hint: the files to put in subprojects/packagecache/. Skipped when
the sources are there (the fallback would then really build libuv).
SPDX-License-Identifier: MIT
"""
import configparser
import os
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    meson, source = sys.argv[1], os.path.abspath(sys.argv[2])
    subprojects = os.path.join(source, "subprojects")
    wrap = configparser.ConfigParser(interpolation=None)
    wrap.read(os.path.join(subprojects, "libuv.wrap"))
    w = wrap["wrap-file"]
    cache = os.path.join(subprojects, "packagecache")
    if os.path.isdir(os.path.join(subprojects, w["directory"])) or \
            os.path.isfile(os.path.join(cache, w["source_filename"])):
        print("skipped: libuv's sources are in subprojects/, the fallback would build them")
        return 77
    with tempfile.TemporaryDirectory(prefix="cf_uv_offline_") as tmp:
        cmd = [meson, "setup", os.path.join(tmp, "build"), source, "--force-fallback-for=libuv",
               "-Dwrap_mode=nodownload", "-Dtests=false", "-Dexamples=false"]
        print("$", " ".join(cmd), flush=True)
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=60)
    text = out.stdout + out.stderr
    print(text[-2000:])
    if out.returncode == 0:
        print("FAIL: configured without libuv's sources")
        return 1
    for hint in ("subprojects/packagecache/", w["source_filename"], "libuv1-dev"):
        if hint not in text:
            print(f"FAIL: the error does not say {hint!r}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
