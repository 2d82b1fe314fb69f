"""A storm of isolates judged by the truth (``python -m tests.faults.storm CONF SEED SECONDS``).

Many ``kcm isolate``s of both forms (argv and one shell string, workloads with children,
some ignoring SIGTERM) on a small exclusive pool, with SIGKILL, SIGTERM and SIGHUP sent
at random to wrappers, shells and grandchildren, and reconcile passes in between. The
truth is /proc, not kcm's files: at every sample, for each exclusive CPU list, every
live process whose affinity lies within it must belong to one workload. A workload is
known by the ``STORM_ID`` in its environment (every descendant inherits it).

The driver is a child subreaper, so every process of the storm stays its descendant
(orphans of a SIGKILLed isolate included) and it signals only what it started. It
prints one JSON document: samples, violations, leaked lists, tracebacks, counts.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import private_host
from tests.integration.workloads import descendants

KCM = str(Path(sys.executable).with_name("kcm"))
MARK = "STORM_ID"
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGHUP)


def workload_argv(rng: random.Random) -> list[str]:
    a, b = (f"{rng.uniform(0.1, 2.5):.2f}" for _ in range(2))
    return rng.choice([
        [f"sleep {a} && echo hi"],
        [f"sleep {a} & sleep {b}; wait"],
        ["--", "sh", "-c", f"sleep {a} & sleep {b}"],
        ["--", "sleep", a],
        [f"trap '' TERM HUP; sleep {a} & sleep {b}"],
        [f"sleep {a}; echo done"],
    ])


def mark_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            for item in handle.read().split(b"\0"):
                if item.startswith(MARK.encode() + b"="):
                    return item.split(b"=", 1)[1].decode()
    except OSError:
        return None
    return None


def affinity(pid: int) -> frozenset[int] | None:
    try:
        return frozenset(os.sched_getaffinity(pid))
    except OSError:
        return None


def start_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


class Storm:
    def __init__(self, conf: Path, lists: dict[str, frozenset[int]], seed: int, out: Path):
        self.conf = conf
        self.lists = lists
        self.rng = random.Random(seed)
        self.out = out
        self.isolates: dict[int, int] = {}  # running isolate PID -> storm id
        self.reconciles: set[int] = set()
        self.statuses: list[int] = []
        self.counts = {"isolates": 0, "signals": 0, "reconciles": 0, "samples": 0}
        self.violations: list[dict] = []
        self.next_id = 0

    def spawn(self, argv: list[str], mark: str | None, name: str) -> int:
        env = {**private_host(dict(os.environ), self.out), "KCM_STOP_GRACE": "0.5",
               "KCM_LOCK_TIMEOUT": "30"}
        if mark is not None:
            env[MARK] = mark
        with open(self.out / f"{name}.err", "wb") as err:
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
        proc.returncode = 0  # reaped by reap(), never by Popen
        return proc.pid

    def start_isolate(self) -> None:
        self.next_id += 1
        mark = f"w{self.next_id}"
        pid = self.spawn([KCM, "isolate", f"--conf-dir={self.conf}", "--pool=dataplane",
                          *workload_argv(self.rng)], mark, mark)
        self.isolates[pid] = self.next_id
        self.counts["isolates"] += 1

    def start_reconcile(self) -> None:
        self.counts["reconciles"] += 1
        name = f"reconcile{self.counts['reconciles']}"
        self.reconciles.add(self.spawn([KCM, "reconcile", f"--conf-dir={self.conf}"],
                                       None, name))

    def reap(self) -> None:
        """Reap every child that ended (the storm's own and the orphans it adopted)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.isolates:
                del self.isolates[pid]
                self.statuses.append(os.waitstatus_to_exitcode(status))
            self.reconciles.discard(pid)

    def ours(self) -> list[int]:
        """Live processes of the storm's workloads (isolates and what they started)."""
        return [pid for pid in descendants(os.getpid())
                if pid not in self.reconciles and mark_of(pid) is not None]

    def strike(self) -> None:
        targets = self.ours()
        if not targets:
            return
        pid = self.rng.choice(targets)
        try:
            os.kill(pid, self.rng.choice(SIGNALS))
            self.counts["signals"] += 1
        except ProcessLookupError:
            pass

    def sample(self) -> None:
        """One look at the truth: who runs within each exclusive list."""
        self.counts["samples"] += 1
        seen: dict[str, list[tuple[int, int, str]]] = {name: [] for name in self.lists}
        for pid in self.ours():
            cpus, mark, start = affinity(pid), mark_of(pid), start_of(pid)
            if cpus is None or mark is None or start is None:
                continue
            for name, listed in self.lists.items():
                if cpus <= listed:
                    seen[name].append((pid, start, mark))
        for name, found in seen.items():
            if len({mark for _, _, mark in found}) < 2:
                continue
            # /proc is read one process at a time: confirm that both are still there,
            # both still pinned within the list, after the whole look (then they shared it).
            listed = self.lists[name]
            still = [(pid, mark) for pid, start, mark in found
                     if start_of(pid) == start and (affinity(pid) or frozenset()) <= listed]
            if len({mark for _, mark in still}) >= 2:
                self.violations.append({"cpuList": name, "processes": still})

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        next_reconcile = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            self.reap()
            if len(self.isolates) < 4 and self.rng.random() < 0.5:
                self.start_isolate()
            if self.rng.random() < 0.3:
                self.strike()
            if time.monotonic() >= next_reconcile:
                self.start_reconcile()
                next_reconcile = time.monotonic() + self.rng.uniform(0.3, 1.5)
            self.sample()
            time.sleep(self.rng.uniform(0.005, 0.05))
        self.wind_down()

    def wind_down(self) -> None:
        """Let every isolate end by itself (workloads are short), SIGKILL what is left of
        the SIGKILLed ones, then one reconcile: no list may stay held."""
        limit = time.monotonic() + 60
        while self.isolates and time.monotonic() < limit:
            self.reap()
            self.sample()
            time.sleep(0.02)
        for pid in self.ours():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while self.ours() or self.reconciles:
            self.reap()
            time.sleep(0.01)
        result = subprocess.run([KCM, "reconcile", f"--conf-dir={self.conf}"],
                                capture_output=True, text=True, check=False)
        self.reap()
        assert result.returncode == 0, result.stderr

    def report(self) -> dict:
        leaked = {}
        for name in self.lists:
            text = (self.conf / "pools/dataplane" / name / "tasks").read_text().strip()
            if text:
                leaked[name] = text
        tracebacks = [path.name for path in self.out.glob("*.err")
                      if b"Traceback" in path.read_bytes()]
        unexpected = sorted({s for s in self.statuses
                             if s not in (0, 1, 128 + 1, 128 + 9, 128 + 15) and s >= 0})
        return {**self.counts, "violations": self.violations, "leaked": leaked,
                "tracebacks": tracebacks, "exitStatuses": sorted(set(self.statuses)),
                "unexpectedStatuses": unexpected}


def main() -> None:
    conf, seed, seconds = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    out = Path(sys.argv[4])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans stay ours
    lists = {path.name: frozenset(int(c) for c in path.name.split(","))
             for path in (conf / "pools/dataplane").iterdir() if path.is_dir()}
    storm = Storm(conf, lists, seed, out)
    storm.run(seconds)
    print(json.dumps(storm.report()))


if __name__ == "__main__":
    main()
