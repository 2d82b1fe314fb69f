"""The choice behind ``kcm isolate``, table-driven on real machines: a pool of CPU lists
(one per physical core, as ``kcm init`` makes them), which lists are held by live or
dead tasks, a request -> the CPU lists granted. ``selection.grant`` runs over
``MemoryStore``, the in-memory twin of the configuration directory."""

from functools import cache
from pathlib import Path
from tempfile import mkdtemp

import pytest

from kcm.cpuset import format_cpulist
from kcm.errors import AllocationError
from kcm.model import Config, CpuList, MemoryStore, Pool, Task
from kcm.selection import Request, grant, release
from kcm.sysfs import read_topology
from kcm.topology import Topology
from tests.machines import build_sysfs, load_machine

LIVE, DEAD = 100, 200  # PIDs of holders: alive, dead


@cache
def machine(name: str) -> Topology:
    root = Path(mkdtemp(prefix="kcm-selection-"))
    build_sysfs(load_machine(name), root)
    return read_topology(str(root / "sys"), str(root / "proc"))


def cores(topo: Topology) -> list[frozenset[int]]:
    return sorted(topo.cores().values(), key=min)


def store_for(topo: Topology, live=(), dead=()) -> MemoryStore:
    """One exclusive pool with a CPU list per core; ``live``/``dead``: cores held."""
    lists = {}
    for core in cores(topo):
        holder = [Task(LIVE)] if core in live else [Task(DEAD)] if core in dead else []
        lists[format_cpulist(core)] = CpuList(format_cpulist(core), core, holder)
    return MemoryStore(Config("/mem", {"dataplane": Pool("dataplane", True, lists)}))


def l3_cores(topo: Topology, index: int) -> list[frozenset[int]]:
    cache_cpus = list(topo.l3_caches().values())[index]
    return [core for core in cores(topo) if core <= cache_cpus]


def node_cores(topo: Topology, node: int) -> list[frozenset[int]]:
    return [core for core in cores(topo) if core <= topo.numa_nodes()[node]]


def socket_cores(topo: Topology, socket: int) -> list[frozenset[int]]:
    return [core for core in cores(topo) if core <= topo.sockets()[socket]]


# (machine, cores held live, cores held by the dead, request, expected cores granted)
TABLE = [
    ("amd-ryzen5-1600", lambda t: [], lambda t: [], dict(num_cores=1),
     lambda t: cores(t)[:1]),
    ("amd-ryzen5-1600", lambda t: [], lambda t: [], dict(num_cores=3),
     lambda t: l3_cores(t, 0)),
    # A core of the first L3 busy: three cores go to the whole second L3, not 1-3.
    ("amd-ryzen5-1600", lambda t: cores(t)[:1], lambda t: [], dict(num_cores=3),
     lambda t: l3_cores(t, 1)),
    # Free lists first; only a full pool reclaims the list of a dead holder.
    ("amd-ryzen5-1600", lambda t: cores(t)[1:], lambda t: cores(t)[:1], dict(num_cores=1),
     lambda t: cores(t)[:1]),
    # One core of the first CCX busy: the next whole CCX of the same NUMA node.
    ("amd-epyc-7402-2s-nps1", lambda t: l3_cores(t, 0)[:1], lambda t: [],
     dict(num_cores=3), lambda t: l3_cores(t, 1)),
    # Two free cores left on node 0: a four-core request goes whole to node 1.
    ("intel-xeon-gold6130-2s-noht", lambda t: node_cores(t, 0)[:14], lambda t: [],
     dict(num_cores=4), lambda t: node_cores(t, 1)[:4]),
    # Eight cores on a four-node Threadripper: exactly one NUMA node.
    ("amd-threadripper-2990wx", lambda t: [], lambda t: [], dict(num_cores=8),
     lambda t: node_cores(t, 0)),
    ("intel-xeon-gold6230-2s-snc2", lambda t: [], lambda t: [], dict(numa_node=1),
     lambda t: node_cores(t, 1)[:1]),
    ("intel-xeon-l5640-2s", lambda t: [], lambda t: [], dict(num_cores=2, socket=1),
     lambda t: socket_cores(t, 1)[:2]),
    # Node 2 of the 4-socket X7550 spans two sockets; a socket request stays on one.
    ("intel-xeon-x7550-4s", lambda t: [], lambda t: [], dict(num_cores=4, socket=3),
     lambda t: socket_cores(t, 3)[:4]),
]


@pytest.mark.parametrize("name, live, dead, asked, expected", TABLE)
def test_the_lists_granted(name, live, dead, asked, expected):
    topo = machine(name)
    store = store_for(topo, live(topo), dead(topo))
    task = Task(300)
    cpus, held, reclaimed = grant(store, Request("dataplane", **asked), task,
                                  lambda t: t.pid != DEAD, lambda: topo)
    want = expected(topo)
    assert held == [format_cpulist(core) for core in want]
    assert cpus == frozenset().union(*want)
    assert reclaimed == [format_cpulist(core) for core in dead(topo)]
    lists = store.config.pool("dataplane").cpu_lists
    assert all(task in lists[name].tasks for name in held)
    assert all(not lists[format_cpulist(core)].tasks or core in want for core in dead(topo))


def test_release_gives_back_only_this_tasks_lists():
    topo = machine("amd-ryzen5-1600")
    store = store_for(topo, live=cores(topo)[:1])
    first, second = Task(301), Task(302)
    _, held_first, _ = grant(store, Request("dataplane", num_cores=2), first,
                             lambda t: True, lambda: topo)
    _, held_second, _ = grant(store, Request("dataplane"), second, lambda t: True, lambda: topo)
    release(store, "dataplane", held_first, first)
    lists = store.config.pool("dataplane").cpu_lists
    assert all(not lists[name].tasks for name in held_first)
    assert [lists[name].tasks for name in held_second] == [[second]]
    assert lists[format_cpulist(cores(topo)[0])].tasks == [Task(LIVE)]


def test_a_full_pool_and_an_impossible_place_are_refused():
    topo = machine("intel-xeon-l5640-2s")
    store = store_for(topo, live=socket_cores(topo, 1))
    with pytest.raises(AllocationError, match="pool dataplane is full: 6 of 6 CPU lists on "
                                              "socket 1 are in use, 1 requested"):
        grant(store, Request("dataplane", socket=1), Task(1), lambda t: True, lambda: topo)
    with pytest.raises(AllocationError, match="this node has no NUMA node 7"):
        grant(store, Request("dataplane", numa_node=7), Task(1), lambda t: True, lambda: topo)
    assert store.writes == 0


def test_the_shared_pool_takes_the_least_loaded_list_and_narrows_to_the_numa_node():
    topo = machine("intel-xeon-gold6130-2s-noht")
    node0, node1 = topo.numa_nodes()[0], topo.numa_nodes()[1]
    busy = CpuList(format_cpulist(node0), node0, [Task(1), Task(2)])
    quiet = CpuList(format_cpulist(node1), node1, [Task(3)])
    store = MemoryStore(Config("/mem", {"infra": Pool("infra", False, {
        busy.name: busy, quiet.name: quiet})}))
    cpus, held, _ = grant(store, Request("infra"), Task(4), lambda t: True, lambda: topo)
    assert (cpus, held) == (node1, [quiet.name])
    both = CpuList(format_cpulist(topo.online), topo.online)
    store = MemoryStore(Config("/mem", {"infra": Pool("infra", False, {both.name: both})}))
    cpus, _, _ = grant(store, Request("infra", numa_node=0), Task(5), lambda t: True,
                       lambda: topo)
    assert cpus == node0
