"""A full disk, a read-only directory and a stuck lock holder: clean errors, the
previous state intact, bounded waits."""

import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.workloads import make_conf, tasks_of

POOLS = {"dataplane": (True, ["10", "11"]), "infra": (False, ["0-1"])}


def mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def small_tmpfs(tmp_path):
    point = tmp_path / "small"
    point.mkdir()
    if os.geteuid() != 0 or not mount("-t", "tmpfs", "-o", "size=256k", "tmpfs", str(point)):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def fill(directory: Path) -> None:
    """Write until the file system is full (unbuffered, so nothing fails at close)."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def snapshot(conf: Path) -> dict:
    return {str(p.relative_to(conf)): p.read_bytes() for p in sorted(conf.rglob("*"))
            if p.is_file() and not p.name.startswith(".kcm-tmp-")}


def test_disk_full_is_a_clean_error_and_keeps_state(kcm, small_tmpfs):
    conf = make_conf(small_tmpfs / "kcm", POOLS)
    (conf / "pools/infra/0-1/tasks").write_text(str(os.getpid()))
    (conf / "lock").write_text("")
    before = snapshot(conf)
    fill(small_tmpfs)
    marker = small_tmpfs.parent / "started"
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "--no-affinity",
                     "touch", str(marker))
    assert result.returncode == 1
    assert result.stderr.startswith("kcm: cannot write") and "no space left" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not marker.exists()
    assert snapshot(conf) == before
    os.unlink(small_tmpfs / "filler")
    kcm.run("isolate", f"--conf-dir={conf}", "--pool=dataplane", "--no-affinity", "true",
            check=True)
    assert tasks_of(conf)["infra/0-1"] == [os.getpid()]


def test_init_on_a_full_disk_leaves_nothing(machine, small_tmpfs):
    from tests.machines import xeon_d1541

    kcm = machine(xeon_d1541())
    fill(small_tmpfs)
    conf = small_tmpfs / "kcm"
    result = kcm.run("init", f"--conf-dir={conf}")
    assert result.returncode == 1 and result.stderr.startswith("kcm: ")
    assert not conf.exists() or not (conf / "pools").exists()
    assert not [p for p in small_tmpfs.rglob(".kcm-tmp-*")]


def test_a_read_only_directory_is_a_clean_error(kcm, small_tmpfs):
    conf = make_conf(small_tmpfs / "kcm", POOLS)
    (conf / "lock").write_text("")
    before = snapshot(conf)
    assert mount("-o", "remount,ro", str(small_tmpfs))
    result = kcm.run("isolate", f"--conf-dir={conf}", "--pool=infra", "true")
    assert result.returncode == 1
    assert "Read-only file system" in result.stderr and result.stderr.count("\n") == 1
    reconcile = kcm.run("reconcile", f"--conf-dir={conf}")
    assert reconcile.returncode in (0, 1) and "Traceback" not in reconcile.stderr
    described = kcm.run("describe", f"--conf-dir={conf}", check=True)
    assert json.loads(described.stdout)["pools"]["infra"]["cpuLists"]["0-1"]["tasks"] == []
    assert snapshot(conf) == before


@pytest.mark.parametrize("args", [
    ["isolate", "--pool=infra", "true"],
    ["reconcile"],
    ["describe"],
    ["uninstall", "--install-dir=/nonexistent"],
])
def test_a_stuck_lock_holder_makes_every_command_fail_in_time(kcm, tmp_path, args):
    conf = make_conf(tmp_path / "kcm", POOLS)
    kcm.env["KCM_LOCK_TIMEOUT"] = "0.5"
    holder = subprocess.Popen(["python3", "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
        "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"),
        str(conf / "lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        command, *rest = args
        started = time.monotonic()
        result = kcm.run(command, f"--conf-dir={conf}", *rest, timeout=30)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert result.stderr.startswith("kcm: timed out after 0.5s waiting for the lock")
    assert waited < 10
    assert conf.exists()


def test_node_report_reports_a_stuck_lock_as_a_failed_check(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", POOLS)
    kcm.env["KCM_LOCK_TIMEOUT"] = "0.3"
    with open(conf / "lock", "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        report = json.loads(kcm.run("node-report", f"--conf-dir={conf}", check=True).stdout)
    check = next(c for c in report["checks"] if c["name"] == "configDirectory")
    assert not check["ok"] and "timed out" in check["errors"][0]
