"""``kcm init`` and ``kcm describe`` through the real CLI on generated machines."""

import json
import os
import subprocess
import sys

import pytest

from kcm import __version__
from kcm.cli import COMMANDS
from kcm.cpuset import parse_cpulist
from tests.machines import REAL_MACHINES, load_machine, xeon_d1541

MACHINES = [name for name in REAL_MACHINES if "m560" not in name]  # 2 cores: too small


def describe(kcm, conf_dir) -> dict:
    result = kcm.run("describe", f"--conf-dir={conf_dir}", check=True)
    return json.loads(result.stdout)


def test_the_manuals_example_machine_exactly(machine, tmp_path):
    kcm = machine(xeon_d1541())
    conf = tmp_path / "kcm"
    kcm.run("init", f"--conf-dir={conf}", check=True)
    doc = describe(kcm, conf)
    assert doc["path"] == str(conf)
    pools = doc["pools"]
    assert sorted(pools["dataplane"]["cpuLists"]) == ["4,12", "5,13", "6,14", "7,15"]
    assert list(pools["controlplane"]["cpuLists"]) == ["3,11"]
    assert list(pools["infra"]["cpuLists"]) == ["0-2,8-10"]
    assert pools["dataplane"]["exclusive"] is True
    assert pools["infra"]["exclusive"] is False
    assert pools["infra"]["cpuLists"]["0-2,8-10"] == {"cpus": "0-2,8-10", "tasks": []}
    assert (conf / "pools/dataplane/4,12/tasks").read_text() == ""
    assert (conf / "pools/dataplane/exclusive").read_text() == "1"


@pytest.mark.parametrize("name", MACHINES)
def test_init_on_real_machines(machine, tmp_path, name):
    kcm = machine(name)
    data = load_machine(name)
    conf = tmp_path / "kcm"
    kcm.run("init", f"--conf-dir={conf}", check=True)
    pools = describe(kcm, conf)["pools"]
    online = {entry["cpu"] for entry in data["cpus"] if entry["online"]}
    core_of = {entry["cpu"]: entry["core"] for entry in data["cpus"] if entry["online"]}
    numa_of = {entry["cpu"]: entry["numa"] for entry in data["cpus"] if entry["online"]}
    seen: set[int] = set()
    for pool in pools.values():
        for name_ in pool["cpuLists"]:
            cpus = parse_cpulist(name_)
            assert not cpus & seen, "pools overlap"
            assert cpus <= online, "offline CPU in a pool"
            seen |= cpus
    for name_ in pools["dataplane"]["cpuLists"]:
        cpus = parse_cpulist(name_)
        cores = {core_of[cpu] for cpu in cpus}
        assert len(cores) == 1
        assert cpus == {cpu for cpu, core in core_of.items() if core in cores}
    dataplane = set().union(*map(parse_cpulist, pools["dataplane"]["cpuLists"]))
    assert len({numa_of[cpu] for cpu in dataplane}) == 1, "packed dataplane spans NUMA nodes"
    assert 0 not in dataplane or 0 not in online


def test_spread_mode_uses_every_numa_node(machine, tmp_path):
    kcm = machine("amd-threadripper-2990wx")
    conf = tmp_path / "kcm"
    kcm.run("init", f"--conf-dir={conf}", "--dp-mode=spread", check=True)
    dataplane = describe(kcm, conf)["pools"]["dataplane"]["cpuLists"]
    data = load_machine("amd-threadripper-2990wx")
    numa_of = {entry["cpu"]: entry["numa"] for entry in data["cpus"]}
    assert {numa_of[min(parse_cpulist(c))] for c in dataplane} == {0, 1, 2, 3}


def test_real_isolcpus_boot_line_isolates_nothing(machine, tmp_path):
    """isolcpus=managed_irq,... does not isolate from the scheduler: pools as without."""
    kcm = machine("intel-xeon-gold6230-2s-isolcpus", fake_proc=True)
    conf = tmp_path / "kcm"
    kcm.run("init", f"--conf-dir={conf}", check=True)
    infra = parse_cpulist(next(iter(describe(kcm, conf)["pools"]["infra"]["cpuLists"])))
    assert len(infra) == 80 - 10


def test_plain_isolcpus_list_is_honoured(machine, tmp_path):
    kcm = machine("intel-xeon-gold6230-2s-isolcpus", fake_proc=True,
                  cmdline="BOOT_IMAGE=/vmlinuz isolcpus=0-4,11-79 nohz_full=0-4,11-79")
    conf = tmp_path / "kcm"
    result = kcm.run("init", f"--conf-dir={conf}", check=True)
    assert "partly isolated" in result.stderr
    pools = describe(kcm, conf)["pools"]
    isolated = set(range(0, 5)) | set(range(11, 80))
    for pool in ("dataplane", "controlplane"):
        for cpus in pools[pool]["cpuLists"]:
            assert parse_cpulist(cpus) <= isolated
    infra = parse_cpulist(next(iter(pools["infra"]["cpuLists"])))
    assert infra == set(range(5, 11)) | set(range(45, 51))


