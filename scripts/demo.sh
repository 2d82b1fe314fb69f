#!/usr/bin/env bash
# Install kcm in a virtual environment, initialise this machine's pools in a scratch
# directory, show them, run a command pinned to a dataplane core, and install the
# self-contained kcm (as docs/operator.md's single-host steps do) and run it. A regular (not
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
# The self-contained kcm that workload containers without Python run: kcm install builds it
# from this Python (there is no bundle after a pip install) and puts it in a directory.
install_dir="$conf_dir-bin"
"$venv"/bin/kcm install --install-dir="$install_dir" --output=table
env -i "$install_dir"/kcm isolate --conf-dir="$conf_dir" --pool=dataplane -- \
    /bin/grep Cpus_allowed_list /proc/self/status
echo "configuration directory: $conf_dir; self-contained kcm: $install_dir/kcm"
