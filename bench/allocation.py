"""Allocation quality: kcm's packed choice against a naive first-free baseline.

On every machine in tests/data/topologies, a seeded random sequence of requests and
releases runs twice, once choosing with kcm and once taking the first free items in
numeric order (what a topology-blind allocator does). The scenario is the dataplane
case: items are physical cores (the CPU lists of ``init``), requests of 1-4 cores, as
``kcm isolate --num-cores``. (kcm hands out whole cores only, so no request can split a
core with another workload; the column stays as the check of that.)

Reported per request: mean NUMA nodes, L3 caches and sockets spanned, and the share
of requests that split a physical core or span more NUMA nodes than needed.
"""

import random
import statistics
import tempfile
from pathlib import Path

from kcm.allocate import take_cpu_lists
from kcm.sysfs import read_topology
from kcm.topology import Topology
from tests.machines import REAL_MACHINES, build_sysfs, load_machine

STEPS = 2000


def machine_topology(name: str) -> Topology:
    root = Path(tempfile.mkdtemp(prefix="kcm-bench-"))
    build_sysfs(load_machine(name), root)
    return read_topology(str(root / "sys"), str(root / "proc"))


def spans(topology: Topology, cpus) -> tuple[int, int, int]:
    info = [topology.cpus[cpu] for cpu in cpus]
    return (len({c.numa for c in info}), len({c.l3 for c in info}), len({c.socket for c in info}))


def split_cores(topology: Topology, cpus, held_elsewhere) -> int:
    """Cores this request shares with another workload."""
    return sum(1 for core in topology.cores().values()
               if core & cpus and core & held_elsewhere)


def simulate(topology: Topology, chooser: str, seed: int) -> dict:
    rng = random.Random(seed)
    units = sorted(topology.cores().values(), key=min)
    max_request = 4
    free = list(units)
    held: list[frozenset[int]] = []
    rows = []
    for _ in range(STEPS):
        if held and (rng.random() < 0.45 or not free):
            free.extend(held.pop(rng.randrange(len(held))))
            continue
        count = min(rng.randint(1, max_request), len(free))
        if count == 0:
            continue
        if chooser == "naive":
            chosen = sorted(free, key=min)[:count]
        else:
            chosen = take_cpu_lists(topology, free, count, universe=units)
        cpus = frozenset().union(*chosen)
        others = frozenset().union(*(cpu for group in held for cpu in group), frozenset())
        free_cpus = frozenset().union(*free)
        fits_one = any(len(node & free_cpus) >= len(cpus)
                       for node in topology.numa_nodes().values())
        numa, l3, sockets = spans(topology, cpus)
        rows.append((numa, l3, sockets, split_cores(topology, cpus, others) > 0,
                     fits_one and numa > 1))
        held.append(chosen)
        free = [unit for unit in free if unit not in chosen]
    return {
        "numa": statistics.mean(r[0] for r in rows),
        "l3": statistics.mean(r[1] for r in rows),
        "sockets": statistics.mean(r[2] for r in rows),
        "split": 100 * statistics.mean(r[3] for r in rows),
        "extra_numa": 100 * statistics.mean(r[4] for r in rows),
        "requests": len(rows),
    }


def run() -> str:
    lines = [
        "| machine | scenario | allocator | NUMA nodes | L3 caches | sockets "
        "| splits a core % | needless extra NUMA % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in REAL_MACHINES:
        topology = machine_topology(name)
        for chooser in ("naive", "kcm"):
            result = simulate(topology, chooser, seed=7)
            lines.append(
                f"| {name} | cores | {chooser} | {result['numa']:.2f} | "
                f"{result['l3']:.2f} | {result['sockets']:.2f} | {result['split']:.1f} | "
                f"{result['extra_numa']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
