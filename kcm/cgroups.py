"""The cgroup filesystem's cpuset controller, v1 or v2: finding it, reading and writing
container cpusets. The only module that writes cgroupfs.

Version rules kept here: v1 needs a child's cpuset inside its parent's and
``cpuset.mems`` set (an ancestor is widened, never narrowed, when a container needs
more); v2 reports what a cgroup really gets in ``cpuset.cpus.effective``. Nothing is
written outside the root given, no symlink is followed, an empty cpuset is never
written, and a cgroup that vanishes mid-pass is skipped. Kernels before 6.2 reset the
affinity of every task in a cpuset whose CPUs change (both versions); kcm puts back
what each thread had chosen, as newer kernels do themselves.
"""

from __future__ import annotations

import os

from kcm.cpuset import CpuSet, format_cpulist, parse_cpulist
from kcm.enforcement import affinities_to_restore
from kcm.errors import CpuListError, KcmError
from kcm.kernfs import VANISHED, write_value

KUBEPODS = ("kubepods.slice", "kubepods")


class CgroupError(KcmError):
    """The cpuset controller could not be found or used."""


class Hierarchy:
    """A mounted cgroup hierarchy with the cpuset controller: ``mount`` is where it is
    mounted, ``base`` the hierarchy path shown at that mount point (not ``/`` inside a
    container that mounts a sub-tree)."""

    __slots__ = ("base", "mount", "version")

    def __init__(self, version: int, mount: str, base: str):
        self.version = version
        self.mount = mount
        self.base = base

    def fs_path(self, cgroup: str) -> str | None:
        """The directory of a cgroup path from ``/proc/PID/cgroup``, or None when the
        cgroup is outside what is mounted here."""
        base = self.base.rstrip("/")
        if cgroup != base and not cgroup.startswith(base + "/"):
            return None
        return os.path.join(self.mount, cgroup[len(base):].lstrip("/")).rstrip("/")

    @property
    def effective_file(self) -> str:
        return "cpuset.effective_cpus" if self.version == 1 else "cpuset.cpus.effective"


def parse_mountinfo(text: str) -> list[tuple[str, str, str, str]]:
    """(fstype, mount point, root, super options) of each line of /proc/PID/mountinfo."""
    mounts = []
    for line in text.splitlines():
        head, dash, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not dash or len(fields) < 5 or len(rest) < 3:
            continue
        mounts.append((rest[0], _unescape(fields[4]), _unescape(fields[3]), rest[2]))
    return mounts


def find_hierarchy(mountinfo: str) -> Hierarchy:
    """The cpuset hierarchy: v1's ``cpuset`` mount if there is one (the controller then
    cannot be in v2), else the v2 mount whose ``cgroup.controllers`` lists cpuset."""
    mounts = parse_mountinfo(mountinfo)
    for fstype, point, root, options in mounts:
        if fstype == "cgroup" and "cpuset" in options.split(","):
            return Hierarchy(1, point, root)
    for fstype, point, root, _ in mounts:
        if fstype == "cgroup2" and "cpuset" in _read(os.path.join(point, "cgroup.controllers"),
                                                     "").split():
            return Hierarchy(2, point, root)
    raise CgroupError("no cgroup hierarchy with the cpuset controller is mounted "
                      "(cgroup v1 'cpuset' or v2 with cpuset in cgroup.controllers)")


def default_root(hierarchy: Hierarchy) -> str:
    """The kubelet's pod hierarchy: ``kubepods.slice`` (systemd driver) or ``kubepods``."""
    for name in KUBEPODS:
        path = os.path.join(hierarchy.mount, name)
        if os.path.isdir(path) and not os.path.islink(path):
            return path
    raise CgroupError(f"no kubepods cgroup under {hierarchy.mount}; pass --cgroup-root")


def cgroup_of(proc_root: str, pid: int, version: int) -> str | None:
    """The cpuset cgroup path of a process (``/proc/PID/cgroup``), None when it is gone."""
    text = _read(f"{proc_root}/{pid}/cgroup", None)
    if text is None:
        return None
    for line in text.splitlines():
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        if (version == 2 and line.startswith("0::")) or (
                version == 1 and "cpuset" in controllers.split(",")):
            return path
    return None


