"""Enforcing the pools on this node: one pass reads the live holders of exclusive CPU
lists, writes container cpusets (``kcm.cgroups``) and, if asked, IRQ affinities
(``kcm.irqs``), following the plan of ``kcm.enforcement``; ``observe`` reports the same
without writing (node-report, doctor, metrics)."""

from __future__ import annotations

import os

from kcm import cgroups, env, irqs, log
from kcm.cpuset import format_cpulist
from kcm.enforcement import Holder, held_cpus, plan_cpusets, plan_irqs, violations
from kcm.env import read_node_topology
from kcm.errors import KcmError
from kcm.kernfs import VANISHED
from kcm.procfs import Liveness, host_proc_root, user_threads
from kcm.state import ConfigDir


class Enforcer:
    def __init__(self, conf: ConfigDir, proc_root: str, hierarchy: cgroups.Hierarchy,
                 cgroup_root: str, steer_irqs: bool):
        self.conf = conf
        self.proc_root = proc_root
        self.hierarchy = hierarchy
        self.cgroup_root = cgroup_root
        self.steer_irqs = steer_irqs
        self.online = read_node_topology().online

    def holders(self) -> list[Holder]:
        if self.conf.removed():
            # kcm uninstall ran on this node: nothing is held, every container gets its
            # CPUs back, and nothing is created in the directory.
            log.once(f"{self.conf.path} holds no pools (removed?): holding nothing")
            return []
        with self.conf.locked(shared=True):
            config = self.conf.load(warn_overlap=False)
        found = []
        liveness = Liveness(self.proc_root)
        for pool in config.pools.values():
            if not pool.exclusive:
                continue
            for cpu_list in pool.cpu_lists.values():
                for task in cpu_list.tasks:
                    if pids := liveness.holders(task):
                        # The workload's container: its main process's, else any holder's.
                        inside = task.child if task.child in pids else pids[-1]
                        found.append(Holder(frozenset(pids), cpu_list.cpus,
                                            self.cgroup_of(inside)))
        return found

    def container_cpusets(self) -> dict[str, frozenset[int]]:
        """Every container cgroup under the root and the CPUs it may use now."""
        return {path: cpus for path in cgroups.containers(self.cgroup_root)
                if (cpus := cgroups.effective_cpus(self.hierarchy, path)) is not None}

    def cgroup_of(self, pid: int) -> str | None:
        path = cgroups.cgroup_of(self.proc_root, pid, self.hierarchy.version)
        return self.hierarchy.fs_path(path) if path is not None else None

    def one_pass(self) -> dict:
        holders = self.holders()
        held = held_cpus(holders)
        shared = self.online - held
        current = self.container_cpusets()
        report: dict = {"cgroupVersion": self.hierarchy.version, "cgroupRoot": self.cgroup_root,
                        "held": format_cpulist(held), "shared": format_cpulist(shared),
                        "containers": len(current), "changed": [], "failed": []}
        for path, cpus in sorted(plan_cpusets(self.online, holders, current).items()):
            problem = cgroups.write_cpus(self.hierarchy, self.cgroup_root, path, cpus)
            if problem is None:
                report["changed"].append({"cgroup": path, "cpus": format_cpulist(cpus),
                                          "was": format_cpulist(current[path])})
            elif problem != VANISHED:
                report["failed"].append({"cgroup": path, "error": problem})
        if self.steer_irqs and not self.conf.removed():  # uninstall gave the IRQs back
            report["irqs"] = self.steer(held, shared)
        report["violations"], report["hostThreadsOnHeldCpus"] = self.violations(holders)
        return report

    def observe(self) -> dict:
        """What enforcement looks like now, changing nothing: containers confined (kept
        off CPUs others hold) or not, IRQs kcm steered, IRQs still on held CPUs."""
        holders = self.holders()
        held = held_cpus(holders)
        current = self.container_cpusets()
        pending = plan_cpusets(self.online, holders, current)
        steered = []
        if not self.conf.removed():
            with self.conf.locked(shared=True):
                steered = sorted(self.conf.load_irq_record())
        on_held = sorted(irq for irq, cpus in irqs.read_affinities(self.proc_root).items()
                         if cpus & held)
        violations, host = self.violations(holders)
        return {"held": format_cpulist(held), "containers": len(current),
                "containersNotConfined": sorted(pending), "irqsSteered": steered,
                "irqsOnHeldCpus": on_held, "violations": violations,
                "hostThreadsOnHeldCpus": host}

    def steer(self, held: frozenset[int], shared: frozenset[int]) -> dict:
        current = irqs.read_affinities(self.proc_root)
        with self.conf.locked():
            recorded = self.conf.load_irq_record()
            writes, record = plan_irqs(current, recorded, held, shared)
            moved, restored, unmovable = [], [], []
            for irq, cpus in sorted(writes.items()):
                problem = irqs.write_affinity(self.proc_root, irq, cpus)
                if problem is not None:
                    unmovable.append({"irq": irq, "error": problem})
                    record.pop(irq, None)
                elif irq in record:
                    moved.append({"irq": irq, "cpus": format_cpulist(cpus)})
                else:
                    restored.append({"irq": irq, "cpus": format_cpulist(cpus)})
            if record != recorded:
                self.conf.save_irq_record(record)
        return {"moved": moved, "restored": restored, "unmovable": unmovable,
                "steered": sorted(record)}

    def violations(self, holders: list[Holder]) -> tuple[list[str], int]:
        """Threads in containers under the root that may run on a CPU held by another
        (none after a pass), and the count of such threads of host processes outside
        the root (kept off only by isolcpus or the init system's CPU affinity)."""
        if not holders:
            return [], 0
        threads, parents = user_threads(self.proc_root)
        cgroups_of = {pid: self.cgroup_of(pid) for pid in {pid for pid, _, _ in threads}}
        inside = self.cgroup_root + "/"
        found = violations(threads, holders, parents, cgroups_of)
        in_containers = [f"thread {tid} of process {pid} may run on held exclusive CPUs "
                         f"{format_cpulist(cpus)}" for pid, tid, cpus in found
                         if (cgroups_of.get(pid) or "").startswith(inside)]
        return in_containers, len(found) - len(in_containers)


def make_enforcer(conf: ConfigDir, cgroup_root: str | None, steer_irqs: bool) -> Enforcer:
    """An Enforcer for this node: the host procfs, the cpuset hierarchy from mountinfo,
    the kubelet's pod cgroups unless ``cgroup_root`` says otherwise."""
    proc_root = host_proc_root()
    try:
        with open(os.path.join(proc_root, "self", "mountinfo")) as handle:
            mountinfo = handle.read()
    except OSError as error:
        raise KcmError(f"cannot read {proc_root}/self/mountinfo: {error.strerror}") from None
    hierarchy = cgroups.find_hierarchy(mountinfo)
    cgroup_root = env.cgroup_root(cgroup_root)
    root = os.path.abspath(cgroup_root or cgroups.default_root(hierarchy))
    real_mount = os.path.realpath(hierarchy.mount)
    if not os.path.isdir(root) or os.path.commonpath([os.path.realpath(root),
                                                      real_mount]) != real_mount:
        raise KcmError(f"--cgroup-root {root} is not a directory of the cpuset hierarchy "
                       f"mounted at {hierarchy.mount}")
    return Enforcer(conf, proc_root, hierarchy, root, steer_irqs)

