#!/usr/bin/env bash
# Set up a virtual environment with kcm and its test tools, lint, run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check kcm tests bench
.venv/bin/python -m pytest "$@"
