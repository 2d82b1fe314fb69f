"""Topology-aware CPU selection: pure functions over a Topology, no I/O.

One chooser serves every kind of item: physical cores (``take_cores``, used by
``init``) and a pool's CPU lists (``take_cpu_lists``, used by ``isolate``), whether a
list is a lone hyperthread, a whole core or several cores. Items are never cut.

``packed`` ranks every candidate answer by what latency-sensitive workloads need, in
this order:

1. no NUMA node more than the fewest that hold the request;
2. as few physical cores split as possible (a core the answer covers only in part
   shares its execution units with someone else): whole free cores first;
3. as few L3 caches, then as few sockets;
4. keep whole free cores whole: an odd thread left over fills a core that is already
   half used before it breaks a free one;
5. fill fragments before breaking whole units (the NUMA node, then the L3 cache, with
   the fewest free items), then the lowest ids (the highest for ``prefer_high``).

Candidates: every set of that fewest number of NUMA nodes, and within one, each L3
cache that holds the request alone, and whole cores taken across L3 caches in order
of their whole free cores. The kubelet's static policy takes whole sockets/NUMA nodes,
then whole cores from the emptiest-first groups, which can split a request over two
NUMA nodes while one could hold it; rule 1 is where kcm chooses better.

``spread`` balances a request over at least ``min_numa_nodes`` NUMA nodes (``init
--dp-mode=spread``), packing within each.
"""

from collections import namedtuple
from collections.abc import Hashable, Iterable, Sequence
from itertools import combinations

from kcm.cpuset import CpuSet, format_cpulist
from kcm.errors import AllocationError
from kcm.topology import Topology, l3_key

Strategy = str
"""packed or spread (a plain str: ``typing`` costs kcm init milliseconds to import)."""
STRATEGIES: tuple[Strategy, ...] = ("packed", "spread")
Item = frozenset[int]

