"""``kcm describe``: the configuration directory as JSON (default) or a table.

The JSON is the original KCM's document, byte for byte, as long as every recorded kcm
process lives. When one does not (``kcm isolate`` was killed, say with SIGKILL), the key
``deadTasks`` lists those records with their workload and whether it still runs: the
workload keeps the CPU list while it lives, under a PID the original keys do not show.
The table shows each task as ``PID`` (``kcm isolate``, pinned with its workload) or
``PID(dead)>PIDS``: the processes of the workload that still hold the list."""

from __future__ import annotations

from kcm.cpuset import format_cpulist
from kcm.env import read_node_topology
from kcm.errors import KcmError, TopologyError
from kcm.model import Config, Task
from kcm.output import emit
from kcm.procfs import Liveness, host_proc_root, is_running
from kcm.report import config_as_dict
from kcm.state import ConfigDir, conf_dir_from

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


def run(args: argparse.Namespace) -> int:
    conf = ConfigDir(conf_dir_from(args.conf_dir))
    with conf.locked(shared=True):
        snapshot = conf.read()
    config = conf.parse(snapshot)
    try:
        root: str | None = host_proc_root()
    except KcmError:
        root = None  # no host procfs to ask: the records as they are
    dead = dead_tasks(config, root) if root else []
    document = config_as_dict(config)
    if dead:
        document["deadTasks"] = dead
    emit(document, args.output, lambda _: table_rows(config, root))
    return 0


def table_rows(config: Config, root: str | None) -> list[tuple[str, ...]]:
    try:
        numa_of = {cpu.id: cpu.numa for cpu in read_node_topology().cpus.values()}
    except TopologyError:
        numa_of = {}
    alive = Liveness(root) if root else None
    rows = [("POOL", "EXCLUSIVE", "CPU LIST", "NUMA NODE", "TASKS")]
    for pool in sorted(config.pools.values(), key=lambda pool: pool.name):
        for cpu_list in sorted(pool.cpu_lists.values(), key=lambda cl: min(cl.cpus)):
            nodes = {numa_of.get(cpu) for cpu in cpu_list.cpus}
            rows.append((
                pool.name,
                "yes" if pool.exclusive else "no",
                cpu_list.name,
                "?" if None in nodes else format_cpulist(nodes),
                ",".join(_task_cell(task, root, alive) for task in cpu_list.tasks)
                or ("unreadable" if cpu_list.unreadable else "-"),
            ))
    return rows


def dead_tasks(config: Config, root: str) -> list[dict]:
    """Records whose kcm process is gone, with their workload, whether any of it runs,
    and the PIDs that still hold the list (the workload and what is left of its process
    group)."""
    alive = Liveness(root)
    found = []
    for pool in config.pools.values():
        for cpu_list in pool.cpu_lists.values():
            for task in cpu_list.tasks:
                if is_running(root, task.pid, task.start):
                    continue
                entry = {"pool": pool.name, "cpuList": cpu_list.name, "pid": task.pid}
                holders = alive.holders(task)
                if task.child:
                    entry["workloadPid"] = task.child
                    entry["workloadAlive"] = bool(holders)
                if holders:
                    entry["holdingPids"] = holders
                found.append(entry)
    return sorted(found, key=lambda e: (e["pool"], e["cpuList"], e["pid"]))


def _task_cell(task: Task, root: str | None, alive: Liveness | None) -> str:
    if root is None or alive is None or is_running(root, task.pid, task.start):
        return str(task.pid)
    holders = alive.holders(task)
    if holders:
        return f"{task.pid}(dead)>{'+'.join(map(str, holders))}"
    return f"{task.pid}(dead)"
