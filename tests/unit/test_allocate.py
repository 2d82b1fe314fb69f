"""CPU selection: the kubelet's documented choices on its own kinds of machine,
the cases where kcm must do better, properties on the real machines, and the
default pool split of ``kcm init``."""

from functools import cache
from pathlib import Path
from tempfile import mkdtemp

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kcm.allocate import plan_pools, take_cores, take_cpu_lists
from kcm.errors import AllocationError, KcmError
from kcm.sysfs import read_topology
from kcm.topology import Topology
from tests.machines import REAL_MACHINES, build_sysfs, load_machine, synthetic_machine


@cache
def topology(name: str, **shape) -> Topology:
    machine = synthetic_machine(name, **shape) if shape else load_machine(name)
    root = Path(mkdtemp(prefix="kcm-topo-"))
    build_sysfs(machine, root)
    return read_topology(str(root / "sys"), str(root / "proc"))


# The kubelet's test machines (cpu_assignment_test.go), rebuilt as sysfs trees.
def single_socket_ht() -> Topology:  # 4 cores, siblings i / i+4
    return topology("single-socket-ht", cores_per_l3=4)


def dual_socket_ht() -> Topology:  # 2 sockets x 6 cores, siblings i / i+12
    return topology("dual-socket-ht", sockets=2, cores_per_l3=6)


def dual_socket_multi_numa() -> Topology:  # 2 sockets x 2 NUMA nodes x 5 cores
    return topology("dual-socket-multi-numa", sockets=2, numa_per_socket=2, cores_per_l3=5)


def many_l3_per_numa() -> Topology:  # EPYC-like: 2 sockets, 4 L3 of 4 cores per NUMA node
    return topology("many-l3", sockets=2, l3_per_numa=4, cores_per_l3=4)


def numa_span(topo: Topology, cpus) -> int:
    return len(topo.numa_of(cpus))


def cores_of(topo: Topology) -> list[frozenset[int]]:
    return list(topo.cores().values())


def union(chosen) -> frozenset[int]:
    return frozenset().union(*chosen)


class TestKubeletBehaviour:
    """The kubelet's documented choices (cpu_assignment_test.go), in whole cores: kcm's
    CPU lists are whole cores, and no command hands out a lone thread."""

    def test_one_core_takes_the_lowest(self):
        topo = single_socket_ht()
        assert take_cores(topo, cores_of(topo), 1) == [frozenset({0, 4})]

    def test_a_whole_socket_is_taken_when_the_request_covers_it(self):
        topo = dual_socket_ht()
        assert union(take_cores(topo, cores_of(topo), 6)) == topo.sockets()[0]

    def test_the_free_socket_is_taken_when_the_other_is_in_use(self):
        topo = dual_socket_ht()
        free = [core for core in cores_of(topo) if 0 not in core]
        assert union(take_cores(topo, free, 6)) == topo.sockets()[1]

    def test_socket_plus_core(self):
        topo = dual_socket_ht()
        assert topo.sockets()[0] <= union(take_cores(topo, cores_of(topo), 7))

    def test_a_whole_numa_node_when_the_request_equals_it(self):
        topo = dual_socket_multi_numa()
        assert union(take_cores(topo, cores_of(topo), 5)) == topo.numa_nodes()[0]

    def test_a_whole_l3_when_the_request_equals_it(self):
        topo = many_l3_per_numa()
        free = [core for core in cores_of(topo) if 0 not in core]
        chosen = union(take_cores(topo, free, 4))
        assert chosen in set(topo.l3_caches().values())
        assert 0 not in chosen

    def test_distribute_over_numa_nodes_when_one_cannot_hold_it(self):
        topo = dual_socket_multi_numa()
        chosen = union(take_cores(topo, cores_of(topo), 8, strategy="spread"))
        per_node = sorted(len(cpus & chosen) for cpus in topo.numa_nodes().values())
        assert per_node == [0, 0, 8, 8]


class TestBetterThanKubelet:
    def test_the_request_goes_to_the_node_that_holds_it_whole(self):
        """Node 0 has two free cores, node 1 five: the kubelet takes whole cores
        emptiest-node-first and would split three cores over both; kcm keeps them on
        node 1, the one node that holds the request."""
        topo = dual_socket_multi_numa()
        free = [core for core in cores_of(topo) if not core & {0, 1, 2}]
        chosen = union(take_cores(topo, free, 3))
        assert numa_span(topo, chosen) == 1

    def test_fragments_are_filled_within_the_best_l3(self):
        topo = many_l3_per_numa()
        chosen = union(take_cores(topo, cores_of(topo), 2))
        assert len({topo.cpus[c].l3 for c in chosen}) == 1


