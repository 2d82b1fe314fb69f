"""kcm's node agent against a real kube-apiserver, as its own ServiceAccount with exactly
the ClusterRole ``kcm manifests`` generates (RBAC authorizer on): every command it runs
succeeds, and the audit log proves that every verb the role grants is used (an extra
verb fails the test as surely as a missing one, which fails with 403)."""

import json

import pytest

from kcm.manifests import NODE_AGENT, Settings, rbac
from tests.conftest import KCM
from tests.integration.workloads import fake_bundle, make_conf
from tests.k8s.schema import report_fields_the_crd_prunes
from tests.k8s_real.conftest import KcmInCluster

pytestmark = pytest.mark.real_k8s
NAMESPACE = "kcm-system"
POOLS = {"dataplane": (True, ["1"]), "infra": (False, ["0"])}


@pytest.fixture(scope="module")
def manifests(cluster, tmp_path_factory):
    """``kcm manifests`` applied by the cluster admin, as an operator would (without the
    webhook, whose ``matchConditions`` a 1.20 server does not know)."""
    path = tmp_path_factory.mktemp("manifests") / "kcm.yaml"
    path.write_text(cluster.run([KCM, "manifests", "--no-webhook"]).stdout)
    cluster.kubectl("apply", "-f", str(path))
    yield path
    # Cluster-wide objects go, so that other tests (Helm's) can own them.
    cluster.kubectl("delete", "-f", str(path), "--wait=false")


def add_node(cluster, name: str) -> None:
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name[:63]}},
            "spec": {"taints": [{"key": "other", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
                       "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"}}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(node))


def agent(cluster, node: str) -> KcmInCluster:
    token = cluster.service_account_token(NAMESPACE, NODE_AGENT)
    return KcmInCluster(cluster, cluster.kubeconfig_for(token, f"agent-{node[:20]}"), node)


def granted(settings: Settings) -> set[tuple[str, str]]:
    [role] = [obj for obj in rbac(settings) if obj["kind"] == "ClusterRole"
              and obj["metadata"]["name"] == NODE_AGENT]
    return {(resource, verb) for rule in role["rules"] for resource in rule["resources"]
            for verb in rule["verbs"]}


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
    for _ in range(2):
        kcm.run("discover", f"--conf-dir={conf}", "--taint", check=True)
        kcm.run("node-report", f"--conf-dir={conf}", "--publish", check=True)
    live = cluster.get("node", node)
    assert live["status"]["capacity"]["kcm.dev/dataplane-cores"] == "1"
    assert live["metadata"]["labels"]["kcm.dev/node"] == "true"
    assert {"key": "kcm.dev/node", "value": "true", "effect": "NoSchedule"} in \
        live["spec"]["taints"]
    doctor = kcm.run("doctor", f"--conf-dir={conf}", f"--install-dir={install}",
                     "--output=json")
    checks = {check["name"]: check for check in json.loads(doctor.stdout)["checks"]}
    for name in ("extendedResources", "nodeLabel", "nodeReport"):
        assert checks[name]["ok"], checks[name]
    removed = json.loads(kcm.run("uninstall", f"--conf-dir={conf}",
                                 f"--install-dir={install}", check=True).stdout)["removed"]
    assert f"NodeReport {node}" in removed and "taint kcm.dev/node" in removed
    live = cluster.get("node", node)
    assert "kcm.dev/dataplane-cores" not in live["status"]["capacity"]
    assert {"key": "other", "effect": "NoSchedule"} in live["spec"]["taints"]
    assert cluster.kubectl("get", "nodereport", node, check=False).returncode != 0
    assert used_by_agent(cluster) == granted(Settings())


def test_a_node_report_keeps_every_field_and_publishes_for_a_long_node_name(
        cluster, manifests, tmp_path):
    node = "a-node-name-that-is-longer-than-a-label-value-may-be." + "x" * 20
    add_node(cluster, node)
    kcm = agent(cluster, node)
    conf = make_conf(tmp_path / "kcm", POOLS)
    kcm.run("node-report", f"--conf-dir={conf}", "--publish", check=True)
    local = json.loads(kcm.run("node-report", f"--conf-dir={conf}", check=True).stdout)
    stored = cluster.get("nodereport", node)
    assert report_fields_the_crd_prunes(local) == []
    for key in ("pools", "checks", "enforcement"):
        if key in local:
            assert stored["spec"].get(key, stored.get("status", {}).get(key)) is not None, key
