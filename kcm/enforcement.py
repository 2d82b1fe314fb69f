"""What enforcement should make true: container cpusets and IRQ affinities. Pure.

The rules (docs/design.md, "Enforcement"):

- *held* is the union of the exclusive CPU lists held by live tasks; *shared* is every
  online CPU that is not held. Free exclusive lists stay in *shared*: any container
  may run there until a workload takes them, and so a workload's container always has
  the CPUs it is about to be granted (no EINVAL from ``sched_setaffinity``).
- A container cgroup gets its own held lists plus *shared*; every other container
  gets *shared*. A container's set never comes out empty: with nothing shared left
  it keeps what it has, and the pass reports it.
- An IRQ whose affinity touches held CPUs loses them; kcm records the affinity it
  found, and gives it back when the CPUs are released. An IRQ is never left with no
  CPU: when all its CPUs are held, it goes to the shared CPUs.
"""

from __future__ import annotations

from kcm.cpuset import CpuSet


class Holder:
    """A live task holding exclusive CPUs: its kcm and workload PIDs, its cgroup."""

    __slots__ = ("cgroup", "cpus", "pids")

    def __init__(self, pids: frozenset[int], cpus: CpuSet, cgroup: str | None):
        self.pids = pids
        self.cpus = cpus
        self.cgroup = cgroup


def held_cpus(holders: list[Holder]) -> CpuSet:
    return frozenset().union(*(holder.cpus for holder in holders))


def affinities_to_restore(before: dict[int, CpuSet], after: dict[int, CpuSet],
                          old: CpuSet, new: CpuSet) -> dict[int, CpuSet]:
    """Threads whose chosen affinity a cpuset change from ``old`` to ``new`` reset
    (kernels before 6.2 do), and what to give back: what each had chosen, within
    ``new``. A thread that had all of ``old`` chose nothing (it follows its cgroup);
    one that chose only CPUs now gone keeps what the kernel gave it."""
    restore = {}
    for tid, chosen in before.items():
        want = chosen & new
        if chosen == old or not want or tid not in after or after[tid] == want:
            continue
        restore[tid] = want
    return restore


def plan_cpusets(online: CpuSet, holders: list[Holder], current: dict[str, CpuSet]
                 ) -> dict[str, CpuSet]:
    """The cpuset each container cgroup should have; ``current`` maps every container
    cgroup under the root to its cpuset now. Only changes are returned."""
    held = held_cpus(holders)
    shared = online - held
    own: dict[str, set[int]] = {}
    for holder in holders:
        if holder.cgroup is not None:
            own.setdefault(holder.cgroup, set()).update(holder.cpus)
    changes = {}
    for cgroup, now in current.items():
        wanted = frozenset(own.get(cgroup, ())) | shared
        if wanted and wanted != now:
            changes[cgroup] = wanted
    return changes


def plan_irqs(current: dict[str, CpuSet], recorded: dict[str, CpuSet], held: CpuSet,
              shared: CpuSet) -> tuple[dict[str, CpuSet], dict[str, CpuSet]]:
    """(the affinity to write for each IRQ that must change, the new record of the
    affinities kcm found before it moved them)."""
    writes: dict[str, CpuSet] = {}
    record: dict[str, CpuSet] = {}
    for irq, now in current.items():
        original = recorded.get(irq, now)
        wanted = original - held or (shared or original)
        if wanted != original:
            record[irq] = original
        if wanted != now:
            writes[irq] = wanted
    return writes, record


def violations(threads: list[tuple[int, int, CpuSet]], holders: list[Holder],
               parents: dict[int, int], cgroups: dict[int, str | None]
               ) -> list[tuple[int, int, CpuSet]]:
    """Threads (PID, TID, allowed CPUs) of user processes allowed on a held exclusive CPU
    they do not hold: not the holder, not its workload or a descendant of it, not in
    the holder's container cgroup. Each with the held CPUs it may run on."""
    found = []
    for pid, tid, allowed in threads:
        for holder in holders:
            if allowed & holder.cpus and not _belongs(pid, holder, parents, cgroups):
                found.append((pid, tid, allowed & holder.cpus))
                break
    return found


def _belongs(pid: int, holder: Holder, parents: dict[int, int],
             cgroups: dict[int, str | None]) -> bool:
    if holder.cgroup is not None and cgroups.get(pid) == holder.cgroup:
        return True
    for _ in range(256):  # up the parent chain: a workload's own children are its own
        if pid in holder.pids:
            return True
        pid = parents.get(pid, 0)
        if pid <= 1:
            return False
    return False
