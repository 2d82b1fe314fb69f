"""Which CPU lists of a pool a new task gets: the decision behind ``kcm isolate``.

Pure apart from the two callables it is given: one tells whether a recorded task
still lives, one reads the topology (only when the choice depends on it).
"""

from __future__ import annotations

from kcm.cpuset import CpuSet
from kcm.errors import AllocationError
from kcm.model import CpuList, Pool, Task

TYPE_CHECKING = False  # typing and collections.abc cost milliseconds on isolate's path
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from kcm.topology import Topology

    class Store(Protocol):
        """Where pools and tasks live: ``kcm.state.ConfigDir`` (on disk, under its lock)
        or ``kcm.model.MemoryStore``."""

        def load_pool(self, name: str) -> Pool: ...
        def load_cpu_lists(self, pool: str, places: list[str]) -> list[CpuList]: ...
        def save_tasks(self, pool: str, cpu_list: CpuList, tasks: list[Task],
                       durable: bool = False) -> None: ...


class Request:
    """What ``kcm isolate`` asks for; ``explicit_num_cores`` when given as a flag."""

    __slots__ = ("explicit_num_cores", "num_cores", "numa_node", "pool", "socket")

    def __init__(self, pool: str, num_cores: int = 1, explicit_num_cores: bool = False,
                 socket: int | None = None, numa_node: int | None = None):
        self.pool = pool
        self.num_cores = num_cores
        self.explicit_num_cores = explicit_num_cores
        self.socket = socket
        self.numa_node = numa_node


Choice = tuple[list[CpuList], CpuSet, list[tuple[CpuList, list[Task]]]]


def choose_cpu_lists(
    pool: Pool,
    request: Request,
    alive: Callable[[Task], bool],
    topology: Callable[[], Topology],
    siblings: Callable[[int], CpuSet] | None = None,
) -> Choice:
    """(chosen CPU lists, CPUs to pin to, [(CPU list, its live tasks)] to reclaim).

    ``siblings(cpu)`` is the CPUs of ``cpu``'s physical core (empty when unknown), a
    cheaper question than the whole topology; by default the topology answers it."""
    read: list[Topology] = []

    def topology_once() -> Topology:
        if not read:
            read.append(topology())
        return read[0]

    def siblings_from_topology(cpu: int) -> CpuSet:
        topo = topology_once()
        return topo.cores()[topo.cpus[cpu].core] if cpu in topo.cpus else frozenset()

    where = _where(request, topology_once)
    if pool.exclusive:
        return _exclusive(pool, request, alive, topology_once, where,
                          siblings or siblings_from_topology)
    return _shared(pool, request, where)


def grant(store: Store, request: Request, task: Task, alive: Callable[[Task], bool],
          topology: Callable[[], Topology], siblings: Callable[[int], CpuSet] | None = None,
          ) -> tuple[CpuSet, list[str], list[str]]:
    """Choose CPU lists for ``task`` and record it in each (the caller holds the lock);
    (CPUs to pin to, places of the lists held, places of the lists reclaimed from the dead;
    a place is the list's directory inside its pool, its name unless the pool has socket
    directories)."""
    pool = store.load_pool(request.pool)
    chosen, cpus, reclaimed = choose_cpu_lists(pool, request, alive, topology, siblings)
    for cpu_list, tasks in reclaimed:
        store.save_tasks(pool.name, cpu_list, tasks)
    for cpu_list in chosen:
        store.save_tasks(pool.name, cpu_list, [*cpu_list.tasks, task], durable=True)
    return cpus, [cl.place for cl in chosen], [cl.place for cl, _ in reclaimed]


def release(store: Store, pool: str, held: list[str], task: Task) -> None:
    """Take ``task`` out of the CPU lists it held (the caller holds the lock)."""
    for cpu_list in store.load_cpu_lists(pool, held):
        remaining = [t for t in cpu_list.tasks if t.pid != task.pid]
        if len(remaining) != len(cpu_list.tasks) and cpu_list.unreadable is None:
            store.save_tasks(pool, cpu_list, remaining)


