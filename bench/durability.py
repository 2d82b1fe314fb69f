"""Durability and lock holds: fsyncs per operation (counted with ``strace -f``) and how
long each operation holds the configuration lock (kcm's own DEBUG log line, median of
21 runs), on a directory of 4 CPU lists and one of 1,026 (1,022 more in another pool).

A grant must be on disk before its workload runs: two fsyncs (the ``tasks`` file's
data, then its directory); a release or a reclaim needs none (losing one leaves a dead
task for the next reconcile). A reconcile pass holds the lock to read the directory and
again to rename its new files into place (both holds are shown); checking tasks, writing
the files and one ``syncfs`` for all of them happen between, without it. ``isolate`` reads only
the pool it takes from under the lock, so its hold does not grow with the node;
``describe`` reads every file under the lock and checks them after.
"""

import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

KCM = str(Path(os.sys.executable).with_name("kcm"))
RUNS = 21
DIRTY_MB = 2048
DEAD = 4_000_000  # above pid_max's default: never a live process


def make_directory(extra_lists: int, dead_per_list: int = 0) -> Path:
    root = Path(tempfile.mkdtemp(prefix="kcm-bench-dur-")) / "kcm"
    pools = {"dataplane": ("1", ["5000", "5001", "5002"]), "infra": ("0", ["0-1"]),
             "bulk": ("0", [str(100 + n) for n in range(extra_lists)])}
    for name, (flag, lists) in pools.items():
        if not lists:
            continue
        (root / "pools" / name).mkdir(parents=True)
        (root / "pools" / name / "exclusive").write_text(flag)
        for n, cpus in enumerate(lists):
            (root / "pools" / name / cpus).mkdir()
            dead = ",".join(str(DEAD + n * 100 + k) for k in range(dead_per_list))
            (root / "pools" / name / cpus / "tasks").write_text(dead if name == "bulk" else "")
    return root


def isolate_args(conf: Path, pool: str) -> list[str]:
    return ["isolate", f"--conf-dir={conf}", f"--pool={pool}", "--no-affinity", "--", "true"]


def fsyncs(args: list[str]) -> int:
    with tempfile.NamedTemporaryFile() as trace:
        subprocess.run(["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync,syncfs,sync",
                        "-o", trace.name, KCM, *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return sum(1 for line in Path(trace.name).read_text().splitlines()
                   if re.search(r"\b(fsync|fdatasync|syncfs|sync)\(", line))


def holds_ms(args: list[str]) -> list[float]:
    """Every lock hold of one run, in order, from kcm's DEBUG log."""
    result = subprocess.run([KCM, *args], env={**os.environ, "KCM_LOG_LEVEL": "DEBUG"},
                            capture_output=True, text=True, check=True)
    return [1000 * float(held) for held in re.findall(r"held (\d+\.\d+)s", result.stderr)]


def median_hold_ms(args: list[str]) -> float:
    holds_ms(args)  # a first run warms the page cache; not counted
    return statistics.median(holds_ms(args)[0] for _ in range(RUNS))


def make_dirty(beside: Path, megabytes: int) -> None:
    """Leave ``megabytes`` of another writer's data dirty on the same file system, as a
    node pulling an image does; a syncfs must write it out too."""
    os.sync()
    block = os.urandom(1 << 20)
    with open(beside.parent / "dirty", "wb") as handle:
        for _ in range(megabytes):
            handle.write(block)


def reconcile_row(what: str, dead: int, dirty_mb: int) -> str:
    count = fsyncs(["reconcile", f"--conf-dir={make_directory(1000, dead_per_list=dead)}"])
    conf = make_directory(1000, dead_per_list=dead)  # afresh: that pass freed them all
    make_dirty(conf, dirty_mb)
    started = time.perf_counter()
    holds = holds_ms(["reconcile", f"--conf-dir={conf}"])
    seconds = time.perf_counter() - started
    os.unlink(conf.parent / "dirty")
    held = " + ".join(f"{hold:.1f}" for hold in holds)
    return f"| reconcile, {what} | 1004 | {count} | {held} (pass {seconds * 1000:.0f} ms) |"


def run() -> str:
    lines = ["| operation | CPU lists | fsyncs | lock held ms (median; reconcile: each hold) |",
             "|---|---|---|---|"]
    for extra in (0, 1022):
        conf = make_directory(extra)
        lists = 4 + extra
        for label, pool in (("isolate (exclusive pool), start to exit", "dataplane"),
                            ("isolate (shared pool), start to exit", "infra")):
            args = isolate_args(conf, pool)
            lines.append(f"| {label} | {lists} | {fsyncs(args)} | {median_hold_ms(args):.2f} |")
        describe = ["describe", f"--conf-dir={conf}"]
        lines.append(f"| describe | {lists} | {fsyncs(describe)} | "
                     f"{median_hold_ms(describe):.2f} |")
    lines.append(reconcile_row("1,000 changed lists", 1, 0))
    lines.append(reconcile_row(f"1,000 changed lists, {DIRTY_MB:,} MB of others' data dirty",
                               1, DIRTY_MB))
    lines.append(reconcile_row("nothing to change", 0, 0))
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
