"""Building the self-contained bundle from the running Python, so that ``pip install``
then ``kcm install`` works on a fresh machine (no compiler, no build script).

The bundle is a relocatable copy of this interpreter: the executable, every shared
library it and the copied extension modules load (found with ``ldd``) with the dynamic
loader and C library, the part of the standard library kcm and its dependencies import
(found with ``modulefinder``; ``encodings`` whole, since codecs are looked up by name),
kcm, and its dependencies' packages whole (they import parts of themselves by name),
byte-compiled. In front of it, the static launcher ``kcm``: prebuilt for x86_64 from
``kcm/launcher/x86_64.s`` (no libc, 1.3 KB), else compiled from ``launcher.c`` when a C
compiler is at hand. Shared libraries are stripped of debug symbols when ``strip``
exists (libpython alone drops from 23 MB to a few).

Layout::

    <bundle>/kcm                         the launcher
    <bundle>/runtime/bin/python3         the interpreter
    <bundle>/runtime/lib/<loader>, *.so* libc, libpython and the libraries they need
    <bundle>/runtime/lib/pythonX.Y/      the standard library part, kcm, its dependencies
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys

from kcm import log
from kcm.errors import KcmError

LAUNCHERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher")
PREBUILT_LOADER = {"x86_64": "ld-linux-x86-64.so.2"}
"""The loader each prebuilt launcher runs (its name is written into the launcher)."""
NOT_NEEDED = ("tkinter", "idlelib", "turtledemo", "test", "lib2to3", "ensurepip", "pydoc_data",
              "distutils", "unittest", "pydoc", "doctest", "pdb")
"""Standard library modules kcm never runs, though some module names them."""


def main(argv: list[str] | None = None) -> int:
    """``python -m kcm.bundle OUT_DIR``: build a bundle (scripts/build-bundle.sh)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m kcm.bundle OUT_DIR", file=sys.stderr)
        return 2
    try:
        build(args[0])
    except KcmError as error:
        print(f"kcm: {error}", file=sys.stderr)
        return 1
    print(args[0])
    return 0


def build(out: str, strip: bool = True) -> None:
    """Build the bundle into ``out`` (which must not exist yet; removed on failure).
    ``strip``: strip debug symbols when the ``strip`` tool exists (False: as on a machine
    without it, for the benchmark)."""
    if os.path.lexists(out):
        raise KcmError(f"{out} exists; the bundle is built into a new directory")
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    runtime = os.path.join(out, "runtime")
    library_dir = os.path.join(runtime, "lib")
    python_dir = os.path.join(library_dir, f"python{version}")
    steps = log.Progress("building the kcm bundle", 6, unit="steps", scale=1)
    try:
        os.makedirs(os.path.join(runtime, "bin"))
        os.makedirs(python_dir)
        interpreter = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
        shutil.copy2(interpreter, os.path.join(runtime, "bin", "python3"))
        steps.advance(1)
        copy_standard_library(python_dir)
        steps.advance(1)
        copy_kcm_and_dependencies(python_dir)
        steps.advance(1)
        loader = copy_shared_libraries(interpreter, python_dir, library_dir,
                                       shutil.which("strip") if strip else None)
        steps.advance(1)
        make_launcher(os.path.join(out, "kcm"), loader)
        compile_all(python_dir)
        steps.advance(1)
        check(out)
        steps.finish()
    except BaseException:
        steps.abandon()
        shutil.rmtree(out, ignore_errors=True)
        raise


def needed_modules() -> dict[str, str]:
    """Module name -> file of every module kcm and its dependencies may import."""
    import modulefinder
    import pkgutil

    import kcm

    # kcm's own directory first: an editable install finds kcm by an import hook.
    path = [os.path.dirname(kcm.__path__[0]), *sys.path]
    finder = modulefinder.ModuleFinder(path=path, excludes=list(NOT_NEEDED))
    commands = [os.path.join(kcm.__path__[0], "commands")]
    roots = [f"kcm.{m.name}" for m in pkgutil.iter_modules(kcm.__path__)]
    roots += [f"kcm.commands.{m.name}" for m in pkgutil.iter_modules(commands)]
    for name in roots:
        try:
            finder.import_hook(name)
        except ImportError as error:
            raise KcmError(f"cannot find what {name} imports: {error}") from None
    # Codecs are imported by name at run time (the socket module encodes host names with
    # "idna", which imports stringprep): every codec with what it imports.
    import encodings

    for codec in pkgutil.iter_modules(encodings.__path__):
        try:
            finder.import_hook(f"encodings.{codec.name}")
        except ImportError:
            continue  # a codec of another platform (mbcs, oem)
    for name in _dependency_modules():
        try:
            finder.import_hook(name)
        except (SyntaxError, ImportError, ValueError):
            continue
    return {name: module.__file__ for name, module in finder.modules.items()
            if module.__file__}


def copy_standard_library(python_dir: str) -> None:
    """The standard library modules of ``needed_modules``, ``encodings`` whole."""
    stdlib = os.path.dirname(os.path.realpath(os.__file__))
    files = set()
    for path in needed_modules().values():
        real = os.path.realpath(path)
        relative = os.path.relpath(real, stdlib)
        if not relative.startswith("..") and relative.split(os.sep)[0] not in (
                "site-packages", "dist-packages"):
            files.add(relative)
    for root, _dirs, names in os.walk(os.path.join(stdlib, "encodings")):
        files.update(os.path.relpath(os.path.join(root, n), stdlib) for n in names
                     if n.endswith(".py"))
    for relative in sorted(files):
        source = os.path.join(stdlib, relative)
        target = os.path.join(python_dir, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)
    for package in {os.path.dirname(r) for r in files if os.path.dirname(r)}:
        init = os.path.join(stdlib, package, "__init__.py")
        while package and os.path.exists(init):
            target = os.path.join(python_dir, package, "__init__.py")
            if not os.path.exists(target):
                shutil.copy2(init, target)
            package = os.path.dirname(package)
            init = os.path.join(stdlib, package, "__init__.py")


