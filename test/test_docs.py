#!/usr/bin/env python3
"""The reference manual documents the whole public API.

usage: test_docs.py HTML_DIR MAN3_DIR WARNINGS_LOG HEADER...

HTML_DIR, MAN3_DIR and WARNINGS_LOG: what lib/doc's 'docs' target built.
HEADER: every public header the manual is made from. Fails when
- Doxygen warned (an undocumented public name, a broken reference, ...);
- there is no HTML index or no man page cf_submit.3;
- a name the headers make public has no man page of its own, or its page
  does not lead to a page that documents it: every CF_API (or CF_<lib>_API)
  function, every public macro (CF_WITH, cf_autoptr, CFUTURES_CHECK_VERSION,
  ...) and every public type (cf_future, cf_fn, cf_map_opts, ...);
- an area's page (cfutures_<area>.3) or the overview cfutures.3 is missing;
- a man page is named for something that is not cfutures' (a struct field:
  it would clash with other packages' pages once installed).
SPDX-License-Identifier: MIT
"""
import os
import re
import sys

AREAS = ["errors", "executors", "futures", "waiting", "map", "loop", "event_loops", "scoped",
         "mpi"]
PUBLIC = re.compile(r"^(cf_|CF_|CFUTURES_|cfutures)")
INTERNAL = re.compile(r"^(cf__|CF__)")
LINK = re.compile(r"^\.so man3/(.+\.3)\s*$")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def public_names(header):
    """{name: kind} for what the header makes public."""
    with open(header) as f:
        code = strip_comments(f.read())
    names = {}
    for n in re.findall(r"\bCF_(?:\w+_)?API\b[^;{(]*?\b(cf_\w+)\s*\(", code):
        names[n] = "function"
    for n in re.findall(r"^[ \t]*#[ \t]*define[ \t]+(\w+)", code, flags=re.M):
        if not n.endswith("_H"):  # include guards
            names.setdefault(n, "macro")
    for n in re.findall(r"\btypedef\s+(?:struct|enum)\s+\w+\s+(\w+)\s*;", code):
        names[n] = "type"
    for n in re.findall(r"\}\s*(\w+)\s*;", code):  # typedef struct/enum { ... } name;
        names[n] = "type"
    for n in re.findall(r"\btypedef\b[^;]*?\(\s*\*\s*(\w+)\s*\)\s*\(", code):
        names[n] = "type"
    for body in re.findall(r"\benum\b[^{;]*\{([^}]*)\}", code):  # enumerators
        for n in re.findall(r"\b(CF_\w+)\s*(?:=[^,]*)?(?:,|$)", body.strip()):
            names.setdefault(n, "constant")
    m = re.search(r"#\s*define\s+CF_ERROR_MAP\(X\)(.*?)\n\s*\n", code, flags=re.S)
    for n in re.findall(r"\bX\((\w+),", m.group(1) if m else ""):  # the status codes
        names.setdefault("CF_" + n, "constant")
    return {n: k for n, k in names.items() if PUBLIC.match(n) and not INTERNAL.match(n)}


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def plain(troff):
    """The words of a man page: font changes (\\fB...\\fP) and escapes dropped."""
    return re.sub(r"\\f[A-Z]|\\&|\\", " ", troff)


def resolve(man3, page):
    """The text of the page a man page shows (following one .so link)."""
    text = read(os.path.join(man3, page))
    m = LINK.match(text)
    if m:
        target = os.path.join(man3, m.group(1))
        return read(target) if os.path.exists(target) else None
    return text


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    html, man3, log, headers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    errors = []

    warnings = read(log).strip()
    if warnings:
        errors.append(f"doxygen warned ({log}):\n{warnings}")
    if not os.path.isfile(os.path.join(html, "index.html")):
        errors.append(f"no {html}/index.html")
    pages = set(os.listdir(man3)) if os.path.isdir(man3) else set()
    if "cf_submit.3" not in pages:
        errors.append(f"no {man3}/cf_submit.3")

    names = {}
    for header in headers:
        found = public_names(header)
        if not found:
            errors.append(f"no public name found in {header}: parser broken?")
        names.update(found)
    functions = [n for n, k in names.items() if k == "function"]
    if len(functions) < 20:
        errors.append(f"only {len(functions)} public functions found: parser broken?")
    for name in sorted(names):
        page = name + ".3"
        if page not in pages:
            errors.append(f"{names[name]} {name}: no man page {page} (undocumented?)")
            continue
        text = resolve(man3, page)
        if text is None:
            errors.append(f"{page}: a link to a page that does not exist")
        elif not re.search(r"\b" + re.escape(name) + r"\b", plain(text)):
            errors.append(f"{page}: the page it shows does not mention {name}")

    for area in AREAS:
        if f"cfutures_{area}.3" not in pages:
            errors.append(f"no area page cfutures_{area}.3")
    if "cfutures.3" not in pages or resolve(man3, "cfutures.3") is None:
        errors.append("no overview page cfutures.3")
    for page in sorted(pages):
        if not PUBLIC.match(page):
            errors.append(f"{page}: not a cfutures name (a struct field?); would clash once "
                          "installed")

    for e in errors:
        print("FAIL:", e)
    print(f"{len(pages)} man pages; {len(names)} public names checked "
          f"({len(functions)} functions)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
