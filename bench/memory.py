"""Memory: peak RSS of one ``kcm isolate``, and the RSS of ``kcm reconcile --interval``
and ``kcm node-report --interval`` early on and after thousands of passes (it must
stay flat: no growth per pass).
"""

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.integration.workloads import make_conf

KCM = str(Path(os.sys.executable).with_name("kcm"))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def passes(proc: subprocess.Popen) -> int:
    return sum(1 for _ in proc.stdout) if proc.stdout else 0


def long_running(argv: list[str], seconds: float) -> tuple[int, int, int]:
    with tempfile.TemporaryFile("w+") as output:
        proc = subprocess.Popen(argv, stdout=output, stderr=subprocess.DEVNULL)
        time.sleep(min(2.0, seconds / 4))
        early = rss_kib(proc.pid)
        time.sleep(seconds)
        late = rss_kib(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        output.seek(0)
        count = sum(1 for _ in output)
    return early, late, count


def run(seconds: float = 20.0) -> str:
    conf = make_conf(Path(tempfile.mkdtemp(prefix="kcm-bench-mem-")) / "kcm",
                     {"dataplane": (True, ["1"]), "infra": (False, ["0"])})
    # A fresh wrapper process, so that the peak is this isolate's alone.
    peak = int(subprocess.run(
        [os.sys.executable, "-c",
         "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
         KCM, "isolate", f"--conf-dir={conf}", "--pool=infra", "--", "true"],
        check=True, capture_output=True, text=True).stdout)
    lines = ["| process | RSS early KiB | RSS late KiB | passes |", "|---|---|---|---|",
             f"| `kcm isolate -- true` (peak) | {peak} | | 1 |"]
    for name, argv in (
        ("reconcile --interval=0.001", [KCM, "reconcile", f"--conf-dir={conf}",
                                        "--interval=0.001"]),
        ("node-report --interval=0.001", [KCM, "node-report", f"--conf-dir={conf}",
                                          "--interval=0.001"]),
    ):
        early, late, count = long_running(argv, seconds)
        lines.append(f"| `kcm {name}` | {early} | {late} | {count:,} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
