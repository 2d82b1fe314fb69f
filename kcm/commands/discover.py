"""``kcm discover``: advertise every exclusive pool as the node extended resource
``<prefix>/<pool>-cores``, label the node, and optionally taint it."""

from kcm.errors import KcmError
from kcm.k8s import NODE, KubeClient, node_name
from kcm.names import NODE_LABEL
from kcm.node_patch import capacity_patch, label_patch, taint_update, wanted_capacity
from kcm.output import emit
from kcm.state import ConfigDir, conf_dir_from


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
    patch = capacity_patch(node, wanted, args.resource_prefix)
    if patch:
        client.patch(NODE, name, {"status": {"capacity": patch}}, status=True)
    labelled = label_patch(node, present=True)
    if labelled:
        client.patch(NODE, name, labelled)
    if args.taint:
        client.update(NODE, name, lambda current: taint_update(current, present=True))
    emit({"node": name, "capacity": wanted, "label": f"{NODE_LABEL}=true",
          "taint": f"{NODE_LABEL}=true:NoSchedule" if args.taint else None}, args.output)
    return 0
