"""The ``cmk`` command: CMK v1.4.1's command lines run unchanged through kcm."""

import json
import os
import subprocess

import pytest

from kcm.cmk import translate
from kcm.cpuset import parse_cpulist
from kcm.errors import InputError
from tests.conftest import CMK
from tests.integration.workloads import PYTHON, REPORTER, read_json


@pytest.mark.parametrize(("cmk", "kcm"), [
    (["init", "--num-exclusive-cores=2", "--num-shared-cores=1", "--exclusive-mode=spread"],
     ["init", "--num-dp-cores=2", "--num-cp-cores=1", "--dp-mode=spread",
      "--conf-dir=/etc/cmk", "--exclusive-pool-name=exclusive", "--shared-pool-name=shared",
      "--layout=sockets"]),
    (["init", "--conf-dir=/x", "--socket-id=-1"],
     ["init", "--conf-dir=/x", "--exclusive-pool-name=exclusive", "--shared-pool-name=shared",
      "--layout=sockets"]),
    (["reconcile", "--interval=0"], ["reconcile", "--conf-dir=/etc/cmk"]),
    (["reconcile", "--interval", "5", "--conf-dir=/c"],
     ["reconcile", "--conf-dir=/c", "--interval=5"]),
    (["node-report", "--interval=0", "--publish"],
     ["node-report", "--publish", "--conf-dir=/etc/cmk"]),
    (["discover"], ["discover", "--conf-dir=/etc/cmk", "--taint"]),
    (["discover", "--no-taint"], ["discover", "--conf-dir=/etc/cmk"]),
    (["isolate", "--pool=exclusive", "--socket-id=-1", "sleep", "--", "1", "--no-affinity"],
     ["isolate", "--pool=exclusive", "--conf-dir=/etc/cmk", "--", "sleep", "1",
      "--no-affinity"]),
    (["isolate", "--socket-id=1", "--pool", "shared", "echo 1 > f && cat f"],
     ["isolate", "--pool=shared", "--conf-dir=/etc/cmk", "--socket-id=1", "--",
      "echo 1 > f && cat f"]),
    (["isolate", "--pool=infra", "ls", "--no-affinity"],
     ["isolate", "--pool=infra", "--no-affinity", "--conf-dir=/etc/cmk", "--", "ls"]),
    (["install"], ["install"]),
    (["uninstall", "--namespace=cmk", "--install-dir=/o"],
     ["uninstall", "--install-dir=/o", "--conf-dir=/etc/cmk"]),
    (["cluster-init", "--all-hosts", "--cmk-img=reg/kcm:1", "--num-exclusive-cores=2"],
     ["cluster-init", "--all-hosts", "--image=reg/kcm:1", "--num-dp-cores=2",
      "--conf-dir=/etc/cmk", "--taint"]),
])
def test_cmk_lines_become_kcm_lines(cmk, kcm):
    assert translate(cmk)[0] == kcm


@pytest.mark.parametrize(("cmk", "message"), [
    (["init", "--socket-id=1"], "--socket-id is not supported"),
    (["init", "--excl-non-isolcpus=2"], "--excl-non-isolcpus is not supported"),
    (["isolate", "sleep"], "needs --pool"),
    (["isolate", "--pool=infra"], "needs a <command>"),
    (["describe", "--bogus"], "unknown option --bogus"),
    (["describe", "extra"], "takes no argument"),
    (["reconfigure"], "unknown cmk command"),
    (["reconcile", "--interval"], "needs a value"),
])
def test_what_kcm_cannot_do_is_an_error(cmk, message):
    with pytest.raises(InputError, match=message):
        translate(cmk)


def test_a_cmk_node_from_init_to_isolate_and_reconcile(tmp_path):
    """The operator manual's CMK steps, as CMK's users type them."""
    conf = tmp_path / "cmk"
    env = dict(os.environ, KCM_LOCK_TIMEOUT="10")
    env.pop("KCM_NUM_CORES", None)

    def cmk(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([CMK, *args], env=env, capture_output=True, text=True,
                              check=check, timeout=60)

    cmk("init", f"--conf-dir={conf}", "--num-exclusive-cores=1", "--num-shared-cores=0")
    assert sorted(p.name for p in (conf / "pools").iterdir()) == ["exclusive", "infra"]
    sockets = [p.parent.parent.name for p in conf.glob("pools/exclusive/*/*/tasks")]
    assert sockets == ["0"], "CMK's socket layout (this machine has one socket)"
    described = json.loads(cmk("describe", f"--conf-dir={conf}").stdout)
    assert described["pools"]["exclusive"]["exclusive"] is True
    out = tmp_path / "report.json"
    cmk("isolate", f"--conf-dir={conf}", "--pool=exclusive", "--socket-id=-1", PYTHON, "--",
        "-c", REPORTER, str(out))
    report = read_json(out)
    exclusive = next(iter(described["pools"]["exclusive"]["cpuLists"]))
    assert report["env"]["KCM_CPUS_ASSIGNED"] == exclusive
    assert set(report["affinity"]) == parse_cpulist(exclusive)
    assert json.loads(cmk("reconcile", f"--conf-dir={conf}", "--interval=0").stdout) == {
        "reclaimedCpuLists": []}
    assert cmk("--version").stdout.startswith("CMK v1.4.1 (kcm ")
    assert "cmk isolate" in cmk("--help").stdout
    bad = cmk("isolate", f"--conf-dir={conf}", check=False)
    assert bad.returncode == 2 and bad.stderr == "cmk: cmk isolate needs --pool=<pool>\n"