def threads_of(topo: Topology) -> list[frozenset[int]]:
    """A pool of one CPU list per hyperthread (the CMK-style layout)."""
    return [frozenset({cpu}) for cpu in sorted(topo.online)]


def split_cores(topo: Topology, cpus) -> int:
    """Physical cores the answer covers only in part."""
    return sum(1 for core in topo.cores().values() if core & cpus and not core <= cpus)


class TestWholeCoresFirst:
    """Lists of one hyperthread each: the answer keeps cores whole where it can."""

    def test_whole_free_cores_beat_lone_threads_in_a_fuller_l3(self):
        topo = many_l3_per_numa()
        first_l3 = sorted(topo.l3_caches().values(), key=min)[0]
        # The first L3 has only lone threads left (one sibling of each core held);
        # the others are entirely free. Four threads: two whole cores, none split.
        held = {min(core) for core in topo.cores().values() if core <= first_l3}
        free = [item for item in threads_of(topo) if not item & held]
        chosen = union(take_cpu_lists(topo, free, 4, universe=threads_of(topo)))
        assert split_cores(topo, chosen) == 0
        assert len({topo.cpus[c].l3 for c in chosen}) == 1

    def test_an_odd_thread_fills_a_half_used_core_in_the_same_l3(self):
        topo = single_socket_ht()  # cores {0,4} {1,5} {2,6} {3,7}
        free = [item for item in threads_of(topo) if item != {0}]
        chosen = union(take_cpu_lists(topo, free, 3, universe=threads_of(topo)))
        assert 4 in chosen and split_cores(topo, chosen) == 1
        assert sum(1 for core in topo.cores().values() if core <= chosen) == 1

    def test_one_thread_takes_the_lone_one_not_a_free_core(self):
        topo = single_socket_ht()
        free = [item for item in threads_of(topo) if item != {2}]
        assert take_cpu_lists(topo, free, 1, universe=threads_of(topo)) == [frozenset({6})]

    def test_no_extra_numa_node_even_when_a_socket_is_freer(self):
        """Socket 0's two nodes have 5 + 5 free threads, socket 1's 8 + 1: thirteen fit
        in two nodes (8 + 5), not in the freer socket plus a third node."""
        topo = dual_socket_multi_numa()
        nodes = [sorted(cpus) for _, cpus in sorted(topo.numa_nodes().items())]
        free_cpus = nodes[0][:5] + nodes[1][:5] + nodes[2][:8] + nodes[3][:1]
        free = [frozenset({cpu}) for cpu in free_cpus]
        chosen = union(take_cpu_lists(topo, free, 13, universe=threads_of(topo)))
        assert numa_span(topo, chosen) == 2

    def test_spread_keeps_an_even_request_in_one_node_that_holds_it(self):
        topo = topology("amd-epyc-7402-2s-nps1")
        for count in (25, 26, 27):
            chosen = union(take_cpu_lists(topo, threads_of(topo), count, strategy="spread"))
            assert numa_span(topo, chosen) == 1, count


@pytest.mark.parametrize("name", REAL_MACHINES)
def test_a_fresh_machine_splits_only_the_odd_remainders_core(name):
    topo = topology(name)
    threads = {len(core) for core in topo.cores().values()}
    node = min(len(cpus) for cpus in topo.numa_nodes().values())
    for count in range(1, node + 1):
        cpus = union(take_cpu_lists(topo, threads_of(topo), count))
        assert numa_span(topo, cpus) == 1
        if len(threads) == 1:
            assert split_cores(topo, cpus) == (1 if count % min(threads) else 0), count


@st.composite
def thread_requests(draw):
    name = draw(st.sampled_from(REAL_MACHINES))
    topo = topology(name)
    free = draw(st.lists(st.sampled_from(threads_of(topo)), min_size=1, unique=True))
    count = draw(st.integers(min_value=1, max_value=min(len(free), 40)))
    return topo, free, count


def fewest_numa_nodes(topo: Topology, free_cpus, count: int) -> int:
    sizes = sorted((len(cpus & free_cpus) for cpus in topo.numa_nodes().values()),
                   reverse=True)
    held = nodes = 0
    while held < count:
        held += sizes[nodes]
        nodes += 1
    return nodes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(thread_requests())
