"""``kcm discover`` against the stand-in API server: objects and requests."""

import json

from tests.integration.workloads import make_cmk_conf, make_conf
from tests.k8s.apiserver import RunningApiServer
from tests.k8s.conftest import NODE_KIND, add_node

POOLS = {"dataplane": (True, ["4,12", "5,13", "6,14", "7,15"]), "controlplane": (False, ["3,11"]),
         "infra": (False, ["0-2,8-10"])}


def test_discover_advertises_labels_and_is_idempotent(k8s_kcm, api, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    result = k8s_kcm.run("discover", f"--conf-dir={conf}", check=True)
    assert json.loads(result.stdout)["capacity"] == {"kcm.dev/dataplane-cores": "4"}
    node = api.store.get("", "nodes", "node-1")
    assert node["status"]["capacity"]["kcm.dev/dataplane-cores"] == "4"
    assert node["status"]["capacity"]["cpu"] == "2"
    assert node["metadata"]["labels"]["kcm.dev/node"] == "true"
    assert "taints" not in node["spec"]
    status_patch = api.store.requests("PATCH", "/api/v1/nodes/node-1/status")
    assert len(status_patch) == 1
    assert status_patch[0].content_type == "application/merge-patch+json"
    assert status_patch[0].body == {"status": {"capacity": {"kcm.dev/dataplane-cores": "4"}}}
    assert status_patch[0].authorization == "Bearer test-token"
    writes = len(api.store.requests("PATCH"))
    k8s_kcm.run("discover", f"--conf-dir={conf}", check=True)
    assert len(api.store.requests("PATCH")) == writes, "a second run changed something"
    assert api.store.get("", "nodes", "node-1") == node


def test_a_cmk_directory_with_socket_levels_counts_every_socket(k8s_kcm, api, tmp_path):
    conf = make_cmk_conf(tmp_path / "cmk", {
        "exclusive": (True, {0: ["4,12", "5,13"], 1: ["20,28"]}),
        "infra": (False, {0: ["0-3"], 1: ["16-19"]})})
    result = k8s_kcm.run("discover", f"--conf-dir={conf}", check=True)
    assert json.loads(result.stdout)["capacity"] == {"kcm.dev/exclusive-cores": "3"}
    node = api.store.get("", "nodes", "node-1")
    assert node["status"]["capacity"]["kcm.dev/exclusive-cores"] == "3"


def test_fewer_cores_after_reinit_lower_the_capacity_and_gone_pools_vanish(
        k8s_kcm, api, tmp_path):
    conf = make_conf(tmp_path / "kcm", {**POOLS, "fast": (True, ["16"])})
    k8s_kcm.run("discover", f"--conf-dir={conf}", check=True)
    capacity = api.store.get("", "nodes", "node-1")["status"]["capacity"]
    assert capacity["kcm.dev/fast-cores"] == "1"
    smaller = make_conf(tmp_path / "kcm2", {"dataplane": (True, ["4,12", "5,13"]),
                                            "infra": (False, ["0-3"])})
    k8s_kcm.run("discover", f"--conf-dir={smaller}", check=True)
    capacity = api.store.get("", "nodes", "node-1")["status"]["capacity"]
    assert capacity["kcm.dev/dataplane-cores"] == "2"
    assert "kcm.dev/fast-cores" not in capacity
    assert capacity["memory"] == "8Gi"


def test_resource_prefix(k8s_kcm, api, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    k8s_kcm.run("discover", f"--conf-dir={conf}", "--resource-prefix=cpu.example.com",
                check=True)
    assert api.store.get("", "nodes", "node-1")["status"]["capacity"][
        "cpu.example.com/dataplane-cores"] == "4"


def test_taint_keeps_other_taints_and_survives_a_conflict(k8s_kcm, api, tmp_path):
    other = {"key": "gpu", "value": "yes", "effect": "NoExecute"}
    add_node(api, "node-2", spec={"taints": [other]},
             metadata={"name": "node-2", "labels": {"kcm.dev/node": "true"}})
    k8s_kcm.env["NODE_NAME"] = "node-2"
    conf = make_conf(tmp_path / "kcm", POOLS)
    # The taint is a read-modify-write: a concurrent writer makes it fail once with 409.
    api.store.faults.append(("PATCH", "/nodes/node-2$", 409))
    k8s_kcm.run("discover", f"--conf-dir={conf}", "--taint", check=True)
    taints = api.store.get("", "nodes", "node-2")["spec"]["taints"]
    assert taints == [other, {"key": "kcm.dev/node", "value": "true", "effect": "NoSchedule"}]
    k8s_kcm.run("discover", f"--conf-dir={conf}", "--taint", check=True)
    assert len(api.store.get("", "nodes", "node-2")["spec"]["taints"]) == 2
    rmw = [r for r in api.store.requests("PATCH", "/nodes/node-2") if "spec" in (r.body or {})]
    assert all(r.body["metadata"]["resourceVersion"] for r in rmw)


def test_transient_server_errors_are_retried(k8s_kcm, api, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    api.store.faults += [("GET", "/nodes/node-1", 503), ("PATCH", "/status", 429)]
    k8s_kcm.run("discover", f"--conf-dir={conf}", check=True)
    assert api.store.get("", "nodes", "node-1")["status"]["capacity"][
        "kcm.dev/dataplane-cores"] == "4"


def test_unknown_node_and_missing_node_name(k8s_kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    result = k8s_kcm.run("discover", f"--conf-dir={conf}", "--node-name=ghost")
    assert result.returncode == 1
    assert result.stderr == "kcm: node ghost not found in the cluster\n"
    del k8s_kcm.env["NODE_NAME"]
    result = k8s_kcm.run("discover", f"--conf-dir={conf}")
    assert result.returncode == 1 and "--node-name or set NODE_NAME" in result.stderr


def test_permission_errors_name_the_object_and_reason(k8s_kcm, api, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    api.store.faults.append(("PATCH", "/status", 403))
    result = k8s_kcm.run("discover", f"--conf-dir={conf}")
    assert result.returncode == 1
    assert result.stderr.startswith("kcm: patch Node node-1 status: 403")
    assert result.stderr.count("\n") == 1


def test_an_unreachable_server_fails_after_bounded_retries(kcm, tmp_path):
    from tests.k8s.conftest import kubeconfig

    kcm.env["KUBECONFIG"] = str(kubeconfig("http://127.0.0.1:9", tmp_path / "kubeconfig"))
    kcm.env["KCM_API_RETRY_SECONDS"] = "1"
    conf = make_conf(tmp_path / "kcm", POOLS)
    result = kcm.run("discover", f"--conf-dir={conf}", "--node-name=node-1")
    assert result.returncode == 1
    assert result.stderr.startswith("kcm: get Node node-1: cannot reach the API server")


def test_in_cluster_service_account_over_tls(kcm, tls, tmp_path):
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("in-cluster-token")
    (account / "namespace").write_text("kcm-system")
    (account / "ca.crt").write_bytes(tls.ca_file.read_bytes())
    with RunningApiServer(ssl_context=tls.server_context()) as api:
        api.store.put(NODE_KIND, {"metadata": {"name": "node-1"}, "status": {"capacity": {}}})
        port = api.url.rsplit(":", 1)[1]
        kcm.env.update({"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port,
                        "KCM_SERVICE_ACCOUNT_DIR": str(account), "NODE_NAME": "node-1",
                        "KUBECONFIG": str(tmp_path / "does-not-exist")})
        conf = make_conf(tmp_path / "kcm", POOLS)
        kcm.run("discover", f"--conf-dir={conf}", check=True)
        assert api.url.startswith("https://")
        assert api.store.get("", "nodes", "node-1")["status"]["capacity"] == {
            "kcm.dev/dataplane-cores": "4"}
        assert {r.authorization for r in api.store.log} == {"Bearer in-cluster-token"}
        # A CA that did not sign the server's certificate is refused.
        (account / "ca.crt").write_bytes(tls.cert_file.read_bytes())
        kcm.env["KCM_API_RETRY_SECONDS"] = "0.5"
        result = kcm.run("discover", f"--conf-dir={conf}")
        assert result.returncode == 1 and "cannot reach the API server" in result.stderr
