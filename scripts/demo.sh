#!/usr/bin/env bash
# Install kcm in a virtual environment, initialise this machine's pools in a scratch
# directory, show them, and run a command pinned to a dataplane core. A regular (not
# editable) install, in a venv of its own: an editable install costs every kcm start
# about 25 ms of import hooks, and the demo should show kcm's real speed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${KCM_VENV:-.venv-demo}
python3 -m venv "$venv"
"$venv"/bin/pip install --quiet --disable-pip-version-check .
conf_dir=$(mktemp -d /tmp/kcm-demo.XXXXXX)
rmdir "$conf_dir"
"$venv"/bin/kcm init --conf-dir="$conf_dir" --num-dp-cores=1 --num-cp-cores=0
"$venv"/bin/kcm describe --conf-dir="$conf_dir" --output=table
"$venv"/bin/kcm isolate --conf-dir="$conf_dir" --pool=dataplane -- \
    python3 -c 'import os; print("pinned to CPUs", sorted(os.sched_getaffinity(0)), "=", os.environ["KCM_CPUS_ASSIGNED"])'
echo "configuration directory: $conf_dir"
