"""The original KCM's and CMK's forms kcm accepts (issue #18): a command as one shell
string beside kcm's argv form, CMK's environment names, describe's normalised path."""

import json
import os
import signal
import stat

from tests.integration.workloads import make_conf, recorded_workloads, wait_for

POOLS = {"dataplane": (True, ["1"]), "infra": (False, ["0"])}


def test_one_shell_string_runs_under_the_shell_with_its_exit_status(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    out = tmp_path / "f"
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=infra",
                     f"echo 1 > {out} && cat {out} && echo $KCM_CPUS_ASSIGNED && exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout.split() == ["1", "0"]


def test_argv_stays_argv(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=infra", "echo", "a  b", "$HOME",
                     check=True)
    assert result.stdout == "a  b $HOME\n"


def test_a_command_whose_name_has_a_space_runs_without_a_shell(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    program = tmp_path / "my tool"
    program.write_text("#!/bin/sh\necho ran as \"$0\"\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=infra", str(program), check=True)
    assert result.stdout == f"ran as {program}\n"


def test_a_signal_reaches_the_command_of_a_shell_string(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    isolate = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane", "sleep 60")
    (workload,) = wait_for(lambda: recorded_workloads(conf))
    # The shell execs its one command: the recorded workload becomes sleep itself.
    wait_for(lambda: open(f"/proc/{workload[0]}/comm").read().strip() == "sleep")
    isolate.send_signal(signal.SIGTERM)
    assert isolate.wait(10) == 128 + signal.SIGTERM
    wait_for(lambda: not os.path.exists(f"/proc/{workload[0]}/comm")
             or open(f"/proc/{workload[0]}/stat").read().split(") ")[1][0] == "Z")


def test_cmk_s_environment_names_are_read_and_set(kcm, tmp_path):
    """CMK's variables work where kcm's are unset; the workload gets both families."""
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0", "1"])})
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane",
                     "env", env_overrides={"CMK_NUM_CORES": "2"}, check=True)
    workload_env = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert workload_env["KCM_CPUS_ASSIGNED"] == "0-1"
    assert workload_env["CMK_CPUS_ASSIGNED"] == "0,1", "CMK joined the lists' names"
    assert workload_env["KCM_CPUS_ASSIGNED_MASK"] == "0x3"
    assert workload_env["CMK_CPUS_ASSIGNED_MASK"] == "3"
    refused = kcm.run("describe", f"--conf-dir={conf}",
                      env_overrides={"KCM_LOCK_TIMEOUT": "", "CMK_LOCK_TIMEOUT": "x"})
    assert refused.returncode == 1 and refused.stderr.startswith("kcm: CMK_LOCK_TIMEOUT ")
    loud = kcm.run("describe", f"--conf-dir={conf}", env_overrides={"CMK_LOG_LEVEL": "LOUD"})
    assert loud.returncode == 1 and "CMK_LOG_LEVEL must be one of" in loud.stderr
    # kcm's own name wins.
    kept = kcm.run("describe", f"--conf-dir={conf}",
                   env_overrides={"CMK_LOG_LEVEL": "LOUD", "KCM_LOG_LEVEL": "INFO"})
    assert kept.returncode == 0


def test_describe_prints_the_path_normalised_as_the_originals_do(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    (tmp_path / "x").mkdir()
    for given in (f"{conf}/", f"{tmp_path}//kcm/./", f"{tmp_path}/x/../kcm"):
        described = json.loads(kcm.run("describe", f"--conf-dir={given}", check=True).stdout)
        assert described["path"] == str(conf)
    relative = kcm.run("describe", "--conf-dir=./kcm/", cwd=tmp_path, check=True)
    assert json.loads(relative.stdout)["path"] == "kcm"


def test_overlapping_pools_work_with_warnings_as_in_the_originals(kcm, tmp_path):
    """The originals' fixtures put CPU 0 in an exclusive and a shared pool: every command
    works; describe warns, isolate warns when its list is shared with another pool."""
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0", "1"]),
                                        "infra": (False, ["0"])})
    described = kcm.run("describe", f"--conf-dir={conf}", check=True)
    assert set(json.loads(described.stdout)["pools"]) == {"dataplane", "infra"}
    assert described.stderr.count("\n") == 1 and "CPU 0 is in two CPU lists" in described.stderr
    shared = kcm.run("isolate", f"--conf-dir={conf}", "--pool=infra", "true", check=True)
    assert "CPUs 0 of pool infra are also in dataplane/0: not exclusive" in shared.stderr
    for _ in range(2):  # whichever list it gets, the warning says whether it is shared
        taken = kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "printenv",
                        "KCM_CPUS_ASSIGNED", check=True)
        overlaps = taken.stdout.strip() == "0"
        assert ("also in infra/0: not exclusive" in taken.stderr) is overlaps
    kcm.run("reconcile", f"--conf-dir={conf}", check=True)
    report = json.loads(kcm.run("node-report", f"--conf-dir={conf}", check=True).stdout)
    check = next(c for c in report["checks"] if c["name"] == "disjointCpuLists")
    assert not check["ok"] and "CPU 0" in check["errors"][0]


def test_a_dataplane_workload_learns_the_shared_cpus_and_may_pin_to_both(kcm, tmp_path):
    """DPDK's shape: poll loops on the exclusive CPUs, control threads on the shared
    ones. The workload is told both, under kcm's and CMK's names; --with-shared lets it
    pin its own threads across both."""
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["1"]), "infra": (False, ["0"]),
                                        "control-plane": (False, ["0"])})
    script = ('import json, os; print(json.dumps({"env": {k: v for k, v in os.environ.items() '
              'if k[:4] in ("KCM_", "CMK_")}, "cpus": sorted(os.sched_getaffinity(0))}))')
    for flags, pinned in (([], [1]), (["--with-shared"], [0, 1])):
        ran = json.loads(kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", *flags,
                                 "--", "python3", "-c", script, check=True).stdout)
        assert ran["cpus"] == pinned
        env = ran["env"]
        assert env["KCM_CPUS_ASSIGNED"] == "1" and env["KCM_CPUS_SHARED"] == "0"
        assert env["KCM_CPUS_INFRA"] == "0" and env["KCM_CPUS_CONTROL_PLANE"] == "0"
        assert env["CMK_CPUS_INFRA"] == "0" and "CMK_CPUS_SHARED" not in env
