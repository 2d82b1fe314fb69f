#!/usr/bin/env bash
# Build the self-contained kcm bundle (PyInstaller, one directory) that `kcm install`
# puts on hosts, for workload containers without Python. Usage: build-bundle.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: build-bundle.sh OUT_DIR}
python=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m PyInstaller --onedir --name kcm --noconfirm --log-level WARN \
    --collect-submodules kcm --distpath "$work/dist" --workpath "$work/build" \
    --specpath "$work" bin/kcm
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$work/dist/kcm" "$out"
echo "$out"
