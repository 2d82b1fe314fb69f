"""kcm on a real node, through the documented commands only (issue #30): cluster-init,
a workload pod pinned as the host's /proc shows it, enforce on the real pod cgroups, the
scheduler honouring the extended resource, reconcile after a SIGKILL, NodeReport and
doctor, kubelet and containerd restarts, an upgrade, and a removal that leaves nothing.

The tests run in file order on one node (tests/k8s_node/conftest.py); each starts from
what the previous one left, as an operator's session does. Timings go to the node's
``timings`` (printed at the end of the session; docs/benchmarks.md has them)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.integration.workloads import wait_for
from tests.k8s_node.node import CPUSET_V1, IMAGE, NODE, Node

pytestmark = pytest.mark.real_node
NAMESPACE = "kcm-system"
RESOURCE = "kcm.dev/dataplane-cores"


def cluster_init(node: Node, *extra: str, image: str = IMAGE, check: bool = True):
    return node.kcm("cluster-init", "--all-hosts", "--no-webhook", f"--image={image}",
                    f"--conf-dir={node.conf}", f"--install-dir={node.install}",
                    "--num-dp-cores=1", "--num-cp-cores=0", "--reconcile-interval=2",
                    "--report-interval=5", "--timeout=240", *extra, check=check)


def workload_pod(node: Node, name: str, command: list[str], restart: str = "Always") -> dict:
    """docs/user.md's pod "without the webhook", on this node's directories."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "worker", "image": IMAGE, "imagePullPolicy": "Never",
                "securityContext": {"runAsUser": 0},
                "command": ["/opt/bin/kcm", "isolate", "--pool=dataplane", "--", *command],
                "env": [{"name": "KCM_CONF_DIR", "value": "/etc/kcm"},
                        {"name": "KCM_PROC_FS", "value": "/host/proc"}],
                "resources": {"limits": {RESOURCE: "1"}},
                "volumeMounts": [
                    {"name": "kcm-conf", "mountPath": "/etc/kcm"},
                    {"name": "host-proc", "mountPath": "/host/proc", "readOnly": True},
                    {"name": "kcm-bin", "mountPath": "/opt/bin", "readOnly": True}],
            }],
            "volumes": [
                {"name": "kcm-conf", "hostPath": {"path": str(node.conf)}},
                {"name": "host-proc", "hostPath": {"path": "/proc"}},
                {"name": "kcm-bin", "hostPath": {"path": str(node.install)}}],
        },
    }


def held(node: Node) -> dict[str, list[int]]:
    """dataplane CPU list -> PIDs, from the node's configuration directory."""
    found = {}
    for tasks in sorted(node.conf.glob("pools/dataplane/*/tasks")):
        text = tasks.read_text().strip()
        found[tasks.parent.name] = [int(pid) for pid in text.split(",")] if text else []
    return found


def changed_at(node: Node, cpu: str) -> float:
    """When a list's tasks file was last written (a grant or a release), wall clock."""
    return (node.conf / "pools/dataplane" / cpu / "tasks").stat().st_mtime


def affinity(pid: int) -> str:
    with open(f"/proc/{pid}/status") as status:
        return next(line.split(":", 1)[1].strip() for line in status
                    if line.startswith("Cpus_allowed_list"))


