"""A real Kubernetes control plane for the tests: etcd and kube-apiserver v1.20.2 (built by
scripts/k8s-real.sh) in a network namespace that has nothing but loopback.

Everything that talks to the server (kubectl, helm, kcm) runs in that namespace through
``nsenter``, so nothing the server is configured to dial can leave the machine; a guard
thread also reads the server's and etcd's sockets every 50 ms and records any peer outside
127.0.0.0/8 and ::1 (the fixture fails the run on one). The server runs with the RBAC
authorizer, a static admin token, service-account token signing (``kubectl create token``
works for any ServiceAccount) and an audit log of every request (who, verb, resource),
and with ``--enable-aggregator-routing=true``: a Service named by a webhook is resolved
through its Endpoints, never dialled at its ClusterIP."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path

CACHE = Path(os.environ.get("KCM_K8S_CACHE", "/var/tmp/kcm-k8s-real"))
BIN = CACHE / "bin"
API_PORT = 6443
ETCD_PORT = 2379
AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                "rules": [{"level": "Metadata", "omitStages": ["RequestReceived"]}]}


def missing() -> str | None:
    """None when a control plane can start here, else why not."""
    if os.geteuid() != 0:
        return "needs root (a network namespace)"
    for name in ("kube-apiserver", "etcd", "kubectl", "helm", "helm4"):
        if not os.access(BIN / name, os.X_OK):
            return f"no {BIN / name}: run `bash scripts/k8s-real.sh prepare` once"
    if not shutil.which("nsenter") or not shutil.which("unshare"):
        return "needs nsenter and unshare (util-linux)"
    return None


class ControlPlane:
    def __init__(self, directory: Path):
        self.dir = directory
        self.token = secrets.token_hex(16)
        self.server = f"https://127.0.0.1:{API_PORT}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.violations: list[str] = []
        self.peers_seen = 0
        self._stop = threading.Event()
        self._guard: threading.Thread | None = None

    # -- running things in the namespace ---------------------------------------------

    def in_netns(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.procs['netns'].pid}/ns/net", "--", *argv]

    def run(self, argv: list[str], env: dict | None = None, check: bool = True,
            timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
        result = subprocess.run(self.in_netns(argv), env=env, capture_output=True, text=True,
                                timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}):\n"
                                 f"{result.stdout}{result.stderr}")
        return result

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.in_netns(argv), **kwargs)

    def kubectl(self, *args: str, kubeconfig: Path | None = None, check: bool = True,
                **kwargs) -> subprocess.CompletedProcess:
        return self.run([str(BIN / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}",
                         *args], check=check, **kwargs)

    def get(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def kubeconfig_for(self, token: str, name: str) -> Path:
        """A kubeconfig that authenticates with ``token`` (e.g. a ServiceAccount's)."""
        path = self.dir / f"kubeconfig-{name}"
        ca = (self.dir / "certs/apiserver.crt").read_text()
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "real",
            "clusters": [{"name": "real", "cluster": {
                "server": self.server,
                "certificate-authority-data": base64.b64encode(ca.encode()).decode()}}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": "real", "context": {"cluster": "real", "user": name}}]}))
        return path

    def service_account_token(self, namespace: str, name: str) -> str:
        return self.kubectl("create", "token", name, f"--namespace={namespace}",
                            "--duration=1h").stdout.strip()

    def audit(self) -> list[dict]:
        """Every request the server logged so far (audit.k8s.io/v1 Events)."""
        path = self.dir / "audit.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    # -- start and stop --------------------------------------------------------------

    def start(self, ready_timeout: float = 120) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs["netns"] = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"])
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{self.procs['netns'].pid}/ns/net") == os.readlink(
                "/proc/self/ns/net"):
            if time.monotonic() > deadline:
                raise RuntimeError("no network namespace")
            time.sleep(0.01)
        self.run(["ip", "link", "set", "lo", "up"])
        subprocess.run(["openssl", "genrsa", "-out", str(self.dir / "sa.key"), "2048"],
                       check=True, capture_output=True)
        (self.dir / "tokens.csv").write_text(f"{self.token},admin,admin-uid,system:masters\n")
        (self.dir / "audit-policy.json").write_text(json.dumps(AUDIT_POLICY))
        etcd = [str(BIN / "etcd"), "--name=kcm-test", f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{ETCD_PORT}",
                f"--advertise-client-urls=http://127.0.0.1:{ETCD_PORT}",
                f"--listen-peer-urls=http://127.0.0.1:{ETCD_PORT + 1}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{ETCD_PORT + 1}",
                f"--initial-cluster=kcm-test=http://127.0.0.1:{ETCD_PORT + 1}"]
        audience = "https://kubernetes.default.svc.cluster.local"
        apiserver = [
            str(BIN / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{ETCD_PORT}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={API_PORT}", "--insecure-port=0",
            f"--cert-dir={self.dir / 'certs'}", f"--token-auth-file={self.dir / 'tokens.csv'}",
            "--authorization-mode=RBAC", f"--service-account-issuer={audience}",
            f"--service-account-signing-key-file={self.dir / 'sa.key'}",
            f"--service-account-key-file={self.dir / 'sa.key'}", f"--api-audiences={audience}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--disable-admission-plugins=ServiceAccount", "--enable-priority-and-fairness=false",
            "--enable-aggregator-routing=true",
            f"--audit-policy-file={self.dir / 'audit-policy.json'}",
            f"--audit-log-path={self.dir / 'audit.log'}", "--audit-log-format=json"]
        for name, argv in (("etcd", etcd), ("kube-apiserver", apiserver)):
            with open(self.dir / f"{name}.log", "w") as log:
                self.procs[name] = self.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self._guard = threading.Thread(target=self._watch, daemon=True)
        self._guard.start()
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.procs["kube-apiserver"].poll() is not None:
                raise RuntimeError("kube-apiserver exited:\n" + self._log_tail())
            crt = self.dir / "certs/apiserver.crt"
            if crt.exists():
                self.kubeconfig.write_text(self.kubeconfig_for(self.token, "admin").read_text())
                probe = self.kubectl("get", "--raw=/readyz", check=False, timeout=10)
                if probe.returncode == 0 and probe.stdout.strip() == "ok":
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("kube-apiserver not ready:\n" + self._log_tail())
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        for name in ("kube-apiserver", "etcd", "netns"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self._guard:
            self._guard.join(5)

    def _log_tail(self) -> str:
        return "\n".join((self.dir / "kube-apiserver.log").read_text().splitlines()[-20:])

    # -- the loopback guard ------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            for name in ("kube-apiserver", "etcd"):
                proc = self.procs.get(name)
                if proc is None or proc.poll() is not None:
                    continue
                for peer in socket_peers(proc.pid):
                    self.peers_seen += 1
                    if not peer.is_loopback:
                        self.violations.append(f"{name} (pid {proc.pid}) connected to {peer}")
                        self.procs["kube-apiserver"].kill()


def socket_peers(pid: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The remote addresses of the TCP and UDP sockets process ``pid`` holds (its fds
    matched by inode against the tables of its network namespace); listeners excluded."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return []
    peers = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[9] not in inodes:
                continue
            address = _decode(fields[2])
            if not address.is_unspecified:
                peers.append(address)
    return peers


def _decode(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    host = bytes.fromhex(hex_address.split(":")[0])
    # /proc/net keeps each 32-bit word in host (little-endian) byte order.
    raw = b"".join(host[i:i + 4][::-1] for i in range(0, len(host), 4))
    address = ipaddress.ip_address(raw)
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