def test_thread_lists_use_the_fewest_numa_nodes_and_whole_cores(request):
    topo, free, count = request
    chosen = take_cpu_lists(topo, free, count, universe=threads_of(topo))
    assert len(chosen) == count and set(chosen) <= set(free)
    cpus, free_cpus = union(chosen), union(free)
    assert numa_span(topo, cpus) == fewest_numa_nodes(topo, free_cpus, count)
    # On a machine with every thread free, an answer in one NUMA node splits at most
    # the one core its odd remainder needs.
    if free_cpus == topo.online and numa_span(topo, cpus) == 1:
        sizes = {len(core) for core in topo.cores().values()}
        if len(sizes) == 1:
            assert split_cores(topo, cpus) <= (1 if count % sizes.pop() else 0)


class TestNoAnswer:
    def test_more_than_available(self):
        topo = single_socket_ht()
        with pytest.raises(AllocationError, match="requested 5 cores but only 4"):
            take_cores(topo, cores_of(topo), 5)

    def test_lists_with_offline_cpus(self):
        with pytest.raises(AllocationError, match="not online"):
            take_cpu_lists(single_socket_ht(), [frozenset({0, 64})], 1)

    def test_negative(self):
        with pytest.raises(KcmError):
            take_cores(single_socket_ht(), cores_of(single_socket_ht()), -1)

    def test_unknown_strategy(self):
        with pytest.raises(AllocationError, match="unknown strategy"):
            take_cores(single_socket_ht(), cores_of(single_socket_ht()), 1, strategy="random")

    def test_zero_is_empty(self):
        assert take_cores(single_socket_ht(), cores_of(single_socket_ht()), 0) == []


@st.composite
def requests(draw):
    name = draw(st.sampled_from(REAL_MACHINES))
    topo = topology(name)
    free = draw(st.lists(st.sampled_from(cores_of(topo)), min_size=1, unique=True))
    count = draw(st.integers(min_value=1, max_value=len(free)))
    strategy = draw(st.sampled_from(["packed", "spread"]))
    return topo, free, count, strategy


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_properties_on_real_machines(request):
    topo, free, count, strategy = request
    chosen = take_cores(topo, free, count, strategy=strategy)
    assert len(chosen) == count
    assert set(chosen) <= set(free)
    if strategy == "packed" and any(sum(1 for core in free if core <= node) >= count
                                    for node in topo.numa_nodes().values()):
        assert numa_span(topo, union(chosen)) == 1


class TestPlanPools:
    def test_the_manuals_example_machine(self):
        topo = topology("xeon-d1541", cores_per_l3=8)
        plans = {plan.name: plan for plan in plan_pools(topo)}
        assert [sorted(c) for c in plans["dataplane"].cpu_lists] == [
            [4, 12], [5, 13], [6, 14], [7, 15]]
        assert [sorted(c) for c in plans["controlplane"].cpu_lists] == [[3, 11]]
        assert [sorted(c) for c in plans["infra"].cpu_lists] == [[0, 1, 2, 8, 9, 10]]
        assert plans["dataplane"].exclusive and not plans["infra"].exclusive

    @pytest.mark.parametrize("name", [n for n in REAL_MACHINES if "m560" not in n])
    @pytest.mark.parametrize("mode", ["packed", "spread"])
    def test_pools_partition_whole_cores(self, name, mode):
        topo = topology(name)
        plans = plan_pools(topo, dp_mode=mode, cp_mode=mode)
        seen: set[int] = set()
        for plan in plans:
            for cpus in plan.cpu_lists:
                assert not cpus & seen
                seen |= cpus
        assert seen == topo.online
        cores = set(topo.cores().values())
        dataplane = next(plan for plan in plans if plan.name == "dataplane")
        assert all(cpus in cores for cpus in dataplane.cpu_lists)
        union = frozenset().union(*dataplane.cpu_lists)
        nodes = numa_span(topo, union)
        if mode == "packed":
            assert nodes == 1
        else:
            assert nodes == min(4, len(topo.numa_nodes()))

    def test_too_few_cores_names_the_counts(self):
        with pytest.raises(AllocationError, match=r"requested 4 dataplane \+ 1 controlplane "
                           r"cores \+ 1 infra core, but this node has 2 physical cores"):
            plan_pools(topology("intel-core-i5-m560-laptop"))
