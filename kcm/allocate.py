"""Topology-aware CPU selection: pure functions over a Topology, no I/O.

One packer serves two kinds of item: physical cores (``take_cores``, used by ``init``)
and a pool's CPU lists (``take_cpu_lists``, used by ``isolate --num-cores`` and
``--socket-id``/``--numa-node``). Items are whole: kcm never hands out a lone thread of a
core. They are grouped by the machine's levels from the largest unit to the smallest
(socket or NUMA node, whichever is larger, then the other, then the L3 cache). At each
level:

1. whole groups are taken first while the request still covers one;
2. the rest goes to the single group that holds it with the deepest fit (the
   request fits in one NUMA node *and* one L3 cache beats one NUMA node only),
   then the one with the fewest free items (fill fragments before breaking whole
   units), then the lowest id;
3. when no single group holds it, the groups with the most free items are used
   until one does, so the request spans as few groups as possible.

The kubelet's static policy takes whole sockets/NUMA nodes, then whole cores from
the emptiest-first groups, which can split a request over two NUMA nodes while one
could hold it; step 2 is where kcm chooses better.
"""

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

from kcm.cpuset import CpuSet, format_cpulist
from kcm.errors import AllocationError
from kcm.topology import Topology, l3_key

Strategy = Literal["packed", "spread"]
STRATEGIES: tuple[Strategy, ...] = ("packed", "spread")
Item = frozenset[int]
LevelKey = Callable[[Item], Hashable]

_MAX_SPREAD_COMBINATIONS = 5000


def take_cores(topology: Topology, available: Iterable[CpuSet], count: int,
               **options) -> list[CpuSet]:
    """``count`` of the ``available`` physical cores (each a set of its threads); the
    options of ``take_cpu_lists`` (strategy, prefer_high, min_numa_nodes)."""
    return take_cpu_lists(topology, available, count, universe=topology.cores().values(),
                          unit="cores", **options)


def take_cpu_lists(
    topology: Topology,
    available: Iterable[CpuSet],
    count: int,
    strategy: Strategy = "packed",
    prefer_high: bool = False,
    min_numa_nodes: int = 1,
    universe: Iterable[CpuSet] | None = None,
    unit: str = "CPU lists",
) -> list[CpuSet]:
    """``count`` of the ``available`` CPU lists, chosen as whole items.

    ``universe`` is every list there is (free or not), which tells a whole group
    from a fragment; it defaults to ``available``.
    """
    items = [frozenset(item) for item in available]
    whole = items if universe is None else [frozenset(item) for item in universe]
    for item in whole:
        if not item <= topology.online:
            raise AllocationError(
                f"{unit} {format_cpulist(item)} has CPUs that are not online on this machine "
                f"({format_cpulist(item - topology.online)})"
            )
    chosen = _take(
        topology, items, whole, _levels(topology), count, strategy, unit, prefer_high,
        min_numa_nodes,
    )
    return sorted(chosen, key=min)


def _take(
    topology: Topology,
    items: list[Item],
    universe: list[Item],
    levels: list[LevelKey],
    count: int,
    strategy: Strategy,
    unit: str,
    prefer_high: bool,
    min_numa_nodes: int,
) -> list[Item]:
    if strategy not in STRATEGIES:
        raise AllocationError(f"unknown strategy {strategy!r} (use packed or spread)")
    if count < 0:
        raise AllocationError(f"cannot take a negative number of {unit} ({count})")
    if count > len(items):
        raise AllocationError(f"requested {count} {unit} but only {len(items)} are available")
    packer = _Packer(levels, universe, prefer_high)
    if strategy == "packed":
        return packer.pack(items, count)
    numa_of = {cpu.id: cpu.numa for cpu in topology.cpus.values()}
    return packer.spread(items, count, lambda item: _key(item, numa_of.__getitem__),
                         min_numa_nodes)


def _key(item: Item, key_of: Callable[[int], Hashable]) -> Hashable:
    keys = {key_of(cpu) for cpu in item}
    return next(iter(keys)) if len(keys) == 1 else tuple(sorted(keys, key=repr))


