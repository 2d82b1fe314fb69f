"""``kcm cluster-init`` against the stand-in API server with several nodes; the test
plays the DaemonSet controller and the kubelets, flipping pod and node status."""

import copy
import threading
import time

import yaml

from tests.k8s.apiserver import BUILTIN, Kind
from tests.k8s.conftest import NODE_KIND, add_node

POD_KIND: Kind = next(k for k in BUILTIN if k.kind == "Pod")
STEPS = ("init", "install", "discover")


class FakeCluster(threading.Thread):
    """For each node labeled for kcm once the DaemonSet exists: create its pod, run the
    init containers one step each time cluster-init has looked at the pod, then
    advertise the node as discover would (so every state is seen, whatever the speed)."""

    def __init__(self, api, fail: dict | None = None, stuck: set | None = None):
        super().__init__(daemon=True)
        self.store = api.store
        self.fail = fail or {}
        self.stuck = stuck or set()
        self.progress: dict[str, int] = {}
        self.seen: dict[str, int] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.05):
            if self.store.get("apps", "daemonsets", "kcm-node", "kcm-system") is None:
                continue
            for (group, plural, _, name), node in list(self.store.objects.items()):
                labels = node["metadata"].get("labels", {})
                if (group, plural) == ("", "nodes") and labels.get("kcm.dev/enabled") == "true":
                    self.tick(name)

    def looked_at(self, node: str) -> bool:
        """Whether cluster-init listed this node's pod since the last step."""
        count = sum(1 for r in self.store.requests("GET", "/pods")
                    if r.query.get("fieldSelector") == f"spec.nodeName={node}")
        if node in self.progress and count == self.seen.get(node):
            return False
        self.seen[node] = count
        return True

    def tick(self, node: str) -> None:
        if not self.looked_at(node):
            return
        step = self.progress.get(node, 0)
        if node in self.stuck and step >= 1:
            return
        statuses = []
        annotations = {}
        for index, name in enumerate(STEPS):
            if index < step:
                state = {"terminated": {"exitCode": 0, "reason": "Completed"}}
            elif index == step and self.fail.get(node, (None,))[0] == name:
                state = {"terminated": {"exitCode": 1, "reason": "Error"}}
                annotations[f"test/log.{name}"] = self.fail[node][1]
            elif index == step:
                state = {"running": {}}
            else:
                state = {"waiting": {"reason": "PodInitializing"}}
            statuses.append({"name": name, "state": state, "ready": False, "restartCount": 0,
                             "image": "kcm", "imageID": ""})
        self.store.put(POD_KIND, {
            "metadata": {"name": f"kcm-node-{node}", "namespace": "kcm-system",
                         "labels": {"app.kubernetes.io/component": "node-agent"},
                         "annotations": annotations},
            "spec": {"nodeName": node, "containers": [{"name": "reconcile", "image": "kcm"}]},
            "status": {"phase": "Pending", "initContainerStatuses": statuses}})
        if node in self.fail and self.fail[node][0] == STEPS[min(step, 2)]:
            return
        if step == len(STEPS):
            current = copy.deepcopy(self.store.get("", "nodes", node))
            current["status"]["capacity"]["kcm.dev/dataplane-cores"] = "4"
            current["metadata"]["labels"]["kcm.dev/node"] = "true"
            self.store.put(NODE_KIND, current)
        self.progress[node] = min(step + 1, len(STEPS))


def cluster(api, **faults) -> FakeCluster:
    for name in ("n1", "n2", "n3"):
        add_node(api, name)
    fake = FakeCluster(api, **faults)
    fake.start()
    return fake


def test_nodes_become_ready(k8s_kcm, api):
    fake = cluster(api)
    try:
        result = k8s_kcm.run("cluster-init", "--host-list=n1,n2", "--timeout=30", check=True)
    finally:
        fake.halt.set()
    assert result.stdout.split("\n")[:2] == ["n1  ready", "n2  ready"]
    assert "n1: init" in result.stderr and "n1: ready" in result.stderr
    labels = {n: api.store.get("", "nodes", n)["metadata"]["labels"] for n in ("n1", "n2", "n3")}
    assert labels["n1"]["kcm.dev/enabled"] == "true" and "kcm.dev/enabled" not in labels["n3"]
    created = {(r.path.rsplit("/", 1)[-1]) for r in api.store.requests("POST")}
    assert {"namespaces", "daemonsets", "deployments", "mutatingwebhookconfigurations",
            "customresourcedefinitions", "clusterroles"} <= created
    assert api.store.get("apps", "daemonsets", "kcm-node", "kcm-system") is not None


def test_re_running_changes_nothing(k8s_kcm, api):
    fake = cluster(api)
    try:
        k8s_kcm.run("cluster-init", "--all-hosts", "--timeout=30", check=True)
        secret = api.store.get("", "secrets", "kcm-webhook-tls", "kcm-system")
        writes = len(api.store.requests("POST")) + len(api.store.requests("PUT"))
        again = k8s_kcm.run("cluster-init", "--all-hosts", "--timeout=30", check=True)
    finally:
        fake.halt.set()
    assert len(api.store.requests("POST")) + len(api.store.requests("PUT")) == writes
    assert again.stderr.count(": unchanged") == 11
    assert api.store.get("", "secrets", "kcm-webhook-tls", "kcm-system") == secret


def test_a_failing_node_is_reported_with_its_reason_and_log(k8s_kcm, api):
    fake = cluster(api, fail={"n2": ("install", "kcm: cannot install kcm into /opt/bin: "
                                                "Read-only file system")})
    try:
        result = k8s_kcm.run("cluster-init", "--host-list=n1,n2", "--timeout=30")
    finally:
        fake.halt.set()
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "n1  ready"
    assert lines[1].startswith("n2  failed  install failed: exit code 1 (Error)")
    assert "last log lines: kcm: cannot install kcm into /opt/bin: Read-only" in lines[1]
    assert "kcm: 1 of 2 nodes did not become ready" in result.stderr


def test_a_timeout_is_reported(k8s_kcm, api):
    fake = cluster(api, stuck={"n3"})
    try:
        started = time.monotonic()
        result = k8s_kcm.run("cluster-init", "--host-list=n3", "--timeout=2")
    finally:
        fake.halt.set()
    assert result.returncode == 1
    assert result.stdout.startswith("n3  failed  timed out at init")
    assert time.monotonic() - started < 20


def test_dry_run_writes_nothing(k8s_kcm, api):
    for name in ("n1", "n2"):
        add_node(api, name)
    result = k8s_kcm.run("cluster-init", "--all-hosts", "--dry-run", check=True)
    assert "# would label node n1 kcm.dev/enabled=true" in result.stdout
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc]
    assert "DaemonSet" in kinds and "MutatingWebhookConfiguration" in kinds
    assert not [r for r in api.store.log if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def test_unknown_hosts_are_refused(k8s_kcm, api):
    result = k8s_kcm.run("cluster-init", "--host-list=node-1,ghost")
    assert result.returncode == 1
    assert result.stderr == "kcm: no such nodes in the cluster: ghost\n"
    assert not [r for r in api.store.log if r.method != "GET"]
