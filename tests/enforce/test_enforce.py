"""``kcm enforce`` on real cgroup v1 cpusets: other containers are moved off a held
exclusive CPU and get it back on release; the workload itself is never refused."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.enforce.cgroup_trees import V1_CPUSET, Tree, v1_available
from tests.enforce.scenarios import enforce, isolate_in, pinned_thread_keeps_its_affinity
from tests.integration.workloads import (
    kill_workloads,
    make_conf,
    read_lines,
    recorded_workloads,
    tasks_of,
    wait_for,
)
from tests.k8s.schema import report_fields_the_crd_prunes

pytestmark = pytest.mark.skipif(v1_available() is not None, reason=str(v1_available()))


@pytest.fixture
def tree():
    tree = Tree(V1_CPUSET)
    yield tree
    tree.cleanup()


@pytest.fixture
def conf(tmp_path):
    return make_conf(tmp_path / "kcm", {"dataplane": (True, ["1"]), "infra": (False, ["0"])})


def workload_pid(conf) -> int:
    (workload,) = wait_for(lambda: recorded_workloads(conf))
    return workload[0]


def test_a_held_cpu_is_taken_from_other_containers_and_given_back(kcm, conf, tree):
    holder = isolate_in(tree, kcm, conf, "ctr-a")
    pid = workload_pid(conf)
    noisy = tree.start("ctr-b", ["sleep", "60"])
    wait_for(lambda: os.sched_getaffinity(noisy.pid) == {0, 1})
    report = enforce(kcm, conf, tree)
    assert report["held"] == "1" and report["shared"] == "0"
    assert report["changed"] == [{"cgroup": str(tree.containers["ctr-b"]), "cpus": "0",
                                  "was": "0-1"}]
    assert tree.cpus("ctr-b") == "0" and tree.cpus("ctr-a") == "0-1"
    assert os.sched_getaffinity(noisy.pid) == {0}
    assert os.sched_getaffinity(pid) == {1}  # the workload keeps its pin
    assert report["violations"] == []
    # A second pass changes nothing.
    assert enforce(kcm, conf, tree)["changed"] == []
    holder.terminate()
    holder.wait(10)
    report = enforce(kcm, conf, tree)
    assert report["held"] == "" and tree.cpus("ctr-b") == "0-1"
    assert os.sched_getaffinity(noisy.pid) == {0, 1}


def test_the_loop_reacts_to_a_grant_and_a_release_without_waiting_for_the_interval(
        kcm, conf, tree):
    noisy = tree.start("ctr-b", ["sleep", "60"])
    loop = kcm.popen("enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}",
                     "--interval=600", stdout=subprocess.PIPE, text=True)
    try:
        read_lines(loop, 1)  # the first pass is done; the next is 10 minutes away
        holder = isolate_in(tree, kcm, conf, "ctr-a")
        wait_for(lambda: os.sched_getaffinity(noisy.pid) == {0})
        holder.terminate()
        holder.wait(10)
        wait_for(lambda: os.sched_getaffinity(noisy.pid) == {0, 1})
    finally:
        loop.terminate()
    loop.communicate(timeout=10)
    assert loop.returncode == 0


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 3,
                    reason="needs three CPUs (scripts/kernel-vm.sh gives its guest three)")
def test_a_pinned_thread_keeps_its_affinity_when_its_container_changes(kcm, tree, tmp_path):
    """Kernels before 6.2 reset every task of a cpuset whose CPUs change to the whole new
    set: a shared-pool workload pinned to CPU 0 would spread onto CPU 1 when its
    container gets CPU 1 back. Only an older kernel can fail this: tests/enforce/
    test_other_kernel.py runs it on Debian's 6.1 in a VM (v1 here, v2 in
    test_enforce_v2.py)."""
    pinned_thread_keeps_its_affinity(kcm, tree, tmp_path)


def test_a_container_confined_before_its_grant_still_gets_its_cpu(kcm, conf, tree):
    """The trap that broke CMK: ctr-a was confined to the shared CPU while another
    container held CPU 1; the holder dies, and a workload in ctr-a takes CPU 1. Its
    pin must succeed (kcm enforce widens ctr-a as soon as the grant is recorded)."""
    first = isolate_in(tree, kcm, conf, "ctr-b")
    workload_pid(conf)
    loop = kcm.popen("enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}",
                     "--interval=600", stdout=subprocess.PIPE, text=True)
    try:
        read_lines(loop, 1)
        assert tree.cpus("ctr-a") == "0"
        # The holder dies without a word to the directory: no pass runs, ctr-a stays
        # confined, and the record still names the dead task.
        workloads = recorded_workloads(conf)
        first.kill()
        first.wait(10)
        kill_workloads(workloads)
        assert tree.cpus("ctr-a") == "0"
        second = isolate_in(tree, kcm, conf, "ctr-a", seconds="0")
        assert second.wait(20) == 0
    finally:
        loop.terminate()
    loop.communicate(timeout=10)
    assert all(not pids for pids in tasks_of(conf).values())


def test_a_root_outside_the_cpuset_hierarchy_is_refused(kcm, conf, tmp_path):
    result = kcm.run("enforce", f"--conf-dir={conf}", f"--cgroup-root={tmp_path}")
    assert result.returncode == 1
    assert result.stderr.startswith(f"kcm: --cgroup-root {tmp_path} is not a directory of "
                                    "the cpuset hierarchy")


def fake_procfs(tmp_path, affinities: dict[str, str], default: str):
    """The host's procfs through links, with an ``irq`` directory of our own."""
    proc = tmp_path / "proc"
    proc.mkdir()
    for name in os.listdir("/proc"):
        if name != "irq":
            (proc / name).symlink_to(f"/proc/{name}")
    for irq, cpus in affinities.items():
        (proc / "irq" / irq).mkdir(parents=True)
        (proc / "irq" / irq / "smp_affinity_list").write_text(cpus + "\n")
    (proc / "irq" / "default_smp_affinity").write_text(default + "\n")
    return proc


