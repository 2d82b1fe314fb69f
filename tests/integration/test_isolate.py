"""``kcm isolate`` with real processes, affinity, signals and concurrency."""

import fcntl
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from kcm.cpuset import parse_cpulist
from kcm.helptext import HELP
from tests.conftest import KCM
from tests.integration.workloads import (
    PYTHON,
    REPORTER,
    alive,
    make_conf,
    read_json,
    tasks_of,
    wait_for,
)
from tests.machines import load_machine


@pytest.fixture
def conf(tmp_path):
    """An exclusive pool with one CPU list per CPU of this 2-CPU machine."""
    return make_conf(tmp_path / "kcm", {"dataplane": (True, ["0", "1"])})


@pytest.fixture
def shared(tmp_path):
    return make_conf(tmp_path / "shared", {"infra": (False, ["0-1"])})


def test_the_command_runs_pinned_with_its_environment(kcm, conf, tmp_path):
    out = tmp_path / "report.json"
    proc = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane", "--",
                     PYTHON, "-c", REPORTER, str(out), "1")
    report = wait_for(lambda: read_json(out))
    assert report["affinity"] == [0]
    assert report["status"] == "0"
    assert os.sched_getaffinity(report["pid"]) == {0}
    assert report["env"]["KCM_CPUS_ASSIGNED"] == "0"
    assert report["env"]["KCM_CPUS_ASSIGNED_MASK"] == "0x1"
    assert report["env"]["KCM_POOL"] == "dataplane"
    assert tasks_of(conf)["dataplane/0"] == [proc.pid]
    lines = (conf / "pools/dataplane/0/task-info").read_text().splitlines()
    info = next(line.split() for line in lines if not line.startswith("0 "))
    assert info[0] == str(proc.pid) and info[2] == str(report["pid"])
    assert not list(conf.rglob(".kcm-tmp-*"))  # the replaced files are gone before it runs
    assert proc.wait(10) == 0
    assert tasks_of(conf)["dataplane/0"] == []
    assert not list(conf.rglob(".kcm-tmp-*"))


def test_shared_pool_gives_the_least_loaded_list(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"infra": (False, ["0", "1"])})
    (conf / "pools/infra/0/tasks").write_text(str(os.getpid()))
    out = tmp_path / "report.json"
    kcm.run("isolate", f"--conf-dir={conf}", "--pool=infra", PYTHON, "-c", REPORTER, str(out),
            check=True)
    assert read_json(out)["affinity"] == [1]


def test_no_affinity_only_sets_the_environment(kcm, conf, tmp_path):
    out = tmp_path / "report.json"
    kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "--no-affinity",
            PYTHON, "-c", REPORTER, str(out), check=True)
    report = read_json(out)
    assert report["affinity"] == sorted(os.sched_getaffinity(0))
    assert report["env"]["KCM_CPUS_ASSIGNED"] == "0"


@pytest.mark.parametrize("form", [
    ["echo", "--", "hello"],           # the manual's form
    ["--", "echo", "hello"],
    ["echo", "hello"],
])
def test_argument_forms(kcm, shared, form):
    result = kcm.run("isolate", f"--conf-dir={shared}", "--pool=infra", *form, check=True)
    assert result.stdout == "hello\n"


def test_only_the_first_double_dash_is_kcms(kcm, shared):
    result = kcm.run("isolate", f"--conf-dir={shared}", "--pool=infra", "--", "echo", "--", "x",
                     check=True)
    assert result.stdout == "-- x\n"


def test_no_shell_is_involved(kcm, shared):
    result = kcm.run("isolate", f"--conf-dir={shared}", "--pool=infra", "echo", "$HOME;", "*",
                     check=True)
    assert result.stdout == "$HOME; *\n"


@pytest.mark.parametrize(("script", "status"), [
    ("exit 0", 0), ("exit 7", 7), ("exit 255", 255),
    ("kill -TERM $$", 128 + 15), ("kill -KILL $$", 128 + 9), ("kill -SEGV $$", 128 + 11),
])
def test_exit_status_is_the_childs(kcm, conf, script, status):
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "sh", "-c", script)
    assert result.returncode == status
    assert tasks_of(conf)["dataplane/0"] == []


