"""The Helm chart is generated from kcm.manifests and renders to the same objects.

``helm`` itself cannot be installed here, so the test renders the chart with a small
renderer that understands exactly the template constructs the generator emits
(values, ``quote``, ``if``/``end``, the genCA/genSignedCert certificate) and fails on
anything else.
"""

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kcm.certs import mint
from kcm.manifests import Settings, cluster_objects, webhook_service_names

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy/helm/kcm"


def lookup(values: dict, path: str):
    for part in path.split("."):
        values = values[part]
    return values


def render(values: dict, tls) -> list[dict]:
    tls_expressions = {"$ca.Cert": tls.ca, "$cert.Cert": tls.cert, "$cert.Key": tls.key}
    documents = []
    for template in sorted((CHART / "templates").glob("*.yaml")):
        lines, skipping = [], []
        for line in template.read_text().splitlines():
            stripped = line.strip()
            if match := re.fullmatch(r"\{\{- if \.Values\.([\w.]+) \}\}", stripped):
                skipping.append(not lookup(values, match[1]))
                continue
            if stripped == "{{- end }}":
                skipping.pop()
                continue
            if any(skipping) or stripped.startswith("{{- $") or stripped.startswith("#"):
                continue
            line = re.sub(r"\{\{ \.Values\.([\w.]+) \| quote \}\}",
                          lambda m: json.dumps(str(lookup(values, m[1]))), line)
            line = re.sub(r"\{\{ \.Values\.([\w.]+) \}\}",
                          lambda m: str(lookup(values, m[1])), line)
            line = re.sub(r"\{\{ (\$\w+\.\w+) \| b64enc \}\}",
                          lambda m: base64.b64encode(tls_expressions[m[1]].encode()).decode(),
                          line)
            assert "{{" not in line, f"unknown template construct: {line}"
            lines.append(line)
        documents += [doc for doc in yaml.safe_load_all("\n".join(lines)) if doc]
    return documents


def by_key(objects: list[dict]) -> dict:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_the_chart_is_generated_from_the_manifests():
    result = subprocess.run([sys.executable, str(ROOT / "scripts/gen-helm-chart.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("overrides", "settings"), [
    ({}, Settings()),
    ({"namespace": "cpu", "numDpCores": 8, "taint": True, "reconcileInterval": 5,
      "nodeSelector": {"key": "role", "value": "8"}},
     Settings(namespace="cpu", num_dp_cores=8, taint=True, reconcile_interval=5,
              node_selector=("role", "8"))),
    ({"webhook": {"enabled": False, "replicas": 2}}, Settings(webhook=False)),
])
def test_the_chart_renders_the_same_objects_as_kcm_manifests(overrides, settings):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    values.update(overrides)
    tls = mint(webhook_service_names(settings)) if settings.webhook else None
    rendered = by_key(render(values, tls or mint(["x"])))
    expected = by_key(cluster_objects(settings, tls))
    assert rendered.keys() == expected.keys()
    for key, obj in expected.items():
        assert rendered[key] == obj, key


def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "kcm"
