"""Fixtures for the Kubernetes tests: the stand-in API server and kcm pointed at it."""

import datetime
import ipaddress
import json
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.k8s.apiserver import BUILTIN, RunningApiServer

NODE_KIND = BUILTIN[0]
NAMESPACE_KIND = BUILTIN[1]


def kubeconfig(url: str, path: Path, token: str = "test-token") -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": url}}],
        "users": [{"name": "test", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    return path


def add_node(api: RunningApiServer, name: str, **extra) -> dict:
    node = {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": extra.pop("spec", {}),
            "status": {"capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
                       "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"}}}
    node.update(extra)
    return api.store.put(NODE_KIND, node)


@pytest.fixture
def api():
    with RunningApiServer() as server:
        yield server


@pytest.fixture
def k8s_kcm(kcm, api, tmp_path):
    """kcm (real CLI) configured for the stand-in server through a kubeconfig file."""
    kcm.env["KUBECONFIG"] = str(kubeconfig(api.url, tmp_path / "kubeconfig"))
    kcm.env["KCM_API_RETRY_SECONDS"] = "3"
    kcm.env["NODE_NAME"] = "node-1"
    kcm.env.pop("KUBERNETES_SERVICE_HOST", None)
    add_node(api, "node-1")
    return kcm


class Tls:
    """A CA and a serving certificate for 127.0.0.1, minted for the test."""

    def __init__(self, directory: Path):
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kcm test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=1))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                     x509.DNSName("localhost")]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = directory / "ca.crt"
        self.cert_file = directory / "tls.crt"
        self.key_file = directory / "tls.key"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture
def tls(tmp_path) -> Tls:
    return Tls(tmp_path / "tls")
