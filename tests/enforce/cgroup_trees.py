"""Private cgroup trees on the real cpuset controller (v1 here), with processes in them.

A tree is ``<hierarchy>/kcm-test-<id>/kubepods/pod1/{ctr-a,ctr-b}``; every process a
test puts there is one it started, and everything is undone afterwards: processes
moved back to the hierarchy root, cgroups removed bottom-up."""

import os
import subprocess
import time
import uuid
from pathlib import Path

from kcm.cpuset import parse_cpulist

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
    def __init__(self, hierarchy: Path, version: int = 1):
        self.hierarchy = hierarchy
        self.version = version
        self.base = hierarchy / f"kcm-test-{uuid.uuid4().hex[:8]}"
        self.root = self.base / "kubepods"
        self.containers = {name: self.root / "pod1" / name for name in ("ctr-a", "ctr-b")}
        self.procs: list[subprocess.Popen] = []
        for directory in (self.base, self.root, self.root / "pod1", *self.containers.values()):
            directory.mkdir()
            if version == 1:
                for name in ("cpuset.cpus", "cpuset.mems"):
                    (directory / name).write_text((directory.parent / name).read_text())
            elif directory not in self.containers.values():
                (directory / "cgroup.subtree_control").write_text("+cpuset")

    def start(self, container: str, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start ``argv`` inside a container cgroup (it moves itself there, then execs)."""
        procs = self.containers[container] / "cgroup.procs"
        script = f'echo $$ > "{procs}" && exec "$@"'
        proc = subprocess.Popen(["sh", "-c", script, "sh", *argv], **kwargs)
        self.procs.append(proc)
        return proc

    def cpus(self, container: str) -> str:
        name = "cpuset.effective_cpus" if self.version == 1 else "cpuset.cpus.effective"
        return (self.containers[container] / name).read_text().strip()

    def cpu_set(self, container: str) -> set[int]:
        return set(parse_cpulist(self.cpus(container)))

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


UNIFIED = Path("/sys/fs/cgroup/unified")


IN_VM = "KCM_TEST_IN_VM"
"""Set by scripts/kernel-vm-init: this is a throwaway guest, its cgroups are ours to move."""


def v2_available() -> str | None:
    """None when the v1 cpuset hierarchy can be handed to cgroup v2 here, else why not.
    Only in the kernel-vm guest: on a shared machine, unmounting its cpuset hierarchy
    would pull it from under everyone else."""
    if not os.environ.get(IN_VM):
        return ("moves the machine's cpuset controller to cgroup v2: only in the qemu guest "
                "of tests/enforce/test_other_kernel.py")
    reason = v1_available()
    if reason:
        return reason
    if not (UNIFIED / "cgroup.controllers").exists():
        return "no cgroup v2 hierarchy at /sys/fs/cgroup/unified"
    if any(p.is_dir() for p in V1_CPUSET.iterdir()):
        return "the v1 cpuset hierarchy has child cgroups: it cannot be unmounted"
    return None


class CpusetOnV2:
    """Moves the cpuset controller from v1 to the v2 hierarchy, and back: unmount v1's
    cpuset, enable +cpuset at the v2 root; to restore, -cpuset, then mount v1 again
    (which fails with EBUSY for a few seconds after the v2 cgroups are gone: retried)."""

    def __enter__(self) -> Path:
        """Unmount v1's cpuset until the controller shows up in v2. A v1 hierarchy whose
        removed cgroups are still being freed (just after a v1 test) outlives its
        umount; mounting it again and retrying once they are gone releases it."""
        import pytest

        deadline = time.monotonic() + 60
        while True:
            unmounted = subprocess.run(["umount", str(V1_CPUSET)], capture_output=True,
                                       text=True)
            if unmounted.returncode != 0:
                pytest.skip("cannot move cpuset to cgroup v2 here: umount of the v1 "
                            f"hierarchy failed ({unmounted.stderr.strip()}); "
                            "tests/enforce/test_other_kernel.py runs this in a VM")
            if self._cpuset_in_v2(within=2):
                break
            self.__exit__()
            if time.monotonic() > deadline:
                pytest.skip("cannot move cpuset to cgroup v2 here: the v1 hierarchy lives "
                            "on after its umount (something holds it open); "
                            "tests/enforce/test_other_kernel.py runs this in a VM")
        (UNIFIED / "cgroup.subtree_control").write_text("+cpuset")
        return UNIFIED

    @staticmethod
    def _cpuset_in_v2(within: float) -> bool:
        deadline = time.monotonic() + within
        while "cpuset" not in (UNIFIED / "cgroup.controllers").read_text().split():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def __exit__(self, *exc_info) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                (UNIFIED / "cgroup.subtree_control").write_text("-cpuset")
            except OSError:
                pass
            mounted = subprocess.run(["mount", "-t", "cgroup", "-o", "cpuset", "cgroup",
                                      str(V1_CPUSET)], capture_output=True)
            if mounted.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if mounted.returncode != 0:
            raise RuntimeError(f"could not mount the v1 cpuset hierarchy back: "
                               f"{mounted.stderr.decode().strip()}")
