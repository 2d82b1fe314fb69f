"""``kcm enforce`` on real cgroup v1 cpusets: other containers are moved off a held
exclusive CPU and get it back on release; the workload itself is never refused."""

import json
import os
import subprocess

import pytest

from tests.conftest import KCM
from tests.enforce.cgroup_trees import V1_CPUSET, Tree, v1_available
from tests.integration.workloads import (
    kill_workloads,
    make_conf,
    read_lines,
    recorded_workloads,
    tasks_of,
    wait_for,
)

pytestmark = pytest.mark.skipif(v1_available() is not None, reason=str(v1_available()))


@pytest.fixture
def tree():
    tree = Tree(V1_CPUSET)
    yield tree
    tree.cleanup()


@pytest.fixture
def conf(tmp_path):
    return make_conf(tmp_path / "kcm", {"dataplane": (True, ["1"]), "infra": (False, ["0"])})


def enforce(kcm, conf, tree, *args) -> dict:
    result = kcm.run("enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}", *args,
                     check=True)
    return json.loads(result.stdout)


def isolate_in(tree, kcm, conf, container: str, pool: str = "dataplane", seconds: str = "60"):
    return tree.start(container, [KCM, "isolate", f"--conf-dir={conf}", f"--pool={pool}",
                                  "sleep", seconds], env=kcm.env)


def workload_pid(conf) -> int:
    (workload,) = wait_for(lambda: recorded_workloads(conf))
    return workload[0]


def test_a_held_cpu_is_taken_from_other_containers_and_given_back(kcm, conf, tree):
    holder = isolate_in(tree, kcm, conf, "ctr-a")
    pid = workload_pid(conf)
    noisy = tree.start("ctr-b", ["sleep", "60"])
    wait_for(lambda: os.sched_getaffinity(noisy.pid) == {0, 1})
    report = enforce(kcm, conf, tree)
    assert report["held"] == "1" and report["shared"] == "0"
    assert report["changed"] == [{"cgroup": str(tree.containers["ctr-b"]), "cpus": "0",
                                  "was": "0-1"}]
    assert tree.cpus("ctr-b") == "0" and tree.cpus("ctr-a") == "0-1"
    assert os.sched_getaffinity(noisy.pid) == {0}
    assert os.sched_getaffinity(pid) == {1}  # the workload keeps its pin
    assert report["violations"] == []
    # A second pass changes nothing.
    assert enforce(kcm, conf, tree)["changed"] == []
    holder.terminate()
    holder.wait(10)
    report = enforce(kcm, conf, tree)
    assert report["held"] == "" and tree.cpus("ctr-b") == "0-1"
    assert os.sched_getaffinity(noisy.pid) == {0, 1}


def test_the_loop_reacts_to_a_grant_and_a_release_without_waiting_for_the_interval(
        kcm, conf, tree):
    noisy = tree.start("ctr-b", ["sleep", "60"])
    loop = kcm.popen("enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}",
                     "--interval=600", stdout=subprocess.PIPE, text=True)
    try:
        read_lines(loop, 1)  # the first pass is done; the next is 10 minutes away
        holder = isolate_in(tree, kcm, conf, "ctr-a")
        wait_for(lambda: os.sched_getaffinity(noisy.pid) == {0})
        holder.terminate()
        holder.wait(10)
        wait_for(lambda: os.sched_getaffinity(noisy.pid) == {0, 1})
    finally:
        loop.terminate()
    loop.communicate(timeout=10)
    assert loop.returncode == 0


def test_a_container_confined_before_its_grant_still_gets_its_cpu(kcm, conf, tree):
    """The trap that broke CMK: ctr-a was confined to the shared CPU while another
    container held CPU 1; the holder dies, and a workload in ctr-a takes CPU 1. Its
    pin must succeed (kcm enforce widens ctr-a as soon as the grant is recorded)."""
    first = isolate_in(tree, kcm, conf, "ctr-b")
    workload_pid(conf)
    loop = kcm.popen("enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}",
                     "--interval=600", stdout=subprocess.PIPE, text=True)
    try:
        read_lines(loop, 1)
        assert tree.cpus("ctr-a") == "0"
        # The holder dies without a word to the directory: no pass runs, ctr-a stays
        # confined, and the record still names the dead task.
        workloads = recorded_workloads(conf)
        first.kill()
        first.wait(10)
        kill_workloads(workloads)
        assert tree.cpus("ctr-a") == "0"
        second = isolate_in(tree, kcm, conf, "ctr-a", seconds="0")
        assert second.wait(20) == 0
    finally:
        loop.terminate()
    loop.communicate(timeout=10)
    assert all(not pids for pids in tasks_of(conf).values())


def test_a_root_outside_the_cpuset_hierarchy_is_refused(kcm, conf, tmp_path):
    result = kcm.run("enforce", f"--conf-dir={conf}", f"--cgroup-root={tmp_path}")
    assert result.returncode == 1
    assert result.stderr.startswith(f"kcm: --cgroup-root {tmp_path} is not a directory of "
                                    "the cpuset hierarchy")
