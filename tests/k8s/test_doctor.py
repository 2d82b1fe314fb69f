"""``kcm doctor``: verdicts, fixes and exit codes on healthy and broken nodes."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kcm import __version__
from kcm.manifests import node_report_crd
from tests.conftest import KCM
from tests.integration.workloads import make_conf
from tests.k8s.apiserver import BUILTIN

POOLS = {"dataplane": (True, ["1"]), "infra": (False, ["0"])}


def doctor(kcm, conf, install, *args) -> tuple[int, dict]:
    result = kcm.run("doctor", f"--conf-dir={conf}", f"--install-dir={install}",
                     "--output=json", f"--kubelet-state={conf.parent / 'cpu_manager_state'}",
                     *args)
    return result.returncode, {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def installed(tmp_path, version: str | None = None):
    directory = tmp_path / "opt-bin"
    directory.mkdir(exist_ok=True)
    target = directory / "kcm"
    if target.is_symlink() or target.exists():
        target.unlink()
    if version is None:
        target.symlink_to(KCM)
    else:
        target.write_text(f"#!/bin/sh\necho kcm {version}\n")
        target.chmod(0o755)
    return directory


def test_a_healthy_node(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    install = installed(tmp_path)
    code, checks = doctor(kcm, conf, install)
    assert code == 0, checks
    assert checks["installedBinary"]["ok"] and __version__ in checks["installedBinary"]["detail"]
    assert checks["isolcpus"]["severity"] == "warning"  # this machine isolates nothing
    text = kcm.run("doctor", f"--conf-dir={conf}", f"--install-dir={install}")
    assert text.returncode == 0 and text.stdout.rstrip().endswith("healthy")


def test_stale_tasks_and_a_changed_machine_fail_with_fixes(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {**POOLS, "gone": (True, ["63"])})
    dead = subprocess.Popen(["true"])
    dead.wait()
    (conf / "pools/dataplane/1/tasks").write_text(str(dead.pid))
    code, checks = doctor(kcm, conf, installed(tmp_path))
    assert code == 1
    assert not checks["deadTasks"]["ok"] and checks["deadTasks"]["fix"].startswith(
        "kcm reconcile")
    assert not checks["cpusOnline"]["ok"] and "63" in checks["cpusOnline"]["detail"]


def test_affinity_drift_is_found(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"infra": (False, ["0"]), "dataplane": (True, ["1"])})
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (conf / "pools/dataplane/1/tasks").write_text(str(sleeper.pid))
        code, checks = doctor(kcm, conf, installed(tmp_path))
    finally:
        sleeper.kill()
    assert code == 1 and not checks["affinity"]["ok"]
    assert str(sleeper.pid) in checks["affinity"]["detail"]


def test_a_different_installed_version(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    code, checks = doctor(kcm, conf, installed(tmp_path, "0.0.9"))
    assert code == 1
    assert checks["installedBinary"]["detail"].endswith(f"is kcm 0.0.9, this is kcm {__version__}")
    assert checks["installedBinary"]["fix"].startswith("kcm install --install-dir=")


def test_the_kubelets_static_cpu_manager_handing_out_kcm_cpus(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    state = conf.parent / "cpu_manager_state"
    state.write_text(json.dumps({"policyName": "static", "defaultCpuSet": "0",
                                 "entries": {"pod-uid-1": {"app": "1"}}, "checksum": 1}))
    code, checks = doctor(kcm, conf, installed(tmp_path))
    assert code == 1
    assert "pod pod-uid-1 container app on 1" in checks["kubeletCpuManager"]["detail"]
    state.write_text(json.dumps({"policyName": "none", "defaultCpuSet": "", "checksum": 1}))
    code, checks = doctor(kcm, conf, installed(tmp_path))
    assert code == 0 and checks["kubeletCpuManager"]["ok"]


def test_cluster_checks(k8s_kcm, api, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    install = installed(tmp_path)
    code, checks = doctor(k8s_kcm, conf, install)
    assert code == 1
    assert not checks["extendedResources"]["ok"] and checks["extendedResources"]["fix"] == \
        "kcm discover"
    assert not checks["nodeLabel"]["ok"]
    assert not checks["nodeReport"]["ok"] and checks["nodeReport"]["severity"] == "warning"
    api.store.put(BUILTIN[-1], node_report_crd())
    k8s_kcm.run("discover", f"--conf-dir={conf}", check=True)
    k8s_kcm.run("node-report", f"--conf-dir={conf}", "--publish", check=True)
    code, checks = doctor(k8s_kcm, conf, install)
    assert code == 0, checks
    assert checks["extendedResources"]["ok"] and checks["nodeReport"]["ok"]
    code, checks = doctor(k8s_kcm, conf, install, "--node-name=ghost")
    assert code == 1 and checks["cluster"]["detail"] == "node ghost not found in the cluster"


def test_advice_fits_the_failure_and_never_destroys_live_records(kcm, tmp_path):
    """A busy lock used to get "move the directory aside and re-run init", which would
    drop the records of running workloads."""
    import fcntl
    import os

    conf = make_conf(tmp_path / "kcm", POOLS)
    (conf / "pools/dataplane/1/tasks").write_text(str(os.getpid()))
    install = installed(tmp_path)
    with open(conf / "lock", "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        busy = kcm.run("doctor", f"--conf-dir={conf}", f"--install-dir={install}",
                       "--output=json", env_overrides={"KCM_LOCK_TIMEOUT": "0.2"})
    checks = {c["name"]: c for c in json.loads(busy.stdout)["checks"]}
    fix = checks["configDirectory"]["fix"]
    assert fix.startswith(f"another kcm process holds {conf}/lock") and "init" not in fix
    assert not checks["deadTasks"]["ran"] and not checks["isolcpus"]["ran"]
    assert not checks["isolcpus"]["ok"] and checks["isolcpus"]["fix"] == ""
    for damage, name in (("x", "tasks"), ("", "notes")):
        (conf / "pools/dataplane/1" / name).write_text(damage)
        broken = kcm.run("doctor", f"--conf-dir={conf}", f"--install-dir={install}",
                         "--output=json")
        check = {c["name"]: c for c in json.loads(broken.stdout)["checks"]}["configDirectory"]
        assert not check["ok"] and "keep every tasks file" in check["fix"]
        assert "init" not in check["fix"].split("(")[0]
    missing = kcm.run("doctor", f"--conf-dir={tmp_path / 'none'}", f"--install-dir={install}",
                      "--output=json")
    fix = {c["name"]: c for c in json.loads(missing.stdout)["checks"]}["configDirectory"]["fix"]
    assert fix == f"kcm init --conf-dir={tmp_path / 'none'}"


def kcm_install_layout(tmp_path, version: str) -> tuple[Path, Path]:
    """An install directory shaped as ``kcm install`` leaves it (``kcm`` linked into
    ``.kcm-<version>-<digest>/``), whose launcher and interpreter are copies of
    ``true``: a real program for this machine that prints no version when run.
    (install directory, launcher)."""
    directory = tmp_path / "opt-bin"
    bundle = directory / f".kcm-{version}-0123456789ab"
    (bundle / "runtime/bin").mkdir(parents=True)
    true = shutil.which("true")
    shutil.copy(true, bundle / "kcm")
    shutil.copy(true, bundle / "runtime/bin/python3")
    (directory / "kcm").symlink_to(f"{bundle.name}/kcm")
    return directory, bundle / "kcm"


def installed_binary(kcm, conf, install) -> dict:
    return doctor(kcm, conf, install)[1]["installedBinary"]


def test_the_installed_bundle_is_read_not_run(kcm, tmp_path):
    """doctor reads the version from the bundle ``kcm install`` linked and checks it can
    run without starting it: the launcher here is ``true``, which would print nothing."""
    conf = make_conf(tmp_path / "kcm", POOLS)
    install, _ = kcm_install_layout(tmp_path / "other", "0.0.9")
    check = installed_binary(kcm, conf, install)
    assert check["detail"] == f"{install}/kcm is kcm 0.0.9, this is kcm {__version__}"
    install, launcher = kcm_install_layout(tmp_path, __version__)
    assert installed_binary(kcm, conf, install)["ok"]

    launcher.chmod(0o644)
    check = installed_binary(kcm, conf, install)
    assert not check["ok"] and check["detail"] == f"{launcher} is missing or not executable"
    assert check["fix"] == f"kcm install --install-dir={install}"

    launcher.chmod(0o755)
    header = bytearray(launcher.read_bytes())
    header[18:20] = (183 if os.uname().machine != "aarch64" else 62).to_bytes(2, "little")
    launcher.write_bytes(bytes(header))
    check = installed_binary(kcm, conf, install)
    assert check["detail"] == f"{launcher} is not a program for this machine " \
                              f"({os.uname().machine})"

    shutil.rmtree(launcher.parent)
    check = installed_binary(kcm, conf, install)
    assert check["detail"] == f"{install}/kcm points to {launcher.parent.name}, which does " \
                              "not exist"


def test_an_installed_bundle_on_a_noexec_mount_cannot_run(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    mount = tmp_path / "noexec"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,size=16m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        install, launcher = kcm_install_layout(mount, __version__)
        check = installed_binary(kcm, conf, install)
        assert not check["ok"]
        assert check["detail"] == f"{launcher} is on a file system mounted noexec: it cannot run"
    finally:
        subprocess.run(["umount", str(mount)], check=True)