def irq_state(proc) -> dict[str, str]:
    state = {p.parent.name: p.read_text().strip() for p in proc.glob("irq/*/smp_affinity_list")}
    state["default"] = (proc / "irq/default_smp_affinity").read_text().strip()
    return state


def test_irqs_leave_held_cpus_and_come_back_on_release(kcm, conf, tree, tmp_path):
    holder = isolate_in(tree, kcm, conf, "ctr-a")
    workload_pid(conf)
    proc = fake_procfs(tmp_path, {"24": "0-1", "25": "1", "26": "0"}, default="3")
    env = {"KCM_PROC_FS": str(proc)}
    result = kcm.run("enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}",
                     "--steer-irqs", env_overrides=env, check=True)
    report = json.loads(result.stdout)["irqs"]
    # CPU 1 is held: every IRQ leaves it; IRQ 25 had nothing else and goes to the shared
    # CPU (never left without a CPU); new IRQs (the default mask) avoid it too.
    assert irq_state(proc) == {"24": "0", "25": "0", "26": "0", "default": "1"}
    assert report["steered"] == ["24", "25", "default"] and report["unmovable"] == []
    assert (conf / "irqs").read_text() == "24 0-1\n25 1\ndefault 0-1\n"
    holder.terminate()
    holder.wait(10)
    kcm.run("enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}", "--steer-irqs",
            env_overrides=env, check=True)
    assert irq_state(proc) == {"24": "0-1", "25": "1", "26": "0", "default": "3"}
    assert not (conf / "irqs").exists()


def test_uninstall_gives_steered_irqs_back(kcm, conf, tree, tmp_path):
    holder = isolate_in(tree, kcm, conf, "ctr-a")
    workload_pid(conf)
    proc = fake_procfs(tmp_path, {"24": "0-1"}, default="3")
    env = {"KCM_PROC_FS": str(proc)}
    kcm.run("enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}", "--steer-irqs",
            env_overrides=env, check=True)
    assert irq_state(proc)["24"] == "0"
    result = kcm.run("uninstall", f"--conf-dir={conf}", f"--install-dir={tmp_path / 'bin'}",
                     "--force", env_overrides=env, check=True)
    assert "IRQ 24 affinity" in json.loads(result.stdout)["removed"]
    assert irq_state(proc) == {"24": "0-1", "default": "3"}
    holder.terminate()
    holder.wait(10)


@pytest.mark.host_state
def test_real_interrupts_are_steered_and_restored(kcm, conf, tree):
    """The machine's own /proc/irq: what can move leaves the held CPU, what cannot is
    reported; everything is put back as it was."""
    saved = {path: path.read_text() for path in
             [*Path("/proc/irq").glob("*/smp_affinity_list"),
              Path("/proc/irq/default_smp_affinity")]}
    holder = isolate_in(tree, kcm, conf, "ctr-a")
    try:
        workload_pid(conf)
        report = enforce(kcm, conf, tree, "--steer-irqs")["irqs"]
        unmovable = {entry["irq"] for entry in report["unmovable"]}
        for irq_dir in Path("/proc/irq").glob("[0-9]*"):
            cpus = (irq_dir / "smp_affinity_list").read_text().strip()
            assert irq_dir.name in unmovable or "1" not in cpus.replace("-", ",").split(","), \
                (irq_dir.name, cpus)
        holder.terminate()
        holder.wait(10)
        enforce(kcm, conf, tree, "--steer-irqs")
        for path, text in saved.items():
            if path.parent.name not in unmovable:
                assert path.read_text() == text, path
    finally:
        for path, text in saved.items():
            try:
                path.write_text(text)
            except OSError:
                pass


def test_node_report_doctor_and_metrics_show_enforcement(kcm, conf, tmp_path):
    """On the tree the test made (``--cgroup-root`` for node-report and doctor,
    ``KCM_CGROUP_ROOT`` for enforce), never the host's own kubepods."""
    tree = Tree(V1_CPUSET)
    try:
        holder = isolate_in(tree, kcm, conf, "ctr-a")
        workload_pid(conf)
        tree.start("ctr-b", ["sleep", "60"])

        def enforcement() -> dict:
            report = json.loads(kcm.run("node-report", f"--conf-dir={conf}",
                                        f"--cgroup-root={tree.root}", check=True).stdout)
            assert report_fields_the_crd_prunes(report) == []  # a cluster keeps every field
            return report["enforcement"]

        before = enforcement()
        assert before["available"] and before["held"] == "1"
        assert before["containersNotConfined"] == [str(tree.containers["ctr-b"])]
        assert before["violations"]  # ctr-b's thread may run on CPU 1
        doctor = kcm.run("doctor", f"--conf-dir={conf}", f"--install-dir={tmp_path}",
                         f"--cgroup-root={tree.root}", "--output=json")
        finding = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}["enforcement"]
        assert not finding["ok"] and finding["fix"].startswith("run kcm enforce")
        kcm.run("enforce", f"--conf-dir={conf}", check=True,
                env_overrides={"KCM_CGROUP_ROOT": str(tree.root)})
        after = enforcement()
        assert after["containersNotConfined"] == [] and after["violations"] == []
        holder.terminate()
        holder.wait(10)
    finally:
        tree.cleanup()
