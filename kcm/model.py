"""The configuration as data: pools, CPU lists and the tasks that hold them.

Pure: no file access. ``kcm.state`` reads and writes these from and to the directory;
the decisions (selection, reports, checks) work on them alone.
"""

from __future__ import annotations

import os

from kcm.cpuset import CpuSet
from kcm.errors import ConfigError

_POOL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


# Plain classes rather than dataclasses or namedtuples: this module is on the start-up
# path of every workload, where importing dataclasses or collections costs milliseconds.
class Task:
    """A ``kcm isolate`` process holding a CPU list: its host PID and start time
    (clock ticks after boot), and those of the workload it runs (None if unknown).

    ``listed_ns`` is None when kcm wrote the ``tasks`` file naming this task together
    with these start times (they are the truth); otherwise it is when ``tasks`` was last
    written (ns since the epoch) by a writer that may not know them, so a live process
    under the PID that started before then may be the one that writer meant."""

    __slots__ = ("child", "child_start", "listed_ns", "pid", "start")

    def __init__(self, pid: int, start: int | None = None, child: int | None = None,
                 child_start: int | None = None, listed_ns: int | None = None):
        self.pid = pid
        self.start = start
        self.child = child
        self.child_start = child_start
        self.listed_ns = listed_ns

    def _key(self) -> tuple:
        return (self.pid, self.start, self.child, self.child_start)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Task({}, {}, {}, {})".format(*self._key())


class CpuList:
    """One CPU list of a pool: ``name`` is its directory name as on disk, ``place`` its
    directory inside the pool (the name, or ``SOCKET/NAME`` in CMK v1.4.1's layout);
    ``stamp`` identifies the ``tasks`` file as read (None before it exists).

    ``unreadable`` says why a line of its ``tasks`` or ``task-info`` could not be read
    (None when all could): such a list counts as held, is never granted and never
    rewritten, and ``tasks`` holds only what could be read."""

    __slots__ = ("cpus", "name", "place", "stamp", "tasks", "unreadable")

    def __init__(self, name: str, cpus: CpuSet, tasks: list[Task] | None = None,
                 stamp: tuple[int, int, int] | None = None, place: str | None = None,
                 unreadable: str | None = None):
        self.name = name
        self.cpus = cpus
        self.tasks = tasks if tasks is not None else []
        self.stamp = stamp
        self.place = place or name
        self.unreadable = unreadable

    @property
    def held(self) -> bool:
        """Recorded as held (not yet judged against the processes)."""
        return bool(self.tasks) or self.unreadable is not None

    def __repr__(self) -> str:
        return f"CpuList({self.name!r}, tasks={self.tasks!r})"


class Pool:
    __slots__ = ("cpu_lists", "exclusive", "name")

    def __init__(self, name: str, exclusive: bool, cpu_lists: dict[str, CpuList] | None = None):
        self.name = name
        self.exclusive = exclusive
        self.cpu_lists = cpu_lists if cpu_lists is not None else {}


class Config:
    __slots__ = ("path", "pools")

    def __init__(self, path: str, pools: dict[str, Pool]):
        self.path = path
        self.pools = pools

    def pool(self, name: str) -> Pool:
        try:
            return self.pools[name]
        except KeyError:
            known = ", ".join(sorted(self.pools)) or "none"
            raise ConfigError(f"unknown pool {name!r} in {self.path} (pools: {known})") from None


def split_place(place: str) -> tuple[str, str]:
    """(socket directory, "" in the flat layout; CPU list name) of a CPU list's place."""
    socket, _, name = place.rpartition("/")
    return socket, name


def valid_pool_name(name: str) -> bool:
    """Letters, digits, ``_.-``; starting with a letter or digit; at most 63 characters."""
    return 0 < len(name) <= 63 and name[0].isalnum() and set(name) <= _POOL_NAME_CHARS


def overlapping_cpus(config: Config) -> list[str]:
    """One message per CPU that is in more than one CPU list."""
    owner: dict[int, str] = {}
    problems = []
    for pool in config.pools.values():
        for cpu_list in pool.cpu_lists.values():
            where = os.path.join(config.path, "pools", pool.name, cpu_list.place)
            for cpu in sorted(cpu_list.cpus):
                if cpu in owner:
                    problems.append(f"CPU {cpu} is in two CPU lists: {owner[cpu]} and {where}")
                else:
                    owner[cpu] = where
    return problems


class MemoryStore:
    """The configuration directory's task interface, in memory: what ``kcm.state.ConfigDir``
    offers the selection (``load_pool``, ``load_cpu_lists``, ``save_tasks``), for tests
    and tools that decide without a directory."""

    def __init__(self, config: Config):
        self.config = config
        self.writes = 0

    def load_pool(self, name: str) -> Pool:
        return self.config.pool(name)

    def load_cpu_lists(self, pool: str, places: list[str]) -> list[CpuList]:
        by_place = {cl.place: cl for cl in self.config.pool(pool).cpu_lists.values()}
        return [by_place[place] for place in places]

    def save_tasks(self, pool: str, cpu_list: CpuList, tasks: list[Task],
                   durable: bool = False) -> None:
        cpu_list.tasks = list(tasks)  # the very object load_pool/load_cpu_lists gave out
        self.writes += 1
