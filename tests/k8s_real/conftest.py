"""One real control plane per test session (about 7 s to start), shared by the tests
marked ``real_k8s``; each test works in objects of its own (node names, namespaces)."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import KCM, private_host, require_or_skip
from tests.k8s_real.control_plane import ControlPlane, missing

pytestmark = pytest.mark.real_k8s


@pytest.fixture(scope="session")
def cluster():
    require_or_skip(missing())
    # etcd's data on tmpfs where there is one: its fsyncs cost nothing there.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    base = Path(tempfile.mkdtemp(prefix="kcm-k8s-", dir=shm))
    plane = ControlPlane(base)
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()
        shutil.rmtree(base, ignore_errors=True)
    assert plane.violations == [], plane.violations
    assert plane.peers_seen > 0, "the loopback guard saw no connection at all"


def add_node(cluster: ControlPlane, name: str) -> None:
    """A Node object as a kubelet would register it (there is no kubelet here)."""
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name[:63]}},
            "spec": {"taints": [{"key": "other", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
                       "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"}}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(node))


class KcmInCluster:
    """The real kcm CLI, run in the control plane's network namespace with a kubeconfig."""

    def __init__(self, cluster: ControlPlane, kubeconfig: Path, node: str):
        self.cluster = cluster
        self.env = private_host({k: v for k, v in os.environ.items()
                                 if k not in ("KCM_SYSFS", "KCM_PROC_FS", "KCM_CONF_DIR",
                                              "KCM_NUM_CORES", "KUBERNETES_SERVICE_HOST")},
                                kubeconfig.parent)
        self.env.update(KUBECONFIG=str(kubeconfig), NODE_NAME=node, KCM_LOCK_TIMEOUT="10",
                        KCM_API_RETRY_SECONDS="3")

    def run(self, *args: str, check: bool = False, **kwargs):
        return self.cluster.run([KCM, *args], env=self.env, check=check, **kwargs)