def children(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    if int(stat.read().rpartition(")")[2].split()[1]) == pid:
                        found.append(int(name))
            except (OSError, ValueError):
                continue
    return found


def container_cpusets() -> dict[str, str]:
    """Every container cgroup of the node (the leaves under kubepods) -> its cpus."""
    root = CPUSET_V1 / "kubepods"
    found = {}
    for cpus in root.rglob("cpuset.cpus"):
        directory = cpus.parent
        try:  # a container's cgroup may go while we look
            if not any(child.is_dir() for child in directory.iterdir()) and directory != root:
                found[str(directory.relative_to(root))] = cpus.read_text().strip()
        except OSError:
            continue
    return found


def cgroup_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as cgroup:
        line = next(line for line in cgroup if ":cpuset:" in line)
    return line.strip().split(":", 2)[2].removeprefix("/kubepods/")


def enforced(cpu: str, holder_cgroup: str) -> bool:
    """Every container but the holder's is kept off ``cpu``; the holder's keeps it."""
    sets = container_cpusets()
    others = [cpus for path, cpus in sets.items() if path != holder_cgroup]
    return bool(others) and all(cpu not in cpus.replace("-", ",").split(",") for cpus in others) \
        and cpu in sets.get(holder_cgroup, "")


def given_back() -> bool:
    sets = container_cpusets()
    return bool(sets) and all(cpus == "0-1" for cpus in sets.values())


def pod_phase(node: Node, name: str) -> str:
    return node.get("pod", name, "-n", "default").get("status", {}).get("phase", "")


def capacity(node: Node) -> dict:
    return node.get("node", NODE)["status"]["capacity"]


def test_cluster_init_refuses_the_webhook_on_1_20_then_sets_the_node_up(node):
    refused = node.kcm("cluster-init", "--all-hosts", f"--image={IMAGE}", check=False)
    assert refused.returncode == 1 and "--no-webhook" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert node.kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0
    started = time.monotonic()
    result = cluster_init(node)
    node.timings["cluster-init to ready"] = time.monotonic() - started
    assert f"{NODE}  ready" in result.stdout, result.stdout
    assert capacity(node)[RESOURCE] == "1"
    labels = node.get("node", NODE)["metadata"]["labels"]
    assert labels.get("kcm.dev/node") == "true"
    wait_for(lambda: node.kubectl("get", "nodereport", NODE, check=False).returncode == 0,
             timeout=60)
    assert (node.install / "kcm").is_symlink() and (node.conf / "pools/dataplane").is_dir()


def test_a_workload_pod_is_pinned_and_every_other_container_kept_off_its_cpu(node):
    started = time.monotonic()
    node.apply(workload_pod(node, "worker-1", ["sleep", "3600"]))
    wait_for(lambda: pod_phase(node, "worker-1") == "Running", timeout=120)
    node.timings["workload pod Running"] = time.monotonic() - started
    cpu, supervisor = holder(node)
    granted = changed_at(node, cpu)
    (sleeper,) = wait_for(lambda: children(supervisor))
    # What the host's /proc says: the workload and kcm isolate, pinned to the list.
    assert affinity(sleeper) == cpu and affinity(supervisor) == cpu
    its_cgroup = cgroup_of(sleeper)
    wait_for(lambda: enforced(cpu, its_cgroup), timeout=30)
    node.timings["grant to enforced"] = time.time() - granted
    # The pause containers too: every leaf but the workload's.
    assert sum(1 for path in container_cpusets() if path != its_cgroup) >= 4


def test_a_second_pod_waits_for_the_resource_then_gets_the_cpu_back(node):
    node.apply(workload_pod(node, "worker-2", ["sleep", "3600"]))
    wait_for(lambda: any(c.get("reason") == "Unschedulable" for c in node.get(
        "pod", "worker-2", "-n", "default").get("status", {}).get("conditions", [])), timeout=60)
    pod = node.get("pod", "worker-2", "-n", "default")
    assert pod["status"]["phase"] == "Pending"
    assert "kcm.dev/dataplane-cores" in json.dumps(pod["status"]["conditions"])
    node.kubectl("delete", "pod", "worker-1", "-n", "default", "--wait=false")
    wait_for(lambda: pod_phase(node, "worker-2") == "Running", timeout=120)
    cpu, supervisor = holder(node)
    (sleeper,) = wait_for(lambda: children(supervisor))
    assert affinity(sleeper) == cpu


def test_kubelet_and_containerd_restarts_keep_the_workload_pinned_recorded_enforced(node):
    before = held(node)
    cpu, supervisor = holder(node)
    (sleeper,) = children(supervisor)
    its_cgroup = cgroup_of(sleeper)
    for component in ("restart-kubelet", "restart-containerd"):
        node.script(component)
        wait_for(lambda: node.get("node", NODE)["status"]["conditions"][-1]["status"] == "True",
                 timeout=120)
        assert held(node) == before
        assert affinity(sleeper) == cpu and affinity(supervisor) == cpu
        wait_for(lambda: enforced(cpu, its_cgroup), timeout=60)
    assert pod_phase(node, "worker-2") == "Running"


def holder(node: Node) -> tuple[str, int]:
    """(the held CPU list, its kcm isolate's PID), once one is held."""
    (cpu, (supervisor,)), = [(cpu, pids) for cpu, pids in wait_for(
        lambda: any(held(node).values()) and held(node), timeout=60).items() if pids]
    return cpu, supervisor


def test_reconcile_frees_the_list_of_a_sigkilled_workload(node):
    node.kubectl("delete", "pod", "worker-2", "-n", "default", "--wait=false")
    wait_for(lambda: not any(held(node).values()), timeout=60)
    node.apply(workload_pod(node, "victim", ["sleep", "3600"], restart="Never"))
    wait_for(lambda: pod_phase(node, "victim") == "Running", timeout=120)
    cpu, supervisor = holder(node)
    (sleeper,) = wait_for(lambda: children(supervisor))
    # SIGKILL (an OOM kill, say) of kcm isolate, PID 1 of the container: the kernel ends
    # the rest of its PID namespace, the workload with it (or this does, if it is slower).
    os.kill(supervisor, signal.SIGKILL)
    try:
        os.kill(sleeper, signal.SIGKILL)
    except ProcessLookupError:
        pass
    killed = time.monotonic()
    wait_for(lambda: not any(held(node).values()), timeout=30)
    node.timings["reconcile of a killed workload"] = time.monotonic() - killed
    released = changed_at(node, cpu)
    wait_for(given_back, timeout=30)
    node.timings["release to given back"] = time.time() - released
    node.kubectl("delete", "pod", "victim", "-n", "default", "--wait=false")


def test_a_pod_from_the_user_guide_is_mutated_by_the_webhook_and_pinned(node, tmp_path):
    """docs/user.md's dataplane pod (only its request and command, kcm's image): the
    webhook adds the mounts, the environment and root, and the pod runs pinned. On 1.20
    the webhook is registered by the test, by URL on the node's bridge and without
    matchConditions (1.20 has none), for the default namespace only."""
    import base64
    import subprocess

    from kcm.certs import mint
    from tests.conftest import KCM
    from tests.k8s_node.node import SCRIPT

    tls = mint(["10.88.0.1"], days=1)
    for name, text in (("tls.crt", tls.cert), ("tls.key", tls.key)):
        (tmp_path / name).write_text(text)
    server = subprocess.Popen(
        ["bash", str(SCRIPT), "exec", str(node.state), KCM, "webhook",
         f"--tls-cert-file={tmp_path / 'tls.crt'}",
         f"--tls-private-key-file={tmp_path / 'tls.key'}",
         "--bind-address=10.88.0.1", "--secure-port=8443", f"--conf-dir={node.conf}",
         f"--install-dir={node.install}"], env=node.env, stderr=subprocess.PIPE)
    registration = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "kcm-test"},
        "webhooks": [{
            "name": "pods.kcm.dev", "sideEffects": "None", "failurePolicy": "Fail",
            "admissionReviewVersions": ["v1"], "timeoutSeconds": 10,
            "clientConfig": {"url": "https://10.88.0.1:8443/mutate",
                             "caBundle": base64.b64encode(tls.ca.encode()).decode()},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}},
        }]}
    try:
        wait_for(lambda: node.run("curl", "-sk", "https://10.88.0.1:8443/healthz",
                                  check=False).returncode == 0, timeout=30)
        node.kubectl("label", "namespace", "default", "kubernetes.io/metadata.name=default",
                     "--overwrite")
        node.apply(registration)
        node.apply({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "packet-forwarder", "namespace": "default"},
            "spec": {"terminationGracePeriodSeconds": 5, "containers": [{
                "name": "forwarder", "image": IMAGE, "imagePullPolicy": "Never",
                # /opt/bin/kcm in the guide: the install directory, here the test's own
                "command": [str(node.install / "kcm"), "isolate", "--pool=dataplane", "--",
                            "sleep", "3600"],
                "resources": {"limits": {RESOURCE: "1", "cpu": "1", "memory": "64Mi"}}}]}})
        wait_for(lambda: pod_phase(node, "packet-forwarder") == "Running", timeout=120)
        pod = node.get("pod", "packet-forwarder", "-n", "default")
        assert pod["metadata"]["annotations"]["kcm.dev/mutated"] == "true"
        (container,) = pod["spec"]["containers"]
        assert container["securityContext"]["runAsUser"] == 0
        assert {"KCM_CONF_DIR", "KCM_PROC_FS", "KCM_NUM_CORES"} <= {
            e["name"] for e in container["env"]}
        try:
            cpu, supervisor = holder(node)
        except AssertionError:
            described = node.kubectl("describe", "pod", "packet-forwarder", "-n", "default",
                                     check=False).stdout
            logs = node.kubectl("logs", "packet-forwarder", "-n", "default", check=False)
            raise AssertionError(f"{described}\n{logs.stdout}{logs.stderr}\n{held(node)}"
                                 f"\n{json.dumps(pod)}") from None
        (sleeper,) = wait_for(lambda: children(supervisor))
        assert affinity(sleeper) == cpu
    finally:
        node.kubectl("delete", "mutatingwebhookconfiguration", "kcm-test",
                     "--ignore-not-found")
        node.kubectl("delete", "pod", "packet-forwarder", "-n", "default", "--wait=true",
                     "--timeout=60s", "--ignore-not-found")
        server.terminate()
        server.wait(10)
    wait_for(lambda: not any(held(node).values()), timeout=60)


