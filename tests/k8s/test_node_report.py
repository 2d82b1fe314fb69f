"""``kcm node-report``: the report, its checks, publishing a NodeReport, metrics."""

import json
import os
import signal
import socket
import subprocess
import urllib.request

import jsonschema
import kubernetes_validate
import pytest

from kcm.manifests import node_report_crd
from tests.integration.workloads import make_conf, wait_for
from tests.k8s.apiserver import BUILTIN
from tests.k8s.schema import report_fields_the_crd_prunes
from tests.machines import xeon_d1541

CRD_KIND = BUILTIN[-1]


def checks_of(report: dict) -> dict:
    return {check["name"]: check for check in report["checks"]}


@pytest.fixture
def d1541_conf(machine, tmp_path):
    kcm = machine(xeon_d1541())
    conf = tmp_path / "kcm"
    kcm.run("init", f"--conf-dir={conf}", check=True)
    return kcm, conf


def test_report_of_a_healthy_node(d1541_conf):
    kcm, conf = d1541_conf
    report = json.loads(kcm.run("node-report", f"--conf-dir={conf}", check=True).stdout)
    assert report["topology"]["cores"] == 8 and report["topology"]["threads"] == 16
    assert report["topology"]["numaNodes"] == {"0": "0-15"}
    assert sorted(report["pools"]) == ["controlplane", "dataplane", "infra"]
    assert all(check["ok"] for check in report["checks"]), report["checks"]


def test_checks_find_dead_tasks_drift_and_unpooled_cpus(d1541_conf):
    kcm, conf = d1541_conf
    dead = subprocess.Popen(["true"])
    dead.wait()
    (conf / "pools/dataplane/4,12/tasks").write_text(str(dead.pid))
    # A live process (this test) recorded on one core but free to run anywhere.
    (conf / "pools/dataplane/5,13/tasks").write_text(str(os.getpid()))
    (conf / "pools/controlplane/3,11").rename(conf / "pools/controlplane/3")
    report = json.loads(kcm.run("node-report", f"--conf-dir={conf}", check=True).stdout)
    checks = checks_of(report)
    assert checks["deadTasks"]["errors"] == [
        f"task {dead.pid} in pool dataplane CPU list 4,12 is dead"]
    assert not checks["affinity"]["ok"]
    assert str(os.getpid()) in checks["affinity"]["errors"][0]
    assert checks["cpusInPools"]["errors"] == ["online CPUs in no pool: 11"]
    assert checks["configDirectory"]["ok"]


def test_overlaps_and_isolation_are_checks_not_crashes(machine, tmp_path):
    kcm = machine(xeon_d1541(), fake_proc=True, cmdline="isolcpus=4-7,12-15")
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["2,10", "4,12"]),
                                        "infra": (False, ["0-2,8-10"])})
    report = json.loads(kcm.run("node-report", f"--conf-dir={conf}", check=True).stdout)
    checks = checks_of(report)
    assert not checks["disjointCpuLists"]["ok"]
    assert "CPU 2 is in two CPU lists" in checks["disjointCpuLists"]["errors"][0]
    assert checks["exclusiveOnIsolated"]["errors"] == [
        "exclusive pool dataplane CPU list 2,10 has CPUs that are not isolated: 2,10"]


def test_a_broken_directory_is_reported(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"infra": (False, ["0"])})
    (conf / "pools/infra/0/tasks").write_text("x")
    # A line kcm cannot read: the directory is reported, the list counts as held, and
    # every other check still runs.
    report = json.loads(kcm.run("node-report", f"--conf-dir={conf}", check=True).stdout)
    checks = checks_of(report)
    assert not checks["configDirectory"]["ok"]
    assert checks["configDirectory"]["errors"] == [f"{conf}/pools/infra/0/tasks: 'x' is not a PID"]
    assert all(c["ran"] for c in report["checks"]) and "infra" in report["pools"]
    # A directory kcm cannot read at all: what could not run says so.
    (conf / "pools/infra/0/notes").write_text("")
    report = json.loads(kcm.run("node-report", f"--conf-dir={conf}", check=True).stdout)
    checks = checks_of(report)
    assert not checks["configDirectory"]["ok"] and checks["configDirectory"]["ran"]
    assert report["pools"] == {}
    # What could not run says so; it is never reported as ok.
    skipped = [c for c in report["checks"] if not c["ran"]]
    assert {c["name"] for c in skipped} == {"disjointCpuLists", "exclusiveOnIsolated",
                                            "cpusOnline", "cpusInPools", "deadTasks", "affinity"}
    assert all(not c["ok"] and c["errors"][0].startswith("not run:") for c in skipped)


def test_a_field_the_crd_does_not_declare_is_seen():
    assert report_fields_the_crd_prunes({"topology": {"cores": 1, "dies": 2}}) == [
        "spec.topology.dies"]


def test_crd_is_valid_and_reports_match_its_schema(d1541_conf):
    kcm, conf = d1541_conf
    crd = node_report_crd()
    for version in ("1.30", "1.35"):
        kubernetes_validate.validate(crd, version, strict=True)
    report = json.loads(kcm.run("node-report", f"--conf-dir={conf}", check=True).stdout)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    jsonschema.validate({"apiVersion": "kcm.dev/v1", "kind": "NodeReport",
                         "metadata": {"name": "n"}, "spec": report}, schema)
    assert report_fields_the_crd_prunes(report) == []


