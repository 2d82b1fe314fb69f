"""The documentation is true: the README's commands, every ``sh`` block of the docs
(run in a sandbox), every ``yaml`` block (validated), and the generated CLI reference."""

import os
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from kcm.manifests import node_report_crd
from tests.conftest import KCM, private_host
from tests.k8s.apiserver import BUILTIN, RunningApiServer
from tests.k8s.conftest import add_node, kubeconfig
from tests.k8s.test_cluster_init import FakeCluster
from tests.machines import build_sysfs, xeon_d1541

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


def test_the_cli_reference_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts/gen-cli-doc.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_readme_links_the_docs_and_ci_runs_its_test_command():
    readme = (ROOT / "README.md").read_text()
    for doc in ("operator.md", "user.md", "cli.md", "config.md", "architecture.md",
                "benchmarks.md", "design.md"):
        assert f"docs/{doc}" in readme
        assert (DOCS / doc).exists()
    commands = blocks(ROOT / "README.md", "sh")
    assert commands[:2] == ["bash scripts/demo.sh\n", "bash scripts/test.sh\n"]
    assert "scripts/test.sh" in (ROOT / ".ci/run").read_text()


def test_the_readme_main_job_runs(tmp_path):
    env = dict(os.environ, KCM_VENV=str(tmp_path / "venv"))
    result = subprocess.run(["bash", str(ROOT / "scripts/demo.sh")], capture_output=True,
                            text=True, env=env, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert re.search(r"pinned to CPUs \[\d+\] = \d+", result.stdout), result.stdout
    assert "dataplane" in result.stdout


def sandbox_env(tmp_path: Path) -> dict:
    env = private_host(dict(os.environ), tmp_path)
    env["PATH"] = f"{Path(KCM).parent}:{env['PATH']}"
    env["KCM_LOCK_TIMEOUT"] = "10"
    env["KCM_API_RETRY_SECONDS"] = "3"
    for name in ("KCM_CONF_DIR", "KCM_SYSFS", "KCM_PROC_FS", "NODE_NAME", "KCM_NUM_CORES"):
        env.pop(name, None)
    return env


def run_blocks(path: Path, sandbox: Path, env: dict) -> None:
    for block in blocks(path, "sh"):
        script = (block.replace("/etc/kcm", str(sandbox / "etc/kcm"))
                  .replace("/opt/bin", str(sandbox / "opt/bin"))
                  .replace("/var/lib/kubelet", str(sandbox / "var/lib/kubelet")))
        result = subprocess.run(["bash", "-e", "-c", script], cwd=sandbox, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{path.name} block failed:\n{block}\n{result.stderr}"


def test_the_operator_manual_commands_run(tmp_path):
    sandbox = tmp_path / "operator"
    (sandbox / "etc").mkdir(parents=True)
    machine = build_sysfs(xeon_d1541(), tmp_path / "machine")
    bundle = tmp_path / "bundle"
    (bundle / "runtime/bin").mkdir(parents=True)
    (bundle / "kcm").symlink_to(KCM)
    (bundle / "runtime/bin/python3").symlink_to(sys.executable)
    env = sandbox_env(tmp_path)
    env.update({"KCM_SYSFS": str(machine / "sys"), "KCM_BUNDLE_DIR": str(bundle)})
    with RunningApiServer() as api:
        add_node(api, "node-1")
        api.store.put(BUILTIN[-1], node_report_crd())
        env["KUBECONFIG"] = str(kubeconfig(api.url, tmp_path / "kubeconfig"))
        fake = FakeCluster(api)
        fake.start()
        try:
            run_blocks(DOCS / "operator.md", sandbox, env)
        finally:
            fake.halt.set()
    assert not (sandbox / "etc/kcm").exists()  # the manual ends by uninstalling


def test_the_user_manual_commands_run(kcm, tmp_path):
    sandbox = tmp_path / "user"
    (sandbox / "etc").mkdir(parents=True)
    env = sandbox_env(tmp_path)
    env["KCM_CONF_DIR"] = str(sandbox / "etc/kcm")
    kcm.run("init", f"--conf-dir={sandbox / 'etc/kcm'}", "--num-dp-cores=1",
            "--num-cp-cores=0", check=True)
    run_blocks(DOCS / "user.md", sandbox, env)
    tasks = [p.read_text() for p in (sandbox / "etc/kcm").rglob("tasks")]
    assert tasks and all(text == "" for text in tasks)


@pytest.mark.parametrize("doc", sorted(p.name for p in DOCS.glob("*.md")))
def test_every_yaml_block_is_a_valid_kubernetes_object(doc):
    for block in blocks(DOCS / doc, "yaml"):
        for obj in yaml.safe_load_all(block):
            kubernetes_validate.validate(obj, "1.30", strict=True)
