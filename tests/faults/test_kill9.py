"""kill -9 of isolate and reconcile at random moments, hundreds of times (seeded), with
workloads of every length: no exclusive CPU list is held by two live tasks, no running
workload loses its list, and one reconcile returns every list whose holder is dead.
(A crash between any two steps of a write is covered deterministically, init included,
by test_crash_points.py.)"""

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
