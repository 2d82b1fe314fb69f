"""Test machines: real topologies from tests/data/topologies, synthetic ones, and the
code that lays any of them out as a sysfs tree (plus a proc/cmdline) on disk."""

import json
import os
from pathlib import Path

from kcm.cpuset import format_cpulist

DATA = Path(__file__).parent / "data" / "topologies"
REAL_MACHINES = sorted(path.stem for path in DATA.glob("*.json"))


def load_machine(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def synthetic_machine(
    name: str,
    sockets: int = 1,
    numa_per_socket: int = 1,
    l3_per_numa: int = 1,
    cores_per_l3: int = 4,
    threads: int = 2,
    sibling_stride: bool = True,
) -> dict:
    """A regular machine in the same schema as the real ones.

    With ``sibling_stride`` the threads of core k are k, k+C, k+2C... (Intel's
    numbering), else consecutive ids (AMD/POWER style).
    """
    cores = sockets * numa_per_socket * l3_per_numa * cores_per_l3
    cpus = []
    for core in range(cores):
        l3 = core // cores_per_l3
        numa = l3 // l3_per_numa
        socket = numa // numa_per_socket
        for thread in range(threads):
            cpu = core + thread * cores if sibling_stride else core * threads + thread
            first = core if sibling_stride else core * threads
            cpus.append(
                {"cpu": cpu, "core": first, "core_id": core % (cores // sockets),
                 "socket": socket, "numa": numa, "l3": l3, "online": True, "die_id": 0}
            )
    cpus.sort(key=lambda entry: entry["cpu"])
    return {"name": name, "cpus": cpus, "isolated": None}


def xeon_d1541() -> dict:
    """The operator manual's example: one socket, 8 cores, CPU i and i+8 siblings."""
    return synthetic_machine("xeon-d1541", cores_per_l3=8, threads=2)


def build_sysfs(machine: dict, root: Path, cmdline: str | None = None,
                isolated: str | None = None) -> Path:
    """Write ``machine`` as ``root/sys`` and ``root/proc/cmdline``; return ``root``.

    ``cmdline`` defaults to the machine's captured kernel command line; ``isolated``
    (the sysfs ``isolated`` file) defaults to the captured list when the machine's
    data says it came from sysfs, else empty.
    """
    cpu_root = root / "sys" / "devices" / "system" / "cpu"
    cpu_root.mkdir(parents=True, exist_ok=True)
    entries = machine["cpus"]
    online = [entry for entry in entries if entry["online"]]
    siblings: dict[int, list[int]] = {}
    for entry in online:
        siblings.setdefault(entry["core"], []).append(entry["cpu"])
    l3_members: dict[object, list[int]] = {}
    for entry in online:
        if entry.get("l3") is not None:
            l3_members.setdefault((entry["socket"], entry["l3"]), []).append(entry["cpu"])
    derived_l3 = "derived" in str(machine.get("cache_id_source", {}).get("l3", ""))
    for entry in entries:
        cpu_dir = cpu_root / f"cpu{entry['cpu']}"
        cpu_dir.mkdir()
        if not entry["online"]:
            _write(cpu_dir / "online", "0")
            continue
        if entry["cpu"] != 0:
            _write(cpu_dir / "online", "1")
        topo = cpu_dir / "topology"
        topo.mkdir()
        _write(topo / "physical_package_id", str(entry["socket"]))
        _write(topo / "core_id", str(entry.get("core_id", entry["core"])))
        _write(topo / "thread_siblings_list", format_cpulist(siblings[entry["core"]]))
        if entry.get("die_id") is not None:
            _write(topo / "die_id", str(entry["die_id"]))
        if entry.get("l3") is not None:
            index = cpu_dir / "cache" / "index3"
            index.mkdir(parents=True)
            _write(index / "level", "3")
            _write(index / "shared_cpu_list",
                   format_cpulist(l3_members[(entry["socket"], entry["l3"])]))
            if not derived_l3:
                _write(index / "id", str(entry["l3"]))
    _write(cpu_root / "online", format_cpulist(entry["cpu"] for entry in online))
    if isolated is None:
        source = str(machine.get("isolated_source", ""))
        captured = machine.get("isolated") if source.startswith("sysfs") else None
        isolated = format_cpulist(captured or [])
    _write(cpu_root / "isolated", isolated)
    nodes: dict[int, list[int]] = {}
    for entry in online:
        if entry.get("numa") is not None:
            nodes.setdefault(entry["numa"], []).append(entry["cpu"])
    for node, cpus in nodes.items():
        node_dir = root / "sys" / "devices" / "system" / "node" / f"node{node}"
        node_dir.mkdir(parents=True)
        _write(node_dir / "cpulist", format_cpulist(cpus))
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    _write(proc / "cmdline", cmdline if cmdline is not None else machine.get("cmdline", ""))
    # The host's kthreadd and this process, through links: enough for kcm to accept the
    # tree as the host's procfs (tasks are only seen through the real one).
    for name in ("self", "thread-self", "2"):
        (proc / name).symlink_to(f"/proc/{name}")
    return root


def _write(path: Path, text: str) -> None:
    path.write_text(text + "\n")


def machine_env(root: Path, fake_proc: bool = False) -> dict[str, str]:
    """Environment pointing kcm at a built tree.

    With ``fake_proc`` the tree's ``proc`` (a cmdline, for isolcpus, and links to the
    host's ``self`` and PID 2) stands in for the host procfs; commands that look at
    workload processes need the real one.
    """
    from tests.conftest import private_host

    env = private_host(dict(os.environ), root)
    env["KCM_SYSFS"] = str(root / "sys")
    if fake_proc:
        env["KCM_PROC_FS"] = str(root / "proc")
    return env
