"""Allocation throughput: N parallel clients each running ``kcm isolate -- true`` in a
loop, on a shared pool and on an exclusive pool with as many CPU lists as clients
(so "refused" counts races the lock lost, which must be none).

Reported: workload starts per second over the run, and from kcm's own debug log
(``KCM_LOG_LEVEL=DEBUG`` prints each lock's wait and hold time) the lock wait p50/p99
and the lock hold p99. On the exclusive pool a client that finds every list taken
gets "pool full" and retries; those attempts are counted apart.
"""

import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tests.integration.workloads import make_conf

KCM = str(Path(os.sys.executable).with_name("kcm"))
LOCK_LINE = re.compile(r"waited ([0-9.]+)s held ([0-9.]+)s")


def client(conf: Path, pool: str, deadline: float, out: dict, lock: threading.Lock) -> None:
    env = dict(os.environ, KCM_LOG_LEVEL="DEBUG")
    while time.monotonic() < deadline:
        result = subprocess.run([KCM, "isolate", f"--conf-dir={conf}", f"--pool={pool}",
                                 "--no-affinity", "--", "true"],
                                capture_output=True, text=True, env=env)
        waits = [(float(w), float(h)) for w, h in LOCK_LINE.findall(result.stderr)]
        with lock:
            out["starts" if result.returncode == 0 else "refused"] += 1
            out["locks"] += waits


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * fraction) - 1)]


def measure(pool: str, clients: int, seconds: float) -> dict:
    conf = Path(tempfile.mkdtemp(prefix="kcm-bench-tp-")) / "kcm"
    make_conf(conf, {"shared": (False, ["0-1"]),
                     "exclusive": (True, [str(n) for n in range(100, 100 + clients)])})
    out = {"starts": 0, "refused": 0, "locks": []}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(conf, pool, deadline, out, lock))
               for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    waits = [w for w, _ in out["locks"]]
    holds = [h for _, h in out["locks"]]
    return {"starts_per_s": out["starts"] / elapsed, "refused": out["refused"],
            "wait_p50": statistics.median(waits), "wait_p99": percentile(waits, 0.99),
            "hold_p99": percentile(holds, 0.99), "locks": len(waits)}


def run(seconds: float = 8.0) -> str:
    lines = ["| pool | clients | starts/s | refused | lock wait p50 ms | lock wait p99 ms "
             "| lock hold p99 ms |", "|---|---|---|---|---|---|---|"]
    for pool in ("shared", "exclusive"):
        for clients in (1, 4, 16):
            r = measure(pool, clients, seconds)
            lines.append(f"| {pool} | {clients} | {r['starts_per_s']:.0f} | {r['refused']} | "
                         f"{r['wait_p50'] * 1000:.2f} | {r['wait_p99'] * 1000:.2f} | "
                         f"{r['hold_p99'] * 1000:.2f} |")
    lines.append("")
    lines.append("The exclusive pool has one CPU list per client, named after CPUs 100 and up "
                 "so that the bench runs on any machine; workloads run with `--no-affinity` "
                 f"(pinning is one system call). Each run lasts {seconds:g} s on a "
                 f"{os.cpu_count()}-CPU machine, so with more clients than CPUs the numbers "
                 "show contention for the CPUs as much as for the lock.")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
