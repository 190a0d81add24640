#!/usr/bin/env python3
"""debian_check.py - the Debian and RPM packaging checks of check_units.sh.

  control SRC BUILD TMP  debian/control, debian/changelog and
                         packaging/rpm/pgreviewer.spec are well-formed, their
                         version is CMakeLists.txt's, and every library the
                         build finds with pkg_check_modules() is a build
                         dependency (and in scripts/deps.sh)
  install SRC BUILD TMP  `cmake --install BUILD` into TMP, mapped onto
                         Debian's layout, is covered exactly by the
                         debian/*.install lists: no file missed, none in two
                         packages, no line matching nothing

Prints one line per problem and exits 1 if there is any.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

problems = []


def problem(msg):
    problems.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def paragraphs(text, where):
    """deb822 paragraphs as dicts (field names lower-cased)."""
    paras, cur, last = [], {}, None
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            continue
        if not line.strip():
            if cur:
                paras.append(cur)
            cur, last = {}, None
        elif line[0] in " \t":
            if last is None:
                problem(f"{where}:{n}: continuation line outside a field")
            else:
                cur[last] += "\n" + line.strip()
        else:
            m = re.match(r"^([A-Za-z0-9][A-Za-z0-9-]*):(.*)$", line)
            if not m:
                problem(f"{where}:{n}: not a `Field: value` line: {line!r}")
                continue
            last = m.group(1).lower()
            if last in cur:
                problem(f"{where}:{n}: field {m.group(1)} given twice")
            cur[last] = m.group(2).strip()
    if cur:
        paras.append(cur)
    return paras


def dep_names(value):
    """Package names of a dependency field (alternatives included)."""
    names = set()
    for alt in re.split(r"[,|]", value.replace("\n", " ")):
        alt = alt.strip()
        if alt:
            names.add(re.split(r"[\s(\[<]", alt)[0])
    return names


def project_version(src):
    m = re.search(r"project\(pgreviewer\s+VERSION\s+([0-9.]+)", read(f"{src}/CMakeLists.txt"))
    return m.group(1) if m else None


def pkg_modules(src):
    """pkg_check_modules() modules of the build (tests excluded)."""
    mods = set()
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if d not in (".git", "tests", "debian") and not d.startswith("build")]
        if "CMakeLists.txt" in files:
            for m in re.finditer(r"pkg_check_modules\(\s*\w+\s+(?:REQUIRED\s+)?(?:IMPORTED_TARGET\s+)?([\w.+-]+)",
                                 read(os.path.join(root, "CMakeLists.txt"))):
                mods.add(m.group(1))
    return mods


def dev_packages_of(modules):
    """{module: Debian package shipping MODULE.pc} for those that can be
    told (pkg-config and dpkg-query present, the .pc file packaged): one
    dpkg-query call, which reads every package's file list."""
    paths = {}
    for module in modules:
        try:
            pcdir = subprocess.run(["pkg-config", "--variable=pcfiledir", module], capture_output=True,
                                   text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        paths[f"{pcdir}/{module}.pc"] = module
    if not paths:
        return {}
    try:
        out = subprocess.run(["dpkg-query", "-S", *paths], capture_output=True, text=True).stdout
    except OSError:
        return {}
    found = {}
    for line in out.splitlines():
        pkg, _, path = line.partition(": ")
        if path.strip() in paths:
            found[paths[path.strip()]] = pkg.split(":")[0].strip()
    return found


def check_control(src):
    version = project_version(src)
    if not version:
        problem("CMakeLists.txt: no `project(pgreviewer VERSION x.y.z)`")
    paras = paragraphs(read(f"{src}/debian/control"), "debian/control")
    if len(paras) < 2:
        problem(f"debian/control: {len(paras)} paragraph(s); expected the source and at least one binary")
        return
    source, binaries = paras[0], paras[1:]
    for field in ("source", "maintainer", "build-depends", "standards-version"):
        if field not in source:
            problem(f"debian/control: the source paragraph has no {field.title()}:")
    for b in binaries:
        for field in ("package", "architecture", "description"):
            if field not in b:
                problem(f"debian/control: binary paragraph {b.get('package', '?')} has no {field.title()}:")
        if "\n" not in b.get("description", ""):
            problem(f"debian/control: {b.get('package')}: Description has no long description")
    names = {b.get("package") for b in binaries}
    if names != {"pgreviewer", "pgreviewer-plugin-dev"}:
        problem(f"debian/control: binary packages are {sorted(names)}; expected pgreviewer, pgreviewer-plugin-dev")
    for name in names:
        if name and not glob.glob(f"{src}/debian/{name}.install"):
            problem(f"debian/{name}.install: missing")
    build_deps = dep_names(source.get("build-depends", ""))
    deps_sh = read(f"{src}/scripts/deps.sh")
    modules = pkg_modules(src)
    owners = dev_packages_of(modules)
    for mod in sorted(modules):
        pkg = owners.get(mod)
        if pkg is None:
            print(f"note: cannot tell which package ships {mod}.pc; not checked")
            continue
        if pkg not in build_deps:
            problem(f"debian/control: Build-Depends lacks {pkg} (pkg_check_modules {mod})")
        if not re.search(rf"(^|\s){re.escape(pkg)}(\s|$)", deps_sh, re.M):
            problem(f"scripts/deps.sh: lacks {pkg} (pkg_check_modules {mod})")
    # debian/changelog: first line `pgreviewer (VERSION) dist; urgency=...`.
    first = read(f"{src}/debian/changelog").splitlines()[0]
    m = re.match(r"^pgreviewer \(([^)]+)\) [a-z-]+; urgency=\w+$", first)
    if not m:
        problem(f"debian/changelog: first line is not `pgreviewer (VERSION) DIST; urgency=U`: {first!r}")
    elif version and m.group(1).split("-")[0] != version:
        problem(f"debian/changelog: version {m.group(1)}, but CMakeLists.txt says {version}")
    if shutil.which("dpkg-parsechangelog"):
        r = subprocess.run(["dpkg-parsechangelog", "-l", f"{src}/debian/changelog"], capture_output=True, text=True)
        if r.returncode != 0 or r.stderr.strip():
            problem(f"debian/changelog: dpkg-parsechangelog: {r.stderr.strip()}")
    if not os.access(f"{src}/debian/rules", os.X_OK):
        problem("debian/rules: not executable")
    spec = read(f"{src}/packaging/rpm/pgreviewer.spec")
    m = re.search(r"^Version:\s*(\S+)$", spec, re.M)
    if not m or m.group(1) != version:
        problem(f"packaging/rpm/pgreviewer.spec: Version {m.group(1) if m else 'missing'}, "
                f"but CMakeLists.txt says {version}")
    for unit in glob.glob(f"{src}/packaging/systemd/*.service"):
        if os.path.basename(unit) not in spec:
            problem(f"packaging/rpm/pgreviewer.spec: does not ship {os.path.basename(unit)}")


def cache_vars(build):
    cache = {}
    for line in read(f"{build}/CMakeCache.txt").splitlines():
        m = re.match(r"^([A-Za-z_]+):[A-Z]+=(.*)$", line)
        if m:
            cache[m.group(1)] = m.group(2)
    return cache


def debian_layout(build):
    """(installed prefix, Debian prefix) pairs, longest first. Relative
    directories are under the install prefix /usr, absolute ones not."""
    c = cache_vars(build)
    share = c.get("CMAKE_INSTALL_DATAROOTDIR") or "share"
    dirs = [
        (c.get("CMAKE_INSTALL_BINDIR") or "bin", "usr/bin"),
        (c.get("CMAKE_INSTALL_SYSCONFDIR") or "etc", "etc"),
        (c.get("CMAKE_INSTALL_LIBDIR") or "lib", "usr/lib/MULTIARCH"),
        (c.get("CMAKE_INSTALL_INCLUDEDIR") or "include", "usr/include"),
        (share, "usr/share"),
        (c.get("CMAKE_INSTALL_MANDIR") or f"{share}/man", "usr/share/man"),
        (c.get("PGREVIEWER_SYSTEMD_UNITDIR") or "lib/systemd/system", "lib/systemd/system"),
    ]
    pairs = [(d.lstrip("/") if d.startswith("/") else f"usr/{d}", deb) for d, deb in dirs]
    return sorted(pairs, key=lambda p: -len(p[0]))


def check_install(src, build, tmp):
    dest = f"{tmp}/destdir"
    env = dict(os.environ, DESTDIR=dest)
    r = subprocess.run(["cmake", "--install", build, "--prefix", "/usr"], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        problem(f"cmake --install {build}: {r.stderr.strip()}")
        return
    layout = debian_layout(build)
    # A build tree configured without the units cannot show them missing.
    no_units = cache_vars(build).get("PGREVIEWER_INSTALL_SYSTEMD", "ON").upper() in ("OFF", "0", "FALSE", "NO")
    deb = f"{tmp}/debian-tmp"
    installed = set()
    for root, _, files in os.walk(dest):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), dest)
            for prefix, target in layout:
                if rel.startswith(prefix + "/"):
                    mapped = target + rel[len(prefix):]
                    break
            else:
                problem(f"cmake --install lays out {rel}, outside every directory Debian's layout maps")
                continue
            installed.add(mapped)
            os.makedirs(os.path.dirname(f"{deb}/{mapped}"), exist_ok=True)
            open(f"{deb}/{mapped}", "w").close()
    if not installed:
        problem("cmake --install installed nothing")
        return
    owner = {}
    for lst in sorted(glob.glob(f"{src}/debian/*.install")):
        pkg = os.path.basename(lst)[: -len(".install")]
        for n, line in enumerate(read(lst).splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            matches = glob.glob(line.split()[0], root_dir=deb)
            if not matches and line.startswith("lib/systemd/") and no_units:
                continue
            if not matches:
                problem(f"debian/{pkg}.install:{n}: {line} matches nothing cmake --install lays out")
            for m in matches:
                files = [m] if os.path.isfile(f"{deb}/{m}") else [
                    os.path.relpath(os.path.join(r, f), deb) for r, _, fs in os.walk(f"{deb}/{m}") for f in fs]
                for f in files:
                    owner.setdefault(f, set()).add(pkg)
    for f in sorted(installed):
        pkgs = owner.get(f, set())
        if not pkgs:
            problem(f"{f}: installed by cmake --install but in no debian/*.install (dh_missing would fail)")
        elif len(pkgs) > 1:
            problem(f"{f}: in two packages: {', '.join(sorted(pkgs))}")
    for doc in read(f"{src}/debian/pgreviewer.docs").split():
        if not os.path.isfile(f"{src}/{doc}"):
            problem(f"debian/pgreviewer.docs: {doc} does not exist")
    print(f"{len(installed)} installed files, each in exactly one package")


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("control", "install"):
        print("usage: debian_check.py control|install SRC BUILD TMP", file=sys.stderr)
        return 2
    mode, src, build, tmp = sys.argv[1:]
    (check_control(src) if mode == "control" else check_install(src, build, tmp))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
