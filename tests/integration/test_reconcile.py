"""``kcm reconcile``: dead and reused PIDs freed, live ones kept, one lock hold."""

import json
import os
import signal
import subprocess

from tests.integration.workloads import dead_pid, make_conf, read_lines, tasks_of, wait_for


def own_start_time() -> int:
    with open(f"/proc/{os.getpid()}/stat") as handle:
        return int(handle.read().rpartition(")")[2].split()[19])


def test_dead_and_reused_pids_are_reclaimed_live_ones_kept(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0", "1"]),
                                        "infra": (False, ["2-3"])})
    gone = dead_pid()
    me = os.getpid()
    (conf / "pools/dataplane/0/tasks").write_text(str(gone))
    # A live PID whose recorded start time is not its own: the PID was reused.
    (conf / "pools/dataplane/1/tasks").write_text(str(me))
    (conf / "pools/dataplane/1/task-info").write_text(f"{me} {own_start_time() + 1} - -\n")
    # A live PID written by hand, judged by existence; a dead one beside it.
    (conf / "pools/infra/2-3/tasks").write_text(f"{me},{gone + 0}")
    result = kcm.run("reconcile", f"--conf-dir={conf}", check=True)
    report = json.loads(result.stdout)
    assert report == {"reclaimedCpuLists": sorted([
        {"pool": "dataplane", "cpus": "0", "pid": gone},
        {"pool": "dataplane", "cpus": "1", "pid": me},
        {"pool": "infra", "cpus": "2-3", "pid": gone},
    ], key=lambda entry: (entry["pid"], entry["pool"]))}
    assert tasks_of(conf) == {"dataplane/0": [], "dataplane/1": [], "infra/2-3": [me]}


def test_the_right_start_time_keeps_the_task(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["0"])})
    me = os.getpid()
    (conf / "pools/dataplane/0/tasks").write_text(str(me))
    (conf / "pools/dataplane/0/task-info").write_text(f"{me} {own_start_time()} - -\n")
    report = json.loads(kcm.run("reconcile", f"--conf-dir={conf}", check=True).stdout)
    assert report["reclaimedCpuLists"] == []
    assert tasks_of(conf)["dataplane/0"] == [me]


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