TRAP = (
    "import signal, sys, time, pathlib\n"
    "out = pathlib.Path(sys.argv[1])\n"
    "def got(n, f):\n"
    "    out.write_text(str(n)); sys.exit(3)\n"
    "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,\n"
    "          signal.SIGUSR1, signal.SIGUSR2):\n"
    "    signal.signal(s, got)\n"
    "pathlib.Path(sys.argv[1] + '.ready').write_text('')\n"
    "time.sleep(30)\n"
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                                    signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2])
def test_signals_are_forwarded(kcm, conf, tmp_path, signum):
    out = tmp_path / "signal"
    proc = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane",
                     PYTHON, "-c", TRAP, str(out))
    wait_for(lambda: (tmp_path / "signal.ready").exists())
    proc.send_signal(signum)
    assert proc.wait(10) == 3
    assert out.read_text() == str(int(signum))
    assert tasks_of(conf)["dataplane/0"] == []


def test_sigterm_to_an_untrapping_child_gives_143(kcm, conf, tmp_path):
    ready = tmp_path / "ready"
    proc = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane", "sh", "-c",
                     f"touch {ready}; exec sleep 30")
    wait_for(ready.exists)
    proc.terminate()
    assert proc.wait(10) == 143
    assert tasks_of(conf)["dataplane/0"] == []


