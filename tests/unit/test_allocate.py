"""CPU selection: the kubelet's documented choices on its own kinds of machine,
the cases where kcm must do better, properties on the real machines, and the
default pool split of ``kcm init``."""

from functools import cache
from pathlib import Path
from tempfile import mkdtemp

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kcm.allocate import plan_pools, take_cores, take_cpu_lists, take_cpus
from kcm.errors import AllocationError, KcmError
from kcm.topology import Topology, read_topology
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


def all_cpus(topo: Topology) -> set[int]:
    return set(topo.online)


def numa_span(topo: Topology, cpus) -> int:
    return len(topo.numa_of(cpus))


def split_cores(topo: Topology, cpus) -> int:
    return sum(1 for core in topo.cores().values() if core & cpus and not core <= cpus)


class TestKubeletBehaviour:
    def test_one_cpu_takes_the_lowest(self):
        assert take_cpus(single_socket_ht(), all_cpus(single_socket_ht()), 1) == {0}

    def test_two_cpus_take_one_whole_core(self):
        assert take_cpus(single_socket_ht(), all_cpus(single_socket_ht()), 2) == {0, 4}

    def test_a_free_sibling_is_taken_before_breaking_a_core(self):
        topo = single_socket_ht()
        assert take_cpus(topo, all_cpus(topo) - {4}, 1) == {0}

    def test_whole_core_preferred_over_two_half_cores(self):
        topo = single_socket_ht()
        assert take_cpus(topo, all_cpus(topo) - {4, 5}, 2) == {2, 6}

    def test_three_cpus_are_a_core_and_a_thread(self):
        chosen = take_cpus(single_socket_ht(), all_cpus(single_socket_ht()), 3)
        assert chosen == {0, 4, 1}

    def test_a_whole_socket_is_taken_when_the_request_covers_it(self):
        topo = dual_socket_ht()
        assert take_cpus(topo, all_cpus(topo), 12) == topo.sockets()[0]

    def test_the_free_socket_is_taken_when_the_other_is_in_use(self):
        topo = dual_socket_ht()
        assert take_cpus(topo, all_cpus(topo) - {0}, 12) == topo.sockets()[1]

    def test_socket_plus_core(self):
        topo = dual_socket_ht()
        chosen = take_cpus(topo, all_cpus(topo), 14)
        assert topo.sockets()[0] <= chosen
        assert split_cores(topo, chosen) == 0

    def test_a_whole_numa_node_when_the_request_equals_it(self):
        topo = dual_socket_multi_numa()
        assert take_cpus(topo, all_cpus(topo), 10) == topo.numa_nodes()[0]

    def test_a_whole_l3_when_the_request_equals_it(self):
        topo = many_l3_per_numa()
        free = all_cpus(topo) - {0}
        chosen = take_cpus(topo, free, 8)
        assert chosen in set(topo.l3_caches().values())
        assert 0 not in chosen and 16 not in chosen

    def test_distribute_over_numa_nodes_when_one_cannot_hold_it(self):
        topo = dual_socket_multi_numa()
        chosen = take_cpus(topo, all_cpus(topo), 16, strategy="spread")
        per_node = sorted(len(cpus & chosen) for cpus in topo.numa_nodes().values())
        assert per_node == [0, 0, 8, 8]
        assert split_cores(topo, chosen) == 0


class TestBetterThanKubelet:
    def test_the_request_goes_to_the_node_that_holds_it_whole(self):
        """The kubelet takes whole cores emptiest-node-first: 2 from node 0, 1 from
        node 1. kcm keeps the request on one node."""
        topo = dual_socket_multi_numa()
        node0 = topo.numa_nodes()[0]
        free = all_cpus(topo) - {0, 1, 2, 20, 21, 22}  # three of node 0's five cores
        assert len(free & node0) == 4
        chosen = take_cpus(topo, free, 6)
        assert numa_span(topo, chosen) == 1

    def test_fragments_are_filled_within_the_best_l3(self):
        topo = many_l3_per_numa()
        chosen = take_cpus(topo, all_cpus(topo), 4)
        assert len({topo.cpus[c].l3 for c in chosen}) == 1


class TestNoAnswer:
    def test_more_than_available(self):
        with pytest.raises(AllocationError, match="requested 9 CPUs but only 8"):
            take_cpus(single_socket_ht(), all_cpus(single_socket_ht()), 9)

    def test_unknown_cpus(self):
        with pytest.raises(AllocationError, match="not online"):
            take_cpus(single_socket_ht(), {0, 99}, 1)

    def test_negative(self):
        with pytest.raises(KcmError):
            take_cores(single_socket_ht(), list(single_socket_ht().cores().values()), -1)

    def test_unknown_strategy(self):
        with pytest.raises(AllocationError, match="unknown strategy"):
            take_cpus(single_socket_ht(), all_cpus(single_socket_ht()), 1, strategy="random")

    def test_lists_with_offline_cpus(self):
        with pytest.raises(AllocationError, match="not online"):
            take_cpu_lists(single_socket_ht(), [frozenset({0, 64})], 1)

    def test_zero_is_empty(self):
        assert take_cpus(single_socket_ht(), all_cpus(single_socket_ht()), 0) == set()


@st.composite
def requests(draw):
    name = draw(st.sampled_from(REAL_MACHINES))
    topo = topology(name)
    online = sorted(topo.online)
    free = draw(st.sets(st.sampled_from(online), min_size=1))
    count = draw(st.integers(min_value=1, max_value=len(free)))
    strategy = draw(st.sampled_from(["packed", "spread"]))
    return topo, frozenset(free), count, strategy


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_properties_on_real_machines(request):
    topo, free, count, strategy = request
    chosen = take_cpus(topo, free, count, strategy)
    assert len(chosen) == count
    assert chosen <= free
    fits_one = any(len(node & free) >= count for node in topo.numa_nodes().values())
    if fits_one:
        assert numa_span(topo, chosen) == 1
    sizes = {len(core) for core in topo.cores().values()}
    if len(sizes) == 1 and count % next(iter(sizes)) == 0:
        whole = [core for core in topo.cores().values() if core <= free]
        whole_fits_one = any(
            sum(len(core) for core in whole if core <= node) >= count
            for node in topo.numa_nodes().values())
        if whole_fits_one or (not fits_one and sum(map(len, whole)) >= count):
            assert split_cores(topo, chosen) == 0


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(REAL_MACHINES), st.data())
def test_core_requests_are_exact_and_whole(name, data):
    topo = topology(name)
    cores = list(topo.cores().values())
    free = data.draw(st.lists(st.sampled_from(cores), min_size=1, unique=True))
    count = data.draw(st.integers(min_value=0, max_value=len(free)))
    chosen = take_cores(topo, free, count)
    assert len(chosen) == count
    assert set(chosen) <= set(free)


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
