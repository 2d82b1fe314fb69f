"""``kcm cluster-init`` and ``kubectl apply`` against a real API server: a server too old
for the webhook is refused before anything is written; without the webhook the objects
go in, and applying them again changes nothing, compared the way the server stores them
(it drops fields such as ``readOnly: false`` and fills in defaults)."""

import pytest

from tests.conftest import KCM
from tests.k8s_real.conftest import KcmInCluster, add_node

pytestmark = pytest.mark.real_k8s
NAMESPACE = "kcm-init"


@pytest.fixture
def admin(cluster):
    add_node(cluster, "init-node-1")
    kcm = KcmInCluster(cluster, cluster.kubeconfig, "init-node-1")
    yield kcm
    manifests = cluster.run([KCM, "manifests", f"--namespace={NAMESPACE}", "--no-webhook"])
    cluster.kubectl("delete", "-f", "-", "--wait=false", "--ignore-not-found",
                    input=manifests.stdout)
    cluster.kubectl("delete", "node", "init-node-1")


def test_a_server_too_old_for_the_webhook_is_refused_before_anything_is_written(admin,
                                                                               cluster):
    refused = admin.run("cluster-init", "--host-list=init-node-1", f"--namespace={NAMESPACE}")
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "v1.20.2" in refused.stderr and "1.28 or newer" in refused.stderr
    assert "--no-webhook" in refused.stderr
    assert cluster.kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0
    labels = cluster.get("node", "init-node-1")["metadata"].get("labels", {})
    assert "kcm.dev/enabled" not in labels


def test_running_it_again_changes_nothing(admin, cluster):
    args = ["cluster-init", "--host-list=init-node-1", f"--namespace={NAMESPACE}",
            "--no-webhook", "--timeout=1"]
    first = admin.run(*args)
    # No kubelet here: the node never becomes ready, so cluster-init reports it and fails.
    assert first.returncode == 1 and "init-node-1" in first.stdout
    outcomes = [line for line in first.stderr.splitlines() if line.endswith(": created")]
    assert len(outcomes) == 6, first.stderr
    again = admin.run(*args)
    applied = [line for line in again.stderr.splitlines() if ": " in line and
               line.split(": ")[-1] in ("created", "updated", "unchanged")]
    assert applied and all(line.endswith(": unchanged") for line in applied), again.stderr


def test_kubectl_apply_twice_changes_nothing(cluster, tmp_path):
    manifests = tmp_path / "kcm.yaml"
    manifests.write_text(cluster.run([KCM, "manifests", "--namespace=kcm-apply",
                                      "--no-webhook"]).stdout)
    try:
        cluster.kubectl("apply", "-f", str(manifests))
        again = cluster.kubectl("apply", "-f", str(manifests)).stdout.splitlines()
        assert again and all(line.endswith(" unchanged") for line in again), again
        # And the server-side view agrees: nothing to change.
        diff = cluster.kubectl("diff", "-f", str(manifests), check=False)
        assert diff.returncode == 0, diff.stdout + diff.stderr
    finally:
        cluster.kubectl("delete", "-f", str(manifests), "--wait=false")