def signals_blocked(pid: int) -> int:
    """The blocked-signal mask of a process (``SigBlk`` of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1], 16) for line in status if line.startswith("SigBlk"))


def test_a_signal_during_start_up_is_not_lost(kcm, conf, tmp_path):
    """SIGTERM while kcm isolate has forked its workload but not yet granted it a list
    (held at the lock by this test, its signals blocked): the signal is delivered once
    the workload starts, which ends it; nothing is left running or recorded."""
    import fcntl

    pid_file = tmp_path / "workload"
    with open(conf / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane", "sh", "-c",
                         f"echo $$ > {pid_file}; exec sleep 30")
        wait_for(lambda: signals_blocked(proc.pid) & (1 << (signal.SIGTERM - 1)))
        proc.terminate()
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert proc.wait(20) == 143
    assert tasks_of(conf)["dataplane/0"] == [] and tasks_of(conf)["dataplane/1"] == []
    if pid_file.exists() and pid_file.read_text().strip():
        assert not alive(int(pid_file.read_text()))


STAMP = (
    "import json, os, sys, time\n"
    "start = time.monotonic(); time.sleep(0.15); end = time.monotonic()\n"
    "print(json.dumps([os.environ['KCM_CPUS_ASSIGNED'], start, end]))\n"
)


def test_a_storm_of_isolates_never_double_allocates(kcm, conf):
    procs = [kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane",
                       PYTHON, "-c", STAMP, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True) for _ in range(50)]
    samples = 0
    while any(proc.poll() is None for proc in procs):
        for pids in tasks_of(conf).values():
            assert len(pids) <= 1
        samples += 1
        time.sleep(0.005)
    intervals: dict[str, list[tuple[float, float]]] = {}
    winners = 0
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode == 0:
            cpus, start, end = json.loads(out)
            intervals.setdefault(cpus, []).append((start, end))
            winners += 1
        else:
            assert proc.returncode == 1
            assert err.startswith("kcm: pool dataplane is full") and err.count("\n") == 1
    assert winners >= 2 and samples > 10
    for spans in intervals.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, "two workloads held one exclusive CPU list at once"
    assert tasks_of(conf) == {"dataplane/0": [], "dataplane/1": []}
    assert not list(conf.rglob(".kcm-tmp-*"))


def test_kill_9_keeps_the_list_while_the_workload_lives(kcm, conf, tmp_path):
    out = tmp_path / "report.json"
    proc = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane",
                     PYTHON, "-c", REPORTER, str(out), "30")
    child = wait_for(lambda: read_json(out))["pid"]
    proc.kill()
    proc.wait()
    assert alive(child)
    kept = json.loads(kcm.run("reconcile", f"--conf-dir={conf}", check=True).stdout)
    assert kept == {"reclaimedCpuLists": []}
    assert tasks_of(conf)["dataplane/0"] == [proc.pid]
    refused = kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "--num-cores=2",
                      "true")
    assert "full" in refused.stderr
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: not alive(child))
    freed = json.loads(kcm.run("reconcile", f"--conf-dir={conf}", check=True).stdout)
    assert freed == {"reclaimedCpuLists": [{"pool": "dataplane", "cpus": "0", "pid": proc.pid}]}
    assert tasks_of(conf)["dataplane/0"] == []


def test_dead_holders_are_reclaimed_on_the_spot(kcm, conf):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (conf / "pools/dataplane/0/tasks").write_text(str(dead.pid))
    (conf / "pools/dataplane/1/tasks").write_text(str(dead.pid + 0))
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "--", "echo", "ran")
    assert result.returncode == 0 and result.stdout == "ran\n"


def test_lock_timeout_is_honoured(kcm, conf, tmp_path):
    kcm.env["KCM_LOCK_TIMEOUT"] = "0.5"
    marker = tmp_path / "started"
    with open(conf / "lock", "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        started = time.monotonic()
        result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane",
                         "touch", str(marker))
        waited = time.monotonic() - started
    assert result.returncode == 1
    assert result.stderr.startswith("kcm: timed out after 0.5s waiting for the lock")
    assert waited < 5
    assert not marker.exists()
    assert all(not pids for pids in tasks_of(conf).values())


@pytest.mark.parametrize(("args", "message"), [
    (["--pool=nope"], "unknown pool 'nope'"),
    (["--pool=dataplane", "--num-cores=3"], "requested 3 CPU lists but pool dataplane has only 2"),
    (["--pool=dataplane", "--numa-node=7"], "this node has no NUMA node 7"),
])
def test_failures_before_start_record_nothing(kcm, conf, tmp_path, args, message):
    marker = tmp_path / "started"
    result = kcm.run("isolate", f"--conf-dir={conf}", *args, "touch", str(marker))
    assert result.returncode == 1
    assert result.stderr.startswith("kcm: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert not marker.exists()
    assert all(not pids for pids in tasks_of(conf).values())
    assert not list(conf.rglob("task-info"))


def test_a_full_pool(kcm, conf, tmp_path):
    (conf / "pools/dataplane/0/tasks").write_text(str(os.getpid()))
    (conf / "pools/dataplane/1/tasks").write_text(str(os.getppid()))
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "true")
    assert result.returncode == 1
    assert result.stderr == ("kcm: pool dataplane is full: 2 of 2 CPU lists are in use, "
                             "1 requested\n")


def test_a_list_with_a_line_kcm_cannot_read_is_held_and_reported(kcm, conf, tmp_path):
    """Its list is never granted nor rewritten; the others still are."""
    (conf / "pools/dataplane/0/tasks").write_text("12,x")
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "sh", "-c",
                     'echo "$KCM_CPUS_ASSIGNED"')
    assert result.returncode == 0 and result.stdout == "1\n"
    assert f"{conf}/pools/dataplane/0/tasks: 'x' is not a PID" in result.stderr
    assert (conf / "pools/dataplane/0/tasks").read_text() == "12,x"
    (conf / "pools/dataplane/1/tasks").write_text(str(os.getpid()))
    full = kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "true")
    assert full.returncode == 1 and "pool dataplane is full" in full.stderr
    assert (conf / "pools/dataplane/0/tasks").read_text() == "12,x"


def test_num_cores_on_a_shared_pool_is_an_error(kcm, shared):
    result = kcm.run("isolate", f"--conf-dir={shared}", "--pool=infra", "--num-cores=2", "true")
    assert result.returncode == 1
    assert result.stderr == "kcm: --num-cores applies to exclusive pools; pool infra is shared\n"


def test_command_not_found_is_127(kcm, shared):
    result = kcm.run("isolate", f"--conf-dir={shared}", "--pool=infra", "no-such-command-kcm")
    assert result.returncode == 127
    assert result.stderr == "kcm: cannot run no-such-command-kcm: command not found\n"


def test_a_finished_isolate_exits_with_all_its_output(kcm, shared):
    """A finished isolate (or describe) skips the interpreter's teardown
    (kcm.cli.exit_after): what it printed into a pipe still arrives, and its status is
    still the workload's."""
    result = kcm.run("isolate", f"--conf-dir={shared}", "--pool=infra", "sh", "-c",
                     "echo out; exit 5", env_overrides={"KCM_NUM_CORES": "2"})
    assert result.returncode == 5
    assert result.stdout == "out\n"
    assert "KCM_NUM_CORES=2 is ignored: pool infra is shared" in result.stderr
    buffered = {name: value for name, value in kcm.env.items() if name != "PYTHONUNBUFFERED"}
    for argv in ([KCM], [sys.executable, "-m", "kcm"]):
        shown = subprocess.run([*argv, "isolate", "--help"], capture_output=True, text=True,
                               env=buffered, timeout=60)
        assert (shown.returncode, shown.stdout) == (0, HELP["isolate"])
        described = subprocess.run([*argv, "describe", f"--conf-dir={shared}"],
                                   capture_output=True, text=True, env=buffered, timeout=60)
        assert described.returncode == 0
        assert json.loads(described.stdout)["pools"]["infra"]["exclusive"] is False