def _dependency_distributions() -> list:
    """kcm's runtime dependencies and theirs (importlib.metadata), without extras."""
    from importlib import metadata

    seen: dict[str, object] = {}
    wanted = ["kcm"]
    while wanted:
        name = wanted.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = distribution
        for requirement in distribution.requires or []:
            if "extra" in requirement.partition(";")[2]:  # an optional dependency
                continue
            wanted.append(_requirement_name(requirement))
    return [d for k, d in seen.items() if k != "kcm"]


def _requirement_name(requirement: str) -> str:
    for index, char in enumerate(requirement):
        if not (char.isalnum() or char in "-_."):
            return requirement[:index]
    return requirement


def _dependency_modules() -> list[str]:
    """The dotted name of every Python module the dependencies installed."""
    names = []
    for distribution in _dependency_distributions():
        for entry in distribution.files or []:
            relative = str(entry)
            if relative.endswith(".py") and not relative.startswith("..") \
                    and "__pycache__" not in relative:
                dotted = relative[:-3].replace("/", ".")
                names.append(dotted[:-9] if dotted.endswith(".__init__") else dotted)
    return names


def copy_kcm_and_dependencies(python_dir: str) -> None:
    """kcm's package, and each dependency's installed files, into ``python_dir``."""
    import kcm

    source = os.path.dirname(os.path.abspath(kcm.__file__))
    shutil.copytree(source, os.path.join(python_dir, "kcm"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.s"))
    for distribution in _dependency_distributions():
        for entry in distribution.files or []:
            relative = str(entry)
            if relative.startswith("..") or "__pycache__" in relative:
                continue
            path = str(distribution.locate_file(entry))
            if os.path.isfile(path):
                target = os.path.join(python_dir, relative)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(path, target)


def copy_shared_libraries(interpreter: str, python_dir: str, library_dir: str,
                          strip: str | None) -> str:
    """Copy every shared library the interpreter and the extension modules load (and the
    loader) into ``library_dir``, stripped with ``strip`` (the tool's path) when given;
    the loader's name."""
    objects = [interpreter]
    for root, _dirs, names in os.walk(python_dir):
        objects += [os.path.join(root, n) for n in names if ".so" in n]
    libraries: set[str] = set()
    loader = ""
    for path in objects:
        for library in _ldd(path):
            libraries.add(library)
            if os.path.basename(library).startswith(("ld-linux", "ld64")):
                loader = os.path.basename(library)
    if not loader:
        raise KcmError(f"cannot find the dynamic loader of {interpreter} (is it static?)")
    for library in sorted(libraries):
        target = os.path.join(library_dir, os.path.basename(library))
        shutil.copy2(os.path.realpath(library), target)
        if strip and not os.path.basename(library).startswith(("ld-", "libc.so")):
            subprocess.run([strip, "--strip-debug", target], capture_output=True)
    if strip:
        for path in objects[1:]:
            subprocess.run([strip, "--strip-debug", path], capture_output=True)
    return loader


def _ldd(path: str) -> list[str]:
    ldd = shutil.which("ldd")
    if ldd is None:
        raise KcmError("building the kcm bundle needs ldd (glibc's libc-bin package)")
    result = subprocess.run([ldd, path], capture_output=True, text=True)
    found = []
    for line in result.stdout.splitlines():
        words = line.split()
        if "=>" in words and len(words) > words.index("=>") + 1:
            library = words[words.index("=>") + 1]
            if library.startswith("/"):
                found.append(library)
        elif words and words[0].startswith("/"):
            found.append(words[0])
    return found


def make_launcher(target: str, loader: str) -> None:
    """The prebuilt launcher for this machine, or one compiled from launcher.c."""
    machine = platform.machine()
    prebuilt = os.path.join(LAUNCHERS, machine)
    if PREBUILT_LOADER.get(machine) == loader and os.path.isfile(prebuilt):
        shutil.copy2(prebuilt, target)
        os.chmod(target, 0o755)
        return
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise KcmError(f"no prebuilt kcm launcher for {machine} with {loader}, and no C "
                       "compiler to build one from launcher.c (install gcc and libc6-dev)")
    result = subprocess.run([compiler, "-O2", "-static", f'-DLOADER="{loader}"', "-o", target,
                             os.path.join(LAUNCHERS, "launcher.c")],
                            capture_output=True, text=True)
    if result.returncode:
        raise KcmError(f"cannot compile the kcm launcher: {result.stderr.strip()}")


def compile_all(python_dir: str) -> None:
    import compileall

    # In this process: a pool of workers outlives a SIGKILLed `kcm install` (its
    # workers wait forever on a queue nobody feeds), and is no faster here.
    compileall.compile_dir(python_dir, quiet=2, workers=1)


def check(out: str) -> None:
    """The bundle runs: ``kcm --version`` through the launcher, with no environment."""
    result = subprocess.run([os.path.join(out, "kcm"), "--version"], capture_output=True,
                            text=True, env={})
    if result.returncode:
        raise KcmError(f"the bundle built in {out} does not run: {result.stderr.strip()}")


if __name__ == "__main__":
    sys.exit(main())
