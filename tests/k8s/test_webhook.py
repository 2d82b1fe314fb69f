"""The admission webhook: the real server over real TLS on 127.0.0.1."""

import base64
import copy
import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import jsonpatch
import kubernetes_validate
import pytest

from tests.integration.workloads import wait_for
from tests.k8s.conftest import Tls


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Webhook:
    def __init__(self, kcm, tls: Tls):
        self.tls = tls
        self.port = free_port()
        self.proc = kcm.popen("webhook", f"--tls-cert-file={tls.cert_file}",
                              f"--tls-private-key-file={tls.key_file}",
                              f"--secure-port={self.port}", "--bind-address=127.0.0.1",
                              stderr=subprocess.PIPE, text=True)
        wait_for(self.healthy, timeout=20)

    def context(self, ca_file=None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(ca_file or self.tls.ca_file))
        return context

    def connection(self, ca_file=None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10,
                                           context=self.context(ca_file))

    def healthy(self) -> bool:
        try:
            connection = self.connection()
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False

    def post(self, body: bytes, content_type: str = "application/json",
             connection=None) -> tuple[int, dict]:
        connection = connection or self.connection()
        connection.request("POST", "/mutate", body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else {}

    def review(self, obj: dict, kind: str = "Pod", group: str = "") -> dict:
        status, answer = self.post(json.dumps(admission_review(obj, kind, group)).encode())
        assert status == 200, answer
        return answer["response"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def admission_review(obj: dict, kind: str = "Pod", group: str = "", uid: str = "u-1") -> dict:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": uid, "kind": {"group": group, "version": "v1", "kind": kind},
                        "resource": {"group": group, "version": "v1",
                                     "resource": kind.lower() + "s"},
                        "operation": "CREATE", "namespace": "default", "object": obj}}


def pod(*containers, annotations=None, init=(), **spec) -> dict:
    meta = {"name": "app", "namespace": "default"}
    if annotations is not None:
        meta["annotations"] = annotations
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": list(containers), **spec}}
    if init:
        body["spec"]["initContainers"] = list(init)
    return body


def container(name: str, cores: int | None = None, **extra) -> dict:
    body = {"name": name, "image": "example/app:1",
            "command": ["/opt/bin/kcm", "isolate", "--pool=dataplane", "--", "app"], **extra}
    if cores is not None:
        body["resources"] = {"limits": {"kcm.dev/dataplane-cores": str(cores)}}
    return body


def apply(obj: dict, response: dict) -> dict:
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    for op in patch:
        assert op["op"] == "add"
        assert op["path"] not in ("/spec", "/metadata", "")
    return jsonpatch.apply_patch(copy.deepcopy(obj), patch)


@pytest.fixture
def webhook(kcm, tls):
    server = Webhook(kcm, tls)
    yield server
    server.stop()


def env_of(c: dict) -> dict:
    return {e["name"]: e["value"] for e in c.get("env", [])}


def test_single_container_pod_gets_what_isolate_needs(webhook):
    original = pod(container("app", cores=2))
    response = webhook.review(original)
    assert response["allowed"] is True and response["uid"] == "u-1"
    mutated = apply(original, response)
    kubernetes_validate.validate(mutated, "1.30", strict=True)
    volumes = {v["name"]: v["hostPath"]["path"] for v in mutated["spec"]["volumes"]}
    assert volumes == {"kcm-conf": "/etc/kcm", "kcm-host-proc": "/proc", "kcm-install": "/opt/bin"}
    (app,) = mutated["spec"]["containers"]
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in app["volumeMounts"]}
    assert mounts == {"/etc/kcm": False, "/host/proc": True, "/opt/bin": True}
    assert env_of(app) == {"KCM_CONF_DIR": "/etc/kcm", "KCM_PROC_FS": "/host/proc",
                           "KCM_NUM_CORES": "2"}
    assert mutated["metadata"]["annotations"] == {"kcm.dev/mutated": "true"}
    for forbidden in ("serviceAccountName", "tolerations", "securityContext", "hostPID"):
        assert forbidden not in mutated["spec"]
    # kcm isolate writes the root-owned configuration directory: the container runs as
    # root (as uid 65532, kcm's image's user, it could not open the lock file).
    assert app["securityContext"] == {"runAsUser": 0}


def test_a_user_the_pod_chose_stands(webhook):
    """runAsNonRoot or a user set by the pod or the container is never overridden."""
    chosen = [({"runAsNonRoot": True}, None), ({"runAsUser": 1000}, None),
              (None, {"runAsUser": 1000}), (None, {"runAsNonRoot": True})]
    for pod_context, container_context in chosen:
        original = pod(container("app", cores=1))
        if pod_context:
            original["spec"]["securityContext"] = pod_context
        if container_context:
            original["spec"]["containers"][0]["securityContext"] = container_context
        (app,) = apply(original, webhook.review(original))["spec"]["containers"]
        assert app.get("securityContext") == container_context
    capped = pod(container("app", cores=1))
    capped["spec"]["containers"][0]["securityContext"] = {"capabilities": {"drop": ["ALL"]}}
    (app,) = apply(capped, webhook.review(capped))["spec"]["containers"]
    assert app["securityContext"] == {"capabilities": {"drop": ["ALL"]}, "runAsUser": 0}


