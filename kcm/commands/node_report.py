"""``kcm node-report``: report the node as JSON; publish it as a NodeReport; serve metrics."""

import json
import signal

from kcm import log
from kcm.env import read_node_topology
from kcm.errors import KcmError
from kcm.node_report import Processes, build_report, summary
from kcm.procfs import allowed_cpus, proc_root, task_alive
from kcm.state import ConfigDir, conf_dir_from

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


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


def make_report(conf: ConfigDir, root: str) -> dict:
    try:
        with conf.locked(shared=True):
            config, error = conf.load(check_overlap=False), None
    except KcmError as failure:
        config, error = None, str(failure)
    processes = Processes(alive=lambda task: task_alive(root, task),
                          allowed_cpus=lambda pid: allowed_cpus(root, pid))
    return build_report(read_node_topology(), config, error, processes)


def run(args) -> int:
    conf = ConfigDir(conf_dir_from(args.conf_dir))
    root = proc_root()
    client = node = metrics = None
    if args.publish:
        from kcm.k8s import KubeClient, node_name

        node = node_name(args.node_name)
        client = KubeClient()
    if args.interval is not None:
        # Before any thread starts (the metrics server's), so that every thread inherits
        # the blocked mask and SIGTERM can only end the loop below, between passes.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
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
    while True:
        try:
            one_pass(None)
        except KcmError as error:
            log.log("ERROR", f"node report failed: {error}")
        if signal.sigtimedwait(_STOP_SIGNALS, args.interval) is not None:
            return 0
