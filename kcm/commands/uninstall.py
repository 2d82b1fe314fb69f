"""``kcm uninstall``: remove what kcm added to the node, the installed binary and the
configuration directory; refused while workloads still hold CPU lists (``--force``)."""

import os

from kcm import env, log
from kcm.errors import ConfigError, KcmError
from kcm.install import installed_paths
from kcm.install import uninstall as remove_bundle
from kcm.irqs import restore_recorded
from kcm.names import NODE_LABEL
from kcm.node_patch import capacity_patch, label_patch, taint_update
from kcm.output import emit
from kcm.procfs import Liveness, host_proc_root
from kcm.state import ConfigDir, conf_dir_from


def live_tasks(conf: ConfigDir) -> list[int]:
    """PIDs of live kcm tasks; a directory that is not kcm's is refused, and left as it
    was found (no ``lock`` file of ours in it)."""
    lock = os.path.join(conf.path, "lock")
    had_lock = os.path.lexists(lock)
    try:
        with conf.locked(shared=True):
            config = conf.load()
    except ConfigError:
        if not os.path.lexists(conf.path) or conf.only_remains():
            return []  # nothing, or what a node agent left after an earlier uninstall
        if not had_lock:
            try:
                os.unlink(lock)
            except OSError:
                pass  # never made (the directory refused it), or already gone
        raise
    unreadable = [cl.unreadable for pool in config.pools.values()
                  for cl in pool.cpu_lists.values() if cl.unreadable]
    if unreadable:
        raise ConfigError(f"{unreadable[0]}: kcm cannot tell whether it holds a live task; "
                          "mend the file (or remove the directory by hand)")
    alive = Liveness(host_proc_root())
    return sorted({task.pid for pool in config.pools.values()
                   for cpu_list in pool.cpu_lists.values() for task in cpu_list.tasks
                   if alive(task)})


def check_removable(conf: ConfigDir) -> None:
    """Refuse, before anything is removed, a configuration directory that cannot go."""
    if os.path.isdir(conf.path) and not os.access(conf.path, os.W_OK):
        raise KcmError(f"cannot remove {conf.path}: the directory is not writable "
                       "(read-only file system or no permission)")


def clean_node(client, name: str, prefix: str) -> list[str]:
    """Drop kcm's extended resources, label, taint, NodeReport and the
    NodeResourceTopology it published (its NodeReport says so); what was removed."""
    from kcm.k8s import NODE, NODE_REPORT

    removed = []
    node = client.get(NODE, name)
    if node is not None:
        capacity = capacity_patch(node, {}, prefix)
        if capacity:
            client.patch(NODE, name, {"status": {"capacity": capacity}}, status=True)
            removed += [f"capacity {key}" for key in capacity]
        unlabel = label_patch(node, present=False)
        if unlabel:
            client.patch(NODE, name, unlabel)
            removed += [f"label {key}" for key in unlabel["metadata"]["labels"]]

        def drop_taint(current: dict) -> dict | None:
            update = taint_update(current, present=False)
            if update is not None:
                removed.append(f"taint {NODE_LABEL}")
            return update

        client.update(NODE, name, drop_taint)
    report = client.get(NODE_REPORT, name)
    if ((report or {}).get("spec", {}).get("nodeResourceTopology") or {}).get("published"):
        from kcm.k8s import NODE_RESOURCE_TOPOLOGY
        from kcm.nrt import is_ours

        topology = client.get(NODE_RESOURCE_TOPOLOGY, name)
        if topology is not None and is_ours(topology) and client.delete(
                NODE_RESOURCE_TOPOLOGY, name):
            removed.append(f"NodeResourceTopology {name}")
    if report is not None and client.delete(NODE_REPORT, name):
        removed.append(f"NodeReport {name}")
    return removed


def run(args) -> int:
    conf = ConfigDir(conf_dir_from(args.conf_dir))
    installed_paths(args.install_dir)  # refuses an empty --install-dir before anything
    check_removable(conf)
    alive = live_tasks(conf)
    if alive and not args.force:
        tasks = "1 kcm task is" if len(alive) == 1 else f"{len(alive)} kcm tasks are"
        raise KcmError(f"{tasks} still running (PID{'s' if len(alive) > 1 else ''} "
                       f"{', '.join(map(str, alive[:10]))}); stop them or use --force")
    removed: list[str] = []
    name = args.node_name or env.node_name(None)
    client = None
    if name:
        from kcm.k8s import KubeClient

        client = KubeClient()
    # First the pools go (one rename): node agents still running stop touching the node
    # and publishing for it before its objects are cleaned.
    had_pools = os.path.isdir(os.path.join(conf.path, "pools")) and conf.retire()
    if client is not None:
        removed += clean_node(client, name, args.resource_prefix)
    else:
        log.warning("no node name (--node-name or NODE_NAME): the node's Kubernetes objects "
                    "are left alone")
    if had_pools or os.path.isdir(conf.path):
        removed += restore_recorded(conf, host_proc_root())
    if conf.destroy():
        removed.append(conf.path)
    # Last: this very command may be running from the bundle it removes (/opt/bin/kcm);
    # nothing is imported after it.
    removed += remove_bundle(args.install_dir)
    emit({"removed": removed}, args.output,
         lambda d: [("REMOVED",)] + [(item,) for item in d["removed"]])
    return 0
