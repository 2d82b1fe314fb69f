"""Topology discovery on sysfs trees generated from real machines."""

import os
from pathlib import Path

import pytest

from kcm.errors import TopologyError
from kcm.sysfs import read_topology
from kcm.topology import isolcpus_from_cmdline
from tests.machines import REAL_MACHINES, build_sysfs, load_machine, xeon_d1541


def topology_of(machine: dict, tmp_path: Path, **options):
    build_sysfs(machine, tmp_path, **options)
    return read_topology(str(tmp_path / "sys"), str(tmp_path / "proc"))


@pytest.mark.parametrize("name", REAL_MACHINES)
def test_real_machine_matches_its_captured_summary(name, tmp_path):
    machine = load_machine(name)
    summary = machine["summary"]
    topology = topology_of(machine, tmp_path)
    assert len(topology.cpus) == summary["online_cpus"]
    assert len(topology.cores()) == summary["physical_cores_online"]
    assert sorted(topology.sockets()) == sorted(summary["sockets"])
    assert sorted(topology.numa_nodes()) == sorted(summary["numa_nodes_with_cpus"])
    assert len(topology.l3_caches()) == summary["l3_groups"]
    assert {len(core) for core in topology.cores().values()} == set(summary["smt_ways"])
    for entry in machine["cpus"]:
        if entry["online"]:
            cpu = topology.cpus[entry["cpu"]]
            assert cpu.core == entry["core"]
            assert cpu.socket == entry["socket"]
            assert cpu.numa == entry["numa"]
        else:
            assert entry["cpu"] in topology.offline


def test_offline_cpus_belong_to_no_core(tmp_path):
    topology = topology_of(load_machine("ibm-power9-lassen"), tmp_path)
    assert topology.offline == set(range(0, 8)) | set(range(88, 96))
    every_core_cpu = set().union(*topology.cores().values())
    assert not every_core_cpu & topology.offline
    assert all(len(core) == 4 for core in topology.cores().values())


def test_core_ids_repeat_across_packages_but_cores_do_not_merge(tmp_path):
    topology = topology_of(load_machine("intel-xeon-l5640-2s"), tmp_path)
    assert topology.cores()[0] == {0, 12}
    assert topology.cores()[1] == {1, 13}
    assert topology.cpus[0].core_id == topology.cpus[1].core_id == 0


@pytest.mark.parametrize(("cmdline", "isolated"), [
    ("isolcpus=2-5", {2, 3, 4, 5}),
    ("quiet isolcpus=domain,2-5 ro", {2, 3, 4, 5}),
    ("isolcpus=managed_irq,2-5", set()),
    ("isolcpus=nohz,2-5", set()),
    ("isolcpus=nohz,managed_irq,domain,1,3", {1, 3}),
    ("isolcpus=1 isolcpus=domain,3", {1, 3}),
    ("nohz_full=2-5 rcu_nocbs=2-5", set()),
    ("", set()),
])
def test_isolcpus_follows_the_kernel_rules(cmdline, isolated):
    assert isolcpus_from_cmdline(cmdline) == isolated


def test_bad_isolcpus_list_is_an_error_naming_it():
    with pytest.raises(TopologyError, match="isolcpus=3-1"):
        isolcpus_from_cmdline("isolcpus=3-1")


def test_real_isolcpus_boot_line_isolates_nothing(tmp_path):
    """managed_irq alone does not isolate from the scheduler (the machine's notes)."""
    topology = topology_of(load_machine("intel-xeon-gold6230-2s-isolcpus"), tmp_path)
    assert topology.isolated == set()
    assert topology.warnings == ()


def test_plain_isolcpus_list_isolates_whole_cores_and_warns_on_partial(tmp_path):
    topology = topology_of(load_machine("intel-xeon-gold6230-2s-isolcpus"), tmp_path,
                           cmdline="isolcpus=0-4,11-79")
    isolated_cores = topology.isolated_cores()
    assert len(isolated_cores) == 5 + 29
    assert {0, 40} in isolated_cores.values()
    assert {5, 45} not in isolated_cores.values()
    partly = [w for w in topology.warnings if "partly isolated" in w]
    assert len(partly) == 6
    assert "core 5,45 is only partly isolated (45)" in partly[0]


def test_sysfs_isolated_file_counts(tmp_path):
    topology = topology_of(xeon_d1541(), tmp_path, isolated="4-7,12-15")
    assert set(topology.isolated_cores()) == {4, 5, 6, 7}


def test_missing_sysfs_is_an_error(tmp_path):
    with pytest.raises(TopologyError, match="cannot read CPU topology"):
        read_topology(str(tmp_path / "nothing"), str(tmp_path))


def test_garbage_topology_file_is_an_error_naming_it(tmp_path):
    build_sysfs(xeon_d1541(), tmp_path)
    bad = tmp_path / "sys/devices/system/cpu/cpu3/topology/physical_package_id"
    bad.write_text("zero\n")
    with pytest.raises(TopologyError, match=str(bad)):
        read_topology(str(tmp_path / "sys"), str(tmp_path / "proc"))


def test_unreadable_file_is_an_error(tmp_path):
    build_sysfs(xeon_d1541(), tmp_path)
    core_id = tmp_path / "sys/devices/system/cpu/cpu1/topology/core_id"
    core_id.unlink()
    core_id.mkdir()
    with pytest.raises(TopologyError, match=r"cannot read .*cpu1/topology/core_id"):
        read_topology(str(tmp_path / "sys"), str(tmp_path / "proc"))


def test_this_machine_reads():
    topology = read_topology()
    assert os.sched_getaffinity(0) <= topology.online
