#!/usr/bin/env bash
# Build the self-contained kcm bundle that `kcm install` puts on hosts (kcm/bundle.py:
# a relocatable copy of the building Python with the part of the standard library kcm
# imports, kcm and its dependencies, the shared libraries, and the static launcher).
# `kcm install` does the same on demand when it finds no bundle; this script is for
# images (Dockerfile) and benchmarks.
# Usage: build-bundle.sh OUT_DIR   (PYTHON selects the interpreter; default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: build-bundle.sh OUT_DIR}
python=${PYTHON:-.venv/bin/python}
rm -rf "$out"
mkdir -p "$(dirname "$out")"
exec "$python" -m kcm.bundle "$out"
