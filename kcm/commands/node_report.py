"""``kcm node-report``: report the node as JSON; publish it as a NodeReport; serve metrics."""

from kcm import log
from kcm.env import read_node_topology
from kcm.names import NODE_LABEL, NODE_REPORT_API_VERSION, NRT_API_VERSION
from kcm.node_facts import enforcement_status, host_processes, read_config
from kcm.node_report import build_report, summary
from kcm.output import emit
from kcm.periodic import hold_stop_signals, repeat
from kcm.procfs import host_proc_root
from kcm.state import ConfigDir, conf_dir_from


def node_label(node: str) -> dict:
    """``kcm.dev/node=<node>`` when the node's name is a valid label value (at most 63
    characters); a longer name (node names may have 253) gets no label rather than a
    NodeReport the API server refuses. The NodeReport is named after the node anyway."""
    return {NODE_LABEL: node} if len(node) <= 63 else {}


def publish(client, node: str, report: dict) -> None:
    """Create or update the cluster-scoped NodeReport named after the node: the report
    in ``spec`` (replaced whole), the check summary through the status subresource."""
    from kcm.k8s import NODE, NODE_REPORT

    existing = client.get(NODE_REPORT, node)
    if existing is None:
        body = {"apiVersion": NODE_REPORT_API_VERSION, "kind": "NodeReport",
                "metadata": {"name": node, "labels": node_label(node)}, "spec": report}
        owner = client.get(NODE, node)
        if owner is not None and owner["metadata"].get("uid"):
            body["metadata"]["ownerReferences"] = [{
                "apiVersion": "v1", "kind": "Node", "name": node,
                "uid": owner["metadata"]["uid"]}]
        client.create(NODE_REPORT, body)
    else:
        client.patch(NODE_REPORT, node, [{"op": "add", "path": "/spec", "value": report}],
                     json_patch=True)
    client.patch(NODE_REPORT, node, {"status": summary(report)}, status=True)


def publish_topology(client, node: str, report: dict, prefix: str) -> dict:
    """Create or update the node's NodeResourceTopology, unless another agent owns it;
    what happened, for the report."""
    from kcm.k8s import NODE_RESOURCE_TOPOLOGY, KubeError
    from kcm.nrt import is_ours, node_resource_topology

    desired = node_resource_topology(node, report, prefix)
    try:
        existing = client.get(NODE_RESOURCE_TOPOLOGY, node)
        if existing is None:
            client.create(NODE_RESOURCE_TOPOLOGY, desired)
        elif not is_ours(existing):
            return {"published": False,
                    "reason": f"NodeResourceTopology {node} is written by another agent"}
        elif any(existing.get(key) != desired[key]
                 for key in ("zones", "attributes", "topologyPolicies")):
            client.patch(NODE_RESOURCE_TOPOLOGY, node,
                         [{"op": "add", "path": f"/{key}", "value": desired[key]}
                          for key in ("zones", "attributes", "topologyPolicies")],
                         json_patch=True)
    except KubeError as error:
        if error.code != 404:
            raise
        return {"published": False, "reason": "no NodeResourceTopology CRD in the cluster "
                                              f"({NRT_API_VERSION})"}
    return {"published": True}


def make_report(conf: ConfigDir, root: str, cgroup_root: str | None) -> dict:
    config, error = read_config(conf)
    report = build_report(read_node_topology(), config, error and str(error),
                          host_processes(root))
    report["enforcement"] = enforcement_status(conf, cgroup_root)
    return report


def run(args) -> int:
    conf = ConfigDir(conf_dir_from(args.conf_dir))
    root = host_proc_root()
    client = node = metrics = None
    if args.publish:
        from kcm.k8s import KubeClient, node_name

        node = node_name(args.node_name)
        client = KubeClient()
    if args.interval is not None:
        hold_stop_signals()  # before the metrics server's thread starts
    if args.metrics_port is not None:
        from kcm.metrics import NodeMetrics

        metrics = NodeMetrics(args.metrics_port, args.metrics_address)

    def one_pass(indent: int | None) -> None:
        report = make_report(conf, root, args.cgroup_root)
        if client is not None and args.interval is not None and conf.removed():
            # kcm uninstall ran on this node (and deleted its NodeReport): the agent
            # publishes nothing until kcm init runs again.
            log.once(f"{conf.path} holds no pools (removed?): publishing nothing")
        elif client is not None:
            if args.node_resource_topology:
                report["nodeResourceTopology"] = publish_topology(client, node, report,
                                                                  args.resource_prefix)
            publish(client, node, report)
            if conf.removed():
                # kcm uninstall took the pools away while this pass published; it deletes
                # the NodeReport only after that, but this write may have come later.
                from kcm.k8s import NODE_REPORT

                client.delete(NODE_REPORT, node)
        if metrics is not None:
            metrics.update(report, conf.last_lock_wait)
        emit(report, args.output, indent=indent)

    if args.interval is None:
        one_pass(2)
        return 0
    return repeat(args.interval, lambda: one_pass(None), "node report")
