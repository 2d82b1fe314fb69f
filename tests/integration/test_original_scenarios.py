"""The scenarios of the original projects' own integration suites, rewritten here: the
KCM era's through ``kcm`` on its flat layout, CMK v1.4.1's through ``cmk`` on CMK's socket
layout. What their users' scripts and workloads check must hold unchanged. (Their docopt
help texts are not kept: see docs/cli.md. Where kcm's answer differs on purpose, the test
says so.)"""

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CMK, KCM
from tests.integration.workloads import dead_pid, make_cmk_conf, make_conf, wait_for
from tests.machines import build_sysfs, machine_env, xeon_d1541

MINIMAL = {"exclusive": (True, {0: ["0"]}), "shared": (False, {0: ["0"]})}
MINIMAL_INFRA = {"exclusive": (True, {0: ["1"]}), "shared": (False, {0: ["1"]}),
                 "infra": (False, {0: ["0"]})}
MINIMAL_MULTI = {"exclusive": (True, {0: ["0", "1"]}), "shared": (False, {0: ["0"]})}
# The operator manual's Xeon D-1541, as the originals' init laid it out.
OK = {"exclusive": (True, {0: ["4,12", "5,13", "6,14", "7,15"]}),
      "shared": (False, {0: ["3,11"]}), "infra": (False, {0: ["0-2,8-10"]})}


class Era:
    """One original: its command, its layout and its names for the two first pools."""

    def __init__(self, command: str, socket_layout: bool, names: dict[str, str]):
        self.command = command
        self.socket_layout = socket_layout
        self.names = names

    def name(self, pool: str) -> str:
        return self.names.get(pool, pool)

    def conf(self, root: Path, pools: dict) -> Path:
        """A directory as this original wrote it, from {pool: (exclusive, {socket: lists})}."""
        renamed = {self.name(pool): spec for pool, spec in pools.items()}
        if self.socket_layout:
            return make_cmk_conf(root, renamed)
        return make_conf(root, {
            pool: (exclusive, [cpus for lists in sockets.values() for cpus in lists])
            for pool, (exclusive, sockets) in renamed.items()})

    def list_dir(self, conf: Path, pool: str, cpus: str) -> Path:
        socket = "0/" if self.socket_layout else ""
        return conf / "pools" / self.name(pool) / f"{socket}{cpus}"

    def run(self, *args: str, env: dict[str, str] | None = None, check: bool = True,
            ) -> subprocess.CompletedProcess:
        return subprocess.run([self.command, *args], env=env or cmk_env(), capture_output=True,
                              check=check, timeout=60)


ERAS = {"kcm-2017": Era(KCM, False, {"exclusive": "dataplane", "shared": "controlplane"}),
        "cmk-1.4.1": Era(CMK, True, {})}


@pytest.fixture(params=sorted(ERAS))
def era(request) -> Era:
    return ERAS[request.param]


def cmk_env(**extra: str) -> dict[str, str]:
    """A pod's environment: nothing of kcm's, CMK_PROC_FS set as CMK's manifests did."""
    return {"PATH": os.environ["PATH"], "CMK_PROC_FS": "/proc", **extra}


def cmk(*args: str, env: dict[str, str] | None = None, check: bool = True,
        ) -> subprocess.CompletedProcess:
    return ERAS["cmk-1.4.1"].run(*args, env=env, check=check)


@pytest.mark.parametrize(("pools", "pool", "extra", "expected"), [
    (MINIMAL, "shared", {},
     "CMK_CPUS_ASSIGNED=0\nCMK_CPUS_ASSIGNED_MASK=1\nCMK_CPUS_SHARED=0\nCMK_PROC_FS=/proc\n"),
    (MINIMAL_INFRA, "shared", {},
     "CMK_CPUS_ASSIGNED=1\nCMK_CPUS_ASSIGNED_MASK=2\nCMK_CPUS_SHARED=1\nCMK_CPUS_INFRA=0\n"
     "CMK_PROC_FS=/proc\n"),
    (MINIMAL_MULTI, "exclusive", {"CMK_NUM_CORES": "2"},
     "CMK_CPUS_ASSIGNED=0,1\nCMK_CPUS_ASSIGNED_MASK=3\nCMK_CPUS_SHARED=0\nCMK_PROC_FS=/proc\n"
     "CMK_NUM_CORES=2\n"),
    (MINIMAL_MULTI, "shared", {"CMK_NUM_CORES": "2"},
     "CMK_CPUS_ASSIGNED=0\nCMK_CPUS_ASSIGNED_MASK=1\nCMK_CPUS_SHARED=0\nCMK_PROC_FS=/proc\n"
     "CMK_NUM_CORES=2\n"),
])
def test_the_workload_sees_cmk_variables_byte_for_byte(tmp_path, pools, pool, extra, expected):
    conf = make_cmk_conf(tmp_path / "cmk", pools)
    result = cmk("isolate", f"--conf-dir={conf}", f"--pool={pool}", "env | grep CMK",
                 env=cmk_env(**extra))
    assert result.stdout.decode() == expected