def _levels(topology: Topology) -> list[LevelKey]:
    """Socket, NUMA and L3 groupings ordered from the largest unit to the smallest."""
    cpus = topology.cpus
    socket: LevelKey = lambda item: _key(item, lambda c: cpus[c].socket)  # noqa: E731
    numa: LevelKey = lambda item: _key(item, lambda c: cpus[c].numa)  # noqa: E731
    l3: LevelKey = lambda item: _key(item, lambda c: l3_key(cpus[c]))  # noqa: E731
    sized = [
        (len(topology.sockets()), 0, socket),
        (len(topology.numa_nodes()), 1, numa),
        (len(topology.l3_caches()), 2, l3),
    ]
    return [level for _, _, level in sorted(sized, key=lambda entry: entry[:2])]


@dataclass
class _Group:
    path: tuple
    members: list[Item]

    @property
    def first(self) -> int:
        return min(min(item) for item in self.members)

    @property
    def last(self) -> int:
        return max(max(item) for item in self.members)


class _Packer:
    def __init__(self, levels: list[LevelKey], universe: Sequence[Item], prefer_high: bool):
        self.levels = levels
        self.prefer_high = prefer_high
        self.whole_size: dict[tuple, int] = {}
        for item in universe:
            path: tuple = ()
            for level in levels:
                path = (*path, level(item))
                self.whole_size[path] = self.whole_size.get(path, 0) + 1

    def _id_order(self, cpus_first: int, cpus_last: int) -> int:
        return -cpus_last if self.prefer_high else cpus_first

    def _groups(self, items: list[Item], depth: int, path: tuple) -> list[_Group]:
        grouped: dict[Hashable, list[Item]] = {}
        for item in items:
            grouped.setdefault(self.levels[depth](item), []).append(item)
        groups = [_Group((*path, key), members) for key, members in grouped.items()]
        groups.sort(key=lambda group: self._id_order(group.first, group.last))
        return groups

    def pack(self, items: list[Item], count: int, depth: int = 0, path: tuple = ()) -> list[Item]:
        if count == 0:
            return []
        if count >= len(items):
            return list(items)
        if depth == len(self.levels):
            ordered = sorted(items, key=lambda item: self._id_order(min(item), max(item)))
            return ordered[:count]
        groups = self._groups(items, depth, path)
        taken: list[Item] = []
        rest: list[_Group] = []
        for group in groups:
            size = len(group.members)
            if size == self.whole_size.get(group.path) and size <= count - len(taken):
                taken.extend(group.members)
            else:
                rest.append(group)
        remaining = count - len(taken)
        while remaining > 0:
            fits = [group for group in rest if len(group.members) >= remaining]
            if fits:
                best = max(fits, key=lambda group: (
                    self._fit_depth(group.members, remaining, depth + 1, group.path),
                    -len(group.members),
                    -self._id_order(group.first, group.last),
                ))
                taken.extend(self.pack(best.members, remaining, depth + 1, best.path))
                break
            largest = max(rest, key=lambda group: (
                len(group.members), -self._id_order(group.first, group.last)))
            rest.remove(largest)
            taken.extend(largest.members)
            remaining -= len(largest.members)
        return taken

    def _fit_depth(self, items: list[Item], count: int, depth: int, path: tuple) -> int:
        """How many levels further down one group still holds ``count`` items."""
        if depth == len(self.levels):
            return 0
        return max(
            (1 + self._fit_depth(group.members, count, depth + 1, group.path)
             for group in self._groups(items, depth, path) if len(group.members) >= count),
            default=0,
        )

    def spread(self, items: list[Item], count: int, numa: LevelKey, min_nodes: int) -> list[Item]:
        """Balance ``count`` over the fewest NUMA nodes (at least ``min_nodes``) that
        hold it, choosing the nodes that leave free items most even; pack within each."""
        if count == 0:
            return []
        nodes: dict[Hashable, list[Item]] = {}
        for item in items:
            nodes.setdefault(numa(item), []).append(item)
        order = sorted(nodes, key=lambda node: self._id_order(
            min(min(i) for i in nodes[node]), max(max(i) for i in nodes[node])))
        for width in range(max(1, min(min_nodes, len(nodes), count)), len(nodes) + 1):
            best = self._best_split(nodes, order, count, width)
            if best is not None:
                taken: list[Item] = []
                for node, share in best:
                    taken.extend(self.pack(nodes[node], share))
                return taken
        return self.pack(items, count)

    def _best_split(self, nodes: dict, order: list, count: int, width: int):
        base, extra = divmod(count, width)
        best_key, best = None, None
        for index, combo in enumerate(combinations(order, width)):
            if index >= _MAX_SPREAD_COMBINATIONS:
                break
            by_free = sorted(combo, key=lambda node: -len(nodes[node]))
            shares = {node: base + (1 if rank < extra else 0) for rank, node in enumerate(by_free)}
            if any(len(nodes[node]) < share for node, share in shares.items()):
                continue
            left = [len(nodes[node]) - shares.get(node, 0) for node in order]
            mean = sum(left) / len(left)
            key = sum((value - mean) ** 2 for value in left)
            if best_key is None or key < best_key:
                best_key, best = key, [(node, shares[node]) for node in combo]
        return best


