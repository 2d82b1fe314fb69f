"""kill -9 of isolate, reconcile and init at random moments, hundreds of times (seeded):
the directory always parses, no exclusive CPU list is held by two live tasks, and one
reconcile returns every CPU list whose holder is dead."""

import json
import random
import subprocess
import time

import pytest

from tests.integration.workloads import (
    alive,
    kill_workloads,
    make_conf,
    recorded_workloads,
    start_time,
    tasks_of,
)
from tests.machines import xeon_d1541

SEED = 20261129


def check_invariants(kcm, conf) -> None:
    described = kcm.run("describe", f"--conf-dir={conf}")
    assert described.returncode == 0, described.stderr
    pools = json.loads(described.stdout)["pools"]
    for pool in pools.values():
        if pool["exclusive"]:
            for cpu_list in pool["cpuLists"].values():
                assert sum(alive(pid) for pid in cpu_list["tasks"]) <= 1


def test_kill_9_of_isolate_and_reconcile_at_random_moments(kcm, tmp_path):
    rng = random.Random(SEED)
    # Two exclusive lists named after CPUs this machine lacks (their workloads run
    # with --no-affinity) beside a shared pool on the real CPUs.
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["10", "11"]),
                                        "infra": (False, ["0-1"])})
    survivors = []
    workloads: set[tuple[int, int]] = set()
    for round_ in range(150):
        command = rng.choice(["isolate-exclusive", "isolate-shared", "reconcile"])
        if command == "reconcile":
            args = ["reconcile", f"--conf-dir={conf}"]
        else:
            pool = "dataplane" if command == "isolate-exclusive" else "infra"
            args = ["isolate", f"--conf-dir={conf}", f"--pool={pool}", "--no-affinity", "--",
                    "sleep", rng.choice(["0", "0.05", "5"])]
        proc = kcm.popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, 0.05))
        proc.kill()
        proc.wait()
        survivors.append(proc.pid)
        workloads.update(recorded_workloads(conf))
        if round_ % 10 == 0:
            check_invariants(kcm, conf)
    check_invariants(kcm, conf)
    # Workloads of killed isolates that still run keep their lists; kill them all.
    kill_workloads(sorted(workloads | set(recorded_workloads(conf))))
    report = json.loads(kcm.run("reconcile", f"--conf-dir={conf}", check=True).stdout)
    assert all(not pids for pids in tasks_of(conf).values()), tasks_of(conf)
    assert all(entry["pid"] in survivors for entry in report["reclaimedCpuLists"])
    assert json.loads(kcm.run("reconcile", f"--conf-dir={conf}", check=True).stdout) == {
        "reclaimedCpuLists": []}


def test_kill_9_of_init_never_leaves_a_half_directory(machine, tmp_path):
    kcm = machine(xeon_d1541())
    rng = random.Random(SEED)
    started = time.monotonic()
    kcm.run("init", f"--conf-dir={tmp_path / 'timing'}", check=True)
    duration = time.monotonic() - started  # kill anywhere in 0..1.5x a whole init
    outcomes = {"complete": 0, "absent": 0}
    for round_ in range(60):
        conf = tmp_path / f"kcm-{round_}"
        proc = kcm.popen("init", f"--conf-dir={conf}", stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, 1.5 * duration))
        proc.kill()
        proc.wait()
        if (conf / "pools").exists():
            assert kcm.run("describe", f"--conf-dir={conf}").returncode == 0
            outcomes["complete"] += 1
        else:
            outcomes["absent"] += 1
            # Whatever a killed init left (an empty directory, its lock, its staging
            # debris), init runs again cleanly.
            kcm.run("init", f"--conf-dir={conf}", check=True)
            assert len(json.loads(kcm.run("describe", f"--conf-dir={conf}",
                                          check=True).stdout)["pools"]["dataplane"][
                "cpuLists"]) == 4
    assert outcomes["complete"] and outcomes["absent"], outcomes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_killed_isolate_never_loses_a_running_workload(kcm, tmp_path, seed):
    """Whenever kcm dies, a workload that runs keeps its CPU list; reconcile frees it
    only once the workload is gone."""
    rng = random.Random(seed)
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0"])})
    for _ in range(20):
        proc = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane", "--",
                         "sleep", "30", stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.02, 0.2))
        proc.kill()
        proc.wait()
        workloads = recorded_workloads(conf)
        kcm.run("reconcile", f"--conf-dir={conf}", check=True)
        running = [(pid, started) for pid, started in workloads
                   if start_time(pid) == started and alive(pid)]
        holders = tasks_of(conf)["dataplane/0"]
        if running:
            assert holders == [proc.pid], "a running workload lost its CPU list"
            kill_workloads(running)
            kcm.run("reconcile", f"--conf-dir={conf}", check=True)
        assert tasks_of(conf)["dataplane/0"] == []
