"""The node report: topology, pools and tasks, and checks an operator cares about.

Pure apart from the ``Processes`` it is given, which answers liveness and affinity
questions from the host procfs.
"""

from __future__ import annotations

import time
from collections import namedtuple

from kcm import __version__
from kcm.cpuset import format_cpulist, parse_cpulist
from kcm.errors import CpuListError
from kcm.model import Config, Task, overlapping_cpus
from kcm.report import pools_as_dict
from kcm.topology import Topology


class Processes(namedtuple("Processes", "alive allowed_cpus")):
    """What the report asks of the host: ``alive(task)``, is a task alive;
    ``allowed_cpus(pid)``, a PID's affinity as a CPU list (None when it is gone). (Not a
    dataclass: importing ``dataclasses`` costs kcm doctor more than its checks.)"""

    __slots__ = ()


def topology_summary(topology: Topology) -> dict:
    return {
        "sockets": sorted(topology.sockets()),
        "numaNodes": {str(node): format_cpulist(cpus)
                      for node, cpus in topology.numa_nodes().items()},
        "l3Caches": len(topology.l3_caches()),
        "cores": len(topology.cores()),
        "threads": len(topology.cpus),
        "online": format_cpulist(topology.online),
        "offline": format_cpulist(topology.offline),
        "isolated": format_cpulist(topology.isolated),
    }


CONFIG_CHECKS = ("disjointCpuLists", "exclusiveOnIsolated", "cpusOnline", "cpusInPools",
                 "deadTasks", "affinity")
"""The checks that read the configuration directory."""


def build_report(topology: Topology, config: Config | None, config_error: str | None,
                 processes: Processes) -> dict:
    """The report document; ``config`` is None when the directory could not be read."""
    pools: dict = {}
    dead: list[str] = []
    drifted: list[str] = []
    if config is not None:
        alive = {task: processes.alive(task) for pool in config.pools.values()
                 for cpu_list in pool.cpu_lists.values() for task in cpu_list.tasks}
        pools = pools_as_dict(config, lambda task: {
            "pid": task.pid, "alive": alive[task],
            **({"workloadPid": task.child} if task.child else {})})
        for pool in config.pools.values():
            for cpu_list in pool.cpu_lists.values():
                where = f"pool {pool.name} CPU list {cpu_list.name}"
                for task in cpu_list.tasks:
                    if not alive[task]:
                        dead.append(f"task {task.pid} in {where} is dead")
                        continue
                    drift = _affinity_drift(task, cpu_list.cpus, processes)
                    if drift:
                        drifted.append(f"task {task.pid} in {where}: {drift}")
    unreadable = [cl.unreadable for pool in config.pools.values()
                  for cl in pool.cpu_lists.values() if cl.unreadable] if config else []
    checks = [_check("configDirectory", [config_error] if config_error else unreadable)]
    if config is None:
        checks += [not_run(name, "the configuration directory could not be read")
                   for name in CONFIG_CHECKS]
    else:
        checks += [
            _check("disjointCpuLists", overlapping_cpus(config)),
            _check("exclusiveOnIsolated", _exclusive_not_isolated(topology, config)),
            _check("cpusOnline", _offline_in_pools(topology, config)),
            _check("cpusInPools", _cpus_in_no_pool(topology, config), severity="warning"),
            _check("deadTasks", dead, severity="warning"),
            _check("affinity", drifted),
        ]
    return {
        "kcmVersion": __version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "topology": topology_summary(topology),
        "pools": pools,
        "checks": checks,
    }


def summary(report: dict) -> dict:
    """The check summary that goes into a NodeReport's status."""
    failed = [check["name"] for check in report["checks"]
              if not check["ok"] and check["severity"] == "error"]
    warned = [check["name"] for check in report["checks"]
              if not check["ok"] and check["severity"] == "warning"]
    return {"healthy": not failed, "failedChecks": failed, "warnings": warned,
            "lastReportTime": report["time"]}


def _check(name: str, errors: list[str], severity: str = "error") -> dict:
    return {"name": name, "ok": not errors, "ran": True, "severity": severity, "errors": errors}


def not_run(name: str, why: str) -> dict:
    """A check that could not run: not ok, never mistaken for a pass, a warning (the
    failure that stopped it is reported by its own check)."""
    return {"name": name, "ok": False, "ran": False, "severity": "warning",
            "errors": [f"not run: {why}"]}


def _affinity_drift(task: Task, cpus: frozenset[int], processes: Processes) -> str | None:
    """The workload's affinity (the kcm process's when the workload is unknown)."""
    pid = task.child or task.pid
    allowed = processes.allowed_cpus(pid)
    if allowed is None:
        return None
    try:
        actual = parse_cpulist(allowed)
    except CpuListError:
        return f"unreadable affinity {allowed!r}"
    if task.child and actual != cpus:
        return f"workload {pid} runs on CPUs {format_cpulist(actual)}, not {format_cpulist(cpus)}"
    if not task.child and not actual <= cpus:
        return f"process {pid} may run on CPUs {format_cpulist(actual)}, not only " \
               f"{format_cpulist(cpus)}"
    return None


def _exclusive_not_isolated(topology: Topology, config: Config | None) -> list[str]:
    if config is None or not topology.isolated:
        return []
    return [f"exclusive pool {pool.name} CPU list {cpu_list.name} has CPUs that are not "
            f"isolated: {format_cpulist(cpu_list.cpus - topology.isolated)}"
            for pool in config.pools.values() if pool.exclusive
            for cpu_list in pool.cpu_lists.values() if not cpu_list.cpus <= topology.isolated]


def _offline_in_pools(topology: Topology, config: Config | None) -> list[str]:
    if config is None:
        return []
    return [f"pool {pool.name} CPU list {cpu_list.name} has CPUs that are not online: "
            f"{format_cpulist(cpu_list.cpus - topology.online)}"
            for pool in config.pools.values() for cpu_list in pool.cpu_lists.values()
            if not cpu_list.cpus <= topology.online]


def _cpus_in_no_pool(topology: Topology, config: Config | None) -> list[str]:
    if config is None:
        return []
    pooled = frozenset().union(*(cpu_list.cpus for pool in config.pools.values()
                                 for cpu_list in pool.cpu_lists.values()))
    missing = topology.online - pooled
    return [f"online CPUs in no pool: {format_cpulist(missing)}"] if missing else []
