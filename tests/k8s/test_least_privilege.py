"""kcm's node agent does its whole job with the ClusterRole kcm ships, and nothing
more: the stand-in server authorizes its token with exactly those rules (403 for
anything else), so a command that needs one more verb or resource fails here."""


import pytest

from kcm.manifests import NODE_AGENT, Settings, node_report_crd, rbac
from tests.integration.workloads import fake_bundle, make_conf
from tests.k8s.agent_checks import doctor_passes_and_uninstall_cleans
from tests.k8s.apiserver import BUILTIN, ApiStatus
from tests.k8s.conftest import add_node, kubeconfig

POOLS = {"dataplane": (True, ["1"]), "infra": (False, ["0"])}
TOKEN = "node-agent-token"


def shipped_rules() -> list[dict]:
    [role] = [obj for obj in rbac(Settings()) if obj["kind"] == "ClusterRole"
              and obj["metadata"]["name"] == NODE_AGENT]
    return role["rules"]


@pytest.fixture
def agent(k8s_kcm, api, tmp_path):
    """kcm as the node agent's service account."""
    api.store.roles[TOKEN] = shipped_rules()
    k8s_kcm.env["KUBECONFIG"] = str(kubeconfig(api.url, tmp_path / "agent", token=TOKEN))
    api.store.put(BUILTIN[-1], node_report_crd())
    add_node(api, "node-1", spec={"taints": [{"key": "other", "effect": "NoSchedule"}]})
    return k8s_kcm


def test_the_stand_in_refuses_what_the_role_does_not_grant(api):
    api.store.roles[TOKEN] = shipped_rules()
    for method, path in [("GET", "/api/v1/nodes"), ("DELETE", "/api/v1/nodes/node-1"),
                         ("GET", "/api/v1/namespaces/default/pods"),
                         ("PUT", "/api/v1/nodes/node-1")]:
        with pytest.raises(ApiStatus) as refused:
            api.store.handle(method, path, {}, "application/json", {}, f"Bearer {TOKEN}")
        assert refused.value.code == 403, (method, path)


def test_the_node_agent_role_covers_discover_report_doctor_and_uninstall(agent, api, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    install = tmp_path / "opt-bin"
    agent.run("install", f"--install-dir={install}",
              f"--from={fake_bundle(tmp_path / 'bundle')}", check=True)
    agent.run("discover", f"--conf-dir={conf}", "--taint", check=True)
    agent.run("discover", f"--conf-dir={conf}", "--taint", check=True)
    agent.run("node-report", f"--conf-dir={conf}", "--publish", check=True)
    agent.run("node-report", f"--conf-dir={conf}", "--publish", check=True)
    doctor_passes_and_uninstall_cleans(agent, conf, install, "node-1")
    assert all(entry.authorization == f"Bearer {TOKEN}" for entry in api.store.requests())
    assert api.store.get("kcm.dev", "nodereports", "node-1") is None
    node = api.store.get("", "nodes", "node-1")
    assert "kcm.dev/node" not in node["metadata"]["labels"]