def test_only_the_containers_that_use_kcm(webhook):
    original = pod(container("app", cores=1), container("sidecar"),
                   init=[container("setup", cores=1), container("plain-init")])
    mutated = apply(original, webhook.review(original))
    app, sidecar = mutated["spec"]["containers"]
    setup, plain = mutated["spec"]["initContainers"]
    assert env_of(app)["KCM_NUM_CORES"] == "1" and env_of(setup)["KCM_NUM_CORES"] == "1"
    assert "env" not in sidecar and "volumeMounts" not in sidecar
    assert "env" not in plain


def test_annotation_only_pods_mount_every_container_without_num_cores(webhook):
    original = pod(container("a"), container("b"), annotations={"kcm.dev/pool": "infra"})
    mutated = apply(original, webhook.review(original))
    for c in mutated["spec"]["containers"]:
        assert env_of(c) == {"KCM_CONF_DIR": "/etc/kcm", "KCM_PROC_FS": "/host/proc"}
    assert mutated["metadata"]["annotations"] == {"kcm.dev/pool": "infra",
                                                  "kcm.dev/mutated": "true"}


def test_existing_names_win(webhook):
    mine = {"name": "kcm-conf", "hostPath": {"path": "/srv/kcm", "type": "Directory"}}
    app = container("app", cores=1, env=[{"name": "KCM_CONF_DIR", "value": "/srv/kcm"}],
                    volumeMounts=[{"name": "kcm-conf", "mountPath": "/srv/kcm"}])
    original = pod(app, volumes=[mine, {"name": "data", "emptyDir": {}}])
    mutated = apply(original, webhook.review(original))
    volumes = mutated["spec"]["volumes"]
    assert volumes[:2] == [mine, {"name": "data", "emptyDir": {}}]
    assert [v["name"] for v in volumes] == ["kcm-conf", "data", "kcm-host-proc", "kcm-install"]
    (c,) = mutated["spec"]["containers"]
    assert [m["name"] for m in c["volumeMounts"]] == ["kcm-conf", "kcm-host-proc", "kcm-install"]
    assert c["volumeMounts"][0]["mountPath"] == "/srv/kcm"
    assert env_of(c)["KCM_CONF_DIR"] == "/srv/kcm"
    kubernetes_validate.validate(mutated, "1.30", strict=True)


def test_a_second_pass_is_a_no_op(webhook):
    original = pod(container("app", cores=1))
    mutated = apply(original, webhook.review(original))
    again = webhook.review(mutated)
    assert again == {"uid": "u-1", "allowed": True}


def test_other_pods_and_kinds_pass_untouched(webhook):
    assert webhook.review(pod(container("plain"))) == {"uid": "u-1", "allowed": True}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"template": {"metadata": {"annotations": {"kcm.dev/pool": "x"}}}}}
    assert webhook.review(deployment, kind="Deployment", group="apps") == {
        "uid": "u-1", "allowed": True}


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"{" * 10, "application/json", 400),
    (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1", "request": {}}',
     "application/json", 400),
    (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {}}',
     "application/json", 400),
    (b"[]", "application/json", 400),
    (json.dumps(admission_review(pod(container("a", 1)))).encode(), "text/plain", 415),
], ids=["malformed-json", "old-version", "no-uid", "not-an-object", "wrong-content-type"])
def test_bad_requests_get_a_4xx_and_the_server_keeps_serving(webhook, body, content_type, status):
    got, answer = webhook.post(body, content_type)
    assert got == status and "error" in answer
    assert webhook.review(pod(container("app", cores=1)))["allowed"] is True


def test_a_body_over_the_limit_is_refused_before_it_is_read(webhook):
    with socket.create_connection(("127.0.0.1", webhook.port), timeout=10) as raw:
        with webhook.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls_socket:
            tls_socket.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Type: application/json\r\n"
                               b"Content-Length: 2097152\r\n\r\n" + b"{" * 1000)
            reply = tls_socket.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413")
    assert webhook.review(pod(container("app", cores=1)))["allowed"] is True


def test_unknown_paths_and_methods(webhook):
    connection = webhook.connection()
    connection.request("GET", "/mutate")
    assert connection.getresponse().status == 404
    connection = webhook.connection()
    connection.request("PUT", "/mutate", body=b"{}")
    assert connection.getresponse().status == 405


