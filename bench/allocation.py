"""Allocation quality: kcm's packed choice against a naive first-free baseline and
against kcm's allocator before the whole-cores-first change.

On every machine in tests/data/topologies, a seeded random sequence of requests and
releases runs once per allocator. Two scenarios:

- ``cores``: the dataplane pool of ``init``, one CPU list per physical core, requests
  of 1-4 lists (``kcm isolate --num-cores``);
- ``threads``: a CMK-style pool of one CPU list per hyperthread, requests of 1-8
  threads, the case the kubelet's static policy serves.

Reported per request: mean NUMA nodes, L3 caches and sockets spanned; the share of
requests that span more NUMA nodes than the fewest that hold them, and that cover
more cores in part than their odd remainder needs (a core covered in part shares its
execution units with another workload); and how often an even request found fewer
whole free cores than it needed although enough threads were free (how well earlier
choices kept cores whole: a whole-cores-only request would be refused).
"""

import importlib.util
import random
import statistics
import subprocess
import tempfile
from pathlib import Path

from kcm.allocate import take_cpu_lists
from kcm.sysfs import read_topology
from kcm.topology import Topology
from tests.machines import REAL_MACHINES, build_sysfs, load_machine

STEPS = 2000
BEFORE = "7014998"
"""The commit whose allocator is the "before" column (lone threads by L3 fullness)."""
ROOT = Path(__file__).resolve().parent.parent


def machine_topology(name: str) -> Topology:
    root = Path(tempfile.mkdtemp(prefix="kcm-bench-"))
    build_sysfs(load_machine(name), root)
    return read_topology(str(root / "sys"), str(root / "proc"))


def allocator_before():
    """``take_cpu_lists`` as it was at BEFORE, or None outside a git checkout."""
    try:
        source = subprocess.run(["git", "show", f"{BEFORE}:kcm/allocate.py"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp(prefix="kcm-bench-")) / "allocate_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("allocate_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.take_cpu_lists


def spans(topology: Topology, cpus) -> tuple[int, int, int]:
    info = [topology.cpus[cpu] for cpu in cpus]
    return (len({c.numa for c in info}), len({c.l3 for c in info}), len({c.socket for c in info}))


def split_cores(topology: Topology, cpus) -> int:
    """Cores the request covers only in part."""
    return sum(1 for core in topology.cores().values() if core & cpus and not core <= cpus)


def simulate(topology: Topology, units: list, max_request: int, choose, seed: int) -> dict:
    rng = random.Random(seed)
    cores = list(topology.cores().values())
    threads = max(len(core) for core in cores)
    free = list(units)
    held: list[list[frozenset[int]]] = []
    rows = []
    for _ in range(STEPS):
        if held and (rng.random() < 0.45 or not free):
            free.extend(held.pop(rng.randrange(len(held))))
            continue
        count = min(rng.randint(1, max_request), len(free))
        if count == 0:
            continue
        free_cpus = frozenset().union(*free)
        short_of_cores = False
        if len(units[0]) == 1 and count % threads == 0:
            whole = sum(1 for core in cores if core <= free_cpus)
            short_of_cores = whole < count // threads
        chosen = choose(topology, free, count, units)
        cpus = frozenset().union(*chosen)
        sizes = sorted((len(node & free_cpus) for node in topology.numa_nodes().values()),
                       reverse=True)
        fewest, room = 0, 0
        while room < len(cpus):
            room += sizes[fewest]
            fewest += 1
        numa, l3, sockets = spans(topology, cpus)
        odd = 1 if len(units[0]) == 1 and count % threads else 0
        rows.append((numa, l3, sockets, split_cores(topology, cpus) > odd, numa > fewest,
                     short_of_cores, len(units[0]) == 1 and count % threads == 0))
        held.append(chosen)
        free = [unit for unit in free if unit not in chosen]
    even = [r for r in rows if r[6]]
    return {
        "numa": statistics.mean(r[0] for r in rows),
        "l3": statistics.mean(r[1] for r in rows),
        "sockets": statistics.mean(r[2] for r in rows),
        "split": 100 * statistics.mean(r[3] for r in rows),
        "extra_numa": 100 * statistics.mean(r[4] for r in rows),
        "short": f"{sum(r[5] for r in even)} of {len(even)}" if even else "",
    }


def run() -> str:
    before = allocator_before()
    choosers = {"naive": lambda topo, free, count, units: sorted(free, key=min)[:count],
                "kcm": lambda topo, free, count, units: take_cpu_lists(
                    topo, free, count, universe=units)}
    if before:
        choosers["kcm before"] = lambda topo, free, count, units: before(
            topo, free, count, universe=units)
    lines = [
        "| machine | scenario | allocator | NUMA nodes | L3 caches | sockets "
        "| needless extra NUMA % | splits more cores than needed % "
        "| even requests short of whole cores |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in REAL_MACHINES:
        topology = machine_topology(name)
        scenarios = {"cores": (sorted(topology.cores().values(), key=min), 4),
                     "threads": ([frozenset({cpu}) for cpu in sorted(topology.online)], 8)}
        for scenario, (units, max_request) in scenarios.items():
            for label in ("naive", "kcm before", "kcm"):
                if label not in choosers:
                    continue
                result = simulate(topology, units, max_request, choosers[label], seed=7)
                lines.append(
                    f"| {name} | {scenario} | {label} | {result['numa']:.2f} | "
                    f"{result['l3']:.2f} | {result['sockets']:.2f} | "
                    f"{result['extra_numa']:.1f} | {result['split']:.1f} | "
                    f"{result['short']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
