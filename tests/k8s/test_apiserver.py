"""The stand-in API server enforces what a real one does (the tests of kcm's Kubernetes
code are only as good as this)."""

import httpx2 as httpx
import pytest

from tests.k8s.conftest import add_node

MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def client(api):
    add_node(api, "n1")
    with httpx.Client(base_url=api.url) as http:
        yield http


def test_resource_version_conflicts(client):
    node = client.get("/api/v1/nodes/n1").json()
    version = node["metadata"]["resourceVersion"]
    ok = client.patch("/api/v1/nodes/n1", headers=MERGE,
                      json={"metadata": {"resourceVersion": version, "labels": {"a": "1"}}})
    assert ok.status_code == 200 and ok.json()["metadata"]["resourceVersion"] != version
    stale = client.patch("/api/v1/nodes/n1", headers=MERGE,
                         json={"metadata": {"resourceVersion": version, "labels": {"a": "2"}}})
    assert stale.status_code == 409
    body = stale.json()
    assert body["kind"] == "Status" and body["reason"] == "Conflict" and body["code"] == 409
    node["metadata"]["resourceVersion"] = version
    assert client.put("/api/v1/nodes/n1", json=node).status_code == 409


def test_status_only_through_the_status_subresource(client):
    main = client.patch("/api/v1/nodes/n1", headers=MERGE,
                        json={"status": {"capacity": {"x.io/y": "1"}},
                              "metadata": {"labels": {"l": "v"}}})
    assert "x.io/y" not in main.json()["status"]["capacity"]
    assert main.json()["metadata"]["labels"]["l"] == "v"
    status = client.patch("/api/v1/nodes/n1/status", headers=MERGE,
                          json={"status": {"capacity": {"x.io/y": "1"}},
                                "metadata": {"labels": {"other": "v"}}})
    assert status.json()["status"]["capacity"]["x.io/y"] == "1"
    assert "other" not in status.json()["metadata"]["labels"]


def test_selectors(client, api):
    add_node(api, "n2", metadata={"name": "n2", "labels": {"zone": "a", "gpu": "yes"}})
    add_node(api, "n3", metadata={"name": "n3", "labels": {"zone": "b"}})

    def names(**params) -> list[str]:
        response = client.get("/api/v1/nodes", params=params)
        assert response.status_code == 200, response.text
        return [n["metadata"]["name"] for n in response.json()["items"]]

    assert names(labelSelector="zone=a") == ["n2"]
    assert names(labelSelector="zone!=a") == ["n1", "n3"]
    assert names(labelSelector="zone in (a,b),!gpu") == ["n3"]
    assert names(labelSelector="gpu") == ["n2"]
    assert names(fieldSelector="metadata.name=n3") == ["n3"]
    bad = client.get("/api/v1/nodes", params={"fieldSelector": "spec.unschedulable=true"})
    assert bad.status_code == 400 and bad.json()["reason"] == "BadRequest"


def test_not_found_already_exists_and_invalid(client):
    missing = client.get("/api/v1/nodes/ghost")
    assert missing.status_code == 404 and missing.json()["details"]["name"] == "ghost"
    again = client.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node",
                                               "metadata": {"name": "n1"}})
    assert again.status_code == 409 and again.json()["reason"] == "AlreadyExists"
    nameless = client.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node",
                                                  "metadata": {}})
    assert nameless.status_code == 422 and nameless.json()["reason"] == "Invalid"
    bad_value = client.patch("/api/v1/nodes/n1/status", headers=MERGE,
                             json={"status": {"capacity": {"kcm.dev/x-cores": "four"}}})
    assert bad_value.status_code == 422
    no_ns = client.post("/api/v1/namespaces/nowhere/pods",
                        json={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
    assert no_ns.status_code == 404
    apply = client.patch("/api/v1/nodes/n1", content=b"{}",
                         headers={"Content-Type": "application/apply-patch+yaml"})
    assert apply.status_code == 415


def test_custom_resources_exist_only_with_their_definition(client, api):
    from kcm.manifests import node_report_crd
    from tests.k8s.apiserver import BUILTIN

    report = {"apiVersion": "kcm.dev/v1", "kind": "NodeReport", "metadata": {"name": "n1"},
              "spec": {}, "status": {"healthy": True}}
    assert client.post("/apis/kcm.dev/v1/nodereports", json=report).status_code == 404
    api.store.put(BUILTIN[-1], node_report_crd())
    created = client.post("/apis/kcm.dev/v1/nodereports", json=report)
    assert created.status_code == 201
    assert "status" not in created.json(), "status is set only through /status"


def test_json_patch_test_operation(client):
    patch = [{"op": "test", "path": "/metadata/name", "value": "other"},
             {"op": "add", "path": "/metadata/labels/x", "value": "y"}]
    response = client.patch("/api/v1/nodes/n1", json=patch,
                            headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 422  # as the real server answers (tests/k8s_real)