def test_plain_http_is_refused(webhook):
    connection = http.client.HTTPConnection("127.0.0.1", webhook.port, timeout=5)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        connection.request("GET", "/healthz")
        connection.getresponse()
    assert webhook.healthy()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_old_tls_versions_are_refused(webhook):
    tls12 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls12.load_verify_locations(str(webhook.tls.ca_file))
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    connection = http.client.HTTPSConnection("127.0.0.1", webhook.port, timeout=5, context=tls12)
    connection.request("GET", "/healthz")
    assert connection.getresponse().status == 200
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(webhook.tls.ca_file))
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.minimum_version = ssl.TLSVersion.TLSv1
    connection = http.client.HTTPSConnection("127.0.0.1", webhook.port, timeout=5,
                                             context=context)
    with pytest.raises((ssl.SSLError, OSError)):
        connection.request("GET", "/healthz")
        connection.getresponse()


def test_a_rotated_certificate_is_served_without_restart(webhook, tmp_path):
    fresh = Tls(tmp_path / "rotated")
    for name in ("cert_file", "key_file"):
        staged = tmp_path / f"{name}.new"
        staged.write_bytes(getattr(fresh, name).read_bytes())
        os.replace(staged, getattr(webhook.tls, name))

    def new_ca_accepted() -> bool:
        try:
            connection = webhook.connection(ca_file=fresh.ca_file)
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except (ssl.SSLError, OSError):
            return False

    wait_for(new_ca_accepted, timeout=10)
    with pytest.raises(ssl.SSLError):
        connection = webhook.connection()
        connection.request("GET", "/healthz")
    assert webhook.proc.poll() is None


def test_bad_certificate_files_are_a_clear_error(kcm, tmp_path):
    (tmp_path / "bad.crt").write_text("not a certificate")
    result = kcm.run("webhook", f"--tls-cert-file={tmp_path / 'bad.crt'}",
                     f"--tls-private-key-file={tmp_path / 'bad.crt'}", "--secure-port=1")
    assert result.returncode == 1
    assert result.stderr.startswith("kcm: cannot load the TLS certificate")


def test_hundreds_of_parallel_reviews_are_all_answered_correctly(webhook):
    kinds = [pod(container("app", cores=n % 3 + 1)) for n in range(8)] + [pod(container("x"))]

    def client(worker: int) -> list[float]:
        connection = webhook.connection()
        latencies = []
        for n in range(40):
            obj = kinds[(worker + n) % len(kinds)]
            uid = f"w{worker}-{n}"
            started = time.perf_counter()
            status, answer = webhook.post(json.dumps(admission_review(obj, uid=uid)).encode(),
                                          connection=connection)
            latencies.append(time.perf_counter() - started)
            assert status == 200 and answer["response"]["uid"] == uid
            mutated = apply(obj, answer["response"])
            cores = obj["spec"]["containers"][0].get("resources")
            if cores:
                assert env_of(mutated["spec"]["containers"][0])["KCM_NUM_CORES"] == \
                    cores["limits"]["kcm.dev/dataplane-cores"]
            else:
                assert "patch" not in answer["response"]
        return latencies

    with ThreadPoolExecutor(8) as pool:
        latencies = sorted(value for batch in pool.map(client, range(8)) for value in batch)
    assert len(latencies) == 320
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"webhook: {len(latencies)} reviews, p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")


def hang_up_after_sending(port: int, payload: bytes, tls_context: ssl.SSLContext | None) -> None:
    """Send a request and close at once with a reset, before the answer can be read."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock = tls_context.wrap_socket(raw, server_hostname="127.0.0.1") if tls_context else raw
    sock.sendall(payload)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    sock.close()


def test_clients_that_hang_up_do_not_kill_the_server(webhook):
    """Before the fix SIGPIPE (default action) killed the server in 14 of 16 runs."""
    body = json.dumps(admission_review(pod(container("app", cores=1)))).encode()
    request = (b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    for _ in range(3):
        for _ in range(16):
            hang_up_after_sending(webhook.port, request * 20, webhook.context())
        assert webhook.review(pod(container("app", cores=1)))["allowed"]
    assert webhook.proc.poll() is None


def test_an_idle_flood_does_not_lock_out_a_real_client(webhook):
    """More idle connections than the server keeps (256): the oldest idle ones are
    evicted, and a review still gets its answer."""
    idle = [socket.create_connection(("127.0.0.1", webhook.port), timeout=10)
            for _ in range(300)]
    try:
        for _ in range(5):
            assert webhook.review(pod(container("app", cores=1)))["allowed"]
        evicted = sum(1 for sock in idle[:40] if _closed_by_peer(sock))
        assert evicted > 0
    finally:
        for sock in idle:
            sock.close()
    assert webhook.proc.poll() is None


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return False
