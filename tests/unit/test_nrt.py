"""The NodeResourceTopology kcm publishes, from a node report: one zone per NUMA node,
each exclusive pool's resource counted where its CPU lists live."""

from kcm.nrt import is_ours, node_resource_topology, zones


def report(pools: dict) -> dict:
    return {"topology": {"numaNodes": {"0": "0-3", "1": "4-7"}}, "pools": pools}


def pool(name: str, exclusive: bool, lists: dict[str, bool]) -> dict:
    """``lists``: CPU list -> whether a live task holds it."""
    return {"name": name, "exclusive": exclusive, "cpuLists": {
        cpus: {"cpus": cpus, "tasks": [{"pid": 1, "alive": True}] if held else []}
        for cpus, held in lists.items()}}


def test_each_numa_node_is_a_zone_with_the_lists_it_holds():
    found = zones(report({
        "dataplane": pool("dataplane", True, {"0": True, "1": False, "4": False,
                                              "3-5": False}),
        "infra": pool("infra", False, {"6-7": False}),
    }), "kcm.dev")
    assert found == [
        {"name": "node-0", "type": "Node", "resources": [
            {"name": "kcm.dev/dataplane-cores", "capacity": "2", "allocatable": "2",
             "available": "1"}]},
        # 3-5 has two CPUs on node 1: it counts there.
        {"name": "node-1", "type": "Node", "resources": [
            {"name": "kcm.dev/dataplane-cores", "capacity": "2", "allocatable": "2",
             "available": "2"}]},
    ]


def test_a_dead_task_does_not_hold_its_list_and_a_tie_goes_to_the_lower_node():
    dead = {"name": "dp", "exclusive": True, "cpuLists": {
        "2-5": {"cpus": "2-5", "tasks": [{"pid": 9, "alive": False}]}}}
    (first, second) = zones(report({"dp": dead}), "example.com")
    assert first["resources"] == [{"name": "example.com/dp-cores", "capacity": "1",
                                   "allocatable": "1", "available": "1"}]
    assert second["resources"][0]["capacity"] == "0"


def test_the_object_is_labelled_as_kcm_s():
    obj = node_resource_topology("n1", report({}), "kcm.dev")
    assert obj["apiVersion"] == "topology.node.k8s.io/v1alpha2" and is_ours(obj)
    assert {"name": "topologyManagerPolicy", "value": "single-numa-node"} in obj["attributes"]
    assert not is_ours({"metadata": {"name": "n1", "labels": {"other": "x"}}})