def test_missing_command_is_a_usage_error(kcm, shared):
    assert kcm.run("isolate", f"--conf-dir={shared}", "--pool=infra").returncode == 2
    assert kcm.run("isolate", f"--conf-dir={shared}", "--pool=infra", "--").returncode == 2


def test_when_pid_1_it_reaps_orphans(kcm, shared, tmp_path):
    """In a new PID namespace kcm is PID 1: orphaned grandchildren must not stay zombies."""
    unshare = subprocess.run(["unshare", "--fork", "--pid", "--mount-proc", "true"],
                             capture_output=True)
    if unshare.returncode != 0:
        pytest.skip("cannot create a PID namespace here")
    # As in a container: the namespace's own /proc, and the host's mounted elsewhere.
    host_proc = tmp_path / "host-proc"
    host_proc.mkdir()
    if subprocess.run(["mount", "-t", "proc", "proc", str(host_proc)]).returncode != 0:
        pytest.skip("cannot mount a procfs here")
    try:
        # An orphan ends while the workload runs: PID 1 (kcm) must reap it. The workload
        # waits for that on a condition (the orphan gone from /proc), with a deadline.
        script = (f"sh -c 'sleep 0.2 & echo $! > {tmp_path}/orphan'; o=$(cat {tmp_path}/orphan); "
                  "i=0; "
                  "while [ -e /proc/$o ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; "
                  "[ -e /proc/$o ] && echo left || echo reaped")
        result = subprocess.run(
            ["unshare", "--fork", "--pid", "--mount-proc", kcm_path(), "isolate",
             f"--conf-dir={shared}", "--pool=infra", "sh", "-c", script],
            capture_output=True, text=True, env={**kcm.env, "KCM_PROC_FS": str(host_proc)},
            timeout=20)
    finally:
        subprocess.run(["umount", str(host_proc)], check=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "reaped"


def test_a_procfs_that_is_not_the_hosts_is_refused(kcm, shared, tmp_path):
    """The namespace's own /proc (kcm is PID 1 there) would make every host task look
    dead: isolate refuses it before recording anything."""
    if subprocess.run(["unshare", "--fork", "--pid", "--mount-proc", "true"]).returncode != 0:
        pytest.skip("cannot create a PID namespace here")
    result = subprocess.run(
        ["unshare", "--fork", "--pid", "--mount-proc", kcm_path(), "isolate",
         f"--conf-dir={shared}", "--pool=infra", "true"],
        capture_output=True, text=True, env=kcm.env, timeout=20)
    assert result.returncode == 1
    assert result.stderr.startswith("kcm: /proc is not the host's procfs")
    assert result.stderr.count("\n") == 1
    assert all(not pids for pids in tasks_of(shared).values())


def kcm_path() -> str:
    from tests.conftest import KCM
    return KCM


class TestMultiNuma:
    """Multi-core and NUMA/socket selection on generated multi-NUMA machines."""

    def assigned(self, kcm, conf, tmp_path, *args) -> set[int]:
        out = tmp_path / f"r{random.random()}.json"
        kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "--no-affinity", *args,
                PYTHON, "-c", REPORTER, str(out), check=True)
        return parse_cpulist(read_json(out)["env"]["KCM_CPUS_ASSIGNED"])

    def test_num_cores_stay_in_one_l3(self, machine, tmp_path):
        kcm = machine("amd-epyc-7402-2s-nps1")
        conf = tmp_path / "kcm"
        kcm.run("init", f"--conf-dir={conf}", "--num-dp-cores=12", check=True)
        cpus = self.assigned(kcm, conf, tmp_path, "--num-cores=3")
        assert len(cpus) == 6
        epyc_l3 = {cpu // 3 for cpu in cpus if cpu < 48} | {(c - 48) // 3 for c in cpus if c >= 48}
        assert len(epyc_l3) == 1

    def test_numa_node_and_socket_restrict_the_choice(self, machine, tmp_path):
        kcm = machine("intel-xeon-gold6230-2s-snc2")
        conf = tmp_path / "kcm"
        kcm.run("init", f"--conf-dir={conf}", "--num-dp-cores=8", "--dp-mode=spread",
                check=True)
        for node in range(4):
            cpus = self.assigned(kcm, conf, tmp_path, f"--numa-node={node}")
            assert all(cpu % 4 == node for cpu in cpus)
        cpus = self.assigned(kcm, conf, tmp_path, "--socket-id=1", "--num-cores=2")
        assert len(cpus) == 4 and all(cpu % 2 == 1 for cpu in cpus)

    def test_num_cores_from_the_environment(self, machine, tmp_path):
        kcm = machine("amd-threadripper-2990wx")
        conf = tmp_path / "kcm"
        kcm.run("init", f"--conf-dir={conf}", "--num-dp-cores=8", check=True)
        kcm.env["KCM_NUM_CORES"] = "4"
        cpus = self.assigned(kcm, conf, tmp_path)
        assert len(cpus) == 8


def test_a_pool_of_lone_threads_keeps_cores_whole(machine, tmp_path):
    """A CMK-style pool with one CPU list per hyperthread, on a Ryzen 5 1600: the
    second one-thread workload fills the first one's core, and a two-thread workload
    gets a whole free core, not two lone threads."""
    kcm = machine("amd-ryzen5-1600")
    cores = {}
    for cpu in load_machine("amd-ryzen5-1600")["cpus"]:
        cores.setdefault(cpu["core"], set()).add(cpu["cpu"])
    conf = make_conf(tmp_path / "kcm", {"threads": (True, [str(c) for c in range(12)])})
    holders = []
    try:
        assigned = []
        for count in (1, 1, 2):
            out = tmp_path / f"held-{len(holders)}.json"
            holder = kcm.popen("isolate", f"--conf-dir={conf}", "--pool=threads",
                               f"--num-cores={count}", "--no-affinity", PYTHON, "-c",
                               REPORTER, str(out), "60")
            holders.append(holder)
            wait_for(out.exists)
            assigned.append(parse_cpulist(read_json(out)["env"]["KCM_CPUS_ASSIGNED"]))
        first, second, pair = assigned
        assert first | second in cores.values()
        assert pair in cores.values() and not pair & (first | second)
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
