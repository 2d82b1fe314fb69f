"""CMK v1.4.1's socket layout, ``pools/<pool>/<socket>/<cpulist>``, read and written in
place by every command that touches the directory."""

import json
import os

import pytest

from kcm.cpuset import parse_cpulist
from tests.integration.workloads import (
    PYTHON,
    REPORTER,
    dead_pid,
    make_cmk_conf,
    read_json,
    wait_for,
)
from tests.machines import load_machine

# The operator manual's Xeon D-1541 as CMK's init laid it out: everything on socket 0,
# an empty directory for a socket without CPUs of the pool.
MANUAL_NODE = {
    "exclusive": (True, {0: ["4,12", "5,13", "6,14", "7,15"], 1: []}),
    "shared": (False, {0: ["3,11"], 1: []}),
    "infra": (False, {0: ["0-2,8-10"], 1: []}),
}
TWO_SOCKETS = "intel-xeon-l5640-2s"


def cpu_lists(described: dict, pool: str) -> dict:
    return described["pools"][pool]["cpuLists"]


def tasks_file(conf, pool: str, socket: int, cpus: str):
    return conf / "pools" / pool / str(socket) / cpus / "tasks"


def test_describe_shows_the_cpu_lists_without_the_socket_level(kcm, tmp_path):
    conf = make_cmk_conf(tmp_path / "cmk", MANUAL_NODE)
    tasks_file(conf, "shared", 0, "3,11").write_text(f"{os.getpid()}")
    result = kcm.run("describe", f"--conf-dir={conf}/", check=True)
    assert json.loads(result.stdout) == {
        "path": str(conf),
        "pools": {
            "exclusive": {"exclusive": True, "name": "exclusive", "cpuLists": {
                cpus: {"cpus": cpus, "tasks": []} for cpus in ["4,12", "5,13", "6,14", "7,15"]}},
            "shared": {"exclusive": False, "name": "shared", "cpuLists": {
                "3,11": {"cpus": "3,11", "tasks": [os.getpid()]}}},
            "infra": {"exclusive": False, "name": "infra", "cpuLists": {
                "0-2,8-10": {"cpus": "0-2,8-10", "tasks": []}}},
        }}
    assert result.stderr == ""
    table = kcm.run("describe", f"--conf-dir={conf}", "-o", "table", check=True).stdout
    assert "exclusive  yes        7,15" in table


