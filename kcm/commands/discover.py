"""``kcm discover``: advertise every exclusive pool as the node extended resource
``<prefix>/<pool>-cores``, label the node, and optionally taint it."""

import json

from kcm.errors import KcmError
from kcm.k8s import NODE, KubeClient, node_name
from kcm.manifests import NODE_LABEL, resource_name
from kcm.state import ConfigDir, conf_dir_from

TAINT = {"key": NODE_LABEL, "value": "true", "effect": "NoSchedule"}


def wanted_capacity(config, prefix: str) -> dict[str, str]:
    return {resource_name(prefix, pool.name): str(len(pool.cpu_lists))
            for pool in config.pools.values() if pool.exclusive}


def capacity_patch(current: dict, wanted: dict[str, str], prefix: str) -> dict:
    """Set the wanted resources, drop kcm's resources for pools that are gone."""
    patch: dict = {name: value for name, value in wanted.items() if current.get(name) != value}
    for name in current:
        if name.startswith(f"{prefix}/") and name.endswith("-cores") and name not in wanted:
            patch[name] = None
    return patch


def run(args) -> int:
    name = node_name(args.node_name)
    conf = ConfigDir(conf_dir_from(args.conf_dir))
    with conf.locked(shared=True):
        config = conf.load()
    wanted = wanted_capacity(config, args.resource_prefix)
    client = KubeClient()
    node = client.get(NODE, name)
    if node is None:
        raise KcmError(f"node {name} not found in the cluster")
    capacity = node.get("status", {}).get("capacity", {}) or {}
    patch = capacity_patch(capacity, wanted, args.resource_prefix)
    if patch:
        client.patch(NODE, name, {"status": {"capacity": patch}}, status=True)
    if (node["metadata"].get("labels") or {}).get(NODE_LABEL) != "true":
        client.patch(NODE, name, {"metadata": {"labels": {NODE_LABEL: "true"}}})
    if args.taint:
        client.update(NODE, name, _add_taint)
    print(json.dumps({"node": name, "capacity": wanted, "label": f"{NODE_LABEL}=true",
                      "taint": f"{NODE_LABEL}=true:NoSchedule" if args.taint else None},
                     sort_keys=True, indent=2))
    return 0


def _add_taint(node: dict) -> dict | None:
    taints = list(node.get("spec", {}).get("taints") or [])
    if any(t.get("key") == TAINT["key"] and t.get("effect") == TAINT["effect"] for t in taints):
        return None
    return {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
            "spec": {"taints": [*taints, TAINT]}}
