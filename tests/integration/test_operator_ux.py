"""What a new operator meets first (issue #19): help that explains every option, errors at
the edge, honest output after a crash, dry runs without a cluster."""

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from kcm.cli import build_parser
from tests.conftest import KCM
from tests.integration.workloads import (
    fake_bundle,
    kill_workloads,
    make_conf,
    on_a_terminal,
    recorded_workloads,
    wait_for,
)

POOLS = {"dataplane": (True, ["1"]), "infra": (False, ["0"])}


def every_option():
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in [("kcm", parser), *subcommands.choices.items()]:
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                yield name, action


def test_every_option_says_what_it_does_and_its_default():
    missing = []
    for command, action in every_option():
        text = action.help or ""
        flag = "/".join(action.option_strings) or action.dest
        takes_value = not isinstance(action, argparse._StoreTrueAction | argparse._VersionAction)
        has_default = action.default not in (None, False, argparse.SUPPRESS)
        if not text or (takes_value and has_default and "default" not in text):
            missing.append(f"{command} {flag}")
    assert missing == []


def test_bare_kcm_prints_the_help_with_the_environment(kcm):
    result = kcm.run(check=True)
    assert result.stdout.startswith("usage: kcm")
    assert "KCM_LOG_LEVEL: DEBUG, INFO, WARNING, ERROR (INFO)" in result.stdout
    assert "everything from CMD on belongs to CMD" in result.stdout


def test_isolate_help_says_options_after_the_command_are_the_command_s(kcm):
    text = " ".join(kcm.run("isolate", "--help", check=True).stdout.split())
    assert "kcm's options come before it" in text and "passes --num-cores=2 to sleep" in text


@pytest.mark.parametrize(("args", "says"), [
    (["--image="], "argument --image: must be a container image reference"),
    (["--image=a b"], "argument --image: must be a container image reference"),
    (["--resource-prefix=nodomain"], "argument --resource-prefix: must be a domain with a dot"),
    (["--namespace=Bad_NS"], "argument --namespace: must be a DNS label"),
])
def test_bad_deploy_options_are_one_line_errors(kcm, args, says):
    result = kcm.run("manifests", *args)
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr


def test_kcm_num_cores_on_a_shared_pool_warns_and_runs(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=infra", "true",
                     env_overrides={"KCM_NUM_CORES": "2"})
    assert result.returncode == 0
    assert "KCM_NUM_CORES=2 is ignored: pool infra is shared" in result.stderr