def test_init_again_with_the_same_arguments_is_a_no_op(machine, tmp_path):
    kcm = machine(xeon_d1541())
    conf = tmp_path / "kcm"
    kcm.run("init", f"--conf-dir={conf}", check=True)
    (conf / "pools/dataplane/4,12/tasks").write_text(str(os.getpid()))
    before = {p: p.stat().st_mtime_ns for p in conf.rglob("*")}
    again = kcm.run("init", f"--conf-dir={conf}")
    assert again.returncode == 0
    assert {p: p.stat().st_mtime_ns for p in conf.rglob("*")} == before


def test_init_with_other_arguments_is_refused(machine, tmp_path):
    kcm = machine(xeon_d1541())
    conf = tmp_path / "kcm"
    kcm.run("init", f"--conf-dir={conf}", check=True)
    result = kcm.run("init", f"--conf-dir={conf}", "--num-dp-cores=2")
    assert result.returncode == 1
    assert result.stderr.startswith("kcm: ") and "already initialised" in result.stderr
    assert len(describe(kcm, conf)["pools"]["dataplane"]["cpuLists"]) == 4


def test_foreign_directory_is_refused_and_untouched(machine, tmp_path):
    kcm = machine(xeon_d1541())
    conf = tmp_path / "kcm"
    conf.mkdir()
    (conf / "passwd").write_text("x")
    result = kcm.run("init", f"--conf-dir={conf}")
    assert result.returncode == 1
    assert "not empty" in result.stderr
    assert sorted(p.name for p in conf.iterdir()) == ["lock", "passwd"]


def test_too_many_cores_says_how_many_there_are(machine, tmp_path):
    kcm = machine(xeon_d1541())
    conf = tmp_path / "kcm"
    result = kcm.run("init", f"--conf-dir={conf}", "--num-dp-cores=8")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "this node has 8 physical cores" in result.stderr and "isolated" in result.stderr
    assert not conf.exists(), "a failed init left something behind"


def test_unreadable_sysfs(kcm, tmp_path):
    kcm.env["KCM_SYSFS"] = str(tmp_path / "missing")
    result = kcm.run("init", f"--conf-dir={tmp_path / 'kcm'}")
    assert result.returncode == 1
    assert result.stderr.startswith("kcm: cannot read CPU topology")
    assert not (tmp_path / "kcm").exists()


def test_describe_table(machine, tmp_path):
    kcm = machine("intel-xeon-gold6130-2s-noht")
    conf = tmp_path / "kcm"
    kcm.run("init", f"--conf-dir={conf}", "--num-dp-cores=2", check=True)
    table = kcm.run("describe", f"--conf-dir={conf}", "--output=table", check=True).stdout
    lines = table.splitlines()
    assert lines[0].split() == ["POOL", "EXCLUSIVE", "CPU", "LIST", "NUMA", "NODE", "TASKS"]
    rows = [line.split() for line in lines[1:]]
    assert ["dataplane", "yes", "29", "1", "-"] in rows
    assert ["dataplane", "yes", "31", "1", "-"] in rows
    assert any(row[0] == "infra" and row[3] == "0-1" for row in rows)


def test_describe_bad_directory_is_one_line(kcm, tmp_path):
    (tmp_path / "pools/x/1").mkdir(parents=True)
    result = kcm.run("describe", f"--conf-dir={tmp_path}")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "missing file" in result.stderr


@pytest.mark.parametrize("args", [["--num-dp-cores=-1"], ["--dp-mode=tight"], ["--bogus"]])
def test_bad_flags_are_usage_errors(kcm, tmp_path, args):
    result = kcm.run("init", f"--conf-dir={tmp_path / 'kcm'}", *args)
    assert result.returncode == 2
    assert not (tmp_path / "kcm").exists()


def test_help_lists_every_subcommand(kcm):
    help_text = kcm.run("--help", check=True).stdout
    for command in ("init", "discover", "describe", "reconcile", "isolate", "install",
                    "node-report", "cluster-init", "uninstall", "webhook", "manifests"):
        assert command in help_text
    assert kcm.run("--version", check=True).stdout.startswith("kcm ")
    assert __version__ in kcm.run("--version", check=True).stdout
    for command in COMMANDS:
        assert kcm.run(command, "--help", check=True).stdout.startswith(f"usage: kcm {command}")


def test_help_is_argparse_s_text_printed_without_argparse(kcm, monkeypatch):
    """``--help`` prints the text argparse formats at 80 columns (kept in kcm.helptext),
    without importing argparse; help anywhere else on the line is argparse's own."""
    import argparse

    from kcm.cli import build_parser

    monkeypatch.setenv("COLUMNS", "80")
    parser = build_parser()
    commands = next(a for a in parser._actions
                    if isinstance(a, argparse._SubParsersAction)).choices
    assert kcm.run("-h", check=True).stdout == kcm.run().stdout == parser.format_help()
    for command in COMMANDS:
        for flag in ("--help", "-h"):
            shown = kcm.run(command, flag, check=True).stdout
            assert shown == commands[command].format_help(), command
    probe = ("import sys; from kcm.cli import main; main(['isolate', '--help']); "
             "print('argparse' in sys.modules, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stderr == "False\n" and result.stdout.startswith("usage: kcm isolate")
    later = kcm.run("describe", "--conf-dir=/x", "--help", env_overrides={"COLUMNS": "200"})
    assert later.returncode == 0 and later.stdout.startswith("usage: kcm describe")
