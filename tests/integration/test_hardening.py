"""Bad input and hostile surroundings: one error line, a usage exit status, state kept.

Each test reproduces a defect found by trying kcm as an attacker or a careless operator
would; it failed before the fix."""

import os
import subprocess

import pytest

from tests.integration.workloads import make_conf, tasks_of

POOLS = {"dataplane": (True, ["0"]), "infra": (False, ["1"])}
HUGE = "9" * 5000


@pytest.fixture
def conf(tmp_path):
    return make_conf(tmp_path / "kcm", POOLS)


def one_error_line(result, code: int = 1) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("command", [["reconcile"], ["node-report"], ["doctor"],
                                     ["uninstall", "--install-dir=/nonexistent"]])
def test_a_procfs_that_is_not_the_hosts_frees_nothing(kcm, conf, tmp_path, command):
    """Pointed at an empty directory, reconcile used to declare the live task dead."""
    (conf / "pools/dataplane/0/tasks").write_text(str(os.getpid()))
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**kcm.env, "KCM_PROC_FS": str(empty)}
    result = subprocess.run([*kcm_argv(), *command, f"--conf-dir={conf}"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert one_error_line(result).startswith(f"kcm: {empty} is not the host's procfs")
    assert tasks_of(conf)["dataplane/0"] == [os.getpid()]


def kcm_argv() -> list[str]:
    from tests.conftest import KCM
    return [KCM]


@pytest.mark.parametrize("argv", [
    ["reconcile", "--interval=1e10"],
    ["reconcile", "--interval=nan"],
    ["node-report", f"--interval={HUGE}"],
    ["manifests", "--reconcile-interval=9.3e9"],
    ["manifests", "--namespace=Bad_NS"],
    ["manifests", "--namespace=kcm-ßystem"],
    ["manifests", "--resource-prefix=not a domain"],
    ["isolate", "--pool=infra", f"--num-cores={HUGE}", "true"],
    ["isolate", "--pool=infra", f"--socket-id={HUGE}", "true"],
    ["init", f"--num-dp-cores={HUGE}"],
    ["node-report", f"--metrics-port={HUGE}"],
])
def test_out_of_bounds_flags_are_usage_errors(kcm, conf, argv):
    result = kcm.run(*argv, f"--conf-dir={conf}") if argv[0] != "manifests" else kcm.run(*argv)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "error: argument" in result.stderr


@pytest.mark.parametrize(("name", "value"), [
    ("KCM_LOCK_TIMEOUT", "nan"), ("KCM_LOCK_TIMEOUT", "inf"), ("KCM_LOCK_TIMEOUT", "-1"),
    ("KCM_LOCK_TIMEOUT", HUGE), ("KCM_RECONCILE_SLEEP_TIME", "1e10"),
    ("KCM_NUM_CORES", HUGE), ("KCM_LOG_LEVEL", "LOUD"),
])
def test_bad_environment_values_are_one_line(kcm, conf, name, value):
    argv = ["isolate", "--pool=dataplane", "true"] if name == "KCM_NUM_CORES" else ["reconcile"]
    result = subprocess.run([*kcm_argv(), *argv, f"--conf-dir={conf}"],
                            env={**kcm.env, name: value}, capture_output=True, text=True,
                            timeout=60)
    assert one_error_line(result).startswith(f"kcm: {name} must be")
    assert all(not pids for pids in tasks_of(conf).values())


def test_api_retry_seconds_is_validated(kcm, conf, tmp_path):
    result = subprocess.run([*kcm_argv(), "discover", "--node-name=n", f"--conf-dir={conf}"],
                            env={**kcm.env, "KCM_API_RETRY_SECONDS": "abc",
                                 "KUBECONFIG": str(tmp_path / "none")},
                            capture_output=True, text=True, timeout=60)
    assert one_error_line(result).startswith("kcm: KCM_API_RETRY_SECONDS must be")


def test_an_empty_conf_dir_is_an_error_not_the_default(kcm):
    assert one_error_line(kcm.run("describe", "--conf-dir=")) == \
        "kcm: --conf-dir must not be empty\n"


def test_a_newline_in_a_path_stays_on_one_line(kcm, tmp_path):
    error = one_error_line(kcm.run("describe", f"--conf-dir={tmp_path}/a\nb"))
    assert "a\\nb" in error


def test_a_huge_number_in_a_tasks_file_holds_its_list_and_is_named_briefly(kcm, conf):
    (conf / "pools/dataplane/0/tasks").write_text(HUGE)
    result = kcm.run("describe", f"--conf-dir={conf}", "-o", "table")
    warning = one_error_line(result, code=0)
    assert warning.startswith(f"kcm: warning: {conf}/pools/dataplane/0/tasks: '9999")
    assert f"({len(HUGE)} characters)" in warning and len(warning) < 400
    assert "unreadable" in result.stdout


def test_two_task_info_lines_for_one_pid_free_nothing(kcm, conf):
    """The last line used to win: reconcile freed a live task, uninstall wiped it. Now
    the list counts as held: reconcile leaves it (and goes on), uninstall refuses."""
    me = os.getpid()
    (conf / "pools/dataplane/0/tasks").write_text(str(me))
    (conf / "pools/dataplane/0/task-info").write_text(f"{me} 1 - -\n{me} 2 - -\n")
    reconciled = kcm.run("reconcile", f"--conf-dir={conf}")
    assert reconciled.returncode == 0 and "a second line for PID" in reconciled.stderr
    assert tasks_of(conf)["dataplane/0"] == [me]
    refused = kcm.run("uninstall", "--install-dir=/nonexistent", f"--conf-dir={conf}")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.splitlines()[-1].startswith("kcm: ")
    assert "a second line for PID" in refused.stderr.splitlines()[-1]
    assert tasks_of(conf)["dataplane/0"] == [me]


def test_a_task_recorded_by_another_writer_is_judged_by_its_pid(kcm, conf):
    """An older writer dropped a PID from ``tasks`` (leaving kcm's line with its start
    time) and re-added the reused PID: reconcile must keep the live task."""
    kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "true", check=True)
    cpu_list = next(p.parent for p in conf.glob("pools/dataplane/*/task-info"))
    me = os.getpid()
    with open(cpu_list / "task-info", "a") as info:
        info.write(f"{me} 1 - -\n")  # a start time that is not this process's
    with open(cpu_list / "tasks", "r+") as tasks:  # in place, as the original KCM writes
        tasks.write(str(me))
    kcm.run("reconcile", f"--conf-dir={conf}", check=True)
    assert tasks_of(conf)[f"dataplane/{cpu_list.name}"] == [me]


def test_a_missing_interpreter_exits_127_like_env(kcm, conf, tmp_path):
    script = tmp_path / "script"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=infra", str(script))
    assert result.returncode == 127
    assert one_error_line(result, 127).startswith(f"kcm: cannot run {script}: ")
    assert all(not pids for pids in tasks_of(conf).values())
