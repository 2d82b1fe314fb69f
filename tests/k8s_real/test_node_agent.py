"""kcm's node agent against a real kube-apiserver, as its own ServiceAccount with exactly
the ClusterRole ``kcm manifests`` generates (RBAC authorizer on): every command it runs
succeeds, and the audit log proves that every verb the role grants is used (an extra
verb fails the test as surely as a missing one, which fails with 403)."""

import json
import subprocess

import pytest

from kcm.manifests import NODE_AGENT, Settings, node_resource_topology_rbac, rbac
from tests.conftest import KCM
from tests.integration.workloads import fake_bundle, make_conf, recorded_workloads, wait_for
from tests.k8s.agent_checks import doctor_passes_and_uninstall_cleans
from tests.k8s_real.conftest import KcmInCluster, add_node
from tests.machines import build_sysfs, load_machine, machine_env

pytestmark = pytest.mark.real_k8s
NAMESPACE = "kcm-system"
POOLS = {"dataplane": (True, ["1"]), "infra": (False, ["0"])}


@pytest.fixture(scope="module")
def manifests(cluster, tmp_path_factory):
    """``kcm manifests`` applied by the cluster admin, as an operator would (without the
    webhook, whose ``matchConditions`` a 1.20 server does not know), with the
    NodeResourceTopology CRD and role."""
    path = tmp_path_factory.mktemp("manifests") / "kcm.yaml"
    path.write_text(cluster.run([KCM, "manifests", "--no-webhook",
                                 "--node-resource-topology"]).stdout)
    cluster.kubectl("apply", "-f", str(path))
    yield path
    # Cluster-wide objects go, so that other tests (Helm's) can own them.
    cluster.kubectl("delete", "-f", str(path), "--wait=false")


def agent(cluster, node: str) -> KcmInCluster:
    token = cluster.service_account_token(NAMESPACE, NODE_AGENT)
    return KcmInCluster(cluster, cluster.kubeconfig_for(token, f"agent-{node[:20]}"), node)


