"""Enforcement scenarios shared by the v1 tests (test_enforce.py) and the v2 ones run in
the kernel-VM guest (test_enforce_v2.py): the real CLI on a private cgroup tree."""

import json
import os

from tests.conftest import KCM
from tests.integration.workloads import make_conf, recorded_workloads, wait_for


def enforce(kcm, conf, tree, *args) -> dict:
    result = kcm.run("enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}", *args,
                     check=True)
    return json.loads(result.stdout)


def isolate_in(tree, kcm, conf, container: str, pool: str = "dataplane", seconds: str = "60"):
    return tree.start(container, [KCM, "isolate", f"--conf-dir={conf}", f"--pool={pool}",
                                  "sleep", seconds], env=kcm.env)


def pinned_thread_keeps_its_affinity(kcm, tree, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["1", "2"]),
                                        "infra": (False, ["0"])})
    holder = isolate_in(tree, kcm, conf, "ctr-b")
    (held,) = wait_for(lambda: recorded_workloads(conf))
    enforce(kcm, conf, tree)
    others = {0, 1, 2} - os.sched_getaffinity(held[0])
    assert tree.cpu_set("ctr-a") == others
    infra = isolate_in(tree, kcm, conf, "ctr-a", pool="infra")
    wait_for(lambda: len(recorded_workloads(conf)) == 2)
    free = tree.start("ctr-a", ["sleep", "60"])
    wait_for(lambda: os.sched_getaffinity(free.pid) == others)
    holder.terminate()
    holder.wait(10)
    (pinned,) = wait_for(lambda: [pid for pid, _ in recorded_workloads(conf)]
                         if len(recorded_workloads(conf)) == 1 else None)
    assert os.sched_getaffinity(pinned) == {0} and infra.poll() is None
    report = enforce(kcm, conf, tree)
    assert report["held"] == "" and tree.cpu_set("ctr-a") == {0, 1, 2}
    assert os.sched_getaffinity(pinned) == {0}
    assert os.sched_getaffinity(free.pid) == {0, 1, 2}  # it chose nothing: it follows
