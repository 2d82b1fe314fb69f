"""``kcm cluster-init``: label the chosen nodes, apply the manifests, wait until every
node advertises its extended resources; report per node what failed and why."""

import sys

from kcm.certs import webhook_tls
from kcm.errors import KcmError
from kcm.k8s import NODE, KubeClient
from kcm.manifests import WEBHOOK_NAME, cluster_objects, settings_from, tls_from_secret, to_yaml
from kcm.rollout import KINDS, apply, check_server_version, choose_nodes, wait


def run(args) -> int:
    settings = settings_from(args)
    try:
        client = KubeClient()
    except KcmError as error:
        if not args.dry_run:
            raise
        # No cluster to ask: show what would be applied, as far as it is known.
        print(f"# no cluster ({error}): the objects cluster-init would apply", file=sys.stderr)
        return dry_run(settings, args, None)
    check_server_version(client.server_version(), settings.webhook)
    if args.dry_run:
        return dry_run(settings, args, client)
    nodes = choose_nodes(client, args.host_list)
    objects = cluster_objects(settings, cluster_tls(client, settings, args))
    label, value = settings.node_selector
    for name in nodes:
        client.patch(NODE, name, {"metadata": {"labels": {label: value}}})
    for obj in objects:
        print(f"{describe(obj)}: {apply(client, obj)}", file=sys.stderr)
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


def describe(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']} {meta['namespace'] + '/' if 'namespace' in meta else ''}{meta['name']}"


def cluster_tls(client, settings, args):
    """The webhook's TLS: the certificate already in the cluster if any (a re-run then
    changes nothing), else --webhook-cert-dir's, else a new one."""
    if not settings.webhook:
        return None
    secret = None
    if client is not None:
        secret = client.get(KINDS[("v1", "Secret")], f"{WEBHOOK_NAME}-tls", settings.namespace)
    return (tls_from_secret(secret) if secret else None) or webhook_tls(
        settings, args.webhook_cert_dir)


def dry_run(settings, args, client) -> int:
    """Print what would be applied, changing nothing; with a cluster, also what would
    change ("# would create/update ..." before the YAML)."""
    label, value = settings.node_selector
    objects = cluster_objects(settings, cluster_tls(client, settings, args))
    if client is None:
        nodes = ([n.strip() for n in args.host_list.split(",") if n.strip()]
                 if args.host_list else ["(every node)"])
        head = [f"# would label node {name} {label}={value}" for name in nodes]
    else:
        head = [f"# would label node {name} {label}={value}"
                for name in choose_nodes(client, args.host_list)]
        head += [f"# {describe(obj)}: would be {apply(client, obj, dry_run=True)}"
                 for obj in objects]
    print("\n".join(head) + "\n" + to_yaml(objects), end="")
    return 0
