"""What kcm puts on a Node and how it is taken off: the extended resources, the label
and the taint. Pure functions over Node objects as dicts; the commands send the
results (discover adds, uninstall removes, doctor compares, cluster-init waits)."""

from kcm.model import Config
from kcm.names import NODE_LABEL, NODE_SELECTOR, NODE_TAINT, pool_of_resource, resource_name


def wanted_capacity(config: Config, prefix: str) -> dict[str, str]:
    """One extended resource per exclusive pool, its count of CPU lists."""
    return {resource_name(prefix, pool.name): str(len(pool.cpu_lists))
            for pool in config.pools.values() if pool.exclusive}


def advertised(node: dict, prefix: str) -> dict[str, str]:
    """kcm's extended resources in a node's capacity."""
    capacity = (node.get("status") or {}).get("capacity") or {}
    return {name: value for name, value in capacity.items()
            if pool_of_resource(name, prefix) is not None}


def capacity_patch(node: dict, wanted: dict[str, str], prefix: str) -> dict:
    """Status patch of the capacity: set what is wanted, drop kcm's resources for pools
    that are gone (``wanted={}`` removes them all); empty when nothing changes."""
    current = advertised(node, prefix)
    patch: dict = {name: value for name, value in wanted.items() if current.get(name) != value}
    patch.update({name: None for name in current if name not in wanted})
    return patch


def has_label(node: dict) -> bool:
    return ((node.get("metadata") or {}).get("labels") or {}).get(NODE_LABEL) == "true"


def label_patch(node: dict, present: bool) -> dict | None:
    """Merge patch that adds (or removes) kcm's node label; None when already so."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    if present and labels.get(NODE_LABEL) != "true":
        return {"metadata": {"labels": {NODE_LABEL: "true"}}}
    if not present:
        # kcm's own label, and the one that selects the node for kcm's DaemonSet (which
        # the controller then takes off the node).
        gone = {key: None for key in (NODE_LABEL, NODE_SELECTOR[0]) if key in labels}
        return {"metadata": {"labels": gone}} if gone else None
    return None


def taint_update(node: dict, present: bool) -> dict | None:
    """Update (guarded by the node's resourceVersion) that adds or removes kcm's taint;
    None when already so."""
    taints = list((node.get("spec") or {}).get("taints") or [])
    ours = [t for t in taints if t.get("key") == NODE_TAINT["key"]]
    if present:
        if any(t.get("effect") == NODE_TAINT["effect"] for t in ours):
            return None
        kept = [*taints, NODE_TAINT]
    else:
        if not ours:
            return None
        kept = [t for t in taints if t.get("key") != NODE_TAINT["key"]] or None
    return {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
            "spec": {"taints": kept}}


def is_ready(node: dict, prefix: str) -> bool:
    """Whether kcm has finished with a node: some pool advertised and the node labelled."""
    return bool(advertised(node, prefix)) and has_label(node)
