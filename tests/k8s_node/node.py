"""A real single-node Kubernetes (scripts/k8s-node.sh) for the tests: kubelet,
containerd, scheduler, controller-manager and API server in a network namespace of its
own, with kcm's own image imported. Everything it starts it stops by recorded PID;
everything it makes (mounts, kubepods cgroups, the namespace, host paths) it removes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

from tests.conftest import KCM, private_host

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/k8s-node.sh"
CACHE = Path(os.environ.get("KCM_K8S_CACHE", "/var/tmp/kcm-k8s-real"))
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
            "kubectl", "helm")
NODE = "kcm-node-1"
IMAGE = "kcm.local/kcm:0.2.0"
CPUSET_V1 = Path("/sys/fs/cgroup/cpuset")


def missing() -> str | None:
    """None when the real node can start here, else why not."""
    if os.geteuid() != 0:
        return "needs root (a network namespace, containerd, cgroups)"
    for name in BINARIES:
        if not os.access(CACHE / "bin" / name, os.X_OK):
            return f"no {CACHE / 'bin' / name}: run `bash scripts/k8s-node.sh prepare` once"
    for tool in ("containerd", "runc", "ctr", "nsenter", "gcc", "busybox"):
        if not shutil.which(tool):
            return f"no {tool}: run `bash scripts/k8s-node.sh prepare` once"
    if not (CPUSET_V1 / "cpuset.cpus").exists():
        return "the node's tests need the cgroup v1 cpuset hierarchy (this machine's layout)"
    if (CPUSET_V1 / "kubepods").exists():
        return f"{CPUSET_V1 / 'kubepods'} exists: another kubelet runs on this machine"
    return None


class Node:
    def __init__(self, base: Path):
        self.state = base / "node"
        self.images = base / "images"
        self.conf = self.state / "host/etc-kcm"
        self.install = self.state / "host/opt-bin"
        self.env = {**private_host(dict(os.environ), base), "KCM_NODE_IMAGES": str(self.images)}
        self.timings: dict[str, float] = {}
        self.boot: threading.Thread | None = None
        self.failure: BaseException | None = None
        self.stopped = False

    def boot_now(self) -> None:
        """Images, then the node; a failure is kept for the fixture to raise."""
        try:
            self.build_images()
            self.start()
        except BaseException as error:
            self.failure = error

    def build_images(self) -> None:
        started = time.monotonic()
        subprocess.run(["bash", str(SCRIPT), "images", str(ROOT), str(self.images)],
                       env={**self.env, "KCM_PYTHON": str(Path(KCM).with_name("python"))},
                       check=True, capture_output=True, timeout=600)
        self.timings["images built"] = time.monotonic() - started

    def start(self) -> None:
        started = time.monotonic()
        result = subprocess.run(["bash", str(SCRIPT), "start", str(self.state)], env=self.env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        self.timings["node Ready"] = time.monotonic() - started

    def stop(self) -> None:
        """Stop everything the node started (after its boot thread, if any, is done)."""
        if self.boot is not None:
            self.boot.join()
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.state)], env=self.env,
                       capture_output=True, timeout=300)
        self.stopped = True

    def script(self, action: str) -> None:
        subprocess.run(["bash", str(SCRIPT), action, str(self.state)], env=self.env,
                       check=True, capture_output=True, timeout=120)

    def run(self, *argv: str, check: bool = True, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess:
        """A command in the node's network namespace (where its API is), KUBECONFIG set."""
        result = subprocess.run(["bash", str(SCRIPT), "exec", str(self.state), *argv],
                                env=self.env, capture_output=True, text=True, timeout=timeout,
                                input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)}: {result.returncode}\n{result.stderr}")
        return result

    def kubectl(self, *argv: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("kubectl", *argv, **kwargs)

    def kcm(self, *argv: str, **kwargs) -> subprocess.CompletedProcess:
        """The operator's kcm (this checkout), against the node's API server."""
        return self.run(KCM, *argv, **kwargs)

    def get(self, *argv: str) -> dict:
        return json.loads(self.kubectl("get", *argv, "-o", "json").stdout)

    def apply(self, document: dict) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(document))


def new_base() -> Path:
    """Where a node lives: a real disk (overlayfs snapshots), private to this run."""
    base = Path("/var/tmp") / f"kcm-node-{uuid.uuid4().hex[:8]}"
    base.mkdir()
    return base
