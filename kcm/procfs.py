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
    """A process's PID, state letter and start time in clock ticks after boot (field
    22 of stat): with the PID, the start time identifies a process even after the PID
    is reused."""

    __slots__ = ("pid", "start", "state")

    def __init__(self, pid: int, state: str, start: int):
        self.pid = pid
        self.state = state
        self.start = start


def parse_stat(text: str) -> ProcessStat:
    """Parse ``/proc/PID/stat``; the command name may hold spaces and parentheses."""
    head, _, tail = text.rpartition(")")
    fields = tail.split()
    if not head or len(fields) < 20:
        raise ValueError("truncated stat line")
    return ProcessStat(pid=int(head.split(" (", 1)[0]), state=fields[0], start=int(fields[19]))


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
    if found is None or found.state in ("Z", "X", "x"):
        return False
    return start is None or found.start == start


def task_alive(root: str, task: Task) -> bool:
    """A task holds its CPU list while its kcm process or its workload child lives."""
    return is_running(root, task.pid, task.start) or is_running(root, task.child, task.child_start)


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