def test_the_node_report_and_doctor_are_healthy(node):
    report = node.get("nodereport", NODE)
    assert report["status"]["healthy"] and report["status"]["failedChecks"] == [], report
    assert report["spec"]["enforcement"]["available"], report["spec"]["enforcement"]
    doctor = node.kcm("doctor", f"--conf-dir={node.conf}", f"--install-dir={node.install}",
                      f"--node-name={NODE}", f"--cgroup-root={CPUSET_V1 / 'kubepods'}",
                      "--output=json", check=False)
    findings = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    failed = {name: c for name, c in findings.items() if not c["ok"] and c["severity"] == "error"}
    assert doctor.returncode == 0 and not failed, doctor.stdout


def test_an_upgrade_keeps_the_running_workload_on_its_cpu(node):
    node.apply(workload_pod(node, "steady", ["sleep", "3600"]))
    wait_for(lambda: pod_phase(node, "steady") == "Running", timeout=120)
    cpu, supervisor = holder(node)
    (sleeper,) = wait_for(lambda: children(supervisor))
    newer = "kcm.local/kcm:0.2.0-upgrade"
    node.run("ctr", "--address", f"{node.state}/containerd/containerd.sock", "-n", "k8s.io",
             "images", "tag", IMAGE, newer)
    cluster_init(node, image=newer)
    daemonset = node.get("daemonset", "kcm-node", "-n", NAMESPACE)
    assert daemonset["spec"]["template"]["spec"]["containers"][0]["image"] == newer
    wait_for(lambda: all(c["image"] == newer for p in node.get(
        "pods", "-n", NAMESPACE)["items"] for c in p["spec"]["containers"]), timeout=120)
    assert held(node)[cpu] == [supervisor]
    assert affinity(sleeper) == cpu and pod_phase(node, "steady") == "Running"
    wait_for(lambda: enforced(cpu, cgroup_of(sleeper)), timeout=60)


