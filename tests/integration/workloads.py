"""Helpers for tests that run workloads under ``kcm isolate``."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def write_pools(root: Path, pools: dict) -> Path:
    """Pools written by hand: name -> (exclusive, {place: tasks text}), a place being a
    CPU list or, in CMK v1.4.1's layout, SOCKET/CPU list."""
    for name, (exclusive, lists) in pools.items():
        pool = root / "pools" / name
        pool.mkdir(parents=True)
        (pool / "exclusive").write_text("1" if exclusive else "0")
        for place, tasks in lists.items():
            (pool / place).mkdir(parents=True)
            (pool / place / "tasks").write_text(tasks)
    return root


def make_conf(root: Path, pools: dict) -> Path:
    """A hand-written configuration directory: name -> (exclusive, [cpu lists])."""
    return write_pools(root, {name: (exclusive, dict.fromkeys(lists, ""))
                              for name, (exclusive, lists) in pools.items()})


def make_cmk_conf(root: Path, pools: dict) -> Path:
    """A directory in CMK v1.4.1's socket layout: name -> (exclusive, {socket: [lists]});
    a socket without lists is an empty directory."""
    write_pools(root, {name: (exclusive, {f"{socket}/{cpus}": "" for socket, lists
                                          in sockets.items() for cpus in lists})
                       for name, (exclusive, sockets) in pools.items()})
    for name, (_, sockets) in pools.items():
        for socket in sockets:
            (root / "pools" / name / str(socket)).mkdir(exist_ok=True)
    return root


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def tasks_of(conf: Path) -> dict[str, list[int]]:
    """pool/cpulist -> PIDs, straight from the files."""
    found = {}
    for tasks in sorted(conf.glob("pools/*/*/tasks")):
        text = tasks.read_text().strip()
        key = f"{tasks.parent.parent.name}/{tasks.parent.name}"
        found[key] = [int(pid) for pid in text.split(",")] if text else []
    return found


def time_scale() -> float:
    """How much slower this machine runs than the one the waits were written for: 1 on
    the host; in the kernel-VM guest (software emulation), the ratio of a Python start
    there to one on the host (``KCM_VM_HOST_START_MS``, measured by scripts/kernel-vm.sh),
    so waits follow what the guest measures, not a fixed guess."""
    global _SCALE
    if _SCALE is None:
        host_ms = float(os.environ.get("KCM_VM_HOST_START_MS") or 0)
        _SCALE = 1.0
        if host_ms > 0:
            started = time.monotonic()
            for _ in range(3):
                subprocess.run([sys.executable, "-S", "-c", "pass"], check=True)
            _SCALE = max(1.0, (time.monotonic() - started) * 1000 / 3 / host_ms)
    return _SCALE


_SCALE: float | None = None


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.01):
    """The predicate's first true value, polled until ``timeout`` seconds (times the
    machine's ``time_scale``) have passed."""
    deadline = time.monotonic() + timeout * time_scale()
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


REPORTER = (
    "import json, os, sys, time\n"
    "out = sys.argv[1]\n"
    "doc = {'pid': os.getpid(), 'affinity': sorted(os.sched_getaffinity(0)),\n"
    "       'env': {k: v for k, v in os.environ.items() if k.startswith('KCM_')}}\n"
    "doc['status'] = [l.split(':', 1)[1].strip() for l in open('/proc/self/status')\n"
    "                 if l.startswith('Cpus_allowed_list')][0]\n"
    "open(out + '.tmp', 'w').write(json.dumps(doc)); os.rename(out + '.tmp', out)\n"
    "time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)\n"
)
"""A workload that writes its pid, affinity and KCM_ environment to a file, then sleeps."""

PYTHON = os.environ.get("KCM_TEST_PYTHON", "python3")


def fake_bundle(directory: Path) -> Path:
    """A stand-in for the self-contained bundle (an executable ``kcm`` and
    ``runtime/bin/python3``): enough for ``kcm install --from``, for uninstall to
    recognise it as kcm's, and for doctor to find it sound."""
    (directory / "runtime/bin").mkdir(parents=True)
    launcher = directory / "kcm"
    launcher.write_text("#!/bin/sh\necho kcm 0.0.0\n")
    launcher.chmod(0o755)
    (directory / "runtime/bin/python3").symlink_to(sys.executable)
    return directory


def read_lines(proc, count: int, timeout: float = 20.0) -> list[str]:
    """Read ``count`` lines of a running process's text stdout, with a deadline."""
    import selectors

    lines: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while len(lines) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise AssertionError(f"{count} lines not read in time (got {lines})")
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"the process ended after {len(lines)} lines")
            lines.append(line)
    return lines


def recorded_workloads(conf: Path) -> list[tuple[int, int]]:
    """(PID, start time) of every workload in kcm's records (``task-info``)."""
    found = []
    for info in conf.glob("pools/*/*/task-info"):
        for line in info.read_text().splitlines():
            fields = line.split()
            if len(fields) == 4 and fields[0] != "0" and fields[2] != "-" and fields[3] != "-":
                found.append((int(fields[2]), int(fields[3])))
    return found


def start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rpartition(")")[2].split()[19])
    except (FileNotFoundError, ProcessLookupError):
        return None


def kill_workloads(workloads: list[tuple[int, int]]) -> None:
    """SIGKILL workloads kcm recorded for this test, by PID, only while the PID is still
    that process (same start time), and wait until they are gone."""
    import signal

    for pid, started in workloads:
        if start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    wait_for(lambda: not any(start_time(pid) == started and alive(pid)
                             for pid, started in workloads))


def on_a_terminal(argv: list[str], env: dict, stream: str = "stdout",
                  timeout: float = 30) -> tuple[str, str]:
    """Run argv with ``stream`` (stdout or stderr) on a pseudo-terminal, as a person
    would; (what the terminal showed, what the other stream carried)."""
    import pty

    leader, follower = pty.openpty()
    other = subprocess.PIPE
    proc = subprocess.Popen(argv, env=env, stdout=follower if stream == "stdout" else other,
                            stderr=follower if stream == "stderr" else other)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    piped = (proc.stderr if stream == "stdout" else proc.stdout).read().decode()
    assert proc.wait(timeout) == 0, piped
    return b"".join(chunks).decode().replace("\r\n", "\n"), piped


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``, from /proc (parents, then their children)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and alive(int(name)):
            try:
                with open(f"/proc/{name}/stat") as handle:
                    parent = int(handle.read().rpartition(")")[2].split()[1])
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
            children.setdefault(parent, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found
