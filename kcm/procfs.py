"""Processes as the host sees them, through the host procfs (``$KCM_PROC_FS``).

Inside a container the host's /proc is mounted elsewhere (e.g. /host/proc), and
``<that>/self`` resolves to this process in the host's PID namespace: the PID we
record is the host PID, which every other container sharing the directory can check.
"""

import os

from kcm import env
from kcm.errors import ProcessError
from kcm.model import Task
from kcm.names import HOST_PROC


def proc_root() -> str:
    """The procfs to read processes from ($KCM_PROC_FS), not yet checked."""
    return env.proc_fs()


def host_proc_root() -> str:
    """The procfs, proven to be the host's (``check_host_procfs``): for every command
    that judges whether a task lives, where the wrong procfs would free live tasks."""
    root = proc_root()
    check_host_procfs(root)
    return root


def check_host_procfs(root: str) -> None:
    """Refuse a procfs that is not the host's live procfs.

    Two facts prove it. The kernel thread ``kthreadd`` is PID 2 with parent 0 in the
    initial PID namespace, and kernel threads are visible in no other: an empty
    directory, a container's own /proc or one of another PID namespace fails. And
    ``self`` there is this very process (its NSpid ends with our own PID), which a
    copy of a procfs, or a procfs of a namespace we cannot see, fails.
    """
    advice = (f"set KCM_PROC_FS to the host's /proc (in a container: mount it, e.g. at "
              f"{HOST_PROC}); judging tasks by {root} could free CPU lists of live workloads")
    kthreadd = _read_text(f"{root}/2/stat")
    if not kthreadd.startswith("2 (kthreadd) ") or kthreadd.split(") ", 1)[1].split()[1] != "0":
        raise ProcessError(f"{root} is not the host's procfs (no kthreadd at PID 2): {advice}")
    status = _read_text(f"{root}/self/status")
    nspid = [line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")]
    if not status or (nspid and nspid[0][-1:] != [str(os.getpid())]):
        raise ProcessError(f"{root}/self is not this process: {advice}")


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(8192).decode("ascii", "replace")
    except OSError:
        return ""


class ProcessStat:
    """A process's PID, state letter, parent, process group and start time in clock
    ticks after boot (field 22 of stat): with the PID, the start time identifies a
    process even after the PID is reused."""

    __slots__ = ("group", "parent", "pid", "start", "state")

    def __init__(self, pid: int, state: str, start: int, parent: int = 0, group: int = 0):
        self.pid = pid
        self.state = state
        self.start = start
        self.parent = parent
        self.group = group

    @property
    def running(self) -> bool:
        return self.state not in ("Z", "X", "x")


def parse_stat(text: str) -> ProcessStat:
    """Parse ``/proc/PID/stat``; the command name may hold spaces and parentheses."""
    head, _, tail = text.rpartition(")")
    fields = tail.split()
    if not head or len(fields) < 20:
        raise ValueError("truncated stat line")
    return ProcessStat(pid=int(head.split(" (", 1)[0]), state=fields[0], start=int(fields[19]),
                       parent=int(fields[1]), group=int(fields[2]))


def read_stat(root: str, pid: int | str) -> ProcessStat | None:
    """The stat of a process, or None when there is no such process."""
    try:
        with open(f"{root}/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError as error:
        if pid == "self":
            raise ProcessError(f"cannot read {root}/self/stat: {error.strerror}") from None
        return None
    try:
        return parse_stat(text)
    except ValueError:
        return None


def self_stat(root: str) -> ProcessStat:
    """This process's host PID and start time (``$KCM_PROC_FS/self/stat``)."""
    found = read_stat(root, "self")
    if found is None:
        raise ProcessError(f"cannot read {root}/self/stat: is {root} a procfs?")
    return found


def is_running(root: str, pid: int | None, start: int | None) -> bool:
    """True when ``pid`` is a live (not zombie) process started at ``start`` (if known)."""
    if pid is None:
        return False
    found = read_stat(root, pid)
    if found is None or not found.running:
        return False
    return start is None or found.start == start


def all_processes(root: str) -> list[ProcessStat]:
    """Every live process of the procfs (zombies left out)."""
    found = []
    for name in os.listdir(root):
        if name.isdigit() and (stat := read_stat(root, name)) is not None and stat.running:
            found.append(stat)
    return found


LISTING_MARGIN_NS = 2_000_000_000
"""How much later than a ``tasks`` file's time a process must have started to be proven
not the one that file names (boot time in /proc/stat is whole seconds and drifts)."""


class Liveness:
    """Judges the tasks of the directory against the host procfs.

    A task holds its CPU list while any process of its workload lives: the ``kcm
    isolate`` process, the workload it started, or any process of the process group
    either of them leads (what is left when both are gone: a shell's children, a
    daemon). The kernel never gives a PID to a new process while it still names a
    process group, so a live member of group P that started no earlier than P's
    recorded start belongs to that workload. The procfs is scanned for groups at most
    once per judge, and only when a task's own two processes are gone."""

    def __init__(self, root: str):
        self.root = root
        self._groups: dict[int, list[ProcessStat]] | None = None
        self._boot_ns: int | None = None

    def __call__(self, task: Task) -> bool:
        return (is_running(self.root, task.pid, task.start)
                or is_running(self.root, task.child, task.child_start)
                or self._listed_after_start(task)
                or bool(self.survivors(task)))

    def holders(self, task: Task) -> list[int]:
        """The live PIDs that hold the task's CPU list (empty: the task is dead)."""
        own = [pid for pid, start in ((task.pid, task.start), (task.child, task.child_start))
               if is_running(self.root, pid, start)]
        if not own and self._listed_after_start(task):
            own = [task.pid]
        return sorted(set(own) | set(self.survivors(task)))

    def survivors(self, task: Task) -> list[int]:
        """Live members of the process groups led by the task's processes."""
        if self._groups is None:
            self._groups = {}
            for process in all_processes(self.root):
                self._groups.setdefault(process.group, []).append(process)
        found = []
        for leader, start in ((task.pid, task.start), (task.child, task.child_start)):
            if leader:
                found += [p.pid for p in self._groups.get(leader, ())
                          if start is None or p.start >= start]
        return found

    def _listed_after_start(self, task: Task) -> bool:
        """A task line kcm did not write with its ``tasks`` file, whose PID is now a
        process that started before that file was last written: the writer may mean
        that process, so it holds (never free a live process on a stale start time)."""
        if task.listed_ns is None or task.start is None:
            return False
        found = read_stat(self.root, task.pid)
        if found is None or not found.running:
            return False
        return self._started_ns(found.start) <= task.listed_ns + LISTING_MARGIN_NS

    def _started_ns(self, start_ticks: int) -> int:
        if self._boot_ns is None:
            self._boot_ns = _boot_time_ns(self.root)
        return self._boot_ns + start_ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _boot_time_ns(root: str) -> int:
    """``btime`` of /proc/stat (after the long ``intr`` line: read it all)."""
    try:
        with open(f"{root}/stat", "rb") as handle:
            for line in handle:
                if line.startswith(b"btime "):
                    return int(line.split()[1]) * 1_000_000_000
    except (OSError, ValueError, IndexError):
        pass
    return 0  # unknown: every process looks started long before any file was written


def task_alive(root: str, task: Task) -> bool:
    """One task judged on its own (``Liveness`` judges many with one scan)."""
    return Liveness(root)(task)


def allowed_cpus(root: str, pid: int | str) -> str | None:
    """``Cpus_allowed_list`` of a process, or None when it is gone."""
    try:
        with open(f"{root}/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def user_threads(root: str) -> tuple[list[tuple[int, int, frozenset[int]]], dict[int, int]]:
    """Every thread of every user process (kernel threads left out) with the CPUs it may
    run on, and each process's parent: (threads as (PID, TID, CPUs), PID -> PPID)."""
    from kcm.cpuset import parse_cpulist
    from kcm.errors import CpuListError

    threads, parents = [], {}
    for name in os.listdir(root):
        if not name.isdigit():
            continue
        pid = int(name)
        head = _read_text(f"{root}/{pid}/stat")
        fields = head.rpartition(")")[2].split()
        if len(fields) < 7 or fields[1] == "2" or pid == 2:  # kthreadd's children: kernel
            continue
        parents[pid] = int(fields[1])
        try:
            tids = os.listdir(f"{root}/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            allowed = allowed_cpus(root, f"{pid}/task/{tid}")
            if allowed is None:
                continue
            try:
                threads.append((pid, int(tid), parse_cpulist(allowed)))
            except (CpuListError, ValueError):
                continue
    return threads, parents
