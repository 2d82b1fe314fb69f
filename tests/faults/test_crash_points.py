"""kcm killed between any two steps of any durable write, deterministically.

``KCM_CRASH_AT=POINT:N`` makes kcm kill itself (SIGKILL) at the Nth pass of a crash
point in its one durable-write helper (kcm/durable.py). For each command that writes
and each point, every pass is tried in turn until the command completes; after each
crash the directory must parse, keep every task that was recorded and alive before,
never show an exclusive CPU list held twice, and come back whole (no debris) after a
reconcile.
"""

import json
import shutil
import subprocess

import pytest

from tests.conftest import KCM
from tests.integration.workloads import (
    alive,
    kill_workloads,
    make_conf,
    recorded_workloads,
    tasks_of,
    wait_for,
)
from tests.machines import xeon_d1541

POINTS = ("opened", "written", "synced", "renamed", "dir-synced")
KILLED = -9


@pytest.fixture
def busy_conf(kcm, tmp_path):
    """A directory with live holders: one in the shared pool, one exclusive list."""
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["10", "11"]),
                                        "infra": (False, ["0-1"])})
    holders = [kcm.popen("isolate", f"--conf-dir={conf}", f"--pool={pool}", "--no-affinity",
                         "--", "sleep", "600")
               for pool in ("infra", "dataplane")]
    wait_for(lambda: sum(len(pids) for pids in tasks_of(conf).values()) == 2)
    workloads = recorded_workloads(conf)
    yield conf, {pid for pids in tasks_of(conf).values() for pid in pids}
    for holder in holders:
        holder.kill()
        holder.wait()
    kill_workloads(workloads)  # a SIGKILLed isolate leaves its workload running


def crash_runs(kcm, args, before=lambda: None):
    """(point, pass) for every crash of a kcm command, until it completes; ``args`` is
    its argument list, or makes one from (point, pass); ``before`` runs before each."""
    for point in POINTS:
        for number in range(1, 200):
            before()
            argv = args(point, number) if callable(args) else args
            result = kcm.run(*argv, env_overrides={"KCM_CRASH_AT": f"{point}:{number}"})
            if result.returncode != KILLED:
                assert result.returncode == 0, (point, number, result.stderr)
                break
            yield point, number


def check_after_crash(kcm, conf, live: set[int], where) -> None:
    described = kcm.run("describe", f"--conf-dir={conf}")
    assert described.returncode == 0, (where, described.stderr)
    recorded = {pid for pids in tasks_of(conf).values() for pid in pids}
    assert live <= recorded, (where, tasks_of(conf))  # no live task lost
    for name, pool in json.loads(described.stdout)["pools"].items():
        if pool["exclusive"]:
            for cpu_list in pool["cpuLists"].values():
                assert sum(alive(pid) for pid in cpu_list["tasks"]) <= 1, (where, name)
    kcm.run("reconcile", f"--conf-dir={conf}", check=True)
    assert {pid for pids in tasks_of(conf).values() for pid in pids} == live, where
    assert not list(conf.rglob(".kcm-tmp-*")), where  # the crash's debris is gone


@pytest.mark.parametrize("pool", ["infra", "dataplane"])
def test_isolate_killed_at_every_write_step(kcm, busy_conf, pool):
    conf, live = busy_conf
    crashes = 0
    for where in crash_runs(kcm, ["isolate", f"--conf-dir={conf}", f"--pool={pool}",
                                  "--no-affinity", "--", "true"]):
        check_after_crash(kcm, conf, live, where)
        crashes += 1
    assert crashes >= 2 * len(POINTS)  # a grant and a release, every step of each


def test_reconcile_killed_at_every_write_step(kcm, busy_conf):
    conf, live = busy_conf
    dead = subprocess.Popen(["true"])
    dead.wait()

    def add_dead_tasks() -> None:
        for tasks in conf.glob("pools/*/*/tasks"):  # a dead task in every list
            text = tasks.read_text().strip()
            tasks.write_text(",".join(filter(None, [text, str(dead.pid)])))

    crashes = 0
    for where in crash_runs(kcm, ["reconcile", f"--conf-dir={conf}"], add_dead_tasks):
        check_after_crash(kcm, conf, live, where)
        crashes += 1
    assert crashes >= len(POINTS) - 1  # no directory fsync: renames are left unsynced


def test_init_killed_at_every_write_step(machine, tmp_path):
    kcm = machine(xeon_d1541())
    crashes = 0
    def target(point: str, number: int):
        return tmp_path / f"kcm-{point}-{number}"

    for point, number in crash_runs(
            kcm, lambda point, number: ["init", f"--conf-dir={target(point, number)}"]):
        conf = target(point, number)
        crashes += 1
        # Never half a directory: complete, or nothing that stops a new init.
        if (conf / "pools").exists():
            assert kcm.run("describe", f"--conf-dir={conf}").returncode == 0
        else:
            kcm.run("init", f"--conf-dir={conf}", check=True)
        pools = json.loads(kcm.run("describe", f"--conf-dir={conf}", check=True).stdout)
        assert len(pools["pools"]["dataplane"]["cpuLists"]) == 4, (point, number)
    assert crashes >= len(POINTS)


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to see fsync order")
def test_a_grant_is_durable_in_order_before_its_workload_starts(kcm, tmp_path):
    """What a kill cannot show (the page cache survives it): the order of the grant's
    system calls. The new tasks data is fsynced before it is renamed into place,
    task-info (naming the workload) is renamed before tasks (naming the PID), and the
    directory is fsynced after both renames, all before the workload's execve."""
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["1"])})
    trace = tmp_path / "trace"
    subprocess.run(["strace", "-f", "-y", "-qq", "-o", str(trace), "-e",
                    "trace=fsync,fdatasync,rename,renameat,renameat2,execve",
                    KCM, "isolate", f"--conf-dir={conf}", "--pool=dataplane", "--", "true"],
                   env=kcm.env, check=True, timeout=60)
    lines = trace.read_text().splitlines()
    where = str(conf / "pools/dataplane/1")

    def first(*needles: str) -> int:
        return next(number for number, line in enumerate(lines)
                    if all(needle in line for needle in needles))

    tasks_synced = first("fsync(", f"{where}/.kcm-tmp-tasks-")
    info_renamed = first("rename", ".kcm-tmp-task-info-", f'{where}/task-info"')
    tasks_renamed = first("rename", ".kcm-tmp-tasks-", f'{where}/tasks"')
    dir_synced = first("fsync(", f"<{where}>)")
    workload = first("execve(", "bin/true")
    assert tasks_synced < tasks_renamed
    assert info_renamed < tasks_renamed < dir_synced < workload