def test_removal_leaves_nothing_of_kcm_on_the_node_or_in_the_api(node):
    """docs/operator.md's order: the workloads go, kcm uninstall on the node, then the
    cluster's objects (the node agents, still running, leave the node alone)."""
    node.kubectl("delete", "pod", "steady", "-n", "default", "--wait=true", "--timeout=60s",
                 "--ignore-not-found")
    wait_for(lambda: not any(held(node).values()), timeout=60)
    uninstall = node.run(str(node.install / "kcm"), "uninstall", f"--conf-dir={node.conf}",
                         f"--install-dir={node.install}", f"--node-name={NODE}", "-o", "json")
    removed = json.loads(uninstall.stdout)["removed"]
    assert str(node.conf) in removed and f"NodeReport {NODE}" in removed
    wait_for(given_back, timeout=60)  # enforce, still running, holds nothing now
    manifests = node.kcm("manifests", "--no-webhook", f"--image={IMAGE}",
                         f"--conf-dir={node.conf}", f"--install-dir={node.install}").stdout
    deleted = node.kubectl("delete", "-f", "-", "--wait=true", "--timeout=300s",
                           input=manifests, check=False)
    namespace = node.kubectl("get", "namespace", NAMESPACE, "-o", "json", check=False).stdout
    assert deleted.returncode == 0, deleted.stderr + namespace
    wait_for(lambda: not node.kubectl("get", "pods", "-n", NAMESPACE, "-o", "name",
                                      "--ignore-not-found").stdout.strip(), timeout=120)
    assert not Path(node.conf).exists() and not (node.install / "kcm").exists()
    status = node.get("node", NODE)
    assert not any(key.startswith("kcm.dev/") for key in status["status"]["capacity"])
    assert not any(key.startswith("kcm.dev/") for key in status["metadata"]["labels"])
    assert not any(t["key"].startswith("kcm.dev/") for t in status["spec"].get("taints", []))
    crds = node.kubectl("get", "crd", "-o", "name").stdout
    assert "kcm.dev" not in crds
    wait_for(given_back, timeout=60)


