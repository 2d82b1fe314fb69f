"""``kcm uninstall``: everything kcm added goes, nothing while workloads run."""

import json
import os

from kcm.manifests import node_report_crd
from tests.integration.workloads import fake_bundle, make_conf
from tests.k8s.apiserver import BUILTIN
from tests.k8s.conftest import add_node

POOLS = {"dataplane": (True, ["1"]), "infra": (False, ["0"])}


def prepare(k8s_kcm, api, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    install = tmp_path / "opt-bin"
    k8s_kcm.run("install", f"--install-dir={install}",
                f"--from={fake_bundle(tmp_path / 'bundle')}", check=True)
    api.store.put(BUILTIN[-1], node_report_crd())
    add_node(api, "node-1", spec={"taints": [{"key": "other", "effect": "NoSchedule"}]},
             metadata={"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1",
                                                    "kcm.dev/enabled": "true"}})
    k8s_kcm.run("discover", f"--conf-dir={conf}", "--taint", check=True)
    k8s_kcm.run("node-report", f"--conf-dir={conf}", "--publish", check=True)
    return conf, install


def test_refused_while_tasks_live(k8s_kcm, api, tmp_path):
    conf, install = prepare(k8s_kcm, api, tmp_path)
    (conf / "pools/dataplane/1/tasks").write_text(str(os.getpid()))
    before = api.store.get("", "nodes", "node-1")
    result = k8s_kcm.run("uninstall", f"--conf-dir={conf}", f"--install-dir={install}")
    assert result.returncode == 1
    assert result.stderr == (f"kcm: 1 kcm task is still running (PID {os.getpid()}); "
                             "stop them or use --force\n")
    assert conf.exists() and (install / "kcm").exists()
    assert api.store.get("", "nodes", "node-1") == before


def test_removes_everything_and_twice_is_fine(k8s_kcm, api, tmp_path):
    conf, install = prepare(k8s_kcm, api, tmp_path)
    (conf / "pools/dataplane/1/tasks").write_text(str(os.getpid()))
    result = k8s_kcm.run("uninstall", f"--conf-dir={conf}", f"--install-dir={install}",
                         "--force", check=True)
    removed = json.loads(result.stdout)["removed"]
    assert "capacity kcm.dev/dataplane-cores" in removed and "NodeReport node-1" in removed
    node = api.store.get("", "nodes", "node-1")
    assert "kcm.dev/dataplane-cores" not in node["status"]["capacity"]
    assert node["status"]["capacity"]["cpu"] == "2"
    assert "label kcm.dev/enabled" in removed  # cluster-init's: selects the DaemonSet's nodes
    assert node["metadata"]["labels"] == {"kubernetes.io/hostname": "node-1"}
    assert node["spec"]["taints"] == [{"key": "other", "effect": "NoSchedule"}]
    assert api.store.get("kcm.dev", "nodereports", "node-1") is None
    assert not conf.exists() and not (install / "kcm").exists()
    assert os.listdir(install) == []
    again = k8s_kcm.run("uninstall", f"--conf-dir={conf}", f"--install-dir={install}",
                        check=True)
    assert json.loads(again.stdout) == {"removed": []}


def test_without_a_node_name_only_the_host_is_cleaned(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    result = kcm.run("uninstall", f"--conf-dir={conf}", f"--install-dir={tmp_path / 'bin'}",
                     check=True)
    assert "left alone" in result.stderr
    assert not conf.exists()


def test_uninstall_while_the_node_agents_still_run(k8s_kcm, api, tmp_path):
    """The order an operator tries first: kcm uninstall on the node while the DaemonSet
    still runs, then delete the cluster's objects. The agents (reconcile, node-report
    publishing) see the directory removed: they create nothing in it and publish no
    NodeReport again; a second uninstall finishes instead of refusing."""
    import subprocess

    from tests.conftest import KCM
    from tests.integration.workloads import read_lines, wait_for

    conf, install = prepare(k8s_kcm, api, tmp_path)
    logs = [tmp_path / "reconcile.err", tmp_path / "node-report.err"]
    agents = [subprocess.Popen([KCM, *argv], env=k8s_kcm.env, stdout=subprocess.PIPE,
                               stderr=log.open("w"), text=True)
              for log, argv in zip(logs, (
                  ["reconcile", f"--conf-dir={conf}", "--interval=0.05"],
                  ["node-report", f"--conf-dir={conf}", "--publish", "--interval=0.05"]),
                  strict=True)]
    try:
        for agent in agents:
            read_lines(agent, 1)  # each has made a pass
        k8s_kcm.run("uninstall", f"--conf-dir={conf}", f"--install-dir={install}", check=True)
        assert api.store.get("kcm.dev", "nodereports", "node-1") is None
        # Each agent says once that it holds off (between passes that keep running).
        for log in logs:
            wait_for(lambda log=log: "holds no pools" in log.read_text())
        assert not conf.exists()
        assert api.store.get("kcm.dev", "nodereports", "node-1") is None
    finally:
        for agent in agents:
            agent.terminate()
            agent.wait(10)
    # What an agent of an older kcm could still leave: the lock file alone.
    conf.mkdir()
    (conf / "lock").write_text("")
    again = k8s_kcm.run("uninstall", f"--conf-dir={conf}", f"--install-dir={install}",
                        check=True)
    assert str(conf) in json.loads(again.stdout)["removed"] and not conf.exists()
