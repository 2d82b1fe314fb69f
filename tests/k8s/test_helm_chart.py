"""The Helm chart is generated from kcm.manifests, and real Helm (3 and 4, from
scripts/k8s-real.sh tools) renders it to the same objects as ``kcm manifests``, lints
it, and refuses a cluster too old for the webhook. Installs and upgrades against a real
API server are in tests/k8s_real/test_helm.py."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kcm.manifests import Settings, WebhookTls, cluster_objects
from tests.k8s_real.control_plane import BIN

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy/helm/kcm"
HELMS = [pytest.param(BIN / name, id=name) for name in ("helm", "helm4")]
NEW_ENOUGH = "--kube-version=1.30.0"


@pytest.fixture(params=HELMS)
def helm(request, tmp_path):
    binary = request.param
    if not os.access(binary, os.X_OK):
        pytest.skip(f"no {binary}: run `bash scripts/k8s-real.sh tools`")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
               "HELM_CACHE_HOME": str(tmp_path / "cache"),
               "HELM_CONFIG_HOME": str(tmp_path / "config"),
               "HELM_DATA_HOME": str(tmp_path / "data")}
        result = subprocess.run([str(binary), *args], capture_output=True, text=True, env=env,
                                timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    return run


def by_key(objects: list[dict]) -> dict:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects if o}


def tls_of(objects: list[dict]) -> WebhookTls | None:
    secret = by_key(objects).get(("Secret", "kcm-webhook-tls"))
    if secret is None:
        return None
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    return WebhookTls(ca=data["ca.crt"], cert=data["tls.crt"], key=data["tls.key"])


def test_the_chart_is_generated_from_the_manifests():
    result = subprocess.run([sys.executable, str(ROOT / "scripts/gen-helm-chart.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("args", "settings"), [
    ([], Settings()),
    (["--namespace=cpu", "--set=numDpCores=8,taint=true,reconcileInterval=5",
      "--set=nodeSelector.key=role,nodeSelector.value=8"],
     Settings(namespace="cpu", num_dp_cores=8, taint=True, reconcile_interval=5,
              node_selector=("role", "8"))),
    (["--set=webhook.enabled=false"], Settings(webhook=False)),
    (["--set=nodeResourceTopology=true"], Settings(node_resource_topology=True)),
])
def test_real_helm_renders_the_same_objects_as_kcm_manifests(helm, args, settings):
    namespace = [] if any(a.startswith("--namespace") for a in args) else [
        "--namespace=kcm-system"]
    rendered = [doc for doc in yaml.safe_load_all(
        helm("template", "kcm", str(CHART), NEW_ENOUGH, *namespace, *args).stdout) if doc]
    tls = tls_of(rendered)
    assert (tls is not None) == settings.webhook
    expected = by_key([o for o in cluster_objects(settings, tls) if o["kind"] != "Namespace"])
    got = by_key(rendered)
    assert got.keys() == expected.keys()
    for key, obj in expected.items():
        assert got[key] == obj, key


def test_each_render_mints_a_certificate_that_names_the_service(helm):
    renders = [tls_of(list(yaml.safe_load_all(helm("template", "kcm", str(CHART), NEW_ENOUGH,
                                                   "--namespace=cpu").stdout)))
               for _ in range(2)]
    assert renders[0].cert != renders[1].cert
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(renders[0].cert.encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kcm-webhook.cpu.svc" in names.get_values_for_type(x509.DNSName)


def test_helm_lint_passes(helm):
    helm("lint", "--strict", str(CHART), NEW_ENOUGH)


def test_a_cluster_too_old_for_the_webhook_is_refused_unless_it_is_left_out(helm):
    refused = helm("template", "kcm", str(CHART), "--kube-version=1.27.9", check=False)
    assert refused.returncode != 0
    assert "needs Kubernetes 1.28 or newer" in refused.stderr and "v1.27.9" in refused.stderr
    helm("template", "kcm", str(CHART), "--kube-version=1.27.9", "--set=webhook.enabled=false")
    helm("template", "kcm", str(CHART), "--kube-version=1.28.0")


def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "kcm"
