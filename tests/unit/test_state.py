"""The configuration directory: validation, atomic task writes, the lock."""

import fcntl
import os
from pathlib import Path

import pytest

from kcm.errors import ConfigError, KcmError, LockTimeout
from kcm.model import Task
from kcm.selection import lists_overlapping
from kcm.state import ConfigDir
from tests.integration.workloads import write_pools


def make_dir(root: Path, pools: dict) -> ConfigDir:
    """pools: name -> (exclusive, {cpulist: tasks text})."""
    return ConfigDir(str(write_pools(root, pools)))


MANUAL = {"dataplane": (True, {"4,12": "", "5,13": "2000"}), "infra": (False, {"0-2,8-10": "1,2"})}


def test_a_hand_written_directory_loads(tmp_path):
    config = make_dir(tmp_path, MANUAL).load()
    assert config.pools["dataplane"].exclusive
    assert config.pools["dataplane"].cpu_lists["5,13"].tasks == [Task(2000)]
    assert config.pools["infra"].cpu_lists["0-2,8-10"].cpus == {0, 1, 2, 8, 9, 10}
    assert [t.pid for t in config.pools["infra"].cpu_lists["0-2,8-10"].tasks] == [1, 2]


@pytest.mark.parametrize(("damage", "message"), [
    (lambda r: (r / "pools/dataplane/exclusive").unlink(), "missing file"),
    (lambda r: (r / "pools/dataplane/exclusive").write_text("yes"), "expected 0 or 1"),
    (lambda r: (r / "pools/dataplane/4-x").mkdir(), "bad CPU list directory"),
    (lambda r: (r / "pools/dataplane/3-1").mkdir(), "reversed"),
    (lambda r: (r / "pools/dataplane/4,12/notes").write_text(""), "unexpected file"),
    (lambda r: (r / "README").write_text(""), "unexpected file"),
    (lambda r: (r / "pools/bad name").mkdir(), "bad pool dir name"),
    (lambda r: os.symlink("/etc", r / "pools/dataplane/7"), "is a symlink"),
    (lambda r: (r / "pools/dataplane/4,12/tasks").write_text("1" * (2 << 20)), "too large"),
    (lambda r: (r / "pools/dataplane/4,12/tasks").write_bytes(b"\xff"), "not ASCII"),
])
def test_malformed_directories_are_errors_naming_the_path(tmp_path, damage, message):
    conf = make_dir(tmp_path, MANUAL)
    damage(tmp_path)
    with pytest.raises(ConfigError, match=message) as caught:
        conf.load()
    assert str(tmp_path) in str(caught.value)


def test_a_cpu_in_two_pools_loads_with_one_warning(tmp_path, capsys):
    """The originals accept overlapping pools (their fixtures have them): kcm warns."""
    conf = make_dir(tmp_path, MANUAL)
    (tmp_path / "pools/infra/4").mkdir()
    (tmp_path / "pools/infra/4/tasks").write_text("")
    assert "4" in conf.load().pools["infra"].cpu_lists
    conf.load()
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 1 and "CPU 4 is in two CPU lists" in warnings[0]
    overview = conf.pools_overview()
    assert overview["infra"] == (False, {"0-2,8-10": frozenset({0, 1, 2, 8, 9, 10}),
                                         "4": frozenset({4})})
    assert lists_overlapping(overview, "infra", frozenset({4})) == ["dataplane/4,12"]
    assert lists_overlapping(overview, "dataplane", frozenset({3})) == []


def test_a_symlinked_directory_is_refused(tmp_path):
    make_dir(tmp_path / "real", MANUAL)
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(ConfigError, match="symlink"):
        ConfigDir(str(tmp_path / "link")).load()


