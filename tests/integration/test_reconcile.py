"""``kcm reconcile``: dead and reused PIDs freed, live ones kept, the lock free while a
pass checks, writes and syncs."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import KCM
from tests.integration.workloads import (
    dead_pid,
    kill_workloads,
    make_conf,
    read_lines,
    recorded_workloads,
    tasks_of,
    wait_for,
)


def own_start_time() -> int:
    with open(f"/proc/{os.getpid()}/stat") as handle:
        return int(handle.read().rpartition(")")[2].split()[19])


def stamp_line(tasks: Path) -> str:
    """The line kcm writes into task-info for the tasks file it wrote with it."""
    info = tasks.stat()
    return f"0 {info.st_ino} {info.st_mtime_ns} {info.st_size}\n"


def test_dead_and_reused_pids_are_reclaimed_live_ones_kept(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0", "1", "2", "3"]),
                                        "infra": (False, ["4-5"])})
    gone = dead_pid()
    me = os.getpid()
    (conf / "pools/dataplane/0/tasks").write_text(str(gone))
    # A live PID whose start time, recorded by kcm with this tasks file, is not its own:
    # the PID was reused.
    reused = conf / "pools/dataplane/1/tasks"
    reused.write_text(str(me))
    (conf / "pools/dataplane/1/task-info").write_text(
        stamp_line(reused) + f"{me} {own_start_time() + 1} - -\n")
    # The same line without kcm's stamp (an older kcm, or tasks rewritten by another
    # tool): the live process started before tasks was written, so the writer may mean
    # it; it is kept.
    (conf / "pools/dataplane/2/tasks").write_text(str(me))
    (conf / "pools/dataplane/2/task-info").write_text(f"{me} {own_start_time() + 1} - -\n")
    # ... unless tasks was written before that process started: then it is a reuse.
    old = conf / "pools/dataplane/3/tasks"
    old.write_text(str(me))
    (conf / "pools/dataplane/3/task-info").write_text(f"{me} {own_start_time() + 1} - -\n")
    os.utime(old, (1_000_000, 1_000_000))  # 1970: long before any process of this boot
    # A live PID written by hand, judged by existence; a dead one beside it.
    (conf / "pools/infra/4-5/tasks").write_text(f"{me},{gone + 0}")
    result = kcm.run("reconcile", f"--conf-dir={conf}", check=True)
    report = json.loads(result.stdout)
    assert report == {"reclaimedCpuLists": sorted([
        {"pool": "dataplane", "cpus": "0", "pid": gone},
        {"pool": "dataplane", "cpus": "1", "pid": me},
        {"pool": "dataplane", "cpus": "3", "pid": me},
        {"pool": "infra", "cpus": "4-5", "pid": gone},
    ], key=lambda entry: (entry["pid"], entry["pool"], entry["cpus"]))}
    assert tasks_of(conf) == {"dataplane/0": [], "dataplane/1": [], "dataplane/2": [me],
                              "dataplane/3": [], "infra/4-5": [me]}


def test_touching_tasks_keeps_the_workload_of_a_killed_isolate_held(kcm, tmp_path):
    """The record of a SIGKILLed isolate names its workload; a touch of tasks (or any
    rewrite by another tool) must not make reconcile forget it while it runs."""
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0"])})
    isolate = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane", "sleep", "60")
    try:
        (workload,) = wait_for(lambda: recorded_workloads(conf))
        wait_for(lambda: Path(f"/proc/{workload[0]}/comm").read_text().strip() == "sleep")
        isolate.send_signal(signal.SIGKILL)
        isolate.wait(10)
        os.utime(conf / "pools/dataplane/0/tasks")  # touch
        report = json.loads(kcm.run("reconcile", f"--conf-dir={conf}", check=True).stdout)
        assert report["reclaimedCpuLists"] == []
        assert tasks_of(conf)["dataplane/0"] == [isolate.pid]
    finally:
        kill_workloads([workload])
    report = json.loads(kcm.run("reconcile", f"--conf-dir={conf}", check=True).stdout)
    assert report["reclaimedCpuLists"] == [{"pool": "dataplane", "cpus": "0",
                                            "pid": isolate.pid}]


def test_an_impossible_pid_or_a_bad_line_stops_no_reconcile(kcm, tmp_path):
    """The original KCM's tests write 1234561231 for a dead task: reported, taken as not
    running. A word that is no PID leaves its own list alone, and every other list is
    still reconciled."""
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0", "1", "2"])})
    gone = dead_pid()
    (conf / "pools/dataplane/0/tasks").write_text("1234561231")
    (conf / "pools/dataplane/1/tasks").write_text(f"{gone},x")
    (conf / "pools/dataplane/2/tasks").write_text(str(gone))
    result = kcm.run("reconcile", f"--conf-dir={conf}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["reclaimedCpuLists"] == sorted([
        {"pool": "dataplane", "cpus": "0", "pid": 1234561231},
        {"pool": "dataplane", "cpus": "2", "pid": gone},
    ], key=lambda entry: entry["pid"])
    assert f"{conf}/pools/dataplane/0/tasks: 1234561231 cannot be a PID" in result.stderr
    assert f"{conf}/pools/dataplane/1/tasks: 'x' is not a PID" in result.stderr
    assert "Traceback" not in result.stderr
    assert (conf / "pools/dataplane/1/tasks").read_text() == f"{gone},x"
    for freed in ("0", "2"):
        assert (conf / f"pools/dataplane/{freed}/tasks").read_text() == ""


def test_the_right_start_time_keeps_the_task(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0"])})
    me = os.getpid()
    (conf / "pools/dataplane/0/tasks").write_text(str(me))
    (conf / "pools/dataplane/0/task-info").write_text(f"{me} {own_start_time()} - -\n")
    report = json.loads(kcm.run("reconcile", f"--conf-dir={conf}", check=True).stdout)
    assert report["reclaimedCpuLists"] == []
    assert tasks_of(conf)["dataplane/0"] == [me]


def stopped_by_sigstop(trace: Path) -> int | None:
    """The PID strace reports stopped by SIGSTOP (a group stop: SIGCONT resumes it)."""
    if not trace.exists():
        return None
    for line in trace.read_text().splitlines():
        fields = line.split(maxsplit=1)  # strace pads the PID to a fixed width
        if fields[1:] == ["--- stopped by SIGSTOP ---"]:
            return int(fields[0])
    return None


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to stop kcm at syncfs")
def test_the_lock_is_free_while_a_pass_syncs_and_a_list_changed_meanwhile_waits(kcm, tmp_path):
    """A pass makes its writes durable without the lock (syncfs waits for everything the
    file system has to write: a busy disk must not stall isolates). Stopped at its syncfs
    (strace delivers SIGSTOP there), an isolate still starts, and the CPU list it changed
    keeps its live task: the pass leaves that list for the next one."""
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0", "1"]),
                                        "infra": (False, ["2-3"])})
    gone = dead_pid()
    (conf / "pools/dataplane/0/tasks").write_text(str(gone))
    (conf / "pools/infra/2-3/tasks").write_text(str(gone))
    trace = tmp_path / "strace.out"
    traced = subprocess.Popen(
        ["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=syncfs",
         "-e", "inject=syncfs:signal=SIGSTOP", KCM, "reconcile", f"--conf-dir={conf}"],
        env=kcm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    holder = reconcile = None
    try:
        reconcile = wait_for(lambda: stopped_by_sigstop(trace), timeout=30)
        holder = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=infra", "--no-affinity",
                           "--", "sleep", "600")
        wait_for(lambda: holder.pid in tasks_of(conf)["infra/2-3"], timeout=30)
        os.kill(reconcile, signal.SIGCONT)
        out, err = traced.communicate(timeout=30)
        assert traced.returncode == 0, err
        assert json.loads(out) == {"reclaimedCpuLists": [
            {"pool": "dataplane", "cpus": "0", "pid": gone}]}
        assert tasks_of(conf) == {"dataplane/0": [], "dataplane/1": [],
                                  "infra/2-3": [gone, holder.pid]}
        assert not list(conf.rglob(".kcm-tmp-*"))
        again = json.loads(kcm.run("reconcile", f"--conf-dir={conf}", check=True).stdout)
        assert again == {"reclaimedCpuLists": [{"pool": "infra", "cpus": "2-3", "pid": gone}]}
        assert tasks_of(conf)["infra/2-3"] == [holder.pid]
    finally:
        workloads = recorded_workloads(conf)
        if traced.poll() is None:  # a stopped kcm would outlive its tracer: kill it first
            if reconcile is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(reconcile, signal.SIGKILL)
            traced.kill()
            traced.wait()
        if holder is not None:
            holder.kill()
            holder.wait()
        kill_workloads(workloads)


def test_crash_debris_is_cleaned(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0"])})
    debris = conf / "pools/dataplane/0/.kcm-tmp-tasks-123"
    debris.write_text("1")
    kcm.run("reconcile", f"--conf-dir={conf}", check=True)
    assert not debris.exists()


def test_interval_runs_until_sigterm_then_exits_0(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0"])})
    proc = kcm.popen("reconcile", f"--conf-dir={conf}", "--interval=0.05",
                     stdout=subprocess.PIPE, text=True)
    first = read_lines(proc, 1)
    (conf / "pools/dataplane/0/tasks").write_text(str(dead_pid()))
    wait_for(lambda: tasks_of(conf)["dataplane/0"] == [])
    more = read_lines(proc, 2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    lines = [json.loads(line) for line in [*first, *more, *out.splitlines()]]
    assert len(lines) >= 3
    assert sum(len(line["reclaimedCpuLists"]) for line in lines) == 1


def test_interval_from_the_environment_and_sigint(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0"])})
    kcm.env["KCM_RECONCILE_SLEEP_TIME"] = "0.05"
    proc = kcm.popen("reconcile", f"--conf-dir={conf}", stdout=subprocess.PIPE, text=True)
    lines = read_lines(proc, 2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert len(lines + out.splitlines()) >= 2


def test_bad_interval(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0"])})
    assert kcm.run("reconcile", f"--conf-dir={conf}", "--interval=0").returncode == 2
    kcm.env["KCM_RECONCILE_SLEEP_TIME"] = "often"
    result = kcm.run("reconcile", f"--conf-dir={conf}")
    assert result.returncode == 1 and "KCM_RECONCILE_SLEEP_TIME" in result.stderr


def test_ten_thousand_tasks_over_a_thousand_lists_in_one_pass(kcm, tmp_path):
    lists = [str(cpu) for cpu in range(1000)]
    conf = make_conf(tmp_path / "kcm", {"shared": (False, lists)})
    gone = dead_pid()
    me = os.getpid()
    for cpu in lists:
        pids = [me] + [gone + 100_000 + int(cpu) * 10 + k for k in range(9)]
        (conf / "pools/shared" / cpu / "tasks").write_text(",".join(map(str, pids)))
    result = kcm.run("reconcile", f"--conf-dir={conf}", check=True, timeout=120)
    report = json.loads(result.stdout)
    assert len(report["reclaimedCpuLists"]) == 9000
    assert all(pids == [me] for pids in tasks_of(conf).values())
