#!/usr/bin/env bash
# Build the self-contained kcm bundle that `kcm install` puts on hosts, for workload
# containers without Python: a relocatable copy of the building Python (interpreter,
# libpython, the dynamic loader and every shared library they and the extension modules
# need), the standard library, kcm and its dependencies, and a static launcher.
# Usage: build-bundle.sh OUT_DIR   (PYTHON selects the interpreter; default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: build-bundle.sh OUT_DIR}
python=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Progress on a terminal (each step, with the seconds so far); nothing in a log.
started=$SECONDS
step() { if [ -t 2 ]; then echo "build-bundle: [$((SECONDS - started)) s] $*" >&2; fi; }
root="$work/bundle"
runtime="$root/runtime"
mkdir -p "$runtime/bin" "$runtime/lib"

read -r interpreter stdlib dynload version < <("$python" - <<'PY'
import os, sys, sysconfig
base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
print(base, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"] + "/lib-dynload",
      f"{sys.version_info[0]}.{sys.version_info[1]}")
PY
)
pylib="$runtime/lib/python$version"
step "copying Python $version and its standard library"
cp "$interpreter" "$runtime/bin/python3"
# The standard library, without what kcm never imports (tests, GUIs, build files).
cp -r "$stdlib" "$pylib"
rm -rf "$pylib"/{test,idlelib,tkinter,turtledemo,ensurepip,lib2to3,pydoc_data,distutils} \
       "$pylib"/site-packages "$pylib"/config-* "$pylib"/__pycache__/*.opt-*.pyc
find "$pylib" -name '*.a' -delete
rm -f "$pylib"/lib-dynload/_tkinter*.so
step "installing kcm and its dependencies"
# kcm and its runtime dependencies, straight into the standard library's directory.
"$python" -m pip install --quiet --disable-pip-version-check --no-compile \
    --target "$pylib" .
"$python" -m compileall -q -j 0 "$pylib" >/dev/null || true
step "collecting shared libraries"
# Every shared library the interpreter and the extension modules load, and the loader.
{
    ldd "$interpreter"
    find "$pylib" -name '*.so*' -exec ldd {} \; 2>/dev/null
} | awk '/=> \// { print $3 } /^\t\// { print $1 }' | sort -u | while read -r library; do
    case "$library" in "$pylib"/*) continue ;; esac
    cp -L "$library" "$runtime/lib/"
done
loader=$(cd "$runtime/lib" && ls ld-linux*.so* | head -n 1)
step "building the static launcher"
cc -O2 -static -DLOADER="\"$loader\"" -o "$root/kcm" bundle/launcher.c
"$root/kcm" --version >/dev/null
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$root" "$out"
step "done: $(du -sh "$out" | cut -f1)"
echo "$out"