def test_publish_creates_then_updates_the_node_report(d1541_conf, api, tmp_path):
    from tests.k8s.conftest import add_node, kubeconfig

    kcm, conf = d1541_conf
    kcm.env.update({"KUBECONFIG": str(kubeconfig(api.url, tmp_path / "kubeconfig")),
                    "KCM_API_RETRY_SECONDS": "3", "NODE_NAME": "node-1"})
    node = add_node(api, "node-1")
    missing = kcm.run("node-report", f"--conf-dir={conf}", "--publish")
    assert missing.returncode == 1
    assert "create NodeReport node-1: 404" in missing.stderr
    api.store.put(CRD_KIND, node_report_crd())
    kcm.run("node-report", f"--conf-dir={conf}", "--publish", check=True)
    published = api.store.get("kcm.dev", "nodereports", "node-1")
    assert published["spec"]["topology"]["cores"] == 8
    assert published["status"]["healthy"] is True
    assert published["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    (conf / "pools/dataplane/4,12/tasks").write_text("999999")
    kcm.run("node-report", f"--conf-dir={conf}", "--publish", check=True)
    updated = api.store.get("kcm.dev", "nodereports", "node-1")
    assert updated["spec"]["pools"]["dataplane"]["cpuLists"]["4,12"]["tasks"][0]["pid"] == 999999
    assert updated["status"]["warnings"] == ["deadTasks"]
    status_writes = api.store.requests("PATCH", "/nodereports/node-1/status")
    assert len(status_writes) == 2
    assert all(w.content_type == "application/merge-patch+json" for w in status_writes)
    spec_writes = api.store.requests("PATCH", "/nodereports/node-1")
    assert [w.content_type for w in spec_writes if not w.path.endswith("/status")] == [
        "application/json-patch+json"]


def test_publish_for_a_node_name_longer_than_a_label_value(d1541_conf, api, tmp_path):
    """Node names may have 253 characters, label values 63: the report is still published."""
    from tests.k8s.conftest import add_node, kubeconfig

    kcm, conf = d1541_conf
    name = "worker-" + "a" * 60 + ".example.com"
    kcm.env.update({"KUBECONFIG": str(kubeconfig(api.url, tmp_path / "kubeconfig")),
                    "KCM_API_RETRY_SECONDS": "3", "NODE_NAME": name})
    add_node(api, name)
    api.store.put(CRD_KIND, node_report_crd())
    kcm.run("node-report", f"--conf-dir={conf}", "--publish", check=True)
    assert api.store.get("kcm.dev", "nodereports", name)["spec"]["topology"]["cores"] == 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_interval_metrics_and_sigterm(d1541_conf):
    kcm, conf = d1541_conf
    port = free_port()
    proc = kcm.popen("node-report", f"--conf-dir={conf}", "--interval=0.1",
                     f"--metrics-port={port}", "--metrics-address=127.0.0.1",
                     stdout=subprocess.PIPE, text=True)
    try:
        def scrape() -> str | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                return None
            return text if "kcm_pool_cpu_lists{" in text else None

        text = wait_for(scrape)
        assert 'kcm_pool_cpu_lists{pool="dataplane"} 4.0' in text
        assert 'kcm_pool_cpu_lists_in_use{pool="dataplane"} 0.0' in text
        assert "kcm_lock_wait_seconds_count" in text
        assert 'kcm_check_failures{check="deadTasks"} 0.0' in text

        def passes() -> float:
            lines = (scrape() or "").splitlines()
            return max([float(line.split()[1]) for line in lines
                        if line.startswith("kcm_lock_wait_seconds_count ")] or [0.0])

        wait_for(lambda: passes() >= 2)  # two passes, so two report lines
    finally:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert len(out.splitlines()) >= 2
    assert all(json.loads(line)["topology"]["cores"] == 8 for line in out.splitlines())


def test_metrics_clients_that_hang_up_do_not_kill_node_report(d1541_conf):
    """Before the fix SIGPIPE killed node-report in 4 of 4 runs."""
    from tests.k8s.test_webhook import hang_up_after_sending

    kcm, conf = d1541_conf
    port = free_port()
    proc = kcm.popen("node-report", f"--conf-dir={conf}", "--interval=60",
                     f"--metrics-port={port}", "--metrics-address=127.0.0.1",
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def scrape() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    return b"kcm_pool_cpu_lists{" in r.read()
            except OSError:
                return False

        wait_for(scrape)
        for _ in range(40):
            hang_up_after_sending(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 20, None)
        assert scrape() and proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == 0


@pytest.mark.parametrize("address", ["127.0.0.1", "no-such-host.invalid", "999.1.1.1"])
def test_metrics_port_in_use_or_bad_address_is_one_line(d1541_conf, address):
    kcm, conf = d1541_conf
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = kcm.run("node-report", f"--conf-dir={conf}", "--interval=60",
                         f"--metrics-port={port}", f"--metrics-address={address}")
    assert result.returncode == 1
    assert result.stderr.startswith(f"kcm: cannot listen on {address}:{port}: ")
    assert result.stderr.count("\n") == 1
