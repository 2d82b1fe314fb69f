"""Processes as the host sees them, through the host procfs (``$KCM_PROC_FS``).

Inside a container the host's /proc is mounted elsewhere (e.g. /host/proc), and
``<that>/self`` resolves to this process in the host's PID namespace: the PID we
record is the host PID, which every other container sharing the directory can check.
"""

import os

from kcm.errors import ProcessError
from kcm.state import Task

DEFAULT_PROC_FS = "/proc"


def proc_root() -> str:
    return os.environ.get("KCM_PROC_FS") or DEFAULT_PROC_FS


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


def allowed_cpus(root: str, pid: int) -> str | None:
    """``Cpus_allowed_list`` of a process, or None when it is gone."""
    try:
        with open(f"{root}/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None
