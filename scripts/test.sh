#!/usr/bin/env bash
# Set up a virtual environment with kcm and its test tools, lint, run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# busybox-static gives the install test a root filesystem without Python.
if ! command -v busybox >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y -q busybox-static || (apt-get update -q && apt-get install -y -q busybox-static)) >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check kcm tests bench scripts
.venv/bin/python -m pytest "$@"
