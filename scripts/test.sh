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
# The real API server and the real node: Debian's containerd, runc and CNI plugins, and
# kube-apiserver, kubelet, scheduler, controller-manager built from Debian's source, etcd,
# kubectl and Helm (once per machine, 15-40 minutes on 2 CPUs, cached in
# /var/tmp/kcm-k8s-real; seconds afterwards).
bash scripts/k8s-node.sh prepare
.venv/bin/ruff check kcm tests bench scripts
.venv/bin/python -m pytest "$@"