@pytest.mark.parametrize("pool", ["shared", "exclusive"])
def test_a_command_and_its_arguments_after_the_separator(era, tmp_path, pool):
    conf = era.conf(tmp_path / "conf", MINIMAL)
    assert era.run("isolate", f"--conf-dir={conf}", f"--pool={era.name(pool)}", "echo", "--",
                   "foo").stdout == b"foo\n"


def test_a_full_pool_and_too_many_cores_fail(era, tmp_path):
    conf = era.conf(tmp_path / "conf", MINIMAL_MULTI)
    for cpus in ("0", "1"):
        (era.list_dir(conf, "exclusive", cpus) / "tasks").write_text(str(os.getpid()))
    exclusive = f"--pool={era.name('exclusive')}"
    full = era.run("isolate", f"--conf-dir={conf}", exclusive, "echo", "--", "foo", check=False)
    assert full.returncode != 0 and full.stdout == b""
    fresh = era.conf(tmp_path / "fresh", MINIMAL_MULTI)
    three = era.run("isolate", f"--conf-dir={fresh}", exclusive, "env | grep CMK",
                    env=cmk_env(CMK_NUM_CORES="3"), check=False)
    assert three.returncode != 0 and b"has only 2" in three.stderr


@pytest.mark.parametrize(("how", "released"), [(signal.SIGTERM, True), (signal.SIGKILL, False)])
def test_the_task_is_booked_and_a_signal_decides_its_release(era, tmp_path, how, released):
    """SIGTERM: isolate stops the workload and gives the list back; SIGKILL: the list stays
    held (by a dead task reconcile will free once the workload is gone)."""
    conf = era.conf(tmp_path / "conf", MINIMAL)
    tasks = era.list_dir(conf, "shared", "0") / "tasks"
    started = tmp_path / "workload.pid"
    proc = subprocess.Popen([era.command, "isolate", f"--conf-dir={conf}",
                             f"--pool={era.name('shared')}",
                             f"echo $$ > {started} && exec sleep 300"], env=cmk_env())
    workload = int(wait_for(lambda: started.exists() and started.read_text().strip()))
    try:
        assert tasks.read_text() == str(proc.pid)
        proc.send_signal(how)
        proc.wait(20)
        assert (tasks.read_text() == "") is released
    finally:
        if how == signal.SIGKILL:
            os.kill(workload, signal.SIGKILL)


def test_reconcile_frees_the_dead_and_keeps_the_living(era, tmp_path):
    """The originals' reconcile test: PID 1 stays, dead PIDs go; describe shows the rest
    in the originals' document, byte for byte."""
    conf = era.conf(tmp_path / "conf", OK)
    gone, other = dead_pid(), dead_pid()
    exclusive, shared = era.name("exclusive"), era.name("shared")
    (era.list_dir(conf, "exclusive", "5,13") / "tasks").write_text("1")
    (era.list_dir(conf, "exclusive", "6,14") / "tasks").write_text(str(gone))
    (era.list_dir(conf, "shared", "3,11") / "tasks").write_text(f"{other}")
    report = json.loads(era.run("reconcile", f"--conf-dir={conf}").stdout)
    assert sorted(report["reclaimedCpuLists"], key=lambda entry: entry["pid"]) == sorted(
        [{"cpus": "6,14", "pid": gone, "pool": exclusive},
         {"cpus": "3,11", "pid": other, "pool": shared}], key=lambda entry: entry["pid"])
    lists = {exclusive: {"4,12": [], "5,13": [1], "6,14": [], "7,15": []},
             shared: {"3,11": []}, "infra": {"0-2,8-10": []}}
    assert era.run("describe", f"--conf-dir={conf}").stdout.decode() == document(
        conf, {pool: (pool == exclusive, cpu_lists) for pool, cpu_lists in lists.items()})


def test_describe_prints_the_originals_document_byte_for_byte(era, tmp_path):
    conf = era.conf(tmp_path / "conf", MINIMAL)
    expected = document(conf, {era.name("exclusive"): (True, {"0": []}),
                               era.name("shared"): (False, {"0": []})})
    assert era.run("describe", f"--conf-dir={conf}/").stdout.decode() == expected