def containers(root: str) -> list[str]:
    """The container cgroups under ``root``: its leaf cgroups, without following links."""
    found = []
    for directory, subdirs, _ in os.walk(root, followlinks=False):
        subdirs[:] = [d for d in subdirs if not os.path.islink(os.path.join(directory, d))]
        if not subdirs and directory != root:
            found.append(directory)
    return sorted(found)


def effective_cpus(hierarchy: Hierarchy, path: str) -> CpuSet | None:
    """What the cgroup's tasks may run on now; None when the cgroup is gone."""
    text = _read(os.path.join(path, hierarchy.effective_file), None)
    if text is None:
        return None
    try:
        return parse_cpulist(text)
    except CpuListError:
        return None


def write_cpus(hierarchy: Hierarchy, root: str, path: str, cpus: CpuSet) -> str | None:
    """Set a container's ``cpuset.cpus``; None on success, else why not ("vanished" when
    the cgroup went away). Widens v1 ancestors below ``root`` that lack the CPUs."""
    if not cpus:
        return "refusing to write an empty cpuset"
    real_root = os.path.realpath(root)
    if os.path.commonpath([os.path.realpath(path), real_root]) != real_root:
        return f"{path} is outside {root}"
    if hierarchy.version == 1:
        problem = _widen_ancestors(hierarchy, root, path, cpus)
        if problem:
            return problem
    return _write_keeping_affinities(hierarchy, path, cpus)


def _write_keeping_affinities(hierarchy: Hierarchy, directory: str, cpus: CpuSet
                              ) -> str | None:
    """Write ``cpuset.cpus``, then give back each thread in the cgroup the affinity it
    had chosen (within the new CPUs) if the kernel reset it. On a kernel that keeps
    affinities itself (6.2 and later) this reads them and writes nothing."""
    old = effective_cpus(hierarchy, directory)
    tasks_file = "tasks" if hierarchy.version == 1 else "cgroup.threads"
    before = _affinities(_read(os.path.join(directory, tasks_file), "").split())
    problem = write_value(os.path.join(directory, "cpuset.cpus"), format_cpulist(cpus))
    new = effective_cpus(hierarchy, directory)
    if problem is None and old is not None and new is not None and before:
        after = _affinities(before)
        for tid, chosen in affinities_to_restore(before, after, old, new).items():
            try:
                os.sched_setaffinity(tid, chosen)
            except OSError:
                pass  # the thread ended, or moved to a cgroup without these CPUs
    return problem


def _affinities(tids) -> dict[int, CpuSet]:
    found = {}
    for tid in tids:
        try:
            found[int(tid)] = frozenset(os.sched_getaffinity(int(tid)))
        except (OSError, ValueError):
            pass  # gone, or not in this PID namespace
    return found


def _widen_ancestors(hierarchy: Hierarchy, root: str, path: str, cpus: CpuSet
                     ) -> str | None:
    relative = os.path.relpath(os.path.dirname(path), root)
    parts = [] if relative == "." else relative.split(os.sep)
    # The root first: a child must fit inside its parent.
    chain = [os.path.join(root, *parts[:depth]) for depth in range(len(parts) + 1)]
    for directory in chain:
        have = _read(os.path.join(directory, "cpuset.cpus"), None)
        if have is None:
            return VANISHED
        try:
            missing = cpus - parse_cpulist(have)
        except CpuListError:
            return f"cannot read {directory}/cpuset.cpus"
        if missing:
            problem = _write_keeping_affinities(hierarchy, directory,
                                                parse_cpulist(have) | cpus)
            if problem:
                return problem
    for directory in [*chain, path]:
        if not _read(os.path.join(directory, "cpuset.mems"), "x").strip():
            mems = _read(os.path.join(os.path.dirname(directory), "cpuset.mems"), "").strip()
            problem = write_value(os.path.join(directory, "cpuset.mems"), mems) if mems else None
            if problem:
                return problem
    return None


def _read(path: str, default):
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read(1 << 16)
    except OSError:
        return default


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    if "\\" not in text:
        return text
    out, index = [], 0
    while index < len(text):
        if text[index] == "\\" and text[index + 1:index + 4].isdigit():
            out.append(chr(int(text[index + 1:index + 4], 8)))
            index += 4
        else:
            out.append(text[index])
            index += 1
    return "".join(out)
