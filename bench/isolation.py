"""Isolation: what ``kcm enforce`` is for. A busy-polling probe shaped like a DPDK poll
loop (it spins reading a monotonic clock) is pinned by ``kcm isolate`` to the dataplane
CPU from inside one container cgroup; two noisy neighbours (busy loops, as
``stress-ng --cpu 2`` would run) start without kcm in another container cgroup with all
CPUs. Measured for {seconds:g} s each: idle (no neighbour), enforcement off, enforcement on
(one ``kcm enforce`` pass after the grant).

Reported: the probe's loop throughput as a share of idle, its longest interruption and
its count of interruptions over 10 us and over 1 ms, and the CPU time the neighbours
got on the dataplane CPU (their CPU time, apportioned by sampling the CPU they run on
every millisecond). Then enforce's reaction time: with ``kcm enforce --interval=600``
running, the time from a grant (and a release) to the neighbours' cgroup cpuset
changing, over 20 grants. Real cgroup v1 cpusets (a private tree, removed afterwards).

For timer-driven workloads: ``cyclictest`` (Debian's rt-tests) in place of the probe,
one thread waking every 1 ms for {seconds:g} s, as SCHED_OTHER and as SCHED_FIFO 80; its
minimum, average and maximum wake-up latency, in the same three cases.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.enforce.cgroup_trees import V1_CPUSET, Tree, v1_available
from tests.integration.workloads import make_conf, read_lines, recorded_workloads, wait_for

KCM = str(Path(sys.executable).with_name("kcm"))
SECONDS = 3.0
PROBE = """
import json, sys, time
warmup, seconds = float(sys.argv[1]), float(sys.argv[2])
clock = time.perf_counter_ns
end = clock() + int(warmup * 1e9)
while clock() < end:
    pass
start = last = clock()
stop = start + int(seconds * 1e9)
loops = over_10us = over_1ms = 0
longest = 0
while last < stop:
    now = clock()
    gap = now - last
    if gap > 10_000:
        over_10us += 1
        if gap > 1_000_000:
            over_1ms += 1
        if gap > longest:
            longest = gap
    last = now
    loops += 1
print(json.dumps({"loops_per_s": loops / ((last - start) / 1e9), "longest_us": longest / 1e3,
                  "over_10us": over_10us, "over_1ms": over_1ms}))
"""
BUSY = "while True: pass"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def last_cpu(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[36])
    except (OSError, IndexError, ValueError):
        return None


def scenario(tree: Tree, conf: Path, neighbours: int, enforce: bool) -> dict:
    warmup = 1.0
    noisy, probe = start_beside_neighbours(
        tree, conf, neighbours, enforce, [sys.executable, "-c", PROBE, str(warmup), str(SECONDS)])
    time.sleep(max(0.0, warmup - 0.2))  # the bench's own pacing, not a test's wait
    samples = {pid: [] for pid in (p.pid for p in noisy)}
    before = {pid: cpu_seconds(pid) for pid in samples}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid in samples:
                samples[pid].append(last_cpu(pid))
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, _ = probe.communicate(timeout=SECONDS + 30)
    done.set()
    sampler.join()
    on_dataplane = 0.0
    for pid, seen in samples.items():
        share = sum(1 for cpu in seen if cpu == 1) / max(1, len(seen))
        on_dataplane += (cpu_seconds(pid) - before[pid]) * share
    for proc in noisy:
        proc.kill()
        proc.wait()
    result = json.loads(out)
    result["neighbour_ms_on_dataplane"] = on_dataplane * 1000
    return result


def start_beside_neighbours(tree: Tree, conf: Path, neighbours: int, enforce: bool,
                            argv: list[str]) -> tuple[list[subprocess.Popen], subprocess.Popen]:
    """Busy neighbours in ctr-b (all CPUs), then ``argv`` through ``kcm isolate`` on the
    dataplane CPU in ctr-a; with ``enforce``, one enforce pass once it is granted."""
    every_cpu = os.sched_getaffinity(0) | {0, 1}
    noisy = [tree.start("ctr-b", [sys.executable, "-c", BUSY],
                        preexec_fn=lambda: os.sched_setaffinity(0, every_cpu))
             for _ in range(neighbours)]
    workload = tree.start("ctr-a", [KCM, "isolate", f"--conf-dir={conf}", "--pool=dataplane",
                                    *argv], stdout=subprocess.PIPE, text=True)
    wait_for(lambda: recorded_workloads(conf))
    if enforce:
        subprocess.run([KCM, "enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}"],
                       check=True, capture_output=True)
    return noisy, workload


def timer_scenario(tree: Tree, conf: Path, neighbours: int, enforce: bool,
                   policy: list[str]) -> dict[str, int]:
    """cyclictest's wake-up latency (us) on the dataplane CPU."""
    noisy, workload = start_beside_neighbours(
        tree, conf, neighbours, enforce,
        ["cyclictest", "-t1", *policy, "-i1000", f"-D{SECONDS:g}", "-q", "-m"])
    out, _ = workload.communicate(timeout=SECONDS + 30)
    for proc in noisy:
        proc.kill()
        proc.wait()
    found = re.search(r"Min:\s*(\d+).*Avg:\s*(\d+)\s+Max:\s*(\d+)", out)
    if not found:
        raise RuntimeError(f"cyclictest said: {out!r}")
    return dict(zip(("min", "avg", "max"), map(int, found.groups()), strict=True))


