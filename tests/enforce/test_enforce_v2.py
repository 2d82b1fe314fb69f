"""``kcm enforce`` on a real cgroup v2 cpuset hierarchy (the default on current
distributions). The machine's cpuset controller is moved to v2 for this module and
back to v1 afterwards, also when a test fails."""

import json
import os
import subprocess

import pytest

from tests.conftest import KCM
from tests.enforce.cgroup_trees import CpusetOnV2, Tree, v2_available
from tests.enforce.scenarios import pinned_thread_keeps_its_affinity
from tests.integration.workloads import make_conf, read_lines, recorded_workloads, wait_for

pytestmark = pytest.mark.skipif(v2_available() is not None, reason=str(v2_available()))


@pytest.fixture(scope="module")
def v2_hierarchy():
    with CpusetOnV2() as hierarchy:
        yield hierarchy


@pytest.fixture
def tree(v2_hierarchy):
    tree = Tree(v2_hierarchy, version=2)
    yield tree
    tree.cleanup()


def test_v2_confines_other_containers_and_gives_back(kcm, tree, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["1"]), "infra": (False, ["0"])})
    noisy = tree.start("ctr-b", ["sleep", "60"])
    holder = tree.start("ctr-a", [KCM, "isolate", f"--conf-dir={conf}", "--pool=dataplane",
                                  "sleep", "60"], env=kcm.env)
    (workload, _), = wait_for(lambda: recorded_workloads(conf))

    def enforce() -> dict:
        return json.loads(kcm.run("enforce", f"--conf-dir={conf}",
                                  f"--cgroup-root={tree.root}", check=True).stdout)

    online = os.sched_getaffinity(noisy.pid)
    report = enforce()
    assert report["cgroupVersion"] == 2 and report["held"] == "1"
    assert tree.cpu_set("ctr-b") == online - {1} == os.sched_getaffinity(noisy.pid)
    assert tree.cpu_set("ctr-a") == online and os.sched_getaffinity(workload) == {1}
    holder.terminate()
    holder.wait(10)
    enforce()
    assert tree.cpu_set("ctr-b") == online == os.sched_getaffinity(noisy.pid)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 3,
                    reason="needs three CPUs (scripts/kernel-vm.sh gives its guest three)")
def test_v2_a_pinned_thread_keeps_its_affinity_when_its_container_changes(kcm, tree, tmp_path):
    pinned_thread_keeps_its_affinity(kcm, tree, tmp_path)


def test_v2_the_loop_reacts_to_a_grant_and_a_release(kcm, tree, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["1"]), "infra": (False, ["0"])})
    noisy = tree.start("ctr-b", ["sleep", "60"])
    online = os.sched_getaffinity(noisy.pid)
    loop = kcm.popen("enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}",
                     "--interval=600", stdout=subprocess.PIPE, text=True)
    try:
        read_lines(loop, 1)  # the first pass is done; the next is 10 minutes away
        holder = tree.start("ctr-a", [KCM, "isolate", f"--conf-dir={conf}",
                                      "--pool=dataplane", "sleep", "60"], env=kcm.env)
        wait_for(lambda: os.sched_getaffinity(noisy.pid) == online - {1}, timeout=30)
        holder.terminate()
        holder.wait(30)
        wait_for(lambda: os.sched_getaffinity(noisy.pid) == online, timeout=30)
    finally:
        loop.terminate()
    loop.communicate(timeout=30)
    assert loop.returncode == 0
