"""Private cgroup trees on the real cpuset controller (v1 here), with processes in them.

A tree is ``<hierarchy>/kcm-test-<id>/kubepods/pod1/{ctr-a,ctr-b}``; every process a
test puts there is one it started, and everything is undone afterwards: processes
moved back to the hierarchy root, cgroups removed bottom-up."""

import os
import subprocess
import time
import uuid
from pathlib import Path

V1_CPUSET = Path("/sys/fs/cgroup/cpuset")


def v1_available() -> str | None:
    """None when a v1 cpuset tree can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root to create cgroups"
    if not (V1_CPUSET / "cpuset.cpus").exists():
        return "no cgroup v1 cpuset hierarchy at /sys/fs/cgroup/cpuset"
    if len(os.sched_getaffinity(0)) < 2:
        return "needs two CPUs"
    return None


class Tree:
    def __init__(self, hierarchy: Path):
        self.hierarchy = hierarchy
        self.base = hierarchy / f"kcm-test-{uuid.uuid4().hex[:8]}"
        self.root = self.base / "kubepods"
        self.containers = {name: self.root / "pod1" / name for name in ("ctr-a", "ctr-b")}
        self.procs: list[subprocess.Popen] = []
        for directory in (self.base, self.root, self.root / "pod1", *self.containers.values()):
            directory.mkdir()
            for name in ("cpuset.cpus", "cpuset.mems"):
                (directory / name).write_text((directory.parent / name).read_text())

    def start(self, container: str, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start ``argv`` inside a container cgroup (it moves itself there, then execs)."""
        procs = self.containers[container] / "cgroup.procs"
        script = f'echo $$ > "{procs}" && exec "$@"'
        proc = subprocess.Popen(["sh", "-c", script, "sh", *argv], **kwargs)
        self.procs.append(proc)
        return proc

    def cpus(self, container: str) -> str:
        return (self.containers[container] / "cpuset.cpus").read_text().strip()

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        for directory in [*sorted(self.base.rglob("*"), key=lambda p: -len(p.parts)), self.base]:
            if not directory.is_dir():
                continue
            for pid in (directory / "cgroup.procs").read_text().split():
                try:
                    (self.hierarchy / "cgroup.procs").write_text(pid)
                except OSError:
                    pass  # gone meanwhile
            for _ in range(100):
                try:
                    directory.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)  # a process that just exited is still leaving