def document(conf: Path, pools: dict) -> str:
    """The originals' describe text: {pool: (exclusive, {cpus: tasks})}."""
    return json.dumps({"path": str(conf), "pools": {
        name: {"cpuLists": {cpus: {"cpus": cpus, "tasks": tasks} for cpus, tasks in lists.items()},
               "exclusive": exclusive, "name": name}
        for name, (exclusive, lists) in pools.items()}}, indent=2, sort_keys=True) + "\n"


@pytest.fixture
def xeon_d(tmp_path):
    """The Xeon D-1541 sysfs with a given isolcpus: a CMK pod's environment pointed at it."""
    def make(isolated: str = "") -> dict[str, str]:
        root = tmp_path / f"xeon-d-{isolated or 'none'}"
        build_sysfs(xeon_d1541(), root, cmdline=f"isolcpus={isolated}" if isolated else "",
                    isolated=isolated)
        return cmk_env(KCM_SYSFS=machine_env(root)["KCM_SYSFS"])
    return make


def lists_made(conf: Path) -> dict[str, list[str]]:
    """pool -> CPU list names, in either layout."""
    found: dict[str, list[str]] = {}
    for tasks in sorted(conf.glob("pools/**/tasks")):
        pool = tasks.relative_to(conf / "pools").parts[0]
        found.setdefault(pool, []).append(tasks.parent.name)
    return found


def test_init_lays_out_the_node_as_the_originals_did(era, xeon_d, tmp_path):
    conf = tmp_path / "init"
    era.run("init", f"--conf-dir={conf}", env=xeon_d())
    assert lists_made(conf) == {era.name("exclusive"): ["4,12", "5,13", "6,14", "7,15"],
                                "infra": ["0-2,8-10"], era.name("shared"): ["3,11"]}


def test_init_on_isolated_cores(xeon_d, tmp_path):
    """CMK gave the exclusive pool the lowest isolated cores (0,8 to 3,11) and the shared
    pool 4,12. kcm keeps core 0, where the kernel's own work lands, out of the exclusive
    pool: the same cores, the shared pool on 0,8 (a difference listed in docs/cli.md)."""
    conf = tmp_path / "init"
    result = cmk("init", f"--conf-dir={conf}", env=xeon_d("0-4,8-12"))
    assert lists_made(conf) == {"exclusive": ["1,9", "2,10", "3,11", "4,12"],
                                "infra": ["5-7,13-15"], "shared": ["0,8"]}
    assert result.stderr.count(b"warning") == 0


@pytest.mark.parametrize(("isolated", "warning"), [
    ("1,2", b"core 1,9 is only partly isolated"),
    ("0-6,8-14", b"isolated CPUs 0-4,8-12 are in no pool"),
])
def test_init_warns_about_isolation_it_cannot_use(xeon_d, tmp_path, isolated, warning):
    result = cmk("init", f"--conf-dir={tmp_path / 'init'}", "--num-exclusive-cores=1",
                 "--num-shared-cores=1", env=xeon_d(isolated))
    assert warning in result.stderr


@pytest.mark.parametrize(("isolated", "args", "message"), [
    ("", ["--num-exclusive-cores=10", "--num-shared-cores=5"], b"this node has 8 physical cores"),
    ("0,8", [], b"1 fully isolated cores"),
])
def test_init_refuses_what_the_node_cannot_give(xeon_d, tmp_path, isolated, args, message):
    result = cmk("init", f"--conf-dir={tmp_path / 'init'}", *args, env=xeon_d(isolated),
                 check=False)
    assert result.returncode != 0 and message in result.stderr
    assert not (tmp_path / "init").exists()


def test_init_over_a_directory_with_other_pools_fails_and_leaves_it(era, xeon_d, tmp_path):
    conf = era.conf(tmp_path / "conf", MINIMAL)
    before = sorted(str(path) for path in conf.rglob("*"))
    result = era.run("init", f"--conf-dir={conf}", env=xeon_d(), check=False)
    assert result.returncode != 0 and b"already initialised" in result.stderr
    assert sorted(str(path) for path in conf.rglob("*") if path.name != "lock") == before


def test_node_report_reads_a_cmk_directory_and_flags_overlap(xeon_d, tmp_path):
    """CMK's report flagged CPU 0 in two pools in its configDirectory check; kcm's
    NodeReport (its own schema, docs/cli.md) fails disjointCpuLists."""
    conf = make_cmk_conf(tmp_path / "cmk", MINIMAL)
    report = json.loads(cmk("node-report", f"--conf-dir={conf}", "--interval=0",
                            env=xeon_d()).stdout)
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["configDirectory"]["ok"]
    assert not checks["disjointCpuLists"]["ok"]
    assert "CPU 0" in checks["disjointCpuLists"]["errors"][0]
    assert set(report["pools"]) == {"exclusive", "shared"}
