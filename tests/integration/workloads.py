"""Helpers for tests that run workloads under ``kcm isolate``."""

import json
import os
import time
from pathlib import Path


def make_conf(root: Path, pools: dict) -> Path:
    """A hand-written configuration directory: name -> (exclusive, [cpu lists])."""
    for name, (exclusive, lists) in pools.items():
        pool = root / "pools" / name
        pool.mkdir(parents=True)
        (pool / "exclusive").write_text("1" if exclusive else "0")
        for cpus in lists:
            (pool / cpus).mkdir()
            (pool / cpus / "tasks").write_text("")
    return root


def tasks_of(conf: Path) -> dict[str, list[int]]:
    """pool/cpulist -> PIDs, straight from the files."""
    found = {}
    for tasks in sorted(conf.glob("pools/*/*/tasks")):
        text = tasks.read_text().strip()
        key = f"{tasks.parent.parent.name}/{tasks.parent.name}"
        found[key] = [int(pid) for pid in text.split(",")] if text else []
    return found


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


REPORTER = (
    "import json, os, sys, time\n"
    "out = sys.argv[1]\n"
    "doc = {'pid': os.getpid(), 'affinity': sorted(os.sched_getaffinity(0)),\n"
    "       'env': {k: v for k, v in os.environ.items() if k.startswith('KCM_')}}\n"
    "doc['status'] = [l.split(':', 1)[1].strip() for l in open('/proc/self/status')\n"
    "                 if l.startswith('Cpus_allowed_list')][0]\n"
    "open(out + '.tmp', 'w').write(json.dumps(doc)); os.rename(out + '.tmp', out)\n"
    "time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)\n"
)
"""A workload that writes its pid, affinity and KCM_ environment to a file, then sleeps."""

PYTHON = os.environ.get("KCM_TEST_PYTHON", "python3")


def fake_bundle(directory: Path) -> Path:
    """A stand-in for the self-contained bundle (an executable ``kcm`` and ``runtime/``):
    enough for ``kcm install --from`` and for uninstall to recognise it as kcm's."""
    directory.mkdir(parents=True)
    launcher = directory / "kcm"
    launcher.write_text("#!/bin/sh\necho kcm 0.0.0\n")
    launcher.chmod(0o755)
    (directory / "runtime").mkdir()
    return directory
