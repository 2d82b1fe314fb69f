"""The enforcement tests that only another kernel can fail, run on one: Debian's 6.1
(older than 6.2, where a cpuset change resets affinities) in a qemu guest, where the
cpuset controller can also move to cgroup v2 (this machine's init holds it in v1).
The guest sees this checkout and its venv read-only (scripts/kernel-vm.sh).

The guest takes about a minute (software emulation), so tests/conftest.py boots it as
soon as collection is done and moves this test to the end: the rest of the suite runs
meanwhile, and the test only collects the guest's result."""

import os
import platform
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_GUEST = [
    "tests/enforce/test_enforce.py::"
    "test_a_pinned_thread_keeps_its_affinity_when_its_container_changes",
    "tests/enforce/test_enforce_v2.py",
]


def why_not() -> str | None:
    if platform.machine() != "x86_64":
        return "the guest kernel is Debian's amd64 kernel"
    if os.geteuid() != 0:
        return "needs root (qemu and a kernel from apt, cgroups in the guest)"
    if not shutil.which("qemu-system-x86_64") and not shutil.which("apt-get"):
        return "no qemu-system-x86_64 and no apt-get to install it"
    return None


def start_guest() -> subprocess.Popen:
    return subprocess.Popen(
        ["bash", str(ROOT / "scripts/kernel-vm.sh"), "run", str(ROOT), sys.executable,
         "-m", "pytest", "-p", "no:cacheprovider", "--color=no", "-q", "-rs", *IN_GUEST],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.skipif(why_not() is not None, reason=str(why_not()))
def test_enforcement_on_kernel_6_1_with_cgroup_v1_and_v2(request):
    guest = getattr(request.config, "kcm_guest", None) or start_guest()
    try:
        output, _ = guest.communicate(timeout=600)
    finally:
        if guest.poll() is None:
            guest.kill()
            guest.wait()
    assert guest.returncode == 0, output
    if "runs under TCG" in output:
        warnings.warn("the kernel-6.1 guest ran under TCG (no hardware virtualisation "
                      "here); its waits were scaled to its measured speed", stacklevel=1)
    summary = output.strip().splitlines()[-1]
    assert re.match(r"4 passed\b", summary) and not re.search(r"skipped|failed|error",
                                                               summary), output