@dataclass(frozen=True)
class PoolPlan:
    name: str
    exclusive: bool
    cpu_lists: tuple[CpuSet, ...]


def plan_pools(
    topology: Topology,
    num_dp_cores: int = 4,
    num_cp_cores: int = 1,
    dp_mode: Strategy = "packed",
    cp_mode: Strategy = "packed",
) -> list[PoolPlan]:
    """The default pools of ``kcm init``: dataplane (exclusive, one list per core),
    controlplane (shared, one list) and infra (shared, every remaining core).

    With isolated cores on the node, dataplane and controlplane come only from fully
    isolated cores and infra gets every core that is not; isolated cores left over
    stay out of the pools (the scheduler does not balance load onto them). Without,
    dataplane and controlplane are chosen from the highest ids so that infra keeps
    the lowest-numbered cores, where CPU 0 does the kernel's housekeeping. A pool
    asked for with zero cores is left out.
    """
    if num_dp_cores < 0 or num_cp_cores < 0:
        raise AllocationError("core counts must not be negative")
    cores = topology.cores()
    isolated = topology.isolated_cores()
    candidates = set(isolated.values()) if isolated else set(cores.values())
    wanted = num_dp_cores + num_cp_cores + (0 if isolated else 1)
    if len(candidates) < wanted:
        where = f"{len(isolated)} fully isolated cores" if isolated else "no isolated cores"
        raise AllocationError(
            f"requested {num_dp_cores} dataplane + {num_cp_cores} controlplane cores"
            f"{'' if isolated else ' + 1 infra core'}, but this node has {len(cores)} "
            f"physical cores ({where}; {len(topology.isolated)} isolated CPUs)"
        )
    plans = []
    dataplane = _choose_cores(topology, candidates, num_dp_cores, dp_mode)
    candidates -= set(dataplane)
    if dataplane:
        plans.append(PoolPlan("dataplane", True, tuple(dataplane)))
    controlplane = _choose_cores(topology, candidates, num_cp_cores, cp_mode)
    candidates -= set(controlplane)
    if controlplane:
        plans.append(PoolPlan("controlplane", False, (frozenset().union(*controlplane),)))
    infra_cores = [core for core in cores.values() if core not in isolated.values()]
    if not isolated:
        infra_cores = sorted(candidates, key=min)
    if not infra_cores:
        raise AllocationError("every core of this node is isolated: no core is left for infra")
    plans.append(PoolPlan("infra", False, (frozenset().union(*infra_cores),)))
    return plans


def _choose_cores(topology: Topology, candidates: set[CpuSet], count: int,
                  mode: Strategy) -> list[CpuSet]:
    nodes = len({cpu for core in candidates for cpu in topology.numa_of(core)})
    return take_cores(topology, candidates, count, strategy=mode, prefer_high=True,
                      min_numa_nodes=nodes if mode == "spread" else 1)