def timer_rows(tree: Tree, conf: Path) -> list[str]:
    if not shutil.which("cyclictest"):
        return ["_cyclictest not run: install Debian's rt-tests._"]
    lines = ["| timer wake-ups (cyclictest, 1 ms) | case | min us | avg us | max us |",
             "|---|---|---|---|---|"]
    for name, policy in (("SCHED_OTHER", ["--policy=other"]), ("SCHED_FIFO 80", ["-p80"])):
        for case, neighbours, enforce in (("idle", 0, False),
                                          ("neighbours, enforcement off", 2, False),
                                          ("neighbours, enforcement on", 2, True)):
            latency = timer_scenario(tree, conf, neighbours, enforce, policy)
            lines.append(f"| {name} | {case} | {latency['min']} | {latency['avg']} | "
                         f"{latency['max']} |")
    return lines


def reaction(tree: Tree, conf: Path, grants: int = 20) -> tuple[list[float], list[float]]:
    loop = subprocess.Popen([KCM, "enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}",
                             "--interval=600"], stdout=subprocess.PIPE, text=True)
    cpus = tree.containers["ctr-b"] / "cpuset.cpus"
    taken, given = [], []
    try:
        read_lines(loop, 1)
        for _ in range(grants):
            holder = tree.start("ctr-a", [KCM, "isolate", f"--conf-dir={conf}",
                                          "--pool=dataplane", "sleep", "0.3"])
            tasks = conf / "pools/dataplane/1/tasks"
            wait_for(lambda t=tasks: t.read_text().strip(), interval=0.0005)
            granted = time.monotonic()
            wait_for(lambda: cpus.read_text().strip() == "0", interval=0.0005)
            taken.append(time.monotonic() - granted)
            wait_for(lambda t=tasks: not t.read_text().strip(), interval=0.0005)
            released = time.monotonic()
            wait_for(lambda: cpus.read_text().strip() == "0-1", interval=0.0005)
            given.append(time.monotonic() - released)
            holder.wait(10)
    finally:
        loop.terminate()
        loop.wait(10)
    return taken, given


def run() -> str:
    reason = v1_available()
    if reason:
        return f"_Not run: {reason}._"
    # The bench itself (its sampler thread) stays off the dataplane CPU: it is a host
    # process, which kcm does not confine, and it would be measured as interference.
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    tree = Tree(V1_CPUSET)
    conf = make_conf(Path(tempfile.mkdtemp(prefix="kcm-bench-iso-")) / "kcm",
                     {"dataplane": (True, ["1"]), "infra": (False, ["0"])})
    try:
        rows = {"idle": scenario(tree, conf, 0, False),
                "neighbours, enforcement off": scenario(tree, conf, 2, False),
                "neighbours, enforcement on": scenario(tree, conf, 2, True)}
        tree.cpus("ctr-b")
        subprocess.run([KCM, "enforce", f"--conf-dir={conf}", f"--cgroup-root={tree.root}"],
                       check=True, capture_output=True)
        taken, given = reaction(tree, conf)
        timers = timer_rows(tree, conf)
    finally:
        tree.cleanup()
        os.sched_setaffinity(0, own)
    idle = rows["idle"]["loops_per_s"]
    lines = ["| case | probe throughput (% of idle) | longest interruption us | "
             "interruptions > 10 us | > 1 ms | neighbours' CPU time on the dataplane CPU ms |",
             "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {100 * row['loops_per_s'] / idle:.1f} | "
                     f"{row['longest_us']:.0f} | {row['over_10us']} | {row['over_1ms']} | "
                     f"{row['neighbour_ms_on_dataplane']:.0f} |")
    lines += ["", "| enforce reacts to | grants | p50 ms | max ms |", "|---|---|---|---|",
              f"| a grant | {len(taken)} | {statistics.median(taken) * 1000:.1f} | "
              f"{max(taken) * 1000:.1f} |",
              f"| a release | {len(given)} | {statistics.median(given) * 1000:.1f} | "
              f"{max(given) * 1000:.1f} |", "", *timers]
    return "\n".join(lines)


__doc__ = __doc__.format(seconds=SECONDS)

if __name__ == "__main__":
    print(run())
