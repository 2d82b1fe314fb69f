"""The node's NodeResourceTopology (``topology.node.k8s.io/v1alpha2``), for the
topology-aware scheduler plugin (NodeResourceTopologyMatch): one zone per NUMA node with
each exclusive pool's ``<prefix>/<pool>-cores`` capacity, allocatable and available in
that zone. Pure: built from the node report.

A CPU list belongs to the NUMA node that holds most of its CPUs (the lowest on a tie);
kcm's planning keeps a list inside one node wherever the machine allows. The policy
attributes say ``single-numa-node`` at container scope: a kcm CPU list is never split
across nodes by isolate, so a pod's lists are counted where they live."""

from __future__ import annotations

from kcm.cpuset import parse_cpulist
from kcm.names import MANAGED_BY, NRT_API_VERSION, resource_name


def zone_name(node: int) -> str:
    return f"node-{node}"


def node_of(cpus: frozenset[int], numa_nodes: dict[int, frozenset[int]]) -> int:
    return max(sorted(numa_nodes), key=lambda node: len(cpus & numa_nodes[node]))


def zones(report: dict, prefix: str) -> list[dict]:
    numa_nodes = {int(node): parse_cpulist(cpus)
                  for node, cpus in report["topology"]["numaNodes"].items()}
    counts: dict[int, dict[str, list[int]]] = {node: {} for node in numa_nodes}
    for pool in report.get("pools", {}).values():
        if not pool["exclusive"]:
            continue
        resource = resource_name(prefix, pool["name"])
        for node in numa_nodes:
            counts[node][resource] = [0, 0]
        for cpu_list in pool["cpuLists"].values():
            node = node_of(parse_cpulist(cpu_list["cpus"]), numa_nodes)
            counts[node][resource][0] += 1
            if not any(task.get("alive") for task in cpu_list["tasks"]):
                counts[node][resource][1] += 1
    return [{"name": zone_name(node), "type": "Node",
             "resources": [{"name": resource, "capacity": str(total),
                            "allocatable": str(total), "available": str(free)}
                           for resource, (total, free) in sorted(counts[node].items())]}
            for node in sorted(numa_nodes)]


def node_resource_topology(node: str, report: dict, prefix: str) -> dict:
    key, value = MANAGED_BY
    return {"apiVersion": NRT_API_VERSION, "kind": "NodeResourceTopology",
            "metadata": {"name": node, "labels": {key: value}},
            "topologyPolicies": ["SingleNUMANodeContainerLevel"],
            "attributes": [{"name": "topologyManagerPolicy", "value": "single-numa-node"},
                           {"name": "topologyManagerScope", "value": "container"}],
            "zones": zones(report, prefix)}


def is_ours(obj: dict) -> bool:
    """Whether kcm published it; one without kcm's label belongs to another agent (NFD's
    topology-updater, the resource-topology-exporter) and is left alone."""
    key, value = MANAGED_BY
    return (obj.get("metadata", {}).get("labels") or {}).get(key) == value
