"""``kcm node-report``: report the node as JSON; publish it as a NodeReport; serve metrics."""

import json

from kcm.env import read_node_topology
from kcm.errors import KcmError
from kcm.node_report import Processes, build_report, summary
from kcm.periodic import hold_stop_signals, repeat
from kcm.procfs import allowed_cpus, host_proc_root, task_alive
from kcm.state import Config, ConfigDir, conf_dir_from


def publish(client, node: str, report: dict) -> None:
    """Create or update the cluster-scoped NodeReport named after the node: the report
    in ``spec`` (replaced whole), the check summary through the status subresource."""
    from kcm.k8s import NODE, NODE_REPORT

    existing = client.get(NODE_REPORT, node)
    if existing is None:
        body = {"apiVersion": "kcm.dev/v1", "kind": "NodeReport",
                "metadata": {"name": node, "labels": {"kcm.dev/node": node}}, "spec": report}
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


def read_config(conf: ConfigDir) -> tuple[Config | None, KcmError | None]:
    """The directory as a report sees it: (config, None), or (None, why it failed);
    overlapping CPU lists are left to the report's checks."""
    try:
        with conf.locked(shared=True):
            return conf.load(check_overlap=False), None
    except KcmError as failure:
        return None, failure


def host_processes(root: str) -> Processes:
    return Processes(alive=lambda task: task_alive(root, task),
                     allowed_cpus=lambda pid: allowed_cpus(root, pid))


def enforcement_status(conf: ConfigDir) -> dict:
    """What ``kcm enforce`` has achieved on this node, or why it cannot be seen."""
    from kcm.enforcer import make_enforcer

    try:
        return {"available": True, **make_enforcer(conf, None, False).observe()}
    except KcmError as error:
        return {"available": False, "reason": str(error)}


def make_report(conf: ConfigDir, root: str) -> dict:
    config, error = read_config(conf)
    report = build_report(read_node_topology(), config, error and str(error),
                          host_processes(root))
    report["enforcement"] = enforcement_status(conf)
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
        report = make_report(conf, root)
        if client is not None:
            publish(client, node, report)
        if metrics is not None:
            metrics.update(report, conf.last_lock_wait)
        print(json.dumps(report, sort_keys=True, indent=indent), flush=True)

    if args.interval is None:
        one_pass(2)
        return 0
    return repeat(args.interval, lambda: one_pass(None), "node report")
