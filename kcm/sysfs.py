"""Reading the machine: sysfs and ``/proc/cmdline`` -> ``kcm.topology.Topology``."""

import os

from kcm.cpuset import CpuSet, format_cpulist, parse_cpulist
from kcm.errors import CpuListError, TopologyError
from kcm.topology import Cpu, Topology, isolcpus_from_cmdline


def _numbered(name: str, prefix: str) -> int | None:
    """N of a directory named ``<prefix>N`` (cpu12, node1), else None."""
    digits = name[len(prefix):]
    if name.startswith(prefix) and digits.isascii() and digits.isdigit():
        return int(digits)
    return None
_MAX_FILE = 1 << 16


def read_topology(sysfs_root: str = "/sys", proc_root: str = "/proc") -> Topology:
    """Discover the machine under ``sysfs_root``; isolcpus from ``proc_root/cmdline``."""
    cpu_root = os.path.join(sysfs_root, "devices", "system", "cpu")
    try:
        names = os.listdir(cpu_root)
    except OSError as error:
        raise TopologyError(f"cannot read CPU topology at {cpu_root}: {error.strerror}") from None
    cpu_ids = sorted(number for name in names
                     if (number := _numbered(name, "cpu")) is not None)
    if not cpu_ids:
        raise TopologyError(f"no CPUs found under {cpu_root}")
    numa_of = _read_numa(sysfs_root)
    raw: dict[int, dict] = {}
    offline: set[int] = set()
    for cpu_id in cpu_ids:
        cpu_dir = os.path.join(cpu_root, f"cpu{cpu_id}")
        if not _is_online(cpu_dir):
            offline.add(cpu_id)
            continue
        raw[cpu_id] = _read_cpu(cpu_dir)
        if numa_of and cpu_id not in numa_of:
            raise TopologyError(f"CPU {cpu_id} is in no NUMA node under {sysfs_root}")
    if not raw:
        raise TopologyError(f"no online CPUs under {cpu_root}")
    cpus = _build_cpus(raw, numa_of)
    isolated = _read_isolated(cpu_root, proc_root) & frozenset(cpus)
    found = Topology(cpus=cpus, offline=frozenset(offline), isolated=isolated)
    return Topology(cpus=cpus, offline=found.offline, isolated=isolated,
                    warnings=tuple(_partly_isolated_warnings(found)))


def _build_cpus(raw: dict[int, dict], numa_of: dict[int, int]) -> dict[int, Cpu]:
    online = frozenset(raw)
    cpus = {}
    for cpu_id, info in raw.items():
        siblings = (info["siblings"] | {cpu_id}) & online
        cpus[cpu_id] = Cpu(
            id=cpu_id,
            socket=info["socket"],
            core=min(siblings),
            core_id=info["core_id"],
            numa=numa_of.get(cpu_id, 0),
            l3=info["l3"],
        )
    return cpus


def _partly_isolated_warnings(topology: Topology) -> list[str]:
    warnings = []
    for _core, threads in topology.cores().items():
        part = threads & topology.isolated
        if part and part != threads:
            warnings.append(
                f"core {format_cpulist(threads)} is only partly isolated "
                f"({format_cpulist(part)}); it is treated as not isolated"
            )
    return warnings


def _is_online(cpu_dir: str) -> bool:
    if not os.path.isdir(os.path.join(cpu_dir, "topology")):
        return False
    state = _read_optional(os.path.join(cpu_dir, "online"))
    return state is None or state.strip() != "0"


def _read_cpu(cpu_dir: str) -> dict:
    topo_dir = os.path.join(cpu_dir, "topology")
    return {
        "socket": _read_int(os.path.join(topo_dir, "physical_package_id")),
        "core_id": _read_int(os.path.join(topo_dir, "core_id")),
        "siblings": _read_cpulist(os.path.join(topo_dir, "thread_siblings_list")),
        "l3": _read_l3(os.path.join(cpu_dir, "cache")),
    }


def _read_l3(cache_dir: str) -> int | None:
    try:
        indexes = sorted(name for name in os.listdir(cache_dir) if name.startswith("index"))
    except OSError:
        return None
    for name in indexes:
        index_dir = os.path.join(cache_dir, name)
        level = _read_optional(os.path.join(index_dir, "level"))
        if level is None or level.strip() != "3":
            continue
        cache_id = _read_optional_int(os.path.join(index_dir, "id"))
        if cache_id is not None:
            return cache_id
        shared = _read_cpulist(os.path.join(index_dir, "shared_cpu_list"))
        return min(shared) if shared else None
    return None


def _read_numa(sysfs_root: str) -> dict[int, int]:
    node_root = os.path.join(sysfs_root, "devices", "system", "node")
    try:
        names = os.listdir(node_root)
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise TopologyError(f"cannot read NUMA nodes at {node_root}: {error.strerror}") from None
    numa_of: dict[int, int] = {}
    for name in names:
        node = _numbered(name, "node")
        if node is None:
            continue
        for cpu in _read_cpulist(os.path.join(node_root, name, "cpulist")):
            numa_of[cpu] = node
    return numa_of


def _read_isolated(cpu_root: str, proc_root: str) -> CpuSet:
    isolated_file = os.path.join(cpu_root, "isolated")
    from_sysfs = (
        _read_cpulist(isolated_file) if os.path.exists(isolated_file) else frozenset()
    )
    cmdline = _read_optional(os.path.join(proc_root, "cmdline")) or ""
    return from_sysfs | isolcpus_from_cmdline(cmdline)


def _read_optional(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_FILE)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise TopologyError(f"cannot read {path}: {error.strerror}") from None
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise TopologyError(f"{path}: not a text file") from None


def _read_text(path: str) -> str:
    text = _read_optional(path)
    if text is None:
        raise TopologyError(f"missing {path}")
    return text


def _read_int(path: str) -> int:
    text = _read_text(path).strip()
    try:
        return int(text)
    except ValueError:
        raise TopologyError(f"{path}: expected an integer, found {text[:40]!r}") from None


def _read_optional_int(path: str) -> int | None:
    return _read_int(path) if os.path.exists(path) else None


def _read_cpulist(path: str) -> CpuSet:
    try:
        return parse_cpulist(_read_text(path))
    except CpuListError as error:
        raise TopologyError(f"{path}: {error}") from None
