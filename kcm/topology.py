"""The machine's CPU topology as data (pure; ``kcm.sysfs`` reads it from the machine).

A physical core is a group of hyperthread siblings, identified by its lowest online
CPU id (raw ``core_id`` values repeat across packages and may be sparse). L3 caches
are identified by their sysfs ``id`` when the kernel gives one, else by the lowest
CPU of their ``shared_cpu_list``. CPUs without a NUMA node directory get node 0 when
the machine has no NUMA information at all.
"""

from collections import namedtuple
from collections.abc import Iterable

from kcm.cpuset import CpuSet, parse_cpulist
from kcm.errors import CpuListError, TopologyError


class Cpu(namedtuple("Cpu", "id socket core core_id numa l3")):
    """One online CPU. ``core`` is the lowest CPU id of its physical core (unique on the
    machine); ``core_id`` the kernel's raw ``topology/core_id``, unique only within a
    package; ``l3`` None without L3 information. (A named tuple, not a dataclass:
    ``dataclasses`` costs kcm init and isolate --num-cores milliseconds to import.)"""

    __slots__ = ()


class Topology:
    """``cpus``: online CPUs only; ``isolated``: CPUs isolated from the scheduler (sysfs
    ``isolated`` plus domain ``isolcpus=``); ``warnings``: what discovery found odd."""

    __slots__ = ("cpus", "isolated", "offline", "warnings")

    def __init__(self, cpus: dict[int, Cpu], offline: CpuSet = frozenset(),
                 isolated: CpuSet = frozenset(), warnings: tuple[str, ...] = ()):
        self.cpus = cpus
        self.offline = offline
        self.isolated = isolated
        self.warnings = warnings

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Topology) and all(
            getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"Topology(cpus={self.cpus!r}, offline={self.offline!r}, "
                f"isolated={self.isolated!r}, warnings={self.warnings!r})")

    @property
    def online(self) -> CpuSet:
        return frozenset(self.cpus)

    def cores(self) -> dict[int, CpuSet]:
        """Physical cores: core id (lowest sibling) -> its online threads."""
        return _group(self.cpus.values(), lambda cpu: cpu.core)

    def sockets(self) -> dict[int, CpuSet]:
        return _group(self.cpus.values(), lambda cpu: cpu.socket)

    def numa_nodes(self) -> dict[int, CpuSet]:
        return _group(self.cpus.values(), lambda cpu: cpu.numa)

    def l3_caches(self) -> dict[int, CpuSet]:
        """L3 caches; a CPU without L3 information shares its NUMA node's group."""
        return _group(self.cpus.values(), l3_key)

    def isolated_cores(self) -> dict[int, CpuSet]:
        """Cores whose every online thread is isolated."""
        return {core: cpus for core, cpus in self.cores().items() if cpus <= self.isolated}

    def numa_of(self, cpus: Iterable[int]) -> frozenset[int]:
        return frozenset(self.cpus[cpu].numa for cpu in cpus if cpu in self.cpus)


def l3_key(cpu: Cpu) -> int:
    """The L3 group of a CPU; without L3 information, its NUMA node stands in (negated)."""
    return cpu.l3 if cpu.l3 is not None else -1 - cpu.numa


def _group(cpus: Iterable[Cpu], key) -> dict:
    groups: dict = {}
    for cpu in cpus:
        groups.setdefault(key(cpu), set()).add(cpu.id)
    return {name: frozenset(members) for name, members in sorted(groups.items())}


def isolcpus_from_cmdline(cmdline: str) -> CpuSet:
    """CPUs that ``isolcpus=`` isolates from the scheduler, by the kernel's rules.

    ``isolcpus=[flag,...,]cpu-list``: without flags the list is domain-isolated;
    with flags it is only when ``domain`` is among them (``managed_irq`` or ``nohz``
    alone leave the scheduler free to use the CPUs). Every occurrence counts.
    """
    isolated: set[int] = set()
    for word in cmdline.split():
        if not word.startswith("isolcpus="):
            continue
        value = word[len("isolcpus=") :]
        flags = []
        while True:
            flag, comma, rest = value.partition(",")
            if not (comma and flag and all(c == "_" or "a" <= c <= "z" for c in flag)):
                break
            flags.append(flag)
            value = rest
        if flags and "domain" not in flags:
            continue
        try:
            isolated |= parse_cpulist(value)
        except CpuListError as error:
            raise TopologyError(f"kernel command line: isolcpus={word[9:]}: {error}") from None
    return frozenset(isolated)
