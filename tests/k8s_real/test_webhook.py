"""kcm's admission webhook called by a real API server: a pod created with a kcm
resource comes back mutated, as stored by the server (the JSON patch must apply to the
real Pod schema). The webhook is registered by URL on 127.0.0.1 in the control plane's
loopback-only namespace, never by a Service."""

import base64
import json
import subprocess
import time

import pytest

from tests.conftest import KCM
from tests.k8s.conftest import Tls

pytestmark = pytest.mark.real_k8s
PORT = 18443
NAMESPACE = "webhook-test"


@pytest.fixture
def webhook(cluster, tmp_path):
    tls = Tls(tmp_path / "tls")
    server = cluster.popen([KCM, "webhook", f"--tls-cert-file={tls.cert_file}",
                            f"--tls-private-key-file={tls.key_file}", f"--secure-port={PORT}",
                            "--bind-address=127.0.0.1"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while cluster.run(["python3", "-c", _CONNECT], check=False).returncode != 0:
        assert server.poll() is None, server.stderr.read()
        assert time.monotonic() < deadline, "the webhook did not start listening"
        time.sleep(0.1)
    configuration = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "kcm-test-webhook"},
        "webhooks": [{
            "name": "pods.kcm.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 5,
            "clientConfig": {"url": f"https://127.0.0.1:{PORT}/mutate",
                             "caBundle": base64.b64encode(tls.ca_file.read_bytes()).decode()},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {"kcm-webhook-test": "true"}},
        }]}
    cluster.kubectl("create", "-f", "-", input=json.dumps(configuration))
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"kcm-webhook-test": "true"}}}))
    yield
    cluster.kubectl("delete", "mutatingwebhookconfiguration", "kcm-test-webhook")
    server.terminate()
    server.wait(10)


_CONNECT = f"import socket; socket.create_connection(('127.0.0.1', {PORT}), 1).close()"


def test_the_real_server_stores_the_mutated_pod(cluster, webhook):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "dpdk", "namespace": NAMESPACE},
           "spec": {"containers": [
               {"name": "app", "image": "example/app",
                "resources": {"requests": {"kcm.dev/dataplane-cores": "1"},
                              "limits": {"kcm.dev/dataplane-cores": "1"}}},
               {"name": "sidecar", "image": "example/sidecar"}]}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(pod))
    stored = cluster.get("pod", "dpdk", f"--namespace={NAMESPACE}")
    app, sidecar = stored["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in app.get("env", [])}
    assert env["KCM_CONF_DIR"] == "/etc/kcm" and env["KCM_PROC_FS"] == "/host/proc"
    assert {"kcm-host-proc", "kcm-conf"} <= {m["name"] for m in app["volumeMounts"]}
    assert "env" not in sidecar or all(not e["name"].startswith("KCM_") for e in sidecar["env"])
    assert {"kcm-host-proc", "kcm-conf"} <= {v["name"] for v in stored["spec"]["volumes"]}
    # A pod without kcm resources is left as it was.
    plain = {**pod, "metadata": {"name": "plain", "namespace": NAMESPACE},
             "spec": {"containers": [{"name": "app", "image": "example/app"}]}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(plain))
    stored = cluster.get("pod", "plain", f"--namespace={NAMESPACE}")
    assert not any(v["name"].startswith("kcm-") for v in stored["spec"].get("volumes", []))