def test_helm_install_upgrade_and_uninstall_keep_the_workload_and_leave_nothing(node):
    """docs/operator.md's Helm path on the same node, after the removal above: label the
    node, helm install, a pinned workload, helm upgrade to a new image with it running
    (it keeps its CPU), then kcm uninstall and helm uninstall."""
    from tests.k8s_node.node import ROOT

    chart = str(ROOT / "deploy/helm/kcm")
    values = ["--set", f"confDir={node.conf},installDir={node.install},numDpCores=1,"
              "numCpCores=0,reconcileInterval=2,reportInterval=5,webhook.enabled=false,"
              "nodeResourceTopology=true"]
    node.kubectl("label", "node", NODE, "kcm.dev/enabled=true")
    node.run("helm", "install", "kcm", chart, "--namespace", NAMESPACE, "--create-namespace",
             "--set", f"image={IMAGE}", *values, "--wait", "--timeout", "180s")
    wait_for(lambda: capacity(node).get(RESOURCE) == "1", timeout=60)
    # The NodeResourceTopology too: the pool's CPU lists per NUMA zone.
    topology = wait_for(lambda: node.kubectl("get", "noderesourcetopologies", NODE, "-o",
                                             "json", check=False).stdout, timeout=60)
    assert RESOURCE in topology
    node.apply(workload_pod(node, "helm-steady", ["sleep", "3600"]))
    wait_for(lambda: pod_phase(node, "helm-steady") == "Running", timeout=120)
    cpu, supervisor = holder(node)
    (sleeper,) = wait_for(lambda: children(supervisor))
    newer = "kcm.local/kcm:0.2.0-upgrade"  # tagged by the upgrade test above
    node.run("helm", "upgrade", "kcm", chart, "--namespace", NAMESPACE,
             "--set", f"image={newer}", *values, "--wait", "--timeout", "180s")
    wait_for(lambda: all(c["image"] == newer for p in node.get(
        "pods", "-n", NAMESPACE)["items"] for c in p["spec"]["containers"]), timeout=120)
    assert held(node)[cpu] == [supervisor] and affinity(sleeper) == cpu
    wait_for(lambda: enforced(cpu, cgroup_of(sleeper)), timeout=60)
    node.kubectl("delete", "pod", "helm-steady", "-n", "default", "--wait=true",
                 "--timeout=60s")
    wait_for(lambda: not any(held(node).values()), timeout=60)
    node.run(str(node.install / "kcm"), "uninstall", f"--conf-dir={node.conf}",
             f"--install-dir={node.install}", f"--node-name={NODE}")
    node.run("helm", "uninstall", "kcm", "--namespace", NAMESPACE, "--wait",
             "--timeout", "180s")
    wait_for(lambda: not node.kubectl("get", "pods", "-n", NAMESPACE, "-o", "name",
                                      "--ignore-not-found").stdout.strip(), timeout=120)
    status = node.get("node", NODE)
    assert not any(key.startswith("kcm.dev/") for key in status["status"]["capacity"])
    assert not any(key.startswith("kcm.dev/") for key in status["metadata"]["labels"])
    assert "kcm.dev" not in node.kubectl("get", "crd", "-o", "name").stdout
    assert not node.conf.exists() and not (node.install / "kcm").exists()
    wait_for(given_back, timeout=60)