def test_init_writes_the_socket_layout_and_the_commands_work_in_place(machine, tmp_path):
    node = machine(TWO_SOCKETS)
    socket_of = {cpu["cpu"]: cpu["socket"] for cpu in load_machine(TWO_SOCKETS)["cpus"]}
    conf = tmp_path / "cmk"
    init = ["init", f"--conf-dir={conf}", "--num-dp-cores=4", "--dp-mode=spread",
            "--num-cp-cores=1"]
    node.run(*init, "--layout=sockets", check=True)
    pools = conf / "pools"
    for pool in ("dataplane", "controlplane", "infra"):
        assert sorted(entry.name for entry in (pools / pool).iterdir()) == ["0", "1", "exclusive"]
    places = sorted(path.parent.relative_to(pools) for path in pools.glob("*/*/*/tasks"))
    for place in places:
        pool, socket, cpus = place.parts
        assert {socket_of[cpu] for cpu in parse_cpulist(cpus)} == {int(socket)}, place
    infra = [place.parts[1] for place in places if place.parts[0] == "infra"]
    assert sorted(infra) == ["0", "1"], "infra spans both sockets: one list on each"

    again = node.run(*init, "--layout=sockets", check=True)
    assert "nothing to do" in again.stderr
    flat = node.run(*init)
    assert flat.returncode != 0 and "already initialised" in flat.stderr

    described = json.loads(node.run("describe", f"--conf-dir={conf}", check=True).stdout)
    dataplane = {cpus for socket, cpus in
                 (place.parts[1:] for place in places if place.parts[0] == "dataplane")}
    assert set(cpu_lists(described, "dataplane")) == dataplane

    # isolate on socket 1 takes a list from socket 1's directory and gives it back.
    out = tmp_path / "report.json"
    proc = node.popen("isolate", f"--conf-dir={conf}", "--pool=dataplane", "--socket-id=1",
                      "--no-affinity", "--", PYTHON, "-c", REPORTER, str(out), "1")
    report = wait_for(lambda: read_json(out))
    granted = report["env"]["KCM_CPUS_ASSIGNED"]
    held = tasks_file(conf, "dataplane", 1, granted)
    assert {socket_of[cpu] for cpu in parse_cpulist(granted)} == {1}
    assert held.read_text() == str(proc.pid)
    assert (held.parent / "task-info").read_text().count(f"{proc.pid} ") == 1
    assert proc.wait(10) == 0
    assert held.read_text() == ""

    # reconcile frees a dead task where it is, and leaves the layout as it was.
    on_socket_0 = next(place for place in places if place.parts[:2] == ("dataplane", "0"))
    gone, pid = pools / on_socket_0 / "tasks", dead_pid()
    gone.write_text(str(pid))
    result = node.run("reconcile", f"--conf-dir={conf}", check=True)
    assert json.loads(result.stdout)["reclaimedCpuLists"] == [
        {"pool": "dataplane", "cpus": on_socket_0.parts[2], "pid": pid}]
    assert gone.read_text() == ""
    assert sorted(path.parent.relative_to(pools) for path in pools.glob("*/*/*/tasks")) == places
    assert not list(pools.glob("*/*/tasks")), "nothing was written at the flat level"

    report = json.loads(node.run("node-report", f"--conf-dir={conf}", check=True).stdout)
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["configDirectory"]["ok"] and checks["disjointCpuLists"]["ok"]


def test_a_shared_pool_split_per_socket_hands_out_one_socket(machine, tmp_path):
    node = machine(TWO_SOCKETS)
    conf = tmp_path / "cmk"
    node.run("init", f"--conf-dir={conf}", "--layout=sockets", "--num-dp-cores=1",
             "--num-cp-cores=0", check=True)
    socket_cpus = {}
    for cpu in load_machine(TWO_SOCKETS)["cpus"]:
        socket_cpus.setdefault(cpu["socket"], set()).add(cpu["cpu"])
    for socket in (0, 1):
        out = tmp_path / f"report-{socket}.json"
        node.run("isolate", f"--conf-dir={conf}", "--pool=infra", f"--socket-id={socket}",
                 "--no-affinity", PYTHON, "-c", REPORTER, str(out), check=True)
        assert parse_cpulist(read_json(out)["env"]["KCM_CPUS_ASSIGNED"]) <= socket_cpus[socket]


@pytest.mark.parametrize(("layout", "message"), [
    ({"0/4,12": "dir", "5,13": "dir"}, "is a CPU list beside the socket directory"),
    ({"0/4,12": "dir", "0/notes": "file"}, "unexpected file"),
    ({"0/4,12": "dir", "1/4,12": "dir"}, "is in two socket directories"),
    ({"0/4,12": "dir", "x1/5": "dir"}, "is a CPU list beside the socket directory"),
])
def test_a_damaged_socket_layout_is_one_line_and_left_alone(kcm, tmp_path, layout, message):
    conf = tmp_path / "cmk"
    pool = conf / "pools" / "exclusive"
    pool.mkdir(parents=True)
    (pool / "exclusive").write_text("1")
    (conf / "lock").write_text("")
    for place, kind in layout.items():
        if kind == "dir":
            (pool / place).mkdir(parents=True)
        else:
            (pool / place).write_text("x")
    before = sorted(str(path.relative_to(conf)) for path in conf.rglob("*"))
    for command, *args in (["describe"], ["reconcile"], ["isolate", "--pool=exclusive", "true"]):
        result = kcm.run(command, f"--conf-dir={conf}", *args)
        assert result.returncode != 0
        assert message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert sorted(str(path.relative_to(conf)) for path in conf.rglob("*")) == before