def test_missing_directory_says_run_init(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ConfigDir(str(tmp_path / "nope")).load()


def test_save_tasks_keeps_start_times_and_is_read_back(tmp_path):
    conf = make_dir(tmp_path, MANUAL)
    cpu_list = conf.load().pools["dataplane"].cpu_lists["4,12"]
    task = Task(4242, 777, 4243, 778)
    conf.save_tasks("dataplane", cpu_list, [task])
    assert (tmp_path / "pools/dataplane/4,12/tasks").read_text() == "4242"
    assert conf.load().pools["dataplane"].cpu_lists["4,12"].tasks == [task]
    conf.save_tasks("dataplane", cpu_list, [])
    assert (tmp_path / "pools/dataplane/4,12/tasks").read_text() == ""
    info = (tmp_path / "pools/dataplane/4,12/task-info").read_text()
    assert all(line.startswith("0 ") for line in info.splitlines())  # stamps, no task


@pytest.mark.parametrize(("tasks", "info", "message", "readable"), [
    ("12,abc", None, "'abc' is not a PID", [12]),
    ("-3", None, "'-3' is not a PID", []),
    ("5,5", None, "PID 5 is listed twice", [5]),
    ("2000", "2000 x\n", "task-info:1: malformed task line", [2000]),
    ("4242", "4242 1 - -\n4242 2 - -\n", "task-info:2: a second line for PID 4242", [4242]),
])
def test_a_line_kcm_cannot_read_makes_its_list_held_and_stops_nothing(
        tmp_path, capsys, tasks, info, message, readable):
    """One bad line frees nothing and stops nothing: its CPU list counts as held and is
    reported (path and line); every other list loads."""
    conf = make_dir(tmp_path, MANUAL)
    cpu_list = tmp_path / "pools/dataplane/4,12"
    (cpu_list / "tasks").write_text(tasks)
    if info is not None:
        (cpu_list / "task-info").write_text(info)
    config = conf.load()
    bad = config.pools["dataplane"].cpu_lists["4,12"]
    assert message in bad.unreadable and str(cpu_list) in bad.unreadable
    assert bad.held and [t.pid for t in bad.tasks] == readable
    assert config.pools["dataplane"].cpu_lists["5,13"].tasks == [Task(2000)]
    assert message in capsys.readouterr().err


def test_an_impossible_pid_is_reported_and_kept_to_be_judged_dead(tmp_path, capsys):
    """The original KCM's tests write 1234561231 to mean "dead": no system has that PID."""
    conf = make_dir(tmp_path, MANUAL)
    (tmp_path / "pools/dataplane/4,12/tasks").write_text("1234561231")
    cpu_list = conf.load().pools["dataplane"].cpu_lists["4,12"]
    assert cpu_list.unreadable is None and cpu_list.tasks == [Task(1234561231)]
    assert "1234561231 cannot be a PID on any system" in capsys.readouterr().err


def test_task_info_stays_once_another_writer_changed_tasks(tmp_path):
    """An older writer (or a touch) changed tasks after kcm wrote its lines: each line
    still names its processes, marked with the time tasks was written, so a PID now
    taken by a process that started before then is judged alive (procfs.Liveness)."""
    conf = make_dir(tmp_path, MANUAL)
    cpu_list = conf.load().pools["dataplane"].cpu_lists["4,12"]
    conf.save_tasks("dataplane", cpu_list, [Task(4242, 777, 4243, 778)])
    assert conf.load().pools["dataplane"].cpu_lists["4,12"].tasks[0].listed_ns is None
    tasks = tmp_path / "pools/dataplane/4,12/tasks"
    os.utime(tasks, ns=(1_000_000_000_000, 1_000_000_000_000))  # a touch
    (task,) = conf.load().pools["dataplane"].cpu_lists["4,12"].tasks
    assert task == Task(4242, 777, 4243, 778) and task.listed_ns == 1_000_000_000_000


def test_task_info_of_an_older_kcm_without_stamps_is_marked_with_the_tasks_time(tmp_path):
    conf = make_dir(tmp_path, MANUAL)
    cpu_list = tmp_path / "pools/dataplane/4,12"
    (cpu_list / "tasks").write_text("4242")
    (cpu_list / "task-info").write_text("4242 777 4243 778\n")
    (task,) = conf.load().pools["dataplane"].cpu_lists["4,12"].tasks
    assert task == Task(4242, 777, 4243, 778)
    assert task.listed_ns == (cpu_list / "tasks").stat().st_mtime_ns


def test_crash_debris_is_ignored_then_removed(tmp_path):
    conf = make_dir(tmp_path, MANUAL)
    debris = tmp_path / "pools/dataplane/4,12/.kcm-tmp-tasks-99"
    debris.write_text("99")
    assert conf.load().pools["dataplane"].cpu_lists["4,12"].tasks == []
    assert conf.remove_debris() == [str(debris)]
    assert not debris.exists()


def test_lock_wait_is_bounded(tmp_path):
    conf = make_dir(tmp_path, MANUAL)
    with open(tmp_path / "lock", "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(LockTimeout, match=r"timed out after 0\.2s"), conf.locked(timeout=0.2):
            pass
    with conf.locked(timeout=0.2):
        assert conf.last_lock_wait < 0.2


def test_shared_locks_coexist(tmp_path):
    conf = make_dir(tmp_path, MANUAL)
    with conf.locked(shared=True), ConfigDir(str(tmp_path)).locked(shared=True, timeout=0):
        pass


@pytest.mark.parametrize("value", ["soon", "nan", "inf", "-1", "1e300", "9" * 5000])
def test_bad_lock_timeout_setting(tmp_path, monkeypatch, value):
    monkeypatch.setenv("KCM_LOCK_TIMEOUT", value)
    with pytest.raises(KcmError, match="KCM_LOCK_TIMEOUT"), make_dir(tmp_path, MANUAL).locked():
        pass


def test_load_cpu_lists_reads_only_what_is_named(tmp_path):
    conf = make_dir(tmp_path, MANUAL)
    (tmp_path / "pools/infra/0-2,8-10/tasks").write_text("garbage")  # not read
    (held,) = conf.load_cpu_lists("dataplane", ["5,13"])
    assert held.cpus == {5, 13} and held.tasks == [Task(2000)]
    with pytest.raises(ConfigError, match=r"cannot read directory .*6,14"):
        conf.load_cpu_lists("dataplane", ["6,14"])


def test_socket_directories_are_a_level_kcm_reads_and_writes_through(tmp_path):
    """CMK v1.4.1's layout: every write lands in the CPU list's own directory."""
    conf = ConfigDir(str(tmp_path))
    conf.create([("exclusive", True, [frozenset({0, 4}), frozenset({2, 6})]),
                 ("shared", False, [frozenset({1, 5}), frozenset({3, 7})])],
                sockets={cpu: cpu % 2 for cpu in range(8)})
    pools = tmp_path / "pools"
    assert sorted(str(p.relative_to(pools)) for p in pools.glob("*/*/*")) == [
        "exclusive/0/0,4", "exclusive/0/2,6", "shared/1/1,5", "shared/1/3,7"]
    assert sorted(p.name for p in (pools / "exclusive").iterdir()) == ["0", "1", "exclusive"]
    pool = conf.load_pool("exclusive")
    assert {name: cl.place for name, cl in pool.cpu_lists.items()} == {
        "0,4": "0/0,4", "2,6": "0/2,6"}
    conf.save_tasks("exclusive", pool.cpu_lists["2,6"], [Task(7, 1)], durable=True)
    assert (pools / "exclusive/0/2,6/tasks").read_text() == "7"
    [again] = conf.load_cpu_lists("exclusive", ["0/2,6"])
    assert again.tasks == [Task(7, 1)]
    staged = conf.stage_tasks([("exclusive", again, [])])
    conf.sync_staged(staged)
    assert conf.commit_staged(staged) == staged
    assert (pools / "exclusive/0/2,6/tasks").read_text() == ""
    assert sorted(conf.cpu_list_directories()) == sorted(
        str(p.parent) for p in pools.glob("*/*/*/tasks"))
    assert not conf.create([("exclusive", True, [frozenset({0, 4}), frozenset({2, 6})]),
                            ("shared", False, [frozenset({1, 5}), frozenset({3, 7})])],
                           sockets={cpu: cpu % 2 for cpu in range(8)})


def test_a_list_across_sockets_cannot_be_created_in_the_socket_layout(tmp_path):
    with pytest.raises(ConfigError, match="does not lie in one socket"):
        ConfigDir(str(tmp_path / "c")).create([("p", True, [frozenset({0, 1})])],
                                              sockets={0: 0, 1: 1})
    assert not (tmp_path / "c").exists()


def test_a_pool_of_one_cpu_lists_is_not_mistaken_for_sockets(tmp_path):
    """Directories named by a number hold files: CPU lists of one CPU each."""
    conf = make_dir(tmp_path, {"exclusive": (True, {"0": "", "1": "", "12": ""})})
    assert {cl.place for cl in conf.load().pools["exclusive"].cpu_lists.values()} == {
        "0", "1", "12"}
