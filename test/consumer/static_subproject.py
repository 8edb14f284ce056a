#!/usr/bin/env python3
"""cfutures as a static subproject: a parent project with
default_library=static links libcfutures statically, and builds none of
cfutures' tests or examples.

usage: static_subproject.py MESON SOURCE_ROOT

Copies static_parent/meson.build and app.c into a temporary directory, with
subprojects/cfutures a link to SOURCE_ROOT, configures it (cfutures from the
subproject even where one is installed; never downloading), builds it, and
checks that:
- the only targets of cfutures are its library and its worker helper;
- app does not need libcfutures.so (readelf -d, else ldd);
- app runs: a thread pool and a process pool (which re-runs app) give
  their results.
SPDX-License-Identifier: MIT
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, **kw):
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, **kw)


def needed_libraries(exe):
    readelf = shutil.which("readelf")
    if readelf:
        out = subprocess.run([readelf, "-d", exe], check=True, capture_output=True,
                             text=True).stdout
        return [line.split("[", 1)[1].split("]", 1)[0]
                for line in out.splitlines() if "(NEEDED)" in line]
    out = subprocess.run(["ldd", exe], check=True, capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    meson, source = sys.argv[1], os.path.abspath(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="cf_static_sub_") as tmp:
        shutil.copy(os.path.join(HERE, "static_parent", "meson.build"), tmp)
        shutil.copy(os.path.join(HERE, "app.c"), tmp)
        os.mkdir(os.path.join(tmp, "subprojects"))
        os.symlink(source, os.path.join(tmp, "subprojects", "cfutures"))
        build = os.path.join(tmp, "build")
        run([meson, "setup", build, tmp, "--force-fallback-for=cfutures",
             "-Dwrap_mode=nodownload"], stdout=subprocess.DEVNULL)
        run(["ninja", "-C", build], stdout=subprocess.DEVNULL)

        targets = json.loads(subprocess.run([meson, "introspect", "--targets", build],
                                            check=True, capture_output=True,
                                            text=True).stdout)
        ours = sorted(t["name"] for t in targets if t.get("subproject") == "cfutures")
        print("cfutures targets:", ", ".join(ours))
        if ours != ["cfutures", "cfutures-worker"]:
            print("FAIL: a subproject's cfutures builds more than its library and helper")
            return 1
        kinds = {t["name"]: t["type"] for t in targets if t.get("subproject") == "cfutures"}
        if kinds["cfutures"] != "static library":
            print(f"FAIL: libcfutures is a {kinds['cfutures']}, not a static library")
            return 1

        app = os.path.join(build, "app")
        needed = needed_libraries(app)
        print("app needs:", ", ".join(needed))
        if any("cfutures" in n for n in needed):
            print("FAIL: app needs a shared libcfutures")
            return 1
        out = subprocess.run([app], stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=60)
        sys.stdout.write(out.stdout)
        sys.stderr.write(out.stderr)
        if out.returncode != 0 or "all results right" not in out.stdout:
            print(f"FAIL: app exited with {out.returncode}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
