"""The original KCM's and CMK's form, a command given as one shell string, beside kcm's
argv form (issue #18 item 1)."""

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