def granted(settings: Settings) -> set[tuple[str, str]]:
    roles = [obj for obj in [*rbac(settings), *node_resource_topology_rbac(settings)]
             if obj["kind"] == "ClusterRole"]
    return {(resource, verb) for role in roles for rule in role["rules"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def used_by_agent(cluster) -> set[tuple[str, str]]:
    user = f"system:serviceaccount:{NAMESPACE}:{NODE_AGENT}"
    used = set()
    for event in cluster.audit():
        ref = event.get("objectRef") or {}
        if event["user"]["username"] != user or not ref.get("resource"):
            continue
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        used.add((resource, event["verb"]))
        assert event["responseStatus"]["code"] < 400 or event["responseStatus"]["code"] == 404, \
            event
    return used


def test_the_node_agent_does_its_whole_job_with_exactly_its_role(cluster, manifests, tmp_path):
    node = "node-agent-1"
    add_node(cluster, node)
    kcm = agent(cluster, node)
    conf = make_conf(tmp_path / "kcm", POOLS)
    install = tmp_path / "opt-bin"
    kcm.run("install", f"--install-dir={install}", f"--from={fake_bundle(tmp_path / 'b')}",
            check=True)
    holder = subprocess.Popen([KCM, "isolate", f"--conf-dir={conf}", "--pool=dataplane",
                               "sleep", "60"], env=kcm.env)
    try:
        wait_for(lambda: recorded_workloads(conf))
        for _ in range(2):
            kcm.run("discover", f"--conf-dir={conf}", "--taint", check=True)
            kcm.run("node-report", f"--conf-dir={conf}", "--publish",
                    "--node-resource-topology", check=True)
        assert dataplane_in_zones(cluster, node) == {"node-0": ("1", "1", "0")}
    finally:
        holder.terminate()
        holder.wait(10)
    kcm.run("node-report", f"--conf-dir={conf}", "--publish", "--node-resource-topology",
            check=True)
    assert dataplane_in_zones(cluster, node) == {"node-0": ("1", "1", "1")}
    live = cluster.get("node", node)
    assert live["status"]["capacity"]["kcm.dev/dataplane-cores"] == "1"
    assert live["metadata"]["labels"]["kcm.dev/node"] == "true"
    assert {"key": "kcm.dev/node", "value": "true", "effect": "NoSchedule"} in \
        live["spec"]["taints"]
    removed = doctor_passes_and_uninstall_cleans(kcm, conf, install, node)
    assert f"NodeResourceTopology {node}" in removed
    assert cluster.kubectl("get", "noderesourcetopology", node, check=False).returncode != 0
    live = cluster.get("node", node)
    assert "kcm.dev/dataplane-cores" not in live["status"]["capacity"]
    assert {"key": "other", "effect": "NoSchedule"} in live["spec"]["taints"]
    assert cluster.kubectl("get", "nodereport", node, check=False).returncode != 0
    assert used_by_agent(cluster) == granted(Settings())


def dataplane_in_zones(cluster, node: str) -> dict[str, tuple[str, str, str]]:
    topology = cluster.get("noderesourcetopology", node)
    return {zone["name"]: (resource["capacity"], resource["allocatable"], resource["available"])
            for zone in topology["zones"] for resource in zone["resources"]
            if resource["name"] == "kcm.dev/dataplane-cores"}


def test_the_topology_has_a_zone_per_numa_node_and_another_agent_s_is_left_alone(
        cluster, manifests, tmp_path):
    machine = tmp_path / "machine"
    build_sysfs(load_machine("intel-xeon-l5640-2s"), machine)
    node = "two-numa-nodes"
    add_node(cluster, node)
    kcm = agent(cluster, node)
    kcm.env.update(machine_env(machine))
    conf = tmp_path / "kcm"
    kcm.run("init", f"--conf-dir={conf}", "--num-dp-cores=4", "--num-cp-cores=1", check=True)
    kcm.run("node-report", f"--conf-dir={conf}", "--publish", "--node-resource-topology",
            check=True)
    zones = dataplane_in_zones(cluster, node)
    assert set(zones) == {"node-0", "node-1"}
    assert sum(int(capacity) for capacity, _, _ in zones.values()) == 4
    assert all(capacity == available for capacity, _, available in zones.values())
    kcm.run("node-report", f"--conf-dir={conf}", "--publish", "--node-resource-topology",
            "--resource-prefix=example.com", check=True)
    names = {resource["name"] for zone in cluster.get("noderesourcetopology", node)["zones"]
             for resource in zone["resources"]}
    assert names == {"example.com/dataplane-cores"}
    # A NodeResourceTopology kcm did not write (another agent's) stays as it is.
    other = "someone-elses"
    add_node(cluster, other)
    foreign = {"apiVersion": "topology.node.k8s.io/v1alpha2", "kind": "NodeResourceTopology",
               "metadata": {"name": other}, "zones": [{"name": "node-0", "type": "Node"}]}
    cluster.kubectl("create", "-f", "-", input=json.dumps(foreign))
    kcm = agent(cluster, other)
    kcm.env.update(machine_env(machine))
    kcm.run("node-report", f"--conf-dir={conf}", "--publish", "--node-resource-topology",
            check=True)
    stored = cluster.get("nodereport", other)["spec"]["nodeResourceTopology"]
    assert stored == {"published": False,
                      "reason": f"NodeResourceTopology {other} is written by another agent"}
    assert cluster.get("noderesourcetopology", other)["zones"] == foreign["zones"]
    removed = json.loads(kcm.run("uninstall", f"--conf-dir={tmp_path / 'gone'}",
                                 check=True).stdout)["removed"]
    assert f"NodeResourceTopology {other}" not in removed
    assert cluster.get("noderesourcetopology", other)["zones"] == foreign["zones"]


def test_a_node_report_keeps_every_field_and_publishes_for_a_long_node_name(
        cluster, manifests, tmp_path):
    """The server prunes what the CRD's schema does not declare: the stored spec equals
    the report node-report published (it prints what it publishes), field for field."""
    node = "a-node-name-that-is-longer-than-a-label-value-may-be." + "x" * 20
    add_node(cluster, node)
    kcm = agent(cluster, node)
    conf = make_conf(tmp_path / "kcm", POOLS)
    holder = subprocess.Popen([KCM, "isolate", f"--conf-dir={conf}", "--pool=dataplane",
                               "sleep", "60"], env=kcm.env)
    try:
        wait_for(lambda: recorded_workloads(conf))
        published = json.loads(kcm.run("node-report", f"--conf-dir={conf}", "--publish",
                                       "--node-resource-topology", check=True).stdout)
    finally:
        holder.terminate()
        holder.wait(10)
    stored = cluster.get("nodereport", node)
    assert stored["spec"] == published
    assert stored["spec"]["pools"]["dataplane"]["cpuLists"]["1"]["tasks"][0]["alive"] is True
    assert stored["spec"]["nodeResourceTopology"] == {"published": True}
    assert stored["status"]["lastReportTime"]
    assert "kcm.dev/node" not in stored["metadata"].get("labels", {})  # > 63 characters
