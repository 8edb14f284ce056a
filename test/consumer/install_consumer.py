#!/usr/bin/env python3
"""An installed cfutures works for the programs built against it.

usage: install_consumer.py --meson M --build DIR --source DIR --soversion N
                           [--nm NM] [--cmake CMAKE] [--docs [--man MAN]]
                           [--cxx CXX...] -- CC...

Installs the build (meson install --destdir) into a temporary directory,
then, against that tree only:
- pkg-config: builds consumer/app.c with `pkg-config --cflags --libs
  cfutures` and runs it (both pools, and the installed worker helper found
  relative to the installed library); it needs libcfutures.so.N, the soname;
- the header tests of the build tree (test_header.c as C99 and C11,
  test_header_uv.c, test_header.cpp) compile at the strictest warnings with
  the installed headers and run;
- test_exports.py passes on the installed library and headers;
- libcfutures-mpi, when the build made it: consumer/mpi_app.c through
  `pkg-config cfutures-mpi` links and runs;
- CMake, when there is one: consumer/cmake's project finds the package with
  find_package(cfutures 0.2 COMPONENTS uv), builds app.c and
  test_header_uv.c (and mpi_app.c through cfutures::mpi when the build has
  MPI), and they run;
- the reference manual, when the build made it (--docs): the HTML index is
  in <datadir>/doc/cfutures/html, and `man 3 cf_submit` (and `man 3
  cfutures`, the overview) render from <mandir> with MANPATH set to it.
Uses the installed .pc files with their prefix pointed at the temporary tree.
SPDX-License-Identifier: MIT
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TEST_DIR = os.path.dirname(HERE)
STRICT = ["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wconversion", "-Wsign-conversion",
          "-Wcast-qual", "-Wundef", "-Wredundant-decls", "-Wwrite-strings"]


def run(cmd, **kw):
    print("$", " ".join(shlex.quote(str(c)) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, stdin=subprocess.DEVNULL, **kw)


def output(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, **kw).stdout


def parse_args():
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit(__doc__)
    end = argv.index("--")
    p = argparse.ArgumentParser(usage=__doc__)
    for name in ("--meson", "--build", "--source", "--soversion"):
        p.add_argument(name, required=True)
    p.add_argument("--nm")
    p.add_argument("--cmake")
    p.add_argument("--cxx", nargs="+")
    p.add_argument("--docs", action="store_true")
    p.add_argument("--man")
    args = p.parse_args(argv[:end])
    args.cc = argv[end + 1:]
    if not args.cc:
        sys.exit(__doc__)
    return args


def install(args, tmp):
    """Install into tmp/root: (the tree's prefix, its libdir, its env, the
    function giving where an install directory option (mandir, ...) is)."""
    options = {o["name"]: o["value"] for o in
               json.loads(output([args.meson, "introspect", "--buildoptions", args.build]))}
    destdir = os.path.join(tmp, "root")
    run([args.meson, "install", "-C", args.build, "--no-rebuild", "--destdir", destdir],
        stdout=subprocess.DEVNULL)
    prefix = destdir + options["prefix"]

    def installed(option):
        value = options[option]
        return destdir + value if os.path.isabs(value) else os.path.join(prefix, value)

    libdir = installed("libdir")
    # The installed .pc files, with their prefix moved to the tree.
    pcdir = os.path.join(tmp, "pkgconfig")
    os.mkdir(pcdir)
    for name in os.listdir(os.path.join(libdir, "pkgconfig")):
        with open(os.path.join(libdir, "pkgconfig", name)) as f:
            text = f.read()
        text = text.replace(f"prefix={options['prefix']}\n", f"prefix={prefix}\n", 1)
        with open(os.path.join(pcdir, name), "w") as f:
            f.write(text)
    env = dict(os.environ)
    env.pop("CFUTURES_WORKER_HELPER", None)
    env["PKG_CONFIG_PATH"] = pcdir
    env["LD_LIBRARY_PATH"] = libdir
    return prefix, libdir, env, installed


def pkg_config(env, *args):
    return shlex.split(output(["pkg-config", *args], env=env))


def check_ran(cmd, env, expect=None):
    out = subprocess.run([str(c) for c in cmd], stdin=subprocess.DEVNULL, env=env,
                         capture_output=True, text=True, timeout=120)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    if out.returncode != 0 or (expect and expect not in out.stdout):
        raise SystemExit(f"FAIL: {cmd[0]} exited with {out.returncode}")


def needed(exe):
    out = output(["readelf", "-d", exe]) if shutil.which("readelf") else output(["ldd", exe])
    return out


def check_manual(man, datadir, mandir):
    """The installed manual: HTML, and man pages that man(1) renders."""
    index = os.path.join(datadir, "doc", "cfutures", "html", "index.html")
    page = os.path.join(mandir, "man3", "cf_submit.3")
    for path in (index, page):
        if not os.path.isfile(path):
            raise SystemExit(f"FAIL: {path} was not installed")
    if not man:
        print("no man program: the installed man pages are not rendered")
        return
    env = dict(os.environ, MANPATH=mandir, MANWIDTH="100", MANPAGER="cat", PAGER="cat")
    for name, expect in (("cf_submit", "Schedule fn(arg)"), ("cfutures", "Conventions")):
        print(f"$ MANPATH={mandir} man 3 {name}", flush=True)
        out = subprocess.run([man, "3", name], stdin=subprocess.DEVNULL, env=env,
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0 or expect not in out.stdout or out.stderr.strip():
            sys.stdout.write(out.stdout[:2000])
            sys.stderr.write(out.stderr)
            raise SystemExit(f"FAIL: man 3 {name} exited with {out.returncode}, wrote to stderr"
                             f" or did not show '{expect}'")
        print(out.stdout.splitlines()[0] if out.stdout else "")


def main():
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="cf_install_") as tmp:
        prefix, libdir, env, installed = install(args, tmp)
        flags = pkg_config(env, "--cflags", "--libs", "cfutures")
        uv_flags = pkg_config(env, "--cflags", "--libs", "cfutures-uv")
        print("pkg-config cfutures:", " ".join(flags))

        app = os.path.join(tmp, "app")
        run(args.cc + ["-std=c11"] + STRICT + [os.path.join(HERE, "app.c"), "-o", app] + flags)
        soname = f"libcfutures.so.{args.soversion}"
        if soname not in needed(app):
            print(f"FAIL: app does not need {soname}:\n{needed(app)}")
            return 1
        check_ran([app, "--helper"], env, "all results right")

        # The build tree's header tests, against the installed headers (with
        # the project's -D_GNU_SOURCE: <uv.h> needs POSIX types).
        tests = [("test_header.c", "c99", flags), ("test_header.c", "c11", flags),
                 ("test_header_uv.c", "c11", uv_flags)]
        for src, std, f in tests:
            exe = os.path.join(tmp, f"{src[:-2]}_{std}")
            run(args.cc + [f"-std={std}", "-D_GNU_SOURCE"] + STRICT + ["-I", TEST_DIR,
                os.path.join(TEST_DIR, src), "-o", exe] + f)
            check_ran([exe], env)
        if args.cxx:
            exe = os.path.join(tmp, "test_header_cpp")
            run(args.cxx + ["-std=c++11", "-D_GNU_SOURCE"] + STRICT + ["-Wold-style-cast",
                "-Wzero-as-null-pointer-constant", os.path.join(TEST_DIR, "test_header.cpp"),
                "-o", exe] + uv_flags)
            check_ran([exe], env)

        if args.nm:
            include = os.path.join(prefix, "include")
            run([sys.executable, os.path.join(TEST_DIR, "test_exports.py"), args.nm,
                 os.path.join(libdir, soname), os.path.join(include, "cfutures.h"),
                 os.path.join(include, "cfutures-uv.h")])

        # libcfutures-mpi, when the build made it: pkg-config cfutures-mpi.
        have_mpi = os.path.exists(os.path.join(libdir, f"libcfutures-mpi.so.{args.soversion}"))
        if have_mpi:
            exe = os.path.join(tmp, "mpi_app")
            mpi_flags = shlex.split(output(["pkg-config", "--cflags", "--libs", "cfutures-mpi"],
                                           env=env))
            run(args.cc + ["-std=c11"] + STRICT + [os.path.join(HERE, "mpi_app.c"), "-o", exe]
                + mpi_flags)
            check_ran([exe], env, "linked")
        else:
            print("no libcfutures-mpi in this build: cfutures-mpi is not tried")

        if args.cmake:
            build = os.path.join(tmp, "cmake-build")
            run([args.cmake, "-S", os.path.join(HERE, "cmake"), "-B", build,
                 f"-DCMAKE_PREFIX_PATH={prefix}", f"-DCFUTURES_TEST_DIR={TEST_DIR}",
                 f"-DCFUTURES_EXPECT_MPI={'ON' if have_mpi else 'OFF'}",
                 f"-DCMAKE_C_COMPILER={args.cc[0]}"], stdout=subprocess.DEVNULL)
            run([args.cmake, "--build", build], stdout=subprocess.DEVNULL)
            check_ran([os.path.join(build, "app")], env, "all results right")
            check_ran([os.path.join(build, "header_uv")], env)
            if have_mpi:
                check_ran([os.path.join(build, "mpi_app")], env, "linked")
        else:
            print("no cmake: the CMake package is not tried")

        if args.docs:
            check_manual(args.man, installed("datadir"), installed("mandir"))
        else:
            print("no reference manual in this build (-Ddocs): its install is not tried")
    return 0


if __name__ == "__main__":
    sys.exit(main())