def test_describe_after_a_killed_isolate_shows_the_workload_that_still_holds_the_list(
        kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    isolate = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane", "sleep", "60")
    (workload,) = wait_for(lambda: recorded_workloads(conf))
    # Killed only once the workload runs its command, so the record names a live workload
    # (killed earlier, it could still be kcm's child before its exec).
    wait_for(lambda: Path(f"/proc/{workload[0]}/comm").read_text().strip() == "sleep")
    try:
        isolate.send_signal(signal.SIGKILL)
        isolate.wait(10)
        described = json.loads(kcm.run("describe", f"--conf-dir={conf}", check=True).stdout)
        assert described["pools"]["dataplane"]["cpuLists"]["1"]["tasks"] == [isolate.pid]
        assert described["deadTasks"] == [{"pool": "dataplane", "cpuList": "1",
                                           "pid": isolate.pid, "workloadPid": workload[0],
                                           "workloadAlive": True,
                                           "holdingPids": [workload[0]]}]
        table = kcm.run("describe", f"--conf-dir={conf}", "-o", "table", check=True).stdout
        assert f"{isolate.pid}(dead)>{workload[0]}" in table
    finally:
        kill_workloads([workload])
    after = json.loads(kcm.run("describe", f"--conf-dir={conf}", check=True).stdout)
    assert after["deadTasks"][0]["workloadAlive"] is False


def test_describe_with_every_holder_alive_is_the_original_document(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    described = json.loads(kcm.run("describe", f"--conf-dir={conf}", check=True).stdout)
    assert set(described) == {"path", "pools"}


def test_uninstall_leaves_a_directory_it_refuses_as_it_found_it(kcm, tmp_path):
    foreign = tmp_path / "not-kcm"
    foreign.mkdir()
    (foreign / "notes").write_text("mine\n")
    result = kcm.run("uninstall", f"--conf-dir={foreign}", f"--install-dir={tmp_path / 'bin'}",
                     env_overrides={"NODE_NAME": ""})
    assert result.returncode != 0 and "notes" in result.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["notes"]


def test_cluster_init_dry_run_needs_no_cluster(kcm, tmp_path):
    result = kcm.run("cluster-init", "--host-list=node-a", "--dry-run",
                     env_overrides={"KUBECONFIG": str(tmp_path / "none"),
                                    "KUBERNETES_SERVICE_HOST": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# would label node node-a kcm.dev/enabled=true\n")
    kinds = [line for line in result.stdout.splitlines() if line.startswith("kind: ")]
    assert "kind: DaemonSet" in kinds and "kind: MutatingWebhookConfiguration" in kinds
    assert "no cluster" in result.stderr


def test_permission_denied_as_a_plain_user_says_what_needs_root(tmp_path):
    python = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    if os.geteuid() != 0 or python is None:
        pytest.skip("needs root (to become another user) and a system python3")
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                             capture_output=True, text=True).stdout.strip()
    if version != "True":
        pytest.skip(f"{python} is older than 3.11")
    # pytest's own tmp_path is root's alone: a world-readable copy elsewhere.
    base = Path(tempfile.mkdtemp(prefix="kcm-unprivileged-"))
    try:
        run_unprivileged_init(python, base)
    finally:
        shutil.rmtree(base)


def run_unprivileged_init(python: str, base: Path) -> None:
    copy = base / "src"
    shutil.copytree(Path(__file__).resolve().parents[2] / "kcm", copy / "kcm",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for path in [base, copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    denied = base / "root-only"
    denied.mkdir(mode=0o700)
    result = subprocess.run(
        [python, "-m", "kcm", "init", f"--conf-dir={denied / 'kcm'}", "--num-dp-cores=1",
         "--num-cp-cores=0"],
        cwd=copy, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(copy)},
        capture_output=True, text=True, user=65534, group=65534)
    assert result.returncode == 1
    assert "Permission denied (kcm needs root for" in result.stderr
    assert result.stderr.count("\n") == 1


def test_every_command_speaks_table_json_and_yaml(kcm, tmp_path):
    import yaml

    conf = make_conf(tmp_path / "kcm", POOLS)
    for command in (["describe"], ["reconcile"]):
        as_json = json.loads(kcm.run(*command, f"--conf-dir={conf}", check=True).stdout)
        as_yaml = yaml.safe_load(kcm.run(*command, f"--conf-dir={conf}", "-o", "yaml",
                                         check=True).stdout)
        assert as_yaml == as_json, command
    table = kcm.run("describe", f"--conf-dir={conf}", "-o", "table", check=True).stdout
    assert table.splitlines()[0].split() == ["POOL", "EXCLUSIVE", "CPU", "LIST", "NUMA", "NODE",
                                             "TASKS"]


def test_a_terminal_gets_a_table_and_a_pipe_gets_json(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    piped = kcm.run("reconcile", f"--conf-dir={conf}", check=True).stdout
    assert json.loads(piped) == {"reclaimedCpuLists": []}
    shown, _ = on_a_terminal([KCM, "reconcile", f"--conf-dir={conf}"], kcm.env)
    assert shown.split() == ["POOL", "CPU", "LIST", "DEAD", "PID"]
    # describe keeps the original KCM's JSON even on a terminal.
    described, _ = on_a_terminal([KCM, "describe", f"--conf-dir={conf}"], kcm.env)
    assert json.loads(described)["pools"]["infra"]["exclusive"] is False
    bundle = fake_bundle(tmp_path / "bundle")
    installed, _ = on_a_terminal([KCM, "install", f"--install-dir={tmp_path / 'bin'}",
                                  f"--from={bundle}"], kcm.env)
    assert installed.splitlines()[0].split() == ["KEY", "VALUE"] and "changed" in installed


def test_install_shows_progress_on_a_terminal_and_nothing_in_a_log(kcm, tmp_path):
    bundle = fake_bundle(tmp_path / "bundle")
    shown, printed = on_a_terminal([KCM, "install", f"--install-dir={tmp_path / 'bin'}",
                                    f"--from={bundle}", "-o", "json"], kcm.env, "stderr")
    assert json.loads(printed)["changed"] is True
    assert "kcm: checking the bundle:" in shown and "kcm: copying the bundle:" in shown
    assert "\r" in shown
    logged = kcm.run("install", f"--install-dir={tmp_path / 'bin2'}", f"--from={bundle}",
                     check=True)
    assert logged.stderr == ""
