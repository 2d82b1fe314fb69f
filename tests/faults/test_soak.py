"""Concurrency soak: mixed isolate/reconcile/describe from many processes, sampled
throughout for double allocation; at the end, zero leaked tasks.

It runs only when KCM_SOAK_SECONDS is set: a mutant without locking passed 180 s of it,
so it proves stamina, not exclusion (the storm test in tests/integration/test_isolate.py
is that proof). The documented long run is
``KCM_SOAK_SECONDS=1800 .venv/bin/python -m pytest tests/faults/test_soak.py``.
"""

import json
import os
import random
import threading
import time

import pytest

from tests.integration.workloads import (
    alive,
    make_conf,
    recorded_workloads,
    start_time,
    tasks_of,
)

SECONDS = float(os.environ.get("KCM_SOAK_SECONDS", "0"))


@pytest.mark.skipif(not SECONDS, reason="a long run: set KCM_SOAK_SECONDS")
def test_soak(kcm, tmp_path):
    conf = make_conf(tmp_path / "kcm", {"dataplane": (True, ["10", "11", "12"]),
                                        "infra": (False, ["0-1"])})
    deadline = time.monotonic() + SECONDS
    problems: list[str] = []
    counts = {"isolate": 0, "full": 0, "reconcile": 0, "describe": 0, "samples": 0}
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            action = rng.choices(["exclusive", "shared", "reconcile", "describe"],
                                 [5, 3, 1, 1])[0]
            if action in ("exclusive", "shared"):
                pool = "dataplane" if action == "exclusive" else "infra"
                result = kcm.run("isolate", f"--conf-dir={conf}", f"--pool={pool}",
                                 "--no-affinity", "--", "sleep", str(rng.choice([0, 0.02, 0.1])))
                key = "isolate" if result.returncode == 0 else "full"
                if result.returncode not in (0, 1) or (
                        result.returncode == 1 and "is full" not in result.stderr):
                    problems.append(f"isolate: {result.returncode} {result.stderr}")
            else:
                result = kcm.run(action, f"--conf-dir={conf}")
                key = action
                if result.returncode != 0:
                    problems.append(f"{action}: {result.stderr}")
            with lock:
                counts[key] += 1

    workloads: set[tuple[int, int]] = set()

    def sampler() -> None:
        while time.monotonic() < deadline:
            workloads.update(recorded_workloads(conf))
            for name, pids in tasks_of(conf).items():
                if name.startswith("dataplane/") and sum(map(alive, pids)) > 1:
                    problems.append(f"{name} held by {pids}")
            counts["samples"] += 1
            time.sleep(0.01)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    threads.append(threading.Thread(target=sampler))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not problems, problems[:5]
    assert counts["isolate"] > 10 and counts["samples"] > 100, counts
    assert all(not pids for pids in tasks_of(conf).values()), "leaked tasks"
    report = json.loads(kcm.run("reconcile", f"--conf-dir={conf}", check=True).stdout)
    assert report == {"reclaimedCpuLists": []}
    # No workload outlived its kcm isolate.
    assert not [pid for pid, started in workloads if start_time(pid) == started and alive(pid)]
