#!/usr/bin/env python3
"""Generate the Helm chart in deploy/helm/kcm from kcm.manifests, the one source of
truth for kcm's Kubernetes objects. ``--check`` exits 1 when the chart is stale.

The objects are rendered with placeholder values, dumped as YAML, and the placeholders
replaced by the chart's template expressions. The chart installs into the release's
namespace and has no Namespace object of its own (``helm install --create-namespace``
makes it). The webhook's certificate comes from Helm's genCA/genSignedCert on the first
install and is read back from its Secret (``lookup``) on every upgrade, so the pods keep
serving the certificate the API server trusts. The webhook refuses to install on an API
server older than MIN_KUBERNETES_FOR_WEBHOOK unless ``webhook.allowOldKubernetes``.
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kcm import __version__  # noqa: E402
from kcm.manifests import (  # noqa: E402
    Settings,
    WebhookTls,
    cluster_objects,
    to_yaml,
)
from kcm.names import MIN_KUBERNETES_FOR_WEBHOOK  # noqa: E402

CHART = ROOT / "deploy" / "helm" / "kcm"

# placeholder -> (template expression, default value for values.yaml path)
NAMESPACE = "ZZNAMESPACEZZ"
VALUES = {
    "image": ("ZZIMAGEZZ", f"ghcr.io/kcm-project/kcm:{__version__}"),
    "confDir": ("ZZCONFDIRZZ", "/etc/kcm"),
    "installDir": ("ZZINSTALLDIRZZ", "/opt/bin"),
    "numDpCores": ("ZZNUMDPCORESZZ", 4),
    "numCpCores": ("ZZNUMCPCORESZZ", 1),
    "dpMode": ("ZZDPMODEZZ", "packed"),
    "cpMode": ("ZZCPMODEZZ", "packed"),
    "reconcileInterval": ("ZZRECONCILEZZ", 30),
    "reportInterval": ("ZZREPORTZZ", 60),
    "nodeSelector.key": ("ZZSELECTORKEYZZ", "kcm.dev/enabled"),
    "nodeSelector.value": ("ZZSELECTORVALUEZZ", "true"),
    "resourcePrefix": ("ZZPREFIXZZ", "kcm.dev"),
    "webhook.replicas": ("ZZREPLICASZZ", 2),
}
TLS = WebhookTls(ca="ZZTLSCAZZ", cert="ZZTLSCERTZZ", key="ZZTLSKEYZZ")
TLS_EXPRESSIONS = {
    "WlpUTFNDQVpa": "{{ $caCrt }}",       # base64("ZZTLSCAZZ")
    "WlpUTFNDRVJUWlo=": "{{ $tlsCrt }}",  # base64("ZZTLSCERTZZ")
    "WlpUTFNLRVlaWg==": "{{ $tlsKey }}",  # base64("ZZTLSKEYZZ")
}
MAJOR, MINOR = MIN_KUBERNETES_FOR_WEBHOOK
TOO_OLD = (f"kcm's webhook needs Kubernetes {MAJOR}.{MINOR} or newer (its matchConditions), "
           "this cluster is %s: set webhook.enabled=false to install kcm without it, or "
           "webhook.allowOldKubernetes=true if the API server has the "
           "AdmissionWebhookMatchConditions feature gate on")
SERVICE_NAMES = ('list "kcm-webhook" $service (printf "%s.svc" $service) '
                 '(printf "%s.svc.cluster.local" $service)')
WEBHOOK_HEADER = "".join(f"{{{{- {line} }}}}\n" for line in [
    "if and (not .Values.webhook.allowOldKubernetes) "
    f'(semverCompare "<{MAJOR}.{MINOR}.0-0" .Capabilities.KubeVersion.Version)',
    f'fail (printf "{TOO_OLD}" .Capabilities.KubeVersion.Version)',
    "end",
    # The certificate in the cluster, if any: an upgrade keeps what the pods serve.
    '$secret := lookup "v1" "Secret" .Release.Namespace "kcm-webhook-tls"',
    '$caCrt := ""', '$tlsCrt := ""', '$tlsKey := ""',
    "if and $secret $secret.data",
    '$caCrt = index $secret.data "ca.crt"',
    '$tlsCrt = index $secret.data "tls.crt"',
    '$tlsKey = index $secret.data "tls.key"',
    "else",
    '$service := printf "kcm-webhook.%s" .Release.Namespace',
    f"$names := {SERVICE_NAMES}",
    '$ca := genCA "kcm webhook CA" 3650',
    '$cert := genSignedCert (printf "%s.svc" $service) nil $names 3650 $ca',
    "$caCrt = $ca.Cert | b64enc", "$tlsCrt = $cert.Cert | b64enc",
    "$tlsKey = $cert.Key | b64enc",
    "end",
])


def placeholder_settings() -> Settings:
    v = {key: placeholder for key, (placeholder, _) in VALUES.items()}
    return Settings(
        namespace=NAMESPACE, image=v["image"], conf_dir=v["confDir"],
        install_dir=v["installDir"], num_dp_cores=v["numDpCores"], num_cp_cores=v["numCpCores"],
        dp_mode=v["dpMode"], cp_mode=v["cpMode"], reconcile_interval=v["reconcileInterval"],
        report_interval=v["reportInterval"],
        node_selector=(v["nodeSelector.key"], v["nodeSelector.value"]),
        resource_prefix=v["resourcePrefix"], taint=True, webhook=True,
        webhook_replicas=v["webhook.replicas"], node_resource_topology=True,
    )


def templated(text: str) -> str:
    text = re.sub(rf"(: |- ){NAMESPACE}$", r"\g<1>{{ .Release.Namespace | quote }}", text,
                  flags=re.MULTILINE)
    text = text.replace(NAMESPACE, "{{ .Release.Namespace }}")
    for key, (placeholder, default) in VALUES.items():
        if isinstance(default, str):
            # A whole YAML scalar: quote it, so "true" or "8" stay strings.
            text = re.sub(rf"(: |- ){placeholder}$", rf"\g<1>{{{{ .Values.{key} | quote }}}}",
                          text, flags=re.MULTILINE)
        text = text.replace(placeholder, f"{{{{ .Values.{key} }}}}")
    for encoded, expression in TLS_EXPRESSIONS.items():
        text = text.replace(encoded, expression)
    optional = {'- "--taint"': "taint", '- "--node-resource-topology"': "nodeResourceTopology"}
    lines = []
    for line in text.splitlines():
        if line.strip() in optional:
            indent = line[: len(line) - len(line.lstrip())]
            lines += [f"{indent}{{{{- if .Values.{optional[line.strip()]} }}}}", line,
                      f"{indent}{{{{- end }}}}"]
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def chart_files() -> dict[str, str]:
    objects = [o for o in cluster_objects(placeholder_settings(), TLS)
               if o["kind"] != "Namespace"]
    webhook_kinds = {"Secret", "Deployment", "Service", "MutatingWebhookConfiguration"}
    topology = [o for o in objects if o["metadata"].get("labels", {}).get(
        "app.kubernetes.io/component") == "node-resource-topology"]
    core = [o for o in objects if o["kind"] not in webhook_kinds
            and o["metadata"]["name"] != "kcm-webhook" and o not in topology]
    webhook = [o for o in objects if o not in core and o not in topology]
    header = "# Generated by scripts/gen-helm-chart.py from kcm/manifests.py; do not edit.\n"
    values = "\n".join(f"{key}: {default}" for key, (_, default) in VALUES.items()
                       if "." not in key)
    values += ("\nnodeSelector:\n  key: kcm.dev/enabled\n  value: \"true\"\ntaint: false\n"
               "nodeResourceTopology: false\n"
               "webhook:\n  enabled: true\n  replicas: 2\n  allowOldKubernetes: false\n")
    return {
        "Chart.yaml": (f"apiVersion: v2\nname: kcm\ndescription: CPU manager for Kubernetes "
                       f"nodes\ntype: application\nversion: {__version__}\n"
                       f"appVersion: \"{__version__}\"\n"),
        "values.yaml": header + values,
        "templates/kcm.yaml": header + templated(to_yaml(core)),
        "templates/node-resource-topology.yaml": header
        + "{{- if .Values.nodeResourceTopology }}\n" + templated(to_yaml(topology))
        + "{{- end }}\n",
        "templates/webhook.yaml": header + "{{- if .Values.webhook.enabled }}\n" + WEBHOOK_HEADER
        + templated(to_yaml(webhook)) + "{{- end }}\n",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the chart is stale")
    args = parser.parse_args()
    stale = []
    for name, text in chart_files().items():
        path = CHART / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"stale Helm chart files (run scripts/gen-helm-chart.py): {', '.join(stale)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
