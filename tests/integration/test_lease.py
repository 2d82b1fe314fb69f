"""A CPU list is held until the last process of its workload is gone (issue #31): the
shell form and the argv form alike, on a signal to ``kcm isolate``, when the main
process exits before its children, and after ``kcm isolate`` itself was SIGKILLed."""

import json
import os
import signal
import subprocess
import time

import pytest

from tests.integration.workloads import (
    alive,
    descendants,
    kill_workloads,
    make_conf,
    recorded_workloads,
    start_time,
    tasks_of,
    wait_for,
)

POOLS = {"dataplane": (True, ["1"]), "infra": (False, ["0"])}


def comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def sleeps_below(pid: int, count: int = 1) -> list[tuple[int, int]]:
    """(PID, start) of the ``sleep`` processes below ``pid``, once there are ``count``."""
    def found():
        sleeps = [(p, start_time(p)) for p in descendants(pid) if comm(p) == "sleep"]
        return sleeps if len(sleeps) >= count else None
    return wait_for(found)


def affinity(pid: int) -> str:
    with open(f"/proc/{pid}/status") as handle:
        return next(line.split(":", 1)[1].strip() for line in handle
                    if line.startswith("Cpus_allowed_list"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
@pytest.mark.parametrize("form", [["sleep 60 && echo hi"], ["sleep 60; echo hi"],
                                  ["--", "sh", "-c", "sleep 60 && echo hi"]])
def test_a_signal_ends_every_process_of_a_compound_command_before_the_release(
        kcm, tmp_path, form, signum):
    """SIGTERM/SIGHUP/SIGINT to kcm isolate once killed only /bin/sh: sleep went on pinned
    to the CPU kcm had given back. Now the signal reaches the workload's process group
    and the list is released only after the last process has gone."""
    conf = make_conf(tmp_path / "kcm", POOLS)
    isolate = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane", *form)
    ((sleeper, _),) = sleeps_below(isolate.pid)
    assert affinity(sleeper) == "1"
    isolate.send_signal(signum)
    status = isolate.wait(20)
    assert status in (128 + signum, 0), status  # the shell's status: killed, or not
    assert not alive(sleeper)  # gone before kcm isolate exited, not after
    assert tasks_of(conf) == {"dataplane/1": [], "infra/0": []}


def test_what_outlives_the_main_process_is_ended_before_the_release(kcm, tmp_path):
    """The main process exits, a background child and a setsid daemon live on: they get
    SIGTERM at once (and SIGKILL after KCM_STOP_GRACE); the status is the main's."""
    conf = make_conf(tmp_path / "kcm", POOLS)
    pids = tmp_path / "pids"
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane",
                     f"sleep 60 & echo $! > {pids}; setsid sleep 60 & echo $! >> {pids}; exit 3")
    assert result.returncode == 3, result.stderr
    left = [int(pid) for pid in pids.read_text().split()]
    assert len(left) == 2 and not any(alive(pid) for pid in left)
    assert tasks_of(conf)["dataplane/1"] == []


def test_the_list_stays_held_while_a_process_ignoring_sigterm_lives_then_sigkill(
        kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    isolate = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane",
                        "trap '' TERM; sleep 60 & exit 0",
                        env_overrides={"KCM_STOP_GRACE": "3"})
    ((sleeper, _),) = sleeps_below(isolate.pid)
    # The main shell exits at once; sleep ignores the SIGTERM it gets and holds the list.
    wait_for(lambda: not any(comm(p) == "sh" for p in descendants(isolate.pid)))
    assert isolate.poll() is None and alive(sleeper)
    assert tasks_of(conf)["dataplane/1"] == [isolate.pid]
    started = time.monotonic()
    assert isolate.wait(30) == 0
    assert time.monotonic() - started < 25  # SIGKILL came after the grace, not never
    assert not alive(sleeper)
    assert tasks_of(conf)["dataplane/1"] == []


def test_the_supervisor_is_pinned_with_its_workload(kcm, tmp_path):
    """describe shows kcm isolate's PID; `taskset -p` on it shows the granted list."""
    conf = make_conf(tmp_path / "kcm", POOLS)
    isolate = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane", "sleep", "60")
    try:
        ((sleeper, _),) = sleeps_below(isolate.pid)
        described = json.loads(kcm.run("describe", f"--conf-dir={conf}", check=True).stdout)
        assert described["pools"]["dataplane"]["cpuLists"]["1"]["tasks"] == [isolate.pid]
        assert affinity(isolate.pid) == "1" and affinity(sleeper) == "1"
        taskset = subprocess.run(["taskset", "-pc", str(isolate.pid)], capture_output=True,
                                 text=True, check=True)
        assert taskset.stdout.strip().endswith(": 1")
    finally:
        isolate.send_signal(signal.SIGTERM)
        isolate.wait(20)


def test_after_a_sigkilled_isolate_the_workload_s_group_holds_the_list(kcm, tmp_path):
    """kcm isolate and the workload's shell are SIGKILLed; the shell's child lives on in
    the workload's process group and keeps the list, named by describe and reconcile."""
    conf = make_conf(tmp_path / "kcm", POOLS)
    isolate = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane",
                        "sleep 60; echo done")
    (workload,) = wait_for(lambda: recorded_workloads(conf))
    ((sleeper, sleeper_start),) = sleeps_below(isolate.pid)
    try:
        isolate.send_signal(signal.SIGKILL)
        isolate.wait(10)
        os.kill(workload[0], signal.SIGKILL)  # the shell kcm started for this test
        wait_for(lambda: not alive(workload[0]))
        assert alive(sleeper)
        result = kcm.run("reconcile", f"--conf-dir={conf}", check=True)
        assert json.loads(result.stdout)["reclaimedCpuLists"] == []
        assert f"its workload runs as {sleeper}" in result.stderr
        table = kcm.run("describe", f"--conf-dir={conf}", "-o", "table", check=True).stdout
        assert f"{isolate.pid}(dead)>{sleeper}" in table
        taken = kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "true")
        assert taken.returncode == 1 and "pool dataplane is full" in taken.stderr
    finally:
        kill_workloads([(sleeper, sleeper_start)])
    result = kcm.run("reconcile", f"--conf-dir={conf}", check=True)
    assert json.loads(result.stdout)["reclaimedCpuLists"] == [
        {"pool": "dataplane", "cpus": "1", "pid": isolate.pid}]


@pytest.mark.parametrize(("command", "status"), [
    ("exit 7", 7), ("! false", 0), ("! true", 1), ("cd / && exit 3", 3),
    ("false; true", 0), ("true; false", 1), ("true && exit 4", 4), ("false || exit 5", 5),
    ("x=1; exit $((x + 8))", 9),
])
def test_a_shell_string_exits_with_the_shell_s_status(kcm, tmp_path, command, status):
    """Builtins and compound strings: the status is the shell's (its last command's)."""
    conf = make_conf(tmp_path / "kcm", POOLS)
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=infra", command)
    assert result.returncode == status, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("command", ["", "   ", "\t\n"])
def test_an_empty_command_is_one_line(kcm, tmp_path, command):
    conf = make_conf(tmp_path / "kcm", POOLS)
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=infra", command)
    assert result.returncode == 1
    assert result.stderr == ("kcm: the command is empty: give the command to run after "
                             "the options\n")
    assert tasks_of(conf)["infra/0"] == []