def _where(request: Request, topology: Callable[[], Topology]) -> tuple[str, CpuSet] | None:
    if request.socket is None and request.numa_node is None:
        return None
    topo = topology()
    if request.socket is not None:
        label, groups, wanted = "socket", topo.sockets(), request.socket
    else:
        label, groups, wanted = "NUMA node", topo.numa_nodes(), request.numa_node
    if wanted not in groups:
        known = ", ".join(map(str, groups))
        raise AllocationError(f"this node has no {label} {wanted} ({label}s: {known})")
    return f"{label} {wanted}", groups[wanted]


def _exclusive(pool: Pool, request: Request, alive: Callable[[Task], bool],
               topology: Callable[[], Topology], where: tuple[str, CpuSet] | None,
               siblings: Callable[[int], CpuSet]) -> Choice:
    wanted = request.num_cores
    if wanted < 1:
        raise AllocationError("--num-cores must be at least 1")
    candidates = [cl for cl in pool.cpu_lists.values() if where is None or cl.cpus <= where[1]]
    on = f" on {where[0]}" if where else ""
    if wanted > len(candidates):
        raise AllocationError(
            f"requested {wanted} CPU lists but pool {pool.name} has only {len(candidates)}{on}")
    free = [cl for cl in candidates if not cl.held]
    reclaimed = []
    if len(free) < wanted:
        for cpu_list in candidates:
            if not cpu_list.tasks or cpu_list.unreadable:
                continue
            live = [task for task in cpu_list.tasks if alive(task)]
            if len(live) < len(cpu_list.tasks):
                reclaimed.append((cpu_list, live))
                if not live:
                    free.append(cpu_list)
    if len(free) < wanted:
        raise AllocationError(
            f"pool {pool.name} is full: {len(candidates) - len(free)} of {len(candidates)} "
            f"CPU lists{on} are in use, {wanted} requested")
    first = min(free, key=lambda cl: min(cl.cpus))
    if wanted == 1 and where is None and (len(first.cpus) > 1
                                          or siblings(min(first.cpus)) <= first.cpus):
        # One list of whole cores (or of CPUs the machine does not know): the lowest,
        # without reading the topology. A lone hyperthread goes to the allocator,
        # which keeps cores whole.
        chosen = [first]
    else:
        from kcm.allocate import take_cpu_lists

        by_cpus = {cl.cpus: cl for cl in free}
        sets = take_cpu_lists(topology(), list(by_cpus), wanted,
                              universe=[cl.cpus for cl in candidates])
        chosen = [by_cpus[cpus] for cpus in sets]
    return chosen, frozenset().union(*(cl.cpus for cl in chosen)), reclaimed


def _shared(pool: Pool, request: Request, where: tuple[str, CpuSet] | None) -> Choice:
    if request.explicit_num_cores and request.num_cores != 1:
        raise AllocationError(f"--num-cores applies to exclusive pools; pool {pool.name} is shared")
    candidates = [cl for cl in pool.cpu_lists.values()
                  if (where is None or cl.cpus & where[1]) and cl.unreadable is None]
    if not candidates:
        on = f" on {where[0]}" if where else ""
        raise AllocationError(f"pool {pool.name} has no CPU lists{on}")
    chosen = min(candidates, key=lambda cl: (len(cl.tasks), min(cl.cpus)))
    cpus = chosen.cpus & where[1] if where else chosen.cpus
    return [chosen], cpus, []




Overview = dict[str, tuple[bool, dict[str, CpuSet]]]
"""Pool name -> (exclusive, CPU list name -> CPUs): ``ConfigDir.pools_overview``."""


def lists_overlapping(overview: Overview, pool: str, cpus: CpuSet) -> list[str]:
    """``pool/list`` of every other pool's CPU list that shares a CPU with ``cpus``."""
    return [f"{other}/{name}" for other, (_, lists) in overview.items() if other != pool
            for name, listed in lists.items() if listed & cpus]


def shared_pools(overview: Overview) -> dict[str, CpuSet]:
    """The CPUs of each shared pool (what a workload's control threads may use)."""
    return {name: frozenset().union(*lists.values())
            for name, (exclusive, lists) in overview.items() if not exclusive}
