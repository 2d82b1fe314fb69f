"""The enforcement planner as a table, without root: given the online CPUs, the live
holders (in a container, on the host, several lists) and every container's cpuset now,
which cpusets change, which IRQs move, and which threads violate a held list."""

import pytest

from kcm.enforcement import Holder, plan_cpusets, plan_irqs, violations

ONLINE = frozenset(range(8))
A, B, C = "/kubepods/pod-a/ctr", "/kubepods/pod-b/ctr", "/kubepods/pod-c/ctr"


def cpus(*ids: int) -> frozenset[int]:
    return frozenset(ids)


@pytest.mark.parametrize(("holders", "current", "wanted"), [
    pytest.param([], {A: ONLINE, B: cpus(0, 1)}, {B: ONLINE}, id="nothing-held-widens-back"),
    pytest.param([Holder(frozenset({10, 11}), cpus(2, 6), A)], {A: ONLINE, B: ONLINE},
                 {B: ONLINE - cpus(2, 6)},
                 id="holder-in-a-container-keeps-its-own"),
    pytest.param([Holder(frozenset({10}), cpus(3), None)], {A: ONLINE, B: ONLINE},
                 {A: ONLINE - cpus(3), B: ONLINE - cpus(3)}, id="holder-on-the-host"),
    pytest.param([Holder(frozenset({10}), cpus(2), A), Holder(frozenset({12}), cpus(3), A),
                  Holder(frozenset({14}), cpus(4), B)],
                 {A: ONLINE, B: ONLINE, C: ONLINE},
                 {A: ONLINE - cpus(4), B: ONLINE - cpus(2, 3), C: ONLINE - cpus(2, 3, 4)},
                 id="several-lists-two-containers"),
    pytest.param([Holder(frozenset({10}), ONLINE, A)], {A: ONLINE, B: cpus(1)}, {},
                 id="everything-held-others-keep-what-they-have"),
    pytest.param([Holder(frozenset({10}), cpus(2), A)], {A: ONLINE, B: ONLINE - cpus(2)}, {},
                 id="already-right-changes-nothing"),
])
def test_plan_cpusets(holders, current, wanted):
    assert plan_cpusets(ONLINE, holders, current) == wanted


def test_plan_irqs_moves_off_held_cpus_and_gives_back_on_release():
    held, shared = cpus(2, 3), ONLINE - cpus(2, 3)
    writes, record = plan_irqs({"30": ONLINE, "31": cpus(2), "32": cpus(5)}, {}, held, shared)
    assert writes == {"30": shared, "31": shared}
    assert record == {"30": ONLINE, "31": cpus(2)}
    # Released: the recorded affinities come back, and the record empties.
    now = {"30": shared, "31": shared, "32": cpus(5)}
    writes, record = plan_irqs(now, record, frozenset(), ONLINE)
    assert writes == {"30": ONLINE, "31": cpus(2)} and record == {}


def test_violations_spare_the_holder_its_descendants_its_container_and_its_group():
    holders = [Holder(frozenset({100, 101, 150}), cpus(2), A),  # 150: a group survivor
               Holder(frozenset({200}), cpus(3), None)]  # on the host
    parents = {100: 1, 101: 100, 102: 101, 150: 1, 300: 1, 301: 1, 200: 1, 201: 200}
    cgroups = {100: A, 101: A, 102: A, 150: None, 300: B, 301: A, 200: None, 201: None}
    threads = [
        (102, 102, cpus(2)),   # the workload's grandchild
        (150, 150, cpus(2)),   # what is left of its process group, reparented to init
        (301, 301, ONLINE),    # in the first holder's container: fine on 2, not on 3
        (201, 201, cpus(3)),   # the host holder's child
        (300, 300, ONLINE),    # a stranger allowed on both held lists
        (300, 305, cpus(3)),   # ... and one of its threads on the host holder's list
    ]
    assert violations(threads, holders, parents, cgroups) == [
        (301, 301, cpus(3)), (300, 300, cpus(2)), (300, 305, cpus(3))]
