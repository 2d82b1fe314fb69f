"""``kcm cluster-init``: label the chosen nodes, apply the manifests, wait until every
node advertises its extended resources; report per node what failed and why."""

import sys

from kcm.certs import webhook_tls
from kcm.k8s import NODE, KubeClient
from kcm.manifests import WEBHOOK_NAME, cluster_objects, settings_from, tls_from_secret, to_yaml
from kcm.rollout import KINDS, apply, check_server_version, choose_nodes, wait


def run(args) -> int:
    settings = settings_from(args)
    client = KubeClient()
    check_server_version(client.server_version(), settings.webhook)
    nodes = choose_nodes(client, args.host_list)
    tls = None
    if settings.webhook:
        # Reuse the certificate already in the cluster, so a re-run changes nothing.
        secret = client.get(KINDS[("v1", "Secret")], f"{WEBHOOK_NAME}-tls", settings.namespace)
        tls = (tls_from_secret(secret) if secret else None) or webhook_tls(
            settings, args.webhook_cert_dir)
    objects = cluster_objects(settings, tls)
    label, value = settings.node_selector
    if args.dry_run:
        print("".join(f"# would label node {name} {label}={value}\n" for name in nodes)
              + to_yaml(objects), end="")
        return 0
    for name in nodes:
        client.patch(NODE, name, {"metadata": {"labels": {label: value}}})
    for obj in objects:
        outcome = apply(client, obj)
        where = f"{obj['metadata'].get('namespace', '')}/" if "namespace" in obj["metadata"] else ""
        print(f"{obj['kind']} {where}{obj['metadata']['name']}: {outcome}", file=sys.stderr)
    progress = wait(client, settings, nodes, args.timeout)
    width = max(len(name) for name in nodes)
    failed = 0
    for state in progress.values():
        print(f"{state.name.ljust(width)}  {state.phase}" +
              (f"  {state.reason}" if state.phase != "ready" and state.reason else ""))
        failed += state.phase != "ready"
    if failed:
        print(f"kcm: {failed} of {len(nodes)} nodes did not become ready", file=sys.stderr)
        return 1
    return 0
