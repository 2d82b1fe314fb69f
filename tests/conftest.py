"""Shared fixtures: the real kcm CLI as a subprocess, and generated machines."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from tests.machines import build_sysfs, load_machine, machine_env

# Property tests draw the same examples on every run (a failure is reproducible and CI
# is not a lottery); KCM_FUZZ_EXAMPLES switches to fresh random examples for long runs.
settings.register_profile("fixed", derandomize=True)
if "KCM_FUZZ_EXAMPLES" not in os.environ:
    settings.load_profile("fixed")

KCM = str(Path(sys.executable).with_name("kcm"))
CMK = str(Path(sys.executable).with_name("cmk"))
GUEST_TEST = "test_other_kernel.py::"
NODE_TESTS = "tests/k8s_node/"


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what they do
def pytest_collection_modifyitems(config, items):
    """The kernel-VM test last, its guest booted now, and the real node's tests after
    everything else but it, the node booted now: both come up beside the rest."""
    node_tests = [item for item in items if item.nodeid.startswith(NODE_TESTS)]
    if node_tests:
        items[:] = [item for item in items if not item.nodeid.startswith(NODE_TESTS)] + node_tests
        from tests.k8s_node.conftest import boot_early

        config.kcm_node = boot_early()
    guest_tests = [item for item in items if GUEST_TEST in item.nodeid]
    if not guest_tests:
        return
    items[:] = [item for item in items if GUEST_TEST not in item.nodeid] + guest_tests
    from tests.enforce.test_other_kernel import start_guest, why_not

    if why_not() is None:
        config.kcm_guest = start_guest()


def pytest_unconfigure(config):
    node = getattr(config, "kcm_node", None)
    if node is not None and not node.stopped:  # booted, but its tests never ran
        import shutil

        node.stop()
        shutil.rmtree(node.state.parent, ignore_errors=True)
    guest = getattr(config, "kcm_guest", None)
    if guest is not None and guest.poll() is None:
        guest.kill()
        guest.wait()


class Kcm:
    """Runs the installed ``kcm`` console script with a given environment."""

    def __init__(self, env: dict[str, str]):
        self.env = env

    def run(self, *args: str, check: bool = False, timeout: float = 60,
            env_overrides: dict[str, str] | None = None, **kwargs):
        env = {**self.env, **(env_overrides or {})}
        result = subprocess.run([KCM, *args], env=env, capture_output=True, text=True,
                                timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise AssertionError(f"kcm {' '.join(args)} failed ({result.returncode}): "
                                 f"{result.stderr}")
        return result

    def popen(self, *args: str, env_overrides: dict[str, str] | None = None,
              **kwargs) -> subprocess.Popen:
        return subprocess.Popen([KCM, *args], env={**self.env, **(env_overrides or {})},
                                **kwargs)


REQUIRE_ALL = "KCM_TESTS_REQUIRE_ALL"
"""Set (by .ci/run): a test whose real API server or real node cannot run fails instead
of skipping."""


def require_or_skip(reason: str | None) -> None:
    """Nothing when ``reason`` is None; else skip the test, or fail it under CI."""
    if reason is None:
        return
    if os.environ.get(REQUIRE_ALL):
        pytest.fail(f"{reason} ({REQUIRE_ALL} is set)")
    pytest.skip(reason)


def private_host(env: dict[str, str], scratch: Path) -> dict[str, str]:
    """``env`` with kcm pointed away from the host's own cgroup tree and kubelet state:
    a test reads only what it made or chose (the suite passes on a Kubernetes node,
    beside the real node of tests/k8s_node, and beside another enforce). A test that
    wants enforcement seen passes ``--cgroup-root`` of a tree it made."""
    return {**env, "KCM_CGROUP_ROOT": str(scratch / "no-cgroup-tree"),
            "KCM_KUBELET_STATE": str(scratch / "no-kubelet" / "cpu_manager_state")}


@pytest.fixture
def kcm(tmp_path: Path) -> Kcm:
    """kcm on this machine's real sysfs and procfs, lock timeout shortened."""
    env = dict(os.environ)
    for name in ("KCM_SYSFS", "KCM_PROC_FS", "KCM_CONF_DIR", "KCM_NUM_CORES"):
        env.pop(name, None)
    env["KCM_LOCK_TIMEOUT"] = "10"
    return Kcm(private_host(env, tmp_path))


@pytest.fixture
def machine(tmp_path: Path):
    """Build a machine's sysfs tree; returns a Kcm pointed at it (real procfs)."""
    def make(name_or_machine, fake_proc: bool = False, **options) -> Kcm:
        data = load_machine(name_or_machine) if isinstance(name_or_machine, str) \
            else name_or_machine
        root = tmp_path / f"machine-{data['name']}"
        build_sysfs(data, root, **options)
        env = machine_env(root, fake_proc=fake_proc)
        env["KCM_LOCK_TIMEOUT"] = "10"
        env.pop("KCM_NUM_CORES", None)
        return Kcm(env)

    return make
