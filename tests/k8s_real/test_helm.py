"""The Helm chart against a real API server, with real Helm 3 and 4: it installs into a
namespace Helm creates, it refuses a server too old for its webhook before creating
anything, and an upgrade keeps the webhook's certificate (so the webhook pods, which
read it at start, keep serving the one the API server trusts)."""

import json
import os
from pathlib import Path

import pytest

from tests.k8s_real.control_plane import BIN

pytestmark = pytest.mark.real_k8s
CHART = str(Path(__file__).resolve().parents[2] / "deploy/helm/kcm")
# A 1.20 server has no webhook matchConditions and its OpenAPI schema does not know the
# field: both checks are passed over on purpose to install the webhook's objects at all
# (and Helm 4's server-side apply, which the server would refuse for that field).
OLD_SERVER = ["--disable-openapi-validation"]


@pytest.fixture(params=["helm", "helm4"])
def helm(request, cluster, tmp_path):
    binary = BIN / request.param
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "KUBECONFIG": str(cluster.kubeconfig),
           "HELM_CACHE_HOME": str(tmp_path / "cache"),
           "HELM_CONFIG_HOME": str(tmp_path / "config"), "HELM_DATA_HOME": str(tmp_path / "data")}

    def run(*args: str, check: bool = True):
        return cluster.run([str(binary), *args], env=env, check=check)

    run.namespace = f"kcm-{request.param}"
    run.old_server = OLD_SERVER + (["--server-side=false"] if request.param == "helm4" else [])
    yield run
    run("uninstall", "kcm", f"--namespace={run.namespace}", check=False)


def webhook_tls(cluster, namespace: str) -> tuple[dict, str]:
    secret = cluster.get("secret", "kcm-webhook-tls", f"--namespace={namespace}")["data"]
    configuration = cluster.get("mutatingwebhookconfiguration", "kcm-webhook")
    return secret, configuration["webhooks"][0]["clientConfig"]["caBundle"]


def test_install_into_a_new_namespace_and_upgrade_keeping_the_certificate(helm, cluster):
    namespace = helm.namespace
    helm("install", "kcm", CHART, f"--namespace={namespace}", "--create-namespace",
         "--set=webhook.allowOldKubernetes=true", *helm.old_server)
    assert cluster.get("namespace", namespace)["status"]["phase"] == "Active"
    daemonset = cluster.get("daemonset", "kcm-node", f"--namespace={namespace}")
    assert daemonset["metadata"]["annotations"]["meta.helm.sh/release-namespace"] == namespace
    secret, ca_bundle = webhook_tls(cluster, namespace)
    assert ca_bundle == secret["ca.crt"]
    helm("upgrade", "kcm", CHART, f"--namespace={namespace}", "--reuse-values",
         "--set=numDpCores=6", *helm.old_server)
    assert webhook_tls(cluster, namespace) == (secret, ca_bundle)
    args = cluster.get("daemonset", "kcm-node", f"--namespace={namespace}")[
        "spec"]["template"]["spec"]["initContainers"][0]["args"]
    assert "--num-dp-cores=6" in args
    status = json.loads(helm("status", "kcm", f"--namespace={namespace}", "-o", "json").stdout)
    assert status["info"]["status"] == "deployed" and status["version"] == 2


def test_a_server_too_old_for_the_webhook_is_refused_before_anything_is_created(helm,
                                                                               cluster):
    refused = helm("install", "kcm", CHART, f"--namespace={helm.namespace}",
                   "--create-namespace", check=False)
    assert refused.returncode != 0
    assert "needs Kubernetes 1.28 or newer" in refused.stderr and "v1.20.2" in refused.stderr
    releases = json.loads(helm("list", "--all-namespaces", "--failed", "--pending",
                               "--deployed", "-o", "json").stdout)
    assert [r for r in releases if r["namespace"] == helm.namespace] == []
    helm("install", "kcm", CHART, f"--namespace={helm.namespace}", "--create-namespace",
         "--set=webhook.enabled=false", "--dry-run=server")
