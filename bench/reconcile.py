"""Reconcile scaling: one ``kcm reconcile`` pass over 100 to 100,000 dead tasks
(spread over 1,000 CPU lists of a shared pool, at most 100 per list), against the
same pass over an empty directory of the same shape, and the longest of its two lock holds
(which should not grow with the tasks). The time should grow linearly with the number of
tasks. A pass rewrites every CPU list that changed (temporary files and one
``syncfs`` for all without the lock, renames under it), so up to 1,000 tasks the cost
follows the lists rewritten (all 1,000 from 1,000 tasks on); beyond that, the per-task
check of ``/proc/PID/stat``.
"""

import tempfile
import time
from pathlib import Path

from bench.durability import holds_ms

LISTS = 1000


def make_directory(tasks: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix="kcm-bench-rec-")) / "kcm"
    pool = root / "pools" / "shared"
    pool.mkdir(parents=True)
    (pool / "exclusive").write_text("0")
    dead = 4_000_000  # above pid_max's default: never a live process
    per_list = [tasks // LISTS + (1 if n < tasks % LISTS else 0) for n in range(LISTS)]
    for n, count in enumerate(per_list):
        directory = pool / str(n)
        directory.mkdir()
        (directory / "tasks").write_text(",".join(str(dead + n * 100 + k) for k in range(count)))
    return root


def timed_pass(conf: Path) -> tuple[float, float]:
    """The pass's wall time and its longest lock hold (kcm's DEBUG log), in seconds."""
    started = time.perf_counter()
    holds = holds_ms(["reconcile", f"--conf-dir={conf}"])
    return time.perf_counter() - started, max(holds) / 1000


def run() -> str:
    baseline, _ = timed_pass(make_directory(0))
    lines = ["| dead tasks | pass s | beyond an empty pass s | µs per task | longest hold ms |",
             "|---|---|---|---|---|"]
    for tasks in (100, 1_000, 10_000, 100_000):
        seconds, held = timed_pass(make_directory(tasks))
        extra = max(seconds - baseline, 0.0)
        lines.append(f"| {tasks:,} | {seconds:.3f} | {extra:.3f} | {extra / tasks * 1e6:.1f} "
                     f"| {held * 1000:.1f} |")
    lines.append("")
    lines.append(f"An empty pass over the same 1,000 CPU lists takes {baseline:.3f} s "
                 "(start-up, reading the directory).")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