_MAX_COMBINATIONS = 5000
"""Sets of NUMA nodes (or spread splits) tried at most; beyond, the largest come first."""


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

    ``universe`` is every list there is (free or not), which tells a whole free core
    from a fragment; it defaults to ``available``.
    """
    items = [frozenset(item) for item in available]
    whole = items if universe is None else [frozenset(item) for item in universe]
    for item in [*whole, *items]:
        if not item <= topology.online:
            raise AllocationError(
                f"{unit} {format_cpulist(item)} has CPUs that are not online on this machine "
                f"({format_cpulist(item - topology.online)})"
            )
    if strategy not in STRATEGIES:
        raise AllocationError(f"unknown strategy {strategy!r} (use packed or spread)")
    if count < 0:
        raise AllocationError(f"cannot take a negative number of {unit} ({count})")
    if count > len(items):
        raise AllocationError(f"requested {count} {unit} but only {len(items)} are available")
    packer = _Packer(topology, items, whole, prefer_high)
    if strategy == "packed":
        chosen = packer.pack(items, count)
    else:
        chosen = packer.spread(items, count, min_numa_nodes)
    return sorted(chosen, key=min)


def _key(values: set) -> Hashable:
    """One value, or the sorted tuple of several (an item across groups is a group of
    its own)."""
    return next(iter(values)) if len(values) == 1 else tuple(sorted(values, key=repr))


class _Packer:
    def __init__(self, topology: Topology, free: Sequence[Item], universe: Sequence[Item],
                 prefer_high: bool):
        cpus = topology.cpus
        self.prefer_high = prefer_high
        self.numa = {item: _key({cpus[c].numa for c in item}) for item in (*universe, *free)}
        self.l3 = {item: _key({l3_key(cpus[c]) for c in item}) for item in self.numa}
        self.core = {item: _key({cpus[c].core for c in item}) for item in self.numa}
        self.socket_of = {c: cpu.socket for c, cpu in cpus.items()}
        self.numa_of = {c: cpu.numa for c, cpu in cpus.items()}
        self.l3_of = {c: l3_key(cpu) for c, cpu in cpus.items()}
        self.core_of = {c: cpu.core for c, cpu in cpus.items()}
        self.core_cpus = topology.cores()
        self.core_size: dict[Hashable, int] = {}
        for item in universe:
            self.core_size[self.core[item]] = self.core_size.get(self.core[item], 0) + 1
        free_set = set(free)
        free_per_core = _count(self.core[item] for item in free_set)
        self.whole_cores = {core for core, size in self.core_size.items()
                            if free_per_core.get(core, 0) >= size}
        self.free_in_numa = _count(self.numa[item] for item in free_set)
        self.free_in_l3 = _count(self.l3[item] for item in free_set)

    def _order(self, item: Item) -> int:
        return -max(item) if self.prefer_high else min(item)

    def pack(self, items: list[Item], count: int) -> list[Item]:
        if count == 0:
            return []
        if count >= len(items):
            return list(items)
        nodes: dict[Hashable, list[Item]] = {}
        for item in sorted(items, key=self._order):
            nodes.setdefault(self.numa[item], []).append(item)
        best: tuple | None = None
        for region in self._numa_sets(nodes, count):
            for answer in self._answers(region, count):
                cost = self._cost(answer)
                if best is None or cost < best[0]:
                    best = (cost, answer)
        assert best is not None
        return best[1]

    def _numa_sets(self, nodes: dict[Hashable, list[Item]], count: int):
        """The items of each set of the fewest NUMA nodes that hold ``count``."""
        sizes = sorted((len(members) for members in nodes.values()), reverse=True)
        fewest, held = 0, 0
        while held < count:
            held += sizes[fewest]
            fewest += 1
        names = sorted(nodes, key=lambda node: -len(nodes[node]))
        for index, combo in enumerate(combinations(names, fewest)):
            if index >= _MAX_COMBINATIONS:
                break
            if sum(len(nodes[node]) for node in combo) >= count:
                yield sorted((item for node in combo for item in nodes[node]), key=self._order)

    def _answers(self, region: list[Item], count: int):
        """Candidate answers within one set of NUMA nodes: each L3 cache that holds the
        request alone, and whole cores across L3 caches, most whole cores first."""
        caches: dict[Hashable, list[Item]] = {}
        for item in region:
            caches.setdefault(self.l3[item], []).append(item)
        for members in caches.values():
            if len(members) >= count:
                yield self._fill(members, count)
        if len(caches) > 1:
            def whole_free(cache: Hashable) -> int:
                return sum(1 for item in caches[cache] if self.core[item] in self.whole_cores)

            ordered = sorted(caches, key=lambda cache: (-whole_free(cache), -len(caches[cache])))
            yield self._fill([item for cache in ordered for item in caches[cache]], count)

    def _fill(self, items: list[Item], count: int) -> list[Item]:
        """``count`` of ``items`` (in preference order): whole free cores while the
        request covers one, then what is left from a core already in part used (in an
        L3 cache already chosen first), breaking a free core only when none has room."""
        cores: dict[Hashable, list[Item]] = {}
        for item in items:
            cores.setdefault(self.core[item], []).append(item)
        taken: list[Item] = []
        for core, members in cores.items():
            if core in self.whole_cores and len(members) <= count - len(taken):
                taken.extend(members)
        used_caches = {self.l3[item] for item in taken}
        chosen = set(taken)
        while len(taken) < count:
            remaining = count - len(taken)
            spare = [(core, [m for m in members if m not in chosen])
                     for core, members in cores.items()]
            spare = [(core, members) for core, members in spare if members]
            core, members = min(spare, key=lambda entry: (
                len(entry[1]) < remaining,
                self.l3[entry[1][0]] not in used_caches,
                entry[0] in self.whole_cores,
                len(entry[1]) if len(entry[1]) >= remaining else -len(entry[1]),
            ))
            picked = members[:remaining]
            taken.extend(picked)
            chosen.update(picked)
            used_caches.add(self.l3[picked[0]])
        return taken

    def _cost(self, answer: list[Item]) -> tuple:
        """The rank of an answer: the module's rules in order, smaller is better."""
        cpus = frozenset().union(*answer)
        split = sum(1 for core in {self.core_of[c] for c in cpus}
                    if not self.core_cpus[core] <= cpus)
        per_core = _count(self.core[item] for item in answer)
        broken = sum(1 for core, taken in per_core.items()
                     if core in self.whole_cores and taken < self.core_size[core])
        nodes = {self.numa[item] for item in answer}
        caches = {self.l3[item] for item in answer}
        return (
            len({self.numa_of[c] for c in cpus}),
            split,
            len({self.l3_of[c] for c in cpus}),
            len({self.socket_of[c] for c in cpus}),
            broken,
            sum(self.free_in_numa[node] for node in nodes),
            sum(self.free_in_l3[cache] for cache in caches),
            sorted(self._order(item) for item in answer),
        )

    def spread(self, items: list[Item], count: int, min_nodes: int) -> list[Item]:
        """Balance ``count`` over the fewest NUMA nodes (at least ``min_nodes``) that
        hold it, choosing the nodes that leave free items most even; pack within each."""
        if count == 0:
            return []
        nodes: dict[Hashable, list[Item]] = {}
        for item in sorted(items, key=self._order):
            nodes.setdefault(self.numa[item], []).append(item)
        order = list(nodes)
        for width in range(max(1, min(min_nodes, len(nodes), count)), len(nodes) + 1):
            best = _best_split(nodes, order, count, width)
            if best is not None:
                taken: list[Item] = []
                for node, share in best:
                    taken.extend(self.pack(nodes[node], share))
                return taken
        return self.pack(items, count)


def _best_split(nodes: dict, order: list, count: int, width: int):
    """[(node, share)] over ``width`` nodes that leaves the free items most even."""
    base, extra = divmod(count, width)
    best_key, best = None, None
    for index, combo in enumerate(combinations(order, width)):
        if index >= _MAX_COMBINATIONS:
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


def _count(keys: Iterable[Hashable]) -> dict[Hashable, int]:
    counts: dict[Hashable, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return counts


class PoolPlan(namedtuple("PoolPlan", "name exclusive cpu_lists")):
    """A pool init creates: its name, whether exclusive, its CPU lists."""

    __slots__ = ()


def split_by_socket(plan: PoolPlan, topology: Topology) -> PoolPlan:
    """The plan with each CPU list cut at socket boundaries (CMK v1.4.1's socket
    layout: a shared pool gets one list per socket; a core never spans two)."""
    sockets = topology.sockets()
    lists = [cpus & members for cpus in plan.cpu_lists for members in sockets.values()
             if cpus & members]
    return plan._replace(cpu_lists=lists)


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
