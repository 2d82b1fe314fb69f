"""One real control plane per test session (about 7 s to start), shared by the tests
marked ``real_k8s``; each test works in objects of its own (node names, namespaces)."""

import os
from pathlib import Path

import pytest

from tests.conftest import KCM
from tests.k8s_real.control_plane import ControlPlane, missing

pytestmark = pytest.mark.real_k8s


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    reason = missing()
    if reason:
        pytest.skip(reason)
    shm = Path("/dev/shm")
    base = Path(tmp_path_factory.mktemp("k8s")) if not shm.is_dir() else Path(
        __import__("tempfile").mkdtemp(prefix="kcm-k8s-", dir=shm))
    plane = ControlPlane(base)
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()
        __import__("shutil").rmtree(base, ignore_errors=True)
    assert plane.violations == [], plane.violations
    assert plane.peers_seen > 0, "the loopback guard saw no connection at all"


class KcmInCluster:
    """The real kcm CLI, run in the control plane's network namespace with a kubeconfig."""

    def __init__(self, cluster: ControlPlane, kubeconfig: Path, node: str):
        self.cluster = cluster
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("KCM_SYSFS", "KCM_PROC_FS", "KCM_CONF_DIR", "KCM_NUM_CORES",
                                 "KUBERNETES_SERVICE_HOST")}
        self.env.update(KUBECONFIG=str(kubeconfig), NODE_NAME=node, KCM_LOCK_TIMEOUT="10",
                        KCM_API_RETRY_SECONDS="3")

    def run(self, *args: str, check: bool = False, **kwargs):
        return self.cluster.run([KCM, *args], env=self.env, check=check, **kwargs)
